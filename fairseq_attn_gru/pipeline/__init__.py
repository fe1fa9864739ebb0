"""The translation pipeline for any language pair: prepare -> train -> select -> evaluate / translate.

One module per step, each also a subcommand of the ``fairseq-attn-gru`` console tool (``__main__.py``):
corpus.py (raw parallel files, checked), clean.py (training-pair cleaning), text.py (Moses + BPE or SentencePiece),
prepare.py, train.py, average.py, select_checkpoint.py, evaluate.py (``Translator``: raw text in, translations
out, and the scores), run.py (all of them for one direction, with a results json). docs/pipeline.md is the guide.
"""

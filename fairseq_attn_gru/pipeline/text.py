"""Text processing: raw lines -> the subword tokens the model reads, and its output back to plain text.

Two ways, chosen once by ``prepare`` and recorded in the prepared directory's ``prep.json``, so that training data,
evaluation and ``translate`` treat text identically:

- ``moses-bpe``: sacremoses punctuation normalisation and tokenisation (case kept, no HTML escaping), then
  subword-nmt BPE (``--bpe-merges`` merge operations); output: remove ``@@ ``, Moses detokenisation. Knows the
  languages sacremoses has rules for (``moses_languages()``: en, de, fr, cs, ... 39 codes).
- ``sentencepiece``: a SentencePiece unigram model (``--sentencepiece-vocab`` pieces) on the raw text, which
  normalises (NFKC) and detokenises itself; any language and script.

``--vocab joint`` learns one model on both languages' training text (the two sides then share pieces, and
fairseq-preprocess one dictionary); ``separate`` one model per language. Every model is learned on the cleaned
training split only. tests/test_pipeline.py checks that decode(encode(x)) gives back x (Moses: after normalisation)
for both ways.

sacremoses, subword-nmt and sentencepiece are imported when text is processed (``require_module``), so a missing
one is one ``error:`` line saying what to install.
"""
import contextlib
import io
from pathlib import Path
from typing import Dict, List, Sequence

from ..recipes.cli import fail, require_module

PROCESSINGS = ("moses-bpe", "sentencepiece")
VOCABS = ("joint", "separate")
#: fairseq-generate's --remove-bpe for subword-nmt output
BPE_SEPARATOR = "@@ "


def moses_languages() -> List[str]:
    """The language codes sacremoses has nonbreaking-prefix rules for (others would silently get English rules)."""
    corpus = require_module("sacremoses.corpus")
    return sorted(set(corpus.NonbreakingPrefixes().available_langs.values()))


class TextProcessing:
    """One way of turning raw text into subword tokens and back; ``prep`` is the prepared directory that holds
    (``learn``) or will hold (``learn``) its models. ``languages`` is (source, target)."""

    name = ""
    size_flag = ""

    def __init__(self, prep: Path, languages: Sequence[str], vocab: str, size: int):
        self.prep, self.languages, self.vocab, self.size = Path(prep), tuple(languages), vocab, size
        self._models = {}

    def model_name(self, lang: str) -> str:
        raise NotImplementedError

    def model_path(self, lang: str) -> Path:
        return self.prep / self.model_name(lang)

    def model_files(self) -> List[str]:
        return sorted({self.model_name(lang) for lang in self.languages})

    def check_language(self, lang: str, flag: str) -> None:
        """Refuse a language this way of processing does not know."""

    def learn(self, texts: Dict[str, List[str]]) -> None:
        """Learn the subword model(s) from {lang: raw training lines}."""
        raise NotImplementedError

    def encode(self, lines: Sequence[str], lang: str) -> List[str]:
        """Raw lines -> subword tokens joined by single spaces. Any other whitespace a token might keep (a ``\r``,
        U+2028 inside a line) would make fairseq-preprocess read two lines where there is one."""
        return [" ".join(line.split()) for line in self.subwords(lines, lang)]

    def subwords(self, lines: Sequence[str], lang: str) -> List[str]:
        raise NotImplementedError

    def decode(self, lines: Sequence[str], lang: str) -> List[str]:
        raise NotImplementedError

    def eval_bleu_flags(self, target_lang: str) -> List[str]:
        """fairseq-train's flags that turn the model's validation output into plain text for --eval-bleu."""
        raise NotImplementedError

    def groups(self, texts: Dict[str, List[str]]) -> Dict[str, List[List[str]]]:
        """{model name: the texts it learns from}: one model for both languages (joint) or one each (separate)."""
        models: Dict[str, List[List[str]]] = {}
        for lang in self.languages:
            models.setdefault(self.model_name(lang), []).append(texts[lang])
        return models


class MosesBPE(TextProcessing):
    name = "moses-bpe"
    size_flag = "--bpe-merges"

    def model_name(self, lang: str) -> str:
        return "bpe.codes" if self.vocab == "joint" else f"bpe.{lang}.codes"

    def check_language(self, lang: str, flag: str) -> None:
        known = moses_languages()
        if lang not in known:
            fail(f"{flag}={lang!r}: sacremoses has no tokenisation rules for it (it knows {', '.join(known)}); "
                 "use --text-processing sentencepiece, which works for any language")

    def tokenize(self, lines: Sequence[str], lang: str) -> List[str]:
        """Normalised, Moses-tokenised lines; escape=False keeps & " ' < > themselves, so detokenised output compares
        directly with raw references."""
        sacremoses = require_module("sacremoses")
        normalizer, tokenizer = sacremoses.MosesPunctNormalizer(lang), sacremoses.MosesTokenizer(lang)
        return [tokenizer.tokenize(normalizer.normalize(line), escape=False, return_str=True) for line in lines]

    def learn(self, texts: Dict[str, List[str]]) -> None:
        learn_bpe = require_module("subword_nmt.learn_bpe").learn_bpe
        tokenized = {lang: self.tokenize(lines, lang) for lang, lines in texts.items()}
        for name, group in self.groups(tokenized).items():
            joined = io.StringIO("".join(line + "\n" for lines in group for line in lines))
            # subword-nmt draws a tqdm bar on stderr for every merge: thousands of updates in a log
            with open(self.prep / name, "w", encoding="utf-8") as codes, contextlib.redirect_stderr(io.StringIO()):
                learn_bpe(joined, codes, self.size)

    def bpe(self, lang: str):
        if lang not in self._models:
            with open(self.model_path(lang), encoding="utf-8") as codes:
                self._models[lang] = require_module("subword_nmt.apply_bpe").BPE(codes)
        return self._models[lang]

    def subwords(self, lines: Sequence[str], lang: str) -> List[str]:
        bpe = self.bpe(lang)
        return [bpe.process_line(line) for line in self.tokenize(lines, lang)]

    def decode(self, lines: Sequence[str], lang: str) -> List[str]:
        detokenizer = require_module("sacremoses").MosesDetokenizer(lang)
        return [detokenizer.detokenize((line + " ").replace(BPE_SEPARATOR, "").split()) for line in lines]

    def eval_bleu_flags(self, target_lang: str) -> List[str]:
        return ["--eval-bleu-remove-bpe", "--eval-bleu-detok", "moses",
                "--eval-bleu-detok-args", f'{{"target_lang": "{target_lang}"}}']


class SentencePiece(TextProcessing):
    name = "sentencepiece"
    size_flag = "--sentencepiece-vocab"

    def model_name(self, lang: str) -> str:
        return "spm.model" if self.vocab == "joint" else f"spm.{lang}.model"

    def learn(self, texts: Dict[str, List[str]]) -> None:
        trainer = require_module("sentencepiece").SentencePieceTrainer
        for name, group in self.groups(texts).items():
            lines = [line for lines in group for line in lines]
            # the unigram model (SentencePiece's default); every character kept (coverage 1.0: the small corpora
            # this pipeline is for have few rare characters); no <s>/</s> pieces: fairseq adds its own; the vocabulary
            # size is an upper bound, so a small corpus still gets a model
            trainer.train(sentence_iterator=iter(lines), model_prefix=str(self.prep / name[: -len(".model")]),
                          vocab_size=self.size, character_coverage=1.0, hard_vocab_limit=False, bos_id=-1, eos_id=-1,
                          num_threads=2, minloglevel=2)

    def processor(self, lang: str):
        if lang not in self._models:
            self._models[lang] = require_module("sentencepiece").SentencePieceProcessor(
                model_file=str(self.model_path(lang)))
        return self._models[lang]

    def subwords(self, lines: Sequence[str], lang: str) -> List[str]:
        processor = self.processor(lang)
        return [" ".join(processor.encode(line, out_type=str)) for line in lines]

    def decode(self, lines: Sequence[str], lang: str) -> List[str]:
        processor = self.processor(lang)
        return [processor.decode(line.split()) for line in lines]

    def eval_bleu_flags(self, target_lang: str) -> List[str]:
        return ["--eval-bleu-remove-bpe", "sentencepiece", "--eval-bleu-detok", "space"]


def text_processing(prep, name: str, languages: Sequence[str], vocab: str, size: int) -> TextProcessing:
    classes = {cls.name: cls for cls in (MosesBPE, SentencePiece)}
    if name not in classes:
        fail(f"--text-processing={name!r} is not allowed: one of {', '.join(PROCESSINGS)}")
    if vocab not in VOCABS:
        fail(f"--vocab={vocab!r} is not allowed: one of {', '.join(VOCABS)}")
    return classes[name](prep, languages, vocab, size)


def require_text_tools(name: str) -> None:
    """The modules a way of processing needs, or one error line saying what to install (before any long work)."""
    modules = {"moses-bpe": ("sacremoses", "subword_nmt.learn_bpe", "subword_nmt.apply_bpe"),
               "sentencepiece": ("sentencepiece",)}[name]
    for module in (*modules, "sacremoses"):  # sacremoses also scores (BLEU tok-lc)
        require_module(module)

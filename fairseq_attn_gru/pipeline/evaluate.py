"""Translate raw text with a trained model and score it: the ``evaluate`` and ``translate`` steps.

    fairseq-attn-gru evaluate --prep WORK/prep --checkpoint CKPT --test DATA/test_2016_flickr [DATA/test_2017_flickr ...]
    fairseq-attn-gru evaluate --prep WORK/prep --checkpoint CKPT --src x.en --ref x.fr
    fairseq-attn-gru translate --prep WORK/prep --checkpoint CKPT [--input FILE] [--output FILE]   # stdin/stdout
    fairseq-attn-gru translate --work WORK ...   # = WORK/prep and the checkpoint `run` chose and scored

--work is the model a finished ``run`` reported: the checkpoint ``select`` chose on val (WORK/main/selection.json),
or with --models N the ensemble of each member's choice, as ``run`` translated with it.

``Translator`` loads the checkpoint (or an ensemble: checkpoints joined by os.pathsep, as fairseq-generate's --path
takes them) through fairseq's hub interface in this process, with the prepared directory's dictionaries, and treats
each raw line as ``prepare`` treated the training data (prep.json's text processing); it translates in batches
with beam search and turns the output back into plain text. The output is what ``fairseq-generate --beam 5`` gives
for the same encoded lines (tests/test_pipeline.py checks it for both text processings).

Scores for every test set (``score``): sacreBLEU on the detokenised, cased output against the untouched reference
(the headline, with its signature), chrF, and BLEU in the tok-lc convention of the Multi30k literature (lowercased,
Moses-tokenised: scoring.TOK_LC_CONVENTION), labelled as such; the last only for languages sacremoses has rules for.
"""
import argparse
import json
import logging
import math
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import torch
from omegaconf import open_dict

from ..models import GRUAttnModel
from ..recipes.cli import fail, require_file
from ..recipes.scoring import Translation, chrf_score, sacrebleu_score, tok_lc_bleu
from .corpus import Split, read_pair, read_text, text_lines, write_text
from .prepare import load_prep, processing_of
from .text import moses_languages

#: --precision -> the model overrides that load it so ("saved": as the checkpoint was trained, --cpu-bf16 or not)
PRECISION_OVERRIDES = {"saved": {}, "fp32": {"cpu_bf16": False}, "bf16": {"cpu_bf16": True},
                       "int8": {"cpu_bf16": False, "int8": True}}
#: translate: lines per chunk between progress lines on stderr
CHUNK = 1000


def checkpoint_paths(checkpoint) -> List[Path]:
    """--checkpoint's files, absolute: one checkpoint, or an ensemble's joined by os.pathsep; a missing one is named."""
    return [require_file(path, "--checkpoint").resolve() for path in str(checkpoint).split(os.pathsep)]


def chosen_model(work) -> Tuple[Path, str]:
    """(WORK/prep, the checkpoint ``run`` translated the test sets with): ``select``'s choice in WORK/main, or with
    --models N the choices in WORK/main/model1, model2, ... joined by os.pathsep (their ensemble)."""
    from .select_checkpoint import SELECTION_FILE  # select_checkpoint imports this module

    work, main = Path(work), Path(work) / "main"
    members = sorted((path for path in main.glob("model*") if path.name[5:].isdigit()), key=lambda p: int(p.name[5:]))
    save_dirs = [main] if (main / SELECTION_FILE).is_file() or not members else members
    missing = [path for path in save_dirs if not (path / SELECTION_FILE).is_file()]
    if missing:
        fail(f"--work {str(work)!r}: {str(missing[0] / SELECTION_FILE)!r} is missing: `fairseq-attn-gru run` has not "
             "chosen a checkpoint there yet (run it to the end, or give --prep and --checkpoint)")
    chosen = [path / json.loads((path / SELECTION_FILE).read_text())["chosen"] for path in save_dirs]
    return work / "prep", os.pathsep.join(map(str, chosen))


@contextmanager
def _quiet_fairseq():
    """Console output fairseq-generate kept in its log: from_pretrained's whole configuration, the batching INFO
    lines, torch's pin_memory warning on CPU. Warnings and errors still show."""
    loggers = [logging.getLogger(name) for name in ("fairseq.models.fairseq_model", "fairseq.file_utils",
                                                     "fairseq.checkpoint_utils", "fairseq.tasks.translation",
                                                     "fairseq.tasks.fairseq_task", "fairseq.data.iterators")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*'pin_memory' argument is set as true")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


class Translator:
    """A trained model (or ensemble) with its prepared directory's text processing: raw lines in, raw lines out, on
    the GPU when torch sees one (int8: always the CPU).

        translator = Translator("work/prep", "work/main/checkpoint_best.pt")
        translator.translate(["Ein Hund rennt."])   # ["A dog is running."]
        Translator.from_work("work")                # the model a finished `run` chose and scored

    ``precision``: PRECISION_OVERRIDES (int8: quantized at load time, docs/inference.md); ``beam`` and ``lenpen`` as
    fairseq-generate's (beam scores / length ** lenpen); ``batch_size`` sentences per batch.
    """

    def __init__(self, prep_dir, checkpoint, precision: str = "saved", beam: int = 5, lenpen: float = 1.0,
                 batch_size: int = 64):
        if precision not in PRECISION_OVERRIDES:
            fail(f"precision={precision!r} is not allowed: one of {', '.join(PRECISION_OVERRIDES)}")
        self.prep_dir = Path(prep_dir)
        self.prep = load_prep(self.prep_dir)
        self.processing = processing_of(self.prep_dir, self.prep)
        self.source_lang, self.target_lang = self.prep["source_lang"], self.prep["target_lang"]
        self.beam, self.lenpen = beam, lenpen
        checkpoints = checkpoint_paths(checkpoint)
        with _quiet_fairseq():  # fairseq's hub loads an ensemble from checkpoint file names joined by os.pathsep
            self.hub = GRUAttnModel.from_pretrained(
                str(checkpoints[0].parent), checkpoint_file=os.pathsep.join(map(str, checkpoints)),
                data_name_or_path=str(self.prep_dir.resolve() / "bin"), source_lang=self.source_lang,
                target_lang=self.target_lang, **PRECISION_OVERRIDES[precision])
        with open_dict(self.hub.cfg):  # batches by sentence count, like fairseq-generate --batch-size
            self.hub.cfg.dataset.batch_size, self.hub.cfg.dataset.max_tokens = batch_size, None
        if precision != "int8" and torch.cuda.is_available():  # int8 is a CPU feature
            self.hub.cuda()
        self.max_source_tokens = min(model.max_positions()[0] for model in self.hub.models)

    @classmethod
    def from_work(cls, work, **options) -> "Translator":
        """The model a finished ``fairseq-attn-gru run --work WORK`` chose and scored (``chosen_model``)."""
        return cls(*chosen_model(work), **options)

    def encode(self, lines: Sequence[str], first_line: int = 1):
        """Raw lines -> source token ids (eos last); a line longer than the model takes is named (numbered from
        ``first_line``: a chunk of a longer input names its line in the whole)."""
        encoded = [self.hub.src_dict.encode_line(line, add_if_not_exist=False)
                   for line in self.processing.encode(lines, self.source_lang)]
        for i, tokens in enumerate(encoded):
            if len(tokens) > self.max_source_tokens:
                fail(f"line {first_line + i} has {len(tokens)} subword tokens, more than the {self.max_source_tokens} "
                     "the model takes (its --max-source-positions): split it, or leave it out")
        return encoded

    def translations(self, sources: Sequence[str], references: Optional[Sequence[str]] = None,
                     alignment: bool = False, log_prefix=None, first_line: int = 1) -> List[Translation]:
        """Each raw source line's best beam hypothesis, in line order: the Translations hold the subword text of the
        source, the reference (encoded like the training targets) and the hypothesis, the hypothesis's log2 score in
        ``extra["score"]`` and its plain text in ``extra["text"]``, and with ``alignment`` the soft attention
        (rows: hypothesis tokens + </s>, columns: source tokens + </s>). An empty line (nothing but whitespace)
        translates as an empty line, score nan: the model is not asked to make something up. ``log_prefix``: also
        writes PREFIX.generate.log in fairseq-generate's S-/T-/H-/D-(/A-) format."""
        if references is not None and len(references) != len(sources):
            fail(f"{len(sources)} source lines but {len(references)} references")
        source_tokens = self.encode(sources, first_line)
        reference_text = self.processing.encode(references, self.target_lang) if references is not None else None
        words = [i for i, tokens in enumerate(source_tokens) if len(tokens) > 1]  # more than </s>
        with _quiet_fairseq():
            generated = self.hub.generate([source_tokens[i] for i in words], beam=self.beam, lenpen=self.lenpen,
                                          **({"print_alignment": "soft"} if alignment else {})) if words else []
        no_output = [{"tokens": torch.tensor([], dtype=torch.long), "score": float("nan"), "alignment": None}]
        outputs = [no_output] * len(source_tokens)
        for i, hypos in zip(words, generated):
            outputs[i] = hypos
        src_dict, tgt_dict = self.hub.src_dict, self.hub.tgt_dict
        hypotheses = [tgt_dict.string(hypos[0]["tokens"].int().cpu(), extra_symbols_to_ignore={tgt_dict.eos()})
                      for hypos in outputs]
        texts = self.processing.decode(hypotheses, self.target_lang)
        translations, log = [], []
        for i, (tokens, hypos, hypothesis, text) in enumerate(zip(source_tokens, outputs, hypotheses, texts)):
            best, soft = hypos[0], hypos[0]["alignment"]  # rows of "%.6f" strings, as fairseq-generate prints them
            score = float(best["score"]) / math.log(2)
            reference = (tgt_dict.string(tgt_dict.encode_line(reference_text[i], add_if_not_exist=False),
                                         escape_unk=True) if reference_text is not None else "")
            translations.append(Translation(
                i, source=src_dict.string(tokens), reference=reference, hypothesis=hypothesis,
                soft_alignment=[[float(p) for p in row] for row in soft] if alignment and soft else None,
                extra={"score": str(score), "text": text}))
            log += [f"S-{i}\t{translations[-1].source}", *([f"T-{i}\t{reference}"] if references is not None else []),
                    f"H-{i}\t{score}\t{hypothesis}", f"D-{i}\t{score}\t{text}"]
            if alignment and soft:
                log.append(f"A-{i}\t" + " ".join(",".join(row) for row in soft))
        if log_prefix is not None:
            write_text(f"{log_prefix}.generate.log", log)
        return translations

    def translate(self, sources: Sequence[str], first_line: int = 1) -> List[str]:
        """Raw source lines -> plain-text translations, one per line (``first_line``: as in ``encode``)."""
        return [t.extra["text"] for t in self.translations(sources, first_line=first_line)]


def score(hypotheses: List[str], references: List[str], target_lang: str) -> dict:
    """Every score of a test set (module docstring) of plain-text hypotheses against raw references."""
    bleu, chrf = sacrebleu_score(hypotheses, references), chrf_score(hypotheses, references)
    scores = {"sacrebleu": bleu["score"], "signature": bleu["signature"],
              "chrf": chrf["score"], "chrf_signature": chrf["signature"]}
    if target_lang in moses_languages():
        tok_lc = tok_lc_bleu(hypotheses, references, target_lang)
        scores.update(bleu_tok_lc=tok_lc["score"], bleu_tok_lc_signature=tok_lc["signature"])
    else:
        scores.update(bleu_tok_lc=None, bleu_tok_lc_signature=f"not computed: sacremoses has no rules for "
                                                              f"{target_lang!r}")
    return scores


def evaluate_split(translator: Translator, split: Split, out_prefix, limit: Optional[int] = None) -> dict:
    """Translate a split's source file, write PREFIX.hyp.TGT and PREFIX.generate.log, and score against its target."""
    texts = read_pair(split, translator.source_lang, translator.target_lang, limit)
    return evaluate_lines(translator, texts[translator.source_lang], texts[translator.target_lang], out_prefix)


def evaluate_lines(translator: Translator, sources, references, out_prefix) -> dict:
    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    hypotheses = [t.extra["text"] for t in translator.translations(sources, references, log_prefix=out_prefix)]
    write_text(f"{out_prefix}.hyp.{translator.target_lang}", hypotheses)
    return score(hypotheses, references, translator.target_lang)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """What loads a Translator: shared by evaluate and translate."""
    parser.add_argument("--work", default=None,
                        help="a `fairseq-attn-gru run` working directory: its prep/ and the checkpoint the run chose "
                             "on val and scored (instead of --prep and --checkpoint)")
    parser.add_argument("--prep", default=None, help="the `fairseq-attn-gru prepare` output the model was trained on")
    parser.add_argument("--checkpoint", default=None,
                        help="a fairseq checkpoint, e.g. SAVE_DIR/checkpoint_best.pt, or several joined by "
                             f"'{os.pathsep}' (A.pt{os.pathsep}B.pt): their ensemble translates")
    parser.add_argument("--beam", type=int, default=5, help="beam size (default: 5)")
    parser.add_argument("--lenpen", type=float, default=1.0,
                        help="length penalty, as fairseq-generate's: beam scores / length ** LENPEN; above 1 favours "
                             "longer translations (default: 1.0)")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per batch (default: 64)")
    parser.add_argument("--precision", choices=list(PRECISION_OVERRIDES), default="saved",
                        help="inference precision: saved (default: as trained, with or without --cpu-bf16), fp32, "
                             "bf16 (--cpu-bf16), int8 (quantized at load time; docs/inference.md)")


def resolve_model(args) -> None:
    """args.prep and args.checkpoint from --work, or as given (both then)."""
    if args.work is not None:
        if args.prep is not None or args.checkpoint is not None:
            fail("--work is not allowed with --prep or --checkpoint: --work WORK stands for both")
        args.prep, args.checkpoint = chosen_model(args.work)
    elif args.prep is None or args.checkpoint is None:
        fail("no model: give --work WORK (a `fairseq-attn-gru run` directory), or --prep with --checkpoint")


def translator_from(args) -> Translator:
    for flag in ("beam", "batch_size"):
        if getattr(args, flag) <= 0:
            fail(f"--{flag.replace('_', '-')}={getattr(args, flag)} is not allowed: a positive integer")
    if not math.isfinite(args.lenpen):
        fail(f"--lenpen={args.lenpen} is not allowed: a finite number (1.0: fairseq's default)")
    return Translator(args.prep, args.checkpoint, args.precision, args.beam, args.lenpen, args.batch_size)


def evaluate_main(argv=None):
    parser = argparse.ArgumentParser(prog="fairseq-attn-gru evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--test", nargs="+", default=[], metavar="PREFIX",
                        help="test sets: each PREFIX.SRC is translated and scored against PREFIX.TGT")
    parser.add_argument("--src", default=None, help="one raw source file (with --ref) instead of --test")
    parser.add_argument("--ref", default=None, help="its raw reference, line-aligned with --src")
    parser.add_argument("--out-dir", default=None,
                        help="where NAME.hyp.TGT and NAME.generate.log go (default: the checkpoint's directory)")
    parser.add_argument("--results", default=None, help="also write the scores to this json file")
    args = parser.parse_args(argv)
    if bool(args.src) != bool(args.ref):
        fail("--src and --ref go together: the source file and its reference")
    if not args.test and not args.src:
        fail("nothing to score: give --test PREFIX ... or --src FILE --ref FILE")
    resolve_model(args)
    prep = load_prep(args.prep)
    splits = [Split(Path(prefix).name, Path(prefix), "test") for prefix in args.test]
    pairs = {split.name: read_pair(split, prep["source_lang"], prep["target_lang"]) for split in splits}
    if args.src:  # checked before the model loads
        sources, references = read_text(args.src), read_text(args.ref)
        if len(sources) != len(references):
            fail(f"--src {args.src!r} has {len(sources)} lines but --ref {args.ref!r} has {len(references)}")
        pairs[Path(args.src).stem] = {prep["source_lang"]: sources, prep["target_lang"]: references}
    translator = translator_from(args)
    out_dir = Path(args.out_dir) if args.out_dir else checkpoint_paths(args.checkpoint)[0].parent
    results = {}
    for name, texts in pairs.items():
        results[name] = evaluate_lines(translator, texts[prep["source_lang"]], texts[prep["target_lang"]],
                                       out_dir / name)
        print(f"{name}: sacreBLEU {results[name]['sacrebleu']}  chrF {results[name]['chrf']}  "
              f"BLEU tok-lc {results[name]['bleu_tok_lc']}  ({results[name]['signature']})", flush=True)
    if args.results:
        Path(args.results).write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.results}")
    print(json.dumps(results))


def translate_main(argv=None):
    parser = argparse.ArgumentParser(prog="fairseq-attn-gru translate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--input", default="-", help="raw source text, one sentence per line (default: - = stdin)")
    parser.add_argument("--output", default="-", help="where the translations go (default: - = stdout)")
    args = parser.parse_args(argv)
    resolve_model(args)
    sources = text_lines(sys.stdin.buffer.read(), "stdin") if args.input == "-" else read_text(args.input)
    if args.output != "-" and Path(args.output).resolve() in (Path(args.input).resolve(),):
        fail(f"--output {args.output!r} is the input file: it would be overwritten")
    translator = translator_from(args)
    translations = []
    for start in range(0, len(sources), CHUNK):
        translations += translator.translate(sources[start:start + CHUNK], first_line=start + 1)
        if len(sources) > CHUNK:
            print(f"translated {len(translations):,} of {len(sources):,} lines", file=sys.stderr, flush=True)
    if args.output == "-":
        sys.stdout.write("".join(line + "\n" for line in translations))
    else:
        temporary = Path(args.output + ".tmp")
        write_text(temporary, translations)
        os.replace(temporary, args.output)

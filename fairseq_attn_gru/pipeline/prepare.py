"""Prepare a language pair's raw text for fairseq: check -> clean -> learn subwords -> encode -> binarize.

    fairseq-attn-gru prepare --source-lang en --target-lang fr --data DIR --out WORK/prep
    fairseq-attn-gru prepare --source-lang en --target-lang fr --train PREFIX --valid PREFIX --out WORK/prep

--data DIR takes Multi30k's file names (DIR/train.SRC, DIR/val.SRC, ...); --train/--valid take any file prefixes,
as fairseq-preprocess does (PREFIX.SRC and PREFIX.TGT, line-aligned). Every file is checked before anything is
written (corpus.py: UTF-8, BOM, CRLF, line counts). The training pairs are cleaned (clean.py, counts printed), the
subword model(s) learned on them (text.py), train and valid encoded into OUT/text/ and binarized into OUT/bin/
(fairseq-preprocess: train, valid). OUT/prep.json records the settings, the cleaning counts and a sha256 of every
input file; ``evaluate`` and ``translate`` read it to treat new text the same way.

The work goes into OUT.partial/ and is renamed to OUT at the end, so OUT is always a finished preparation. Run again,
it reuses OUT when the settings and inputs are the same, and otherwise refuses with one line naming what changed
(prepare into another --out, or delete OUT).
"""
import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Dict, List, Optional

from ..recipes.cli import fail, run_tool
from .clean import Limits, clean_pairs
from .corpus import Split, check_languages, check_splits, fingerprint, layout_splits, prefix_splits, read_pair, \
    write_text
from .text import PROCESSINGS, VOCABS, TextProcessing, require_text_tools, text_processing

SETTINGS_FILE = "prep.json"
#: the text processing, vocabulary and sizes kept after measuring both ways on val (docs/pipeline.md)
DEFAULT_PROCESSING, DEFAULT_VOCAB = "sentencepiece", "joint"
DEFAULT_SIZES = {"moses-bpe": 10000, "sentencepiece": 10000}
#: settings compared on a rerun (with the inputs' sha256): any other value would change what is prepared
COMPARED = ("source_lang", "target_lang", "text_processing", "vocab", "subword_size", "max_words", "max_length_ratio",
            "limit")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The corpus and its languages: shared by prepare and run."""
    parser.add_argument("--source-lang", required=True, help="source language code (file suffix), e.g. en")
    parser.add_argument("--target-lang", required=True, help="target language code (file suffix), e.g. fr")
    parser.add_argument("--data", default=None,
                        help="a directory in Multi30k's layout: train.*, val.* and test_*.* (every test_* pair is a "
                             "test set); or give --train/--valid (and --test) instead")
    parser.add_argument("--train", default=None, help="training files' prefix: PREFIX.SRC and PREFIX.TGT")
    parser.add_argument("--valid", default=None, help="validation files' prefix (tuning and checkpoint choice)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N lines of every split (smoke runs)")


def add_processing_arguments(parser: argparse.ArgumentParser) -> None:
    """How text becomes subwords, and the cleaning: shared by prepare and run."""
    parser.add_argument("--text-processing", choices=PROCESSINGS, default=DEFAULT_PROCESSING,
                        help="moses-bpe: sacremoses tokenisation + subword-nmt BPE (languages sacremoses knows); "
                             "sentencepiece: a SentencePiece model on raw text (any language) (default: %(default)s)")
    parser.add_argument("--vocab", choices=VOCABS, default=DEFAULT_VOCAB,
                        help="joint: one subword model and dictionary for both languages; separate: one each "
                             "(default: %(default)s)")
    parser.add_argument("--bpe-merges", type=int, default=None,
                        help=f"moses-bpe: BPE merge operations (default: {DEFAULT_SIZES['moses-bpe']})")
    parser.add_argument("--sentencepiece-vocab", type=int, default=None,
                        help=f"sentencepiece: pieces per model (default: {DEFAULT_SIZES['sentencepiece']})")
    parser.add_argument("--max-words", type=int, default=Limits.max_words,
                        help="cleaning: drop training pairs with a side longer than this many words "
                             "(default: %(default)s)")
    parser.add_argument("--max-length-ratio", type=float, default=Limits.max_ratio,
                        help="cleaning: drop training pairs whose longer side has more than this many times the "
                             "words of the other; 0: no ratio check (default: %(default)s)")


def check_arguments(args) -> None:
    """Values that cannot work, refused in one line each before anything is read or written."""
    check_languages(args.source_lang, args.target_lang)
    if args.data is None and (args.train is None or args.valid is None):
        fail("give --data DIR (Multi30k's file names) or both --train PREFIX and --valid PREFIX")
    if args.data is not None and (args.train is not None or args.valid is not None):
        fail("--data and --train/--valid are not allowed together: --data DIR names the splits itself")
    for flag in ("limit", "bpe_merges", "sentencepiece_vocab", "max_words"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            fail(f"--{flag.replace('_', '-')}={value} is not allowed: a positive integer")
    if not args.max_length_ratio >= 0:  # also refuses nan
        fail(f"--max-length-ratio={args.max_length_ratio} is not allowed: 0 (off) or a positive number")
    other = {"moses-bpe": "sentencepiece_vocab", "sentencepiece": "bpe_merges"}[args.text_processing]
    if getattr(args, other) is not None:
        fail(f"--{other.replace('_', '-')} is not allowed with --text-processing {args.text_processing}: it sizes "
             f"the {'sentencepiece' if other == 'sentencepiece_vocab' else 'moses-bpe'} models")
    processing = text_processing(".", args.text_processing, (args.source_lang, args.target_lang), args.vocab, 1)
    processing.check_language(args.source_lang, "--source-lang")
    processing.check_language(args.target_lang, "--target-lang")
    require_text_tools(args.text_processing)


def subword_size(args) -> int:
    given = args.bpe_merges if args.text_processing == "moses-bpe" else args.sentencepiece_vocab
    return given or DEFAULT_SIZES[args.text_processing]


def data_splits(args, tests=()) -> List[Split]:
    """The splits the arguments name: --data's layout, or --train/--valid plus ``tests`` (prefixes)."""
    if args.data is not None:
        return layout_splits(Path(args.data), args.source_lang, args.target_lang)
    return prefix_splits(args.train, args.valid, tests)


def requested_settings(args, splits: List[Split]) -> dict:
    train, valid = (next(split for split in splits if split.role == role) for role in ("train", "valid"))
    return {
        "source_lang": args.source_lang, "target_lang": args.target_lang, "text_processing": args.text_processing,
        "vocab": args.vocab, "subword_size": subword_size(args), "max_words": args.max_words,
        "max_length_ratio": args.max_length_ratio, "limit": args.limit,
        "inputs": {split.role: {lang: {"path": str(split.path(lang).resolve()), "sha256": fingerprint(split.path(lang))}
                                for lang in (args.source_lang, args.target_lang)} for split in (train, valid)},
    }


def differences(before: dict, now: dict) -> List[str]:
    """What makes ``now`` another preparation than ``before``: each a few words."""
    changed = [f"{name} {before.get(name)!r} then, {now[name]!r} now" for name in COMPARED
               if before.get(name) != now[name]]
    for role, files in now["inputs"].items():
        for lang, file in files.items():
            if before.get("inputs", {}).get(role, {}).get(lang, {}).get("sha256") != file["sha256"]:
                changed.append(f"the {role} .{lang} file's content ({file['path']})")
    return changed


def load_prep(prep_dir) -> dict:
    """prep.json of a finished preparation, or one line saying what the directory is not."""
    path = Path(prep_dir) / SETTINGS_FILE
    if not path.is_file():
        fail(f"--prep {str(prep_dir)!r} is not a finished `fairseq-attn-gru prepare` output ({SETTINGS_FILE} is "
             "missing)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        fail(f"{str(path)!r} is damaged (not JSON): prepare again into a new directory")


def processing_of(prep_dir, prep: dict) -> TextProcessing:
    """The prepared directory's text processing, its model files checked."""
    processing = text_processing(prep_dir, prep["text_processing"], (prep["source_lang"], prep["target_lang"]),
                                 prep["vocab"], prep["subword_size"])
    for name in processing.model_files():
        if not (Path(prep_dir) / name).is_file():
            fail(f"--prep {str(prep_dir)!r} has lost its subword model {name}: prepare again")
    return processing


def reuse_or_refuse(out: Path, settings: dict) -> bool:
    """True when ``out`` already holds this preparation; one line when it holds another or something else."""
    if (out / SETTINGS_FILE).is_file():
        changed = differences(load_prep(out), settings)
        if changed:
            fail(f"{str(out)!r} was prepared with other settings or input ({'; '.join(changed[:3])}"
                 f"{f'; {len(changed) - 3} more' if len(changed) > 3 else ''}): prepare into another directory, or "
                 "delete it to start over")
        return True
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        fail(f"{str(out)!r} exists and is not a `fairseq-attn-gru prepare` output: name a new or empty directory")
    return False


def binarize(work: Path, source_lang: str, target_lang: str, joined: bool) -> Dict[str, int]:
    """fairseq-preprocess of work/text/{train,valid} into work/bin; returns each dictionary's size."""
    run_tool("fairseq-preprocess", [
        "--source-lang", source_lang, "--target-lang", target_lang, *(["--joined-dictionary"] if joined else []),
        "--trainpref", work / "text" / "train", "--validpref", work / "text" / "valid",
        "--destdir", work / "bin", "--workers", str(min(2, os.cpu_count() or 1))], work / "preprocess.log")
    return {lang: sum(1 for _ in open(work / "bin" / f"dict.{lang}.txt", encoding="utf-8"))
            for lang in (source_lang, target_lang)}


def prepare(args, splits: Optional[List[Split]] = None) -> dict:
    """Check, clean, learn, encode, binarize into args.out (module docstring); returns prep.json's content.
    ``splits``: the caller's ``data_splits`` (run's, with its test prefixes), so their notes are printed once."""
    check_arguments(args)
    out = Path(args.out)
    splits = data_splits(args) if splits is None else splits
    languages = (args.source_lang, args.target_lang)
    print(f"[1/5] checking {len(splits)} splits x {'/'.join(languages)}", flush=True)
    lines = check_splits(splits, *languages)
    settings = requested_settings(args, splits)
    if reuse_or_refuse(out, settings):
        print(f"{out} is prepared with these settings and inputs: reusing it", flush=True)
        return load_prep(out)

    work = out.with_name(out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)  # an interrupted earlier run's
    (work / "text").mkdir(parents=True)
    train, valid = (next(split for split in splits if split.role == role) for role in ("train", "valid"))
    raw = read_pair(train, *languages, limit=args.limit)
    sources, targets, counts = clean_pairs(raw[args.source_lang], raw[args.target_lang],
                                           Limits(args.max_words, args.max_length_ratio))
    print(f"[2/5] cleaning {counts['pairs']:,} training pairs: kept {counts['kept']:,}; dropped "
          + ", ".join(f"{counts[reason]} {reason.replace('_', ' ')}" for reason in counts if reason not in
                      ("pairs", "kept")), flush=True)
    if not sources:
        fail(f"no training pair is left after cleaning ({counts}): check --max-words and --max-length-ratio")
    cleaned = {args.source_lang: sources, args.target_lang: targets}

    processing = text_processing(work, args.text_processing, languages, args.vocab, subword_size(args))
    print(f"[3/5] learning {args.vocab} {processing.name} ({processing.size_flag} {processing.size}) on the cleaned "
          f"training text -> {', '.join(processing.model_files())}", flush=True)
    processing.learn(cleaned)

    print(f"[4/5] encoding train and valid -> {out / 'text'}", flush=True)
    texts = {"train": cleaned, "valid": read_pair(valid, *languages, limit=args.limit)}
    for role, by_lang in texts.items():
        for lang, text in by_lang.items():
            write_text(work / "text" / f"{role}.{lang}", processing.encode(text, lang))

    print(f"[5/5] fairseq-preprocess ({args.vocab} dictionary) -> {out / 'bin'}", flush=True)
    dictionary = binarize(work, *languages, joined=args.vocab == "joint")
    prep = {**settings, "lines": lines, "cleaning": counts, "dictionary": dictionary,
            "model_files": processing.model_files()}
    (work / SETTINGS_FILE).write_text(json.dumps(prep, indent=2) + "\n", encoding="utf-8")
    if out.is_dir():
        out.rmdir()  # empty (reuse_or_refuse): the rename needs its place
    os.replace(work, out)
    print(f"prepared {out}: dictionaries {dictionary}", flush=True)
    return prep


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fairseq-attn-gru prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser)
    add_processing_arguments(parser)
    parser.add_argument("--out", required=True, help="the prepared directory (made; see above)")
    return parser


def main(argv=None):
    prepare(build_parser().parse_args(argv))

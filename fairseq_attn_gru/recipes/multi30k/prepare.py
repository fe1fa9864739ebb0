"""Prepare Multi30k German->English for fairseq: Moses normalise + tokenise, one joint BPE, binarize.

    python scripts/multi30k/prepare.py --data /path/to/multi30k --out multi30k_work/prep

--data holds the raw splits train, val, test_2016_flickr, test_2017_flickr as <split>.de / <split>.en.
--out gets bpe.codes (the BPE model, reused by evaluate.py on new text), bpe/<split>.<lang> (what fairseq
reads) and bin/ (fairseq-preprocess output: train, valid, test = test_2016_flickr, test1 = test_2017_flickr).
Every run redoes every step.
"""
import argparse
import shutil
from pathlib import Path

from ..cli import fail, run_tool
from .text import BPE_CODES, apply_bpe, learn_joint_bpe, read_lines, require_text_tools, tokenize, write_lines

LANGS = ("de", "en")
TRAIN, VALID, TESTS = "train", "val", ("test_2016_flickr", "test_2017_flickr")
SPLITS = (TRAIN, VALID, *TESTS)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="directory with the raw Multi30k files")
    parser.add_argument("--out", required=True, help="output directory (created)")
    parser.add_argument("--bpe-merges", type=int, default=10000, help="BPE merge operations (default: 10000)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N lines of each split (tests)")
    args = parser.parse_args(argv)
    if args.bpe_merges <= 0:
        fail(f"--bpe-merges={args.bpe_merges} is not allowed: a positive integer")
    if args.limit is not None and args.limit <= 0:
        fail(f"--limit={args.limit} is not allowed: a positive integer")
    return args


def check_data(data: Path) -> None:
    if not data.is_dir():
        fail(f"--data {str(data)!r} is not a directory")
    for split in SPLITS:
        for lang in LANGS:
            if not (data / f"{split}.{lang}").is_file():
                fail(f"missing split file {str(data / f'{split}.{lang}')!r} (need {', '.join(SPLITS)} x .de/.en)")


def binarize(out: Path) -> None:
    bin_dir = out / "bin"
    shutil.rmtree(bin_dir, ignore_errors=True)  # fairseq-preprocess refuses to overwrite a dictionary
    bpe = out / "bpe"
    run_tool("fairseq-preprocess", [
        "--source-lang", "de", "--target-lang", "en", "--joined-dictionary",
        "--trainpref", bpe / TRAIN, "--validpref", bpe / VALID, "--testpref", ",".join(str(bpe / t) for t in TESTS),
        "--destdir", bin_dir, "--workers", "2"], out / "preprocess.log")


def main(argv=None):
    args = parse_args(argv)
    require_text_tools()
    data, out = Path(args.data), Path(args.out)
    check_data(data)
    (out / "bpe").mkdir(parents=True, exist_ok=True)

    print(f"[1/4] normalising + tokenising {len(SPLITS)} splits x {'/'.join(LANGS)} with sacremoses", flush=True)
    tokenized = {(split, lang): tokenize(read_lines(data / f"{split}.{lang}", args.limit), lang)
                 for split in SPLITS for lang in LANGS}

    codes = out / BPE_CODES
    print(f"[2/4] learning one joint BPE model ({args.bpe_merges} merges) on train.de + train.en -> {codes}",
          flush=True)
    learn_joint_bpe([tokenized[TRAIN, lang] for lang in LANGS], codes, args.bpe_merges)

    print(f"[3/4] applying BPE to every split -> {out / 'bpe'}", flush=True)
    for (split, lang), lines in tokenized.items():
        write_lines(out / "bpe" / f"{split}.{lang}", apply_bpe(lines, codes))

    print(f"[4/4] fairseq-preprocess (joined dictionary) -> {out / 'bin'}", flush=True)
    binarize(out)
    print(f"done: {out / 'bin'} (train, valid, test = test_2016_flickr, test1 = test_2017_flickr)")


if __name__ == "__main__":  # python -m fairseq_attn_gru.recipes.multi30k.prepare ...
    from ..cli import run_main

    raise SystemExit(run_main(main))

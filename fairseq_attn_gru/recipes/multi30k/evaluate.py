"""Translate raw German text with a Multi30k checkpoint and score it with sacreBLEU against raw English.

    python scripts/multi30k/evaluate.py --prep multi30k_work/prep --checkpoint CKPT --src x.de --ref x.en

The source and reference get prepare.py's exact treatment (same functions, same --prep/bpe.codes and
dictionary); fairseq-generate translates with beam search and --remove-bpe; the hypotheses are Moses-
detokenised and scored against the untouched reference lines. Writes PREFIX.hyp.en (detokenised
hypotheses) and PREFIX.generate.log (default PREFIX: the checkpoint's directory / the source file's stem)
and prints {"sacrebleu", "signature"} as JSON.
"""
import argparse
import json
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence

from ..cli import USER_DIR, fail, require_file, run_tool
from ..scoring import Translation, parse_generate_output, sacrebleu_score
from .text import BPE_CODES, apply_bpe, detokenize, read_lines, tokenize, write_lines


def check_prep(prep_dir) -> Path:
    prep_dir = Path(prep_dir)
    for needed in (BPE_CODES, "bin/dict.de.txt", "bin/dict.en.txt"):
        if not (prep_dir / needed).is_file():
            fail(f"--prep {str(prep_dir)!r} is not a prepare.py output: {needed} is missing")
    return prep_dir


def translate(prep_dir, checkpoint, sources: List[str], references: List[str], log_prefix, beam: int = 5,
              batch_size: int = 64, generate_flags: Sequence[str] = ("--remove-bpe",)) -> List[Translation]:
    """Raw German lines -> fairseq-generate's translations, one per line, in line order.

    The lines are tokenised and BPE'd like the training data and binarized with its dictionary;
    S-/T-/H- text stays tokenised (and BPE'd unless generate_flags has --remove-bpe).
    """
    prep_dir, log_prefix = check_prep(prep_dir), str(log_prefix)
    with tempfile.TemporaryDirectory() as tmp:
        for lang, lines in (("de", sources), ("en", references)):
            write_lines(Path(tmp) / f"text.{lang}", apply_bpe(tokenize(lines, lang), prep_dir / BPE_CODES))
        run_tool("fairseq-preprocess", [
            "--source-lang", "de", "--target-lang", "en", "--testpref", Path(tmp) / "text",
            "--srcdict", prep_dir / "bin/dict.de.txt", "--tgtdict", prep_dir / "bin/dict.en.txt",
            "--destdir", Path(tmp) / "bin", "--workers", "1"], log_prefix + ".preprocess.log")
        output = run_tool("fairseq-generate", [
            Path(tmp) / "bin", "--user-dir", USER_DIR, "--task", "translation", "--source-lang", "de",
            "--target-lang", "en", "--path", checkpoint, "--gen-subset", "test", "--beam", beam,
            "--batch-size", batch_size, "--cpu", *generate_flags], log_prefix + ".generate.log")
    translations = parse_generate_output(output)
    if [t.id for t in translations] != list(range(len(sources))):
        fail(f"fairseq-generate translated {len(translations)} of {len(sources)} lines; see {log_prefix}.generate.log")
    return translations


def evaluate(prep_dir, checkpoint, src, ref, beam: int = 5, batch_size: int = 64, out_prefix=None,
             limit: Optional[int] = None) -> dict:
    """sacreBLEU of the checkpoint's translation of raw file src against raw file ref: {"sacrebleu", "signature"}."""
    require_file(checkpoint, "--checkpoint")
    sources, references = read_lines(require_file(src, "--src"), limit), read_lines(require_file(ref, "--ref"), limit)
    if len(sources) != len(references):
        fail(f"--src {str(src)!r} has {len(sources)} lines but --ref {str(ref)!r} has {len(references)}")
    out_prefix = Path(out_prefix or Path(checkpoint).parent / Path(src).stem)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    translations = translate(prep_dir, checkpoint, sources, references, out_prefix, beam, batch_size)
    hypotheses = detokenize([t.hypothesis for t in translations], "en")
    write_lines(f"{out_prefix}.hyp.en", hypotheses)
    score = sacrebleu_score(hypotheses, references)
    return {"sacrebleu": score["score"], "signature": score["signature"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prep", required=True, help="prepare.py's --out directory (bpe.codes, bin/dict.*.txt)")
    parser.add_argument("--checkpoint", required=True, help="a fairseq checkpoint, e.g. SAVE_DIR/checkpoint_best.pt")
    parser.add_argument("--src", required=True, help="raw German text, one sentence per line")
    parser.add_argument("--ref", required=True, help="raw English reference, line-aligned with --src")
    parser.add_argument("--beam", type=int, default=5, help="beam size (default: 5)")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per batch (default: 64)")
    parser.add_argument("--out-prefix", default=None, help="output files prefix (default: CKPT dir / SRC stem)")
    args = parser.parse_args(argv)
    for flag in ("beam", "batch_size"):
        if getattr(args, flag) <= 0:
            fail(f"--{flag.replace('_', '-')}={getattr(args, flag)} is not allowed: a positive integer")
    result = evaluate(args.prep, args.checkpoint, args.src, args.ref, args.beam, args.batch_size, args.out_prefix)
    print(f"sacreBLEU {result['sacrebleu']}  ({result['signature']})")
    print(json.dumps(result))


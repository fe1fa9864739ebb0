#!/usr/bin/env python
"""Which text processing the pipeline keeps by default, measured on val: Moses + BPE against SentencePiece, joint or
separate vocabularies, in each Multi30k direction.

    python benchmarks/text_processing.py --data /path/to/multi30k --work tp_work [--directions en-de,en-fr,en-cs]
        [--configs moses-bpe:joint,sentencepiece:joint] [--epochs 4] [--results results/text_processing.json]

Each configuration is prepared (`fairseq-attn-gru prepare`, 10,000 BPE merges or SentencePiece pieces) and trained
with the pipeline's defaults for the same number of epochs (not minutes: the comparison must not depend on what
else the machine runs; the minutes are recorded beside it), then checkpoint_best.pt is scored on val (sacreBLEU,
beam 5). Test sets are not touched. The results file is rewritten after every configuration, and a rerun resumes:
the pipeline reuses finished preparations and trainings. The last lines say which configuration won in how many
directions; prepare.py's DEFAULT_PROCESSING and DEFAULT_VOCAB follow that count (docs/pipeline.md).
"""
import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from fairseq_attn_gru.pipeline import prepare
from fairseq_attn_gru.pipeline.select_checkpoint import choose_checkpoint
from fairseq_attn_gru.pipeline.train import resolve_device, resolve_precision, train
from fairseq_attn_gru.recipes.cli import run_main
from fairseq_attn_gru.recipes.machine import machine_description

SIZE_FLAGS = {"moses-bpe": "--bpe-merges", "sentencepiece": "--sentencepiece-vocab"}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the raw Multi30k files (train.en, val.fr, ...)")
    parser.add_argument("--work", required=True, help="working directory: <direction>/<configuration>/")
    parser.add_argument("--directions", default="en-de,en-fr,en-cs", help="SRC-TGT,... (default: %(default)s)")
    parser.add_argument("--configs", default="moses-bpe:joint,sentencepiece:joint",
                        help="PROCESSING:VOCAB,... (default: %(default)s)")
    parser.add_argument("--size", type=int, default=10000, help="BPE merges / SentencePiece pieces per model")
    parser.add_argument("--epochs", type=int, default=4, help="training epochs per configuration (default: 4)")
    parser.add_argument("--precision", default="auto", help="as `fairseq-attn-gru train` (default: auto)")
    parser.add_argument("--results", default="results/text_processing.json")
    parser.add_argument("--limit", type=int, default=None, help="first N lines of every split (smoke runs)")
    return parser.parse_args(argv), parser


def main(argv=None):
    args, parser = parse_args(argv)
    directions = [tuple(d.split("-")) for d in args.directions.split(",")]
    configs = [tuple(c.split(":")) for c in args.configs.split(",")]
    device = resolve_device("auto")
    precision = resolve_precision(args.precision, device)  # once: every configuration trains the same way
    results_path = Path(args.results)
    results = {"command": " ".join(["python", "benchmarks/text_processing.py", *(argv or sys.argv[1:])]),
               "cpu": machine_description(), "epochs": args.epochs, "precision": precision, "runs": {}}
    for source, target in directions:
        for processing, vocab in configs:
            name, label = f"{source}-{target}", f"{processing}:{vocab}"
            root = Path(args.work) / name / f"{processing}_{vocab}"
            print(f"== {name} {label}", flush=True)
            prep_args = ["--source-lang", source, "--target-lang", target, "--data", args.data, "--out",
                         str(root / "prep"), "--text-processing", processing, "--vocab", vocab,
                         SIZE_FLAGS[processing], str(args.size), *(["--limit", str(args.limit)] if args.limit else [])]
            prepared = prepare.prepare(prepare.build_parser().parse_args(prep_args))
            start = time.time()
            info = train(root / "prep", root / "main", ["--max-epoch", str(args.epochs)], precision=precision,
                         echo_prefix=f"{name} {label}", device=device)
            _, selection = choose_checkpoint(root / "prep", root / "main", average_last=0, label=f"{name} {label}")
            results["runs"].setdefault(name, {})[label] = {
                "val_sacrebleu": selection["val_sacrebleu"]["checkpoint_best.pt"], "epochs": info["epochs"],
                "train_minutes": info["train_minutes"], "dictionary": prepared["dictionary"],
                "wall_minutes_this_call": round((time.time() - start) / 60, 2)}
            results_path.parent.mkdir(parents=True, exist_ok=True)
            results_path.write_text(json.dumps(results, indent=2) + "\n")
    wins = Counter(max(runs, key=lambda label: runs[label]["val_sacrebleu"]) for runs in results["runs"].values())
    results["wins"] = dict(wins)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    for name, runs in results["runs"].items():
        print(f"{name}: " + "  ".join(f"{label} {run['val_sacrebleu']}" for label, run in runs.items()))
    print(f"wins on val: {dict(wins)}; wrote {results_path}")


if __name__ == "__main__":
    raise SystemExit(run_main(main))

#!/usr/bin/env python
"""Training tokens/s with 1 rank against NPROC ranks of scripts/train_distributed.sh (torchrun), same global batch.

Both runs train the same model on the toy `translate` task for the same number of updates; 1 rank uses
--update-freq NPROC so each update sees the same number of sentences. The figure is fairseq's own `wps`
(target tokens per second, averaged over the `train_inner` log lines after the first): fairseq sums the logging
outputs of all ranks before it logs, so the distributed run's wps is already the global rate. Measure on a quiet
machine: on 2 cores shared with another training (load 4-5) one run gave 386 tok/s for 1 rank (2 OpenMP threads
fighting the other load) against 12,243 for 2 ranks of 1 thread each, a ratio that says nothing about either.

    python benchmarks/distributed.py [--nproc 2] [--updates 60]
"""
import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from fairseq_attn_gru.recipes.cli import FAIRSEQ_BIN as BIN
from fairseq_attn_gru.recipes.cli import USER_DIR

REPO = Path(__file__).resolve().parents[1]


def train_flags(updates, save_dir):
    return ["--user-dir", USER_DIR, "--task", "toy_translation", "--toy-rule", "translate",
            "--toy-max-len", "30", "--arch", "gru_attn_general", "--optimizer", "adam", "--lr", "0.003",
            "--max-tokens", "2000", "--max-update", str(updates), "--seed", "1", "--log-format", "simple",
            "--log-interval", "10", "--disable-validation", "--no-save", "--save-dir", str(save_dir)]


def words_per_second(log):
    """wps of the last `train_inner` lines, skipping the first (warm-up)."""
    values = [float(v) for v in re.findall(r"train_inner.*?wps=([0-9.]+)", log)]
    if len(values) < 2:
        sys.exit(f"error: no train_inner wps lines in the training log:\n{log[-2000:]}")
    later = values[1:]
    return sum(later) / len(later)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nproc", type=int, default=2, help="ranks of the distributed run (default: 2)")
    parser.add_argument("--updates", type=int, default=60, help="updates per run (default: 60)")
    parser.add_argument("--out", default="bench_out/distributed.json")
    args = parser.parse_args()
    if args.nproc < 2:
        sys.exit(f"error: --nproc={args.nproc} is not allowed: 2 or more")

    single = subprocess.run([str(BIN / "fairseq-train"), "--cpu", *train_flags(args.updates, "/tmp/dist_bench_1"),
                             "--update-freq", str(args.nproc)], capture_output=True, text=True)
    if single.returncode:
        sys.exit(f"error: single-process run failed:\n{single.stderr[-2000:]}")
    multi = subprocess.run(["bash", str(REPO / "scripts" / "train_distributed.sh"), str(args.nproc),
                            *train_flags(args.updates, "/tmp/dist_bench_n")], capture_output=True, text=True,
                           env=dict(os.environ, PYTHON=sys.executable))
    if multi.returncode:
        sys.exit(f"error: distributed run failed:\n{multi.stderr[-2000:]}")
    one_rank = words_per_second(single.stdout + single.stderr)
    n_ranks = words_per_second(multi.stdout + multi.stderr)
    results = {"device": "cpu", "nproc": args.nproc, "cores": os.cpu_count(), "updates": args.updates,
               "one_rank_tok_s": round(one_rank), f"{args.nproc}_ranks_tok_s": round(n_ranks),
               "speedup": round(n_ranks / one_rank, 2)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

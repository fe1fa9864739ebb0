"""Average the parameters of a run's last N epoch checkpoints into one checkpoint.

    python scripts/multi30k/average.py SAVE_DIR [--last 5] [--out SAVE_DIR/checkpoint_avg5.pt]

The same arithmetic as fairseq's scripts/average_checkpoints.py, which is not part of fairseq's pip package.
SAVE_DIR needs fairseq's epoch checkpoints (checkpoint<EPOCH>.pt: train with --keep-last-epochs N rather than
--no-epoch-checkpoints). The output keeps the newest checkpoint's config and training state, with the mean of
every parameter in place of its own, so fairseq-generate and evaluate.py load it like any checkpoint.
"""
import argparse
import re
from pathlib import Path
from typing import List

import torch
from ..cli import fail

from ... import fairseq_fixes  # noqa: F401  (the safe globals torch.load needs for fairseq checkpoints)
from fairseq import checkpoint_utils

EPOCH_CHECKPOINT = re.compile(r"checkpoint(\d+)\.pt")


def epoch_checkpoints(save_dir) -> List[Path]:
    """save_dir's checkpoint<EPOCH>.pt files, oldest epoch first."""
    by_epoch = sorted((int(match.group(1)), path) for path in Path(save_dir).glob("checkpoint*.pt")
                      if (match := EPOCH_CHECKPOINT.fullmatch(path.name)))
    return [path for _, path in by_epoch]


def average_checkpoints(paths: List[Path], out_path) -> Path:
    """Write a checkpoint whose parameters are the element-wise mean of those in `paths`."""
    sums, state = {}, None
    for path in paths:  # one at a time: a checkpoint with optimizer state is 3x the model
        # torch.load as written, not fairseq's load_checkpoint_to_cpu: that turns cfg into an OmegaConf object,
        # which a checkpoint must not hold to load with weights_only=True
        state = torch.load(path, map_location="cpu", weights_only=True)
        if sums and state["model"].keys() != sums.keys():
            fail(f"{str(path)!r} has other parameters than {str(paths[0])!r}: not checkpoints of one model")
        for name, tensor in state["model"].items():
            # float64 sums: the mean of a few float32 values then differs from the exact mean by one rounding
            sums[name] = sums.get(name, 0) + tensor.double()
    state["model"] = {name: (total / len(paths)).to(state["model"][name].dtype) for name, total in sums.items()}
    checkpoint_utils.torch_persistent_save(state, str(out_path))
    return Path(out_path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("save_dir", help="fairseq-train's --save-dir with epoch checkpoints")
    parser.add_argument("--last", type=int, default=5, help="how many of the newest epochs to average (default: 5)")
    parser.add_argument("--out", default=None, help="output checkpoint (default: SAVE_DIR/checkpoint_avgN.pt)")
    args = parser.parse_args(argv)
    if args.last < 1:
        fail(f"--last={args.last} is not allowed: a positive integer")
    paths = epoch_checkpoints(args.save_dir)[-args.last:]
    if len(paths) < args.last:
        fail(f"{args.save_dir!r} holds {len(paths)} epoch checkpoints (checkpoint<EPOCH>.pt), fewer than "
             f"--last={args.last}; train with --keep-last-epochs {args.last}")
    out = average_checkpoints(paths, args.out or Path(args.save_dir) / f"checkpoint_avg{args.last}.pt")
    print(f"averaged {', '.join(path.name for path in paths)} into {out}")


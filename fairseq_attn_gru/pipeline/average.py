"""Average the parameters of a run's last N epoch checkpoints into one checkpoint.

    fairseq-attn-gru average SAVE_DIR [--last 5] [--out SAVE_DIR/checkpoint_avg5.pt]

The same arithmetic as fairseq's scripts/average_checkpoints.py, which is not part of fairseq's pip package.
SAVE_DIR needs fairseq's epoch checkpoints (checkpoint<EPOCH>.pt: train with --keep-last-epochs N rather than
--no-epoch-checkpoints). The output keeps the newest checkpoint's config and training state, with the mean of
every parameter in place of its own, so fairseq-generate and `fairseq-attn-gru evaluate` load it like any checkpoint.
"""
import argparse
import re
from pathlib import Path
from typing import List

import torch
from ..models.trained_on import checkpoint_differences
from ..recipes.cli import check_output, fail, write_output

from .. import fairseq_fixes  # noqa: F401  (the safe globals torch.load needs for fairseq checkpoints)

EPOCH_CHECKPOINT = re.compile(r"checkpoint(\d+)\.pt")


def epoch_checkpoints(save_dir) -> List[Path]:
    """save_dir's checkpoint<EPOCH>.pt files, oldest epoch first."""
    by_epoch = sorted((int(match.group(1)), path) for path in Path(save_dir).glob("checkpoint*.pt")
                      if (match := EPOCH_CHECKPOINT.fullmatch(path.name)))
    return [path for _, path in by_epoch]


def load_checkpoint(path) -> dict:
    """A fairseq checkpoint's state, read safely; a missing, damaged or foreign file is named in one line."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        fail(f"checkpoint {str(path)!r} does not exist")
    except Exception as error:  # a damaged file can make the unpickler fail in any way at all
        detail = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        fail(f"checkpoint {str(path)!r} is not a readable PyTorch checkpoint (truncated, corrupt or holding "
             f"objects that are not allowed: {detail[:300]})")
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict) or not state["model"]:
        fail(f"checkpoint {str(path)!r} is not a fairseq checkpoint (no 'model' parameters)")
    bad = [name for name, tensor in state["model"].items() if not isinstance(tensor, torch.Tensor)]
    if bad:
        fail(f"checkpoint {str(path)!r} is not a fairseq checkpoint ('model' entry {bad[0]!r} is not a tensor)")
    return state


def average_checkpoints(paths: List[Path], out_path) -> Path:
    """Write a checkpoint whose parameters are the element-wise mean of those in `paths`."""
    check_output(out_path, "the averaged checkpoint", inputs=paths)  # before the minutes of loading
    sums, state, first = {}, None, None
    for path in paths:  # one at a time: a checkpoint with optimizer state is 3x the model
        # torch.load as written, not fairseq's load_checkpoint_to_cpu: that turns cfg into an OmegaConf object,
        # which a checkpoint must not hold to load with weights_only=True
        state = load_checkpoint(path)
        if first is None:  # what the others are compared with, without its tensors
            first = {key: value for key, value in state.items() if key not in ("model", "last_optimizer_state")}
        differences = checkpoint_differences(first, state)
        if differences:  # another task, other dictionaries or architecture: a mean of them translates nothing
            fail(f"{str(path)!r} cannot be averaged with {str(paths[0])!r}: {'; '.join(differences)}")
        if sums and state["model"].keys() != sums.keys():
            fail(f"{str(path)!r} has other parameters than {str(paths[0])!r}: not checkpoints of one model")
        # before adding: tensors of other shapes could broadcast into a silently wrong mean
        wrong = next((name for name, total in sums.items() if state["model"][name].shape != total.shape), None)
        if wrong is not None:
            fail(f"{str(path)!r} has parameter {wrong!r} of shape {tuple(state['model'][wrong].shape)}, "
                 f"{str(paths[0])!r} of shape {tuple(sums[wrong].shape)}: not checkpoints of one model")
        for name, tensor in state["model"].items():
            # float64 sums: the mean of a few float32 values then differs from the exact mean by one rounding
            sums[name] = sums.get(name, 0) + tensor.double()
    state["model"] = {name: (total / len(paths)).to(state["model"][name].dtype) for name, total in sums.items()}
    return write_output(out_path, lambda temporary: torch.save(state, temporary), "the averaged checkpoint",
                        inputs=paths)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fairseq-attn-gru average", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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


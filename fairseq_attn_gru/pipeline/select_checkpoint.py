"""Pick the checkpoint that translates: checkpoint_best.pt or the average of the last epochs, whichever scores higher on
val (sacreBLEU, beam 5). Test sets play no part.

    fairseq-attn-gru select --prep WORK/prep --save-dir WORK/main [--average-last 5]

checkpoint_best.pt is the epoch with the lowest validation loss (fairseq-train's choice); the average
(average.py, ``checkpoint_avgN.pt``) of the last N epoch checkpoints is often better than any one of them. The
validation files are those ``prepare`` recorded in prep.json. Prints the choice; writes SAVE_DIR/selection.json
({"chosen", "val_sacrebleu": {candidate: score}}).
"""
import argparse
import json
from pathlib import Path
from typing import Tuple

from ..recipes.cli import fail
from .average import average_checkpoints, epoch_checkpoints
from .corpus import Split
from .evaluate import Translator, evaluate_split
from .prepare import load_prep
from .train import KEEP_LAST_EPOCHS

SELECTION_FILE = "selection.json"


def valid_split(prep: dict) -> Split:
    """The validation split ``prepare`` read (its files' paths are in prep.json)."""
    path = Path(prep["inputs"]["valid"][prep["source_lang"]]["path"])
    return Split("val", path.with_suffix(""), "valid")


def choose_checkpoint(prep_dir, save_dir, average_last: int = KEEP_LAST_EPOCHS, label: str = "main run"
                      ) -> Tuple[Path, dict]:
    """(path, {"chosen", "val_sacrebleu": {name: score}}). A run with fewer epochs averages those it has; a
    preparation of the first N lines (--limit) is scored on the first N validation lines."""
    save_dir = Path(save_dir)
    if not (save_dir / "checkpoint_best.pt").is_file():
        fail(f"{str(save_dir)!r} holds no checkpoint_best.pt: train first (fairseq-attn-gru train)")
    prep = load_prep(prep_dir)
    candidates = {"checkpoint_best.pt": save_dir / "checkpoint_best.pt"}
    epochs = epoch_checkpoints(save_dir)[-average_last:] if average_last > 1 else []
    if len(epochs) > 1:
        print(f"== {label}: averaging {', '.join(path.name for path in epochs)}", flush=True)
        averaged = average_checkpoints(epochs, save_dir / f"checkpoint_avg{len(epochs)}.pt")
        candidates[averaged.name] = averaged
    val = {name: evaluate_split(Translator(prep_dir, path), valid_split(prep), save_dir / f"val.{path.stem}",
                                prep.get("limit"))["sacrebleu"] for name, path in candidates.items()}
    chosen = max(val, key=val.get)
    print(f"== {label}: val sacreBLEU {val}; chose {chosen}", flush=True)
    selection = {"chosen": chosen, "val_sacrebleu": val}
    (save_dir / SELECTION_FILE).write_text(json.dumps(selection, indent=2) + "\n")
    return candidates[chosen], selection


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fairseq-attn-gru select", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prep", required=True, help="the `fairseq-attn-gru prepare` output the model was trained on")
    parser.add_argument("--save-dir", required=True, help="the training's checkpoints (fairseq-attn-gru train)")
    parser.add_argument("--average-last", type=int, default=KEEP_LAST_EPOCHS,
                        help="average the last N epoch checkpoints as a candidate; 0 or 1: no averaging "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)
    if args.average_last < 0:
        fail(f"--average-last={args.average_last} is not allowed: 0 (no averaging) or more")
    path, _ = choose_checkpoint(args.prep, args.save_dir, args.average_last, label=args.save_dir)
    print(path)

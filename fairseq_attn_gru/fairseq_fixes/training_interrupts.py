"""Our models only: Ctrl-C during fairseq-train ends with one line saying which checkpoint is intact, status 130.

Upstream: no fairseq issue (``KeyboardInterrupt`` goes up as a traceback through fairseq's training loop, though
the checkpoints on disk are fine). Written against fairseq-fixed 0.12.3.1 (``fairseq_cli.train.main``). Scope: a
run that trains one of this package's models (its ``--arch`` is ours, or one of our models is built); for any
other model the interrupt keeps fairseq's traceback.

In fairseq-train (a console tool), SIGINT prints ``interrupted: <save-dir>/checkpoint_last.pt from epoch E, update
U is intact; run the same command to resume`` (rank 0 only in a multi-process run) and exits with 130, the
status of a process stopped by SIGINT. A second Ctrl-C while this is written is ignored. A save that was under
way leaves no ``.tmp`` file (checkpoint_saving) and checkpoint_last.pt is the previous, whole one. In a Python
session the ``KeyboardInterrupt`` goes on, with the same line added as a note.
"""
import signal
import sys

from ..errors import running_fairseq_tool
from . import save_dir_errors
from .checkpoint_saving import last_checkpoint_state
from .patching import fairseq_train_modules, serving_ours, wrap_once

SCOPE = "ours"
INTERRUPTED_STATUS = 130  # 128 + SIGINT


def trains_ours(cfg) -> bool:
    from fairseq.models import ARCH_MODEL_REGISTRY

    from ..models.gru_attn import GRUAttnModel

    model_cfg = getattr(cfg, "model", None)
    arch = getattr(model_cfg, "_name", None) or getattr(model_cfg, "arch", None)
    model_class = ARCH_MODEL_REGISTRY.get(arch) if isinstance(arch, str) else None
    return serving_ours() or (isinstance(model_class, type) and issubclass(model_class, GRUAttnModel))


def interrupted_message(cfg) -> str:
    checkpoint = cfg.checkpoint
    if checkpoint.no_save:
        return "interrupted: nothing was saved (--no-save)"
    if checkpoint.no_last_checkpoints:
        return f"interrupted: the checkpoints in {checkpoint.save_dir} are whole (--no-last-checkpoints)"
    return (f"interrupted: {last_checkpoint_state(checkpoint.save_dir, checkpoint.checkpoint_suffix or '')}; "
            "run the same command to resume")


def one_line_on_interrupt(original):
    def main(cfg, *args, **kwargs):
        save_dir_errors._training_ours[0] = trains_ours(cfg)
        try:
            return original(cfg, *args, **kwargs)
        except KeyboardInterrupt as error:
            if not trains_ours(cfg):
                raise
            if running_fairseq_tool():
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # the line and the exit are not interrupted again
            message = interrupted_message(cfg)
            if not running_fairseq_tool():
                error.add_note(f"fairseq-attn-gru: {message}")
                raise
            sys.stdout.flush()
            if getattr(cfg.distributed_training, "distributed_rank", 0) == 0:
                print(message, file=sys.stderr, flush=True)
            raise SystemExit(INTERRUPTED_STATUS) from None
        finally:
            save_dir_errors._training_ours[0] = False

    return main


def apply() -> None:
    for module in fairseq_train_modules():
        wrap_once(module, "main", one_line_on_interrupt, fix=__name__)

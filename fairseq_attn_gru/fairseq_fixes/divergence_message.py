"""Our models only: fairseq's trainer stopping on NaN/inf gets one line that says what to do.

Upstream: no fairseq issue (fairseq raises ``FloatingPointError`` with a traceback, often with its NanDetector's
failure on top). Written against fairseq-fixed 0.12.3.1 (``Trainer.train_step``). Scope: this package's models,
and only the error fairseq's trainer raises (a ``FloatingPointError`` from anywhere else keeps its traceback).

"fairseq's trainer raises" is decided by where the ``FloatingPointError`` was raised: fairseq/trainer.py ("gradients
are Nan/Inf", "gradients are inconsistent between workers") or fairseq/optim/ (fp16's "Minimum loss scale
reached"). One raised by numpy or any other code that runs inside ``train_step`` (a criterion, a task, a hook) keeps
its traceback, though it passes through the same function.
"""
import os

from ..errors import explain, find_in_chain
from .patching import is_ours, wrap_once

SCOPE = "ours"


def raised_by_fairseq_training(error: BaseException) -> bool:
    """Whether ``error`` was raised (its innermost frame) in fairseq's trainer or optimizers."""
    import fairseq

    tb = error.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    path = os.path.realpath(tb.tb_frame.f_code.co_filename)
    package = os.path.realpath(os.path.dirname(fairseq.__file__))
    return path == os.path.join(package, "trainer.py") or path.startswith(os.path.join(package, "optim") + os.sep)


def explain_divergence(original):
    def train_step(self, *args, **kwargs):
        try:
            return original(self, *args, **kwargs)
        except Exception as error:  # fairseq's NanDetector may fail on top of the FloatingPointError
            diverged = find_in_chain(error, FloatingPointError)
            if diverged is not None and raised_by_fairseq_training(diverged) and is_ours(self.get_model()):
                explain(error, f"training diverged: {diverged} (NaN/inf loss or gradients); checkpoint_last/best "
                               "are the last good ones; try a lower --lr or --clip-norm")
            raise

    return train_step


def apply() -> None:
    from fairseq.trainer import Trainer

    wrap_once(Trainer, "train_step", explain_divergence, fix=__name__)

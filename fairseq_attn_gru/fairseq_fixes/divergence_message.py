"""Our models only: fairseq's trainer stopping on NaN/inf gets one line that says what to do.

Upstream: no fairseq issue (fairseq raises ``FloatingPointError`` with a traceback, often with its NanDetector's
failure on top). Written against fairseq-fixed 0.12.3.1 (``Trainer.train_step``). Scope: this package's models,
and only the error fairseq's trainer raises (a ``FloatingPointError`` from anywhere else keeps its traceback).
"""
from ..errors import explain, find_in_chain
from .patching import is_ours, wrap_once

SCOPE = "ours"


def explain_divergence(original):
    def train_step(self, *args, **kwargs):
        try:
            return original(self, *args, **kwargs)
        except Exception as error:  # fairseq's NanDetector may fail on top of the FloatingPointError
            diverged = find_in_chain(error, FloatingPointError)
            if diverged is not None and is_ours(self.get_model()):
                explain(error, f"training diverged: {diverged} (NaN/inf loss or gradients); checkpoint_last/best "
                               "are the last good ones; try a lower --lr or --clip-norm")
            raise

    return train_step


def apply() -> None:
    from fairseq.trainer import Trainer

    wrap_once(Trainer, "train_step", explain_divergence, fix=__name__)

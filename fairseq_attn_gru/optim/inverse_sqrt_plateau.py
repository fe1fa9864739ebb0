"""``--lr-scheduler inverse_sqrt_plateau``: fairseq's inverse square root schedule, shrunk when validation stalls.

Why: with ``inverse_sqrt`` alone the Multi30k recipe's validation loss stopped improving after epoch 19 while the
learning rate was still 0.00055; restarting epoch 22 from the same checkpoint with a quarter of it brought the
loss from 3.994 to 3.981 (docs/multi30k.md). fairseq's ``reduce_lr_on_plateau`` anneals, but keeps the rate
constant until then instead of decaying it. This schedule is both::

    lr(t) = factor · inverse_sqrt(t)      inverse_sqrt(t) = lr·t/W during warm-up (t < W), lr·sqrt(W/t) after

``factor`` starts at 1 and is multiplied by ``--lr-shrink`` each time ``--lr-patience`` validations in a row bring
no new best of the metric fairseq hands its schedulers: ``--best-checkpoint-metric`` (loss unless set; higher is
better with ``--maximize-best-checkpoint-metric``). The count starts again after each shrink. ``factor``, the best
value and the count are saved in the checkpoint, so a resumed run goes on where it stopped.
"""
import logging
from dataclasses import dataclass, field
from typing import Optional

from fairseq.optim.lr_scheduler import register_lr_scheduler
from fairseq.optim.lr_scheduler.inverse_square_root_schedule import (InverseSquareRootLRScheduleConfig,
                                                                    InverseSquareRootSchedule)
from omegaconf import II

from ..errors import config_error

logger = logging.getLogger(__name__)


@dataclass
class InverseSqrtPlateauConfig(InverseSquareRootLRScheduleConfig):
    """inverse_sqrt's flags (``--warmup-updates``, ``--warmup-init-lr``, ``--lr``) and the plateau's."""

    lr_shrink: float = field(
        default=0.25, metadata={"help": "multiply the learning rate by this, in (0, 1), when validation stalls"})
    lr_patience: int = field(
        default=2, metadata={"help": "validations in a row without a new best metric before each shrink (>= 1)"})
    maximize_best_checkpoint_metric: bool = II("checkpoint.maximize_best_checkpoint_metric")


@register_lr_scheduler("inverse_sqrt_plateau", dataclass=InverseSqrtPlateauConfig)
class InverseSqrtPlateauSchedule(InverseSquareRootSchedule):
    """``inverse_sqrt`` times a factor that ``--lr-shrink`` cuts after ``--lr-patience`` validations without a best."""

    def __init__(self, cfg: InverseSqrtPlateauConfig, optimizer):
        if not 0 < cfg.lr_shrink < 1:
            raise config_error("--lr-shrink", cfg.lr_shrink, "a number between 0 and 1 (exclusive)")
        if cfg.lr_patience < 1:
            raise config_error("--lr-patience", cfg.lr_patience, "an integer >= 1")
        super().__init__(cfg, optimizer)
        self.factor = 1.0
        self.best: Optional[float] = None
        self.validations_without_best = 0

    def _is_new_best(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.cfg.maximize_best_checkpoint_metric else value < self.best

    def step(self, epoch, val_loss=None):
        """After an epoch's validation (``val_loss``: its best-checkpoint metric): count it, shrink on a plateau."""
        if val_loss is not None:
            if self._is_new_best(val_loss):
                self.best, self.validations_without_best = float(val_loss), 0
            else:
                self.validations_without_best += 1
                if self.validations_without_best >= self.cfg.lr_patience:
                    logger.info(f"no new best validation metric (best {self.best:g}) in {self.cfg.lr_patience} "
                                f"validations: learning-rate factor {self.factor:g} -> "
                                f"{self.factor * self.cfg.lr_shrink:g}")
                    self.factor *= self.cfg.lr_shrink
                    self.validations_without_best = 0
        self.optimizer.set_lr(self.lr * self.factor)  # self.lr: inverse_sqrt's rate at the last update
        return self.optimizer.get_lr()

    def step_update(self, num_updates):
        """Each update: inverse_sqrt's rate for ``num_updates``, times the factor."""
        super().step_update(num_updates)
        self.optimizer.set_lr(self.lr * self.factor)
        return self.optimizer.get_lr()

    def state_dict(self):
        return {"best": self.best, "factor": self.factor, "validations_without_best": self.validations_without_best}

    def load_state_dict(self, state_dict):
        self.best = state_dict.get("best")
        self.factor = state_dict.get("factor", 1.0)
        self.validations_without_best = state_dict.get("validations_without_best", 0)

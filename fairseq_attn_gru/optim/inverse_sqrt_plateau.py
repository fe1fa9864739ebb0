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

``--lr-decay-fraction F`` (0, the default, leaves it off) adds a budgeted end: over the last F of the training
budget the rate falls linearly to 0 (``budget`` in updates, ``t`` the update)::

    lr(t) = factor · inverse_sqrt(t) · min(1, (budget - t) / (F · budget))      (0 once t >= budget)

Why: a run stopped by ``--stop-time-hours`` otherwise ends at whatever rate the schedule has reached, and a short
budget ends at a high one. ``budget`` is ``--max-update`` when only that is set; with ``--stop-time-hours`` it is
planned at every validation from the pace so far: updates done · budget seconds / seconds trained (training time
fairseq counts for ``--stop-time-hours``: validation included, earlier runs of a resumed one included). Between
validations it stays put, so the rate is a function of the update number alone; in distributed training every
worker uses rank 0's clock, so all of them plan the same budget and step with the same rate. With both flags set
the smaller budget wins. tests/test_lr_schedule.py checks the rates against this formula, with a clock set by hand.
"""
import logging
import time
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
    lr_decay_fraction: float = field(
        default=0.0, metadata={"help": "over this last fraction of the training budget (--stop-time-hours, else "
                                       "--max-update), in [0, 1), the rate falls linearly to 0; 0: off"})
    maximize_best_checkpoint_metric: bool = II("checkpoint.maximize_best_checkpoint_metric")
    stop_time_hours: float = II("optimization.stop_time_hours")
    max_update: int = II("optimization.max_update")


@register_lr_scheduler("inverse_sqrt_plateau", dataclass=InverseSqrtPlateauConfig)
class InverseSqrtPlateauSchedule(InverseSquareRootSchedule):
    """``inverse_sqrt`` times a factor that ``--lr-shrink`` cuts after ``--lr-patience`` validations without a best."""

    def __init__(self, cfg: InverseSqrtPlateauConfig, optimizer):
        if not 0 < cfg.lr_shrink < 1:
            raise config_error("--lr-shrink", cfg.lr_shrink, "a number between 0 and 1 (exclusive)")
        if cfg.lr_patience < 1:
            raise config_error("--lr-patience", cfg.lr_patience, "an integer >= 1")
        if not 0 <= cfg.lr_decay_fraction < 1:
            raise config_error("--lr-decay-fraction", cfg.lr_decay_fraction, "a number in [0, 1)")
        # the budgets fairseq was given (0 or unset: none)
        self.budget_seconds = cfg.stop_time_hours * 3600 if (cfg.stop_time_hours or 0) > 0 else None
        self.max_updates = cfg.max_update if (cfg.max_update or 0) > 0 else None
        if cfg.lr_decay_fraction and self.budget_seconds is None and self.max_updates is None:
            raise config_error("--lr-decay-fraction", cfg.lr_decay_fraction,
                               "0 without a training budget: give --stop-time-hours or --max-update")
        super().__init__(cfg, optimizer)
        self.factor = 1.0
        self.best: Optional[float] = None
        self.validations_without_best = 0
        self.num_updates = 0
        self.budget_updates: Optional[int] = self.max_updates
        self.seconds_before = 0.0  # trained in earlier runs (restored from the checkpoint)
        self.started = time.time()

    def seconds_trained(self) -> float:
        return self.seconds_before + time.time() - self.started

    def plan_budget(self):
        """At a validation: the updates --stop-time-hours will hold at the pace so far (rank 0's clock)."""
        if self.budget_seconds is None or self.num_updates == 0:
            return
        seconds = [self.seconds_trained()]
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.broadcast_object_list(seconds, src=0)
        planned = round(self.num_updates * self.budget_seconds / max(seconds[0], 1e-9))
        self.budget_updates = min(planned, self.max_updates or planned)

    def decay(self, num_updates: int) -> float:
        """The budgeted end's multiplier for update ``num_updates``: 1 before the last fraction, then down to 0."""
        fraction = self.cfg.lr_decay_fraction
        if not fraction or self.budget_updates is None:
            return 1.0
        return max(0.0, min(1.0, (self.budget_updates - num_updates) / (fraction * self.budget_updates)))

    def set_rate(self):
        self.optimizer.set_lr(self.lr * self.factor * self.decay(self.num_updates))  # self.lr: inverse_sqrt's
        return self.optimizer.get_lr()

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
            if self.cfg.lr_decay_fraction:
                self.plan_budget()
        return self.set_rate()

    def step_update(self, num_updates):
        """Each update: inverse_sqrt's rate for ``num_updates``, times the factor and the budgeted end's decay."""
        super().step_update(num_updates)
        self.num_updates = num_updates
        return self.set_rate()

    def state_dict(self):
        return {"best": self.best, "factor": self.factor, "validations_without_best": self.validations_without_best,
                "seconds_trained": self.seconds_trained(), "budget_updates": self.budget_updates}

    def load_state_dict(self, state_dict):
        self.best = state_dict.get("best")
        self.factor = state_dict.get("factor", 1.0)
        self.validations_without_best = state_dict.get("validations_without_best", 0)
        self.seconds_before, self.started = state_dict.get("seconds_trained", 0.0), time.time()
        self.budget_updates = state_dict.get("budget_updates", self.budget_updates)

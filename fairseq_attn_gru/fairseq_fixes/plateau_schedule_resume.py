"""Our learning-rate schedule only: a run resumed from an end-of-epoch checkpoint hands that epoch's validation to
``inverse_sqrt_plateau`` as the uninterrupted run did.

Upstream: no fairseq issue. Written against fairseq-fixed 0.12.3.1: ``fairseq_cli/train.py`` saves the end-of-epoch
checkpoint inside ``validate_and_save`` and only then calls ``trainer.lr_step(epoch, valid_losses[0])``, so the
schedule state in that checkpoint has not seen the epoch's validation, and ``Trainer.load_checkpoint`` resumes with
``lr_step(epoch)`` and no metric. A plateau schedule resumed from there counts one validation fewer and shrinks
later than the run that was not interrupted (fairseq's own ``reduce_lr_on_plateau`` has the same gap; it is left
as it is). The metric is in the checkpoint (``extra_state["val_loss"]``); this hands it over after loading.
Scope: runs whose ``--lr-scheduler`` is this package's ``inverse_sqrt_plateau``, resumed with their schedule state
(no ``--reset-optimizer`` or ``--reset-lr-scheduler``) from a checkpoint written at the end of an epoch.
"""
from ..optim.inverse_sqrt_plateau import InverseSqrtPlateauSchedule
from .patching import wrap_once

SCOPE = "ours"


def end_of_epoch_validation(extra_state):
    """The metric of the validation that ended the checkpoint's epoch, or None (mid-epoch or no validation)."""
    if not extra_state or extra_state.get("val_loss") is None:
        return None
    iterator = extra_state.get("train_iterator", {})
    if iterator.get("version", 1) < 2 or iterator.get("iterations_in_epoch") != 0:
        return None
    return extra_state["val_loss"]


def replay_last_validation(original):
    def load_checkpoint(self, filename, reset_optimizer=False, reset_lr_scheduler=False, *args, **kwargs):
        extra_state = original(self, filename, reset_optimizer, reset_lr_scheduler, *args, **kwargs)
        scheduler = self._lr_scheduler  # None until built: then nothing was restored into it
        metric = end_of_epoch_validation(extra_state)
        if (isinstance(scheduler, InverseSqrtPlateauSchedule) and not (reset_optimizer or reset_lr_scheduler)
                and metric is not None):
            finished_epoch = extra_state["train_iterator"]["epoch"] - 1  # the iterator points at the next epoch
            scheduler.step(finished_epoch, metric)
        return extra_state

    return load_checkpoint


def apply() -> None:
    from fairseq.trainer import Trainer

    wrap_once(Trainer, "load_checkpoint", replay_last_validation, fix=__name__)

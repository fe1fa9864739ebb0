"""Our models only: checkpoints are written whole, and never from weights that diverged.

Upstream: fairseq #2684 (a truncated checkpoint after an interrupted run). Written against fairseq-fixed 0.12.3.1
(``checkpoint_utils.save_checkpoint`` and ``PathManager.copy``). Scope: this package's models; for any other
model ``save_checkpoint`` and ``PathManager.copy`` run fairseq's code unchanged.

* fairseq writes the first checkpoint of a save atomically (to ``.tmp``, then rename) but makes
  ``checkpoint_last.pt`` / ``checkpoint_best.pt`` by copying it in place: a kill mid-copy left a truncated
  file. While one of our models is saved, copies go to a temporary file that is renamed over the target.
* Weights that hold NaN/inf are not saved: the previous checkpoints stay the last good ones.
"""
import os
import shutil

import torch

from ..errors import UserError
from .patching import is_ours, wrap_once

SCOPE = "ours"
_saving_ours = [False]  # True while save_checkpoint runs for one of our models


def check_finite_then_save(original):
    def save_checkpoint(cfg, trainer, epoch_itr, val_loss):
        if not is_ours(trainer.get_model()):
            return original(cfg, trainer, epoch_itr, val_loss)
        bad = [name for name, p in trainer.get_model().named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise UserError(
                f"training diverged: {len(bad)} weight tensor(s) hold NaN/inf (first: {bad[0]}); no checkpoint "
                "was written and the previous ones are kept; try a lower --lr or --clip-norm"
            )
        _saving_ours[0] = True
        try:
            return original(cfg, trainer, epoch_itr, val_loss)
        finally:
            _saving_ours[0] = False

    return save_checkpoint


def atomic_copy(original):
    def copy(src_path, dst_path, overwrite=False):
        from fairseq.file_io import PathManager

        if not _saving_ours[0] or PathManager.path_requires_pathmanager(dst_path):
            return original(src_path, dst_path, overwrite)
        temporary = dst_path + ".tmp"
        shutil.copyfile(src_path, temporary)
        os.replace(temporary, dst_path)  # atomic: dst is the old file or the new one, never half of one
        return True

    return copy


def apply() -> None:
    from fairseq import checkpoint_utils
    from fairseq.file_io import PathManager

    wrap_once(checkpoint_utils, "save_checkpoint", check_finite_then_save, fix=__name__)
    wrap_once(PathManager, "copy", atomic_copy, fix=__name__)

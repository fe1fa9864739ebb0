"""Our models only: checkpoints are written whole, never from weights that diverged, and a full disk is one line.

Upstream: fairseq #2684 (a truncated checkpoint after an interrupted run); no fairseq issue for the rest. Written
against fairseq-fixed 0.12.3.1 (``checkpoint_utils.save_checkpoint``, ``torch_persistent_save``,
``_torch_persistent_save`` and ``PathManager.copy``). Scope: this package's models; for any other model these
functions run fairseq's code unchanged.

* fairseq writes the first checkpoint of a save atomically (to ``.tmp``, then rename) but makes
  ``checkpoint_last.pt`` / ``checkpoint_best.pt`` by copying it in place: a kill mid-copy left a truncated
  file. While one of our models is saved, copies go to a temporary file that is renamed over the target.
* Weights that hold NaN/inf are not saved: the previous checkpoints stay the last good ones.
* A save that fails (a full disk, Ctrl-C) leaves no ``.tmp`` file behind.
* A full disk (ENOSPC, EDQUOT) is not retried (fairseq sleeps 2 x 2.5 s and logs a traceback first) and ends the
  run with one line saying which checkpoint_last.pt is intact, instead of a traceback.
"""
import contextlib
import errno
import os
import shutil
from typing import Optional

import torch

from ..errors import UserError, explain
from .patching import is_ours, wrap_once

SCOPE = "ours"
_saving_ours = [False]  # True while save_checkpoint runs for one of our models
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def disk_full(error: BaseException) -> Optional[OSError]:
    """The ENOSPC/EDQUOT OSError behind ``error`` (torch.save wraps it in a RuntimeError), if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError) and error.errno in _DISK_FULL:
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def last_checkpoint_state(save_dir, suffix: str = "") -> str:
    """What a rerun would resume from: '<dir>/checkpoint_last.pt from epoch E, update U is intact', or why not."""
    path = os.path.join(str(save_dir), f"checkpoint_last{suffix}.pt")
    if not os.path.exists(path):
        return f"no checkpoint was saved yet ({path} does not exist): a rerun starts from the beginning"
    try:  # mmap: only the small pickled part is read, not the weights
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        epoch = state["extra_state"]["train_iterator"]["epoch"]
        updates = state["optimizer_history"][-1]["num_updates"]
    except Exception as error:  # noqa: BLE001  (we only report)
        return f"{path} could not be read back ({type(error).__name__}: {str(error).splitlines()[0][:200]})"
    return f"{path} from epoch {epoch}, update {updates} is intact"


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
        except Exception as error:
            full = disk_full(error)
            if full is None:
                raise
            intact = last_checkpoint_state(cfg.save_dir, getattr(cfg, "checkpoint_suffix", "") or "")
            raise explain(error, f"no space left on the device of --save-dir={cfg.save_dir!r} while saving a "
                                 f"checkpoint ({full.strerror or full}); no partial file was left; {intact}: free "
                                 "some space and run the same command again to resume")
        finally:
            _saving_ours[0] = False

    return save_checkpoint


def _local(path) -> bool:
    from fairseq.file_io import PathManager

    return isinstance(path, str) and not PathManager.path_requires_pathmanager(path)


def no_partial_file(original):
    def torch_persistent_save(obj, filename, async_write: bool = False):
        if not _saving_ours[0] or async_write or not _local(filename):
            return original(obj, filename, async_write)
        try:
            return original(obj, filename, async_write)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(filename + ".tmp")  # fairseq writes filename.tmp, then renames it
            raise

    return torch_persistent_save


def no_retry_when_full(original):
    def _torch_persistent_save(obj, f):
        if not _saving_ours[0] or isinstance(f, str):
            return original(obj, f)
        try:
            return torch.save(obj, f)
        except Exception as error:
            if disk_full(error) is not None:
                raise
        return original(obj, f)  # any other failure: fairseq's retries, as before

    return _torch_persistent_save


def atomic_copy(original):
    def copy(src_path, dst_path, overwrite=False):
        if not _saving_ours[0] or not _local(dst_path):
            return original(src_path, dst_path, overwrite)
        temporary = dst_path + ".tmp"
        try:
            shutil.copyfile(src_path, temporary)
            os.replace(temporary, dst_path)  # atomic: dst is the old file or the new one, never half of one
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(temporary)
            raise
        return True

    return copy


def apply() -> None:
    from fairseq import checkpoint_utils
    from fairseq.file_io import PathManager

    wrap_once(checkpoint_utils, "save_checkpoint", check_finite_then_save, fix=__name__)
    wrap_once(checkpoint_utils, "torch_persistent_save", no_partial_file, fix=__name__)
    wrap_once(checkpoint_utils, "_torch_persistent_save", no_retry_when_full, fix=__name__)
    wrap_once(PathManager, "copy", atomic_copy, fix=__name__)

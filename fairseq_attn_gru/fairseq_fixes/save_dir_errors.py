"""Our models only: a ``--save-dir`` that cannot hold checkpoints is named in one line before training starts.

Upstream: no fairseq issue (``checkpoint_utils.verify_checkpoint_directory`` raises ``NotADirectoryError`` /
``PermissionError`` with a traceback for a path that is a file or cannot be written). Written against
fairseq-fixed 0.12.3.1 (``checkpoint_utils.verify_checkpoint_directory``). Scope: a run that trains one of this
package's models (its ``--arch`` is ours; fairseq checks the directory before the model is built); for any other
model fairseq's check and its traceback are unchanged. Only where fairseq raises anyway: the same exception goes on
with a one-line message (errors.explain).
"""
from ..errors import explain
from .patching import wrap_once

SCOPE = "ours"
_training_ours = [False]  # set by training_interrupts' wrapper of fairseq_cli.train.main while it runs for ours


def name_bad_save_dir(original):
    def verify_checkpoint_directory(save_dir: str) -> None:
        try:
            return original(save_dir)
        except OSError as error:
            if not _training_ours[0]:
                raise
            raise explain(error, f"--save-dir={str(save_dir)!r} cannot hold checkpoints "
                                 f"({error.strerror or type(error).__name__}: {error.filename or save_dir})")

    return verify_checkpoint_directory


def apply() -> None:
    from fairseq import checkpoint_utils

    wrap_once(checkpoint_utils, "verify_checkpoint_directory", name_bad_save_dir, fix=__name__)

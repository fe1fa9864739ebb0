"""Global fix, failures only: a checkpoint that cannot be loaded is named in one line.

Upstream: no fairseq issue (fairseq prints a traceback: ``FileNotFoundError``, an ``UnpicklingError`` quoting torch's
advice, a ``RuntimeError`` listing every mismatched key). Written against fairseq-fixed 0.12.3.1
(``checkpoint_utils.load_checkpoint_to_cpu`` and ``load_model_ensemble_and_task``). Scope: every model, only where
fairseq raises anyway: the same exception goes on with a one-line message (errors.explain) that fairseq's console
tools print instead of the traceback. Paths are checked by fairseq itself, after its ``--checkpoint-suffix``,
shards and remote paths are resolved.
"""
from ..errors import explain
from .patching import wrap_once

SCOPE = "global"


def describe_load_error(path: str, error: BaseException) -> str:
    if isinstance(error, FileNotFoundError):
        return f"checkpoint {path!r} does not exist"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
    unsupported = [line for line in lines if "unsupported global" in line.lower()]
    if unsupported:
        return (f"checkpoint {path!r} refused: it holds an object outside the allowed safe globals "
                f"({unsupported[0]}); it was not loaded and nothing in it was run")
    detail = next((line for line in lines if "WeightsUnpickler error" in line), lines[0])
    return f"checkpoint {path!r} is not a readable PyTorch checkpoint (truncated or corrupt: {detail})"


_last_read = [None]  # the path of the checkpoint fairseq read last: the one whose model is built next


def last_checkpoint_read():
    """The checkpoint fairseq's loader read last (None before any): messages about the model being built from it
    name it (models/trained_on.py)."""
    return _last_read[0]


def name_unreadable_checkpoint(original):
    def load_checkpoint_to_cpu(path, *args, **kwargs):
        _last_read[0] = str(path)
        try:
            return original(path, *args, **kwargs)
        except Exception as error:  # random bytes can make the unpickler fail in any way at all
            raise explain(error, describe_load_error(str(path), error))

    return load_checkpoint_to_cpu


def name_missing_or_mismatched(original):
    def load_model_ensemble_and_task(filenames, *args, **kwargs):
        try:
            return original(filenames, *args, **kwargs)
        except OSError as error:
            if "Model file not found" in str(error):
                missing = str(error).split("Model file not found: ", 1)[-1]
                raise explain(error, f"--path={missing!r}: no such checkpoint file")
            raise
        except RuntimeError as error:
            if "state_dict" not in str(error):
                raise
            raise explain(error, f"--path={':'.join(map(str, filenames))!r}: the checkpoint's weights do not fit the "
                                 "model and task it describes with these options (another arch, task or dictionary?): "
                                 f"{str(error).splitlines()[0]}")

    return load_model_ensemble_and_task


def apply() -> None:
    from fairseq import checkpoint_utils

    wrap_once(checkpoint_utils, "load_checkpoint_to_cpu", name_unreadable_checkpoint, fix=__name__)
    wrap_once(checkpoint_utils, "load_model_ensemble_and_task", name_missing_or_mismatched, fix=__name__)

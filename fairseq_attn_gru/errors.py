"""User-facing errors: one clear line, no traceback.

fairseq's command-line tools let exceptions escape to the interpreter, which prints a traceback.
Errors a person can fix are raised as :class:`UserError`; importing the plugin installs an
excepthook that prints such errors as a single ``error: ...`` line and exits with status 2.
Every other exception keeps its normal traceback.
"""
import sys


class UserError(ValueError):
    """A problem with the user's flags, files or input, explained in one line."""


class MissingDependencyError(UserError, ImportError):
    """A required package is not installed; the message says how to install it."""


def config_error(flag: str, value, allowed: str) -> UserError:
    """The standard message: which flag, what it was set to, what is allowed."""
    return UserError(f"{flag}={value!r} is not allowed: {allowed}")


def _find_in_chain(exc, kind):
    """The ``kind`` exception behind ``exc``, following fairseq/hydra's wrapping (``raise X from err``)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _excepthook(exc_type, exc, tb, _previous=sys.excepthook):
    user_error = _find_in_chain(exc, UserError)
    diverged = _find_in_chain(exc, FloatingPointError)
    if user_error is None and diverged is not None:
        # fairseq's trainer raises this on NaN/inf loss or gradients (its NanDetector may then fail on top of it)
        user_error = UserError(
            f"training diverged: {diverged} (NaN/inf loss or gradients); checkpoint_last/best are the last good "
            "ones (fairseq wrote the diverged state to crash.pt); try a lower --lr or --clip-norm"
        )
    if user_error is None:
        _previous(exc_type, exc, tb)
        return
    sys.stdout.flush()
    print(f"error: {user_error}", file=sys.stderr)
    sys.stderr.flush()
    # sys.exit does not work from inside an excepthook
    import os

    os._exit(2)


def install_excepthook() -> None:
    if getattr(sys.excepthook, "__name__", "") != "_excepthook":
        sys.excepthook = _excepthook

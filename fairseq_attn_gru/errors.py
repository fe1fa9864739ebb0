"""Errors a person can fix, and how a command-line run shows them: one ``error: ...`` line, exit status 2.

Two kinds carry such a line: this package's :class:`UserError`, and an exception fairseq raised that one of our
fixes ``explain``-ed (same exception, same type, with a one-line message and a note added). In Python (a REPL,
a notebook, a program using the hub API) both stay ordinary exceptions that the caller can catch. Only in a
fairseq console tool (``fairseq-train``, ``fairseq-generate``, ...) does ``install_cli_excepthook`` print the
line instead of a traceback; every other exception keeps its traceback there too.
"""
import atexit
import os
import sys
from typing import Optional

#: the console scripts of fairseq whose uncaught errors get one line
FAIRSEQ_TOOLS = frozenset({
    "fairseq-train", "fairseq-generate", "fairseq-interactive", "fairseq-validate", "fairseq-eval-lm",
    "fairseq-hydra-train", "fairseq-preprocess", "fairseq-score",
})
_MESSAGE = "fairseq_attn_gru_message"


class UserError(ValueError):
    """A problem with the user's flags, files or input, explained in one line."""


class MissingDependencyError(UserError, ImportError):
    """A required package is not installed; the message says how to install it."""


def config_error(flag: str, value, allowed: str) -> UserError:
    """The standard message: which flag, what it was set to, what is allowed."""
    return UserError(f"{flag}={value!r} is not allowed: {allowed}")


def explain(error: BaseException, message: str) -> BaseException:
    """Give fairseq's own exception a one-line message for command-line runs; its type and text stay."""
    setattr(error, _MESSAGE, message)
    error.add_note(f"fairseq-attn-gru: {message}")
    return error


def _chain(error: Optional[BaseException]):
    """``error`` and the exceptions behind it (``raise X from err``, or raised while handling one)."""
    seen = set()
    while error is not None and id(error) not in seen:
        yield error
        seen.add(id(error))
        error = error.__cause__ or error.__context__


def find_in_chain(error: BaseException, kind: type) -> Optional[BaseException]:
    return next((item for item in _chain(error) if isinstance(item, kind)), None)


def user_message(error: Optional[BaseException]) -> Optional[str]:
    """The one-line message behind ``error``, following fairseq/hydra's wrapping of it."""
    for item in _chain(error):
        if isinstance(item, UserError):
            return str(item)
        if getattr(item, _MESSAGE, None):
            return getattr(item, _MESSAGE)
    return None


def running_fairseq_tool(argv0: Optional[str] = None) -> bool:
    """A non-interactive run of a fairseq console script (or ``python -m fairseq_cli.X``)."""
    if sys.flags.interactive or hasattr(sys, "ps1"):
        return False
    argv0 = os.path.normpath(argv0 if argv0 is not None else (sys.argv[0] if sys.argv else ""))
    parts = argv0.split(os.sep)
    return parts[-1] in FAIRSEQ_TOOLS or (len(parts) > 1 and parts[-2] == "fairseq_cli")


def _cli_excepthook(exc_type, exc, tb, _previous=sys.excepthook):
    message = user_message(exc)
    if message is None:
        _previous(exc_type, exc, tb)
        return
    sys.stdout.flush()
    print(f"error: {message}", file=sys.stderr, flush=True)
    # the status of an uncaught exception is always 1 and sys.exit cannot run in an excepthook: finish the
    # process's exit work (atexit) ourselves, then leave with 2
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(2)


def install_cli_excepthook() -> None:
    """In a fairseq console tool only: errors with a one-line message end the run with that line and status 2."""
    if running_fairseq_tool() and sys.excepthook is not _cli_excepthook:
        sys.excepthook = _cli_excepthook

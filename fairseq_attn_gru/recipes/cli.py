"""What the recipes' command-line entry points share: one-line errors, the fairseq tools, the plugin's path.

Recipe code raises :class:`UserError` for input a person can fix; only ``run_main`` (the entry point of each
script in ``scripts/``) turns it into ``error: ...`` on stderr and exit status 2. Imported from Python, the
recipes raise ordinary exceptions and never end the caller's process.
"""
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

from ..errors import UserError

FAIRSEQ_BIN = Path(sys.executable).parent
#: what fairseq's --user-dir needs: the package's directory
USER_DIR = str(Path(__file__).resolve().parents[1])


def fail(message: str):
    """Bad input a person can fix."""
    raise UserError(message)


def require_file(path, what: str = "file") -> Path:
    path = Path(path)
    if not path.is_file():
        fail(f"{what} {str(path)!r} does not exist")
    return path


def check_output(path, what: str, inputs=()) -> Path:
    """Refuse, in one line, an output path that cannot be written or must not be: one of the command's ``inputs``
    (writing it would destroy that input), a directory, or below a file. ``what`` names the output in the message."""
    path = Path(path)
    for source in inputs:
        if path.exists() and Path(source).exists() and os.path.samefile(source, path):
            fail(f"{what} {str(path)!r} is an input of this command ({str(source)!r}): writing it would destroy that "
                 "input; give another output path")
    if path.is_dir():
        fail(f"{what} {str(path)!r} is a directory: give a file path")
    blocking = next((parent for parent in path.parents if parent.exists()), None)
    if blocking is not None and not blocking.is_dir():
        fail(f"{what} {str(path)!r} cannot be written: {str(blocking)!r} is a file, not a directory")
    return path


def write_output(path, write: Callable[[Path], None], what: str, inputs=()) -> Path:
    """Write a tool's output file whole or not at all, never over one of the tool's ``inputs`` (``check_output``).

    ``write(temporary)`` writes the content to a temporary file beside ``path``, which is then renamed over it: an
    interrupted or failed write leaves the old file (if any) as it was and no temporary file.
    """
    path = check_output(path, what, inputs)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fail(f"{what} {str(path)!r}: cannot create its directory {str(path.parent)!r} ({error.strerror or error})")
    temporary = path.with_name(path.name + ".tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        # torch.save / torch.jit.save wrap the OSError (a full disk) in a RuntimeError
        cause = error if isinstance(error, OSError) else error.__context__
        if isinstance(cause, OSError):
            fail(f"cannot write {what} {str(path)!r} ({cause.strerror or cause}); nothing was written")
        raise
    return path


def quiet_fairseq_debug_logging() -> None:
    """The root logger's level as fairseq's own CLIs set it: $LOGLEVEL, default INFO.

    ``import fairseq`` (fairseq-fixed 0.12.3.1) runs ``logging.basicConfig(level=DEBUG)`` in
    fairseq/models/wav2vec/wav2vec2_classification.py, so every library's debug lines (matplotlib's, ...) reach
    stderr. fairseq's CLIs configure logging before they import fairseq and are not affected. Only a script's
    process calls this (``run_main``); imported from Python, the plugin leaves the caller's logging alone.
    """
    logging.getLogger().setLevel(os.environ.get("LOGLEVEL", "INFO").upper())


def run_main(main: Callable, argv: Optional[List[str]] = None) -> int:
    """A script's exit status: 0 (or the status ``main`` returns), or 2 after one ``error:`` line for a UserError
    (other errors keep their traceback)."""
    quiet_fairseq_debug_logging()
    try:
        status = main(argv)
    except UserError as error:
        sys.stdout.flush()
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    return status if isinstance(status, int) else 0  # a main that dispatches returns its step's status


def run_tool(tool: str, flags: List[object], log_path: Path, echo_prefix: Optional[str] = None,
             echo_all: bool = False, env: Optional[Dict[str, str]] = None, append: bool = False) -> str:
    """Run a fairseq console script and return its output, all of which also goes to ``log_path`` (after what the
    file already holds with ``append``: a resumed training's log keeps the earlier part, and the returned text is
    the whole file).

    Progress: ``echo_all`` echoes every line, ``echo_prefix`` only the epoch summaries (tagged with it).
    ``env`` adds to (or overrides) this process's environment. On failure it raises UserError with fairseq's own
    ``error:`` line when there is one.
    """
    command = [str(FAIRSEQ_BIN / tool), *map(str, flags)]
    earlier = Path(log_path).stat().st_size if append and Path(log_path).is_file() else 0
    with open(log_path, "a" if append else "w", encoding="utf-8", buffering=1) as log:  # line-buffered: `tail -f` follows the run
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env={**os.environ, **env} if env else None)
        for line in process.stdout:
            log.write(line)
            if echo_all:
                print(line, end="", flush=True)
            elif echo_prefix and ("| train |" in line or "| valid |" in line):
                print(f"  [{echo_prefix}] {line.split('| INFO | ')[-1].strip()}", flush=True)
    output = Path(log_path).read_text(encoding="utf-8")
    if process.wait() != 0:
        errors = [line for line in output.encode("utf-8")[earlier:].decode("utf-8", "replace").splitlines()
                  if line.startswith("error:")]  # this run's
        reason = errors[-1][len("error:"):].strip() if errors else f"exit status {process.returncode}"
        fail(f"{tool} failed: {reason} (full log: {log_path})")
    return output


#: optional modules the recipes import -> the extra of this package that installs them (pyproject.toml)
OPTIONAL_MODULES = {"matplotlib": "demo", "sacremoses": "pipeline", "subword_nmt": "pipeline",
                    "sentencepiece": "pipeline", "tensorboardX": "tensorboard"}


def missing_module_message(module: str) -> str:
    """What to install for an optional module: the extra that brings it, in a checkout and for a pip install."""
    top = module.split(".")[0]
    extra = OPTIONAL_MODULES.get(top)
    package = {"subword_nmt": "subword-nmt"}.get(top, top)
    if extra is None:
        return f"{top} is not installed: pip install {package}"
    return (f"{top} is not installed: run `make install` in the checkout, or pip install {package} "
            f"(this package's [{extra}] extra)")


def require_module(module: str):
    """Import an optional module, or raise MissingDependencyError (a UserError) saying what to install."""
    import importlib

    from ..errors import MissingDependencyError

    try:
        return importlib.import_module(module)
    except ImportError as error:
        if error.name is None or error.name.split(".")[0] != module.split(".")[0]:
            raise  # something the module itself lacks: keep Python's message
        raise MissingDependencyError(missing_module_message(module)) from None


def run_entry(target: str, argv: Optional[List[str]] = None) -> int:
    """``run_main`` for ``"package.module:function"``, the entry point of each script in ``scripts/``. The recipes
    import their optional modules (matplotlib, sacremoses, ...) only through ``require_module``, so a missing one
    ends in run_main's one ``error:`` line that says what to install (exit status 2)."""
    import importlib

    module_name, _, function = target.partition(":")
    quiet_fairseq_debug_logging()  # before the module's imports, which may log
    return run_main(getattr(importlib.import_module(module_name), function or "main"), argv)


# -- signals: stop the fairseq tools that are running, then the script ---------------------------------------------

class Interrupted(KeyboardInterrupt):
    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def process_table() -> Dict[int, tuple]:
    """{pid: (parent pid, start time, state)} of every process (Linux: /proc; elsewhere empty). The start time tells a
    process from a later one that reuses its pid."""
    table = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    with open(f"/proc/{entry}/stat") as stat:
                        fields = stat.read().rsplit(")", 1)[1].split()  # after "pid (command)"
                    table[int(entry)] = (int(fields[1]), fields[19], fields[0])
    return table


def descendants(pid: int, table: Dict[int, tuple]) -> Dict[int, str]:
    """{pid: start time} of ``pid``'s children, their children, and so on."""
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, started, _) in table.items():
            if ppid == parent and child not in found:
                found[child] = started
                frontier.append(child)
    return found


def running(processes: Dict[int, str]) -> List[int]:
    """Those of ``processes`` ({pid: start time}) still running (a zombie has ended)."""
    table = process_table()
    return [pid for pid, started in processes.items() if pid in table and table[pid][1] == started
            and table[pid][2] != "Z"]


def stop_children(signum, grace: float = 10.0) -> None:
    """Send this process's children ``signum`` and return once they, and every process they started, have ended;
    what still runs after ``grace`` seconds gets SIGKILL.

    The grandchildren matter: fairseq-train's DataLoader workers notice their parent's end only at their next
    check, seconds later, so a script that returned when fairseq-train ended left them running. They are
    listed before anything is signalled (once their parent ends they belong to init and are no one's descendants),
    and get ``signum`` themselves once their parent has ended.
    """
    table = process_table()
    children = [pid for pid, (ppid, _, _) in table.items() if ppid == os.getpid()]
    tree = descendants(os.getpid(), table)
    for pid in children:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)
    deadline = time.time() + grace
    for pid in children:  # reaped here: the zombie goes, and the script's own wait() finds nothing left
        while time.time() < deadline:
            with contextlib.suppress(ChildProcessError, OSError):
                if os.waitpid(pid, os.WNOHANG) != (0, 0):
                    break
            if not running({pid: tree[pid]}):
                break
            time.sleep(0.05)
    for pid in running(tree):  # orphaned workers: their parent has ended (or is being killed below)
        with contextlib.suppress(OSError):
            os.kill(pid, signum)
    while running(tree) and time.time() < deadline:
        time.sleep(0.05)
    for pid in running(tree):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    for pid in children:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)
    final = time.time() + 5  # SIGKILL is immediate; the kernel still needs a moment to take the processes away
    while running(tree) and time.time() < final:
        time.sleep(0.02)


@contextlib.contextmanager
def children_stopped_on_signals(message: str):
    """While a script's main runs: SIGINT/SIGTERM stop the running fairseq tools (this process's children) first,
    then the script with ``leave_interrupted``'s line, ``message`` saying what stays and how to go on."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # one stop at a time
        stop_children(signum)
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except Interrupted as interrupted:
        leave_interrupted(interrupted, message)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def leave_interrupted(interrupted: "Interrupted", message: str):
    """After a signal: ``interrupted by SIG...: <message>`` on stderr and exit status 128 + the signal's number; in
    an interactive Python session the KeyboardInterrupt instead (a recipe never ends a Python session)."""
    if sys.flags.interactive or hasattr(sys, "ps1"):
        raise interrupted
    sys.stdout.flush()
    print(f"interrupted by {signal.Signals(interrupted.signum).name}: {message}", file=sys.stderr, flush=True)
    raise SystemExit(128 + interrupted.signum) from None


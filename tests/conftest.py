"""Shared helpers: tiny tasks and models built in-process, and fairseq's CLIs run through subprocess."""
import os
import signal
import socket
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import pytest
import torch

import fairseq_attn_gru  # noqa: F401  (registers the model and task)
from fairseq.data import Dictionary
from fairseq.models import ARCH_CONFIG_REGISTRY
from fairseq_attn_gru.models import GRUAttnModel

REPO = Path(__file__).resolve().parents[1]
USER_DIR = str(REPO / "fairseq_attn_gru")
BIN = Path(sys.executable).parent
SHARED = REPO.parent / "shared"


def load_script(relative_path):
    """A script of this repository loaded by path (scripts/ and benchmarks/ are not packages), so that tests call
    its functions in-process."""
    import importlib.util

    path = REPO / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TinyTask:
    """Just what GRUAttnModel.build_model reads from a task."""

    def __init__(self, src_words=20, tgt_words=None):
        self.source_dictionary = _dictionary("w", src_words)
        self.target_dictionary = self.source_dictionary if tgt_words is None else _dictionary("x", tgt_words)


def _dictionary(prefix, size):
    dictionary = Dictionary()
    for i in range(size):
        dictionary.add_symbol(f"{prefix}{i}")
    return dictionary


def build_model(arch="gru_attn_dot", task=None, **overrides):
    """A model from a named architecture with small sizes, overrides applied like command-line flags."""
    args = Namespace(**overrides)
    ARCH_CONFIG_REGISTRY[arch](args)
    return GRUAttnModel.build_model(args, task or TinyTask())


def random_batch(dictionary, lengths, left_pad=True, seed=0):
    """(src_tokens, src_lengths): random real words, eos last, padded on the chosen side."""
    generator = torch.Generator().manual_seed(seed)
    rows = [torch.cat([torch.randint(dictionary.nspecial, len(dictionary), (n - 1,), generator=generator),
                       torch.tensor([dictionary.eos()])]) for n in lengths]
    return pad_rows(rows, dictionary.pad(), left_pad), torch.tensor(lengths)


def pad_rows(rows, pad, left_pad, width=None):
    width = width or max(len(r) for r in rows)
    out = torch.full((len(rows), width), pad, dtype=torch.long)
    for i, row in enumerate(rows):
        if left_pad:
            out[i, width - len(row):] = row
        else:
            out[i, : len(row)] = row
    return out


def run_cli(program, *args, cwd=None, input=None, check=True, timeout=600, env=None):
    """Run a console tool of this venv (``"fairseq-train"``), a script (``REPO / "scripts" / "demo.py"``) or an
    executable (``sys.executable``); returns the CompletedProcess (text stdout and stderr)."""
    program = str(program)
    if program.endswith(".py"):
        command = [sys.executable, program]
    elif os.path.isabs(program):
        command = [program]
    else:
        command = [str(BIN / program)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
           **(env or {})}
    result = subprocess.run([*command, *map(str, args)], cwd=cwd, input=input, capture_output=True, text=True,
                            timeout=timeout, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"{program} failed ({result.returncode}):\n{result.stdout[-2000:]}\n"
                             f"{result.stderr[-4000:]}")
    return result


def one_line_error(result, starts_with):
    """The run failed as a person should see it: status 2, no traceback, last line ``error: <starts_with>...``."""
    stderr = result.stderr if isinstance(result.stderr, str) else result.stderr.decode()
    assert result.returncode == 2, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: " + starts_with), last
    return last


def toy_task(rule, vocab_size, max_len, train_size, valid_size, test_size=None, min_len=None):
    """fairseq flags selecting the toy_translation task with the rule and sizes a test needs."""
    flags = {"--toy-rule": rule, "--toy-vocab-size": vocab_size, "--toy-min-len": min_len, "--toy-max-len": max_len,
             "--toy-train-size": train_size, "--toy-valid-size": valid_size, "--toy-test-size": test_size}
    return ["--task", "toy_translation", *(str(item) for flag, value in flags.items() if value is not None
                                           for item in (flag, value))]


def train_toy(save_dir, toy, *flags):
    """fairseq-train gru_attn_dot with Adam on CPU on the `toy` task; `flags` add to or override those."""
    return run_cli("fairseq-train", "--user-dir", USER_DIR, *toy, "--arch", "gru_attn_dot", "--cpu",
                   "--optimizer", "adam", *flags, "--save-dir", save_dir)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch):
    """Each test its own empty cache directory, for itself and the tools it runs: --precision auto pins its
    measurement in the user's cache (recipes/precision_probe.py), which no test may read or write."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


# -- processes (Linux /proc): children a test's subprocess started, and that they end with it --------------------

def free_port():
    """A TCP port nothing listens on now, for a test's torchrun rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_of(pid):
    """Pids whose parent is pid (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def running(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def default_sigint():
    """``preexec_fn`` for a child a test will Ctrl-C: SIGINT at its default action. A shell's background job (``cmd &``,
    how a CI script may start the suite) starts with SIGINT ignored, and a child inherits that: bash could then not
    trap it, nor Python raise KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_until_gone(pids, seconds, message):
    """Fail with ``message`` unless every pid has exited (or is a zombie) within ``seconds``."""
    deadline = time.time() + seconds
    while any(running(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(running(pid) for pid in pids), message


def kill_all(pids):
    """SIGKILL whichever of pids still runs (a test's cleanup)."""
    for pid in pids:
        if running(pid):
            os.kill(pid, signal.SIGKILL)


# -- the suite's own figures: `pytest --results-json results/tests.json` (docs/tests.md's counts and times) --------

def pytest_addoption(parser):
    parser.addoption("--results-json", type=Path, default=None, metavar="PATH",
                     help="write the run's counts, its time, each test file's time and the machine to PATH "
                          "(results/tests.json: the figures docs/tests.md shows)")


#: test file -> seconds of setup, call and teardown of its tests (module fixtures count where they run)
_file_seconds = {}
_started = []


def pytest_sessionstart(session):
    _started.append(time.monotonic())


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    _file_seconds[path] = _file_seconds.get(path, 0.0) + report.duration


def pytest_sessionfinish(session, exitstatus):
    path = session.config.getoption("--results-json")
    if path is None or hasattr(session.config, "workerinput"):  # a pytest-xdist worker: its controller writes it
        return
    import datetime
    import json

    from fairseq_attn_gru.recipes.machine import machine_description

    seconds = round(time.monotonic() - _started[0], 1)
    stats = session.config.pluginmanager.get_plugin("terminalreporter").stats
    # "-dirty": the tracked files had changes the commit does not hold
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True)
    result = {"date": datetime.date.today().isoformat(), "commit": commit.stdout.strip() or None,
              "cpu": machine_description(),
              "command": " ".join(["python -m pytest", *session.config.invocation_params.args]),
              "seconds": seconds, "exit_status": int(exitstatus),
              **{key: len(stats.get(key, [])) for key in ("passed", "failed", "skipped", "error")},
              "deselected": len(stats.get("deselected", [])),
              "file_seconds": {name: round(file_seconds, 1) for name, file_seconds in
                               sorted(_file_seconds.items(), key=lambda item: -item[1])}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")

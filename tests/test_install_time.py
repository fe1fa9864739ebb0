"""benchmarks/install_time.py (results/install.json, the install figures in README and docs/install.md) without a real
install: a stand-in make in a throwaway git repository prints the Makefile's step lines, sleeps and writes a small
.venv/; the json's step times must add up to the measured total and its sizes to the files written."""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, load_script

install_time = load_script("benchmarks/install_time.py")

STAND_IN = """set -e
if [ -e .venv/done ]; then echo "make: Nothing to be done for 'install'."; exit 0; fi
echo "==> [1/3] checking prerequisites"; sleep 0.2
echo "==> [2/3] torch"; echo "Processing $WHEEL"; sleep 0.6
mkdir -p .venv/lib/python3.11/site-packages/torch
head -c 2000000 /dev/zero > .venv/lib/python3.11/site-packages/torch/lib.so
echo "==> [3/3] this package"; sleep 0.3
head -c 500000 /dev/zero > .venv/done
[ -z "$FAIL" ] || { echo "compiler says no"; exit 3; }
"""


@pytest.fixture
def checkout(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "make.sh").write_text(STAND_IN)
    for command in (["init", "-q"], ["add", "make.sh"],
                    ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "stand-in"]):
        subprocess.run(["git", *command], cwd=repo, check=True)
    wheel = tmp_path / "torch-2.13.0+cpu-cp311-cp311-linux_x86_64.whl"
    wheel.write_bytes(b"x" * 3_000_000)
    return repo, wheel


def run_script(checkout, results, **env):
    repo, wheel = checkout
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / "install_time.py"), "--source", str(repo),
                           "--make-command", "bash make.sh", "--results", str(results)],
                          capture_output=True, text=True, env={**os.environ, "WHEEL": str(wheel), **env})


def test_the_steps_times_add_up_to_the_total_and_the_sizes_to_the_files_written(checkout, tmp_path):
    results = tmp_path / "install.json"
    done = run_script(checkout, results)
    assert done.returncode == 0, done.stderr
    run = json.loads(results.read_text())
    assert [(s["number"], s["title"]) for s in run["steps"]] == [
        (1, "checking prerequisites"), (2, "torch"), (3, "this package")]
    seconds = [s["seconds"] for s in run["steps"]]
    assert seconds[0] >= 0.2 and seconds[1] >= 0.6 and seconds[2] >= 0.3
    assert sum(seconds) == pytest.approx(run["total_seconds"], abs=0.5)
    assert run["rerun_seconds"] < 0.5  # the second make found everything installed
    assert run["torch_wheel"] == {"source": "local file", "mb": 3.0}
    assert run["torch_mb"] == 2.0 and run["venv_mb"] == 2.5
    assert run["make_command"] == "bash make.sh" and run["command"].startswith("python benchmarks/install_time.py")
    assert run["cpu"]["cores"] >= 1
    assert "[     0 s] ==> [1/3] checking prerequisites" in done.stdout


def test_a_failing_install_shows_its_last_lines_and_writes_no_results(checkout, tmp_path):
    results = tmp_path / "install.json"
    done = run_script(checkout, results, FAIL="1")
    assert done.returncode == 1 and "compiler says no" in done.stdout
    assert done.stderr.strip().splitlines()[-1].startswith("error: `bash make.sh` failed in ")
    assert not results.exists()


def test_a_download_is_recorded_with_the_size_pip_printed():
    clock = iter(range(100)).__next__
    lines = ["==> [3/6] torch", "  Downloading https://x/cpu/torch-2.13.0%2Bcpu-cp311-cp311-linux_x86_64.whl (192.4 MB)",
             "==> [4/6] build tools"]
    steps, wheel = install_time.timed_steps(lines, clock=clock, echo=lambda *a, **k: None)
    assert wheel == {"source": "download", "mb": 192.4}
    assert [s["seconds"] for s in steps] == [2, 1]

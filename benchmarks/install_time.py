"""How long ``make install`` takes on a fresh clone, step by step, and how much disk ``.venv/`` takes afterwards:
results/install.json, from which README's Quick start and docs/install.md quote their figures
(scripts/results_tables.py, tables ``install`` and ``install-details``).

    python benchmarks/install_time.py                       # about 4 min on 2 cores; writes results/install.json
    python benchmarks/install_time.py --results /tmp/i.json --keep

Clones this checkout's HEAD into a temporary directory (the committed files only, as CI sees them), runs
``make install`` there with pip's cache off (PIP_NO_CACHE_DIR=1, so nothing arrives pre-built) and stamps the
Makefile's ``==> [N/6] ...`` step lines with the time since the start; then runs ``make install`` a second time,
which must find everything installed. Where torch's wheel came from (a download or a local file) is recorded with
its size, because the download is the one part of the time that depends on the network, not the CPU.
Test: tests/test_install_time.py (a stand-in make, the timing and the json).
"""
import argparse
import datetime
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from fairseq_attn_gru.recipes.machine import cpu_description  # noqa: E402

STEP_LINE = re.compile(r"^==> \[(\d+)/(\d+)\] (.*)$")
#: pip's lines naming torch's wheel: a download with its size, or a local file
TORCH_DOWNLOAD = re.compile(r"Downloading \S*torch-[^ ]*\.whl \(([\d.]+) ([kMG]B)\)")
TORCH_LOCAL = re.compile(r"Processing (\S*/torch-[^ /]*\.whl)")
UNIT_MB = {"kB": 1e-3, "MB": 1.0, "GB": 1e3}


def timed_steps(lines, clock=time.monotonic, echo=print):
    """Read ``make install``'s output lines; return (steps, torch_wheel): each step's number, title and seconds (until
    the next step line or the end), and what pip said about torch's wheel (None when it installed none)."""
    start, steps, torch_wheel = clock(), [], None
    for line in lines:
        line = line.rstrip("\n")
        now = clock() - start
        step = STEP_LINE.match(line)
        if step:
            if steps:
                steps[-1]["seconds"] = round(now - steps[-1].pop("started"), 1)
            steps.append({"number": int(step.group(1)), "title": step.group(3), "started": now})
            echo(f"[{now:6.0f} s] {line}", flush=True)
        elif (download := TORCH_DOWNLOAD.search(line)):
            torch_wheel = {"source": "download", "mb": round(float(download.group(1)) * UNIT_MB[download.group(2)], 1)}
        elif (local := TORCH_LOCAL.search(line)) and Path(local.group(1)).is_file():
            torch_wheel = {"source": "local file", "mb": round(Path(local.group(1)).stat().st_size / 1e6, 1)}
    end = clock() - start
    if steps:
        steps[-1]["seconds"] = round(end - steps[-1].pop("started"), 1)
    return steps, torch_wheel


def disk_mb(path: Path) -> float:
    """Bytes of the files under ``path`` (links not followed), in MB."""
    total = sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return round(total / 1e6, 1)


def run_make(checkout: Path, make_command: list[str], env: dict):
    """One ``make install`` in ``checkout``: its steps, torch's wheel and the wall-clock seconds; exits on failure."""
    start = time.monotonic()
    process = subprocess.Popen(make_command, cwd=checkout, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    tail = []

    def lines():
        for line in process.stdout:
            tail[:] = (tail + [line])[-20:]
            yield line

    steps, torch_wheel = timed_steps(lines())
    if process.wait() != 0:
        sys.stdout.write("".join(tail))
        sys.exit(f"error: `{shlex.join(make_command)}` failed in {checkout} (exit {process.returncode}): its last lines "
                 "are above")
    return steps, torch_wheel, round(time.monotonic() - start, 1)


def measure(source: Path, make_command: list[str], keep: bool) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="install_time_"))
    checkout = workdir / "checkout"
    subprocess.run(["git", "clone", "--quiet", str(source), str(checkout)], check=True)
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1"}
    print(f"fresh clone of {source} in {checkout}; `{shlex.join(make_command)}` with pip's cache off", flush=True)
    steps, torch_wheel, seconds = run_make(checkout, make_command, env)
    print("the same command again (everything should be installed already)", flush=True)
    _, _, rerun_seconds = run_make(checkout, make_command, env)
    venv, torch_dirs = checkout / ".venv", list((checkout / ".venv").glob("lib/python*/site-packages/torch"))
    result = {"date": datetime.date.today().isoformat(), "cpu": cpu_description(),
              "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=checkout, capture_output=True,
                                       text=True, check=True).stdout.strip(),
              "make_command": shlex.join(make_command), "total_seconds": seconds, "steps": steps,
              "rerun_seconds": rerun_seconds, "torch_wheel": torch_wheel,
              "venv_mb": disk_mb(venv) if venv.is_dir() else None,
              "torch_mb": disk_mb(torch_dirs[0]) if torch_dirs else None}
    if keep:
        print(f"kept {checkout}")
    else:
        subprocess.run(["rm", "-rf", str(workdir)], check=True)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "install.json",
                        help="where the json goes (default: results/install.json)")
    parser.add_argument("--source", type=Path, default=ROOT, help="the checkout to clone (default: this one)")
    parser.add_argument("--make-command", default="make install",
                        help="the command timed in the clone (default: make install; the test uses a stand-in)")
    parser.add_argument("--keep", action="store_true", help="keep the clone and its .venv/ (default: removed)")
    args = parser.parse_args(argv)
    if not (args.source / ".git").exists():
        parser.error(f"--source {args.source} is not a git checkout")
    result = measure(args.source.resolve(), shlex.split(args.make_command), args.keep)
    result["command"] = shlex.join(["python", "benchmarks/install_time.py", *(argv if argv is not None else sys.argv[1:])])
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=1) + "\n")
    print(f"make install: {result['total_seconds']:.0f} s; again: {result['rerun_seconds']:.0f} s; "
          f".venv/ {result['venv_mb']} MB -> {args.results}")


if __name__ == "__main__":
    main()

"""Install the peer toolkits, pinned, each into its own virtualenv beside ours (their torch pins differ from ours;
nothing goes into .venv/).

    python benchmarks/peers/install.py [--peers joeynmt,opennmt_py]

A finished install leaves VENV/.peer_install.json (the pins, the seconds the first install took, the venv's size);
run again, a venv whose record names the same pins is kept as it is (seconds). An install that stops half way
leaves no record, so the next run installs again over what is there. Standard library only: it runs before any
venv of the peers exists.

- OpenNMT-py 3.5.1 pins torch<2.3,>=2.1: it gets torch 2.2.2, the newest it allows.
- Joey NMT 2.3.0 asks for torch>=1.12, but its `plateau` learning-rate schedule (the one its published RNN config
  uses) fails on torch 2.7 and later (it passes ReduceLROnPlateau's removed `verbose`): it gets torch 2.2.2 too, a
  release of its time, so both peers run the same torch.
- PyPI has torch 2.2.2 only as the CUDA build (its nvidia-* wheels are most of each venv's size); on a CPU it runs
  the same CPU kernels as the CPU build. numpy<2: torch 2.2 was built against numpy 1 and cannot use numpy 2.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORD = ".peer_install.json"
#: pinned requirements per peer
PEERS = {
    # torch 2.2.2: joeynmt 2.3.0 asks for torch>=1.12 but passes `verbose` to ReduceLROnPlateau, which torch 2.7
    # and later refuse (its `plateau` schedule, used by its published RNN config); importlib-metadata: joeynmt
    # imports it (joeynmt/helpers.py) without requiring it
    "joeynmt": {"venv": ".venv-joeynmt", "packages": ["torch==2.2.2", "numpy<2", "importlib-metadata",
                                                      "joeynmt==2.3.0"], "module": "joeynmt"},
    "opennmt_py": {"venv": ".venv-opennmt_py", "packages": ["torch==2.2.2", "numpy<2", "OpenNMT-py==3.5.1"],
                   "module": "onmt"},
}


def fail(message: str):
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def venv_path(peer: str) -> Path:
    return ROOT / PEERS[peer]["venv"]


def python_of(peer: str) -> Path:
    return venv_path(peer) / "bin" / "python"


def directory_mb(path: Path) -> float:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            file = Path(folder) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return round(total / 2**20, 1)


def installed_record(peer: str):
    """The record of a finished install of this peer, or None."""
    try:
        return json.loads((venv_path(peer) / RECORD).read_text())
    except (OSError, ValueError):
        return None


def install(peer: str) -> dict:
    """The peer's venv with its pinned packages; returns its record (kept when the pins are the same)."""
    packages = PEERS[peer]["packages"]
    record = installed_record(peer)
    if record and record.get("packages") == packages and python_of(peer).exists():
        print(f"    {PEERS[peer]['venv']}/ is installed ({', '.join(packages)}; first install took "
              f"{record['install_seconds']:.0f} s, {record['venv_mb']:,.0f} MB): keeping it", flush=True)
        return record
    venv = venv_path(peer)
    (venv / RECORD).unlink(missing_ok=True)
    # a finished install with other pins is brought up to these; its first install's time still counts
    earlier_seconds = record["install_seconds"] if record and python_of(peer).exists() else 0.0
    start = time.time()
    print(f"    {'updating' if earlier_seconds else 'creating'} {venv.name}/: installing {', '.join(packages)} (the "
          "first install downloads torch 2.2.2's CUDA build, a few GB)", flush=True)
    if not python_of(peer).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python_of(peer)), "-m", "pip", "--disable-pip-version-check", "install"]
    subprocess.run(pip + ["--upgrade", "pip>=24", "setuptools", "wheel"], check=True)
    result = subprocess.run(pip + packages)
    if result.returncode != 0:
        fail(f"pip could not install {', '.join(packages)} into {venv}/ (exit status {result.returncode}; its output "
             "is above): check the network, then run again")
    probe = subprocess.run([str(python_of(peer)), "-c", f"import torch, {PEERS[peer]['module']}; "
                            "print(torch.__version__)"], capture_output=True, text=True)
    if probe.returncode != 0:
        last = probe.stderr.strip().splitlines()[-1:]
        fail(f"{venv}/ was installed but `import {PEERS[peer]['module']}` fails: {last[0] if last else '?'}")
    record = {"peer": peer, "packages": packages, "torch": probe.stdout.strip(),
              "install_seconds": round(earlier_seconds + time.time() - start, 1), "venv_mb": directory_mb(venv),
              "python": sys.version.split()[0]}
    (venv / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    print(f"    installed {peer} in {record['install_seconds']:.0f} s; {venv.name}/ is {record['venv_mb']:,.0f} MB",
          flush=True)
    return record


def parse_peers(text: str):
    peers = [peer.strip() for peer in text.split(",") if peer.strip()]
    unknown = [peer for peer in peers if peer not in PEERS]
    if unknown or not peers:
        fail(f"--peers={text!r} is not allowed: a comma-separated list of {', '.join(PEERS)}")
    return peers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", default=",".join(PEERS), help="which peers (default: %(default)s)")
    args = parser.parse_args(argv)
    peers = parse_peers(args.peers)
    for number, peer in enumerate(peers, 1):
        print(f"==> [peers install {number}/{len(peers)}] {peer}", flush=True)
        install(peer)


if __name__ == "__main__":
    main()

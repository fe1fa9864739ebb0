"""Whether bfloat16 pays on this CPU, for the recipes' ``--precision auto``: a decision that changes a recipe's result,
so it must come out the same every time on the same machine.

Two steps. A CPU without bfloat16 instructions (no ``avx512_bf16`` or ``amx_bf16`` among its flags) trains in fp32
without measuring: torch emulates bf16 there, slowly (a 2-core Xeon ran it at 0.19x fp32). Where the instructions
exist, a decoder-sized matmul is timed both ways in alternating rounds (so that load from other processes falls on
both alike), each round keeping its fastest repeat, and the median of the rounds' ratios decides. One single timing
moved between 0.7x and 2.1x on a loaded machine; the median of alternating rounds is what tests/test_bf16.py checks
against made-up timings.

Even that moved with load (the issue that asked for this saw fp32 chosen in three probes and bf16 in a fourth on
one machine): a process sharing the core's vector units slows the two precisions unequally for as long as it
runs. So the measurement is made once per CPU model, instruction flags and torch version, and pinned: kept in
``$XDG_CACHE_HOME/fairseq-attn-gru/bf16_speedup.json`` (``~/.cache`` by default) and reused, with the date and
ratio in the log line. Deleting the file (or the machine's entry in it) measures again.
"""
import datetime
import json
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import torch

from ..models.precision import cpu_bf16_autocast
from .machine import cpu_description

logger = logging.getLogger(__name__)

BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> set:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "flags":
                return set(value.split())
    except OSError:  # not Linux: nothing known, so measured
        pass
    return set(BF16_FLAGS)


def matmul_seconds(enabled: bool, rows: int = 128, width: int = 512, repeats: int = 50) -> float:
    """The fastest of ``repeats`` decoder-sized matmuls (rows × width @ width × 3·width: a GRU layer's gates)."""
    inputs, weight = torch.randn(rows, width), torch.randn(width, 3 * width)
    with cpu_bf16_autocast(enabled):
        for _ in range(5):  # warm up (oneDNN picks and caches its kernels)
            inputs @ weight
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            inputs @ weight
            best = min(best, time.perf_counter() - start)
    return best


def bf16_speedup(rounds: int = 7, seconds: Callable[[bool], float] = matmul_seconds) -> float:
    """The median over alternating rounds of fp32 time / bf16 time: above 1 where bfloat16 is faster."""
    ratios = []
    for _ in range(rounds):
        fp32 = seconds(False)
        ratios.append(fp32 / seconds(True))
    return statistics.median(ratios)


def pin_file() -> Path:
    """Where measured speedups are pinned, one entry per machine_key."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "fairseq-attn-gru" / "bf16_speedup.json"


def machine_key(flags) -> str:
    """What the speedup depends on: the CPU model, its bfloat16 instructions, torch (its kernels)."""
    present = [flag for flag in BF16_FLAGS if flag in flags]
    return f"{cpu_description()['model']} | {' '.join(present) or 'no bf16 flags'} | torch {torch.__version__}"


def read_pins(path: Path) -> Dict[str, dict]:
    try:
        pins = json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or damaged: measured (and written) again
        return {}
    return pins if isinstance(pins, dict) else {}


def pin(path: Path, key: str, speedup: float) -> bool:
    """Keep ``speedup`` for ``key`` (written to a temporary file, then renamed); False if it cannot be written."""
    pins = read_pins(path)
    pins[key] = {"speedup": round(speedup, 3), "measured": datetime.date.today().isoformat()}
    temporary = path.with_name(path.name + f".{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(pins, indent=2) + "\n")
        os.replace(temporary, path)
    except OSError as error:
        logger.warning(f"--precision auto: cannot pin the measurement in {path} ({error.strerror or error}); the next "
                       "run measures again")
        return False
    return True


def bf16_decision(min_speedup: float, flags=None, speedup: Callable[[], float] = bf16_speedup,
                  pins: Optional[Path] = None) -> Tuple[bool, str]:
    """(use bf16, why): the CPU flags first, then the speedup pinned for this machine, measured the first time."""
    flags = cpu_flags() if flags is None else flags
    if not any(flag in flags for flag in BF16_FLAGS):
        return False, "this CPU has no bfloat16 instructions (avx512_bf16, amx_bf16)"
    pins = pin_file() if pins is None else pins
    key = machine_key(flags)
    pinned = read_pins(pins).get(key)
    if isinstance(pinned, dict) and isinstance(pinned.get("speedup"), (int, float)):
        return pinned["speedup"] > min_speedup, (
            f"bfloat16 matmuls measured {pinned['speedup']:.2f}x fp32 speed on this CPU ({key}) on "
            f"{pinned.get('measured', '?')}, pinned in {pins} (delete it to measure again)")
    measured = speedup()
    where = f"pinned for this CPU in {pins}" if pin(pins, key, measured) else "not pinned"
    return measured > min_speedup, (f"bfloat16 matmuls run at {measured:.2f}x fp32 speed here (median of rounds; "
                                     f"{where})")

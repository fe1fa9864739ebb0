"""Whether bfloat16 pays on this CPU, for the recipes' ``--precision auto``: a decision that changes a recipe's result,
so it must come out the same every time on the same machine.

Two steps. A CPU without bfloat16 instructions (no ``avx512_bf16`` or ``amx_bf16`` among its flags) trains in fp32
without measuring: torch emulates bf16 there, slowly (a 2-core Xeon ran it at 0.19x fp32). Where the instructions
exist, a decoder-sized matmul is timed both ways in alternating rounds (so that load from other processes falls on
both alike), each round keeping its fastest repeat, and the median of the rounds' ratios decides. One single timing
moved between 0.7x and 2.1x on a loaded machine; the median of alternating rounds is what tests/test_bf16.py checks
against made-up timings.
"""
import statistics
import time
from pathlib import Path
from typing import Callable, Tuple

import torch

from ..models.precision import cpu_bf16_autocast

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


def bf16_decision(min_speedup: float, flags=None, speedup: Callable[[], float] = bf16_speedup) -> Tuple[bool, str]:
    """(use bf16, why): the CPU flags first, then the measured speedup against ``min_speedup``."""
    flags = cpu_flags() if flags is None else flags
    if not any(flag in flags for flag in BF16_FLAGS):
        return False, "this CPU has no bfloat16 instructions (avx512_bf16, amx_bf16)"
    measured = speedup()
    return measured > min_speedup, f"bfloat16 matmuls run at {measured:.2f}x fp32 speed here (median of rounds)"

"""What a measured figure depends on: the CPU (model, cores, the instruction-set flags that matter) and its matmul
peak, recorded with every benchmark and every time-budgeted result (a result from "an hour of training" means little
without the machine: 2-core hosts of one cloud kind measured 136-222 fp32 GFLOP/s)."""
import os
import time
from pathlib import Path

import torch

# the CPU features the figures depend on (fp32/bf16/int8 matrix instructions)
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8")


def cpu_description():
    """Model name, core count and the relevant instruction-set flags, so a results file says where it was measured."""
    model, flags = None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model is None:
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:  # not Linux
        import platform
        model = platform.processor() or platform.machine()
    return {"model": model, "cores": os.cpu_count(), "flags": [flag for flag in CPU_FLAGS if flag in flags]}


def matmul_gflops(dtype, size=2048, repeats=5):
    """The fastest of ``repeats`` size² matmuls in ``dtype``, in GFLOP/s: the machine's practical peak."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        timings.append(time.perf_counter() - start)
    return 2 * size**3 / min(timings) / 1e9


def machine_description() -> dict:
    """cpu_description() with the fp32 and bf16 matmul peaks measured now (a few seconds)."""
    return {**cpu_description(), "fp32_matmul_gflops": round(matmul_gflops(torch.float32), 1),
            "bf16_matmul_gflops": round(matmul_gflops(torch.bfloat16), 1)}

"""Whether bfloat16 pays on this CPU: measured, for the recipes' ``--precision auto``."""
import time

import torch

from ..models.precision import cpu_bf16_autocast


def bf16_speedup(rows: int = 128, width: int = 512, repeats: int = 200) -> float:
    """How many times faster a decoder-sized matmul (rows × width @ width × 3·width) runs under bf16 autocast
    than in fp32 on this CPU: above 1 where the CPU has fast bfloat16 (AVX-512 BF16 / AMX) that torch uses.

    Measured, not read off the CPU flags: one Xeon with AVX-512 BF16 ran these matmuls at half its fp32 speed.
    """
    inputs, weight = torch.randn(rows, width), torch.randn(width, 3 * width)  # a GRU layer's gates: (B, 3H)

    def seconds(enabled: bool) -> float:
        with cpu_bf16_autocast(enabled):
            for _ in range(repeats // 10):  # warm up (oneDNN picks and caches its kernels)
                inputs @ weight
            start = time.perf_counter()
            for _ in range(repeats):
                inputs @ weight  # (B, 3H)
            return time.perf_counter() - start

    return seconds(False) / seconds(True)

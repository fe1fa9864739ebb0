"""CPU bfloat16: fairseq's --bf16 assumes an accelerator, so the model runs its own autocast."""
import contextlib

import torch


def cpu_bf16_autocast(enabled: bool):
    """Matmuls and GRUs in bfloat16 on CPU when ``enabled``; weights and their gradients stay fp32."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)

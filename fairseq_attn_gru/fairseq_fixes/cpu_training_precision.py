"""Our models only: fairseq-train's ``--bf16``, ``--fp16`` and ``--amp`` where their device is missing stop with one
line that points to what works there (the model's ``--cpu-bf16`` on a CPU).

Upstream: no fairseq issue (``--bf16`` implies ``--tpu`` and, without torch_xla, ends in ``AttributeError: 'NoneType'
object has no attribute 'xla_device'``; ``--fp16``, ``--memory-efficient-fp16`` and ``--amp`` without CUDA end in
``AssertionError: Torch not compiled with CUDA enabled`` from the optimizer). Written against fairseq-fixed 0.12.3.1
(``fairseq_cli.train.main``; ``options.parse_args_and_arch`` sets ``--tpu`` for ``--bf16``, on a GPU machine too).
Scope: runs that train one of this package's models (training_interrupts.trains_ours); any other model keeps
fairseq's traceback.
"""
import importlib.util

from ..errors import UserError
from .patching import fairseq_train_modules, wrap_once
from .training_interrupts import trains_ours

SCOPE = "ours"


def refusal(cfg):
    """The one-line refusal for ``cfg``'s precision flags on this machine, or None."""
    import torch

    common = cfg.common
    if getattr(common, "bf16", False) and importlib.util.find_spec("torch_xla") is None:
        return ("--bf16 is fairseq's bfloat16 for TPUs (it implies --tpu), and this machine has no torch_xla: on a "
                "GPU use --fp16 or --amp, on a CPU this model's --cpu-bf16")
    half = [flag for flag, name in (("--fp16", "fp16"), ("--memory-efficient-fp16", "memory_efficient_fp16"),
                                    ("--amp", "amp")) if getattr(common, name, False)]
    if half and (common.cpu or not torch.cuda.is_available()):
        return (f"{half[0]} needs a CUDA GPU, and this run is on the CPU: drop it; for bfloat16 matmuls on a CPU use "
                "this model's --cpu-bf16")
    return None


def refuse_missing_device(original):
    def main(cfg, *args, **kwargs):
        message = refusal(cfg) if trains_ours(cfg) else None
        if message:
            raise UserError(message)
        return original(cfg, *args, **kwargs)

    return main


def apply() -> None:
    for module in fairseq_train_modules():
        wrap_once(module, "main", refuse_missing_device, fix=__name__)

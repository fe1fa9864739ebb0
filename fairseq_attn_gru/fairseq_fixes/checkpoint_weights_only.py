"""Global fix: fairseq reads checkpoints with ``weights_only=True`` given explicitly, so no environment variable can
turn the safe loader off behind the user's back.

Upstream: fairseq #5610 (``checkpoint_utils.load_checkpoint_to_cpu`` calls ``torch.load(f, map_location=...)``
without ``weights_only``; fairseq main's fix, #5611, passes ``weights_only=False``: unsafe). Written against
fairseq-fixed 0.12.3.1 on torch 2.13 (``checkpoint_utils.load_checkpoint_to_cpu`` and
``load_ema_from_checkpoint``). Scope: every model (a checkpoint is read before anyone knows whose it is).

torch >= 2.6 defaults ``torch.load`` to ``weights_only=True``, but only where the caller leaves the argument out:
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` then turns it to ``False`` (torch/serialization.py: "can only override if
callsite did not explicitly set weights_only"), and a checkpoint's pickle may run any code it names:
fairseq-generate, fairseq-interactive, resuming fairseq-train and ``from_pretrained`` all load through these two
functions. While one of them runs, ``torch.load`` calls that leave ``weights_only`` out get ``weights_only=True``;
every other ``torch.load`` in the process is left alone (a call that passes ``weights_only`` keeps its value).
Checkpoints still load: checkpoint_safe_globals allows the few classes fairseq writes into them. To load a
checkpoint you trust that holds other objects, set ``FAIRSEQ_ATTN_GRU_GLOBAL_FIXES=0`` (then fairseq's and torch's
own rules apply, the environment variable included).
"""
import threading

from .patching import wrap_once

SCOPE = "global"
_state = threading.local()  # .depth > 0 while a fairseq checkpoint loader runs in this thread


def _loading_checkpoint() -> bool:
    return getattr(_state, "depth", 0) > 0


def explicit_weights_only(original):
    def load(*args, **kwargs):
        pickle_module = args[2] if len(args) > 2 else kwargs.get("pickle_module")
        if _loading_checkpoint() and kwargs.get("weights_only") is None and pickle_module is None:
            kwargs["weights_only"] = True
        return original(*args, **kwargs)

    return load


def safe_loader(original):
    def loader(*args, **kwargs):
        _state.depth = getattr(_state, "depth", 0) + 1
        try:
            return original(*args, **kwargs)
        finally:
            _state.depth -= 1

    return loader


def apply() -> None:
    import torch
    from fairseq import checkpoint_utils

    wrap_once(torch, "load", explicit_weights_only, fix=__name__)
    for name in ("load_checkpoint_to_cpu", "load_ema_from_checkpoint"):
        wrap_once(checkpoint_utils, name, safe_loader, fix=__name__)

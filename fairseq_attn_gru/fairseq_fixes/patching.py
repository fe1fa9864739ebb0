"""The one way this package changes fairseq: ``wrap_once`` replaces a function by a wrapper around it.

A wrapper is applied at most once per process, however often the package is imported (``--user-dir`` and a
plain ``import`` can both run it), and it keeps the original reachable as ``__wrapped__``.
"""
import functools
import os
from typing import Callable, Iterable

import torch

from ..models.gru_attn import GRUAttnModel

#: set to 0 to leave every global fix (fairseq_fixes/__init__.py lists them) unapplied
GLOBAL_FIXES_ENV = "FAIRSEQ_ATTN_GRU_GLOBAL_FIXES"
_MARK = "_fairseq_attn_gru_fix"


def global_fixes_enabled() -> bool:
    return os.environ.get(GLOBAL_FIXES_ENV, "1") != "0"


def wrap_once(owner, name: str, make_wrapper: Callable[[Callable], Callable], fix: str) -> None:
    """``owner.name = make_wrapper(original)`` unless ``fix`` has wrapped it already.

    Static and class methods stay what they are: the wrapper receives the plain function and is re-wrapped.
    """
    descriptor = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    kind = type(descriptor) if isinstance(descriptor, (staticmethod, classmethod)) else None
    original = descriptor.__func__ if kind else descriptor
    if getattr(original, _MARK, None) == fix:
        return
    wrapper = functools.wraps(original)(make_wrapper(original))
    setattr(wrapper, _MARK, fix)
    setattr(owner, name, kind(wrapper) if kind else wrapper)


def is_ours(model) -> bool:
    """Whether ``model`` (or the model inside a DDP or ensemble wrapper) is this package's, eager or TorchScript."""
    while not _ours(model) and hasattr(model, "module"):
        model = model.module
    return _ours(model)


def _ours(model) -> bool:
    # a scripted (or torch.jit.load-ed) GRUAttnModel is the same model: beam search keeps the same rules for it
    scripted = isinstance(model, torch.jit.ScriptModule) and getattr(model, "original_name", None) == "GRUAttnModel"
    return isinstance(model, GRUAttnModel) or scripted


def all_ours(models: Iterable) -> bool:
    models = list(models)
    return len(models) > 0 and all(is_ours(model) for model in models)


def serving_ours() -> bool:
    """Whether a model of this package lives in this process (fairseq-interactive loads models before reading)."""
    return len(GRUAttnModel.live_instances) > 0

"""The one way this package changes fairseq: ``wrap_once`` replaces a function by a wrapper around it.

A wrapper is applied at most once per process, however often the package is imported (``--user-dir`` and a
plain ``import`` can both run it), and it keeps the original reachable as ``__wrapped__``.

Every fix was written against one fairseq (``FAIRSEQ_VERSION``) and relies on the parameters of what it wraps. When it
is applied, ``wrap_once`` checks both: on another fairseq, or where the function's parameters are not those the
wrapper names, the fix is left out and one warning line says which fix, what it wraps and why.
"""
import functools
import inspect
import logging
import os
import sys
from typing import Callable, Iterable, List, Optional

import torch

from ..models.gru_attn import GRUAttnModel

logger = logging.getLogger(__name__)

#: set to 0 to leave every global fix (fairseq_fixes/__init__.py lists them) unapplied
GLOBAL_FIXES_ENV = "FAIRSEQ_ATTN_GRU_GLOBAL_FIXES"
#: the fairseq every fix was written and tested against (fairseq-fixed's version string)
FAIRSEQ_VERSION = "0.12.3.1"
_MARK = "_fairseq_attn_gru_fix"


def global_fixes_enabled() -> bool:
    return os.environ.get(GLOBAL_FIXES_ENV, "1") != "0"


def fairseq_version() -> str:
    import fairseq

    return getattr(fairseq, "__version__", "unknown")


def wrap_once(owner, name: str, make_wrapper: Callable[[Callable], Callable], fix: str) -> bool:
    """``owner.name = make_wrapper(original)`` unless ``fix`` has wrapped it already, or cannot: True when it is.

    Static and class methods stay what they are: the wrapper receives the plain function and is re-wrapped.
    """
    descriptor = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    kind = type(descriptor) if isinstance(descriptor, (staticmethod, classmethod)) else None
    original = descriptor.__func__ if kind else descriptor
    if getattr(original, _MARK, None) == fix:
        return True
    wrapper = make_wrapper(original)
    problem = why_not_applicable(original, wrapper)
    if problem is not None:
        skip(fix, f"{getattr(owner, '__name__', type(owner).__name__)}.{name}", problem)
        return False
    wrapper = functools.wraps(original)(wrapper)
    setattr(wrapper, _MARK, fix)
    setattr(owner, name, kind(wrapper) if kind else wrapper)
    return True


def why_not_applicable(original: Callable, wrapper: Callable) -> Optional[str]:
    """Why ``wrapper`` must not replace ``original`` (another fairseq, other parameters), or None."""
    version = fairseq_version()
    if version != FAIRSEQ_VERSION:
        return f"written for fairseq {FAIRSEQ_VERSION}, this is fairseq {version}"
    return signature_mismatch(original, wrapper)


def signature_mismatch(original: Callable, wrapper: Callable) -> Optional[str]:
    """Where the parameters ``wrapper`` names differ from ``original``'s (None when they agree): each named
    parameter sits at the same place with the same name, and what the wrapper does not name it passes on (*args,
    **kwargs)."""
    try:
        # through __wrapped__: fairseq's own parameters when another fix wrapped the function first
        have = list(inspect.signature(original).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: nothing to compare
        return None
    wants = list(inspect.signature(wrapper, follow_wrapped=False).parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    named = [p for p in wants if p.kind in positional]
    passes_on = {p.kind for p in wants} & {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD}
    have_positional = [p for p in have if p.kind in positional]
    expected = "(" + ", ".join(p.name for p in named) + ")"
    found = "(" + ", ".join(p.name for p in have_positional) + ")"
    if [p.name for p in have_positional[: len(named)]] != [p.name for p in named]:
        return f"its parameters are {found}, the fix expects {expected}"
    if len(have_positional) > len(named) and inspect.Parameter.VAR_POSITIONAL not in passes_on:
        return f"its parameters are {found}, the fix expects {expected}"
    keyword_only = [p.name for p in have if p.kind == inspect.Parameter.KEYWORD_ONLY]
    if keyword_only and inspect.Parameter.VAR_KEYWORD not in passes_on and \
            not set(keyword_only) <= {p.name for p in wants}:
        return f"it takes keyword arguments {keyword_only} that the fix does not pass on"
    return None


def skip(fix: str, target: str, reason: str) -> None:
    """The one line a fix that is left out says."""
    logger.warning(f"fairseq-attn-gru: {fix.rsplit('.', 1)[-1]} fix skipped: fairseq's {target} is not what it was "
                   f"written for ({reason}); that part of fairseq runs unchanged")


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


def fairseq_train_modules() -> List[object]:
    """fairseq-train's module (``fairseq_cli.train``, or ``__main__`` run as it) where this process runs it; none
    otherwise. fairseq-train imports it before ``--user-dir``; importing it here would configure the logging of every
    Python session that imports this package."""
    found = []
    for module in (sys.modules.get("fairseq_cli.train"), sys.modules.get("__main__")):
        spec = getattr(module, "__spec__", None)
        if module is not None and getattr(spec, "name", None) == "fairseq_cli.train" and hasattr(module, "main") \
                and module not in found:
            found.append(module)
    return found

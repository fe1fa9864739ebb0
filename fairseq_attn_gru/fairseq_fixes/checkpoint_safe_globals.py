"""Global fix: fairseq checkpoints load on PyTorch >= 2.6 with ``weights_only=True`` kept.

Upstream: fairseq #5610 (fixed on fairseq main by #5611, which turns ``weights_only`` off: unsafe). Written against
fairseq-fixed 0.12.3.1 on torch 2.13. Scope: every model (torch's list of safe globals is process-wide, and
a checkpoint is read before anyone knows whose it is).

fairseq checkpoints hold, besides tensors and plain containers, an ``argparse.Namespace`` (the legacy ``args``
entry) and, when trained with ``--eval-bleu``, numpy int64/float64 arrays (the BLEU n-gram counts in the metrics'
state). We allow exactly those: an ndarray rebuilt from these globals can only hold plain numbers (object arrays
need globals that stay refused). A checkpoint carrying any other object fails to load instead of running code.
"""
import argparse

import numpy as np
import torch

_numpy_core = getattr(np, "_core", None) or np.core  # numpy 2.x / 1.x

SCOPE = "global"

#: the only non-tensor classes found in fairseq-written checkpoints (see tests/test_checkpoints.py)
CHECKPOINT_SAFE_GLOBALS = [
    argparse.Namespace,
    _numpy_core.multiarray._reconstruct,
    np.ndarray,
    np.dtype,
    type(np.dtype(np.int64)),
    type(np.dtype(np.float64)),
]


def apply() -> None:
    add_safe_globals = getattr(torch.serialization, "add_safe_globals", None)
    if add_safe_globals is not None:  # torch < 2.4 loads everything anyway
        add_safe_globals(CHECKPOINT_SAFE_GLOBALS)

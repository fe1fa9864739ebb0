"""Our models only: a multi-process run resumes from its checkpoint on every rank.

Upstream: no fairseq issue found (the same torch >= 2.6 ``weights_only`` default as fairseq #5610, in another
place). Written against fairseq-fixed 0.12.3.1 on torch 2.13 (``fairseq.distributed.utils._broadcast_object_slow``).
Scope: a process that holds one of this package's models (``Trainer.load_checkpoint`` broadcasts the state after
the model is built); for any other model fairseq's code runs unchanged.

Rank 0 reads the checkpoint (safely) and turns its ``cfg`` into an omegaconf ``DictConfig``; fairseq then sends the
state to the other ranks as ``torch.save`` bytes that they read with ``torch.load``'s default ``weights_only=True``,
which refuses ``DictConfig``: rank 1 died with "Unsupported global: GLOBAL omegaconf.dictconfig.DictConfig". While a
rank receives such an object, exactly the classes fairseq's broadcast and omegaconf's containers are made of are
allowed (``torch.serialization.safe_globals``, for that one ``torch.load`` only); nothing else is, and no other load
in the process sees them.
"""
import collections
import typing

from .patching import serving_ours, wrap_once

SCOPE = "ours"


def broadcast_safe_globals() -> list:
    """The globals of a fairseq checkpoint state after load_checkpoint_to_cpu, as fairseq broadcasts it."""
    from fairseq.distributed import utils as distributed_utils
    from omegaconf import base, dictconfig, listconfig, nodes

    node_types = [getattr(nodes, name) for name in ("AnyNode", "StringNode", "IntegerNode", "FloatNode",
                                                    "BooleanNode", "BytesNode", "PathNode") if hasattr(nodes, name)]
    return [dictconfig.DictConfig, listconfig.ListConfig, base.ContainerMetadata, base.Metadata, *node_types,
            distributed_utils._TensorPlaceholder, typing.Any, collections.defaultdict, dict, list, int]


def receive_omegaconf(original):
    def _broadcast_object_slow(obj, src_rank, group, dist_device):
        import torch

        if not serving_ours():
            return original(obj, src_rank, group, dist_device)
        allowed = set(torch.serialization.get_safe_globals())
        extra = [g for g in broadcast_safe_globals() if g not in allowed]  # leaving the context removes these only
        with torch.serialization.safe_globals(extra):
            return original(obj, src_rank, group, dist_device)

    return _broadcast_object_slow


def apply() -> None:
    from fairseq.distributed import utils as distributed_utils

    wrap_once(distributed_utils, "_broadcast_object_slow", receive_omegaconf, fix=__name__)

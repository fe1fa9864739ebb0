"""Dropout with a cheaper mask: 32 random bits per element, two per 64-bit draw, instead of ``bernoulli_``.

Why it exists: on CPU, ``F.dropout`` draws its mask with ``bernoulli_``, one generator call per element; that was
4.6 % of a training step of the bench's dot model (docs/history/benchmarks.md). ``random_`` on int64 fills two 32-bit
words per call. An element is kept when its word is at least round(p·2³²) above the smallest int32, so
P(drop) = round(p·2³²) / 2³², within 2⁻³³ of p (``torch.rand``'s floats come in steps of 2⁻²⁴). Kept elements are
scaled by 1/(1 − p), as ``F.dropout`` does, so the expectation is unchanged; the generator is PyTorch's default
one, so ``--seed`` makes masks reproducible as before (they differ from ``F.dropout``'s). TorchScript compiles
``F.dropout`` in its place (a scripted model is for inference, where dropout is off).
"""
import math
from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.modules import FairseqDropout
from torch import Tensor

INT32_MIN = -(2**31)


@torch.jit.unused
def keep_mask(shape: List[int], p: float) -> Tensor:
    """Boolean mask of ``shape``: each element True with probability 1 − p (to within 2⁻³³), independently."""
    count = math.prod(shape)
    draws = torch.empty((count + 1) // 2, dtype=torch.int64).random_(-(2**63), 2**63 - 1)  # (⌈n/2⌉,)
    words = draws.view(torch.int32)[:count].view(shape)  # two 32-bit words per draw
    return words >= INT32_MIN + round(p * 2**32)


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """``F.dropout(x, p, training)`` with the mask of ``keep_mask`` on CPU (elsewhere, ``F.dropout`` itself)."""
    if not training or p == 0:
        return x
    if torch.jit.is_scripting() or not 0 < p < 1 or x.device.type != "cpu":
        return F.dropout(x, p, training=True)  # p = 1 zeroes everything; F.dropout also reports a bad p
    return x * keep_mask(list(x.shape), p) * (1.0 / (1.0 - p))


class Dropout(FairseqDropout):
    """fairseq's dropout module (same options, ``--retain-dropout`` included) with :func:`dropout`'s mask."""

    def forward(self, x: Tensor, inplace: bool = False) -> Tensor:
        # ``inplace`` is in fairseq's signature; the result is always returned, never written into ``x``
        return dropout(x, self.p, self.training or self.apply_during_inference)


class WordDropout(nn.Module):
    """Whole tokens dropped: each (sentence, position) embedding zeroed with probability p, the others scaled by
    1/(1 − p) (Nematus' ``--dropout_source`` / ``--dropout_target``; Gal and Ghahramani 2016, "A Theoretically
    Grounded Application of Dropout in Recurrent Neural Networks"). Training only, like dropout."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, embedded: Tensor) -> Tensor:  # (B, T, E)
        if not self.training or self.p == 0:
            return embedded
        batch_size, length, _ = embedded.shape
        keep = dropout(embedded.new_ones(batch_size, length, 1), self.p, True)  # (B, T, 1): 0 or 1/(1 − p)
        return embedded * keep  # (B, T, E)

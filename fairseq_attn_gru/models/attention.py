"""Attention scores, one small class each.

Every class maps decoder queries ``s`` (B, T, Hq) and encoder outputs ``h`` (B, S, C) to
weights (B, T, S) and contexts (B, T, C). The decoder only calls two methods and never
learns which score it holds:

* ``project_keys(h)`` once per source sentence (the part of the score that depends on ``h`` only),
* ``forward(s, keys, h, encoder_padding_mask)`` for one step (T = 1) or all steps at once.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .concat_score import BLOCK_ELEMENTS, ConcatScore, concat_scores


class Attention(nn.Module):
    """Masked softmax over source positions of ``score(s, keys)``, then a weighted sum of ``h``."""

    #: True when ``project_keys`` does work worth caching during incremental decoding.
    projects_keys = False
    __constants__ = ["projects_keys"]  # TorchScript reads the class attribute as a constant

    def __init__(self, query_dim: int, value_dim: int):
        super().__init__()
        self.query_dim = query_dim
        self.value_dim = value_dim

    def project_keys(self, encoder_outs: Tensor) -> Tensor:
        return encoder_outs  # (B, S, C)

    def score(self, queries: Tensor, keys: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(
        self,
        queries: Tensor,
        keys: Tensor,
        values: Tensor,
        encoder_padding_mask: Optional[Tensor],
    ) -> Tuple[Tensor, Tensor]:
        scores = self.score(queries, keys)  # (B, T, S)
        if encoder_padding_mask is not None:
            # -inf gives padding exactly zero weight; every sentence has >= 1 real token (its eos)
            scores = scores.masked_fill(encoder_padding_mask.unsqueeze(1), float("-inf"))  # (B, T, S)
        # softmax in at least fp32 so bf16/fp16 scores do not lose the small weights
        softmax_dtype = torch.promote_types(scores.dtype, torch.float32)
        weights = F.softmax(scores, dim=-1, dtype=softmax_dtype).type_as(values)  # (B, T, S)
        context = torch.bmm(weights, values)  # (B, T, C)
        return context, weights


class DotAttention(Attention):
    """score(s, h) = s · h  (needs the query and encoder-output sizes to match)."""

    def __init__(self, query_dim: int, value_dim: int):
        super().__init__(query_dim, value_dim)
        if query_dim != value_dim:
            raise ValueError(f"dot attention needs equal sizes, got query {query_dim} and key {value_dim}")

    def score(self, queries: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(queries, keys.transpose(1, 2))  # (B, T, S)


class GeneralAttention(Attention):
    """score(s, h) = s · W h, with W h computed once per source sentence."""

    projects_keys = True

    def __init__(self, query_dim: int, value_dim: int):
        super().__init__(query_dim, value_dim)
        self.key_proj = nn.Linear(value_dim, query_dim, bias=False)  # W

    def project_keys(self, encoder_outs: Tensor) -> Tensor:
        return self.key_proj(encoder_outs)  # (B, S, Hq)

    def score(self, queries: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(queries, keys.transpose(1, 2))  # (B, T, S)


class ScoreVector(nn.Linear):
    """vᵀ of the concat score: a bias-free ``Linear(A, 1)`` by its parameter (checkpoints call it ``v.weight``), read
    as a vector by ``concat_score``. Its own class so that int8's dynamic quantization, which converts modules of
    exactly type ``nn.Linear``, leaves it fp32: it multiplies elementwise work, there is no matmul to speed up."""


class ConcatAttention(Attention):
    """score(s, h) = vᵀ tanh(W₁ s + W₂ h), with W₂ h computed once per source sentence (Bahdanau's additive score).

    The (B, T, S, A) tanh is never stored: ``concat_score.py`` computes it in cache-sized blocks, in at least fp32.
    """

    projects_keys = True

    def __init__(self, query_dim: int, value_dim: int, attention_dim: Optional[int] = None):
        super().__init__(query_dim, value_dim)
        attention_dim = attention_dim or query_dim
        self.query_proj = nn.Linear(query_dim, attention_dim, bias=False)  # W₁
        self.key_proj = nn.Linear(value_dim, attention_dim, bias=False)  # W₂
        self.v = ScoreVector(attention_dim, 1, bias=False)  # vᵀ
        self.block_elements = BLOCK_ELEMENTS  # an attribute: TorchScript cannot read a module-level int

    def project_keys(self, encoder_outs: Tensor) -> Tensor:
        return self.key_proj(encoder_outs)  # (B, S, A)

    def score(self, queries: Tensor, keys: Tensor) -> Tensor:
        projected_queries = self.query_proj(queries)  # (B, T, A)
        v = self.v.weight.view(-1)  # (A,)
        needs_grad = torch.is_grad_enabled() and (projected_queries.requires_grad or keys.requires_grad or v.requires_grad)
        if not needs_grad:
            return concat_scores(projected_queries, keys, v, self.block_elements)  # (B, T, S)
        if torch.jit.is_scripting():  # TorchScript cannot call an autograd Function: the plain formula
            hidden = torch.tanh(projected_queries.unsqueeze(2) + keys.unsqueeze(1))  # (B, T, S, A)
            return torch.matmul(hidden, v)  # (B, T, S)
        return self._score_with_backward(projected_queries, keys, v)  # (B, T, S)

    @torch.jit.unused
    def _score_with_backward(self, projected_queries: Tensor, keys: Tensor, v: Tensor) -> Tensor:
        return ConcatScore.apply(projected_queries, keys, v, self.block_elements)  # (B, T, S)


ATTENTION_CLASSES = {"dot": DotAttention, "general": GeneralAttention, "concat": ConcatAttention}


def build_attention(attention_type: str, query_dim: int, value_dim: int) -> Optional[Attention]:
    """The attention module for ``--attention-type``; None for ``none``."""
    if attention_type == "none":
        return None
    return ATTENTION_CLASSES[attention_type](query_dim, value_dim)

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


class ConcatAttention(Attention):
    """score(s, h) = vᵀ tanh(W₁ s + W₂ h), with W₂ h computed once per source sentence (Bahdanau's additive score)."""

    projects_keys = True

    def __init__(self, query_dim: int, value_dim: int, attention_dim: Optional[int] = None):
        super().__init__(query_dim, value_dim)
        attention_dim = attention_dim or query_dim
        self.query_proj = nn.Linear(query_dim, attention_dim, bias=False)  # W₁
        self.key_proj = nn.Linear(value_dim, attention_dim, bias=False)  # W₂
        self.v = nn.Linear(attention_dim, 1, bias=False)  # vᵀ

    def project_keys(self, encoder_outs: Tensor) -> Tensor:
        return self.key_proj(encoder_outs)  # (B, S, A)

    def score(self, queries: Tensor, keys: Tensor) -> Tensor:
        projected_queries = self.query_proj(queries)  # (B, T, A)
        hidden = torch.tanh(projected_queries.unsqueeze(2) + keys.unsqueeze(1))  # (B, T, S, A)
        return self.v(hidden).squeeze(-1)  # (B, T, S)


ATTENTION_CLASSES = {"dot": DotAttention, "general": GeneralAttention, "concat": ConcatAttention}


def build_attention(attention_type: str, query_dim: int, value_dim: int) -> Optional[Attention]:
    """The attention module for ``--attention-type``; None for ``none``."""
    if attention_type == "none":
        return None
    return ATTENTION_CLASSES[attention_type](query_dim, value_dim)

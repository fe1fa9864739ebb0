"""The ``gru_attn`` model: encoder, decoder, decoder orders, attention scores, the GRU recurrence, its config."""
from .gru_attn import GRUAttnModel

__all__ = ["GRUAttnModel"]

"""Decoder orders: where attention sits relative to the GRU step, one small class each.

The decoder holds one order, as it holds one attention score, and never asks which one it is. An order
knows two widths (what the GRU reads, what the output layer reads) and the two halves of a step around the
decoder's GRU::

    rnn_input, context, attn = order.before_rnn(embedded, hidden, input_feed, memory, attention)
    rnn_out, hidden = rnn(rnn_input, hidden)                                  # the decoder's GRU
    feature_input, attn, hidden = order.after_rnn(embedded, rnn_out, hidden, context, attn, memory, attention, dropout)

(``GRUDecoder.order_step``). The GRU, the attention score and the dropout stay the decoder's (their parameter names
are the checkpoint's); an order that needs weights of its own registers them itself (built like the decoder's GRU:
``layer_norm`` is the decoder's ``--decoder-layer-norm``). Why two halves: TorchScript passes modules to a method
only as module interfaces (``AttentionModule``, ``DropoutModule`` below), and ``nn.GRU`` has no scriptable
``forward`` to type one by, so the decoder calls its GRU between the halves. ``memory`` is
``(keys, values, encoder_padding_mask)``, or None without attention.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from .recurrent import build_rnn

#: (keys (U, S, A), values (U, S, C), encoder_padding_mask (U, S)): what attention reads, once per sentence (in beam
#: search U sentences for U·k rows of beams: ``attend``)
Memory = Tuple[Tensor, Tensor, Tensor]


@torch.jit.interface
class AttentionModule(nn.Module):
    """Any attention score (models/attention.py), as TorchScript types a module argument."""

    def forward(self, queries: Tensor, keys: Tensor, values: Tensor,
                encoder_padding_mask: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        pass


@torch.jit.interface
class DropoutModule(nn.Module):
    """fairseq's FairseqDropout, as TorchScript types a module argument."""

    def forward(self, x: Tensor, inplace: bool) -> Tensor:
        pass


class DecoderOrder(nn.Module):
    """One decoder step: the GRU, attention, and the vector ``tanh(W ·)`` turns into the output feature."""

    #: the order reads a context at every step (``--attention-type none`` cannot work)
    needs_attention = False
    #: the previous output feature may be fed to the GRU (``--input-feeding``)
    takes_input_feeding = False

    def __init__(self, rnn_input_dim: int, feature_input_dim: int, runs_whole_target: bool):
        super().__init__()
        #: width of the GRU's input at each step
        self.rnn_input_dim = rnn_input_dim
        #: width of what the output projection reads
        self.feature_input_dim = feature_input_dim
        #: all target steps may go through the GRU in one call: nothing but the GRU carries a step to the next
        self.runs_whole_target = runs_whole_target

    def before_rnn(self, embedded: Tensor, hidden: Tensor, input_feed: Optional[Tensor], memory: Optional[Memory],
                   attention: Optional[AttentionModule]) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
        """The GRU's input (B, T, I); the context and attention weights when attention comes first, else Nones."""
        raise NotImplementedError

    def after_rnn(self, embedded: Tensor, rnn_out: Tensor, hidden: Tensor, context: Optional[Tensor],
                  attn: Optional[Tensor], memory: Optional[Memory], attention: Optional[AttentionModule],
                  dropout: DropoutModule) -> Tuple[Tensor, Optional[Tensor], Tensor]:
        """From the GRU's outputs (B, T, H) and states (L, B, H): feature input (B, T, ·), attention, states."""
        raise NotImplementedError


def attend(query: Tensor, memory: Optional[Memory], attention: Optional[AttentionModule]) -> Tuple[Tensor, Tensor]:
    """``attention`` of ``query`` (B, T, H) over ``memory``: context (B, T, C) and weights (B, T, S).

    In beam search ``memory`` holds one row per sentence (U rows) for B = U·k rows of beams, a sentence's k beams side
    by side (encoder.regroup): their queries go to attention as one sentence's k·T queries, so that each sentence's
    keys and values are read once for all its beams, not once per beam (what bounded int8 beam search with general
    attention: the attention products stay fp32 and are memory-bound).
    """
    assert attention is not None and memory is not None, "this decoder order needs attention"
    keys, values, encoder_padding_mask = memory
    rows, steps = query.size(0), query.size(1)
    sentences = keys.size(0)
    if rows == sentences:
        return attention.forward(query, keys, values, encoder_padding_mask)
    grouped = query.reshape(sentences, (rows // sentences) * steps, query.size(2))  # (U, k·T, H)
    context, weights = attention.forward(grouped, keys, values, encoder_padding_mask)  # (U, k·T, C), (U, k·T, S)
    return context.reshape(rows, steps, context.size(2)), weights.reshape(rows, steps, weights.size(2))


class LuongOrder(DecoderOrder):
    """GRU step first, then attention on the new state (Luong et al. 2015)::

        s_t = GRU([E y_{t-1}; f_{t-1} if input feeding], s_{t-1});  c_t = attend(s_t);  feature input [s_t; c_t]

    Without input feeding the attention reads only the GRU's outputs, so a whole target runs at once.
    """

    takes_input_feeding = True

    def __init__(self, embed_dim: int, hidden_size: int, context_dim: int, input_feeding: bool, feed_dim: int,
                 layer_norm: bool = False):
        super().__init__(rnn_input_dim=embed_dim + (feed_dim if input_feeding else 0),
                         feature_input_dim=hidden_size + context_dim, runs_whole_target=not input_feeding)

    def before_rnn(self, embedded: Tensor, hidden: Tensor, input_feed: Optional[Tensor], memory: Optional[Memory],
                   attention: Optional[AttentionModule]) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
        rnn_input = embedded if input_feed is None else torch.cat([embedded, input_feed], dim=-1)  # (B, T, E [+ O])
        return rnn_input, None, None

    def after_rnn(self, embedded: Tensor, rnn_out: Tensor, hidden: Tensor, context: Optional[Tensor],
                  attn: Optional[Tensor], memory: Optional[Memory], attention: Optional[AttentionModule],
                  dropout: DropoutModule) -> Tuple[Tensor, Optional[Tensor], Tensor]:
        rnn_out = dropout.forward(rnn_out, inplace=False)  # (B, T, H)
        if attention is None:
            return rnn_out, None, hidden  # (B, T, H)
        context, attn = attend(rnn_out, memory, attention)  # (B, T, C), (B, T, S)
        return torch.cat([rnn_out, context], dim=-1), attn, hidden  # (B, T, H + C)


class BahdanauOrder(DecoderOrder):
    """Attention on the previous state first, then the GRU over the context (Bahdanau et al. 2015)::

        c_t = attend(s_{t-1});  s_t = GRU([E y_{t-1}; c_t], s_{t-1});  feature input [s_t; c_t; E y_{t-1}]

    Each step's input depends on the state before it: always one step at a time.
    """

    needs_attention = True

    def __init__(self, embed_dim: int, hidden_size: int, context_dim: int, input_feeding: bool, feed_dim: int,
                 layer_norm: bool = False):
        if input_feeding:  # the config refuses it first, with the flag's name
            raise ValueError("the Bahdanau order already feeds the context; it takes no input feeding")
        super().__init__(rnn_input_dim=embed_dim + context_dim,
                         feature_input_dim=hidden_size + context_dim + embed_dim, runs_whole_target=False)

    def before_rnn(self, embedded: Tensor, hidden: Tensor, input_feed: Optional[Tensor], memory: Optional[Memory],
                   attention: Optional[AttentionModule]) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
        query = hidden[-1].unsqueeze(1)  # (B, 1, H): the previous top-layer state
        context, attn = attend(query, memory, attention)  # (B, 1, C), (B, 1, S)
        return torch.cat([embedded, context], dim=-1), context, attn  # (B, 1, E + C)

    def after_rnn(self, embedded: Tensor, rnn_out: Tensor, hidden: Tensor, context: Optional[Tensor],
                  attn: Optional[Tensor], memory: Optional[Memory], attention: Optional[AttentionModule],
                  dropout: DropoutModule) -> Tuple[Tensor, Optional[Tensor], Tensor]:
        assert context is not None  # before_rnn's
        rnn_out = dropout.forward(rnn_out, inplace=False)  # (B, 1, H)
        return torch.cat([rnn_out, context, embedded], dim=-1), attn, hidden  # (B, 1, H + C + E)


class ConditionalGRUOrder(DecoderOrder):
    """The conditional GRU of Nematus (Sennrich et al. 2017): a GRU step, attention, then a second GRU over the context::

        s'_t = GRU1(E y_{t-1}, s_{t-1});  c_t = attend(s'_t);  s_t = GRU2(c_t, s'_t);  feature input [s_t; E y_{t-1}; c_t]

    so the output feature is ``tanh(W1 s_t + W2 E y_{t-1} + W3 c_t)``. GRU1 is the decoder's GRU (all its layers;
    the top layer's state is the one attention reads and GRU2 updates); GRU2 is this order's ``context_gru``.
    s_t feeds the next step's GRU1: one step at a time.
    """

    needs_attention = True

    def __init__(self, embed_dim: int, hidden_size: int, context_dim: int, input_feeding: bool, feed_dim: int,
                 layer_norm: bool = False):
        if input_feeding:  # the config refuses it first, with the flag's name
            raise ValueError("the conditional GRU already feeds the context; it takes no input feeding")
        super().__init__(rnn_input_dim=embed_dim, feature_input_dim=hidden_size + embed_dim + context_dim,
                         runs_whole_target=False)
        self.context_gru = build_rnn(context_dim, hidden_size, 1, False, 0.0, layer_norm)  # GRU2, one layer

    def before_rnn(self, embedded: Tensor, hidden: Tensor, input_feed: Optional[Tensor], memory: Optional[Memory],
                   attention: Optional[AttentionModule]) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
        return embedded, None, None  # (B, 1, E): GRU1 reads the embedding only

    def after_rnn(self, embedded: Tensor, rnn_out: Tensor, hidden: Tensor, context: Optional[Tensor],
                  attn: Optional[Tensor], memory: Optional[Memory], attention: Optional[AttentionModule],
                  dropout: DropoutModule) -> Tuple[Tensor, Optional[Tensor], Tensor]:
        context, attn = attend(rnn_out, memory, attention)  # (B, 1, C), (B, 1, S): rnn_out is s'_t
        state, top = self.context_gru(context, hidden[-1:].contiguous())  # (B, 1, H), (1, B, H): s_t = GRU2(c_t, s'_t)
        hidden = torch.cat([hidden[:-1], top], dim=0)  # (L, B, H): the top layer carries s_t on
        features = torch.cat([dropout.forward(state, inplace=False), embedded, context], dim=-1)  # (B, 1, H + E + C)
        return features, attn, hidden


#: ``--decoder-style`` -> its class
DECODER_ORDERS = {"luong": LuongOrder, "bahdanau": BahdanauOrder, "cgru": ConditionalGRUOrder}


def build_decoder_order(style: str, embed_dim: int, hidden_size: int, context_dim: int, input_feeding: bool,
                        feed_dim: int, layer_norm: bool = False) -> DecoderOrder:
    return DECODER_ORDERS[style](embed_dim, hidden_size, context_dim, input_feeding, feed_dim, layer_norm)

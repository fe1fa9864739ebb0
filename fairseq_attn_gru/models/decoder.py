"""GRU decoder: any decoder order, any attention score, incremental decoding for fairseq's generators."""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.logging import metrics
from fairseq.models import FairseqIncrementalDecoder
from torch import Tensor

from .attention import Attention
from .decoder_orders import DecoderOrder, Memory
from .dropout import Dropout, WordDropout
from .encoder import regroup
from .precision import cpu_bf16_autocast
from .recurrent import build_rnn

State = Dict[str, Optional[Tensor]]
#: fairseq's incremental state: a State per module, under the module's own key
IncrementalState = Dict[str, Dict[str, Optional[Tensor]]]


def teacher_forcing_probability(start: float, minimum: float, decay_updates: int, num_updates: int) -> float:
    """P(feed the gold token): ``start`` lowered linearly to ``minimum`` over the first ``decay_updates`` updates."""
    if decay_updates <= 0 or minimum >= start:
        return start
    progress = min(num_updates / decay_updates, 1.0)
    return start - (start - minimum) * progress


class GRUDecoder(FairseqIncrementalDecoder):
    """GRU decoder over a target prefix.

    Each step runs its ``order`` (decoder_orders.py: Luong, Bahdanau, conditional GRU) around this decoder's GRU
    (``order_step``): the order says where attention sits relative to the GRU; the output feature is ``tanh(W x)``
    of what the order returns, optionally fed back to the next step (``input_feeding``), and the vocabulary
    projection reads it. ``torch.jit.script`` compiles the inference path (``_decode``); the CPU bf16 autocast
    context and scheduled sampling are eager-only.
    """

    def __init__(
        self,
        dictionary,
        embed_tokens: nn.Embedding,
        hidden_size: int,
        out_embed_dim: int,
        num_layers: int,
        dropout_in: float,
        dropout_out: float,
        attention: Optional[Attention],
        order: DecoderOrder,
        input_feeding: bool,
        encoder_final_dim: int,
        share_input_output_embed: bool,
        teacher_forcing: float = 1.0,
        teacher_forcing_min: float = 1.0,
        teacher_forcing_decay_updates: int = 0,
        max_target_positions: int = 1024,
        cpu_bf16: bool = False,
        layer_norm: bool = False,
        transition_depth: int = 1,
        word_dropout: float = 0.0,
    ):
        super().__init__(dictionary)
        self.embed_tokens = embed_tokens
        self.dropout_in_module = Dropout(dropout_in, module_name=self.__class__.__name__)
        self.dropout_out_module = Dropout(dropout_out, module_name=self.__class__.__name__)
        self.word_dropout = WordDropout(word_dropout)
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.attention = attention
        self.order = order
        self.input_feeding = input_feeding

        # the learned bridge: final encoder states -> initial state of every decoder layer
        self.bridge = nn.Linear(encoder_final_dim, num_layers * hidden_size) if encoder_final_dim else None

        # nn.GRU at the defaults; DeepGRU (models/recurrent.py) with layer norm or deep transition
        self.rnn = build_rnn(order.rnn_input_dim, hidden_size, num_layers, False,
                             dropout_out if num_layers > 1 else 0.0, layer_norm, transition_depth)
        self.output_proj = nn.Linear(order.feature_input_dim, out_embed_dim)
        self.share_input_output_embed = share_input_output_embed
        self.fc_out = None if share_input_output_embed else nn.Linear(out_embed_dim, len(dictionary))

        self.teacher_forcing = teacher_forcing
        self.teacher_forcing_min = teacher_forcing_min
        self.teacher_forcing_decay_updates = teacher_forcing_decay_updates
        self.num_updates = 0
        self.max_target_positions = max_target_positions
        self.cpu_bf16 = cpu_bf16

    # -- fairseq interface ------------------------------------------------------------------

    def forward(
        self,
        prev_output_tokens: Tensor,
        encoder_out: Optional[Dict[str, List[Tensor]]] = None,
        incremental_state: Optional[IncrementalState] = None,
        features_only: bool = False,
    ) -> Tuple[Tensor, Dict[str, List[Optional[Tensor]]]]:
        if torch.jit.is_scripting():  # inference only: no autocast context, no scheduled sampling
            output, attn = self._decode(prev_output_tokens, encoder_out, incremental_state, features_only)
        else:
            with cpu_bf16_autocast(self.cpu_bf16):
                output, attn = self._decode_eager(prev_output_tokens, encoder_out, incremental_state, features_only)
        # the criterion and the generators always see fp32
        return output.float(), {"attn": [attn.float() if attn is not None else None]}

    def _decode_eager(self, prev_output_tokens, encoder_out, incremental_state, features_only):
        """``_decode``, or in training with a teacher-forcing schedule, scheduled sampling (and its metric)."""
        if self.training and incremental_state is None and self._teacher_forcing_configured():
            p_gold = self.current_teacher_forcing()
            metrics.log_scalar("teacher_forcing", p_gold, round=3)
            if p_gold < 1.0 and not features_only:
                return self._forward_with_sampling(prev_output_tokens, encoder_out, p_gold)
        return self._decode(prev_output_tokens, encoder_out, incremental_state, features_only)

    def _decode(self, prev_output_tokens: Tensor, encoder_out: Optional[Dict[str, List[Tensor]]],
                incremental_state: Optional[IncrementalState], features_only: bool) -> Tuple[Tensor, Optional[Tensor]]:
        """Logits (B, T, V), or features (B, T, O) with ``features_only``, and attention weights (B, T, S)."""
        features, attn = self.extract_features(prev_output_tokens, encoder_out, incremental_state)
        if features_only:
            return features, attn
        return self.output_layer(features), attn

    def extract_features(
        self,
        prev_output_tokens: Tensor,
        encoder_out: Optional[Dict[str, List[Tensor]]] = None,
        incremental_state: Optional[IncrementalState] = None,
    ) -> Tuple[Tensor, Optional[Tensor]]:
        cached = self._get_cached_state(incremental_state)
        if incremental_state is not None:
            prev_output_tokens = prev_output_tokens[:, -1:]  # only the newest token is new
        embedded = self._embed(prev_output_tokens)  # (B, T, E)
        state = cached if cached is not None else self._initial_state(encoder_out, embedded)
        memory = self._memory(encoder_out, state)

        if self.order.runs_whole_target or embedded.size(1) == 1:
            features, attn, state = self._step(embedded, state, memory)  # (B, T, O), (B, T, S)
        else:
            # with input feeding each step reads the previous step's output feature; without it only the recurrence
            # runs step by step, and the output feature of all steps is one matmul after the loop
            step_outputs: List[Tensor] = []  # output features (B, 1, O), or without input feeding their inputs
            step_attn: List[Tensor] = []
            for t in range(embedded.size(1)):
                if self.input_feeding:
                    output_t, attn_t, state = self._step(embedded[:, t : t + 1], state, memory)
                else:
                    output_t, attn_t, state = self._recur(embedded[:, t : t + 1], state, memory)
                step_outputs.append(output_t)
                if attn_t is not None:
                    step_attn.append(attn_t)
            outputs = torch.cat(step_outputs, dim=1)  # (B, T, O) or (B, T, ·)
            features = outputs if self.input_feeding else self._output_feature(outputs)  # (B, T, O)
            attn = torch.cat(step_attn, dim=1) if len(step_attn) > 0 else None  # (B, T, S)

        if incremental_state is not None:
            self.set_incremental_state(incremental_state, "gru_state", state)
        return features, attn

    def _embed(self, tokens: Tensor) -> Tensor:
        embedded = self.word_dropout(self.dropout_in_module(self.embed_tokens(tokens)))  # (B, T, E)
        return embedded.to(torch.bfloat16) if self.cpu_bf16 else embedded  # GRUs follow their input's dtype

    def output_layer(self, features: Tensor) -> Tensor:
        fc_out = self.fc_out
        if fc_out is None:  # --share-decoder-input-output-embed
            return F.linear(features, self.embed_tokens.weight)  # (B, T, V)
        return fc_out(features)  # (B, T, V)

    @torch.jit.export
    def reorder_incremental_state(self, incremental_state: IncrementalState, new_order: Tensor):
        state = self._get_cached_state(incremental_state)
        if state is None:
            return
        source_row = state.get("source_row")
        reordered: State = {}
        for name, value in state.items():
            if value is None or (source_row is not None and (name == "keys" or name == "source_row")):
                reordered[name] = value
            else:
                reordered[name] = value.index_select(1 if name == "hidden" else 0, new_order)  # per row of the batch
        keys = state.get("keys")
        if keys is not None and source_row is not None:
            # keys are stored once per sentence, like the encoder outputs, and regrouped the same way
            select, new_source_row = regroup(source_row, new_order, keys.size(0))
            reordered["source_row"] = new_source_row
            if select is not None:
                reordered["keys"] = keys.index_select(0, select)
        self.set_incremental_state(incremental_state, "gru_state", reordered)

    @torch.jit.export
    def reorder_incremental_state_scripting(self, incremental_state: IncrementalState, new_order: Tensor):
        """What fairseq's SequenceGenerator calls; fairseq's version walks every submodule, which TorchScript cannot,
        and this decoder is the only one here with incremental state."""
        self.reorder_incremental_state(incremental_state, new_order)

    def max_positions(self) -> int:
        return self.max_target_positions

    def set_num_updates(self, num_updates):
        self.num_updates = num_updates

    # -- teacher forcing ----------------------------------------------------------------------

    def _teacher_forcing_configured(self) -> bool:
        return self.teacher_forcing < 1.0 or self.teacher_forcing_min < self.teacher_forcing

    def current_teacher_forcing(self) -> float:
        return teacher_forcing_probability(
            self.teacher_forcing, self.teacher_forcing_min, self.teacher_forcing_decay_updates, self.num_updates
        )

    def _forward_with_sampling(self, prev_output_tokens: Tensor, encoder_out, p_gold: float) -> Tuple[Tensor, Tensor]:
        """Training with scheduled sampling: each sentence, each step, feeds gold with probability ``p_gold``."""
        batch_size, tgt_len = prev_output_tokens.shape
        embedded_first = self._embed(prev_output_tokens[:, :1])  # (B, 1, E)
        state = self._initial_state(encoder_out, embedded_first)
        memory = self._memory(encoder_out, state)
        step_logits, step_attn = [], []
        tokens = prev_output_tokens[:, :1]  # (B, 1)
        for t in range(tgt_len):
            if t > 0:
                feed_gold = torch.rand(batch_size, 1, device=tokens.device) < p_gold  # (B, 1)
                predicted = step_logits[-1].argmax(dim=-1)  # (B, 1)
                tokens = torch.where(feed_gold, prev_output_tokens[:, t : t + 1], predicted)  # (B, 1)
            embedded = self._embed(tokens)  # (B, 1, E)
            features, attn, state = self._step(embedded, state, memory)
            step_logits.append(self.output_layer(features))  # (B, 1, V)
            step_attn.append(attn)
        attn = torch.cat(step_attn, dim=1) if self.attention is not None else None  # (B, T, S)
        return torch.cat(step_logits, dim=1), attn  # (B, T, V)

    # -- recurrence ---------------------------------------------------------------------------

    def _initial_state(self, encoder_out: Optional[Dict[str, List[Tensor]]], embedded: Tensor) -> State:
        batch_size = embedded.size(0)
        bridge = self.bridge
        if encoder_out is not None and bridge is not None:
            encoder_final = encoder_out["encoder_final"][0]  # (U, F): one row per stored sentence
            stored = encoder_final.size(0)
            bridged = torch.tanh(bridge(encoder_final))  # (U, L * H)
            hidden = bridged.view(stored, self.num_layers, self.hidden_size).transpose(0, 1)  # (L, U, H)
            if "source_row" in encoder_out and stored != batch_size:  # beams: each reads its sentence's row
                hidden = hidden.index_select(1, encoder_out["source_row"][0])  # (L, B, H)
            hidden = hidden.contiguous()
        else:
            hidden = embedded.new_zeros(self.num_layers, batch_size, self.hidden_size)  # (L, B, H)
        state: State = {"hidden": hidden}  # (L, B, H)
        if self.input_feeding:
            state["input_feed"] = embedded.new_zeros(batch_size, 1, self.output_proj.out_features)  # (B, 1, O)
        attention = self.attention
        if attention is not None and encoder_out is not None:
            if attention.projects_keys:
                state["keys"] = attention.project_keys(encoder_out["encoder_out"][0])  # (U, S, A), once per sentence
                if "source_row" in encoder_out:
                    state["source_row"] = encoder_out["source_row"][0]  # (B,): the stored row each row reads
        return state

    def _memory(self, encoder_out: Optional[Dict[str, List[Tensor]]], state: State) -> Optional[Memory]:
        """(keys, values, padding mask) for attention, or None without attention."""
        attention = self.attention
        if attention is None or encoder_out is None:
            return None
        values = encoder_out["encoder_out"][0]  # (B, S, C)
        keys = values  # (B, S, C)
        if attention.projects_keys:
            projected = state["keys"]  # (B, S, A)
            assert projected is not None
            keys = projected
        encoder_padding_mask = encoder_out["encoder_padding_mask"][0]  # (B, S)
        return keys, values, encoder_padding_mask

    def _step(self, embedded: Tensor, state: State, memory: Optional[Memory]) -> Tuple[Tensor, Optional[Tensor], State]:
        """One or more decoder steps; T > 1 only where the order runs whole targets."""
        feature_input, attn, new_state = self._recur(embedded, state, memory)  # (B, T, ·)
        features = self._output_feature(feature_input)  # (B, T, O)
        if self.input_feeding:
            new_state["input_feed"] = features  # (B, 1, O)
        return features, attn, new_state

    def _recur(self, embedded: Tensor, state: State, memory: Optional[Memory]) -> Tuple[Tensor, Optional[Tensor], State]:
        """The recurrent part of ``_step``: feature input (B, T, ·), attention (B, T, S), the state after."""
        hidden = state["hidden"]  # (L, B, H)
        assert hidden is not None
        feature_input, attn, hidden = self.order_step(embedded, hidden, state.get("input_feed"), memory)  # (B, T, ·)
        new_state: State = state.copy()
        new_state["hidden"] = hidden  # (L, B, H)
        return feature_input, attn, new_state

    def _output_feature(self, feature_input: Tensor) -> Tensor:
        """tanh(W ·) of the order's feature input (B, T, ·), with output dropout -> (B, T, O)."""
        return self.dropout_out_module(torch.tanh(self.output_proj(feature_input)))  # (B, T, O)

    def order_step(self, embedded: Tensor, hidden: Tensor, input_feed: Optional[Tensor],
                   memory: Optional[Memory]) -> Tuple[Tensor, Optional[Tensor], Tensor]:
        """The order's step around this decoder's GRU -> feature input (B, T, ·), attention (B, T, S), states (L, B, H)
        (called directly by tests/test_decoder_orders.py)."""
        rnn_input, context, attn = self.order.before_rnn(embedded, hidden, input_feed, memory, self.attention)
        rnn_out, hidden = self.rnn(rnn_input, hidden)  # (B, T, H), (L, B, H)
        return self.order.after_rnn(embedded, rnn_out, hidden, context, attn, memory, self.attention,
                                    self.dropout_out_module)

    def _get_cached_state(self, incremental_state: Optional[IncrementalState]) -> Optional[State]:
        if incremental_state is None:
            return None
        return self.get_incremental_state(incremental_state, "gru_state")

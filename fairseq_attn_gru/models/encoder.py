"""GRU encoder over packed sequences, independent of how the batch is padded."""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from fairseq.models import FairseqEncoder
from torch import Tensor

from .dropout import Dropout, WordDropout
from .gru import recurrence_function_applies, run_gru
from .precision import cpu_bf16_autocast
from .recurrent import DeepGRU, build_rnn


class GRUEncoder(FairseqEncoder):
    """Embeds the source and runs a (bi)GRU over it.

    Outputs stay in the caller's padding layout (fairseq left-pads sources by default), so
    attention weights line up with ``src_tokens`` and alignments come out right. Padding never enters
    the recurrence (a packed ``nn.GRU``, or in fp32 CPU training ``gru.run_gru``, which gives the same
    values with a cheaper backward): a sentence gives the same result padded left, right or not at all.
    """

    __constants__ = ["rnn_takes_lengths"]  # TorchScript compiles only the recurrence this encoder has

    def __init__(
        self,
        dictionary,
        embed_tokens: nn.Embedding,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        dropout_in: float,
        dropout_out: float,
        output_proj_dim: int = 0,
        max_source_positions: int = 1024,
        cpu_bf16: bool = False,
        layer_norm: bool = False,
        transition_depth: int = 1,
        word_dropout: float = 0.0,
    ):
        super().__init__(dictionary)
        self.padding_idx = dictionary.pad()
        self.embed_tokens = embed_tokens
        self.dropout_in_module = Dropout(dropout_in, module_name=self.__class__.__name__)
        self.dropout_out_module = Dropout(dropout_out, module_name=self.__class__.__name__)
        self.word_dropout = WordDropout(word_dropout)
        # nn.GRU at the defaults (checkpoints and speed paths as before); DeepGRU with layer norm or deep transition
        self.rnn = build_rnn(embed_tokens.embedding_dim, hidden_size, num_layers, bidirectional,
                             dropout_out if num_layers > 1 else 0.0, layer_norm, transition_depth)
        #: DeepGRU takes the lengths itself; nn.GRU needs them packed (a constant, so TorchScript compiles one path)
        self.rnn_takes_lengths = isinstance(self.rnn, DeepGRU)
        self.num_layers = num_layers
        self.num_directions = 2 if bidirectional else 1
        self.hidden_size = hidden_size
        rnn_output_dim = hidden_size * self.num_directions
        self.output_proj = nn.Linear(rnn_output_dim, output_proj_dim) if output_proj_dim else None
        #: size of each encoder output vector (what attention reads)
        self.output_dim = output_proj_dim or rnn_output_dim
        #: size of the final-state summary handed to the decoder's bridge
        self.final_dim = rnn_output_dim
        self.max_source_positions = max_source_positions
        self.cpu_bf16 = cpu_bf16

    def forward(self, src_tokens: Tensor, src_lengths: Optional[Tensor] = None) -> Dict[str, List[Tensor]]:
        """``src_lengths`` is not read: the padding mask says where each sentence is, on either side."""
        if torch.jit.is_scripting():  # inference only: no autocast context
            return self._encode(src_tokens)
        with cpu_bf16_autocast(self.cpu_bf16):
            return self._encode(src_tokens)

    @torch.jit.export
    def forward_torchscript(self, net_input: Dict[str, Tensor]) -> Dict[str, List[Tensor]]:
        """What fairseq's SequenceGenerator calls (``net_input`` of a batch); exported for the scripted model."""
        return self.forward(net_input["src_tokens"], net_input["src_lengths"])

    def _encode(self, src_tokens: Tensor) -> Dict[str, List[Tensor]]:
        batch_size, src_len = src_tokens.shape
        encoder_padding_mask = src_tokens.eq(self.padding_idx)  # (B, S)
        lengths = src_len - encoder_padding_mask.sum(dim=1)  # (B,)
        has_padding = bool(encoder_padding_mask.any())

        right_order: Optional[Tensor] = None  # (B, S): where each right-padded position comes from, if padded
        tokens = src_tokens
        if has_padding:
            # a stable sort of the pad flags moves each row's tokens to the front, order kept
            right_order = torch.argsort(encoder_padding_mask.to(torch.int8), dim=1, stable=True)  # (B, S)
            tokens = src_tokens.gather(1, right_order)  # (B, S), right-padded

        x = self.word_dropout(self.dropout_in_module(self.embed_tokens(tokens)))  # (B, S, E)
        if self.cpu_bf16:
            x = x.to(torch.bfloat16)  # the GRU follows its input's dtype under autocast
        outs, final_hiddens = self._run_rnn(x, lengths if has_padding else None)  # (B, S, D*H), (L*D, B, H)

        outs = self.dropout_out_module(outs)  # (B, S, D * H)
        if self.output_proj is not None:
            outs = self.output_proj(outs)  # (B, S, C)
        if right_order is not None:
            # back to the caller's layout; padding positions hold zeros (and get zero attention)
            index = right_order.unsqueeze(-1).expand_as(outs)  # (B, S, C)
            outs = torch.zeros_like(outs).scatter(1, index, outs)  # (B, S, C)

        last_layer = final_hiddens.view(self.num_layers, self.num_directions, batch_size, self.hidden_size)[-1]
        encoder_final = last_layer.transpose(0, 1).reshape(batch_size, self.final_dim)  # (B, D * H)

        return {
            "encoder_out": [outs],  # (B, S, C)
            "encoder_padding_mask": [encoder_padding_mask],  # (B, S)
            "encoder_final": [encoder_final],  # (B, D * H)
            # which stored row each row of the batch reads (regroup): beams share their sentence's row
            "source_row": [torch.arange(batch_size, device=src_tokens.device)],  # (B,)
        }

    def _run_rnn(self, x: Tensor, lengths: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """Right-padded x (B, S, E) -> outputs (B, S, D * H), zeros past each length, and final states."""
        if self.rnn_takes_lengths:
            return self.rnn(x, lengths=lengths)  # (B, S, D * H), (L * D, B, H): DeepGRU takes lengths itself
        else:
            return self._run_nn_gru(x, lengths)

    def _run_nn_gru(self, x: Tensor, lengths: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """``_run_rnn`` for an nn.GRU: packed, or in fp32 CPU training ``gru.run_gru``."""
        if lengths is None:
            return self.rnn(x)  # (B, S, D * H), (L * D, B, H)
        if not torch.jit.is_scripting():
            if recurrence_function_applies(self.rnn, x):  # training: nn.GRU's packed backward is quadratic
                return self._run_gru_for_training(x, lengths)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_outs, final_hiddens = self.rnn(packed)  # final: (L * D, B, H)
        outs, _ = nn.utils.rnn.pad_packed_sequence(packed_outs, batch_first=True, total_length=x.size(1))
        return outs, final_hiddens

    @torch.jit.unused
    def _run_gru_for_training(self, x: Tensor, lengths: Tensor) -> Tuple[Tensor, Tensor]:
        """``gru.run_gru`` over rows sorted longest first: the packed nn.GRU's values with a cheaper backward."""
        sorted_lengths, order = lengths.sort(descending=True, stable=True)  # (B,): running rows form a prefix
        if bool((order == torch.arange(order.numel())).all()):  # fairseq's collater sorts already
            return run_gru(self.rnn, x, lengths=lengths)
        outs, final_hiddens = run_gru(self.rnn, x.index_select(0, order), lengths=sorted_lengths)
        inverse = torch.argsort(order)  # (B,)
        return outs.index_select(0, inverse), final_hiddens.index_select(1, inverse)

    @torch.jit.export
    def reorder_encoder_out(self, encoder_out: Dict[str, List[Tensor]], new_order: Tensor):
        """Beam search reorders after every step, but its rows are the beams of each sentence side by side, whose
        encoder outputs are the same: they are stored once per sentence (``regroup``), and only a reorder that drops
        finished sentences copies the rows of those left. Copying them at every step took 38% of beam-5 time with
        general attention; reading each sentence's outputs once for all its beams (attention, decoder_orders.attend)
        saves as much again."""
        stored = encoder_out["encoder_out"][0].size(0)
        select, source_row = regroup(encoder_out["source_row"][0], new_order, stored)
        if select is None and torch.equal(source_row, encoder_out["source_row"][0]):
            return encoder_out
        reordered: Dict[str, List[Tensor]] = {}
        for key, value in encoder_out.items():
            if key == "source_row":
                reordered[key] = [source_row]
            elif select is None:
                reordered[key] = value
            else:
                reordered[key] = [value[0].index_select(0, select)]
        return reordered

    def max_positions(self) -> int:
        return self.max_source_positions


def regroup(source_row: Tensor, new_order: Tensor, stored: int) -> Tuple[Optional[Tensor], Tensor]:
    """Stored rows and their map after a reorder of the batch: (the stored rows to keep, in order, or None when they
    stay as they are; the new ``source_row``).

    ``source_row`` (N,) maps each row of the batch to one of ``stored`` stored rows, always as each stored row
    repeated k times side by side (``arange(stored).repeat_interleave(k)``, k = N / stored; k = 1 outside beam
    search). ``new_order`` (N',) lists the old batch row each new one reads. When the new rows again come as runs of
    one stored row of equal length (fairseq's layout: a sentence's beams together, whatever their order; finished
    sentences gone), each run's stored row is kept once; otherwise every new row gets a stored row of its own.
    """
    wanted = source_row.index_select(0, new_order)  # (N',) the stored row each new row reads
    rows = wanted.numel()
    if rows == 0:
        return wanted, wanted
    repeat = source_row.numel() // max(stored, 1)  # k before the reorder: beam search keeps it
    if repeat <= 1 or rows % repeat != 0 or not _runs_of(wanted, repeat):
        changes = torch.nonzero(wanted != wanted[0])  # the first run's length: a new expansion (fairseq's step 0)
        repeat = int(changes[0, 0]) if changes.numel() > 0 else rows
        if rows % repeat != 0 or not _runs_of(wanted, repeat):
            return wanted, torch.arange(rows, device=wanted.device)  # no such layout: a row each
    firsts = wanted.view(rows // repeat, repeat)[:, 0]  # (N' / k,) the stored row of each run
    source = torch.arange(rows // repeat, device=wanted.device).repeat_interleave(repeat)  # (N',)
    if firsts.numel() == stored and torch.equal(firsts, torch.arange(stored, device=wanted.device)):
        return None, source  # the same stored rows in the same order: nothing moves
    return firsts, source


def _runs_of(rows: Tensor, length: int) -> bool:
    """Whether ``rows`` is made of runs of ``length`` equal values."""
    runs = rows.view(-1, length)  # (N / length, length)
    return bool((runs == runs[:, :1]).all())

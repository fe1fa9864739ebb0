"""A multi-layer (bi)GRU for training on batches of different lengths, with a hand-written backward.

Same parameters and same maths as ``nn.GRU`` (it runs on an ``nn.GRU``'s weights). Why it exists: on CPU,
``nn.GRU`` over a packed batch runs its backward through autograd, and the backward of every step's slice of
the packed input gates allocates and zero-fills a tensor as large as the whole packed input: work that grows with
the square of the length (``aten::fill_`` took 31 % of a packed GRU's profile; docs/history/benchmarks.md). Here the
backward is one loop over the steps and a single (3H, T·B) @ (T·B, H) product for the recurrent weight
gradient. The input projections of all steps are one matmul, forward and backward, as in ``nn.GRU``.

Gate equations (PyTorch's order r, z, n)::

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))
    h_t = n_t + z_t ⊙ (h_{t-1} − n_t)

Variable lengths: rows sorted by length, longest first, so the rows still running at step t are a prefix of
the batch (``active[t]`` of them); the others keep their state and output zeros, as packing does for ``nn.GRU``.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .dropout import dropout


class _Recurrence(torch.autograd.Function):
    """Outputs h_t (T, B, H) from input gates (T, B, 3H), in time order or reversed (``reverse``).

    Rows past their length output zeros; ``active[t]`` rows (a prefix) run at step t. Per step it keeps only
    what backward needs and nothing is copied twice: the hidden-gate product, whose r and z chunks are
    overwritten by the gate values, and the candidate n_t; h_{t-1} is read back from the outputs.
    """

    @staticmethod
    def forward(ctx, input_gates: Tensor, h0: Tensor, weight_hh: Tensor, bias_hh: Tensor, active: List[int],
                reverse: bool):
        steps, batch, _ = input_gates.shape
        outputs = input_gates.new_empty(steps, batch, h0.size(1))  # (T, B, H)
        hidden_gates, candidates = [], []
        h_rows = h0  # (b, H): the running rows' state
        for t in _time_order(steps, reverse):
            n_rows = active[t]
            if n_rows < batch:
                outputs[t, n_rows:] = 0
            if n_rows > h_rows.size(0):  # reversed order: rows whose last token is at t start from h0
                h_rows = torch.cat([h_rows, h0[h_rows.size(0) : n_rows]], dim=0)  # (b, H)
            h_rows = h_rows[:n_rows]  # (b, H)
            gates_h = torch.addmm(bias_hh, h_rows, weight_hh.t())  # (b, 3H): [W_hr h; W_hz h; W_hn h] + b_h
            input_r, input_z, input_n = input_gates[t, :n_rows].chunk(3, dim=1)  # 3 × (b, H)
            reset, update, hidden_n = gates_h.chunk(3, dim=1)  # 3 × (b, H), views into gates_h
            reset.add_(input_r).sigmoid_()  # r_t, in place of W_hr h
            update.add_(input_z).sigmoid_()  # z_t, in place of W_hz h
            candidate = torch.addcmul(input_n, reset, hidden_n).tanh_()  # (b, H): n_t
            h_rows = torch.addcmul(candidate, update, h_rows - candidate, out=outputs[t, :n_rows])  # (b, H)
            hidden_gates.append(gates_h)
            candidates.append(candidate)
        ctx.save_for_backward(h0, weight_hh, outputs, *hidden_gates, *candidates)
        ctx.active, ctx.reverse = active, reverse
        return outputs

    @staticmethod
    def backward(ctx, grad_outputs: Tensor):
        h0, weight_hh, outputs, *saved = ctx.saved_tensors
        steps, batch, hidden_size = outputs.shape
        hidden_gates, candidates = saved[:steps], saved[steps:]  # in processing order
        previous = _previous_states(outputs, h0, ctx.active, ctx.reverse)  # (T, B, H): h_{t-1} of each step
        grad_input_gates = outputs.new_empty(steps, batch, 3 * hidden_size)  # (T, B, 3H)
        grad_hidden_gates = outputs.new_empty(steps, batch, 3 * hidden_size)  # (T, B, 3H)
        grad_h = outputs.new_zeros(batch, hidden_size)  # (B, H): dL/dh carried to the step before
        for index, t in reversed(list(enumerate(_time_order(steps, ctx.reverse)))):
            n_rows = ctx.active[t]
            if n_rows < batch:
                grad_input_gates[t, n_rows:] = 0
                grad_hidden_gates[t, n_rows:] = 0
            reset, update, hidden_n = hidden_gates[index].chunk(3, dim=1)  # 3 × (b, H)
            candidate, h_rows = candidates[index], previous[t, :n_rows]  # (b, H), (b, H)
            grad_h_rows = grad_outputs[t, :n_rows] + grad_h[:n_rows]  # (b, H): dL/dh_t
            grad_r, grad_z, grad_n = grad_input_gates[t, :n_rows].chunk(3, dim=1)  # 3 × (b, H), views
            one_minus_update = 1 - update  # (b, H)
            torch.mul(grad_h_rows * one_minus_update, 1 - candidate * candidate, out=grad_n)  # through tanh
            torch.mul(grad_h_rows * (h_rows - candidate), update * one_minus_update, out=grad_z)
            torch.mul(grad_n * hidden_n, reset * (1 - reset), out=grad_r)
            grad_hidden_gates[t, :n_rows, : 2 * hidden_size] = grad_input_gates[t, :n_rows, : 2 * hidden_size]
            torch.mul(grad_n, reset, out=grad_hidden_gates[t, :n_rows, 2 * hidden_size :])
            # dL/dh_{t-1}: directly through the update gate, and through the hidden gates
            grad_h[:n_rows] = torch.addmm(grad_h_rows * update, grad_hidden_gates[t, :n_rows], weight_hh)
        flat_grad = grad_hidden_gates.view(steps * batch, 3 * hidden_size)  # (T·B, 3H)
        grad_weight_hh = flat_grad.t() @ previous.view(steps * batch, hidden_size)  # (3H, H): one matmul
        grad_bias_hh = flat_grad.sum(dim=0)  # (3H,)
        return grad_input_gates, grad_h, grad_weight_hh, grad_bias_hh, None, None


def _time_order(steps: int, reverse: bool) -> range:
    return range(steps - 1, -1, -1) if reverse else range(steps)


def _previous_states(outputs: Tensor, h0: Tensor, active: List[int], reverse: bool) -> Tensor:
    """h_{t-1} of every step (T, B, H) rebuilt from the outputs; zero (never NaN) where a row does not run."""
    previous = torch.empty_like(outputs)  # (T, B, H)
    first = -1 if reverse else 0
    previous[first] = h0
    if reverse:
        previous[:-1] = outputs[1:]
        for t in range(outputs.size(0) - 1):  # rows whose last token is at t started from h0
            previous[t, active[t + 1] : active[t]] = h0[active[t + 1] : active[t]]
    else:
        previous[1:] = outputs[:-1]
    return previous


def recurrence_function_applies(rnn: nn.GRU, x: Tensor) -> bool:
    """Whether ``run_gru`` should replace ``nn.GRU`` on a padded batch: fp32/fp64 CPU training only.

    Inference has no backward to save on; GPUs have cuDNN; ``--cpu-bf16`` runs under autocast, which this
    hand-written backward does not follow. Full-length batches keep ``nn.GRU`` too (callers check): unpacked, its
    backward has no quadratic term, and measured it is a little faster than this one.
    """
    return (rnn.training and torch.is_grad_enabled() and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.float64) and not torch.is_autocast_enabled("cpu"))


def gru_layer(x: Tensor, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor, bias_hh: Tensor,
              active: List[int], lengths: Tensor, reverse: bool = False) -> Tuple[Tensor, Tensor]:
    """One direction of one layer: x (T, B, I), h0 (B, H) -> outputs (T, B, H), final states (B, H)."""
    input_gates = F.linear(x, weight_ih, bias_ih)  # (T, B, 3H): all steps in one matmul
    outputs = _Recurrence.apply(input_gates, h0, weight_hh, bias_hh, active, reverse)  # (T, B, H)
    if reverse:
        return outputs, outputs[0]  # every row's last step is at t = 0
    return outputs, outputs[lengths - 1, torch.arange(x.size(1))]  # (T, B, H), (B, H): each row's last step


def run_gru(rnn: nn.GRU, x: Tensor, h0: Optional[Tensor] = None, lengths: Optional[Tensor] = None):
    """``rnn(x, h0)`` for a batch-first ``nn.GRU``, with this module's recurrence.

    x (B, T, I); ``lengths`` (B,) sorted longest first, or None when every row runs all T steps.
    Returns outputs (B, T, D·H), zeros past each row's length, and final states (L·D, B, H): what ``nn.GRU``
    gives for the packed batch.
    """
    batch, steps, _ = x.shape
    directions = 2 if rnn.bidirectional else 1
    if lengths is None:
        lengths = torch.full((batch,), steps)  # (B,)
    if bool((lengths[:-1] < lengths[1:]).any()):
        raise ValueError("run_gru needs lengths sorted longest first")
    active = (lengths.view(1, -1) > torch.arange(steps).view(-1, 1)).sum(dim=1).tolist()  # rows running at t
    if h0 is None:
        h0 = x.new_zeros(rnn.num_layers * directions, batch, rnn.hidden_size)  # (L·D, B, H)
    layer_input = x.transpose(0, 1)  # (T, B, I)
    finals = []
    for layer in range(rnn.num_layers):
        if layer > 0 and rnn.dropout > 0 and rnn.training:
            layer_input = dropout(layer_input, rnn.dropout, training=True)  # as nn.GRU: between layers only
        outputs = []
        for direction in range(directions):
            suffix = f"l{layer}" + ("_reverse" if direction else "")
            out, final = gru_layer(
                layer_input, h0[layer * directions + direction], getattr(rnn, f"weight_ih_{suffix}"),
                getattr(rnn, f"weight_hh_{suffix}"), getattr(rnn, f"bias_ih_{suffix}"),
                getattr(rnn, f"bias_hh_{suffix}"), active, lengths, reverse=direction == 1,
            )  # (T, B, H), (B, H)
            outputs.append(out)
            finals.append(final)
        layer_input = torch.cat(outputs, dim=2) if directions == 2 else outputs[0]  # (T, B, D·H)
    return layer_input.transpose(0, 1), torch.stack(finals, dim=0)  # (B, T, D·H), (L·D, B, H)

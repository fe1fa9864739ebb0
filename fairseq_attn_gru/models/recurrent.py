"""A deep-transition, layer-normalised multi-layer (bi)GRU with nn.GRU's interface and a hand-written backward.

Why it exists: the two GRU refinements of Nematus (Sennrich et al. 2017), which ``nn.GRU`` lacks, at nn.GRU-like
speed on CPU. A GRU cell written in Python runs a dozen autograd nodes per step and transition; here the input
projection of all steps (and its layer norm) is one matmul through autograd, and the per-step recurrent part is
one ``torch.autograd.Function`` whose backward is one loop over the steps, with one (3H, T·B) @ (T·B, H) product
per transition for the recurrent weight gradient (as gru.py's ``_Recurrence``). Measured (fp32, 1 thread, ragged
batch 32 × 40, H 256, bidirectional, forward + backward): with layer norm 1.1-1.3 × the time of a packed nn.GRU
without it; the same maths through autograd one step at a time takes 1.5 ×.

Equations of one layer and direction, PyTorch's gate order r, z, n. Transition 1 reads the input x_t; transitions
j = 2..D (``transition_depth`` D, Miceli Barone et al. 2017) read only their own state, their "input"
pre-activation being a learned bias a^j::

    a^1_t = LN_x(W_i x_t) = g_x ⊙ N(W_i x_t) + b_i          (without layer norm: W_i x_t + b_i)
    a^j   = b_i^j                                           j ≥ 2
    u^j   = LN_h^j(W_h^j s^{j-1}) = g_h^j ⊙ N(W_h^j s^{j-1}) + b_h^j   (without layer norm: W_h^j s^{j-1} + b_h^j)
    r^j = σ(a^j_r + u^j_r),   z^j = σ(a^j_z + u^j_z),   n^j = tanh(a^j_n + r^j ⊙ u^j_n)
    s^j = (1 − z^j) ⊙ n^j + z^j ⊙ s^{j-1} = n^j + z^j ⊙ (s^{j-1} − n^j)
    s^0 = h_{t-1},   h_t = s^D

where N(v) = (v − mean(v)) / sqrt(var(v) + 1e-5) over the 3H pre-activations of one row (Ba et al. 2016). This is
Ba et al.'s layer-normalised GRU, r = σ(LN_x(Wx)_r + LN_h(Uh)_r + b_r), n = tanh(LN_x(Wx)_n + b_xn + r ⊙
(LN_h(Uh)_n + b_hn)), with each layer norm's bias serving as the gate bias (b_r = b_ir + b_hr, b_xn = b_in,
b_hn = b_hn): a second bias next to it would add parameters, not functions. With D = 1 and no layer norm the
parameters are nn.GRU's, under nn.GRU's names, and the maths is nn.GRU's.

Variable lengths (``lengths``, right-padded rows): rows are sorted longest first, so the rows still running at
step t are a prefix of the batch; a reverse direction runs forward over each row's tokens flipped in place.
Outputs are zero past each row's length and final states are each row's last real step, as for a packed nn.GRU.

Invariant: the fast path (``_DeepTransition``) and the plain autograd path (``_plain_layer``, used under autocast,
which the hand-written backward does not follow, and in TorchScript, which cannot compile an autograd Function)
compute the same function; tests/test_recurrent.py checks both against a per-step float64 reference written from the
equations above, tests/test_scripting.py the scripted model against the eager one.
"""
import math
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .dropout import dropout

EPS = 1e-5  # layer norm's variance epsilon, as nn.LayerNorm


def _gru_update(input_gates: Tensor, hidden_gates: Tensor, state: Tensor) -> Tensor:
    """One GRU transition from pre-activations through autograd: a (·, 3H), u (b, 3H), s (b, H) -> s' (b, H)."""
    input_r, input_z, input_n = input_gates.chunk(3, dim=-1)  # 3 × (·, H)
    hidden_r, hidden_z, hidden_n = hidden_gates.chunk(3, dim=-1)  # 3 × (b, H)
    reset = torch.sigmoid(input_r + hidden_r)  # (b, H)
    update = torch.sigmoid(input_z + hidden_z)  # (b, H)
    candidate = torch.tanh(input_n + reset * hidden_n)  # (b, H)
    return candidate + update * (state - candidate)  # (b, H)


class _DeepTransition(torch.autograd.Function):
    """Outputs h_t (T, B, H) of one layer and direction, from the first transition's input gates a^1 (T, B, 3H).

    ``active[t]`` rows (a prefix) run at step t; the others output zeros. ``params`` holds four entries per
    transition j: b_i^j (None for j = 1), W_h^j (3H, H), b_h^j (3H,), g_h^j (3H,) or None without layer norm.
    Per step and transition it keeps what backward needs: the state read s^{j-1}, [r; z; u_n], n and, with layer
    norm, v = W_h s^{j-1} with its mean and 1/sqrt(var + eps) (one ``native_layer_norm`` each way per step).
    """

    @staticmethod
    def forward(ctx, input_gates: Tensor, h0: Tensor, active: List[int], *params: Optional[Tensor]):
        steps, batch, _ = input_gates.shape
        depth, hidden_size = len(params) // 4, h0.size(1)
        layer_norm = params[3] is not None
        outputs = input_gates.new_empty(steps, batch, hidden_size)  # (T, B, H)
        # rows that do not run are zeroed step by step: the weight-gradient matmuls read them (0 × garbage = NaN)
        states = [input_gates.new_empty(steps, batch, hidden_size) for _ in range(depth)]  # D × (T, B, H): s^{j-1}
        gates = [input_gates.new_empty(steps, batch, 3 * hidden_size) for _ in range(depth)]  # D × (T, B, 3H)
        candidates = [input_gates.new_empty(steps, batch, hidden_size) for _ in range(depth)]  # D × (T, B, H)
        norm_depth = depth if layer_norm else 0
        projected = [input_gates.new_empty(steps, batch, 3 * hidden_size) for _ in range(norm_depth)]  # D × v^j
        means = [input_gates.new_empty(steps, batch, 1) for _ in range(norm_depth)]  # D × (T, B, 1)
        inv_std = [input_gates.new_empty(steps, batch, 1) for _ in range(norm_depth)]  # D × (T, B, 1)
        h_rows = h0  # (b, H): the running rows' state
        for t in range(steps):
            n_rows = active[t]
            if n_rows < batch:
                for buffer in (outputs, *states, *projected, *means, *inv_std):
                    buffer[t, n_rows:] = 0
            h_rows = h_rows[:n_rows]  # (b, H)
            for j in range(depth):
                bias_i, weight_h, bias_h, gain_h = params[4 * j : 4 * j + 4]
                states[j][t, :n_rows] = h_rows
                hidden_gates = gates[j][t, :n_rows]  # (b, 3H), filled with u^j
                if gain_h is None:
                    torch.addmm(bias_h, h_rows, weight_h.t(), out=hidden_gates)  # (b, 3H): W_h s + b_h
                else:
                    v = torch.mm(h_rows, weight_h.t(), out=projected[j][t, :n_rows])  # (b, 3H): W_h s
                    normed, mean, row_inv_std = torch.native_layer_norm(v, (v.size(1),), gain_h, bias_h, EPS)
                    hidden_gates.copy_(normed)  # (b, 3H): g ⊙ N(v) + b_h
                    means[j][t, :n_rows], inv_std[j][t, :n_rows] = mean, row_inv_std  # (b, 1), (b, 1)
                input_j = input_gates[t, :n_rows] if j == 0 else bias_i  # (b, 3H) or (3H,)
                input_r, input_z, input_n = input_j.chunk(3, dim=-1)  # 3 × (b, H) or (H,)
                reset, update, hidden_n = hidden_gates.chunk(3, dim=1)  # 3 × (b, H), views: r, z overwrite u_r, u_z
                reset.add_(input_r).sigmoid_()  # r^j
                update.add_(input_z).sigmoid_()  # z^j
                candidate = torch.addcmul(input_n, reset, hidden_n, out=candidates[j][t, :n_rows]).tanh_()  # n^j
                out = outputs[t, :n_rows] if j == depth - 1 else None
                h_rows = torch.addcmul(candidate, update, h_rows - candidate, out=out)  # (b, H): s^j
        ctx.save_for_backward(*params, *states, *gates, *candidates, *projected, *means, *inv_std)
        ctx.active, ctx.depth, ctx.layer_norm = active, depth, layer_norm
        return outputs

    @staticmethod
    def backward(ctx, grad_outputs: Tensor):
        saved, depth, active = ctx.saved_tensors, ctx.depth, ctx.active
        params, rest = saved[: 4 * depth], saved[4 * depth :]
        states, gates, candidates = rest[:depth], rest[depth : 2 * depth], rest[2 * depth : 3 * depth]
        projected, means, inv_std = rest[3 * depth : 4 * depth], rest[4 * depth : 5 * depth], rest[5 * depth :]
        steps, batch, hidden_size = grad_outputs.shape
        grad_inputs = [grad_outputs.new_empty(steps, batch, 3 * hidden_size) for _ in range(depth)]  # D × dL/da^j
        grad_gates = [grad_outputs.new_empty(steps, batch, 3 * hidden_size) for _ in range(depth)]  # D × dL/du^j
        grad_projected = ([grad_outputs.new_empty(steps, batch, 3 * hidden_size) for _ in range(depth)]
                          if ctx.layer_norm else grad_gates)  # D × dL/d(W_h s^{j-1})
        grad_h = grad_outputs.new_zeros(batch, hidden_size)  # (B, H): dL/dh carried to the step before
        for t in range(steps - 1, -1, -1):
            n_rows = active[t]
            if n_rows < batch:  # rows that do not run: zero gradients (the buffers are not zero-filled)
                for buffer in (*grad_inputs, *grad_gates, *(grad_projected if ctx.layer_norm else ())):
                    buffer[t, n_rows:] = 0
            grad_state = grad_outputs[t, :n_rows] + grad_h[:n_rows]  # (b, H): dL/ds^D
            for j in range(depth - 1, -1, -1):
                weight_h, gain_h = params[4 * j + 1], params[4 * j + 3]
                reset, update, hidden_n = gates[j][t, :n_rows].chunk(3, dim=1)  # 3 × (b, H)
                candidate, state = candidates[j][t, :n_rows], states[j][t, :n_rows]  # (b, H), (b, H)
                grad_r, grad_z, grad_n = grad_inputs[j][t, :n_rows].chunk(3, dim=1)  # 3 × (b, H), views
                one_minus_update = 1 - update  # (b, H)
                torch.mul(grad_state * one_minus_update, 1 - candidate * candidate, out=grad_n)  # through tanh
                torch.mul(grad_state * (state - candidate), update * one_minus_update, out=grad_z)
                torch.mul(grad_n * hidden_n, reset * (1 - reset), out=grad_r)
                grad_u = grad_gates[j][t, :n_rows]  # (b, 3H): dL/du^j
                grad_u[:, : 2 * hidden_size] = grad_inputs[j][t, :n_rows, : 2 * hidden_size]
                torch.mul(grad_n, reset, out=grad_u[:, 2 * hidden_size :])
                if gain_h is not None:  # back through g ⊙ (v − mean) / std; g's and b's gradients come at the end
                    grad_v = torch.ops.aten.native_layer_norm_backward(
                        grad_u, projected[j][t, :n_rows], [3 * hidden_size], means[j][t, :n_rows],
                        inv_std[j][t, :n_rows], gain_h, None, [True, False, False])[0]  # (b, 3H)
                    grad_projected[j][t, :n_rows] = grad_v
                else:
                    grad_v = grad_u
                # dL/ds^{j-1}: directly through the update gate, and through W_h
                grad_state = torch.addmm(grad_state * update, grad_v, weight_h)  # (b, H)
            grad_h[:n_rows] = grad_state
        grads: List[Optional[Tensor]] = []
        for j in range(depth):
            flat_state = states[j].view(steps * batch, hidden_size)  # (T·B, H)
            flat_projected = grad_projected[j].view(steps * batch, 3 * hidden_size)  # (T·B, 3H)
            grad_bias_i = grad_inputs[j].sum(dim=(0, 1)) if j > 0 else None  # (3H,): a^j = b_i^j, every step
            grad_weight_h = flat_projected.t() @ flat_state  # (3H, H): one matmul over all steps
            grad_bias_h = grad_gates[j].sum(dim=(0, 1))  # (3H,)
            grad_gain = None
            if ctx.layer_norm:  # N(v) of all steps at once; rows that did not run have v, mean, 1/std all zero
                normalized = (projected[j] - means[j]) * inv_std[j]  # (T, B, 3H)
                grad_gain = (grad_gates[j] * normalized).sum(dim=(0, 1))  # (3H,)
            grads += [grad_bias_i, grad_weight_h, grad_bias_h, grad_gain]
        return (grad_inputs[0], grad_h, None, *grads)


def _flip_rows(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each row's first ``lengths[b]`` steps in place, padding untouched: x (T, B, ·) -> (T, B, ·)."""
    steps = torch.arange(x.size(0), device=x.device).unsqueeze(1)  # (T, 1)
    source = torch.where(steps < lengths, lengths - 1 - steps, steps)  # (T, B)
    return x.gather(0, source.unsqueeze(-1).expand_as(x))  # (T, B, ·)


def fast_path_applies(x: Tensor) -> bool:
    """The hand-written backward: fp32/fp64, no autocast (under ``--cpu-bf16`` the plain autograd path runs).

    Written for CPU; on a GPU it runs too (the same Python step loop, no cuDNN)."""
    return x.dtype in (torch.float32, torch.float64) and not torch.is_autocast_enabled(x.device.type)


class DeepGRU(nn.Module):
    """A batch-first multi-layer (bi)GRU with layer norm and ``transition_depth`` transitions per step.

    ``forward(x (B, T, I), hx (L·D, B, H) = None, lengths (B,) = None) -> (outputs (B, T, D·H), h_n (L·D, B, H))``,
    as ``nn.GRU(batch_first=True)``; ``lengths`` for right-padded rows (any order). Dropout between layers only.
    Parameter names per layer and direction (suffix ``l{k}`` or ``l{k}_reverse``): nn.GRU's ``weight_ih``,
    ``weight_hh``, ``bias_ih``, ``bias_hh`` for transition 1; ``layer_norm_ih``, ``layer_norm_hh`` (gains);
    ``bias_ih``, ``weight_hh``, ``bias_hh``, ``layer_norm_hh`` with a ``_t{j}`` tail for transition j ≥ 2.
    """

    #: what TorchScript reads instead of the named parameters (``__prepare_scriptable__``)
    scripted_params: List[List[Optional[Tensor]]]

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, layer_norm: bool = False, transition_depth: int = 1):
        super().__init__()
        if transition_depth < 1:
            raise ValueError(f"transition_depth must be 1 or more, got {transition_depth}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional, self.dropout = bidirectional, dropout
        self.layer_norm, self.transition_depth = layer_norm, transition_depth
        self.batch_first = True
        directions = 2 if bidirectional else 1
        gates = 3 * hidden_size
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for suffix in self._suffixes(layer):
                self.register_parameter(f"weight_ih_{suffix}", nn.Parameter(torch.empty(gates, layer_input)))
                self.register_parameter(f"weight_hh_{suffix}", nn.Parameter(torch.empty(gates, hidden_size)))
                self.register_parameter(f"bias_ih_{suffix}", nn.Parameter(torch.empty(gates)))
                self.register_parameter(f"bias_hh_{suffix}", nn.Parameter(torch.empty(gates)))
                if layer_norm:
                    self.register_parameter(f"layer_norm_ih_{suffix}", nn.Parameter(torch.empty(gates)))
                    self.register_parameter(f"layer_norm_hh_{suffix}", nn.Parameter(torch.empty(gates)))
                for j in range(2, transition_depth + 1):
                    self.register_parameter(f"bias_ih_{suffix}_t{j}", nn.Parameter(torch.empty(gates)))
                    self.register_parameter(f"weight_hh_{suffix}_t{j}", nn.Parameter(torch.empty(gates, hidden_size)))
                    self.register_parameter(f"bias_hh_{suffix}_t{j}", nn.Parameter(torch.empty(gates)))
                    if layer_norm:
                        self.register_parameter(f"layer_norm_hh_{suffix}_t{j}", nn.Parameter(torch.empty(gates)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.GRU's initialisation, U(−1/√H, 1/√H); layer norm gains start at 1."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name, parameter in self.named_parameters():
            if name.startswith("layer_norm_"):
                nn.init.ones_(parameter)
            else:
                nn.init.uniform_(parameter, -bound, bound)

    def _suffixes(self, layer: int) -> List[str]:
        return [f"l{layer}"] + ([f"l{layer}_reverse"] if self.bidirectional else [])

    @torch.jit.unused
    def _named_params(self, index: int) -> List[Optional[Tensor]]:
        """Layer·direction ``index``'s parameters, looked up by name (see ``_direction_params``)."""
        directions = 2 if self.bidirectional else 1
        suffix = self._suffixes(index // directions)[index % directions]
        gain_i = getattr(self, f"layer_norm_ih_{suffix}") if self.layer_norm else None
        params: List[Optional[Tensor]] = [getattr(self, f"weight_ih_{suffix}"), getattr(self, f"bias_ih_{suffix}"),
                                          gain_i]
        for j in range(1, self.transition_depth + 1):
            tail = "" if j == 1 else f"_t{j}"
            gain_h = getattr(self, f"layer_norm_hh_{suffix}{tail}") if self.layer_norm else None
            params += [None if j == 1 else getattr(self, f"bias_ih_{suffix}{tail}"),
                       getattr(self, f"weight_hh_{suffix}{tail}"), getattr(self, f"bias_hh_{suffix}{tail}"), gain_h]
        return params

    def _direction_params(self, index: int) -> List[Optional[Tensor]]:
        """Layer·direction ``index`` (layer × directions + direction): W_i, b_i, g_i (None without layer norm), then
        four per transition j, as ``_DeepTransition`` reads them: b_i^j (None for j = 1), W_h^j, b_h^j, g_h^j."""
        if torch.jit.is_scripting():
            return self.scripted_params[index]
        return self._named_params(index)

    def __prepare_scriptable__(self):
        """TorchScript cannot look a parameter up by a computed name: it reads them from a list made here, at
        ``torch.jit.script`` time (the parameters themselves, so the scripted module shares them)."""
        directions = 2 if self.bidirectional else 1
        self.scripted_params = [self._named_params(index) for index in range(self.num_layers * directions)]
        return self

    def forward(self, x: Tensor, hx: Optional[Tensor] = None,
                lengths: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        batch = x.size(0)
        directions = 2 if self.bidirectional else 1
        if hx is None:
            hx = x.new_zeros(self.num_layers * directions, batch, self.hidden_size)  # (L·D, B, H)
        if lengths is None:  # every row runs all T steps (the decoder's call): nothing to sort
            outputs, finals = self._run_sorted(x.transpose(0, 1), hx, None)  # (T, B, D·H), (L·D, B, H)
            return outputs.transpose(0, 1), finals  # (B, T, D·H), (L·D, B, H)
        lengths = lengths.to(x.device)
        order = torch.argsort(lengths, descending=True, stable=True)  # (B,): running rows form a prefix
        in_order = bool((order == torch.arange(batch, device=x.device)).all())
        if not in_order:
            x, hx, lengths = x.index_select(0, order), hx.index_select(1, order), lengths.index_select(0, order)
        outputs, finals = self._run_sorted(x.transpose(0, 1), hx, lengths)  # (T, B, D·H), (L·D, B, H)
        outputs = outputs.transpose(0, 1)  # (B, T, D·H)
        if not in_order:
            inverse = torch.argsort(order)  # (B,)
            outputs, finals = outputs.index_select(0, inverse), finals.index_select(1, inverse)
        return outputs, finals

    def _run_sorted(self, x: Tensor, hx: Tensor, lengths: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """x (T, B, I) with lengths sorted longest first (None: all T) -> outputs (T, B, D·H), finals (L·D, B, H)."""
        steps, batch = x.size(0), x.size(1)
        directions = 2 if self.bidirectional else 1
        fast = False  # TorchScript runs _plain_layer: it cannot compile an autograd Function
        if not torch.jit.is_scripting():
            fast = self._fast_path(x)
        if lengths is not None and bool((lengths == steps).all()):
            lengths = None  # full length: nothing to mask
        active: List[int] = [batch] * steps  # rows running at each step
        last_rows: Optional[Tensor] = None  # (B,): each row's last real step, when not all run T steps
        row_index: Optional[Tensor] = None  # (B,)
        if lengths is not None:
            running = (lengths.view(1, -1) > torch.arange(steps, device=x.device).view(-1, 1)).sum(dim=1)  # (T,)
            active = torch.jit.annotate(List[int], running.tolist())
            last_rows, row_index = lengths - 1, torch.arange(batch, device=x.device)
        layer_input = x  # (T, B, I)
        finals: List[Tensor] = []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0 and self.training:
                layer_input = dropout(layer_input, self.dropout, training=True)  # as nn.GRU: between layers only
            outputs: List[Tensor] = []
            for direction in range(directions):
                h0 = hx[layer * directions + direction]  # (B, H)
                source = layer_input
                if direction == 1:
                    source = layer_input.flip([0]) if lengths is None else _flip_rows(layer_input, lengths)  # (T, B, ·)
                index = layer * directions + direction
                params = self._direction_params(index)
                input_gates = self._input_gates(source, index, params)  # (T, B, 3H)
                if fast:
                    out = self._fast_layer(input_gates, h0, active, params[3:])  # (T, B, H)
                else:
                    out = self._plain_layer(input_gates, h0, lengths, index, params[3:])  # (T, B, H)
                last = out[-1] if last_rows is None or row_index is None else out[last_rows, row_index]  # (B, H)
                finals.append(last)
                if direction == 1:
                    out = out.flip([0]) if lengths is None else _flip_rows(out, lengths)  # (T, B, H), in time order
                outputs.append(out)
            layer_input = torch.cat(outputs, dim=2) if directions == 2 else outputs[0]  # (T, B, D·H)
        return layer_input, torch.stack(finals, dim=0)  # (T, B, D·H), (L·D, B, H)

    def _linear(self, x: Tensor, index: int, slot: int, weight: Optional[Tensor], bias: Optional[Tensor]) -> Tensor:
        """x Wᵀ (+ b) with weight matrix ``slot`` of layer·direction ``index`` (0: W_i, j ≥ 1: W_h^j): the one place
        the plain path multiplies by a weight matrix, so int8 inference (inference/int8.py) replaces only this."""
        assert weight is not None
        return F.linear(x, weight, bias)  # (·, 3H)

    def _input_gates(self, x: Tensor, index: int, params: List[Optional[Tensor]], eps: float = EPS) -> Tensor:
        """a^1 for all steps at once: x (T, B, I) -> (T, B, 3H), from ``_direction_params``' W_i, b_i, g_i."""
        weight, bias, gain = params[0], params[1], params[2]
        if gain is None:
            return self._linear(x, index, 0, weight, bias)  # (T, B, 3H)
        projected = self._linear(x, index, 0, weight, None)  # (T, B, 3H)
        return F.layer_norm(projected, [projected.size(-1)], gain, bias, eps)  # (T, B, 3H)

    def _plain_layer(self, input_gates: Tensor, h0: Tensor, lengths: Optional[Tensor], index: int,
                     params: List[Optional[Tensor]], eps: float = EPS) -> Tensor:
        """``_DeepTransition`` through autograd, one step at a time (under autocast, in TorchScript and in int8):
        (T, B, 3H) -> outputs (T, B, H)."""
        outputs: List[Tensor] = []
        h = h0  # (B, H)
        for t in range(input_gates.size(0)):
            state = h
            for j in range(len(params) // 4):
                bias_i, weight_h, bias_h, gain_h = params[4 * j], params[4 * j + 1], params[4 * j + 2], params[4 * j + 3]
                assert bias_h is not None
                if gain_h is None:
                    hidden_gates = self._linear(state, index, j + 1, weight_h, bias_h)  # (B, 3H)
                else:
                    projected = self._linear(state, index, j + 1, weight_h, None)  # (B, 3H)
                    hidden_gates = F.layer_norm(projected, [projected.size(-1)], gain_h, bias_h, eps)  # (B, 3H)
                input_j = input_gates[t]  # (B, 3H): a^1
                if j > 0:
                    assert bias_i is not None
                    input_j = bias_i  # (3H,): a^j = b_i^j
                state = _gru_update(input_j, hidden_gates, state)  # (B, H)
            if lengths is None:  # every row runs every step (the decoder's call): no mask, no ops spent on one
                h = state.to(h.dtype)  # (B, H)
                outputs.append(state.to(torch.promote_types(state.dtype, h.dtype)))  # (B, H): the masked path's dtype
            else:
                running = (lengths > t).to(h.dtype).unsqueeze(1)  # (B, 1)
                h = h + running * (state.to(h.dtype) - h)  # (B, H): rows past their length keep their state
                outputs.append(state * running)  # (B, H)
        return torch.stack(outputs, dim=0)  # (T, B, H)

    def _fast_path(self, x: Tensor) -> bool:
        """Whether ``_DeepTransition`` runs (``fast_path_applies``); int8 inference says no."""
        return fast_path_applies(x)

    @torch.jit.unused
    def _fast_layer(self, input_gates: Tensor, h0: Tensor, active: List[int], params: List[Optional[Tensor]]) -> Tensor:
        """``_DeepTransition``: an autograd Function, which TorchScript cannot compile (it runs ``_plain_layer``)."""
        return _DeepTransition.apply(input_gates, h0, active, *params)  # (T, B, H)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bidirectional={self.bidirectional}, dropout={self.dropout}, layer_norm={self.layer_norm}, "
                f"transition_depth={self.transition_depth}")


def build_rnn(input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, dropout: float,
              layer_norm: bool = False, transition_depth: int = 1) -> nn.Module:
    """``nn.GRU`` (batch-first) at the defaults, so existing checkpoints and speed paths stay; else ``DeepGRU``."""
    if not layer_norm and transition_depth == 1:
        return nn.GRU(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers,
                      bidirectional=bidirectional, dropout=dropout, batch_first=True)
    return DeepGRU(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional, dropout=dropout,
                   layer_norm=layer_norm, transition_depth=transition_depth)

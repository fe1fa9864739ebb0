"""DeepGRU (models/recurrent.py) against a float64 reference written from the equations, one row and step at a time."""
import pytest
import torch
import torch.nn as nn

import fairseq_attn_gru.models.recurrent as recurrent
from conftest import build_model, random_batch
from fairseq_attn_gru import UserError
from fairseq_attn_gru.models.recurrent import DeepGRU, build_rnn
from test_model import target_prefix


def layer_norm(v, gain, bias):
    """Ba et al.: gain ⊙ (v − mean) / sqrt(var + 1e-5) + bias over the last dimension (biased variance)."""
    mean = v.mean(-1, keepdim=True)
    var = ((v - mean) ** 2).mean(-1, keepdim=True)
    return gain * (v - mean) / torch.sqrt(var + 1e-5) + bias


def transition(a, u, s):
    """One GRU transition from input pre-activations a and recurrent pre-activations u (order r, z, n)."""
    H = s.numel()
    r = torch.sigmoid(a[:H] + u[:H])
    z = torch.sigmoid(a[H : 2 * H] + u[H : 2 * H])
    n = torch.tanh(a[2 * H :] + r * u[2 * H :])
    return (1 - z) * n + z * s


def reference_direction(gru, suffix, xs, h):
    """One direction over one row's real steps xs (t, I) from h (H,): a plain loop, the docstring's equations."""
    p = dict(gru.named_parameters())
    outputs = []
    for x in xs:
        a = p[f"weight_ih_{suffix}"] @ x
        bias_i = p[f"bias_ih_{suffix}"]
        a = layer_norm(a, p[f"layer_norm_ih_{suffix}"], bias_i) if gru.layer_norm else a + bias_i
        s = h
        for j in range(1, gru.transition_depth + 1):
            tail = "" if j == 1 else f"_t{j}"
            u = p[f"weight_hh_{suffix}{tail}"] @ s
            bias_h = p[f"bias_hh_{suffix}{tail}"]
            u = layer_norm(u, p[f"layer_norm_hh_{suffix}{tail}"], bias_h) if gru.layer_norm else u + bias_h
            s = transition(a if j == 1 else p[f"bias_ih_{suffix}{tail}"], u, s)
        h = s
        outputs.append(h)
    return torch.stack(outputs), h


def reference(gru, x, h0, lengths):
    """x (B, T, I), h0 (L·D, B, H) -> outputs (B, T, D·H) zero-padded, finals (L·D, B, H): every row alone."""
    directions = 2 if gru.bidirectional else 1
    batch, steps = x.shape[:2]
    rows, finals = [], [[None] * batch for _ in range(gru.num_layers * directions)]
    for b in range(batch):
        inputs = x[b, : lengths[b]]
        for layer in range(gru.num_layers):
            outs = []
            for d in range(directions):
                k = layer * directions + d
                suffix = f"l{layer}" + ("_reverse" if d else "")
                seq = inputs.flip(0) if d else inputs
                out, finals[k][b] = reference_direction(gru, suffix, seq, h0[k, b])
                outs.append(out.flip(0) if d else out)
            inputs = torch.cat(outs, dim=1)
        rows.append(torch.cat([inputs, inputs.new_zeros(steps - lengths[b], inputs.size(1))]))
    return torch.stack(rows), torch.stack([torch.stack(f) for f in finals])


def inputs_and_loss_weights(gru, batch, steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    directions = 2 if gru.bidirectional else 1
    x = torch.randn(batch, steps, gru.input_size, generator=g, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(gru.num_layers * directions, batch, gru.hidden_size, generator=g, dtype=torch.float64,
                     requires_grad=True)
    w_out = torch.randn(batch, steps, directions * gru.hidden_size, generator=g, dtype=torch.float64)
    w_final = torch.randn(h0.shape, generator=g, dtype=torch.float64)
    return x, h0, w_out, w_final


def values_and_grads(gru, fn, x, h0, w_out, w_final):
    gru.zero_grad()
    x.grad = h0.grad = None
    out, final = fn(x, h0)
    ((out * w_out).sum() + (final * w_final).sum()).backward()
    grads = {"x": x.grad, "h0": h0.grad, **{n: p.grad for n, p in gru.named_parameters()}}
    return out.detach(), final.detach(), grads


def randomized(gru):
    torch.manual_seed(3)
    for p in gru.parameters():  # gains and biases away from 1 and 0, so their gradients matter
        nn.init.uniform_(p, -0.8, 0.8)
    return gru


CASES = [(depth, ln, bidir) for depth in (1, 3) for ln in (False, True) for bidir in (False, True)]


@pytest.mark.parametrize("lengths", [[5, 2, 4, 1], None], ids=["ragged", "full"])
@pytest.mark.parametrize("depth,layer_norm,bidirectional", CASES)
def test_values_and_every_gradient_match_the_reference(depth, layer_norm, bidirectional, lengths):
    gru = randomized(DeepGRU(3, 4, num_layers=2, bidirectional=bidirectional, layer_norm=layer_norm,
                             transition_depth=depth).double())
    x, h0, w_out, w_final = inputs_and_loss_weights(gru, 4, 5)
    lens = torch.tensor(lengths) if lengths else None
    ref_lens = lengths or [5] * 4
    if lens is not None:
        w_out = w_out * (torch.arange(5).view(1, -1, 1) < lens.view(-1, 1, 1))  # zeros past the end carry no loss
    out, final, grads = values_and_grads(gru, lambda x, h0: gru(x, h0, lengths=lens), x, h0, w_out, w_final)
    ref_out, ref_final, ref_grads = values_and_grads(gru, lambda x, h0: reference(gru, x, h0, ref_lens),
                                                     x, h0, w_out, w_final)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(final, ref_final, rtol=1e-10, atol=1e-12)
    assert set(grads) == set(ref_grads) and len(grads) == 2 + len(list(gru.parameters()))
    for name, grad in grads.items():
        assert ref_grads[name] is not None and ref_grads[name].abs().sum() > 0, name
        torch.testing.assert_close(grad, ref_grads[name], rtol=1e-9, atol=1e-11, msg=name)


@pytest.mark.parametrize("depth,layer_norm,bidirectional", CASES)
def test_plain_autograd_path_equals_the_fast_path(depth, layer_norm, bidirectional, monkeypatch):
    """The path autocast (--cpu-bf16) takes: the same function and gradients, through autograd."""
    gru = randomized(DeepGRU(3, 4, num_layers=2, bidirectional=bidirectional, layer_norm=layer_norm,
                             transition_depth=depth).double())
    x, h0, w_out, w_final = inputs_and_loss_weights(gru, 4, 5, seed=1)
    lens = torch.tensor([2, 5, 3, 5])
    fast = values_and_grads(gru, lambda x, h0: gru(x, h0, lengths=lens), x, h0, w_out, w_final)
    monkeypatch.setattr(recurrent, "fast_path_applies", lambda x: False)
    plain = values_and_grads(gru, lambda x, h0: gru(x, h0, lengths=lens), x, h0, w_out, w_final)
    torch.testing.assert_close(fast[0], plain[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(fast[1], plain[1], rtol=1e-10, atol=1e-12)
    for name in fast[2]:
        torch.testing.assert_close(fast[2][name], plain[2][name], rtol=1e-9, atol=1e-11, msg=name)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_depth_one_without_layer_norm_is_nn_gru(bidirectional):
    torch.manual_seed(0)
    torch_gru = nn.GRU(3, 4, num_layers=2, bidirectional=bidirectional, batch_first=True)
    gru = DeepGRU(3, 4, num_layers=2, bidirectional=bidirectional)
    gru.load_state_dict(torch_gru.state_dict())  # the same names and shapes, nothing else
    x = torch.randn(3, 6, 3, requires_grad=True)
    lengths = torch.tensor([6, 2, 4])
    out, final = gru(x, lengths=lengths)
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    ref_packed, ref_final = torch_gru(packed)
    ref_out, _ = nn.utils.rnn.pad_packed_sequence(ref_packed, batch_first=True, total_length=6)
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(final, ref_final, rtol=1e-5, atol=1e-6)
    grads = torch.autograd.grad(out.sum() + final.sum(), [x, *gru.parameters()])
    ref_grads = torch.autograd.grad(ref_out.sum() + ref_final.sum(), [x, *torch_gru.parameters()])
    for grad, ref_grad in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-5)


def test_gradcheck_tiny():
    torch.manual_seed(0)
    gru = DeepGRU(2, 3, num_layers=2, bidirectional=True, layer_norm=True, transition_depth=2).double()
    x = torch.randn(3, 3, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([3, 1, 2])
    params = list(gru.parameters())

    names = [name for name, _ in gru.named_parameters()]

    def fn(x, h0, *weights):
        return torch.func.functional_call(gru, dict(zip(names, weights)), (x, h0), {"lengths": lengths})

    # fast mode: random directional derivatives instead of the whole Jacobian (seconds, not a minute)
    assert torch.autograd.gradcheck(fn, (x, h0, *[p.detach().requires_grad_() for p in params]), fast_mode=True)


def test_decoder_call_and_dropout_between_layers():
    """The decoder orders call ``rnn(x, hidden)``; dropout acts between layers in training only."""
    gru = DeepGRU(3, 4, num_layers=2, dropout=0.5, layer_norm=True, transition_depth=2)
    x, hidden = torch.randn(2, 1, 3), torch.randn(2, 2, 4)
    out, new_hidden = gru.eval()(x, hidden)
    assert out.shape == (2, 1, 4) and new_hidden.shape == (2, 2, 4)
    torch.testing.assert_close(out[:, 0], new_hidden[-1])
    torch.manual_seed(0)
    train_out, _ = gru.train()(x, hidden)
    assert not torch.equal(train_out, out)


def test_defaults_build_nn_gru_and_flags_build_deep_gru():
    assert type(build_rnn(3, 4, 1, False, 0.0)) is nn.GRU
    assert isinstance(build_rnn(3, 4, 1, False, 0.0, layer_norm=True), DeepGRU)
    assert isinstance(build_rnn(3, 4, 1, False, 0.0, transition_depth=2), DeepGRU)
    default = build_model("gru_attn_concat")
    assert type(default.encoder.rnn) is nn.GRU and type(default.decoder.rnn) is nn.GRU
    assert not any("layer_norm" in name or "_t2" in name for name in default.state_dict())
    deep = build_model("gru_attn_concat", encoder_layer_norm=True, decoder_transition_depth=2)
    assert isinstance(deep.encoder.rnn, DeepGRU) and deep.encoder.rnn.layer_norm
    assert isinstance(deep.decoder.rnn, DeepGRU) and deep.decoder.rnn.transition_depth == 2


@pytest.mark.parametrize("flag", ["encoder_transition_depth", "decoder_transition_depth"])
def test_transition_depth_below_one_is_refused(flag):
    with pytest.raises(UserError, match=f"--{flag.replace('_', '-')}=0 is not allowed"):
        build_model("gru_attn_concat", **{flag: 0})


def test_cpu_bf16_runs_the_plain_path_and_trains(monkeypatch):
    """Under --cpu-bf16 the hand-written backward would not follow autocast: the plain autograd path runs."""
    plain_calls = []
    plain_layer = recurrent.DeepGRU._plain_layer
    monkeypatch.setattr(recurrent.DeepGRU, "_plain_layer",
                        lambda *args: plain_calls.append(1) or plain_layer(*args))
    overrides = dict(encoder_layer_norm=True, decoder_layer_norm=True, encoder_transition_depth=2,
                     decoder_transition_depth=2)
    model = build_model("gru_attn_concat", **overrides)
    src_tokens, src_lengths = random_batch(model.encoder.dictionary, [6, 3, 5])
    prev = target_prefix(model.decoder.dictionary, 3, 4)
    with torch.no_grad():
        fp32_logits, _ = model.eval()(src_tokens, src_lengths, prev)
    model.encoder.cpu_bf16 = model.decoder.cpu_bf16 = True
    with torch.no_grad():
        bf16_logits, _ = model(src_tokens, src_lengths, prev)
    assert plain_calls and (fp32_logits.log_softmax(-1) - bf16_logits.log_softmax(-1)).abs().max() < 0.05
    logits, _ = model.train()(src_tokens, src_lengths, prev)
    logits.logsumexp(-1).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)

"""The hand-written GRU recurrence (fairseq_attn_gru/gru.py) against nn.GRU: values and every gradient, in float64."""
import pytest
import torch
import torch.nn as nn

import fairseq_attn_gru.models.encoder as encoder_module
from conftest import build_model, random_batch
from fairseq_attn_gru.models.gru import recurrence_function_applies, run_gru


def nn_gru_reference(rnn, x, h0, lengths):
    """nn.GRU over the packed batch: outputs zero past each length, as run_gru promises."""
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True)
    packed_out, final = rnn(packed, h0)
    out, _ = nn.utils.rnn.pad_packed_sequence(packed_out, batch_first=True, total_length=x.size(1))
    return out, final


def gradients(out, final, inputs):
    """Gradients of a random linear function of both outputs, so every output element matters."""
    generator = torch.Generator().manual_seed(7)
    weight_out = torch.randn(out.shape, generator=generator, dtype=out.dtype)
    weight_final = torch.randn(final.shape, generator=generator, dtype=final.dtype)
    return torch.autograd.grad((out * weight_out).sum() + (final * weight_final).sum(), inputs)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["unidirectional", "bidirectional"])
@pytest.mark.parametrize("lengths", [[6, 6, 6], [6, 5, 3, 1], [4, 4, 2, 2, 1]], ids=["full", "ragged", "ties"])
def test_run_gru_equals_nn_gru_values_and_gradients(bidirectional, lengths):
    torch.manual_seed(0)
    rnn = nn.GRU(5, 7, num_layers=2, bidirectional=bidirectional, batch_first=True).double()
    directions = 2 if bidirectional else 1
    batch, steps = len(lengths), max(lengths)
    x = torch.randn(batch, steps, 5, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(2 * directions, batch, 7, dtype=torch.double, requires_grad=True)  # a nonzero start state
    lengths = torch.tensor(lengths)
    inputs = [x, h0, *rnn.parameters()]

    out, final = run_gru(rnn, x, h0, lengths)
    ref_out, ref_final = nn_gru_reference(rnn, x, h0, lengths)

    torch.testing.assert_close(out, ref_out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(final, ref_final, rtol=1e-12, atol=1e-12)
    for ours, reference in zip(gradients(out, final, inputs), gradients(ref_out, ref_final, inputs)):
        torch.testing.assert_close(ours, reference, rtol=1e-10, atol=1e-10)


def test_run_gru_applies_dropout_between_layers_only_in_training():
    torch.manual_seed(0)
    rnn = nn.GRU(4, 6, num_layers=2, dropout=0.5, batch_first=True).double()
    x = torch.randn(3, 5, 4, dtype=torch.double)
    no_dropout, _ = nn_gru_reference(rnn.eval(), x, None, torch.tensor([5, 5, 5]))
    with_dropout, _ = run_gru(rnn.train(), x)
    assert not torch.allclose(with_dropout, no_dropout)
    one_layer = nn.GRU(4, 6, num_layers=1, batch_first=True).double().train()
    one_layer.dropout = 0.5  # nothing to drop between layers: no effect
    torch.testing.assert_close(run_gru(one_layer, x)[0], one_layer(x)[0], rtol=1e-12, atol=1e-12)


def test_run_gru_rejects_unsorted_lengths():
    rnn = nn.GRU(3, 4, batch_first=True)
    with pytest.raises(ValueError, match="sorted longest first"):
        run_gru(rnn, torch.randn(2, 4, 3), lengths=torch.tensor([2, 4]))


def test_recurrence_function_only_where_it_saves_work():
    rnn = nn.GRU(3, 4, batch_first=True)
    x = torch.randn(2, 4, 3)
    assert recurrence_function_applies(rnn.train(), x)
    assert not recurrence_function_applies(rnn.eval(), x)  # inference: no backward
    with torch.no_grad():
        assert not recurrence_function_applies(rnn.train(), x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not recurrence_function_applies(rnn.train(), x)  # --cpu-bf16 keeps nn.GRU


def test_encoder_training_is_the_same_with_either_recurrence(monkeypatch):
    """A left-padded, unsorted batch in training mode: outputs, final state and all gradients as with nn.GRU."""
    model = build_model("gru_attn_general", encoder_layers=2, dropout=0.0).double().train()
    encoder = model.encoder
    src_tokens, src_lengths = random_batch(encoder.dictionary, [4, 7, 2, 7, 5], left_pad=True)

    def encode_and_differentiate():
        out = encoder(src_tokens, src_lengths)
        parameters = list(encoder.parameters())
        return out, gradients(out["encoder_out"][0], out["encoder_final"][0], parameters)

    ours, our_grads = encode_and_differentiate()
    monkeypatch.setattr(encoder_module, "recurrence_function_applies", lambda rnn, x: False)
    reference, reference_grads = encode_and_differentiate()

    for key in ("encoder_out", "encoder_final"):
        torch.testing.assert_close(ours[key][0], reference[key][0], rtol=1e-12, atol=1e-12)
    for our_grad, reference_grad in zip(our_grads, reference_grads):
        torch.testing.assert_close(our_grad, reference_grad, rtol=1e-10, atol=1e-10)

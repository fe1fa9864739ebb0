"""models/dropout.py: the int64-draw mask drops each element with probability p, independently, and scales the rest
by 1/(1 − p), as F.dropout does; word dropout drops whole token embeddings the same way, in the encoder and the
decoder of a model."""
import math

import pytest
import torch

from conftest import TinyTask, build_model, random_batch
from fairseq_attn_gru.models.dropout import Dropout, WordDropout, dropout, keep_mask

N = 2_000_000


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])
def test_drop_rate_is_p_for_both_words_of_a_draw_and_independent(p):
    torch.manual_seed(0)
    dropped = ~keep_mask([N], p)
    sigma = math.sqrt(p * (1 - p) / (N / 2))  # each half (even / odd elements) has N/2 samples
    even, odd = dropped[0::2].double(), dropped[1::2].double()  # the two 32-bit words of each int64 draw
    assert abs(even.mean().item() - p) < 6 * sigma and abs(odd.mean().item() - p) < 6 * sigma
    both = (even * odd).mean().item()  # independent words: P(both dropped) = p²
    assert abs(both - p * p) < 6 * math.sqrt(p * p * (1 - p * p) / (N / 2))


def test_kept_elements_are_scaled_and_gradient_follows_the_mask():
    torch.manual_seed(1)
    x = torch.randn(1000, 300, requires_grad=True)
    y = dropout(x, 0.25, training=True)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / 0.75)
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(grad, kept.float() / 0.75)
    assert 0.24 < 1 - kept.float().mean().item() < 0.26


def test_identity_when_off_zeros_at_one_and_seeded_masks_repeat():
    x = torch.randn(50, 7)
    assert dropout(x, 0.3, training=False) is x and dropout(x, 0.0, training=True) is x
    assert torch.all(dropout(x, 1.0, training=True) == 0)
    torch.manual_seed(3)
    first = dropout(x, 0.3, training=True)
    torch.manual_seed(3)
    assert torch.equal(first, dropout(x, 0.3, training=True))


def test_module_keeps_fairseqs_options_and_scripts_for_inference():
    module = Dropout(0.5, module_name="GRUDecoder")
    x = torch.ones(100, 100)
    assert module.eval()(x) is x
    module.make_generation_fast_("dropout", retain_dropout=True)  # --retain-dropout
    assert (module(x) == 0).any()
    scripted = torch.jit.script(Dropout(0.5).eval())
    assert torch.equal(scripted(x), x)


def assert_whole_rows_dropped(before, after, p):
    """Each (sentence, position) row of ``after`` is all zeros or ``before``'s row / (1 − p); the share of the
    nonzero rows of ``before`` (padding's embedding is zero) that were dropped."""
    dropped = after.eq(0).all(dim=-1)  # (B, T)
    torch.testing.assert_close(after[~dropped], before[~dropped] / (1 - p))
    real = before.ne(0).any(dim=-1)  # (B, T)
    return dropped[real].double().mean().item()


def test_word_dropout_zeroes_whole_tokens_with_probability_p():
    torch.manual_seed(2)
    p, rows = 0.3, 200 * 500
    embedded = torch.randn(200, 500, 16, requires_grad=True)  # (B, T, E)
    module = WordDropout(p).train()
    out = module(embedded)
    rate = assert_whole_rows_dropped(embedded.detach(), out.detach(), p)
    assert abs(rate - p) < 6 * math.sqrt(p * (1 - p) / rows)
    (grad,) = torch.autograd.grad(out.sum(), embedded)
    torch.testing.assert_close(grad, (out != 0).float() / (1 - p))
    assert module.eval()(embedded) is embedded and WordDropout(0.0).train()(embedded) is embedded
    assert torch.equal(torch.jit.script(WordDropout(p).eval())(embedded.detach()), embedded.detach())


@pytest.mark.parametrize("arch", ["gru_nematus", "gru_attn_dot"])
def test_model_word_dropout_acts_on_both_sides_in_training_only(arch):
    """Hooks on the encoder's and decoder's WordDropout see what each hands on in training: whole rows zeroed,
    about p of them, the rest scaled. In eval mode the model with word dropout equals the same weights without."""
    p = 0.5
    task = TinyTask(30)
    model = build_model(arch, task=task, dropout=0.0, encoder_word_dropout=p, decoder_word_dropout=p)
    seen = {}
    for side in ("encoder", "decoder"):
        getattr(model, side).word_dropout.register_forward_hook(
            lambda module, inputs, output, side=side: seen.setdefault(side, []).append((inputs[0], output)))
    src_tokens, src_lengths = random_batch(task.source_dictionary, [9, 7, 9, 5] * 4)
    prev_output_tokens, _ = random_batch(task.target_dictionary, [8, 8, 6, 8] * 4, left_pad=False, seed=1)
    model.train()(src_tokens, src_lengths, prev_output_tokens)
    for side in ("encoder", "decoder"):
        assert len(seen[side]) == 1, side  # the whole target at once (teacher forcing), the source once
        before, after = seen[side][0]
        rate = assert_whole_rows_dropped(before.detach().float(), after.detach().float(), p)
        assert 0.3 < rate < 0.7, (side, rate)  # 100-150 rows at p = 0.5
    plain = build_model(arch, task=task, dropout=0.0)
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(src_tokens, src_lengths, prev_output_tokens)[0],
                                   plain.eval()(src_tokens, src_lengths, prev_output_tokens)[0], rtol=0, atol=0)

"""models/dropout.py: the int64-draw mask drops each element with probability p, independently, and scales the rest
by 1/(1 − p), as F.dropout does."""
import math

import pytest
import torch

from fairseq_attn_gru.models.dropout import Dropout, dropout, keep_mask

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

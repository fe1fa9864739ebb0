"""The blocked concat score (models/concat_score.py) against vᵀ tanh(q + k) written out in float64, one
(b, t, s) at a time: values and all three gradients, for every way the batch can be cut into blocks."""
import pytest
import torch

from fairseq_attn_gru.models.concat_score import ConcatScore, concat_scores, score_blocks

B, T, S, A = 3, 5, 4, 6


def reference(queries, keys, v):
    """score[b, t, s] = Σ_a v_a tanh(q[b,t,a] + k[b,s,a]) by explicit loops, in float64 with autograd."""
    rows = []
    for b in range(queries.size(0)):
        for t in range(queries.size(1)):
            for s in range(keys.size(1)):
                rows.append(torch.dot(v, torch.tanh(queries[b, t] + keys[b, s])))
    return torch.stack(rows).view(queries.size(0), queries.size(1), keys.size(1))


def inputs(dtype=torch.float64, scale=1.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    tensors = [torch.randn(*shape, generator=generator, dtype=torch.float64) * scale
               for shape in ((B, T, A), (B, S, A), (A,))]
    return [tensor.to(dtype).requires_grad_() for tensor in tensors]


# block sizes that give: one block; several whole sentences per block; one sentence per block; ranges of steps
# within a sentence, with a shorter last range (5 steps in blocks of 2)
BLOCK_SIZES = [1 << 20, 2 * T * S * A, T * S * A, 2 * S * A]


@pytest.mark.parametrize("block_elements", BLOCK_SIZES)
def test_values_and_gradients_match_the_formula(block_elements):
    queries, keys, v = inputs()
    grad_scores = torch.randn(B, T, S, dtype=torch.float64)

    scores = ConcatScore.apply(queries, keys, v, block_elements)
    grads = torch.autograd.grad(scores, (queries, keys, v), grad_scores)
    expected = reference(queries, keys, v)
    expected_grads = torch.autograd.grad(expected, (queries, keys, v), grad_scores)

    torch.testing.assert_close(scores, expected, rtol=1e-10, atol=1e-12)
    for name, grad, expected_grad in zip(("queries", "keys", "v"), grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad, rtol=1e-9, atol=1e-11, msg=f"∂L/∂{name}")
    forward_only = concat_scores(queries.detach(), keys.detach(), v.detach(), block_elements)
    torch.testing.assert_close(forward_only, expected.detach(), rtol=1e-10, atol=1e-12)


def test_block_plan_covers_every_score_once():
    for batch, steps, per_step in [(7, 5, 100), (3, 9, 1000), (2, 40, 10**6), (1, 1, 1), (5, 1, 3)]:
        covered = torch.zeros(batch, steps, dtype=torch.int64)
        for row0, row1, step0, step1 in score_blocks(batch, steps, per_step, block_elements=1000):
            covered[row0:row1, step0:step1] += 1
        assert torch.all(covered == 1), (batch, steps, per_step)


def test_fp32_saturated_inputs_stay_finite_and_close():
    """Far into tanh's flat tails (|q + k| up to ~100) the sigmoid form must neither overflow nor lose accuracy."""
    queries, keys, v = inputs(torch.float32, scale=25.0, seed=1)
    grad_scores = torch.randn(B, T, S)
    scores = ConcatScore.apply(queries, keys, v)
    grads = torch.autograd.grad(scores, (queries, keys, v), grad_scores)
    as64 = [tensor.detach().double().requires_grad_() for tensor in (queries, keys, v)]
    expected = reference(*as64)
    expected_grads = torch.autograd.grad(expected, as64, grad_scores.double())
    assert scores.dtype == torch.float32 and all(torch.isfinite(grad).all() for grad in grads)
    torch.testing.assert_close(scores.double(), expected, rtol=1e-5, atol=1e-5)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad.double(), expected_grad, rtol=1e-4, atol=1e-5)


def test_bf16_inputs_are_scored_in_fp32_with_grads_in_their_dtypes():
    """Under CPU autocast the projections come in bf16: the score is computed (and returned) in fp32 from those bf16
    values, and each gradient comes back in its input's dtype."""
    queries, keys, v = inputs(torch.float32, seed=2)
    queries_bf16 = queries.detach().bfloat16().requires_grad_()
    keys_bf16 = keys.detach().bfloat16().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = ConcatScore.apply(queries_bf16, keys_bf16, v)
    grads = torch.autograd.grad(scores.sum(), (queries_bf16, keys_bf16, v))
    assert scores.dtype == torch.float32
    assert [grad.dtype for grad in grads] == [torch.bfloat16, torch.bfloat16, torch.float32]
    as64 = [tensor.detach().double() for tensor in (queries_bf16, keys_bf16, v)]
    torch.testing.assert_close(scores.double(), reference(*as64), rtol=1e-5, atol=1e-5)

"""Each attention score against its formula, evaluated independently in float64 with explicit loops."""
import pytest
import torch

from fairseq_attn_gru.models.attention import ConcatAttention, DotAttention, GeneralAttention

B, T, S, HQ, C = 3, 4, 5, 6, 6


def reference_scores(kind, module, queries, values):
    """score[b, t, s] from the docstring formula, one (query, source vector) pair at a time."""
    scores = torch.zeros(B, T, S, dtype=torch.float64)
    for b in range(B):
        for t in range(T):
            s_vec = queries[b, t]
            for j in range(S):
                h_vec = values[b, j]
                if kind == "dot":
                    scores[b, t, j] = s_vec @ h_vec
                elif kind == "general":
                    scores[b, t, j] = s_vec @ (module.key_proj.weight @ h_vec)
                else:
                    w1s = module.query_proj.weight @ s_vec
                    w2h = module.key_proj.weight @ h_vec
                    scores[b, t, j] = module.v.weight[0] @ torch.tanh(w1s + w2h)
    return scores


@pytest.mark.parametrize("kind,cls", [("dot", DotAttention), ("general", GeneralAttention), ("concat", ConcatAttention)])
def test_attention_matches_formula_with_padding(kind, cls):
    module = cls(HQ, C).double()
    queries = torch.randn(B, T, HQ, dtype=torch.float64)
    values = torch.randn(B, S, C, dtype=torch.float64)
    padding = torch.zeros(B, S, dtype=torch.bool)
    padding[0, :2] = True  # left-padded row
    padding[2, -1] = True  # right-padded row

    context, weights = module(queries, module.project_keys(values), values, padding)

    expected_scores = reference_scores(kind, module, queries, values)
    expected_scores[padding.unsqueeze(1).expand(B, T, S)] = float("-inf")
    expected_weights = torch.exp(expected_scores - expected_scores.max(-1, keepdim=True).values)
    expected_weights = expected_weights / expected_weights.sum(-1, keepdim=True)
    expected_context = torch.einsum("bts,bsc->btc", expected_weights, values)

    torch.testing.assert_close(weights, expected_weights, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(context, expected_context, rtol=1e-10, atol=1e-12)
    assert torch.all(weights[0, :, :2] == 0) and torch.all(weights[2, :, -1] == 0)


@pytest.mark.parametrize("cls", [GeneralAttention, ConcatAttention])
def test_keys_are_projected_once_per_sentence(cls):
    """The key projection runs in project_keys only; scoring a step never touches it."""
    module = cls(HQ, C)
    calls = []
    module.key_proj.register_forward_hook(lambda *_: calls.append(1))
    values = torch.randn(B, S, C)
    keys = module.project_keys(values)
    for _ in range(5):
        module(torch.randn(B, 1, HQ), keys, values, None)
    assert len(calls) == 1


def test_dot_attention_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="equal sizes"):
        DotAttention(4, 6)

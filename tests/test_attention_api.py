"""Attention from Python (fairseq_attn_gru/inference/attention_api.py): tokens, the T x S matrix and its heat map
from the hub interface, on a model trained on toy `reverse` (shared with test_int8.py)."""
import pytest
import torch
from test_int8 import REVERSE_HUB, reverse_checkpoint

from fairseq_attn_gru import GRUAttnModel
from fairseq_attn_gru.inference.attention_api import AttentionItem, plot, translate_with_attention

SENTENCES = ["w1 w2 w3 w4 w5", "w3 w4", "w9 w8 w7 w6 w5 w4 w3 w2", "w10 w11 w12 w13 w14 w15 w16",
             "w17 w5 w18 w3", "w2 w4 w6 w8 w10 w12"]  # lengths differ: the batch is padded


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return reverse_checkpoint(tmp_path_factory)


def load(checkpoint, **overrides):
    return GRUAttnModel.from_pretrained(str(checkpoint.parent), checkpoint_file=checkpoint.name,
                                        **{**REVERSE_HUB, **overrides})


def check_items(items):
    assert [item.source for item in items] == SENTENCES
    mirrored = total = 0
    for item in items:
        assert item.source_tokens == item.source.split() + ["</s>"]
        assert item.output_tokens == item.translation.split() + ["</s>"]
        assert item.attention.shape == (len(item.output_tokens), len(item.source_tokens))
        assert torch.allclose(item.attention.sum(dim=1), torch.ones(len(item.output_tokens)), atol=1e-4)
        n = len(item.source_tokens) - 1
        if item.output_tokens[:-1] == item.source_tokens[:-1][::-1]:  # reversed right: the alignment is anti-diagonal
            argmax = item.attention[:-1].argmax(dim=1)  # (T - 1,): eos row left out
            mirrored += int((argmax == torch.arange(n - 1, -1, -1)).sum())
            total += n
    assert total >= 0.8 * sum(len(s.split()) for s in SENTENCES), "the model reverses too few sentences"
    assert mirrored >= 0.9 * total, f"{mirrored}/{total} argmax links point at the mirror position"


@pytest.mark.slow
def test_tokens_attention_and_anti_diagonal_alignment(checkpoint, tmp_path):
    hub = load(checkpoint)
    items = hub.translate_with_attention(SENTENCES, beam=5)  # the hub method ...
    check_items(items)
    same = translate_with_attention(hub, SENTENCES, beam=5)  # ... and the function give the same
    assert all(torch.equal(a.attention, b.attention) for a, b in zip(items, same))
    one = translate_with_attention(hub, SENTENCES[0], beam=1)  # a str gives one item
    assert isinstance(one, AttentionItem) and one.output_tokens == items[0].output_tokens
    items[0].plot(tmp_path / "a.png")
    plot(items[1], tmp_path / "b.svg", title="reverse")
    assert (tmp_path / "a.png").stat().st_size > 1000 and (tmp_path / "b.svg").stat().st_size > 1000


@pytest.mark.slow
def test_right_padded_sources_and_int8_give_the_same_alignment(checkpoint):
    reference = load(checkpoint).translate_with_attention(SENTENCES)
    right = load(checkpoint, left_pad_source=False).translate_with_attention(SENTENCES)
    for a, b in zip(reference, right):
        assert a.output_tokens == b.output_tokens
        assert torch.allclose(a.attention, b.attention, atol=1e-4)
    check_items(load(checkpoint, int8=True).translate_with_attention(SENTENCES))


def test_plot_without_attention(tmp_path):
    item = AttentionItem("w1 w2", ["w1", "w2", "</s>"], ["w2", "w1", "</s>"], None, "w2 w1", -0.1)
    assert item.to_translation().soft_alignment is None
    item.plot(tmp_path / "none.png")
    assert (tmp_path / "none.png").stat().st_size > 1000

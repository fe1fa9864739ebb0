"""Decoder orders: each one's step against its formula in float64, and a new order needs no decoder change."""
import pytest
import torch

from conftest import build_model, random_batch
from fairseq_attn_gru.models import decoder_orders
from fairseq_attn_gru.models.decoder_orders import BahdanauOrder, ConditionalGRUOrder, DecoderOrder, LuongOrder
from test_model import target_prefix


def gru_cell(x, h, rnn):
    """One step of a one-layer nn.GRU, written from PyTorch's documented equations."""
    w_ih, w_hh, b_ih, b_hh = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0
    i_r, i_z, i_n = (x @ w_ih.t() + b_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = (h @ w_hh.t() + b_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


def attend(query, model, memory):
    """general attention: softmax over real source positions of s · W h, then the weighted sum of h."""
    keys, values, encoder_padding_mask = memory
    scores = (query @ keys.transpose(1, 2)).masked_fill(encoder_padding_mask.unsqueeze(1), float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ values, weights


@pytest.mark.parametrize("arch,style", [("gru_attn_general", "luong"), ("gru_bahdanau", "bahdanau"),
                                        ("gru_attn_general", "cgru")])
def test_one_step_matches_the_orders_formula_in_float64(arch, style):
    model = build_model(arch, attention_type="general", decoder_style=style).double().eval()
    decoder = model.decoder
    src_tokens, src_lengths = random_batch(model.encoder.dictionary, [6, 3])
    encoder_out = model.encoder(src_tokens, src_lengths)
    embedded = decoder.embed_tokens(target_prefix(decoder.dictionary, 2, 1))  # (B, 1, E)
    hidden = torch.randn(1, 2, decoder.hidden_size, dtype=torch.float64)  # (L, B, H)
    values = encoder_out["encoder_out"][0]
    memory = (decoder.attention.project_keys(values), values, encoder_out["encoder_padding_mask"][0])

    with torch.no_grad():
        feature_input, attn, new_hidden = decoder.order_step(embedded, hidden, None, memory)
        previous = hidden[-1].unsqueeze(1)  # (B, 1, H)
        if isinstance(decoder.order, LuongOrder):  # s_t = GRU(E y, s_{t-1}); c_t = attend(s_t)
            state = gru_cell(embedded, previous, decoder.rnn)
            context, weights = attend(state, model, memory)
            expected = torch.cat([state, context], dim=-1)
        elif isinstance(decoder.order, ConditionalGRUOrder):  # s'_t = GRU1(E y, s_{t-1}); c_t = attend(s'_t)
            first = gru_cell(embedded, previous, decoder.rnn)
            context, weights = attend(first, model, memory)
            state = gru_cell(context, first, decoder.order.context_gru)  # s_t = GRU2(c_t, s'_t)
            expected = torch.cat([state, embedded, context], dim=-1)
        else:  # c_t = attend(s_{t-1}); s_t = GRU([E y; c_t], s_{t-1})
            context, weights = attend(previous, model, memory)
            state = gru_cell(torch.cat([embedded, context], dim=-1), previous, decoder.rnn)
            expected = torch.cat([state, context, embedded], dim=-1)
    torch.testing.assert_close(feature_input, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(attn, weights, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(new_hidden[-1], state.squeeze(1), rtol=1e-10, atol=1e-10)


class ContextOnlyOrder(DecoderOrder):
    """A made-up order for the test: the output feature reads only the context of the new state."""

    def __init__(self, embed_dim, hidden_size, context_dim):
        super().__init__(rnn_input_dim=embed_dim, feature_input_dim=context_dim, runs_whole_target=False)

    def before_rnn(self, embedded, hidden, input_feed, memory, attention):
        return embedded, None, None  # (B, T, E)

    def after_rnn(self, embedded, rnn_out, hidden, context, attn, memory, attention, dropout):
        context, attn = decoder_orders.attend(rnn_out, memory, attention)  # (B, T, C), (B, T, S)
        return context, attn, hidden


def test_a_new_order_is_one_class_and_the_decoder_runs_it_incrementally():
    model = build_model("gru_attn_general").eval()
    decoder = model.decoder
    decoder.order = ContextOnlyOrder(decoder.embed_tokens.embedding_dim, decoder.hidden_size,
                                     model.encoder.output_dim)
    decoder.output_proj = torch.nn.Linear(decoder.order.feature_input_dim, decoder.output_proj.out_features)
    src_tokens, src_lengths = random_batch(model.encoder.dictionary, [5, 7])
    prev = target_prefix(decoder.dictionary, 2, 4)
    with torch.no_grad():
        full, _ = model(src_tokens, src_lengths, prev)
        encoder_out, state = model.encoder(src_tokens, src_lengths), {}
        steps = [decoder(prev[:, : t + 1], encoder_out, incremental_state=state)[0] for t in range(prev.size(1))]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("order_class", [BahdanauOrder, ConditionalGRUOrder])
def test_orders_that_feed_the_context_refuse_input_feeding(order_class):
    with pytest.raises(ValueError, match="input feeding"):
        order_class(8, 16, 16, input_feeding=True, feed_dim=8)


def test_the_conditional_grus_second_gru_follows_decoder_layer_norm():
    from fairseq_attn_gru.models.recurrent import DeepGRU

    plain = build_model("gru_attn_concat", decoder_style="cgru").decoder.order.context_gru
    normalised = build_model("gru_attn_concat", decoder_style="cgru", decoder_layer_norm=True).decoder.order.context_gru
    assert isinstance(plain, torch.nn.GRU) and not isinstance(plain, DeepGRU)
    assert isinstance(normalised, DeepGRU) and normalised.layer_norm

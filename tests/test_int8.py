"""int8 inference on CPU (fairseq_attn_gru/inference/int8.py): every architecture quantizes and decodes
incrementally; a trained toy model keeps its BLEU through fairseq-generate, fairseq-interactive and the hub; training,
--cpu-bf16 and a PyTorch without a quantized engine are refused with one line."""
import re

import pytest
import torch
from conftest import USER_DIR, TinyTask, build_model, run_cli, toy_task, train_toy
from fairseq.sequence_generator import SequenceGenerator

from fairseq_attn_gru import GRUAttnModel, UserError
from fairseq_attn_gru.inference.int8 import (Int8DeepGRU, float_layers, int8_requested, is_int8, quantize_model,
                                             quantized_layers, unquantizable_layers)
from fairseq_attn_gru.models.attention import ScoreVector
from fairseq_attn_gru.models.config import NAMED_ARCHITECTURES
from fairseq_attn_gru.models.recurrent import DeepGRU

ARCHS = ["gru_attn", *NAMED_ARCHITECTURES]
SMALL = dict(encoder_embed_dim=16, encoder_hidden_size=16, decoder_embed_dim=16, decoder_hidden_size=32,
             decoder_out_embed_dim=16)
#: toy `reverse` data shared with test_attention_api.py (trained once per session, see ``reverse_checkpoint``)
REVERSE = toy_task("reverse", vocab_size=20, min_len=3, max_len=10, train_size=4000, valid_size=50, test_size=100)
REVERSE_HUB = dict(task="toy_translation", toy_rule="reverse", toy_vocab_size=20, toy_min_len=3, toy_max_len=10,
                   toy_train_size=4000, toy_valid_size=50, toy_test_size=100)
BLEU_MARGIN = 2.0  # int8 BLEU may be at most this far below fp32 (measured: equal on the toy models)


def reverse_checkpoint(tmp_path_factory):
    """gru_attn_dot trained on toy `reverse` (about 30 s on 2 cores); one checkpoint for every test module."""
    save_dir = tmp_path_factory.getbasetemp() / "reverse_int8"
    checkpoint = save_dir / "checkpoint_last.pt"
    if not checkpoint.exists():
        train_toy(save_dir, REVERSE, "--lr", "0.005", "--clip-norm", "5", "--dropout", "0", "--max-tokens", "2000",
                  "--max-epoch", "8", "--no-epoch-checkpoints", "--seed", "1")
    return checkpoint


@pytest.fixture(scope="module")
def reverse_model(tmp_path_factory):
    return reverse_checkpoint(tmp_path_factory)


def sizes(arch):
    return dict(SMALL, decoder_hidden_size=16, encoder_hidden_size=16) if arch == "gru_attn" else SMALL


def batch(task, lengths=(5, 3, 7)):
    generator = torch.Generator().manual_seed(1)
    dictionary = task.source_dictionary
    rows = [torch.cat([torch.randint(dictionary.nspecial, len(dictionary), (n - 1,), generator=generator),
                       torch.tensor([dictionary.eos()])]) for n in lengths]
    tokens = torch.full((len(rows), max(lengths)), dictionary.pad())
    for i, row in enumerate(rows):
        tokens[i, -len(row):] = row  # left-padded, as fairseq does
    return {"net_input": {"src_tokens": tokens, "src_lengths": torch.tensor(lengths)}}


#: every named architecture, the cgru order with plain GRUs (its second nn.GRU is quantized too), and deep transition
#: (DeepGRU without layer norm; gru_nematus has it with layer norm)
CASES = [(arch, {}) for arch in ARCHS] + [("gru_attn_concat", {"decoder_style": "cgru"}),
                                          ("gru_attn_dot", {"encoder_transition_depth": 2, "decoder_transition_depth": 2})]


@pytest.mark.parametrize("arch, options", CASES, ids=[a + "".join(f"-{v}" for v in o.values()) for a, o in CASES])
def test_every_architecture_quantizes_after_loading_and_decodes_incrementally(arch, options):
    task = TinyTask()
    fp32 = build_model(arch, task, dropout=0.0, **sizes(arch), **options).eval()
    int8 = build_model(arch, task, dropout=0.0, int8=True, **sizes(arch), **options)
    assert not is_int8(int8)  # built in fp32: the checkpoint's weights go in first
    assert unquantizable_layers(fp32) == []  # DeepGRU (gru_nematus's layer-normalised GRUs) included
    int8.load_state_dict(fp32.state_dict())
    assert is_int8(int8) and not int8.training and float_layers(int8) == []
    layers = quantized_layers(int8)
    assert {"encoder.rnn", "decoder.rnn", "decoder.output_proj", "decoder.fc_out"} <= set(layers), layers
    attention = {"GeneralAttention": {"decoder.attention.key_proj"},
                 "ConcatAttention": {"decoder.attention.query_proj", "decoder.attention.key_proj"}}
    assert attention.get(type(int8.decoder.attention).__name__, set()) <= set(layers)
    if hasattr(int8.decoder.attention, "v"):  # the concat score's vector scales elementwise work: it stays fp32
        assert type(int8.decoder.attention.v) is ScoreVector and int8.decoder.attention.v.weight.dtype == torch.float32
    deep_grus = [name for name, module in fp32.named_modules() if isinstance(module, DeepGRU)]
    assert all(isinstance(int8.get_submodule(name), Int8DeepGRU) for name in deep_grus)
    assert not any(p.dim() >= 2 for name in deep_grus for p in int8.get_submodule(name).parameters(recurse=False))

    sample = batch(task)
    dictionary = task.target_dictionary
    prev = torch.randint(dictionary.nspecial, len(dictionary), (3, 6))
    prev[:, 0] = dictionary.eos()
    with torch.no_grad():
        full = {}
        for name, model in (("fp32", fp32), ("int8", int8)):
            encoder_out = model.encoder(**sample["net_input"])
            state = {}
            steps = [model.decoder(prev[:, : t + 1], encoder_out, incremental_state=state)[0] for t in range(6)]
            full[name] = torch.log_softmax(torch.cat(steps, dim=1), dim=-1)  # incremental, step by step
        assert (full["int8"] - full["fp32"]).abs().max() < 0.05
        generator = SequenceGenerator([int8], dictionary, beam_size=3, max_len_b=8)
        hypos = generator.generate([int8], sample)
    assert len(hypos) == 3 and all(len(h) == 3 for h in hypos)


def test_quantized_model_refuses_training():
    model = build_model("gru_attn_dot", dropout=0.0, int8=True, **SMALL)
    with pytest.raises(UserError, match="^--int8 is for inference only") as error:
        model.train()
    assert "\n" not in str(error.value)
    quantize_model(model)
    with pytest.raises(UserError):
        model.train()
    model.eval()  # eval stays allowed


def test_cpu_bf16_with_int8_is_refused():
    model = build_model("gru_attn_dot", dropout=0.0, cpu_bf16=True, int8=True, **SMALL)
    with pytest.raises(UserError, match="--cpu-bf16"):
        model.load_state_dict(model.state_dict())


def test_missing_quantized_engine_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(type(torch.backends.quantized), "supported_engines", property(lambda self: ["none"]))
    model = build_model("gru_attn_dot", dropout=0.0, **SMALL)
    with pytest.raises(UserError, match=r"int8 needs a quantized engine .*supported_engines=\['none'\]") as error:
        quantize_model(model)
    assert "\n" not in str(error.value)
    assert not is_int8(model)  # nothing half-done


def test_a_layer_int8_cannot_convert_is_refused_not_left_fp32():
    class OwnRecurrence(torch.nn.Module):  # a weight matrix outside nn.GRU / nn.Linear
        def __init__(self):
            super().__init__()
            self.weight_hh = torch.nn.Parameter(torch.zeros(6, 2))

    model = build_model("gru_attn_dot", dropout=0.0, **SMALL)
    model.decoder.extra = OwnRecurrence()
    with pytest.raises(UserError, match=r"decoder\.extra \(OwnRecurrence\) would stay fp32"):
        quantize_model(model)
    assert not quantized_layers(model)  # refused before anything was converted


def test_int8_requested_reads_model_overrides():
    from omegaconf import OmegaConf

    assert int8_requested(OmegaConf.create({"common_eval": {"model_overrides": "{'int8': True}"}}))
    assert not int8_requested(OmegaConf.create({"common_eval": {"model_overrides": "{}"}}))
    assert not int8_requested(OmegaConf.create({}))


def bleu(output):
    return float(re.search(r"BLEU4 = ([0-9.]+)", output).group(1))


@pytest.mark.slow
def test_generate_int8_bleu_close_to_fp32(reverse_model):
    flags = ["--user-dir", USER_DIR, *REVERSE, "--path", reverse_model, "--gen-subset", "test", "--cpu",
             "--batch-size", "50"]
    for beam in ("5", "1"):
        fp32 = run_cli("fairseq-generate", *flags, "--beam", beam)
        int8 = run_cli("fairseq-generate", *flags, "--beam", beam, "--model-overrides", "{'int8': True}")
        assert "int8: dynamic quantization on engine" in int8.stderr + int8.stdout
        assert "int8: dynamic quantization" not in fp32.stderr + fp32.stdout
        assert bleu(fp32.stdout) > 80, fp32.stdout[-500:]  # a trained model, or the comparison says nothing
        assert bleu(int8.stdout) >= bleu(fp32.stdout) - BLEU_MARGIN


@pytest.mark.slow
def test_interactive_int8(reverse_model):
    result = run_cli("fairseq-interactive", "--user-dir", USER_DIR, *REVERSE, "--path", reverse_model, "--cpu",
                     "--beam", "5", "--model-overrides", "{'int8': True}", input="w1 w2 w3 w4\nw7 w8 w9\n")
    assert re.findall(r"^H-\d+\t\S+\t(.*)$", result.stdout, flags=re.M) == ["w4 w3 w2 w1", "w9 w8 w7"]
    assert "int8: dynamic quantization on engine" in result.stderr + result.stdout


@pytest.mark.slow
def test_hub_int8(reverse_model):
    hub = GRUAttnModel.from_pretrained(str(reverse_model.parent), checkpoint_file=reverse_model.name, int8=True,
                                       **REVERSE_HUB)
    assert all(is_int8(model) for model in hub.models)
    assert hub.translate("w5 w6 w7 w8 w9") == "w9 w8 w7 w6 w5"


@pytest.mark.slow
def test_fairseq_train_refuses_int8_in_one_line(tmp_path):
    tiny = toy_task("reverse", vocab_size=20, min_len=3, max_len=8, train_size=50, valid_size=10, test_size=10)
    result = run_cli("fairseq-train", "--user-dir", USER_DIR, *tiny, "--arch", "gru_attn_dot", "--cpu",
                     "--optimizer", "adam", "--max-epoch", "1", "--max-tokens", "500", "--int8", "--save-dir", tmp_path,
                     check=False)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [errors[-1]] and errors[0].startswith("error: --int8 is for inference only"), result.stderr[-800:]
    assert result.stderr.rstrip().splitlines()[-1] == errors[0]

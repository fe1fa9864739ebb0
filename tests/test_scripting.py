"""TorchScript (docs/inference.md, "TorchScript"): the scripted model computes what the eager one does.

As fairseq's tests/test_lstm_jitable.py does for ``lstm``: the scripted model's forward against the eager one on
random batches, fairseq's SequenceGenerator driving both on the toy test set, a torch.jit.save/load round trip;
then the export script, and the checkpoints' parameter names (the decoder orders were redesigned for scripting).
"""
import json
from pathlib import Path
from typing import Dict, List, Optional
from unittest import mock

import pytest
import torch
from torch import Tensor
from conftest import REPO, TinyTask, build_model, one_line_error, pad_rows, run_cli, toy_task, train_toy

from fairseq_attn_gru.errors import UserError
from fairseq_attn_gru.inference import torchscript
from fairseq_attn_gru.models.attention import build_attention
from fairseq_attn_gru.models.recurrent import DeepGRU

SMALL = dict(encoder_embed_dim=16, encoder_hidden_size=16, decoder_embed_dim=16, decoder_hidden_size=32,
             decoder_out_embed_dim=16, dropout=0.0)
#: name -> (arch, overrides): every decoder order, attention none/dot/general/concat, input feeding, layer norm,
#: deep transition, several layers, shared output embedding
COMBINATIONS = {
    "gru_attn_dot": ("gru_attn_dot", {}),
    "gru_bahdanau": ("gru_bahdanau", {}),
    "gru_seq2seq": ("gru_seq2seq", {}),
    "concat_cgru": ("gru_attn_concat", dict(decoder_style="cgru")),
    "nematus_like": ("gru_attn_concat", dict(decoder_style="cgru", encoder_layer_norm=True, decoder_layer_norm=True,
                                             encoder_layers=2, decoder_layers=2)),
    "transition_depth_2": ("gru_attn_general", dict(encoder_transition_depth=2, decoder_transition_depth=2,
                                                    input_feeding=True)),
    "general_input_feeding_2_layers_shared": ("gru_attn_general", dict(
        input_feeding=True, encoder_layers=2, decoder_layers=2, share_decoder_input_output_embed=True)),
}
TOY = toy_task("reverse", vocab_size=12, min_len=2, max_len=7, train_size=800, valid_size=20, test_size=24)
TOY_SIZES = ["--encoder-embed-dim", "24", "--encoder-hidden-size", "24", "--decoder-embed-dim", "24",
             "--decoder-hidden-size", "48", "--decoder-out-embed-dim", "24"]


def small_model(name):
    arch, overrides = COMBINATIONS[name]
    return build_model(arch, TinyTask(), **SMALL, **overrides).eval()


def runs_deep_gru(model) -> bool:
    """DeepGRU's eager inference runs its hand-written recurrence, the scripted one the same maths through
    autograd ops (recurrent.py's invariant): equal to float rounding, not bit for bit."""
    return any(isinstance(module, DeepGRU) for module in model.modules())


def exactness(model) -> dict:
    return {} if runs_deep_gru(model) else dict(rtol=0, atol=0)


def random_batch(dictionary, generator, left_pad=True):
    """(src_tokens, src_lengths, prev_output_tokens) of random size, random lengths, random words."""
    batch_size = int(torch.randint(1, 6, (1,), generator=generator))
    lengths = torch.randint(1, 9, (batch_size,), generator=generator).tolist()
    rows = [torch.cat([torch.randint(dictionary.nspecial, len(dictionary), (n - 1,), generator=generator),
                       torch.tensor([dictionary.eos()])]) for n in lengths]
    target_len = int(torch.randint(1, 7, (1,), generator=generator))
    prev = torch.randint(dictionary.nspecial, len(dictionary), (batch_size, target_len), generator=generator)
    prev[:, 0] = dictionary.eos()
    return pad_rows(rows, dictionary.pad(), left_pad), torch.tensor(lengths), prev


def assert_same_output(got, expected, **tolerance):
    torch.testing.assert_close(got[0], expected[0], **tolerance)
    got_attn, expected_attn = got[1]["attn"][0], expected[1]["attn"][0]
    assert (got_attn is None) == (expected_attn is None)
    if expected_attn is not None:
        torch.testing.assert_close(got_attn, expected_attn, **tolerance)


@pytest.mark.parametrize("attention_type", ["dot", "general", "concat"])
def test_attention_scores_script_and_match_eager(attention_type):
    attention = build_attention(attention_type, 8, 8)
    scripted = torch.jit.script(attention)
    queries, values = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    mask = torch.tensor([[True, False, False, False, False], [False] * 5])
    keys = attention.project_keys(values)
    for got, expected in zip(scripted(queries, keys, values, mask), attention(queries, keys, values, mask)):
        torch.testing.assert_close(got, expected)


class IncrementalSteps(torch.nn.Module):
    """Decodes a prefix a token at a time as beam search does: after each step the rows are reordered (the decoder's
    state and the encoder output). Scripted, the incremental state lives inside TorchScript, as in a scripted
    SequenceGenerator: a Python dict handed to a ScriptModule is copied, so its updates would not come back."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, src_tokens: Tensor, src_lengths: Tensor, prev: Tensor, new_order: Tensor) -> List[Tensor]:
        encoder_out = self.model.encoder.forward_torchscript({"src_tokens": src_tokens, "src_lengths": src_lengths})
        state: Dict[str, Dict[str, Optional[Tensor]]] = {}
        steps: List[Tensor] = []
        for t in range(prev.size(1)):
            logits, extra = self.model.decoder(prev[:, : t + 1], encoder_out=encoder_out, incremental_state=state)
            steps.append(logits)
            attn = extra["attn"][0]
            if attn is not None:
                steps.append(attn)
            self.model.decoder.reorder_incremental_state_scripting(state, new_order)
            encoder_out = self.model.encoder.reorder_encoder_out(encoder_out, new_order)
            prev = prev.index_select(0, new_order)
        return steps


@pytest.mark.parametrize("name", list(COMBINATIONS))
def test_scripted_forward_and_incremental_steps_equal_eager(name):
    model = small_model(name)
    scripted = torch.jit.script(model)
    dictionary, generator = model.encoder.dictionary, torch.Generator().manual_seed(7)
    with torch.no_grad():
        for trial in range(6):
            src_tokens, src_lengths, prev = random_batch(dictionary, generator, left_pad=trial % 3 != 2)
            assert_same_output(scripted(src_tokens, src_lengths, prev), model(src_tokens, src_lengths, prev),
                               **exactness(model))
        new_order = torch.arange(prev.size(0)).flip(0)  # (B,): every step moves every row
        expected = IncrementalSteps(model)(src_tokens, src_lengths, prev, new_order)
        got = torch.jit.script(IncrementalSteps(model))(src_tokens, src_lengths, prev, new_order)
    assert len(got) == len(expected) >= prev.size(1)
    for got_step, expected_step in zip(got, expected):
        torch.testing.assert_close(got_step, expected_step, **exactness(model))


@pytest.mark.parametrize("name", ["gru_attn_dot", "nematus_like"])
def test_save_and_load_round_trip_gives_the_eager_outputs(name, tmp_path):
    model = small_model(name)
    torch.jit.save(torch.jit.script(model), str(tmp_path / "model.ts"))
    loaded = torch.jit.load(str(tmp_path / "model.ts"))
    src_tokens, src_lengths, prev = random_batch(model.encoder.dictionary, torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert_same_output(loaded(src_tokens, src_lengths, prev), model(src_tokens, src_lengths, prev),
                           **exactness(model))
        # a dtype change after loading reaches every parameter (DeepGRU's scripted parameter list included)
        loaded, model = loaded.double(), model.double()
        assert_same_output(loaded(src_tokens, src_lengths, prev), model(src_tokens, src_lengths, prev))


def test_cpu_bf16_is_refused_in_one_line():
    with pytest.raises(UserError, match="--cpu-bf16 .* TorchScript cannot enter"):
        torch.jit.script(build_model("gru_attn_dot", TinyTask(), **SMALL, cpu_bf16=True))


# -- fairseq's SequenceGenerator on briefly trained toy models ----------------------------------------------------


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A Luong dot-attention model and a Nematus-like one (cgru, layer norms) trained on reversal for seconds."""
    found = {}
    nematus_like = ["--arch", "gru_attn_concat", "--decoder-style", "cgru", "--encoder-layer-norm",
                    "--decoder-layer-norm", "--max-epoch", "5"]
    for name, flags in (("dot", ["--max-epoch", "6"]), ("nematus_like", nematus_like)):
        save_dir = tmp_path_factory.mktemp(name)
        train_toy(save_dir, TOY, *TOY_SIZES, "--lr", "0.01", "--dropout", "0", "--max-tokens", "150",
                  "--no-epoch-checkpoints", "--seed", "1", *flags)
        found[name] = save_dir / "checkpoint_last.pt"
    return found


def toy_test_batches(task):
    task.load_dataset("test")
    iterator = task.get_batch_iterator(task.dataset("test"), max_sentences=8).next_epoch_itr(shuffle=False)
    return list(iterator)


def generate(models, task, batches, beam, scripted_generator=False):
    """Hypotheses of fairseq's SequenceGenerator, or of the same generator scripted (its loop in TorchScript)."""
    from fairseq.sequence_generator import SequenceGenerator

    generator = SequenceGenerator(models, task.target_dictionary, beam_size=beam, max_len_b=10)
    with torch.no_grad():
        if not scripted_generator:
            return [hypos for batch in batches for hypos in generator.generate(models, batch)]
        generator.model.has_incremental = True  # fairseq sees a ScriptModule's decoder as not incremental
        scripted = torch.jit.script(generator)
        return [hypos for batch in batches for hypos in scripted({"net_input": batch["net_input"]})]


def assert_same_hypotheses(got, expected):
    assert len(got) == len(expected)
    for got_hypos, expected_hypos in zip(got, expected):
        assert [h["tokens"].tolist() for h in got_hypos] == [h["tokens"].tolist() for h in expected_hypos]
        for g, e in zip(got_hypos, expected_hypos):
            torch.testing.assert_close(g["score"], e["score"], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(g["positional_scores"], e["positional_scores"], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(g["attention"], e["attention"], rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name,beams", [("dot", (5, 1)), ("nematus_like", (5,))])
def test_sequence_generator_gives_the_same_hypotheses_scripted(checkpoints, name, beams):
    model, task = torchscript.load_checkpoint(checkpoints[name])
    scripted = torch.jit.script(model)
    batches = toy_test_batches(task)
    pad = task.target_dictionary.pad()
    targets = [row[row.ne(pad)] for batch in batches for row in batch["target"]]
    for beam in beams:
        expected = generate([model], task, batches, beam)
        correct = sum(torch.equal(hypos[0]["tokens"], target) for hypos, target in zip(expected, targets))
        assert correct >= len(targets) // 2  # the model reverses: its hypotheses are not degenerate
        # driven from Python, fairseq re-runs the scripted decoder over the prefix at each step (no state)
        assert_same_hypotheses(generate([scripted], task, batches, beam), expected)


@pytest.mark.slow
def test_scripted_sequence_generator_decodes_incrementally_inside_torchscript(checkpoints):
    model, task = torchscript.load_checkpoint(checkpoints["dot"])
    batches = toy_test_batches(task)
    # a scripted generator runs fairseq's own stopping rule (it compiles the original, not patient_beam's wrapper)
    with mock.patch("fairseq_attn_gru.fairseq_fixes.patient_beam._patient_applies", return_value=False):
        expected = generate([model], task, batches, 5)
    assert_same_hypotheses(generate([torch.jit.script(model)], task, batches, 5, scripted_generator=True), expected)


# -- scripts/export_torchscript.py ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_export_script_writes_a_file_torch_jit_load_runs(checkpoints, tmp_path):
    run_cli(REPO / "scripts" / "export_torchscript.py", checkpoints["dot"], tmp_path / "model.ts")
    model, task = torchscript.load_checkpoint(checkpoints["dot"])
    loaded, dictionaries = torchscript.load_scripted(tmp_path / "model.ts")
    assert dictionaries["source"].symbols == task.source_dictionary.symbols
    assert dictionaries["target"].symbols == task.target_dictionary.symbols
    batch = toy_test_batches(task)[0]["net_input"]
    with torch.no_grad():
        assert_same_output(loaded(**batch), model(**batch), rtol=0, atol=0)
    assert generate([loaded], task, toy_test_batches(task), 5)[0][0]["tokens"].tolist() == \
        generate([model], task, toy_test_batches(task), 5)[0][0]["tokens"].tolist()


@pytest.mark.slow
def test_export_refuses_bad_input_in_one_line(checkpoints, tmp_path):
    missing = run_cli(REPO / "scripts" / "export_torchscript.py", tmp_path / "nope.pt", tmp_path / "m.ts", check=False)
    one_line_error(missing, f"checkpoint {str(tmp_path / 'nope.pt')!r} does not exist")
    # int8 runs a layer-normalised GRU in eager mode only
    with pytest.raises(UserError, match="runs int8 in eager mode only"):
        torchscript.export(checkpoints["nematus_like"], tmp_path / "m.ts", int8=True)
    # --cpu-bf16 (here: the dot checkpoint's config switched to it) needs --fp32
    state = torch.load(checkpoints["dot"], weights_only=False)
    state["cfg"]["model"]["cpu_bf16"] = True
    torch.save(state, tmp_path / "bf16.pt")
    with pytest.raises(UserError, match=r"--cpu-bf16 .*export_torchscript\.py --fp32"):
        torchscript.export(tmp_path / "bf16.pt", tmp_path / "m.ts")
    torchscript.export(tmp_path / "bf16.pt", tmp_path / "fp32.ts", fp32=True)
    assert (tmp_path / "fp32.ts").stat().st_size > 0 and not (tmp_path / "m.ts").exists()


@pytest.mark.slow
def test_export_of_another_model_is_refused(tmp_path):
    train_toy(tmp_path, TOY, "--arch", "lstm", "--encoder-embed-dim", "8", "--encoder-hidden-size", "8",
              "--decoder-embed-dim", "8", "--decoder-hidden-size", "8", "--decoder-out-embed-dim", "8",
              "--max-tokens", "500", "--max-update", "1")
    result = run_cli(REPO / "scripts" / "export_torchscript.py", tmp_path / "checkpoint_last.pt", tmp_path / "m.ts",
                     check=False)
    one_line_error(result, f"checkpoint {str(tmp_path / 'checkpoint_last.pt')!r} holds a LSTMModel")


@pytest.mark.slow
def test_int8_export_gives_the_quantized_models_outputs(checkpoints, tmp_path):
    torchscript.export(checkpoints["dot"], tmp_path / "int8.ts", int8=True)
    model, task = torchscript.load_checkpoint(checkpoints["dot"], int8=True)
    loaded, _ = torchscript.load_scripted(tmp_path / "int8.ts")
    batch = toy_test_batches(task)[0]["net_input"]
    with torch.no_grad():
        assert_same_output(loaded(**batch), model(**batch), rtol=0, atol=0)


# -- checkpoints keep their parameter names ------------------------------------------------------------------------

#: state_dict keys of each architecture, computed on the code before the decoder orders were redesigned
SAVED_KEYS = json.loads((Path(__file__).parent / "state_dict_keys.json").read_text())


@pytest.mark.parametrize("name", list(SAVED_KEYS))
def test_state_dict_keys_are_those_of_earlier_checkpoints(name):
    overrides = dict(SAVED_KEYS[name]["overrides"])
    model = build_model(overrides.pop("arch"), TinyTask(), **overrides)
    assert list(model.state_dict()) == SAVED_KEYS[name]["keys"]

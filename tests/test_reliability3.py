"""Reliability, round three (docs/reliability.md): the newer features under bad input. Requests are honoured or refused
in one line, never dropped; no tool writes over its own input; artifacts that do not belong together are refused;
refusals name the fix; a script waits for every process it started; fixes check the fairseq they patch."""
import os
import re
import signal
import subprocess
import sys
import time
from argparse import Namespace

import pytest
import torch
from conftest import (REPO, USER_DIR, build_model, children_of, cmdline, kill_all, one_line_error, run_cli,
                      running, toy_task, train_toy)
from fairseq import checkpoint_utils

from fairseq_attn_gru import GRUAttnModel, UserError

TOY = toy_task("reverse", vocab_size=20, min_len=3, max_len=8, train_size=100, valid_size=10, test_size=10)
TOY_HUB = dict(task="toy_translation", toy_rule="reverse", toy_vocab_size=20, toy_min_len=3, toy_max_len=8,
               toy_train_size=100, toy_valid_size=10, toy_test_size=10)
TINY = ["--encoder-embed-dim", "8", "--encoder-hidden-size", "8", "--decoder-embed-dim", "8",
        "--decoder-hidden-size", "16", "--decoder-out-embed-dim", "8"]
LSTM_TINY = ["--encoder-embed-dim", "8", "--encoder-hidden-size", "8", "--decoder-embed-dim", "8",
             "--decoder-hidden-size", "8", "--decoder-out-embed-dim", "8"]
#: name -> (toy rule, fairseq-train flags): seconds-long trainings, enough for a checkpoint
CHECKPOINTS = {"dot": ("reverse", ["--arch", "gru_attn_dot", *TINY]),
               "none": ("reverse", ["--arch", "gru_seq2seq", *TINY]),
               "lstm": ("reverse", ["--arch", "lstm", *LSTM_TINY]),
               "copy": ("copy", ["--arch", "gru_attn_dot", *TINY])}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """{name: checkpoint_last.pt} of CHECKPOINTS, two updates each."""
    paths = {}
    for name, (rule, flags) in CHECKPOINTS.items():
        save_dir = tmp_path_factory.mktemp(name)
        toy = toy_task(rule, vocab_size=20, min_len=3, max_len=8, train_size=100, valid_size=10, test_size=10)
        train_toy(save_dir, toy, *flags, "--max-update", "2", "--max-tokens", "500", "--no-epoch-checkpoints")
        paths[name] = save_dir / "checkpoint_last.pt"
    return paths


def load(paths, **overrides):
    return checkpoint_utils.load_model_ensemble_and_task([str(path) for path in paths], arg_overrides=overrides)


# -- 1. a request is honoured, refused in one line, or its value rejected ----------------------------------------

def test_our_inference_options_on_a_model_without_them_are_refused(checkpoints):
    """fairseq drops an override the checkpoint's config lacks: fairseq's lstm generated in fp32, silently."""
    for option in ("int8", "cpu_bf16"):
        with pytest.raises(UserError, match=rf"--model-overrides '{option}': True asks for .* holds LSTMModel, which "
                                            r"has no such option and would run in fp32: drop it"):
            load([checkpoints["lstm"]], **{option: True})
    load([checkpoints["lstm"]], int8=False)  # asking for nothing is fine
    result = run_cli("fairseq-generate", "--user-dir", USER_DIR, *TOY, "--path", checkpoints["lstm"], "--gen-subset",
                     "test", "--cpu", "--model-overrides", "{'int8': True}", check=False)
    one_line_error(result, "--model-overrides 'int8': True asks for int8 quantization")


@pytest.mark.parametrize("overrides, message", [
    ({"int8": "False"}, "--int8='False' is not allowed: True or False, a bool"),  # used to quantize: 'False' is true
    ({"cpu_bf16": "no"}, "--cpu-bf16='no' is not allowed: True or False, a bool"),  # used to run bf16
    ({"max_source_positions": "5"}, "--max-source-positions='5' is not allowed: an integer"),  # a TypeError before
    ({"dropout": True}, "--dropout=True is not allowed: a number"),
])
def test_override_values_of_the_wrong_type_are_refused(checkpoints, overrides, message):
    with pytest.raises(UserError, match=re.escape(message)):
        load([checkpoints["dot"]], **overrides)


def test_int8_requests_that_are_not_bools_are_refused(checkpoints):
    from omegaconf import OmegaConf

    from fairseq_attn_gru.inference.int8 import int8_requested

    with pytest.raises(UserError, match=re.escape("--model-overrides 'int8'='False' is not allowed: True or False")):
        int8_requested(OmegaConf.create({"common_eval": {"model_overrides": "{'int8': 'False'}"}}))
    assert int8_requested(OmegaConf.create({"common_eval": {"model_overrides": "{'int8': False}"}})) is False
    with pytest.raises(UserError, match=re.escape("int8='yes' is not allowed: True or False")):
        GRUAttnModel.from_pretrained(str(checkpoints["dot"].parent), checkpoint_file="checkpoint_last.pt", int8="yes",
                                     **TOY_HUB)


def test_precision_auto_pins_its_measurement_per_machine(tmp_path):
    """The decision changes a recipe's result, and one machine gave fp32 in three probes and bf16 in a fourth: the
    first measurement is kept for the CPU model, flags and torch, and every later run reuses it."""
    from fairseq_attn_gru.recipes.precision_probe import bf16_decision

    pins, measured = tmp_path / "pins.json", []

    def speedup(value):
        return lambda: measured.append(value) or value

    flags = {"avx512_bf16"}
    use, why = bf16_decision(1.1, flags=flags, speedup=speedup(2.0), pins=pins)
    assert use and measured == [2.0] and "pinned for this CPU" in why
    for later in (0.7, 1.05):  # a loaded machine now: the pinned figure decides, nothing is measured
        use, why = bf16_decision(1.1, flags=flags, speedup=speedup(later), pins=pins)
        assert use and measured == [2.0] and re.search(r"measured 2\.00x .* pinned in .*delete it", why)
    use, _ = bf16_decision(1.1, flags={"amx_bf16"}, speedup=speedup(0.7), pins=pins)  # another machine: its own
    assert not use and measured == [2.0, 0.7]
    pins.write_text("{not json")  # damaged: measured and written again
    assert bf16_decision(1.1, flags=flags, speedup=speedup(1.5), pins=pins)[0] and measured[-1] == 1.5
    assert bf16_decision(1.1, flags=flags, speedup=speedup(0.5), pins=pins)[0] and measured[-1] == 1.5


# -- 2. no tool writes over one of its own inputs; outputs whole or not at all ------------------------------------

def test_export_never_writes_over_its_checkpoint_or_into_a_wrong_path(checkpoints, tmp_path):
    from fairseq_attn_gru.inference.torchscript import export

    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(checkpoints["dot"].read_bytes())
    before = checkpoint.read_bytes()
    result = run_cli(REPO / "scripts" / "export_torchscript.py", checkpoint, checkpoint, check=False)
    one_line_error(result, f"the TorchScript file '{checkpoint}' is an input of this command")
    assert checkpoint.read_bytes() == before  # it used to be replaced by the scripted model
    with pytest.raises(UserError, match=re.escape(f"the TorchScript file '{tmp_path}' is a directory")):
        export(checkpoint, tmp_path)
    with pytest.raises(UserError, match=re.escape(f"'{checkpoint}' is a file, not a directory")):
        export(checkpoint, checkpoint / "model.ts")  # used to end in NotADirectoryError


def test_an_export_that_fails_midway_leaves_the_old_file_and_no_temporary(checkpoints, tmp_path, monkeypatch):
    from fairseq_attn_gru.inference.torchscript import export

    out = tmp_path / "model.ts"
    out.write_bytes(b"the previous export")

    def disk_full(module, path, _extra_files=None):
        with open(path, "wb") as half_written:
            half_written.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch.jit, "save", disk_full)
    with pytest.raises(UserError, match=r"cannot write the TorchScript file .* \(No space left on device\); nothing "
                                        "was written"):
        export(checkpoints["dot"], out)
    assert out.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ts"]


def test_output_checks_refuse_any_input(tmp_path):
    from fairseq_attn_gru.recipes.cli import write_output

    source = tmp_path / "dict.en.txt"
    source.write_text("w1 1\n")
    with pytest.raises(UserError, match="is an input of this command"):
        write_output(tmp_path / "." / "dict.en.txt", lambda t: t.write_text("x"), "the output", inputs=[source])
    assert source.read_text() == "w1 1\n"


# -- 3. artifacts that do not belong together are refused, naming the difference --------------------------------

def test_scripted_file_without_its_dictionaries_or_not_scripted_is_refused(checkpoints, tmp_path):
    from fairseq_attn_gru.inference.torchscript import export, load_scripted

    model, dictionaries = load_scripted(export(checkpoints["dot"], tmp_path / "model.ts"))
    assert len(dictionaries["source"]) == model.encoder.embed_tokens.weight.size(0)
    torch.jit.save(model, str(tmp_path / "bare.ts"))  # no extra files: every word would have been <unk>
    with pytest.raises(UserError, match="holds no dict.src.txt or dict.tgt.txt: without its dictionaries every word"):
        load_scripted(tmp_path / "bare.ts")
    with pytest.raises(UserError, match=re.escape(f"TorchScript file '{checkpoints['dot']}' cannot be loaded")):
        load_scripted(checkpoints["dot"])


def test_models_are_refused_with_data_other_than_they_were_trained_for(checkpoints):
    """A toy `reverse` model asked for `copy` (same dictionaries) scored BLEU 0 without a word; so did an ensemble of a
    `reverse` and a `copy` model."""
    with pytest.raises(UserError, match=re.escape(f"checkpoint '{checkpoints['dot']}' was trained for other data than "
                                                  "it is loaded with (--toy-rule: 'reverse' there, 'copy' here)")):
        load([checkpoints["dot"]], toy_rule="copy")
    with pytest.raises(UserError, match=re.escape(f"checkpoint '{checkpoints['copy']}' was trained for other data "
                                                  "than it is loaded with (--toy-rule: 'copy' there, 'reverse' here)")):
        load([checkpoints["dot"], checkpoints["copy"]])
    result = run_cli("fairseq-generate", "--user-dir", USER_DIR, *TOY, "--path",
                     f"{checkpoints['dot']}:{checkpoints['copy']}", "--gen-subset", "test", "--cpu", check=False)
    one_line_error(result, f"checkpoint '{checkpoints['copy']}' was trained for other data")
    models, _, _ = load([checkpoints["dot"], checkpoints["none"]])  # same data, other architectures: fine
    assert len(models) == 2


def test_fairseqs_translation_task_with_other_dictionaries_is_refused():
    """Dictionaries of the same size with other symbols (another data directory): the checkpoint's task state says
    which dictionaries the model was trained on."""
    from fairseq.data import Dictionary
    from fairseq.tasks.translation import TranslationConfig, TranslationTask

    def task(words):
        dictionary = Dictionary()
        for word in words:
            dictionary.add_symbol(word)
        return TranslationTask(TranslationConfig(), dictionary, dictionary)

    trained = task(["ein", "Hund", "a", "dog"])
    build_model("gru_attn_dot", task=trained)
    saved = dict(trained.state_dict())  # what fairseq-train saves as the checkpoint's task_state
    same = task(["ein", "Hund", "a", "dog"])
    same.load_state_dict(saved)
    build_model("gru_attn_dot", task=same)
    other = task(["eine", "Katze", "a", "cat"])
    other.load_state_dict(saved)
    with pytest.raises(UserError, match=r"\(source dictionary: 8 symbols, sha256 \w{12} there, 8 symbols, sha256 \w{12} "
                                        r"here; target dictionary: "):
        build_model("gru_attn_dot", task=other)


def test_checkpoints_that_cannot_be_averaged_are_told_apart(checkpoints):
    from fairseq_attn_gru.models.trained_on import checkpoint_differences

    states = {name: torch.load(path, weights_only=True) for name, path in checkpoints.items()}
    assert checkpoint_differences(states["dot"], states["dot"]) == []
    assert checkpoint_differences(states["dot"], states["copy"]) == ["--toy-rule: 'copy' there, 'reverse' in the first"]
    assert "--attention-type: 'none' there, 'dot' in the first" in checkpoint_differences(states["dot"], states["none"])


def test_average_refuses_checkpoints_of_another_task(checkpoints, tmp_path):
    """Averaging a `reverse` and a `copy` model gave BLEU 0 without a word; now one line, nothing written."""
    from fairseq_attn_gru.pipeline.average import average_checkpoints

    with pytest.raises(UserError, match=re.escape(f"{str(checkpoints['copy'])!r} cannot be averaged with "
                                                  f"{str(checkpoints['dot'])!r}: --toy-rule: 'copy' there")):
        average_checkpoints([checkpoints["dot"], checkpoints["copy"]], tmp_path / "avg.pt")
    assert not list(tmp_path.iterdir())


def test_attention_from_an_ensemble_with_a_model_without_attention_is_refused(checkpoints):
    """Its rows summed to 0.5: fairseq's ensemble averages the attention of the models that have one over all."""
    hub = GRUAttnModel.from_pretrained(str(checkpoints["dot"].parent),
                                       checkpoint_file=f"{checkpoints['dot']}:{checkpoints['none']}", **TOY_HUB)
    with pytest.raises(UserError, match=r"model 2 of 2 .* --attention-type none: .*rows would sum to 0\.50"):
        hub.translate_with_attention(["w1 w2 w3"])
    assert len(hub.translate(["w1 w2 w3"])) == 1  # translating with that ensemble stays allowed


# -- 4. tracebacks become one line ---------------------------------------------------------------------------------

def test_int8_on_half_precision_weights_is_refused():
    from fairseq_attn_gru.inference.int8 import quantize_model

    model = build_model("gru_attn_dot").eval().half()  # fairseq-generate --fp16 converts before int8 could run
    with pytest.raises(UserError, match=r"int8 quantizes fp32 weights, but the model's are float16 .* drop "
                                        r"--fp16/--bf16"):
        quantize_model(model)


def test_generate_with_fairseqs_bf16_or_int8_with_fp16_is_one_line(checkpoints):
    flags = ["--user-dir", USER_DIR, *TOY, "--path", checkpoints["dot"], "--gen-subset", "test", "--cpu"]
    result = run_cli("fairseq-generate", *flags, "--bf16", check=False)  # used to run fp32 without a word
    one_line_error(result, "--bf16 is not applied by fairseq's generation tools: the model would run in fp32; for "
                           "bfloat16 on a CPU use --model-overrides \"{'cpu_bf16': True}\"")
    result = run_cli("fairseq-generate", *flags, "--fp16", "--model-overrides", "{'int8': True}", check=False)
    one_line_error(result, "int8 quantizes fp32 weights, but the model's are float16")  # a traceback before


def test_training_precision_flags_without_their_device_point_to_cpu_bf16(tmp_path):
    from fairseq_attn_gru.fairseq_fixes.cpu_training_precision import refusal

    def cfg(**common):
        flags = dict(cpu=True, bf16=False, fp16=False, memory_efficient_fp16=False, amp=False)
        return Namespace(common=Namespace(**{**flags, **common}))

    assert refusal(cfg()) is None
    for flag in ("fp16", "memory_efficient_fp16", "amp"):
        assert "needs a CUDA GPU, and this run is on the CPU" in refusal(cfg(**{flag: True}))
    result = run_cli("fairseq-train", "--user-dir", USER_DIR, *TOY, "--arch", "gru_attn_dot", *TINY, "--cpu", "--bf16",
                     "--optimizer", "adam", "--max-update", "1", "--save-dir", tmp_path, check=False)
    one_line_error(result, "--bf16 is fairseq's bfloat16 for TPUs (it implies --tpu), and this machine has no "
                           "torch_xla: on a GPU use --fp16 or --amp, on a CPU this model's --cpu-bf16")


def test_resuming_with_other_architecture_options_names_them(checkpoints, tmp_path):
    (tmp_path / "checkpoint_last.pt").write_bytes(checkpoints["dot"].read_bytes())
    result = run_cli("fairseq-train", "--user-dir", USER_DIR, *TOY, "--arch", "gru_attn_general", *TINY, "--cpu",
                     "--optimizer", "adam", "--max-update", "4", "--max-tokens", "500", "--save-dir", tmp_path,
                     check=False)
    one_line_error(result, f"'{tmp_path / 'checkpoint_last.pt'}' holds a model trained with other options than these "
                           "(--attention-type: 'dot' there, 'general' here): resume it with its own options, or train "
                           "this model into another --save-dir")


def test_from_pretrained_given_the_checkpoint_file_says_how_to_call_it(checkpoints):
    path = checkpoints["dot"]
    with pytest.raises(UserError, match=re.escape(f"from_pretrained('{path}'): that is a file, and from_pretrained takes "
                                                  f"the checkpoint's directory and its file name: from_pretrained("
                                                  f"'{path.parent}', checkpoint_file='{path.name}')")):
        GRUAttnModel.from_pretrained(str(path), **TOY_HUB)


# -- 5. errors speak the caller's language and name the fix -------------------------------------------------------

def test_over_long_sentence_from_python_is_a_user_error_naming_it(checkpoints):
    """fairseq raised a bare Exception telling a Python caller to pass a command-line flag (or, over --max-tokens, an
    AssertionError)."""
    hub = GRUAttnModel.from_pretrained(str(checkpoints["dot"].parent), checkpoint_file="checkpoint_last.pt", **TOY_HUB)
    for words, limit in ((1100, "--max-source-positions=1024"), (600, "--max-tokens=500")):  # as trained
        message = rf"sentence 2 of 2 \('w1 w1 .*\.\.\.'\) is too long: {words + 1} tokens \(</s> included\), more " \
                  rf"than {limit}: split it, or leave it out"
        with pytest.raises(UserError, match=message):
            hub.translate(["w1 w2", " ".join(["w1"] * words)])
        with pytest.raises(UserError, match=message):  # fairseq would drop it: outputs out of line with inputs
            hub.translate(["w1 w2", " ".join(["w1"] * words)], skip_invalid_size_inputs=True)
        with pytest.raises(UserError, match=message):
            hub.translate_with_attention(["w1 w2", " ".join(["w1"] * words)])
    assert len(hub.translate(["w1 w2", " ".join(["w1"] * 400)])) == 2  # within every limit


def test_hub_refuses_options_and_sentences_it_would_mishandle(checkpoints):
    """beam 0 or "5" ended in tracebacks, a misspelt option was set and ignored, an empty sentence was translated into
    whatever the model says after nothing, a missing directory or file ended in TypeError/OSError tracebacks."""
    directory = str(checkpoints["dot"].parent)
    hub = GRUAttnModel.from_pretrained(directory, checkpoint_file="checkpoint_last.pt", **TOY_HUB)
    for call in (lambda: hub.translate("w1 w2", beam=0), lambda: hub.translate_with_attention("w1 w2", beam="5")):
        with pytest.raises(UserError, match=r"^beam=(0|'5') is not allowed: a positive integer \(1: greedy search\)$"):
            call()
    with pytest.raises(UserError, match=r"^lenpenn=1\.2 is not a generation option \(did you mean 'lenpen'\?\)"):
        hub.translate("w1 w2", lenpenn=1.2)
    assert isinstance(hub.translate("w1 w2", lenpen=1.2, max_len_b=20), str)
    with pytest.raises(UserError, match=r"^sentence 2 of 3 is empty: nothing to translate"):
        hub.translate(["w1 w2", "", "w3"])
    with pytest.raises(UserError, match=r"no such directory"):
        GRUAttnModel.from_pretrained(directory + "/missing", checkpoint_file="checkpoint_last.pt", **TOY_HUB)
    with pytest.raises(UserError, match=r"^from_pretrained: checkpoint_file='nope.pt': no such file in "):
        GRUAttnModel.from_pretrained(directory, checkpoint_file="nope.pt", **TOY_HUB)


def test_int8_refusal_for_a_bf16_model_names_the_fix():
    model = build_model("gru_attn_dot", cpu_bf16=True, int8=True)
    with pytest.raises(UserError, match=re.escape("--model-overrides \"{'int8': True, 'cpu_bf16': False}\" (from Python: "
                                                  "int8=True, cpu_bf16=False)")):
        model.load_state_dict(model.state_dict())


def test_a_lowered_position_limit_is_named_not_the_toy_length():
    from fairseq_attn_gru.tasks.toy_translation import ToyTranslationConfig, ToyTranslationTask

    task = ToyTranslationTask.setup_task(ToyTranslationConfig(toy_rule="reverse", toy_vocab_size=20, toy_max_len=8,
                                                              toy_test_size=10))
    task.load_dataset("test")
    with pytest.raises(UserError, match=re.escape("the test split has source sentences of up to 9 tokens (</s> "
                                                  "included), more than --max-source-positions=5 allows (the model's")):
        task.get_batch_iterator(task.dataset("test"), max_positions=(5, 256)).next_epoch_itr(shuffle=False)


# -- 6. a script waits for every process it started ------------------------------------------------------------

def test_demo_sigterm_ends_after_every_process_it_started(tmp_path):
    """fairseq-train's DataLoader workers outlived the demo by seconds (they notice their parent's end late)."""
    process = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--out-dir", str(tmp_path), "--types", "dot", "--epochs",
         "1000", "--train-size", "3000", "--vocab-size", "20", "--max-len", "8", "--test-size", "8"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1"))
    workers = []
    try:
        deadline = time.time() + 180
        while not workers:  # fairseq-train and the worker processes it started
            assert time.time() < deadline and process.poll() is None
            trainers = [pid for pid in children_of(process.pid) if "fairseq-train" in cmdline(pid)]
            workers = [pid for trainer in trainers for pid in children_of(trainer)]
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        stderr = process.communicate(timeout=60)[1]
        assert process.returncode == 143, stderr[-2000:]
        assert stderr.strip().splitlines()[-1].startswith("interrupted by SIGTERM")
        left = [pid for pid in os.listdir("/proc") if pid.isdigit() and str(tmp_path) in cmdline(int(pid))
                and running(int(pid))]
        assert not left and not any(running(pid) for pid in trainers + workers), "a process outlived the demo"
    finally:
        process.kill()
        kill_all(workers)


# -- 7, 8: int8 batch dependence as documented; beam search reads each sentence once ----------------------------

@pytest.fixture(scope="module")
def reverse_model(tmp_path_factory):
    from test_int8 import reverse_checkpoint

    return reverse_checkpoint(tmp_path_factory)


def documented_bounds():
    """The figures docs/inference.md gives for how far a sentence's result moves with its batch."""
    text = " ".join((REPO / "docs" / "inference.md").read_text(encoding="utf-8").split())  # lines joined
    found = re.search(r"fp32: at most ([0-9.e-]+) in a score and ([0-9.e-]+) in an attention weight; int8: at most "
                      r"([0-9.e-]+) in a score and ([0-9.e-]+) in an attention weight", text)
    assert found, "docs/inference.md does not say how far a sentence's output moves with its batch"
    return {"fp32": tuple(map(float, found.group(1, 2))), "int8": tuple(map(float, found.group(3, 4)))}


@pytest.mark.slow
def test_batch_dependence_is_what_the_docs_say(reverse_model):
    """docs/inference.md said a sentence gets the same attention whatever it is batched with; under int8 that does not
    hold (one activation scale per matrix product over the whole batch): the docs give the figures, checked here."""
    from test_int8 import REVERSE_HUB

    bounds = documented_bounds()
    generator = torch.Generator().manual_seed(3)
    sentences = [" ".join(f"w{int(w)}" for w in torch.randint(0, 20, (int(n),), generator=generator))
                 for n in torch.randint(3, 11, (24,), generator=generator)]
    for precision, int8 in (("fp32", False), ("int8", True)):
        hub = GRUAttnModel.from_pretrained(str(reverse_model.parent), checkpoint_file=reverse_model.name, int8=int8,
                                           **REVERSE_HUB)
        together = hub.translate_with_attention(sentences, beam=5)
        score = attention = 0.0
        for sentence, batched in zip(sentences[::4], together[::4]):
            alone = hub.translate_with_attention(sentence, beam=5)
            assert alone.output_tokens == batched.output_tokens
            score = max(score, abs(alone.score - batched.score))
            attention = max(attention, float((alone.attention - batched.attention).abs().max()))
        assert score <= bounds[precision][0] and attention <= bounds[precision][1], (precision, score, attention)
        if int8:
            assert attention > bounds["fp32"][1], "int8 no longer depends on the batch: say so in the docs"


def per_row_layout(source_row, new_order, stored):
    """A reorder that gives every row of the batch its own copy of the encoder outputs (fairseq's own layout)."""
    wanted = source_row.index_select(0, new_order)
    return wanted, torch.arange(wanted.numel())


@pytest.mark.slow
def test_beam_search_stores_each_sentence_once_and_finds_the_same_hypotheses(reverse_model, monkeypatch):
    """Attention read the encoder outputs of every beam separately (B·beam copies, memory-bound, fp32 under int8):
    now once per sentence. The hypotheses equal those of the per-row layout, with sentences finishing at different
    steps (the rows of finished sentences dropped)."""
    import fairseq_attn_gru.models.decoder as decoder_module
    import fairseq_attn_gru.models.encoder as encoder_module

    models, cfg, task = load([reverse_model])
    model = models[0].eval()
    task.load_dataset("test")
    batches = list(task.get_batch_iterator(task.dataset("test"), max_sentences=50).next_epoch_itr(shuffle=False))
    generator = task.build_generator([model], cfg.generation)
    first = batches[0]["net_input"]
    sentences = first["src_tokens"].size(0)
    with torch.no_grad():  # fairseq's expansion to 5 beams per sentence
        expanded = model.encoder.reorder_encoder_out(model.encoder(first["src_tokens"], first["src_lengths"]),
                                                     torch.arange(sentences).repeat_interleave(5))
    assert expanded["encoder_out"][0].size(0) == sentences  # not 5 copies of each sentence
    with torch.no_grad():
        grouped = [hypos for batch in batches for hypos in generator.generate([model], batch)]
        monkeypatch.setattr(encoder_module, "regroup", per_row_layout)
        monkeypatch.setattr(decoder_module, "regroup", per_row_layout)
        per_row = [hypos for batch in batches for hypos in generator.generate([model], batch)]
    assert len({len(hypos[0]["tokens"]) for hypos in grouped}) > 3  # sentences finished at different steps
    for ours, reference in zip(grouped, per_row):
        assert [h["tokens"].tolist() for h in ours] == [h["tokens"].tolist() for h in reference]
        torch.testing.assert_close(torch.stack([h["score"] for h in ours]),
                                   torch.stack([h["score"] for h in reference]), rtol=0, atol=1e-5)


# -- 9. fixes check the fairseq they patch; extension points before patches ---------------------------------------

def test_a_fix_for_another_fairseq_or_other_parameters_is_left_out_with_one_line(monkeypatch):
    import fairseq

    from fairseq_attn_gru.fairseq_fixes import patching

    warnings = []
    monkeypatch.setattr(patching.logger, "warning", warnings.append)

    def finalize(self, step, bbsz_idx):
        return "fairseq's"

    owner = Namespace(finalize=finalize)

    def wrapper(original):
        def finalize(self, step, bbsz_idx):
            return "patched"

        return finalize

    monkeypatch.setattr(fairseq, "__version__", "0.12.2")
    assert not patching.wrap_once(owner, "finalize", wrapper, fix="fairseq_attn_gru.fairseq_fixes.example")
    assert owner.finalize is finalize
    assert warnings == ["fairseq-attn-gru: example fix skipped: fairseq's Namespace.finalize is not what it was "
                        "written for (written for fairseq 0.12.3.1, this is fairseq 0.12.2); that part of fairseq "
                        "runs unchanged"]
    monkeypatch.setattr(fairseq, "__version__", "0.12.3.1")

    def renamed(self, step, batch_indices):  # the same fairseq number, other parameters
        return "fairseq's"

    owner.finalize = renamed
    assert not patching.wrap_once(owner, "finalize", wrapper, fix="fairseq_attn_gru.fairseq_fixes.example")
    assert owner.finalize is renamed and "its parameters are (self, step, batch_indices), the fix expects (self, " \
                                         "step, bbsz_idx)" in warnings[-1]
    owner.finalize = finalize
    assert patching.wrap_once(owner, "finalize", wrapper, fix="fairseq_attn_gru.fairseq_fixes.example")
    assert owner.finalize(None, 0, None) == "patched"


def test_patient_beam_search_comes_from_build_generator_for_our_models_only(checkpoints, monkeypatch):
    """Our task chooses the patient generator through fairseq's extension point; fairseq's translation task gets it
    through the fix; fairseq's lstm and another fairseq get fairseq's own."""
    import fairseq
    from fairseq import utils
    from fairseq.sequence_generator import SequenceGenerator, SequenceGeneratorWithAlignment
    from fairseq.tasks.translation import TranslationConfig, TranslationTask

    from fairseq_attn_gru.fairseq_fixes import patching, patient_beam

    (ours, lstm), _, toy = load([checkpoints["dot"], checkpoints["lstm"]])
    plain, aligned = Namespace(beam=5), Namespace(beam=5, print_alignment="hard")
    assert type(toy.build_generator([ours], plain)) is patient_beam.PatientSequenceGenerator
    assert type(toy.build_generator([ours], aligned)) is patient_beam.PatientSequenceGeneratorWithAlignment
    assert type(toy.build_generator([lstm], plain)) is SequenceGenerator
    assert type(toy.build_generator([ours, lstm], plain)) is SequenceGenerator
    translation = TranslationTask(TranslationConfig(), toy.source_dictionary, toy.target_dictionary)
    assert type(translation.build_generator([ours], plain)) is patient_beam.PatientSequenceGenerator
    assert type(translation.build_generator([lstm], aligned)) is SequenceGeneratorWithAlignment
    soft = translation.build_generator([ours], Namespace(beam=5, print_alignment="soft"))
    assert soft.extract_alignment is utils.extract_soft_alignment  # fairseq's own argument reached it

    warnings = []
    monkeypatch.setattr(patient_beam, "_usable", [])  # checked again, on "another" fairseq
    monkeypatch.setattr(fairseq, "__version__", "0.13.0")
    monkeypatch.setattr(patching.logger, "warning", warnings.append)
    assert type(toy.build_generator([ours], plain)) is SequenceGenerator
    assert len(warnings) == 1 and "patient_beam fix skipped" in warnings[0] and "fairseq 0.13.0" in warnings[0]

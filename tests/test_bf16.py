"""--cpu-bf16: matmuls and GRUs in bfloat16 under autocast; weights, logits and loss stay fp32. The Multi30k
recipe's --precision auto turns it on only where bf16 measures faster."""
import importlib

import pytest
import torch

from conftest import USER_DIR, build_model, random_batch, run_cli, toy_task, train_toy
from test_model import target_prefix

from fairseq_attn_gru.errors import UserError


def test_bf16_output_is_close_to_fp32_and_keeps_fp32_weights_and_logits():
    model = build_model("gru_attn_general").eval()
    src_tokens, src_lengths = random_batch(model.encoder.dictionary, [7, 4, 6])
    prev = target_prefix(model.decoder.dictionary, 3, 5)
    with torch.no_grad():
        fp32_logits, _ = model(src_tokens, src_lengths, prev)
        model.encoder.cpu_bf16 = model.decoder.cpu_bf16 = True
        bf16_logits, extra = model(src_tokens, src_lengths, prev)
    assert bf16_logits.dtype == torch.float32 and extra["attn"][0].dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert not torch.equal(bf16_logits, fp32_logits)  # it really ran in lower precision
    # tolerance: bf16 keeps 8 bits of mantissa; the log-probabilities agree to a few hundredths
    fp32_lprobs, bf16_lprobs = fp32_logits.log_softmax(-1), bf16_logits.log_softmax(-1)
    assert (fp32_lprobs - bf16_lprobs).abs().max() < 0.05


def test_bf16_trains_and_its_checkpoint_generates(tmp_path):
    toy = toy_task("copy", vocab_size=20, max_len=6, train_size=200, valid_size=16, test_size=16)
    train_toy(tmp_path, toy, "--cpu-bf16", "--lr", "0.003", "--max-tokens", "500", "--max-update", "4")
    state = torch.load(tmp_path / "checkpoint_last.pt", weights_only=True)
    assert all(t.dtype == torch.float32 for t in state["model"].values() if t.is_floating_point())
    assert state["cfg"]["model"]["cpu_bf16"] is True
    out = run_cli("fairseq-generate", "--user-dir", USER_DIR, *toy, "--path", tmp_path / "checkpoint_last.pt",
                  "--gen-subset", "test", "--cpu", "--beam", "5").stdout
    assert out.count("\nH-") + out.startswith("H-") == 16


@pytest.fixture
def pipeline_train():
    return importlib.import_module("fairseq_attn_gru.pipeline.train")


@pytest.mark.parametrize("asked, speedup, chosen", [
    ("auto", 2.0, "bf16"), ("auto", 0.55, "fp32"), ("auto", 1.05, "fp32"),  # bf16 only when clearly faster
    ("fp32", 2.0, "fp32"), ("bf16", 0.55, "bf16"),  # asked for explicitly: never measured
])
def test_precision_auto_follows_the_measured_speedup(pipeline_train, monkeypatch, asked, speedup, chosen):
    measured = []
    decide = pipeline_train.bf16_decision

    def fake_decision(min_speedup):
        return decide(min_speedup, flags={"avx512_bf16"}, speedup=lambda: measured.append(speedup) or speedup)

    monkeypatch.setattr(pipeline_train, "bf16_decision", fake_decision)
    assert pipeline_train.resolve_precision(asked) == chosen
    assert measured == ([speedup] if asked == "auto" else [])


def test_precision_auto_is_fp32_without_bf16_instructions_and_on_a_gpu(pipeline_train):
    from fairseq_attn_gru.recipes.precision_probe import bf16_decision

    assert bf16_decision(1.1, flags={"avx2", "avx512f"}, speedup=lambda: pytest.fail("measured")) == (
        False, "this CPU has no bfloat16 instructions (avx512_bf16, amx_bf16)")
    assert pipeline_train.resolve_precision("auto", "cuda") == "fp32"
    with pytest.raises(UserError, match="--precision=bf16 is not allowed on a GPU"):
        pipeline_train.resolve_precision("bf16", "cuda")


def test_the_speedup_is_the_median_of_alternating_rounds():
    """One slow round (another process took the CPU during a bf16 timing) does not flip the decision."""
    from fairseq_attn_gru.recipes.precision_probe import bf16_speedup

    timings = iter([2.0, 1.0, 2.0, 1.0, 2.0, 5.0, 2.0, 1.0, 2.0, 1.0])  # fp32, bf16 alternating; round 3 disturbed
    assert bf16_speedup(rounds=5, seconds=lambda enabled: next(timings)) == 2.0


def test_training_env_leaves_variables_the_user_set(pipeline_train):
    env = pipeline_train.training_env({"OMP_WAIT_POLICY": "PASSIVE", "PATH": "/bin"})
    assert "OMP_WAIT_POLICY" not in env
    assert env["MALLOC_TRIM_THRESHOLD_"] == pipeline_train.TRAIN_ENV["MALLOC_TRIM_THRESHOLD_"]

"""--cpu-bf16: matmuls and GRUs in bfloat16 under autocast; weights, logits and loss stay fp32."""
import torch

from conftest import USER_DIR, build_model, random_batch, run_cli
from test_model import target_prefix


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
    toy = ["--task", "toy_translation", "--toy-rule", "copy", "--toy-vocab-size", "20", "--toy-max-len", "6",
           "--toy-train-size", "200", "--toy-valid-size", "16", "--toy-test-size", "16"]
    run_cli("fairseq-train", "--user-dir", USER_DIR, *toy, "--arch", "gru_attn_dot", "--cpu-bf16", "--cpu",
            "--optimizer", "adam", "--lr", "0.003", "--max-tokens", "500", "--max-update", "4", "--save-dir", tmp_path)
    state = torch.load(tmp_path / "checkpoint_last.pt", weights_only=True)
    assert all(t.dtype == torch.float32 for t in state["model"].values() if t.is_floating_point())
    assert state["cfg"]["model"]["cpu_bf16"] is True
    out = run_cli("fairseq-generate", "--user-dir", USER_DIR, *toy, "--path", tmp_path / "checkpoint_last.pt",
                  "--gen-subset", "test", "--cpu", "--beam", "5").stdout
    assert out.count("\nH-") + out.startswith("H-") == 16

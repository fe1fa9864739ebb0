"""The model on a GPU (`pytest -m cuda`; every test here is skipped where torch sees no CUDA device).

* Training: the GPU runs cuDNN's GRU where the CPU runs this package's hand-written recurrence (models/gru.py), so
  one forward and backward of every named architecture (test_model.VARIANTS) is checked against the CPU's: logits
  and every gradient within TOLERANCE, in fp32 with TF32 off (cuDNN and cuBLAS would otherwise round the inputs of
  every product to 10 bits).
* Decoding on the GPU: incremental decoding equals the full forward, and both equal the CPU's.
* fairseq-train on the GPU with --amp (fp16 autocast, loss scaling) and with --fp16: finite losses that go down.
  fairseq's --bf16 implies --tpu (fairseq 0.12.3.1's parse_args_and_arch): without torch_xla it is refused in one line.

scripts/gpu_check.sh runs these with the GPU benchmark and a Multi30k run, and prints a summary.
"""
import copy
import math
import re

import pytest
import torch

from conftest import USER_DIR, build_model, random_batch, run_cli, toy_task
from test_model import IDS, VARIANTS, target_prefix

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")]

#: fp32 on both devices, TF32 off: only the order of the sums differs (cuDNN's fused GRU against the CPU's loop)
TOLERANCE = dict(rtol=1e-4, atol=1e-5)


@pytest.fixture(autouse=True)
def full_fp32_matmuls():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def without_dropout(overrides):
    """Dropout draws different masks on each device: the comparison needs none."""
    return {**overrides, "dropout": 0.0, "encoder_word_dropout": 0.0, "decoder_word_dropout": 0.0}


def batch(model):
    src_tokens, src_lengths = random_batch(model.encoder.dictionary, [7, 4, 6, 2], left_pad=True)
    prev = target_prefix(model.decoder.dictionary, 4, 5)
    target = target_prefix(model.decoder.dictionary, 4, 5, seed=2)
    return src_tokens, src_lengths, prev, target


@pytest.mark.parametrize("arch,overrides", VARIANTS, ids=IDS)
def test_gpu_training_step_matches_cpu(arch, overrides):
    cpu_model = build_model(arch, **without_dropout(overrides)).train()
    gpu_model = copy.deepcopy(cpu_model).cuda()
    src_tokens, src_lengths, prev, target = batch(cpu_model)
    results = {}
    for device, model in (("cpu", cpu_model), ("cuda", gpu_model)):
        logits, _ = model(src_tokens.to(device), src_lengths.to(device), prev.to(device))
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), target.to(device).flatten(), reduction="sum")
        loss.backward()
        results[device] = logits.detach().cpu(), {name: p.grad.cpu() for name, p in model.named_parameters()}
    (cpu_logits, cpu_grads), (gpu_logits, gpu_grads) = results["cpu"], results["cuda"]
    torch.testing.assert_close(gpu_logits, cpu_logits, **TOLERANCE)
    assert gpu_grads.keys() == cpu_grads.keys()
    for name in cpu_grads:
        torch.testing.assert_close(gpu_grads[name], cpu_grads[name], **TOLERANCE, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("arch,overrides", VARIANTS, ids=IDS)
def test_gpu_incremental_decoding_equals_full_forward_and_cpu(arch, overrides):
    cpu_model = build_model(arch, **without_dropout(overrides)).eval()
    gpu_model = copy.deepcopy(cpu_model).cuda()
    src_tokens, src_lengths, prev, _ = batch(cpu_model)
    with torch.no_grad():
        cpu_logits, _ = cpu_model(src_tokens, src_lengths, prev)
        src_tokens, src_lengths, prev = src_tokens.cuda(), src_lengths.cuda(), prev.cuda()
        full_logits, _ = gpu_model(src_tokens, src_lengths, prev)
        encoder_out = gpu_model.encoder(src_tokens, src_lengths)
        state = {}
        steps = [gpu_model.decoder(prev[:, : t + 1], encoder_out, incremental_state=state)[0]
                 for t in range(prev.size(1))]
    torch.testing.assert_close(torch.cat(steps, 1), full_logits, **TOLERANCE)
    torch.testing.assert_close(full_logits.cpu(), cpu_logits, **TOLERANCE)


@pytest.mark.parametrize("precision", ["--amp", "--fp16"])
def test_fairseq_train_on_the_gpu_in_half_precision(tmp_path, precision):
    """fairseq-train on the GPU: AMP (fp16 autocast with a loss scaler) or fp16 weights; every logged loss finite,
    and the last below the first."""
    result = run_cli("fairseq-train", "--user-dir", USER_DIR,
                     *toy_task("reverse", vocab_size=20, max_len=10, train_size=400, valid_size=16),
                     "--arch", "gru_attn_general", "--optimizer", "adam", "--lr", "0.003", "--max-tokens", "1000",
                     "--max-update", "20", precision, "--log-format", "simple", "--log-interval", "1",
                     "--disable-validation", "--no-save", "--save-dir", tmp_path / "ck")
    output = result.stdout + result.stderr
    assert "CUDA enviroments for all 1 workers" in output, output[-2000:]  # (sic) fairseq's Trainer on a GPU
    losses = [float(value) for value in re.findall(r"train_inner.*?loss=([0-9.a-z]+)", output)]
    assert len(losses) >= 10 and all(math.isfinite(loss) for loss in losses), losses
    assert losses[-1] < losses[0], losses

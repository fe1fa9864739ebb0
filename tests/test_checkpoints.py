"""Checkpoints load with torch's weights_only=True left on; anything outside the safe globals is refused."""
import argparse
import os
import subprocess
import sys

import pytest
import torch

from conftest import USER_DIR, run_cli, toy_task, train_toy

TOY = toy_task("copy", vocab_size=10, max_len=5, train_size=64, valid_size=8, test_size=8)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("ckpt")
    train_toy(save_dir, TOY, "--lr", "0.001", "--max-tokens", "500", "--max-update", "2")
    return save_dir / "checkpoint_last.pt"


class Payload:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def legacy_args(cfg):
    """The flat argparse.Namespace that fairseq wrote before its hydra configs."""
    flat = {}
    for section, values in cfg.items():
        if isinstance(values, dict):
            flat.update({k: v for k, v in values.items() if k != "_name"})
            if values.get("_name") is not None:
                flat[section] = values["_name"]
    flat["arch"] = cfg["model"]["_name"]
    return argparse.Namespace(**flat)


def test_weights_only_is_on_and_not_bypassed():
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in os.environ
    import inspect

    assert inspect.signature(torch.load).parameters["weights_only"].default in (None, True)


def test_legacy_namespace_args_load_only_with_the_plugin(checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    state["args"], state["cfg"] = legacy_args(state["cfg"]), None  # the layout older fairseq releases wrote
    legacy = tmp_path / "legacy.pt"
    torch.save(state, legacy)
    probe = ("import sys, torch\n{}\n"
             "try:\n    torch.load(sys.argv[1], weights_only=True); print('loaded')\n"
             "except Exception as e:\n    print('refused', type(e).__name__)")
    without = subprocess.run([sys.executable, "-c", probe.format(""), legacy], capture_output=True, text=True)
    with_plugin = subprocess.run([sys.executable, "-c", probe.format("import fairseq_attn_gru"), legacy],
                                 capture_output=True, text=True)
    assert without.stdout.strip().startswith("refused"), without.stdout + without.stderr
    assert with_plugin.stdout.strip() == "loaded", with_plugin.stdout + with_plugin.stderr
    result = run_cli("fairseq-generate", "--user-dir", USER_DIR, *TOY, "--path", legacy, "--gen-subset", "test",
                     "--cpu", "--beam", "2")
    assert result.stdout.count("\nH-") + result.stdout.startswith("H-") == 8


def test_checkpoint_with_foreign_object_is_refused_not_executed(checkpoint, tmp_path):
    marker = tmp_path / "pwned"
    state = torch.load(checkpoint, weights_only=True)
    state["extra_state"]["payload"] = Payload(marker)
    evil = tmp_path / "evil.pt"
    torch.save(state, evil)
    result = run_cli("fairseq-generate", "--user-dir", USER_DIR, *TOY, "--path", evil, "--gen-subset", "test",
                     "--cpu", check=False)
    assert result.returncode != 0
    assert not marker.exists()
    assert "H-" not in result.stdout


def test_eval_bleu_numpy_counts_load_and_object_arrays_stay_refused(checkpoint, tmp_path):
    import numpy as np

    state = torch.load(checkpoint, weights_only=True)
    # what --eval-bleu leaves in a checkpoint: the BLEU n-gram counts as numpy arrays in the metrics' state
    state["extra_state"]["bleu_counts"] = {"_bleu_counts": np.array([5, 3, 2, 1]), "ratio": np.array([0.5])}
    with_counts = tmp_path / "counts.pt"
    torch.save(state, with_counts)
    result = run_cli("fairseq-generate", "--user-dir", USER_DIR, *TOY, "--path", with_counts, "--gen-subset",
                     "test", "--cpu", "--beam", "2")
    assert result.stdout.count("\nH-") + result.stdout.startswith("H-") == 8

    state["extra_state"]["bleu_counts"] = np.array([Payload(tmp_path / "pwned")], dtype=object)
    objects = tmp_path / "objects.pt"
    torch.save(state, objects)
    refused = run_cli("fairseq-generate", "--user-dir", USER_DIR, *TOY, "--path", objects, "--gen-subset", "test",
                      "--cpu", check=False)
    assert refused.returncode != 0 and not (tmp_path / "pwned").exists()


def test_checkpoint_suffix_and_missing_suffixed_file(checkpoint, tmp_path):
    """fairseq resolves --checkpoint-suffix itself: the plugin checks no path before it (that refused suffixes)."""
    suffixed = tmp_path / "checkpoint_last_a.pt"
    suffixed.write_bytes(checkpoint.read_bytes())
    generate = ["--user-dir", USER_DIR, *TOY, "--path", tmp_path / "checkpoint_last.pt", "--gen-subset", "test",
                "--cpu", "--beam", "2", "--batch-size", "8"]
    result = run_cli("fairseq-generate", *generate, "--checkpoint-suffix", "_a")
    assert result.stdout.count("\nH-") + result.stdout.startswith("H-") == 8
    missing = run_cli("fairseq-generate", *generate, "--checkpoint-suffix", "_b", check=False)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines()[-1] == \
        f"error: --path={str(tmp_path / 'checkpoint_last_b.pt')!r}: no such checkpoint file"


def test_checkpoint_from_before_word_dropout_generates_as_before(checkpoint, tmp_path):
    """A checkpoint written before --encoder/decoder-word-dropout existed (its model config lacks them) loads, with
    both off, and translates exactly as the checkpoint that has them."""
    state = torch.load(checkpoint, weights_only=True)
    assert state["cfg"]["model"]["encoder_word_dropout"] == 0.0  # this checkpoint has them
    for name in ("encoder_word_dropout", "decoder_word_dropout"):
        del state["cfg"]["model"][name]
    older = tmp_path / "older.pt"
    torch.save(state, older)
    outputs = [run_cli("fairseq-generate", "--user-dir", USER_DIR, *TOY, "--path", path, "--gen-subset", "test",
                       "--cpu", "--beam", "2").stdout for path in (checkpoint, older)]
    hypotheses = [sorted(line for line in out.splitlines() if line.startswith("H-")) for out in outputs]
    assert len(hypotheses[0]) == 8 and hypotheses[0] == hypotheses[1]

"""Bad input gets one clear line and no traceback; interrupted or diverging training loses nothing."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import BIN, USER_DIR, one_line_error, run_cli, toy_task

TOY = toy_task("reverse", vocab_size=20, min_len=3, max_len=8, train_size=3000, valid_size=20, test_size=20)
TRAIN = ["--user-dir", USER_DIR, *TOY, "--arch", "gru_attn_dot", "--cpu", "--optimizer", "adam", "--lr", "0.003",
         "--max-tokens", "300", "--seed", "7", "--dropout", "0.2", "--no-progress-bar", "--no-epoch-checkpoints",
         "--disable-validation"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("ckpt")
    run_cli("fairseq-train", *TRAIN, "--max-update", "3", "--save-dir", save_dir)
    return save_dir / "checkpoint_last.pt"


# -- fairseq-interactive ----------------------------------------------------------------------------

def test_interactive_survives_bad_lines(checkpoint):
    lines = [b"w1 w2 w3", b"", "w4 \u00fcber w5".encode(), b"w6 \xff\xfe w7", b" ".join([b"w1"] * 400), b"w8 w9"]
    lines += [b"w%d w%d w%d" % (i % 20, (i + 1) % 20, (i + 2) % 20) for i in range(300)]  # a long session
    result = subprocess.run([str(BIN / "fairseq-interactive"), "--user-dir", USER_DIR, *TOY, "--path", checkpoint,
                             "--cpu", "--beam", "2"], input=b"\n".join(lines) + b"\n", capture_output=True,
                            timeout=600)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr
    hypotheses = re.findall(rb"^H-\d+\t", result.stdout, flags=re.M)
    assert len(hypotheses) == 3 + 300  # lines 1, 3 (with <unk>), 6 and the session; 2, 4, 5 skipped
    assert "skipped: input line 2 is empty, nothing to translate; no output for id 1" in stderr
    assert "skipped: input line 4 is not UTF-8 text (byte 0xff at 3); no output for id 3" in stderr
    assert "skipped: input line 5 is too long: 401 tokens, longer than --max-source-positions=256; no output" in stderr
    assert "input line 3 (id 2): 1 unknown word(s) read as <unk>" in stderr
    ids = [int(i) for i in re.findall(rb"^H-(\d+)\t", result.stdout, flags=re.M)]
    assert ids == [0, 2, 5, *range(6, 306)]  # each output keeps its input line's id


# -- flags and data paths ---------------------------------------------------------------------------

def test_missing_or_empty_data_path(tmp_path):
    missing = run_cli("fairseq-train", tmp_path / "nope", "--user-dir", USER_DIR, "--arch", "gru_attn_dot", "--cpu",
                      "--optimizer", "adam", "--lr", "0.001", "--max-tokens", "100", check=False)
    one_line_error(missing, f"data path '{tmp_path / 'nope'}' does not exist")
    (tmp_path / "empty").mkdir()
    empty = run_cli("fairseq-generate", tmp_path / "empty", "--user-dir", USER_DIR, "--path", "x.pt", check=False)
    one_line_error(empty, f"data path '{tmp_path / 'empty'}' holds no binarized data")


# -- checkpoints ------------------------------------------------------------------------------------

def generate_with(path, *extra):
    return run_cli("fairseq-generate", "--user-dir", USER_DIR, *TOY, "--path", path, "--gen-subset", "test", "--cpu",
                   *extra, check=False)


def test_bad_checkpoints_get_one_line(checkpoint, tmp_path):
    data = checkpoint.read_bytes()
    truncated, garbage = tmp_path / "truncated.pt", tmp_path / "garbage.pt"
    truncated.write_bytes(data[: len(data) // 3])
    garbage.write_bytes(os.urandom(5000))
    one_line_error(generate_with(tmp_path / "absent.pt"), f"--path='{tmp_path / 'absent.pt'}': no such checkpoint")
    one_line_error(generate_with(truncated), f"checkpoint '{truncated}' is not a readable PyTorch checkpoint")
    one_line_error(generate_with(garbage), f"checkpoint '{garbage}' is not a readable PyTorch checkpoint")
    # the same checkpoint with toy options that give another dictionary: its saved data signature says so
    mismatch = run_cli("fairseq-generate", "--user-dir", USER_DIR, *TOY, "--toy-vocab-size", "50", "--path",
                       checkpoint, "--gen-subset", "test", "--cpu", "--model-overrides", "{'toy_vocab_size': 50}",
                       check=False)
    one_line_error(mismatch, f"checkpoint '{checkpoint}' was trained for other data than it is loaded with (source "
                             "dictionary: 24 symbols, sha256 ")
    # a checkpoint saved before the signature existed: the weights that do not fit say it
    state = torch.load(checkpoint, weights_only=True)
    state["task_state"] = {}
    old = tmp_path / "old.pt"
    torch.save(state, old)
    mismatch = run_cli("fairseq-generate", "--user-dir", USER_DIR, *TOY, "--toy-vocab-size", "50", "--path",
                       old, "--gen-subset", "test", "--cpu", "--model-overrides", "{'toy_vocab_size': 50}", check=False)
    one_line_error(mismatch, f"--path='{old}': the checkpoint's weights do not fit")


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_foreign_object_is_refused_with_one_line(checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    state["extra_state"]["payload"] = Payload(tmp_path / "ran")
    evil = tmp_path / "evil.pt"
    torch.save(state, evil)
    line = one_line_error(generate_with(evil), f"checkpoint '{evil}' refused: it holds an object outside")
    assert "system" in line and not (tmp_path / "ran").exists()


# -- faults -----------------------------------------------------------------------------------------

def final_parameters(path):
    return torch.load(path, weights_only=True)["model"]


def start_training(save_dir, *extra, program=None, env=None):
    command = program or [str(BIN / "fairseq-train")]
    return subprocess.Popen([*command, *TRAIN, "--save-dir", str(save_dir), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path):
    steps = ["--max-update", "16", "--save-interval-updates", "4"]
    reference = start_training(tmp_path / "straight", *steps)
    assert reference.wait(timeout=600) == 0, reference.stdout.read().decode()[-2000:]

    interrupted = start_training(tmp_path / "killed", *steps)
    deadline = time.time() + 300
    while not (tmp_path / "killed" / "checkpoint_1_8.pt").exists():
        assert time.time() < deadline and interrupted.poll() is None
        time.sleep(0.05)
    interrupted.send_signal(signal.SIGKILL)  # mid-epoch: an epoch here is ~40 updates
    interrupted.wait()
    resumed = start_training(tmp_path / "killed", *steps)
    stderr = resumed.stdout.read().decode()
    assert resumed.wait(timeout=600) == 0, stderr[-2000:]
    resumed_at = re.search(r"Loaded checkpoint \S+ \(epoch 1 @ (\d+) updates\)", stderr)
    assert resumed_at and 4 <= int(resumed_at.group(1)) < 16, stderr[-2000:]  # mid-epoch, not from scratch

    expected = final_parameters(tmp_path / "straight" / "checkpoint_last.pt")
    actual = final_parameters(tmp_path / "killed" / "checkpoint_last.pt")
    for name in expected:  # tolerance: exact up to float reassociation
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=1e-6)


@pytest.mark.slow
def test_kill_during_checkpoint_copy_keeps_the_previous_checkpoint(tmp_path):
    save_dir, marker = tmp_path / "ckpt", tmp_path / "copying"
    env = dict(os.environ, SLOW_COPY_MARKER=str(marker))
    program = [sys.executable, os.path.join(os.path.dirname(__file__), "helpers", "slow_copy_train.py")]
    steps = ["--save-interval-updates", "2"]
    first = start_training(save_dir, "--max-update", "2", *steps, program=program, env=env)
    assert first.wait(timeout=600) == 0, first.stdout.read().decode()[-2000:]
    before = final_parameters(save_dir / "checkpoint_last.pt")

    (tmp_path / "copying.armed").touch()  # the next copy (checkpoint_1_4.pt -> checkpoint_last.pt) stalls halfway
    second = start_training(save_dir, "--max-update", "4", *steps, program=program, env=env)
    deadline = time.time() + 300
    while not marker.exists():
        assert time.time() < deadline and second.poll() is None, second.stdout.read().decode()[-2000:]
        time.sleep(0.05)
    second.send_signal(signal.SIGKILL)
    second.wait()
    after = final_parameters(save_dir / "checkpoint_last.pt")  # still loadable: the previous checkpoint
    for name in before:
        assert torch.equal(before[name], after[name])

    os.remove(tmp_path / "copying.armed")
    third = start_training(save_dir, "--max-update", "4", *steps, program=program, env=env)
    assert third.wait(timeout=600) == 0, third.stdout.read().decode()[-2000:]
    assert torch.load(save_dir / "checkpoint_last.pt", weights_only=True)["optimizer_history"][-1]["num_updates"] == 4


@pytest.mark.slow
def test_nan_loss_is_reported_and_good_checkpoint_kept(checkpoint, tmp_path):
    save_dir = checkpoint.parent
    before = final_parameters(checkpoint)
    result = run_cli("fairseq-train", *TRAIN, "--save-dir", save_dir, "--optimizer", "sgd", "--lr", "1e38", "--reset-optimizer",
                     "--reset-lr-scheduler", "--max-update", "40", "--save-interval-updates", "1", check=False)
    one_line_error(result, "training diverged")
    after = final_parameters(checkpoint)
    assert set(after) == set(before)
    assert all(torch.isfinite(t).all() for t in after.values() if t.is_floating_point())

"""scripts/train_distributed.sh: 2 CPU ranks through fairseq's own torch.distributed training."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO, USER_DIR, children_of, cmdline, default_sigint, kill_all, toy_task, wait_until_gone

LAUNCHER = str(REPO / "scripts" / "train_distributed.sh")
HELPER = f"{sys.executable} {REPO / 'tests' / 'helpers' / 'instrumented_train.py'}"
TRAIN = ["--user-dir", USER_DIR, *toy_task("reverse", vocab_size=20, max_len=8, train_size=800, valid_size=16),
         "--arch", "gru_attn_general",
         "--optimizer", "adam", "--lr", "0.003", "--max-tokens", "400", "--max-update", "8", "--seed", "3",
         "--dropout", "0", "--log-format", "simple", "--log-interval", "1",
         "--disable-validation", "--no-save"]


def launch(nproc, *args, env_extra=None, timeout=600):
    env = dict(os.environ, FAIRSEQ_TRAIN=HELPER, PYTHON=sys.executable, **(env_extra or {}))
    return subprocess.run(["bash", LAUNCHER, str(nproc), *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def logged_losses(output):
    return [float(v) for v in re.findall(r"train_inner.*?loss=([0-9.]+)", output)]


@pytest.mark.slow
def test_two_ranks_train_identically_and_match_one_process(tmp_path):
    two = launch(2, *TRAIN, env_extra={"DUMP_PARAMS_PREFIX": str(tmp_path / "two")})
    assert two.returncode == 0, two.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"two.rank{r}.pt", weights_only=True) for r in (0, 1))
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), f"{name} differs between ranks"

    # one process, same global batch: fairseq shards batch 2k to rank 0 and 2k+1 to rank 1, which is
    # exactly what --update-freq 2 accumulates in one process
    env = dict(os.environ, DUMP_PARAMS_PREFIX=str(tmp_path / "one"))
    one = subprocess.run([sys.executable, str(REPO / "tests" / "helpers" / "instrumented_train.py"), *TRAIN, "--cpu",
                          "--update-freq", "2"], capture_output=True, text=True, env=env, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    single = torch.load(tmp_path / "one.rank0.pt", weights_only=True)
    losses_two, losses_one = logged_losses(two.stdout + two.stderr), logged_losses(one.stdout + one.stderr)
    assert len(losses_two) == len(losses_one) == 8
    assert losses_two == pytest.approx(losses_one, abs=2e-3)  # logged with 3 decimals
    for name in single:  # tolerance: summation order differs (all-reduce vs accumulation)
        torch.testing.assert_close(rank0[name], single[name], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_a_crashing_rank_stops_the_launcher_quickly():
    start = time.time()
    result = launch(2, *TRAIN, "--max-update", "200", env_extra={"CRASH_RANK": "1", "CRASH_AT_UPDATE": "2",
                                                                 "KILL_GRACE_SECONDS": "5"}, timeout=300)
    elapsed = time.time() - start
    assert result.returncode == 3, result.stderr[-2000:]
    assert "a rank (pid" in result.stderr and "stopping the other ranks" in result.stderr
    assert elapsed < 120, f"took {elapsed:.0f}s"


def test_launcher_rejects_bad_arguments():
    for args, message in [(["zero"], "NPROC='zero'"), (["2", "--nnodes", "2"], "--master is required"),
                          (["1", "--nnodes", "2", "--node-rank", "5", "--master", "h:1"], "--node-rank='5'")]:
        result = subprocess.run(["bash", LAUNCHER, *args], capture_output=True, text=True)
        assert result.returncode == 2 and result.stderr.strip().startswith(f"error: {message}"), result.stderr


# -- resuming, signals, the launcher's own arguments -----------------------------------------------------------

RESUME = [*TRAIN[: TRAIN.index("--no-save")], "--no-epoch-checkpoints"]  # TRAIN, saving checkpoints


def loaded_at(output):
    found = re.search(r"Loaded checkpoint \S+ \(epoch \d+ @ (\d+) updates\)", output)
    return int(found.group(1)) if found else None


@pytest.mark.slow
def test_resume_in_every_launch_mode(tmp_path):
    """One process from scratch, then 2 ranks resuming, then 2 nodes of 1 rank resuming (a single process resuming:
    test_reliability.py::test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run). Rank 1 gets the state by
    fairseq's broadcast from rank 0, which failed on omegaconf's DictConfig under torch's weights_only default."""
    save = ["--save-dir", str(tmp_path / "ckpt")]
    first = subprocess.run([sys.executable, str(REPO / "tests" / "helpers" / "instrumented_train.py"), *RESUME, *save,
                            "--cpu", "--max-update", "2"], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    second = launch(2, *RESUME, *save, "--max-update", "4")
    assert second.returncode == 0, second.stderr[-3000:]
    assert loaded_at(second.stdout + second.stderr) == 2
    port = free_port()
    nodes = [subprocess.Popen(["bash", LAUNCHER, "1", "--nnodes", "2", "--node-rank", str(rank), "--master",
                               f"127.0.0.1:{port}", *RESUME, *save, "--max-update", "6"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              env=dict(os.environ, PYTHON=sys.executable, FAIRSEQ_TRAIN=HELPER))
             for rank in (0, 1)]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert loaded_at(outputs[0]) == 4
    state = torch.load(tmp_path / "ckpt" / "checkpoint_last.pt", weights_only=True)
    assert state["optimizer_history"][-1]["num_updates"] == 6


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_pids(launcher_pid, count, timeout=60):
    """The ranks (children of the launcher once they run the rank command)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        ranks = [pid for pid in children_of(launcher_pid) if "sleep_rank.py" in cmdline(pid)]
        if len(ranks) == count:
            return ranks
        time.sleep(0.05)
    raise AssertionError("the ranks did not start")


@pytest.mark.parametrize("sig, status", [(signal.SIGKILL, -9), (signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_no_rank_outlives_the_launcher(sig, status):
    """SIGKILL (the kernel sends the ranks SIGTERM: prctl PR_SET_PDEATHSIG), SIGTERM -> 143, SIGINT -> 130."""
    env = dict(os.environ, FAIRSEQ_TRAIN=f"{sys.executable} {REPO / 'tests' / 'helpers' / 'sleep_rank.py'}",
               PYTHON=sys.executable, KILL_GRACE_SECONDS="5")
    launcher = subprocess.Popen(["bash", LAUNCHER, "2", "--whatever"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, env=env, preexec_fn=default_sigint)
    ranks = []
    try:
        ranks = rank_pids(launcher.pid, 2)
        time.sleep(0.3)  # the ranks are past their start
        launcher.send_signal(sig)
        launcher.communicate(timeout=30)
        assert launcher.returncode == status
        wait_until_gone(ranks, 10, "a rank outlived its launcher")
    finally:
        launcher.kill()
        kill_all(ranks)


def test_launcher_option_without_a_value_and_paths_with_spaces(tmp_path):
    for args, message in [(["2", "--nnodes"], "--nnodes needs a value"), (["2", "--master"], "--master needs a value"),
                          (["2", "--nnodes", "2", "--node-rank", "1", "--master", "h:0"], "--master='h:0'")]:
        result = subprocess.run(["bash", LAUNCHER, *args], capture_output=True, text=True, timeout=20)
        assert result.returncode == 2 and result.stderr.strip().startswith(f"error: {message}"), result.stderr
    result = subprocess.run(["sh", LAUNCHER, "1"], capture_output=True, text=True, timeout=20)
    assert result.returncode == 2 and "needs bash >= 5.1" in result.stderr, result.stderr
    # a checkout whose path holds a space: the default rank command is one word
    checkout = tmp_path / "with space" / "repo"
    checkout.parent.mkdir()
    checkout.symlink_to(REPO)
    env = {k: v for k, v in os.environ.items() if k not in ("FAIRSEQ_TRAIN", "PYTHON")}
    result = subprocess.run(["bash", str(checkout / "scripts" / "train_distributed.sh"), "1", "--help"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0 and "usage: fairseq-train" in result.stdout, result.stderr[-2000:]

"""scripts/train_distributed.sh: 2 CPU ranks through fairseq's own torch.distributed training."""
import os
import re
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO, USER_DIR, toy_task

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

"""Multi-process training on 2 CPU ranks, started the ways PyTorch users start it: torchrun on one node, two torchrun
agents (multi-node), torchrun restarting a killed rank (elastic), SLURM's srun (stood in for), and
scripts/train_distributed.sh over torchrun. Every launch is checked against one reference, a single process with the
same global batch (--update-freq 2): the same per-update losses, the same final parameters, identical on every rank.
The launcher_env fix (fairseq_fixes/launcher_env.py) is what makes fairseq-train use torchrun's and SLURM's
environment on CPU; without it each rank trained alone."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import (BIN, REPO, USER_DIR, children_of, cmdline, default_sigint, free_port, kill_all, running,
                      toy_task, wait_until_gone)

LAUNCHER = str(REPO / "scripts" / "train_distributed.sh")
INSTRUMENTED = str(REPO / "tests" / "helpers" / "instrumented_train.py")
HELPER = f"{sys.executable} {INSTRUMENTED}"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
CPU_RANKS = ["--cpu", "--distributed-backend", "gloo", "--ddp-backend", "legacy_ddp"]
UPDATES = 8
TRAIN = ["--user-dir", USER_DIR, *toy_task("reverse", vocab_size=20, max_len=8, train_size=800, valid_size=16),
         "--arch", "gru_attn_general",
         "--optimizer", "adam", "--lr", "0.003", "--max-tokens", "400", "--max-update", str(UPDATES), "--seed", "3",
         "--dropout", "0", "--log-format", "simple", "--log-interval", "1",
         "--disable-validation", "--no-save"]
RESUME = [*TRAIN[: TRAIN.index("--no-save")], "--no-epoch-checkpoints"]  # TRAIN, saving checkpoints
#: the environment of a rank: one thread (2 ranks share 2 cores), none of a launcher's variables from outside
RANK_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "TORCHELASTIC_")) and k not in (
    "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "FAIRSEQ_TRAIN", "PYTHON")}
RANK_ENV.update(OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")


def run(command, env_extra=None, timeout=300):
    return subprocess.run(command, capture_output=True, text=True, env={**RANK_ENV, **(env_extra or {})},
                          timeout=timeout)


def launch(nproc, *args, env_extra=None, timeout=300):
    """scripts/train_distributed.sh NPROC args, each rank running the instrumented fairseq-train."""
    return run(["bash", LAUNCHER, str(nproc), *args], {"FAIRSEQ_TRAIN": HELPER, "PYTHON": sys.executable,
                                                        **(env_extra or {})}, timeout)


def logged_updates(output):
    """{update: loss} from fairseq's train_inner lines (an update logged twice, before and after a restart, keeps
    its last loss)."""
    return {int(n): float(loss) for loss, n in re.findall(r"train_inner.*?loss=([0-9.]+),.*?num_updates=(\d+)", output)}


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The reference: one process, the same global batch. fairseq shards batch 2k to rank 0 and 2k+1 to rank 1,
    which is exactly what --update-freq 2 accumulates in one process."""
    prefix = tmp_path_factory.mktemp("one") / "one"
    result = run([sys.executable, INSTRUMENTED, *TRAIN, "--cpu", "--update-freq", "2"],
                 {"DUMP_PARAMS_PREFIX": str(prefix)})
    assert result.returncode == 0, result.stderr[-3000:]
    losses = logged_updates(result.stdout + result.stderr)
    assert sorted(losses) == list(range(1, UPDATES + 1))
    return losses, torch.load(f"{prefix}.rank0.pt", weights_only=True)


def assert_one_group(result, prefix, one_process, params=None):
    """Both ranks trained as one group: fairseq's log says world size 2, the parameters of the two ranks are
    identical, and losses and parameters equal the single process's."""
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    sizes = re.findall(r"'distributed_training': \{[^}]*?'distributed_world_size': (\d+)", output)
    assert sizes and set(sizes) == {"2"}, sizes
    assert set(re.findall(r"'bmuf': \{[^}]*?'distributed_world_size': (\d+)", output)) == {"2"}
    rank0, rank1 = (torch.load(f"{prefix}.rank{r}.pt", weights_only=True) for r in (0, 1))
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), f"{name} differs between ranks"
    losses, single = one_process
    assert logged_updates(output) == pytest.approx(losses, abs=2e-3)  # logged with 3 decimals
    for name, value in (params or rank0).items():  # tolerance: summation order (all-reduce vs accumulation)
        torch.testing.assert_close(value, single[name], rtol=1e-4, atol=1e-5)


# -- torchrun, srun and the launcher: one group, the result of one process ----------------------------------------

@pytest.mark.slow
def test_torchrun_two_ranks_train_as_one_process(tmp_path, one_process):
    result = run([*TORCHRUN, "--standalone", "--nproc-per-node", "2", INSTRUMENTED, *TRAIN, *CPU_RANKS],
                 {"DUMP_PARAMS_PREFIX": str(tmp_path / "run")})
    assert_one_group(result, tmp_path / "run", one_process)


@pytest.mark.slow
def test_torchrun_does_not_train_separate_copies(tmp_path):
    """The command of issue #31, as a new user types it (fairseq-train, --cpu, nothing else): it used to run two
    independent trainings with distributed_world_size 1 into one --save-dir and exit 0. Now every rank stops with
    one line naming the flags CPU ranks need, before any training."""
    save_dir = tmp_path / "ck"
    result = run([*TORCHRUN, "--standalone", "--nproc-per-node", "2", str(BIN / "fairseq-train"),
                  *TRAIN[: TRAIN.index("--no-save")], "--cpu", "--save-dir", str(save_dir)])
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    lines = [line for line in output.splitlines() if line.startswith("error: ")]
    assert lines and set(lines) == {
        "error: --distributed-backend='nccl' --ddp-backend='pytorch_ddp' are not allowed for the 2 CPU ranks "
        "torchrun started: pass --distributed-backend gloo --ddp-backend legacy_ddp (fairseq's nccl and "
        "pytorch_ddp need GPUs)"}, output[-3000:]
    assert "train_inner" not in output and not list(save_dir.glob("*.pt"))


@pytest.mark.slow
def test_two_torchrun_agents_train_as_one_group(tmp_path, one_process):
    """Multi-node: two torchrun agents (one rank each) meet at a c10d rendezvous, as two machines would."""
    port = free_port()
    agents = [subprocess.Popen([*TORCHRUN, "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d",
                                "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "test-agents", INSTRUMENTED,
                                *TRAIN, *CPU_RANKS], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**RANK_ENV, "DUMP_PARAMS_PREFIX": str(tmp_path / "run")}) for _ in range(2)]
    try:
        outputs = [agent.communicate(timeout=300)[0] for agent in agents]
    finally:
        for agent in agents:
            agent.kill()
    assert [agent.returncode for agent in agents] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    both = subprocess.CompletedProcess([], 0, "\n".join(outputs), "")
    assert_one_group(both, tmp_path / "run", one_process)


def stand_in_scontrol(bin_dir, node_list):
    """`scontrol show hostnames NODE_LIST` prints this host, as SLURM's would for a one-node job."""
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\n[ "$*" = "show hostnames {node_list}" ] || '
                        f'{{ echo "unexpected: scontrol $*" >&2; exit 1; }}\necho 127.0.0.1\n')
    scontrol.chmod(0o755)


@pytest.mark.slow
def test_slurm_tasks_train_as_one_group(tmp_path, one_process):
    """fairseq's SLURM path (--distributed-port) with SLURM's variables for 2 tasks on one node, as `srun -n 2`
    sets them, and a stand-in scontrol: no cluster needed. No --distributed-world-size: the tasks are the ranks."""
    stand_in_scontrol(tmp_path / "bin", "node[1]")
    port = free_port()
    slurm = {"SLURM_JOB_ID": "31", "SLURM_JOB_NODELIST": "node[1]", "SLURM_STEP_NODELIST": "node[1]",
             "SLURM_NNODES": "1", "SLURM_NTASKS": "2", "SLURM_STEP_NUM_TASKS": "2", "SLURM_NODEID": "0",
             "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
             "DUMP_PARAMS_PREFIX": str(tmp_path / "run")}
    tasks = [subprocess.Popen([sys.executable, INSTRUMENTED, *TRAIN, *CPU_RANKS, "--distributed-port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**RANK_ENV, **slurm, "SLURM_PROCID": str(task), "SLURM_LOCALID": str(task)})
             for task in (0, 1)]
    try:
        outputs = [task.communicate(timeout=300)[0] for task in tasks]
    finally:
        for task in tasks:
            task.kill()
    assert [task.returncode for task in tasks] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert f"SLURM: rank 1 of 2 (local rank 1, CPU), init tcp://127.0.0.1:{port}" in outputs[1]
    assert_one_group(subprocess.CompletedProcess([], 0, "\n".join(outputs), ""), tmp_path / "run", one_process)


@pytest.mark.slow
def test_launcher_two_ranks_train_as_one_process(tmp_path, one_process):
    result = launch(2, *TRAIN, env_extra={"DUMP_PARAMS_PREFIX": str(tmp_path / "run")})
    assert_one_group(result, tmp_path / "run", one_process)


# -- elastic: a rank killed mid-training, torchrun restarts the group, training resumes -------------------------

#: torchrun's rendezvous shares its store with the ranks' process group by default, and a restarted group can read
#: the killed group's addresses there and fail to connect (pytorch #135712, #167288); a store per round avoids it
RESTARTABLE = {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}


def loaded_at(output):
    found = re.findall(r"Loaded checkpoint \S+ \(epoch \d+ @ (\d+) updates\)", output)
    return [int(n) for n in found]


@pytest.mark.slow
def test_torchrun_restarts_a_killed_rank_and_resumes_from_the_last_checkpoint(tmp_path, one_process):
    """Rank 1 is SIGKILLed (as an OOM killer would) after update 5; checkpoint_last.pt holds update 4
    (--save-interval-updates 2). torchrun --max-restarts 1 restarts both ranks, they resume from update 4, redo
    update 5 and end at --max-update with a checkpoint that loads and holds the uninterrupted run's weights."""
    save_dir = tmp_path / "ck"
    result = run([*TORCHRUN, "--standalone", "--nproc-per-node", "2", "--max-restarts", "1", INSTRUMENTED,
                  *RESUME, *CPU_RANKS, "--save-interval-updates", "2", "--save-dir", str(save_dir)],
                 {"DUMP_PARAMS_PREFIX": str(tmp_path / "run"), "CRASH_RANK": "1", "CRASH_AT_UPDATE": "5",
                  "CRASH_SIGNAL": "KILL", **RESTARTABLE})
    output = result.stdout + result.stderr
    assert re.search(r"exitcode\s*:\s*-9|SIGKILL", output), output[-3000:]  # torchrun saw the kill
    assert loaded_at(output) == [4], output[-3000:]  # the restart, from the last save; nothing before it lost
    assert len(re.findall(r"train_inner.*num_updates=5,", output)) == 2  # update 5: before the kill and redone
    from fairseq import checkpoint_utils

    state = checkpoint_utils.load_checkpoint_to_cpu(str(save_dir / "checkpoint_last.pt"))
    assert state["optimizer_history"][-1]["num_updates"] == UPDATES
    assert_one_group(result, tmp_path / "run", one_process, params=state["model"])


# -- the launcher_env fix's one-line stops, in-process --------------------------------------------------------------

TORCHRUN_ENV = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1", "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}


def call_main_with(monkeypatch, env, cpu=True, **distributed):
    """fairseq's call_main (with the fix) on fairseq's default distributed config; returns the UserError it stops
    with."""
    from types import SimpleNamespace

    from fairseq.dataclass.configs import DistributedTrainingConfig
    from fairseq.distributed import utils as distributed_utils
    from fairseq_attn_gru import UserError

    for name in [*TORCHRUN_ENV, "SLURM_JOB_NODELIST", "SLURM_STEP_NODELIST"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cfg = SimpleNamespace(common=SimpleNamespace(cpu=cpu, tpu=False),
                          distributed_training=DistributedTrainingConfig(**distributed))

    def main(cfg):
        raise AssertionError("call_main went on to train")

    with pytest.raises(UserError) as stopped:
        distributed_utils.call_main(cfg, main)
    return str(stopped.value)


def test_contradicting_flags_and_environments_stop_with_one_line(monkeypatch, tmp_path):
    gloo = {"distributed_backend": "gloo", "ddp_backend": "legacy_ddp"}
    assert call_main_with(monkeypatch, TORCHRUN_ENV, distributed_world_size=3, **gloo) == (
        "--distributed-world-size=3 is not allowed: 2, the number of ranks torchrun started (or leave it out)")
    assert call_main_with(monkeypatch, {**TORCHRUN_ENV, "WORLD_SIZE": "two"}, **gloo) == (
        "torchrun set WORLD_SIZE='two', which is not allowed: an integer >= 1")
    assert call_main_with(monkeypatch, TORCHRUN_ENV, distributed_backend="gloo") == (
        "--ddp-backend='pytorch_ddp' is not allowed for the 2 CPU ranks torchrun started: pass --distributed-backend "
        "gloo --ddp-backend legacy_ddp (fairseq's nccl and pytorch_ddp need GPUs)")
    # two ranks on a one-GPU node: fairseq put both on GPU 0
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert call_main_with(monkeypatch, {**TORCHRUN_ENV, "RANK": "1", "LOCAL_RANK": "1"}, cpu=False).startswith(
        "torchrun started local rank 1, which is not allowed: this node has 1 GPU(s), one rank per GPU")
    # ... but a SLURM task that sees one GPU was given it (--gpus-per-task 1): its cuda:0
    from fairseq_attn_gru.fairseq_fixes.launcher_env import Launch, device_of

    assert device_of(Launch("SLURM", "tcp://node1:29500", 4, 3, 1), cpu=False) == 0
    monkeypatch.undo()
    # SLURM: a node list scontrol cannot expand
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "scontrol").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "bin" / "scontrol").chmod(0o755)
    slurm = {"SLURM_JOB_NODELIST": "n[1-", "SLURM_NTASKS": "2", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
             "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    assert call_main_with(monkeypatch, slurm, distributed_port=12345, **gloo) == (
        "`scontrol show hostnames n[1-` failed (status 1): SLURM's SLURM_STEP_NODELIST/SLURM_JOB_NODELIST must name "
        "this job's nodes")


def test_ranks_that_torchrun_may_restart_in_its_shared_store_get_a_warning(monkeypatch):
    from fairseq_attn_gru.fairseq_fixes import launcher_env

    for restarts, shared, warned in [("1", "True", True), ("0", "True", False), ("1", "False", False)]:
        monkeypatch.setenv("TORCHELASTIC_MAX_RESTARTS", restarts)
        monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", shared)
        assert launcher_env.restarts_share_the_store() is warned


def test_launcher_env_is_a_global_fix_that_checks_what_it_wraps(monkeypatch):
    from fairseq.distributed import utils as distributed_utils
    from fairseq_attn_gru.fairseq_fixes import launcher_env, patching

    assert distributed_utils.call_main.__wrapped__ is not distributed_utils.call_main  # applied on import
    off = run([sys.executable, "-c", "import fairseq_attn_gru; from fairseq.distributed import utils; "
                                     "print(hasattr(utils.call_main, '__wrapped__'))"],
              {"FAIRSEQ_ATTN_GRU_GLOBAL_FIXES": "0"})
    assert off.stdout.strip() == "False", off.stderr[-2000:]

    def call_main(config, main_function):  # a fairseq whose call_main has other parameters: the fix leaves it alone
        pass

    monkeypatch.setattr(distributed_utils, "call_main", call_main)
    warnings = []
    monkeypatch.setattr(patching.logger, "warning", warnings.append)
    launcher_env.apply()
    assert distributed_utils.call_main is call_main
    assert len(warnings) == 1 and warnings[0].startswith("fairseq-attn-gru: launcher_env fix skipped: ")


# -- the launcher: a failing rank, signals, its own arguments ----------------------------------------------------

@pytest.mark.slow
def test_a_crashing_rank_stops_the_launcher_quickly(tmp_path):
    marker = str(tmp_path / "crash-run")  # in every rank's command line (its --save-dir)
    start = time.time()
    result = launch(2, *TRAIN, "--max-update", "200", "--save-dir", marker,
                    env_extra={"CRASH_RANK": "1", "CRASH_AT_UPDATE": "2"}, timeout=300)
    elapsed = time.time() - start
    assert result.returncode == 1, result.stderr[-2000:]  # torchrun's status for a failed group
    assert re.search(r"rank\s*:\s*1 \(local_rank: 1\)\s+exitcode\s*:\s*3", result.stderr), result.stderr[-2000:]
    assert elapsed < 120, f"took {elapsed:.0f}s"
    ranks_left = [int(pid) for pid in os.listdir("/proc") if pid.isdigit() and marker in cmdline(int(pid))]
    assert not [pid for pid in ranks_left if running(pid)], "rank 0 outlived the failed group"


def test_launcher_rejects_bad_arguments():
    for args, message in [(["zero"], "NPROC='zero'"), (["2", "--nnodes", "2"], "--master is required"),
                          (["1", "--nnodes", "2", "--node-rank", "5", "--master", "h:1"], "--node-rank='5'")]:
        result = subprocess.run(["bash", LAUNCHER, *args], capture_output=True, text=True)
        assert result.returncode == 2 and result.stderr.strip().startswith(f"error: {message}"), result.stderr


@pytest.mark.slow
def test_resume_in_every_launch_mode(tmp_path):
    """One process from scratch, then 2 ranks resuming, then 2 nodes of 1 rank resuming (a single process resuming:
    test_reliability.py::test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run). Rank 1 gets the state by
    fairseq's broadcast from rank 0, which failed on omegaconf's DictConfig under torch's weights_only default."""
    save = ["--save-dir", str(tmp_path / "ckpt")]
    first = run([sys.executable, INSTRUMENTED, *RESUME, *save, "--cpu", "--max-update", "2"])
    assert first.returncode == 0, first.stderr[-3000:]
    second = launch(2, *RESUME, *save, "--max-update", "4")
    assert second.returncode == 0, second.stderr[-3000:]
    assert loaded_at(second.stdout + second.stderr) == [2]  # logged by rank 0
    port = free_port()
    nodes = [subprocess.Popen(["bash", LAUNCHER, "1", "--nnodes", "2", "--node-rank", str(rank), "--master",
                               f"127.0.0.1:{port}", *RESUME, *save, "--max-update", "6"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              env={**RANK_ENV, "PYTHON": sys.executable, "FAIRSEQ_TRAIN": HELPER})
             for rank in (0, 1)]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert loaded_at(outputs[0]) == [4]
    state = torch.load(tmp_path / "ckpt" / "checkpoint_last.pt", weights_only=True)
    assert state["optimizer_history"][-1]["num_updates"] == 6


def rank_pids(launcher_pid, count, timeout=60):
    """The ranks (children of the launcher, which is torchrun by then, once they run the rank command)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        ranks = [pid for pid in children_of(launcher_pid) if "sleep_rank.py" in cmdline(pid)]
        if len(ranks) == count:
            return ranks
        time.sleep(0.05)
    raise AssertionError("the ranks did not start")


@pytest.mark.parametrize("sig, status", [(signal.SIGKILL, -9), (signal.SIGTERM, 1), (signal.SIGINT, 1)])
def test_no_rank_outlives_the_launcher(sig, status):
    """SIGKILL: the kernel sends the ranks SIGTERM (the launcher's prctl PR_SET_PDEATHSIG guard; torchrun alone
    leaves them running, each in a session of its own); SIGTERM, SIGINT: torchrun stops them and exits 1."""
    env = {**RANK_ENV, "FAIRSEQ_TRAIN": f"{sys.executable} {REPO / 'tests' / 'helpers' / 'sleep_rank.py'}",
           "PYTHON": sys.executable}
    launcher = subprocess.Popen(["bash", LAUNCHER, "2", "--whatever"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, env=env, preexec_fn=default_sigint)
    ranks = []
    try:
        ranks = rank_pids(launcher.pid, 2)
        time.sleep(0.3)  # the ranks are past their start
        launcher.send_signal(sig)
        launcher.communicate(timeout=60)
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
    assert result.returncode == 2 and "needs bash" in result.stderr, result.stderr
    # a checkout whose path holds a space: the default rank command is one word
    checkout = tmp_path / "with space" / "repo"
    checkout.parent.mkdir()
    checkout.symlink_to(REPO)
    env = {k: v for k, v in RANK_ENV.items() if k not in ("FAIRSEQ_TRAIN", "PYTHON")}
    result = subprocess.run(["bash", str(checkout / "scripts" / "train_distributed.sh"), "1", "--help"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0 and "usage: fairseq-train" in result.stdout, result.stderr[-2000:]

"""``--lr-scheduler inverse_sqrt_plateau``: inverse_sqrt's rate times a factor that shrinks when validation stalls.

The expected rates come from the closed formula and from plateau counts worked out by hand, not from the class.
"""
import argparse
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fairseq.optim.sgd import SGD

from conftest import USER_DIR, free_port, one_line_error, run_cli, toy_task, train_toy
from fairseq_attn_gru.optim.inverse_sqrt_plateau import InverseSqrtPlateauConfig, InverseSqrtPlateauSchedule

LR, WARMUP = 0.5, 4
UPDATES_PER_EPOCH = 3
# validation losses, and by hand the number of shrinks after each with --lr-patience 2: 4.5 and 4.2 do not beat
# 4.0 (shrink 1); 3.95 and an equal 3.9 do not beat 3.9 (shrink 2); 4.1 is the first of a new count
LOSSES = [5.0, 4.0, 4.5, 4.2, 3.9, 3.95, 3.9, 4.1, 3.8]
SHRINKS_AFTER = [0, 0, 0, 1, 1, 1, 2, 2, 2]


def inverse_sqrt(update: int) -> float:
    return LR * update / WARMUP if update < WARMUP else LR * math.sqrt(WARMUP / update)


def schedule(maximize=False, shrink=0.5, patience=2, decay_fraction=0.0, stop_time_hours=0.0, max_update=0):
    optimizer = SGD(argparse.Namespace(lr=[LR], momentum=0.0, weight_decay=0.0), [torch.nn.Parameter(torch.zeros(1))])
    cfg = InverseSqrtPlateauConfig(warmup_updates=WARMUP, lr_shrink=shrink, lr_patience=patience, lr=[LR],
                                   maximize_best_checkpoint_metric=maximize, lr_decay_fraction=decay_fraction,
                                   stop_time_hours=stop_time_hours, max_update=max_update)
    return InverseSqrtPlateauSchedule(cfg, optimizer)


def run_epochs(scheduler, metrics, first_epoch=1):
    """Train ``len(metrics)`` epochs of UPDATES_PER_EPOCH updates each; the rate at every update."""
    rates = []
    for epoch, metric in enumerate(metrics, start=first_epoch):
        for update in range((epoch - 1) * UPDATES_PER_EPOCH + 1, epoch * UPDATES_PER_EPOCH + 1):
            scheduler.step_update(update)
            rates.append(scheduler.optimizer.get_lr())
        scheduler.step(epoch, metric)
    return rates


def expected_rates(epochs, shrink=0.5):
    return [inverse_sqrt(update) * shrink ** (SHRINKS_AFTER[epoch - 2] if epoch > 1 else 0)
            for epoch in epochs for update in range((epoch - 1) * UPDATES_PER_EPOCH + 1, epoch * UPDATES_PER_EPOCH + 1)]


@pytest.mark.parametrize("maximize", [False, True])
def test_rate_is_inverse_sqrt_shrunk_after_each_plateau(maximize):
    metrics = [-loss for loss in LOSSES] if maximize else LOSSES  # maximised: higher is better, same plateaus
    rates = run_epochs(schedule(maximize=maximize), metrics)
    assert rates == pytest.approx(expected_rates(range(1, len(LOSSES) + 1)), rel=1e-12)


def test_resumed_schedule_goes_on_where_it_stopped():
    first = schedule()
    run_epochs(first, LOSSES[:6])  # one shrink done, one validation counted towards the next
    resumed = schedule()
    resumed.load_state_dict(first.state_dict())
    rates = run_epochs(resumed, LOSSES[6:], first_epoch=7)
    assert rates == pytest.approx(expected_rates(range(7, len(LOSSES) + 1)), rel=1e-12)


FALLING = [5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.25, 0.1]  # a new best each validation: no plateau shrink


def test_budgeted_end_by_max_update_falls_linearly_to_zero():
    """--max-update 20, --lr-decay-fraction 0.5: full rate to update 10, then (20 - t) / 10 of it, 0 from 20 on."""
    rates = run_epochs(schedule(decay_fraction=0.5, max_update=20), FALLING)
    expected = [inverse_sqrt(t) * min(1.0, max(0.0, (20 - t) / 10)) for t in range(1, 3 * len(FALLING) + 1)]
    assert rates == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert rates[9] == pytest.approx(inverse_sqrt(10)) and rates[14] == pytest.approx(inverse_sqrt(15) / 2)


class Clock:
    """time.time for the schedule's module, set by hand (seconds)."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def test_budgeted_end_by_time_plans_the_budget_from_the_pace_at_each_validation(monkeypatch):
    """--stop-time-hours 1, --lr-decay-fraction 0.5, 3 updates an epoch. The plan at each validation is updates done
    x 3600 s / seconds trained: after epoch 1 (600 s) 3 x 6 = 18, decaying from update 9; epoch 2 ends at 1800 s
    (slower), so the plan becomes 6 x 2 = 12 and epoch 3's updates 7-9 get (12 - t) / 6; a resumed schedule counts
    the seconds trained before it."""
    clock = Clock()
    monkeypatch.setattr("fairseq_attn_gru.optim.inverse_sqrt_plateau.time.time", clock)
    scheduler = schedule(decay_fraction=0.5, stop_time_hours=1.0)
    rates = []
    for epoch, seconds_at_validation in enumerate([600, 1800, 2400], start=1):
        for update in range(3 * epoch - 2, 3 * epoch + 1):
            rates.append(scheduler.step_update(update))
        clock.now = 1000.0 + seconds_at_validation
        scheduler.step(epoch, FALLING[epoch - 1])
    assert scheduler.budget_updates == round(9 * 3600 / 2400)  # 13.5 -> 14 (the third plan)
    expected = [inverse_sqrt(t) for t in range(1, 7)] + [inverse_sqrt(t) * (12 - t) / 6 for t in range(7, 10)]
    assert rates == pytest.approx(expected, rel=1e-12)

    saved = scheduler.state_dict()
    clock.now = 50000.0  # a new process: 2,400 s trained before, 1,200 s in this one
    resumed = schedule(decay_fraction=0.5, stop_time_hours=1.0)
    resumed.load_state_dict(saved)
    assert resumed.budget_updates == 14 and resumed.step_update(10) == pytest.approx(inverse_sqrt(10) * 4 / 7)
    clock.now += 1200
    resumed.step(4, FALLING[3])
    assert resumed.budget_updates == round(10 * 3600 / 3600)  # 10 updates in 3,600 s: the budget is spent
    assert resumed.step_update(11) == 0.0


RANK_PLAN = """
import sys, time
import torch.distributed as dist
sys.path.insert(0, {tests!r})
from test_lr_schedule import schedule
dist.init_process_group("gloo")
rank = dist.get_rank()
scheduler = schedule(decay_fraction=0.5, stop_time_hours=1.0)
scheduler.started = time.time() - (600 if rank == 0 else 900)  # rank 1's clock: 900 s trained, rank 0's 600 s
for update in (1, 2, 3):
    scheduler.step_update(update)
scheduler.step(1, 5.0)
print("rank", rank, "budget", scheduler.budget_updates, flush=True)
dist.destroy_process_group()
"""


def test_distributed_workers_plan_the_same_budget_from_rank_0s_clock(tmp_path):
    """Two gloo ranks whose clocks disagree (600 and 900 s for 3 updates in a 1-hour budget) both plan rank 0's
    3 x 3600 / 600 = 18 updates: with their own clocks they would step with different rates and drift apart."""
    script = tmp_path / "rank_plan.py"
    script.write_text(RANK_PLAN.format(tests=str(Path(__file__).parent)), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--master_port", str(free_port()), str(script)],
                            capture_output=True, text=True, timeout=180,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"})
    plans = sorted(re.findall(r"rank (\d) budget (\d+)", result.stdout))
    assert plans == [("0", "18"), ("1", "18")], result.stdout + result.stderr[-2000:]


TOY = toy_task("copy", vocab_size=10, max_len=5, train_size=64, valid_size=16)
SCHEDULE_FLAGS = ["--lr", "0.01", "--lr-scheduler", "inverse_sqrt_plateau", "--warmup-updates", "2",
                  "--lr-shrink", "0.5", "--max-tokens", "100", "--log-format", "simple", "--no-epoch-checkpoints"]


def epoch_summaries(run):
    """{epoch: (learning rate, updates so far)} from fairseq-train's end-of-epoch ``train`` lines."""
    log = run.stdout + run.stderr
    return {int(epoch): (float(re.search(r"\| lr ([0-9.e-]+)", line)[1]),
                         int(re.search(r"\| num_updates (\d+)", line)[1]))
            for epoch, line in re.findall(r"\| INFO \| train \| epoch (\d+)(.*)", log)}


def epoch_rates(run):
    """{epoch: the learning rate fairseq-train logged at the end of that epoch's training}."""
    return {epoch: rate for epoch, (rate, _) in epoch_summaries(run).items()}


def test_fairseq_train_shrinks_the_rate_and_saves_the_factor(tmp_path):
    """fairseq-train hands the schedule each epoch's validation metric. Maximising the loss makes every falling loss
    a validation without a new best, so the rate must shrink; each epoch's logged rate is checked against the
    formula and the logged validation losses."""
    out = train_toy(tmp_path, TOY, *SCHEDULE_FLAGS, "--lr-patience", "1", "--maximize-best-checkpoint-metric",
                    "--max-epoch", "4")
    train = epoch_summaries(out)
    valid = [float(loss) for loss in re.findall(r"valid on 'valid' subset \| loss ([0-9.]+)", out.stdout + out.stderr)]
    assert len(train) == 4 and len(valid) == 4, (out.stdout + out.stderr)[-3000:]
    factor, best = 1.0, None
    for (epoch, (rate, updates)), loss in zip(sorted(train.items()), valid):
        assert rate == pytest.approx(0.01 * math.sqrt(2 / updates) * factor, rel=1e-4), epoch
        saved_factor = factor  # fairseq saves the epoch's checkpoint before it hands the schedule the validation
        if best is None or loss > best:
            best = loss
        else:
            factor *= 0.5
    assert factor < 1, f"the losses {valid} never fell: the test did not exercise a shrink"
    state = torch.load(tmp_path / "checkpoint_last.pt", weights_only=True)
    assert state["optimizer_history"][-1]["lr_scheduler_state"]["factor"] == saved_factor


def test_resumed_run_shrinks_as_the_uninterrupted_one(tmp_path):
    """fairseq saves the end-of-epoch checkpoint before it hands the validation to the schedule: without
    fairseq_fixes/plateau_schedule_resume the resumed run counts one plateau validation fewer. The metric is the
    update count, minimised: after the first validation none is a new best, so with --lr-patience 2 the rate
    halves after validation 3, and a run resumed after epoch 2 needs validation 2 from the checkpoint."""
    flags = [*SCHEDULE_FLAGS, "--lr-patience", "2", "--best-checkpoint-metric", "num_updates"]
    whole = epoch_rates(train_toy(tmp_path / "whole", TOY, *flags, "--max-epoch", "4"))
    train_toy(tmp_path / "resumed", TOY, *flags, "--max-epoch", "2")
    resumed = epoch_rates(train_toy(tmp_path / "resumed", TOY, *flags, "--max-epoch", "4"))
    updates_per_epoch = 4  # 64 sentences in batches of 100 tokens, as the log shows
    expected = {epoch: 0.01 * math.sqrt(2 / (epoch * updates_per_epoch)) * (0.5 if epoch == 4 else 1)
                for epoch in range(1, 5)}
    assert whole == pytest.approx(expected, rel=1e-4)
    assert resumed == pytest.approx({3: expected[3], 4: expected[4]}, rel=1e-4)


def test_fairseq_train_ends_the_budget_at_rate_0(tmp_path):
    """--max-update 16 with --lr-decay-fraction 0.5 (4 updates an epoch, no plateau: --lr-patience 10): the logged
    end-of-epoch rates are inverse_sqrt's at updates 4 and 8, half of it at 12 and 0 at 16."""
    out = train_toy(tmp_path, TOY, *SCHEDULE_FLAGS, "--lr-patience", "10", "--lr-decay-fraction", "0.5",
                    "--max-update", "16")
    rates = epoch_summaries(out)
    assert {epoch: updates for epoch, (_, updates) in rates.items()} == {1: 4, 2: 8, 3: 12, 4: 16}
    assert {epoch: rate for epoch, (rate, _) in rates.items()} == pytest.approx(
        {1: 0.01 * math.sqrt(2 / 4), 2: 0.01 * math.sqrt(2 / 8), 3: 0.01 * math.sqrt(2 / 12) / 2, 4: 0.0},
        rel=1e-4, abs=1e-12)


@pytest.mark.parametrize("flags, message", [
    (["--lr-decay-fraction", "1.0", "--max-update", "5"], "--lr-decay-fraction=1.0 is not allowed: a number in [0, 1)"),
    (["--lr-decay-fraction", "0.3"], "--lr-decay-fraction=0.3 is not allowed: 0 without a training budget: give "
                                     "--stop-time-hours or --max-update")])
def test_budgeted_end_bad_values_are_one_line_errors(tmp_path, flags, message):
    result = run_cli("fairseq-train", "--user-dir", USER_DIR, *TOY, "--arch", "gru_attn_dot", "--cpu",
                     "--optimizer", "adam", "--lr-scheduler", "inverse_sqrt_plateau", *flags, "--max-tokens", "100",
                     "--save-dir", tmp_path, check=False)
    one_line_error(result, message)
    assert not list(tmp_path.glob("*.pt"))


@pytest.mark.parametrize("flag, value, allowed", [("--lr-shrink", "1.5", "a number between 0 and 1"),
                                                  ("--lr-patience", "0", "an integer >= 1")])
def test_bad_values_are_one_line_errors(tmp_path, flag, value, allowed):
    result = run_cli("fairseq-train", "--user-dir", USER_DIR, *TOY,
                     "--arch", "gru_attn_dot", "--cpu", "--optimizer", "adam", "--lr-scheduler",
                     "inverse_sqrt_plateau", flag, value, "--max-tokens", "100", "--save-dir", tmp_path,
                     check=False)
    one_line_error(result, f"{flag}={float(value) if flag == '--lr-shrink' else int(value)!r} is not allowed: "
                           f"{allowed}")

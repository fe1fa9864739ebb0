"""The one way every toolkit is measured, imported by the three runners inside their own venvs (the standard library
and, imported where needed, torch: it runs under any of them).

Training: each runner wraps its toolkit's own train-step function and reports every batch here with the batch's
target tokens (non-padding tokens the model predicts: the words and </s>, no <s>; counted from the batch tensors).
``tok_s`` is the tokens of the steps after the first ``WARMUP_STEPS`` divided by the wall time from the end of step
``WARMUP_STEPS`` to the end of the last step: data loading, the optimizer and anything else the toolkit does between
steps count, start-up does not. The budget clock starts when the first step starts; the time spent saving the
harness's curve checkpoints is paused out of it (the toolkit's own validation and checkpoints count).

Every event is one JSON line in the measure file (``PEERS_MEASURE {...}`` is also printed into the toolkit's log).

Profiling (speed_profile.py, `--profile-steps N`): a training profiles the N steps after the warm-up under
torch.profiler and then stops; a translation profiles its first timed call. The reading (benchmarks/op_profile.py's
summary, with the toolkit's torch version and its fp32 matmul peak measured right after) is a "profile" event.
"""
import argparse
import importlib.util
import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

WARMUP_STEPS = 3
PREFIX = "PEERS_MEASURE "
REPO = Path(__file__).resolve().parents[2]


class BudgetReached(Exception):
    """Raised from inside a train step when the budget is spent: the runner ends training there."""


def run_peer(doc: str, train, translate, argv=None) -> None:
    """A runner's command line, the same for every toolkit: `MODE CONFIG --measure FILE --threads N ...`; sets the
    threads, then calls ``train(args)`` or ``translate(args)``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["train", "translate"])
    parser.add_argument("config")
    parser.add_argument("--measure", required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--tag", default="")
    parser.add_argument("--budget-seconds", type=float, default=60.0)
    parser.add_argument("--curve-seconds", type=float, default=0.0)
    parser.add_argument("--final", default=None)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--src", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--profile-steps", type=int, default=0,
                        help="train: profile this many steps after the warm-up, then stop; translate: any positive "
                             "number profiles the first timed call (speed_profile.py)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    (train if args.mode == "train" else translate)(args)


def set_threads(threads: int) -> None:
    """The intra-op thread count for torch in this process (the harness also sets OMP_NUM_THREADS/MKL_NUM_THREADS
    before the process starts, so OpenMP sizes its pool the same way)."""
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


def write_event(path: str, **event) -> None:
    """One event: a JSON line appended to the measure file and printed into the toolkit's log."""
    line = json.dumps(event)
    with open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")
    print(PREFIX + line, file=sys.stderr, flush=True)


def load_benchmark_module(name: str, relative: str):
    """A module of this repository loaded by its path: the peers' venvs do not have our package installed."""
    spec = importlib.util.spec_from_file_location(name, REPO / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ProfileWindow:
    """torch.profiler from start() to stop(); reading(tokens) is op_profile.summary's reading of the window with the
    torch version and its fp32 matmul peak (measured after the window, outside it)."""

    def __init__(self):
        self.profiler, self.started, self.wall = None, None, None

    def start(self) -> None:
        from torch.profiler import profile

        self.profiler = profile(record_shapes=True)
        self.profiler.__enter__()
        self.started = time.perf_counter()

    def stop(self) -> None:
        self.wall = time.perf_counter() - self.started
        self.profiler.__exit__(None, None, None)

    def reading(self, tokens: int) -> dict:
        import torch

        op_profile = load_benchmark_module("op_profile", "benchmarks/op_profile.py")
        machine = load_benchmark_module("machine", "fairseq_attn_gru/recipes/machine.py")
        reading = op_profile.summary(self.profiler.key_averages(group_by_input_shape=True), self.wall, tokens)
        return {**reading, "torch": torch.__version__,
                "fp32_matmul_gflops": round(machine.matmul_gflops(torch.float32), 1)}


class TimedCalls:
    """Times every call of a toolkit's translation function (``wrap``); with ``profile`` the first call also runs
    under a ProfileWindow, read by ``summary(output_tokens)``."""

    def __init__(self, profile: bool = False):
        self.seconds = []
        self.window = ProfileWindow() if profile else None

    def wrap(self, function):
        def timed(*args, **kwargs):
            profiled = self.window is not None and not self.seconds
            if profiled:
                self.window.start()
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds.append(time.perf_counter() - start)
                if profiled:
                    self.window.stop()
        return timed

    def summary(self, output_tokens: int):
        """The first call's profile reading, or None when not profiled (or never called)."""
        if self.window is None or self.window.wall is None:
            return None
        return self.window.reading(output_tokens)


class TrainMeasure:
    def __init__(self, path: str, budget_seconds: float, curve_seconds: float = 0.0, tag: str = "",
                 profile_steps: int = 0):
        self.path, self.budget, self.curve_every, self.tag = path, budget_seconds, curve_seconds, tag
        self.profile_steps = profile_steps
        self.window = ProfileWindow() if profile_steps > 0 else None
        self.start = None
        self.paused = 0.0
        self.steps = 0
        self.total_tokens = 0
        self.window_tokens = 0
        self.window_start = None
        self.last_end = None
        self.next_curve = curve_seconds if curve_seconds > 0 else float("inf")

    def write(self, **event) -> None:
        event.setdefault("tag", self.tag)
        write_event(self.path, **event)

    def step_started(self) -> None:
        if self.start is None:
            self.start = time.perf_counter()
        if self.window is not None and self.steps == WARMUP_STEPS:
            self.window.start()

    def elapsed(self) -> float:
        """Budget seconds used so far: wall time since the first step started, less the paused time."""
        return time.perf_counter() - self.start - self.paused if self.start is not None else 0.0

    def step_done(self, tokens: int):
        """Counts one batch; returns the curve mark (seconds) to save now, "stop" when the budget is spent, or
        None."""
        now = time.perf_counter()
        self.steps += 1
        self.total_tokens += int(tokens)
        if self.steps == WARMUP_STEPS:
            self.window_start = now
        elif self.steps > WARMUP_STEPS:
            self.window_tokens += int(tokens)
        self.last_end = now
        if self.window is not None and self.steps == WARMUP_STEPS + self.profile_steps:
            self.window.stop()
            reading = self.window.reading(self.window_tokens)
            self.write(event="profile", mode="train", steps=self.profile_steps, **reading)
            return "stop"
        elapsed = self.elapsed()
        if elapsed >= self.budget:
            return "stop"
        if elapsed >= self.next_curve:
            mark = self.next_curve
            while self.next_curve <= elapsed:
                self.next_curve += self.curve_every
            return mark
        return None

    @contextmanager
    def paused_clock(self):
        """Harness work inside the training loop (a curve checkpoint) that must not count as training time."""
        start = time.perf_counter()
        try:
            yield
        finally:
            pause = time.perf_counter() - start
            self.paused += pause
            if self.window_start is not None:
                self.window_start += pause  # also out of the tokens/s window

    def curve_point(self, mark: float, checkpoint: str) -> None:
        self.write(event="curve", seconds=round(mark, 1), elapsed=round(self.elapsed(), 1), steps=self.steps,
                   checkpoint=os.path.abspath(checkpoint))

    def finish(self, checkpoint: str, threads: int) -> dict:
        seconds = (self.last_end - self.window_start) if self.window_start is not None and self.last_end else 0.0
        event = dict(event="train", steps=self.steps, total_tokens=self.total_tokens,
                     window_steps=max(0, self.steps - WARMUP_STEPS), window_tokens=self.window_tokens,
                     window_seconds=round(seconds, 3),
                     tok_s=round(self.window_tokens / seconds, 1) if seconds > 0 else None,
                     elapsed=round(self.elapsed(), 1), paused=round(self.paused, 1), budget=self.budget,
                     threads=threads, checkpoint=os.path.abspath(checkpoint))
        self.write(**event)
        return event


def translate_event(path: str, tag: str, sentences: int, calls: TimedCalls, beam: int, threads: int,
                    output_tokens: int) -> None:
    """One timed translation: ``calls`` timed the toolkit's translation calls over all sentences, not the model
    loading; a profiled first call adds a "profile" event."""
    seconds = sum(calls.seconds)
    write_event(path, event="translate", tag=tag, sentences=sentences, seconds=round(seconds, 3), beam=beam,
                threads=threads, sent_s=round(sentences / seconds, 2) if seconds > 0 else None,
                output_tokens=output_tokens)
    reading = calls.summary(output_tokens)
    if reading is not None:
        write_event(path, event="profile", mode="translate", tag=tag, beam=beam, threads=threads, **reading)

"""What bounds each toolkit's speed in `make peers`' matched-size comparison (docs/peers.md, "What bounds the
speeds"): torch.profiler over each toolkit's `general` training and its beam-5 translation of test_2016_flickr, in its
own venv through the same runner as `make peers`, with the thread and loader settings that run found fastest for it.

    python benchmarks/peers/speed_profile.py [--work peers_work] [--peers results/peers.json] [--steps 20]
                                       [--results results/peers_profile.json]

Needs a finished `make peers` (its WORK: the configurations, the converted data and the trained `general` models;
its results file: the settings). Training: measure.WARMUP_STEPS steps, then --steps profiled, then the run stops;
translation: the whole timed call over test_2016_flickr. Each reading (benchmarks/op_profile.py): the window's wall
time, the matrix products' share of it and their FLOP rate, their FLOPs per token (target tokens in training,
output tokens in translation: the same for all three when the sizes really match), the time outside any torch op
(Python, each toolkit's own bookkeeping), the ops that take the most, and the fp32 matmul peak of the toolkit's own
torch measured right after. The profiler slows small ops more than large ones: compare shares between the toolkits,
not these windows' speeds with `make peers`' figures. `make peers-profile` runs it (a few minutes).
"""
import argparse
import json
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import compare  # noqa: E402
import harness  # noqa: E402


def profile_event(measure: Path) -> dict:
    event = harness.last_event(harness.measure_events(measure.read_text()), "profile")
    if event is None:
        raise compare.Failed(f"no profile in {measure}")
    return event


def matched_run(work: Path, toolkit: str, matched: dict) -> dict:
    """The `make peers` run profiled for a toolkit: its configuration file, its trained weights and its settings."""
    setting = matched["train_setting"]
    threads, variant = compare.split_setting(setting)
    return {"setting": setting, "threads": threads, "variant": variant,
            "translate_threads": matched["translate_threads"],
            "config": compare.config_file(work, toolkit, "general", variant),
            "trained": compare.final_weights(compare.training_dir(work, toolkit, "general", setting), toolkit)}


def profile_toolkit(work: Path, toolkit: str, run: dict, source: Path, steps: int) -> dict:
    """One toolkit's training and translation readings."""
    out = work / "profile" / toolkit
    out.mkdir(parents=True, exist_ok=True)
    threads, translate_threads = run["threads"], run["translate_threads"]
    loader = f", {run['variant']}" if run["variant"] else ""
    print(f"    {toolkit}: training, {steps} steps profiled, {threads} thread(s){loader} ...", flush=True)
    compare.fresh_model_dir(work, toolkit, "general")
    measure = out / "train.measure.jsonl"
    measure.unlink(missing_ok=True)
    compare.run_measured(toolkit, ["train", run["config"], "--measure", measure, "--threads", threads,
                                   "--budget-seconds", 3600, "--final", compare.final_weights(out, toolkit),
                                   "--tag", "profile-train", "--profile-steps", steps], out / "train.log", threads)
    readings = {"train": {**profile_event(measure), "setting": run["setting"]}}
    print(f"    {toolkit}: beam-5 translation of {source.name}, {translate_threads} thread(s) ...", flush=True)
    measure = out / "translate.measure.jsonl"
    measure.unlink(missing_ok=True)
    compare.run_measured(toolkit, ["translate", run["config"], "--checkpoint", run["trained"], "--src", source,
                                   "--out", out / "test_2016_flickr.beam5.bpe", "--beam", 5, "--threads",
                                   translate_threads, "--measure", measure, "--tag", "profile-translate",
                                   "--profile-steps", 1], out / "translate.log", translate_threads)
    readings["translate"] = {**profile_event(measure), "threads": translate_threads}
    return readings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="peers_work", help="the `make peers` work directory (default: %(default)s)")
    parser.add_argument("--peers", default="results/peers.json",
                        help="that run's results file, for its settings (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=20, help="training steps profiled (default: %(default)s)")
    parser.add_argument("--results", default="results/peers_profile.json")
    args = parser.parse_args(argv)
    if not args.steps > 0:
        compare.fail(f"--steps={args.steps} is not allowed: a positive number of training steps")
    work, peers_path = Path(args.work).resolve(), Path(args.peers)
    if not peers_path.is_file():
        compare.fail(f"--peers {str(peers_path)!r} does not exist: run `make peers` to the end first")
    peers = json.loads(peers_path.read_text())
    source = work / "data" / f"test_2016_flickr.{peers['settings']['direction'].split('-')[0]}"
    runs = {toolkit: matched_run(work, toolkit, peers[toolkit]["matched"]) for toolkit in harness.TOOLKITS}
    for needed in (source, *(path for run in runs.values() for path in (run["config"], run["trained"]))):
        if not needed.is_file():
            compare.fail(f"{needed} is missing: speed_profile.py reads a finished `make peers` run's --work")
    from fairseq_attn_gru.recipes.machine import machine_description

    cpu = machine_description()
    print(f"==> {cpu['model']}, {cpu['cores']} cores, fp32 matmul {cpu['fp32_matmul_gflops']} GFLOP/s", flush=True)
    command = shlex.join(["python", "benchmarks/peers/speed_profile.py", *(argv or sys.argv[1:])])
    results = {"cpu": cpu, "command": command,
               "peers_results": {"path": str(peers_path), "cpu": peers.get("cpu")}, "steps": args.steps}
    try:
        for toolkit in harness.TOOLKITS:
            results[toolkit] = profile_toolkit(work, toolkit, runs[toolkit], source, args.steps)
    except compare.Failed as error:
        compare.fail(str(error))
    results_path = Path(args.results)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    print("\n" + harness.profile_table(results) + f"\n\nwrote {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

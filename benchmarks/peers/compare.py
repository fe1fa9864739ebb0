"""fairseq-attn-gru side by side with Joey NMT and OpenNMT-py on Multi30k, in one run on one machine (`make peers`).

    python benchmarks/peers/compare.py --data DIR [--minutes 20] [--matched-minutes 3] [--work peers_work]
                                       [--results results/peers.json] [--smoke]

Steps (a progress line each):
 1. the machine: CPU model, cores, fp32 matmul GFLOP/s (recorded with every figure);
 2. the peers, each pinned in its own venv (install.py; kept between runs, the first install's time and size
    recorded);
 3. `fairseq-attn-gru prepare` on DIR (Moses + joint BPE), which all three then read (harness.convert_data);
 4. matched size: each toolkit trains gru_attn_general's configuration with 1 and then 2 threads (OpenNMT-py also
    with 0 and 2 DataLoader workers: harness.LOADER_VARIANTS), --matched-minutes each, and gru_bahdanau's with the
    faster setting; training target tokens/s measured the same way for all (measure.py), peak RSS of the training
    process;
 5. translation speed: test_2016_flickr with each toolkit's own beam search (beam 5) at 1 and 2 threads, greedy at
    the faster count;
 6. the same time budget: each toolkit's best RNN configuration (harness.BUDGET_SOURCES) for --minutes, a
    checkpoint every --curve-minutes (the time spent saving it is not counted);
 7. scores: every curve checkpoint on val, the last on val and every test set, beam 5, each output with BPE removed
    and Moses-detokenised by the prepared directory's own text processing, then the same sacreBLEU call;
 8. RESULTS (json), RESULTS's .png (val BLEU by minute, three toolkits) and the table.

Each run keeps its output in WORK; run again, the same command reuses every finished run (the same configuration
file, budget and checkpoint) and redoes only what an interruption cut short or what changed. Other settings in
the same WORK are refused in one line (use another --work). 8. also rewrites the measured section of docs/peers.md
when RESULTS is results/peers.json.
--smoke: 300 lines of each split to train on, 50 translated, 15- and 20-second budgets: the whole path in minutes
(once the peers are installed); its figures say nothing about the toolkits.
"""
import argparse
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
import install  # noqa: E402

RUNNERS = {"fairseq_attn_gru": HERE / "run_fairseq_attn_gru.py", "joeynmt": HERE / "run_joeynmt.py",
           "opennmt_py": HERE / "run_opennmt_py.py"}
CONFIG_SUFFIX = {"fairseq_attn_gru": ".json", "joeynmt": ".yaml", "opennmt_py": ".yaml"}
#: --smoke: lines of each split to train on, lines of each set translated (an untrained model's beam search runs
#: every hypothesis to its length limit: Joey NMT's at about 1 sentence a second), minutes
SMOKE = {"limit": 300, "eval_limit": 50, "minutes": 20 / 60, "matched_minutes": 15 / 60, "curve_minutes": 10 / 60}
THREADS = (1, 2)
STEPS = 8


class Failed(Exception):
    """A run failed: its log is named."""


def fail(message: str):
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def step(number: int, text: str) -> None:
    print(f"==> [{number}/{STEPS}] {text}", flush=True)


def python_of(toolkit: str) -> str:
    return sys.executable if toolkit == "fairseq_attn_gru" else str(install.python_of(toolkit))


def run_env(threads: int) -> dict:
    """The run's threads (OpenMP and MKL size their pools from these at start-up) and the pipeline's training
    environment (glibc keeps freed memory, OpenMP threads spin: fairseq_attn_gru/pipeline/train.py TRAIN_ENV),
    given to every toolkit alike."""
    from fairseq_attn_gru.pipeline.train import TRAIN_ENV

    env = {**os.environ, **TRAIN_ENV, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env["CUDA_VISIBLE_DEVICES"] = ""  # the OpenNMT-py venv's torch is a CUDA build: it must not look for a GPU
    return env


def run_measured(toolkit: str, arguments, log_path: Path, threads: int) -> dict:
    """One runner process; its output to log_path; returns {"seconds", "peak_rss_mb"} (the process's own peak,
    from wait4). A failure raises Failed naming the log."""
    command = [python_of(toolkit), str(RUNNERS[toolkit]), *map(str, arguments)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + shlex.join(command) + "\n")
        log.flush()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=run_env(threads), cwd=ROOT)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except KeyboardInterrupt:  # Ctrl-C reaches the runner too; SIGTERM only this process
            process.terminate()
            process.wait()
            raise
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
        raise Failed(f"{toolkit} failed (exit status {process.returncode}): {tail[0] if tail else ''} "
                     f"(full log: {log_path})")
    return {"seconds": round(time.time() - start, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def split_setting(setting: dict):
    """A training setting ({"threads", ...LOADER_VARIANTS}) as (threads, the loader variant)."""
    return setting["threads"], {key: value for key, value in setting.items() if key != "threads"}


def config_file(work: Path, toolkit: str, config: str, variant: dict) -> Path:
    """Where config_path writes a toolkit's configuration file."""
    return work / toolkit / f"{config}{harness.variant_name(variant)}{CONFIG_SUFFIX[toolkit]}"


def training_dir(work: Path, toolkit: str, config: str, setting: dict) -> Path:
    """The directory of one training (its measure file, its final weights, its curve checkpoints)."""
    threads, variant = split_setting(setting)
    return work / toolkit / f"{config}-t{threads}{harness.variant_name(variant)}"


def config_path(work: Path, toolkit: str, config: str, data: dict, prep: Path, precision: str,
                variant: dict) -> Path:
    run_dir = work / toolkit / config
    path = config_file(work, toolkit, config, variant)
    if toolkit == "joeynmt":
        content = harness.joeynmt_config(config, data, run_dir / "model")
    elif toolkit == "opennmt_py":
        content = harness.opennmt_config(config, data, run_dir / "model", variant, smoke=data.get("smoke", False))
    else:
        flags = (harness.fairseq_budget_flags(prep, run_dir / "model", precision) if config == "budget"
                 else harness.fairseq_matched_flags(config, prep, run_dir / "model"))
        content = {"flags": flags, "prep": str(prep)}
    return harness.write_config(path, content)


def final_weights(run_dir: Path, toolkit: str) -> Path:
    """Where a run's runner saves the weights at the end of its budget (Joey NMT's own suffix for them)."""
    return run_dir / f"final{'.ckpt' if toolkit == 'joeynmt' else '.pt'}"


def fresh_model_dir(work: Path, toolkit: str, config: str) -> None:
    """The configuration's own model directory, emptied: no toolkit resumes from an earlier run's files there."""
    model_dir = work / toolkit / config / "model"
    shutil.rmtree(model_dir, ignore_errors=True)
    model_dir.mkdir(parents=True)  # OpenNMT-py's log_file goes there


def train(work: Path, toolkit: str, config: str, setting: dict, seconds: float, curve_seconds: float, data: dict,
          prep: Path, precision: str) -> dict:
    """Train (or reuse a finished training of) one toolkit/config/setting ({"threads", ...LOADER_VARIANTS}); returns
    its train event with peak_rss_mb, the log's own speed figure and warnings, and the setting."""
    threads, variant = split_setting(setting)
    run_dir = training_dir(work, toolkit, config, setting)
    name = run_dir.name
    measure, final = run_dir / "measure.jsonl", final_weights(run_dir, toolkit)
    done = run_dir / "train_done.json"
    config_file = config_path(work, toolkit, config, data, prep, precision, variant)
    identity = {"config_sha256": sha256(config_file), "seconds": seconds, "curve_seconds": curve_seconds}
    if done.is_file() and final.is_file():
        result = json.loads(done.read_text())
        if result.get("identity") == identity:
            print(f"    {toolkit} {name}: reusing the finished run ({result['tok_s']} tok/s)", flush=True)
            return result
    for stale in (measure, final):
        stale.unlink(missing_ok=True)
    fresh_model_dir(work, toolkit, config)
    shutil.rmtree(run_dir / "curve", ignore_errors=True)
    print(f"    {toolkit} {name}: training {seconds / 60:.2f} min with {threads} thread(s)"
          f"{f', {variant}' if variant else ''} ...", flush=True)
    process = run_measured(toolkit, ["train", config_file, "--measure", measure, "--threads", threads,
                                     "--budget-seconds", seconds, "--curve-seconds", curve_seconds,
                                     "--final", final, "--tag", name],
                           run_dir / "train.log", threads)
    events = harness.measure_events(measure.read_text())
    event = harness.last_event(events, "train")
    if event is None:
        raise Failed(f"{toolkit} {config} wrote no measurement (log: {run_dir / 'train.log'})")
    log = (run_dir / "train.log").read_text(encoding="utf-8", errors="replace")
    own_logs = [path for path in (work / toolkit / config / "model").glob("*.log")]
    own = "\n".join(path.read_text(encoding="utf-8", errors="replace") for path in own_logs)
    found = harness.log_warnings(log + "\n" + own)
    result = {**event, "peak_rss_mb": process["peak_rss_mb"], "process_seconds": process["seconds"],
              "own_log_tok_s": harness.toolkit_log_speed(toolkit, log + "\n" + own),
              "params": harness.toolkit_log_params(toolkit, log + "\n" + own),
              "warnings": found["warnings"], "deprecations": found["deprecations"],
              "curve": [e for e in events if e.get("event") == "curve"], "setting": setting, "identity": identity}
    done.write_text(json.dumps(result, indent=2) + "\n")
    print(f"    {toolkit} {name}: {result['tok_s']} target tok/s over {event['window_steps']} "
          f"steps, peak RSS {result['peak_rss_mb']:,.0f} MB, {len(result['warnings'])} warning line(s)"
          + (f" (first: {result['warnings'][0][:120]})" if result["warnings"] else ""), flush=True)
    return result


def translate(work: Path, toolkit: str, config_file: Path, checkpoint: str, split: str, beam: int, threads: int,
              data: dict, name: str) -> dict:
    """Translate (or reuse) one split with one checkpoint; returns the translate event and the subword output's
    path."""
    out_dir = work / toolkit / "translations"
    out = out_dir / f"{name}.bpe"
    done = out_dir / f"{name}.json"
    # the same checkpoint file (a retrained one is written anew) and the same source text
    source = f"{data['splits'][split]}.{data['source_lang']}"
    identity = {"checkpoint": checkpoint, "checkpoint_mtime": os.stat(checkpoint).st_mtime_ns,
                "source_sha256": sha256(source), "beam": beam, "threads": threads}
    if done.is_file() and out.is_file():
        result = json.loads(done.read_text())
        if result.get("identity") == identity:
            return result
    measure = out_dir / f"{name}.measure.jsonl"
    measure.unlink(missing_ok=True)
    process = run_measured(toolkit, ["translate", config_file, "--checkpoint", checkpoint, "--src", source, "--out",
                                     out, "--beam", beam, "--threads", threads, "--measure", measure, "--tag", name],
                           out_dir / f"{name}.log", threads)
    event = harness.last_event(harness.measure_events(measure.read_text()), "translate")
    result = {**event, "output": str(out), "peak_rss_mb": process["peak_rss_mb"], "identity": identity}
    done.write_text(json.dumps(result, indent=2) + "\n")
    return result


def score(output: str, split: str, data: dict, processing) -> float:
    """sacreBLEU of a subword output against the raw reference: BPE removed and Moses-detokenised by the prepared
    directory's own text processing, the same call for all three toolkits."""
    from fairseq_attn_gru.recipes.scoring import sacrebleu_score

    hypotheses = Path(output).read_text(encoding="utf-8").splitlines()
    references = Path(f"{data['splits'][split]}.ref").read_text(encoding="utf-8").splitlines()
    if len(hypotheses) != len(references):
        raise Failed(f"{output} has {len(hypotheses)} lines for {len(references)} references")
    return sacrebleu_score(processing.decode(hypotheses, data["target_lang"]), references)


def version_of(toolkit: str) -> str:
    if toolkit == "fairseq_attn_gru":
        from importlib.metadata import version

        import torch

        return f"{version('fairseq-attn-gru')} (fairseq {version('fairseq-fixed')}, torch {torch.__version__})"
    record = install.installed_record(toolkit)
    package = install.PEERS[toolkit]["packages"][-1].split("==")[1]
    return f"{package} (torch {record['torch']})" if record else package


def check_data(data: Path, source: str, target: str) -> None:
    if not data.is_dir():
        fail(f"--data {str(data)!r} is not a directory: give the folder with Multi30k's raw train.{source}, "
             f"val.{source}, test_2016_flickr.{source}, ... (e.g. make peers DATA=/path/to/multi30k)")
    missing = [f"{split}.{lang}" for split in ("train", "val", "test_2016_flickr", "test_2017_flickr")
               for lang in (source, target) if not (data / f"{split}.{lang}").is_file()]
    if missing:
        fail(f"--data {str(data)!r} lacks {', '.join(missing)}: the comparison needs Multi30k's train, val, "
             "test_2016_flickr and test_2017_flickr in both languages")


def stop_on_signal(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="Multi30k's raw files (train.de, val.de, test_2016_flickr.de...)")
    parser.add_argument("--source-lang", default="de")
    parser.add_argument("--target-lang", default="en")
    parser.add_argument("--work", default=None,
                        help="every run's files (default: peers_work, with --smoke peers_work_smoke)")
    parser.add_argument("--results", default=None,
                        help="the results json (default: results/peers.json, with --smoke WORK/peers.json)")
    parser.add_argument("--minutes", type=float, default=20.0,
                        help="the same training budget for each toolkit's best config (default: %(default)s)")
    parser.add_argument("--curve-minutes", type=float, default=2.0,
                        help="a val BLEU point every this many training minutes (default: %(default)s)")
    parser.add_argument("--matched-minutes", type=float, default=3.0,
                        help="training per matched-size run (default: %(default)s)")
    parser.add_argument("--smoke", action="store_true",
                        help=f"{SMOKE['limit']} lines a split, budgets of seconds: the whole path in minutes")
    args = parser.parse_args(argv)
    for flag in ("minutes", "curve_minutes", "matched_minutes"):
        if not getattr(args, flag) > 0:
            fail(f"--{flag.replace('_', '-')}={getattr(args, flag)} is not allowed: a positive number of minutes")
    limit = SMOKE["limit"] if args.smoke else None
    if args.smoke:
        args.minutes, args.matched_minutes, args.curve_minutes = (SMOKE["minutes"], SMOKE["matched_minutes"],
                                                                  SMOKE["curve_minutes"])
    data_dir = Path(args.data)
    check_data(data_dir, args.source_lang, args.target_lang)
    work = Path(args.work or ("peers_work_smoke" if args.smoke else "peers_work")).resolve()
    args.results = args.results or str(work / "peers.json" if args.smoke else ROOT / "results" / "peers.json")
    settings = {"direction": f"{args.source_lang}-{args.target_lang}", "data": str(data_dir.resolve()),
                "limit": limit, "eval_limit": SMOKE["eval_limit"] if args.smoke else None,
                "budget_minutes": round(args.minutes, 4), "curve_minutes": round(args.curve_minutes, 4),
                "matched_minutes": round(args.matched_minutes, 4), "threads_measured": list(THREADS),
                "matched": harness.MATCHED, "translation_batch_sentences": 64}
    settings_file = work / "settings.json"
    if settings_file.is_file() and json.loads(settings_file.read_text()) != settings:
        fail(f"{work} holds a comparison with other settings ({settings_file}): use another --work, or delete it")
    work.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps(settings, indent=2) + "\n")
    signal.signal(signal.SIGTERM, stop_on_signal)  # a stopped run is then cleaned up like Ctrl-C's
    try:
        return compare(args, work, data_dir, settings, limit)
    except Failed as error:
        fail(str(error))
    except KeyboardInterrupt:
        print(f"\ninterrupted: every finished training and translation stays in {work}; the same command goes on "
              "from there", file=sys.stderr, flush=True)
        return 130


def compare(args, work: Path, data_dir: Path, settings: dict, limit):
    from fairseq_attn_gru.pipeline.corpus import layout_splits, read_pair
    from fairseq_attn_gru.pipeline.prepare import load_prep, processing_of
    from fairseq_attn_gru.pipeline.train import resolve_precision
    from fairseq_attn_gru.recipes.cli import quiet_fairseq_debug_logging
    from fairseq_attn_gru.recipes.machine import machine_description

    quiet_fairseq_debug_logging()  # `import fairseq` sets the root logger to DEBUG (recipes/cli.py)

    step(1, "the machine: CPU and its fp32 matmul peak")
    cpu = machine_description()
    print(f"    {cpu['model']}, {cpu['cores']} cores, fp32 matmul {cpu['fp32_matmul_gflops']} GFLOP/s", flush=True)

    step(2, f"the peers, each in its own venv: {', '.join(install.PEERS)}")
    installs = {peer: install.install(peer) for peer in install.PEERS}

    prep = work / "prep"
    step(3, f"fairseq-attn-gru prepare {settings['direction']} -> {prep}")
    command = [str(Path(sys.executable).parent / "fairseq-attn-gru"), "prepare", "--source-lang", args.source_lang,
               "--target-lang", args.target_lang, "--data", str(data_dir), "--out", str(prep),
               "--text-processing", "moses-bpe", *(["--limit", str(limit)] if limit else [])]
    if subprocess.run(command).returncode != 0:
        raise Failed("fairseq-attn-gru prepare failed (its error is above)")
    prep_settings = load_prep(prep)
    processing = processing_of(prep, prep_settings)
    splits = {split.name: split for split in layout_splits(data_dir, args.source_lang, args.target_lang)}
    evaluated = ["val", "test_2016_flickr", "test_2017_flickr"]
    eval_limit = SMOKE["eval_limit"] if args.smoke else None
    raw = {name: read_pair(splits[name], args.source_lang, args.target_lang, eval_limit) for name in evaluated}
    data = harness.convert_data(prep, raw, processing.encode, args.source_lang, args.target_lang, work / "data")
    data["smoke"] = args.smoke
    print(f"    converted for the three toolkits -> {data['dir']} (vocabulary: "
          f"{len(harness.fairseq_dictionary_tokens(prep / 'bin' / f'dict.{args.target_lang}.txt')):,} subwords)",
          flush=True)

    matched_seconds, budget_seconds = args.matched_minutes * 60, args.minutes * 60
    results = {"cpu": cpu, "command": shlex.join([Path(sys.executable).name, *sys.argv]), "settings": settings,
               "prep": {key: prep_settings.get(key) for key in ("text_processing", "vocab", "subword_size",
                                                                 "dictionary", "cleaning")}}
    best_train_setting = {}
    step(4, f"matched size: {', '.join(harness.OUR_ARCH.values())} and the peers' closest, "
            f"{args.matched_minutes:g} min each, 1 and 2 threads")
    matched = {toolkit: {} for toolkit in harness.TOOLKITS}
    for toolkit in harness.TOOLKITS:
        settings_tried = [{"threads": threads, **variant} for variant in harness.LOADER_VARIANTS[toolkit]
                          for threads in THREADS]
        runs = [train(work, toolkit, "general", setting, matched_seconds, 0, data, prep, "fp32")
                for setting in settings_tried]
        best = max(runs, key=lambda run: run["tok_s"] or 0)
        best_train_setting[toolkit] = best["setting"]
        matched[toolkit]["general"] = {"threads": best["setting"]["threads"], **best,
                                       "tok_s_by_setting": [{**run["setting"], "tok_s": run["tok_s"]} for run in runs]}
        matched[toolkit]["bahdanau"] = train(work, toolkit, "bahdanau", best["setting"], matched_seconds, 0, data,
                                             prep, "fp32")

    step(5, "translation speed: test_2016_flickr, beam 5 with 1 and 2 threads, greedy with the faster")
    best_translate_threads = {}
    for toolkit in harness.TOOLKITS:
        for config in harness.MATCHED_CONFIGS:
            checkpoint = matched[toolkit][config]["checkpoint"]
            config_file = config_path(work, toolkit, config, data, prep, "fp32", {})
            threads_tried = THREADS if config == "general" else (best_translate_threads[toolkit],)
            beams = {t: translate(work, toolkit, config_file, checkpoint, "test_2016_flickr", 5, t, data,
                                  f"{config}.test_2016_flickr.beam5.t{t}") for t in threads_tried}
            if config == "general":
                best_translate_threads[toolkit] = max(threads_tried, key=lambda t: beams[t]["sent_s"] or 0)
            threads = best_translate_threads[toolkit]
            greedy = translate(work, toolkit, config_file, checkpoint, "test_2016_flickr", 1, threads, data,
                               f"{config}.test_2016_flickr.greedy.t{threads}")
            entry = matched[toolkit][config]
            entry.update(beam5_sent_s=beams[threads]["sent_s"], greedy_sent_s=greedy["sent_s"],
                         beam5_sent_s_by_threads={t: beams[t]["sent_s"] for t in threads_tried},
                         translate_threads=threads, beam5_output_tokens=beams[threads]["output_tokens"],
                         greedy_output_tokens=greedy["output_tokens"], translate_sentences=greedy["sentences"],
                         test_2016_flickr_sacrebleu=score(beams[threads]["output"], "test_2016_flickr", data,
                                                          processing)["score"])
            length = beams[threads]["output_tokens"] / max(1, beams[threads]["sentences"])
            print(f"    {toolkit} {config}: beam 5 {entry['beam5_sent_s']} sent/s ({length:.1f} output tokens a "
                  f"sentence), greedy {entry['greedy_sent_s']} sent/s, {threads} thread(s); test_2016_flickr sacreBLEU "
                  f"{entry['test_2016_flickr_sacrebleu']} after {args.matched_minutes:g} min", flush=True)

    step(6, f"the same time budget: each toolkit's best RNN config for {args.minutes:g} min, a val point every "
            f"{args.curve_minutes:g} min")
    precision = resolve_precision("auto", "cpu")  # what `fairseq-attn-gru train` would choose on this CPU
    budget_runs = {toolkit: train(work, toolkit, "budget", best_train_setting[toolkit], budget_seconds,
                                  args.curve_minutes * 60, data, prep, precision) for toolkit in harness.TOOLKITS}

    step(7, "scores: every curve checkpoint on val, the last one on val and the test sets (beam 5, sacreBLEU)")
    for toolkit in harness.TOOLKITS:
        run, threads = budget_runs[toolkit], best_translate_threads[toolkit]
        config_file = config_path(work, toolkit, "budget", data, prep, precision, {})
        points = [*run["curve"], {"seconds": budget_seconds, "checkpoint": run["checkpoint"], "steps": run["steps"]}]
        curve = []
        for point in points:
            name = f"budget.val.{int(point['seconds'])}s"
            output = translate(work, toolkit, config_file, point["checkpoint"], "val", 5, threads, data, name)
            curve.append({"minutes": round(point["seconds"] / 60, 2), "steps": point["steps"],
                          "val_sacrebleu": score(output["output"], "val", data, processing)["score"]})
            print(f"    {toolkit}: val sacreBLEU {curve[-1]['val_sacrebleu']} after {curve[-1]['minutes']:g} min "
                  f"({point['steps']} steps)", flush=True)
        final = {"minutes": round(args.minutes, 4), "steps": run["steps"], "setting": run["setting"],
                 "train_tok_s": run["tok_s"], "params": run.get("params"),
                 "config_source": harness.BUDGET_SOURCES[toolkit],
                 "val_sacrebleu": curve[-1]["val_sacrebleu"], "val_curve": curve, "warnings": run["warnings"],
                 "deprecations": run.get("deprecations", []),
                 **({"precision": precision} if toolkit == "fairseq_attn_gru" else {})}
        for split in ("test_2016_flickr", "test_2017_flickr"):
            output = translate(work, toolkit, config_file, run["checkpoint"], split, 5, threads, data,
                               f"budget.{split}")
            scored = score(output["output"], split, data, processing)
            final[f"{split}_sacrebleu"], final["signature"] = scored["score"], scored["signature"]
        general = matched[toolkit]["general"]
        results[toolkit] = {
            "version": version_of(toolkit), "install": installs.get(toolkit),
            "matched": {"config": "general", "train_tok_s": general["tok_s"], "beam5_sent_s": general["beam5_sent_s"],
                        "greedy_sent_s": general["greedy_sent_s"], "peak_rss_mb": general["peak_rss_mb"],
                        "train_setting": general["setting"], "translate_threads": general["translate_threads"],
                        "tok_s_by_setting": general["tok_s_by_setting"],
                        "beam5_sent_s_by_threads": general["beam5_sent_s_by_threads"],
                        "own_log_tok_s": general["own_log_tok_s"], "params": general.get("params"),
                        **{key: general.get(key) for key in harness.OUTPUT_LENGTH_KEYS},
                        "warnings": general["warnings"], "deprecations": general.get("deprecations", []),
                        "test_2016_flickr_sacrebleu": general["test_2016_flickr_sacrebleu"],
                        "bahdanau": {key: matched[toolkit]["bahdanau"].get(key) for key in
                                     ("tok_s", "beam5_sent_s", "greedy_sent_s", "peak_rss_mb", "own_log_tok_s",
                                      "params", "warnings", "deprecations", "test_2016_flickr_sacrebleu",
                                      *harness.OUTPUT_LENGTH_KEYS)},
                        "notes": harness.MATCH_NOTES.get(toolkit, [])},
            "budget": final,
        }
        print(f"    {toolkit}: val {final['val_sacrebleu']}, test_2016_flickr {final['test_2016_flickr_sacrebleu']}, "
              f"test_2017_flickr {final['test_2017_flickr_sacrebleu']} after {args.minutes:g} min", flush=True)

    step(8, f"writing {args.results}")
    results["targets"] = harness.targets(results)
    results_path = Path(args.results)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = results_path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(temporary, results_path)
    png = harness.plot_curves(results, results_path.with_suffix(".png"))
    print(f"\n{cpu['model']}, {cpu['cores']} cores, fp32 matmul {cpu['fp32_matmul_gflops']} GFLOP/s\n")
    print(harness.results_table(results))
    print()
    for line in harness.targets_lines(results):
        print(line)
    for toolkit in harness.TOOLKITS:
        warnings = results[toolkit]["matched"]["warnings"] + results[toolkit]["budget"]["warnings"]
        if warnings:
            print(f"\n{toolkit}: {len(warnings)} warning line(s) in its logs (in {args.results}); first: {warnings[0]}")
    docs = ROOT / "docs" / "peers.md"
    if results_path.resolve() == (ROOT / "results" / "peers.json").resolve() and harness.update_docs(results, docs):
        print(f"updated the measured section of {docs.relative_to(ROOT)}")
    print(f"\nwrote {results_path}{f' and {png}' if png else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The docs' tables of measured results, built from the results files the scripts wrote, so that no figure in README
or docs/ can differ from its file. flags_table.py puts them between ``<!-- results:NAME:start -->`` and
``<!-- results:NAME:end -->`` markers (``--write``) and checks them (``--check``, tests/test_docs.py).

Each builder takes the results directory and returns a markdown table; a builder of one file (``@from_results``)
gets that file's contents, and a missing file gives a line saying which command writes it (``WRITERS``). The
published figures (PUBLISHED) are the papers', not ours: each names its paper and its scoring convention.
"""
import functools
import json
from pathlib import Path

#: the directions of the Multi30k runs, in table order, and their results files (de-en keeps the earlier name)
DIRECTIONS = [("de", "en"), ("en", "de"), ("en", "fr"), ("en", "cs")]
TEST_SETS = ("test_2016_flickr", "test_2017_flickr")
#: the best published single models trained on Multi30k only, tok-lc BLEU (lowercased, Moses-tokenised)
PUBLISHED = {
    ("en", "de"): {"test_2016_flickr": (41.02, "Transformer-Tiny, Wu et al. 2021"),
                   "test_2017_flickr": (33.2, "LIUM-CVC NMT, WMT17 Findings")},
    ("en", "fr"): {"test_2016_flickr": (61.4, "Marian, MeMAD at WMT18"), "test_2017_flickr": (54.0, "Marian, MeMAD at WMT18")},
    ("en", "cs"): {"test_2016_flickr": (30.9, "Transformer, Libovický et al. WMT18")},
}
ARROW = "→"


def results_file(results: Path, source: str, target: str) -> Path:
    return results / f"multi30k_{source}-{target}.json"


def load(path: Path):
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


#: the command that writes each results file, and about how long it takes on 2 cores: the line a table shows until
#: the file exists (the file then records its real time)
WRITERS = {"demo.json": ("make demo", "about 11-20 min"), "bench.json": ("make bench", "about 12 min"),
           "peers.json": ("make peers DATA=/path/to/multi30k", "about 2 h 10 min"),
           "peers_profile.json": ("make peers-profile", "about 5 min, after make peers"),
           "text_processing.json": ("python benchmarks/text_processing.py --data DIR --work W", "about 4 h"),
           "install.json": ("python benchmarks/install_time.py", "about 5 min"),
           "tests.json": ("python -m pytest -q -n 2 --dist loadfile tests --results-json results/tests.json",
                          "about 15 min")}


def not_run(name: str) -> str:
    """'(no results/demo.json yet: `make demo`, about 11-20 min on 2 cores)'"""
    command, duration = WRITERS[name]
    return f"(no results/{name} yet: `{command}`, {duration} on 2 cores)"


def from_results(name: str):
    """A builder of one results file's table: it gets the file's contents; without the file, the table is the line
    saying which command writes it."""
    def decorate(build):
        @functools.wraps(build)
        def builder(results: Path) -> str:
            run = load(results / name)
            return not_run(name) if run is None else build(run)
        return builder
    return decorate


def earlier_de_en(results: Path):
    """results/multi30k.json, the German->English run of the recipe before the pipeline (sacreBLEU only, no machine
    recorded), in the pipeline's layout; None when the file is absent."""
    run = load(results / "multi30k.json")
    if run is None:
        return None
    tests = {name: {"sacrebleu": run[name]["sacrebleu"], "chrf": None, "bleu_tok_lc": None} for name in TEST_SETS}
    return {"tests": tests, "earlier": True, "train_minutes": run["train_minutes"], "checkpoint": run["checkpoint"]}


def earlier_de_en_cell(results: Path):
    """The de->en row's reference, where no paper has one: this project's earlier recipe (sacreBLEU, not tok-lc)."""
    earlier = earlier_de_en(results)
    if earlier is None:
        return None
    scores = " / ".join(f"{earlier['tests'][name]['sacrebleu']:.2f}" for name in TEST_SETS)
    return f"none published; this project's earlier recipe: sacreBLEU {scores} (results/multi30k.json)"


def load_direction(results: Path, source: str, target: str):
    run = load(results_file(results, source, target))
    return run if run is not None or (source, target) != ("de", "en") else earlier_de_en(results)


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])


def machine(run: dict) -> str:
    if run.get("earlier"):
        return "2-core AMD EPYC (not in the file: docs/history/multi30k.md)"
    cpu = run["cpu"]
    return f"{cpu['cores']}-core {cpu['model']}, fp32 {cpu['fp32_matmul_gflops']:.0f} GFLOP/s"


def training(run: dict) -> str:
    if run.get("earlier"):
        return f"{run['train_minutes']:.1f} min, the recipe before the pipeline (results/multi30k.json)"
    return f"{run['train_minutes']:.1f} min, {run['epochs']} epochs, {run['precision']}"


def figure(value, bold=False) -> str:
    if value is None:
        return "–"
    return f"**{value:.2f}**" if bold else f"{value:.2f}"


def multi30k_headline(results: Path) -> str:
    """README: each direction's tok-lc BLEU (the literature's convention) against the best published single model,
    and our headline sacreBLEU."""
    rows = []
    for source, target in DIRECTIONS:
        run = load_direction(results, source, target)
        published = PUBLISHED.get((source, target), {})
        if run is None:
            rows.append((f"{source}{ARROW}{target}", "not run yet", "", "", ""))
            continue
        cells = []
        for name in TEST_SETS:
            scores = run["tests"].get(name)
            if scores is None:
                cells.append("–")
                continue
            best = published.get(name)
            beats = best is not None and scores["bleu_tok_lc"] is not None and scores["bleu_tok_lc"] > best[0]
            cells.append(f"{figure(scores['bleu_tok_lc'], beats)} / {figure(scores['sacrebleu'])}")
        paper = "; ".join(f"{name[5:9]}: {score} ({who})" for name, (score, who) in published.items()) or "–"
        if (source, target) == ("de", "en") and not run.get("earlier"):
            paper = earlier_de_en_cell(results) or paper
        rows.append((f"{source}{ARROW}{target}", *cells, paper, f"{machine(run)}; {training(run)}"))
    return markdown_table(("direction", "test_2016_flickr tok-lc / sacreBLEU", "test_2017_flickr tok-lc / sacreBLEU",
                           "best published Multi30k-only single model (tok-lc BLEU)", "our machine, training"), rows)


def multi30k_details(results: Path) -> str:
    """docs/multi30k.md: every score of every direction, the val choice, the text processing and the command."""
    rows, commands = [], []
    for source, target in DIRECTIONS:
        path = results_file(results, source, target)
        run = load_direction(results, source, target)
        if run is None:
            rows.append((f"{source}{ARROW}{target}", "not run yet: `make multi30k DATA=... SRC=... TGT=...`",
                         "", "", "", "", ""))
            continue
        val = run["checkpoint"]["val_sacrebleu"]
        chosen = run["checkpoint"]["chosen"]
        for name in TEST_SETS:
            scores = run["tests"].get(name)
            if scores is None:
                continue
            processing = "moses-bpe joint" if run.get("earlier") else f"{run['prep']['text_processing']} {run['prep']['vocab']}"
            rows.append((f"{source}{ARROW}{target}", name, figure(scores["sacrebleu"]), figure(scores["chrf"]),
                         figure(scores["bleu_tok_lc"]), f"{chosen} ({figure(val.get(chosen, val.get('ensemble')))})",
                         f"{machine(run)}; {training(run)}; {processing}"))
        if not run.get("earlier"):
            when = "".join(f", {part}" for part in (run.get("date"), run.get("wall_minutes") and
                                                     f"{run['wall_minutes']:.0f} min in all") if part)
            commands.append(f"- {source}{ARROW}{target} (`{path.relative_to(results.parent)}`{when}): `{run['command']}`")
    table = markdown_table(("direction", "test set", "sacreBLEU", "chrF", "BLEU tok-lc", "checkpoint (val sacreBLEU)",
                            "machine; training; text processing"), rows)
    return table + ("\n\n" + "\n".join(commands) if commands else "")


@from_results("text_processing.json")
def text_processing(run: dict) -> str:
    """docs/pipeline.md: val sacreBLEU of each text processing in each direction after the same epochs."""
    labels = list(dict.fromkeys(label for runs in run["runs"].values() for label in runs))
    rows = []
    for name, runs in run["runs"].items():
        best = max(runs, key=lambda label: runs[label]["val_sacrebleu"])
        rows.append((name.replace("-", ARROW), *(figure(runs[label]["val_sacrebleu"], label == best) if label in runs
                                                 else "–" for label in labels)))
    cpu = run["cpu"]
    return (markdown_table(("direction", *labels), rows) +
            f"\n\nval sacreBLEU after {run['epochs']} epochs ({run['precision']}) on a {cpu['cores']}-core "
            f"{cpu['model']} (fp32 {cpu['fp32_matmul_gflops']:.0f} GFLOP/s): `{run['command']}`. "
            + ("Wins: " + ", ".join(f"{label} {count}" for label, count in run["wins"].items()) + "." if "wins" in run
               else "The run has not finished every direction yet: no winner counted."))


@functools.lru_cache(maxsize=None)
def benchmark_module(name: str, relative: str):
    """A benchmark script loaded by its path (benchmarks/ is not a package), once, for the functions its tables and
    warnings share with it: one function serves the script and the generated docs."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def peers_harness():
    """benchmarks/peers/harness.py, whose tables these are (docs/peers.md, the peers' scripts and this)."""
    return benchmark_module("peers_harness", "benchmarks/peers/harness.py")


@from_results("peers.json")
def peers(run: dict) -> str:
    """README: the three toolkits side by side, from results/peers.json, with the harness's own table and target
    lines."""
    harness = peers_harness()
    cpu = run["cpu"]
    return (f"{cpu_phrase(cpu, cpu.get('fp32_matmul_gflops'))}:\n\n" + harness.results_table(run) + "\n\n"
            + peers_comparison(harness.targets(run)) + ".")


@from_results("peers_profile.json")
def peers_profile(run: dict) -> str:
    """docs/peers.md: what bounds each toolkit's matched-size speeds, from results/peers_profile.json."""
    cpu = run["cpu"]
    return (peers_harness().profile_table(run) + f"\n\n{run['steps']} training steps after the warm-up, and the whole "
            f"beam-5 translation of test_2016_flickr, of each toolkit's matched-size `general` run, on a "
            f"{cpu_phrase(cpu, cpu.get('fp32_matmul_gflops'))}: `{run['command']}`, after the `make peers` run above "
            "(peers_work/). In brackets: the fp32 matmul peak of the toolkit's own torch, measured in its process.")


def peers_comparison(measured: dict) -> str:
    """fairseq-attn-gru against the faster (better) peer, from harness.targets' values: the figures alone."""
    names = {"train_tok_s_vs_faster_peer": "training tok/s against the faster peer",
             "beam5_sent_s_vs_faster_peer": "beam-5 sent/s against the faster peer",
             "test_2016_flickr_sacrebleu_over_better_peer": "test_2016_flickr sacreBLEU over the better peer"}
    parts = []
    for key, name in names.items():
        value = measured.get(key, {}).get("value")
        shown = "–" if value is None else (f"{value:+.2f}" if key.startswith("test") else f"{value:.2f}×")
        parts.append(f"{name}: {shown}")
    return "fairseq-attn-gru's " + "; ".join(parts)


# -- make demo (results/demo.json, scripts/demo.py --results) ---------------------------------------------------


def cpu_phrase(cpu: dict, fp32_gflops=None) -> str:
    """'2-core AMD EPYC, fp32 matmul 217 GFLOP/s': the machine a figure was measured on."""
    peak = f", fp32 matmul {fp32_gflops:.0f} GFLOP/s" if fp32_gflops else ""
    return f"{cpu['cores']}-core {cpu['model']}{peak}"


def minutes_and_seconds(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def demo_options(options: dict) -> str:
    return (f"toy `{options['rule']}` rule, vocabulary {options['vocab_size']}, lengths {options['min_len']}-"
            f"{options['max_len']}, {options['train_size']:,} training pairs, {options['epochs']} epochs, "
            f"{options['test_size']:,} test sentences, beam 5" + (", `--cpu-bf16`" if options.get("cpu_bf16") else ""))


def demo_provenance(run: dict) -> str:
    """Where, when, how and how long: the machine, the date, the command and the wall-clock time."""
    wall = (f"{minutes_and_seconds(run['wall_seconds'])} in all" if not run["reused"] else
            f"models reused from an earlier run: {', '.join(run['reused'])}")
    return (f"{cpu_phrase(run['cpu'], run['cpu'].get('fp32_matmul_gflops'))}, {run['date']}, `{run['command']}` "
            f"({wall})")


@from_results("demo.json")
def demo(run: dict) -> str:
    """README: one line, each attention type's BLEU and exact match, with the machine and the time it took."""
    scores = ", ".join(f"{name} {r['bleu']:.2f} ({100 * r['exact_match']:.1f} %)" for name, r in run["types"].items())
    seconds = [r["train_seconds"] for r in run["types"].values()]
    return (f"BLEU (exact match) by attention: {scores}; {min(seconds):.0f}-{max(seconds):.0f} s of training each; "
            f"{demo_provenance(run)}.")


@from_results("demo.json")
def demo_details(run: dict) -> str:
    """docs/demo.md: every figure of the last `make demo`, sacreBLEU by source length too."""
    rows = [(name, f"`{r['arch']}`", f"{r['params']:,}", f"{r['train_seconds']:.1f}", f"{r['bleu']:.2f}",
             f"{r['sacrebleu']:.2f}", f"{100 * r['exact_match']:.1f}%") for name, r in run["types"].items()]
    buckets = list(dict.fromkeys(b for r in run["types"].values() for b in r["sacrebleu_by_length"]))
    by_length = [(name, *(f"{r['sacrebleu_by_length'][b]:.1f}" if b in r["sacrebleu_by_length"] else "–"
                          for b in buckets)) for name, r in run["types"].items()]
    return (f"{demo_options(run['options'])}; {demo_provenance(run)}.\n\n"
            + markdown_table(("attention", "arch", "params", "train seconds", "BLEU (fairseq-score)", "sacreBLEU",
                              "exact match"), rows)
            + "\n\nsacreBLEU by source length (words):\n\n" + markdown_table(("attention", *buckets), by_length)
            + f"\n\nsacreBLEU signature: `{run['sacrebleu_signature']}`")


# -- make bench (results/bench.json, benchmarks/bench.py --results) ---------------------------------------------

BENCH_NAMES = {"fairseq_lstm": "fairseq `lstm`", "cgru": "cgru (concat, `--decoder-style cgru`)",
               "nematus": "nematus (cgru + layer norm, `gru_nematus`)", "dot_bf16": "dot, `--cpu-bf16`"}
#: the README's rows: the baseline, the fastest and the slowest score, bf16
BENCH_README_ROWS = ("fairseq_lstm", "dot", "concat", "dot_bf16")


def bench_name(name: str) -> str:
    return BENCH_NAMES.get(name, name)


def number(value, digits=0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def ratio(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def bench_provenance(run: dict) -> str:
    rounds = len(run.get("sgemm_gflops_rounds", [])) or "?"
    where = run.get("device") or cpu_phrase(run["cpu"], run.get("sgemm_gflops"))
    line = (f"`make bench` on a {where}, {run.get('date', 'date not recorded')}, medians of {rounds} rounds, "
            f"{number(run.get('wall_minutes'))} min: `{run.get('command', 'python benchmarks/bench.py')}`")
    # bench.py's warning from the rounds the file keeps, worded as bench.py words it now (not the file's copy)
    warning = benchmark_module("bench", "benchmarks/bench.py").noise_warning(run)
    return line + (f". {warning}" if warning else "")


@from_results("bench.json")
def bench(run: dict) -> str:
    """README: training and beam-5 speed against fairseq's lstm, a few rows."""
    models = run["models"]
    rows = [(bench_name(name), number(models[name]["train_tok_s"]), ratio(models[name].get("train_ratio_vs_lstm")),
             number(models[name]["beam5_sent_s"], 1), ratio(models[name].get("beam5_ratio_vs_lstm")))
            for name in BENCH_README_ROWS if name in models]
    return (markdown_table(("model", "train tok/s", "vs lstm", "beam-5 sent/s", "vs lstm"), rows)
            + f"\n\n{bench_provenance(run)}.")


@from_results("bench.json")
def bench_details(run: dict) -> str:
    """docs/speed.md: every trained row of the last `make bench`, and what --cpu-bf16 bought on that machine."""
    models = run["models"]
    rows = []
    for name, r in models.items():
        if r["train_tok_s"] is None:  # int8: decoding only, in the int8 table
            continue
        low_high = r.get("train_ratio_vs_lstm_range")
        utilisation = "–" if r["utilization"] is None else f"{100 * r['utilization']:.0f}%" + (
            " of bf16 peak" if name.endswith("_bf16") else "")
        rows.append((bench_name(name), f"{r['params']:,}", number(r["train_tok_s"]),
                     ratio(r.get("train_ratio_vs_lstm")), f"{low_high[0]:.2f}-{low_high[1]:.2f}" if low_high else "–",
                     utilisation, number(r["beam5_sent_s"], 1), ratio(r.get("beam5_ratio_vs_lstm")),
                     number(r["beam1_sent_s"], 1), number(r["peak_rss_mb"])))
    text = (f"{bench_provenance(run)}; bf16 matmul peak {number(run.get('bf16_gemm_gflops'))} GFLOP/s.\n\n"
            + markdown_table(("model", "params", "train tok/s", "vs lstm", "rounds", "FLOP utilisation",
                              "beam-5 sent/s", "vs lstm", "greedy sent/s", "peak RSS MB"), rows))
    fp32, bf16 = models.get("dot"), models.get("dot_bf16")
    if fp32 and bf16 and fp32["train_tok_s"] and bf16["train_tok_s"]:
        text += (f"\n\n`--cpu-bf16` on this machine: dot trains at {bf16['train_tok_s'] / fp32['train_tok_s']:.2f}× "
                 f"and decodes (beam 5) at {bf16['beam5_sent_s'] / fp32['beam5_sent_s']:.2f}× its fp32 speed.")
    return text


@from_results("bench.json")
def bench_int8(run: dict) -> str:
    """docs/speed.md: each int8 row against the same model in fp32, from the same run."""
    models = run["models"]
    rows = []
    for name, r in models.items():
        fp32 = models.get(name[: -len("_int8")]) if name.endswith("_int8") else None
        if fp32 is None:
            continue
        rows.append((name[: -len("_int8")], number(fp32["beam5_sent_s"], 1), number(r["beam5_sent_s"], 1),
                     f"**{ratio(r.get('beam5_ratio_vs_fp32'))}**", number(fp32["beam1_sent_s"], 1),
                     number(r["beam1_sent_s"], 1), f"**{ratio(r.get('beam1_ratio_vs_fp32'))}**",
                     number(r["peak_rss_mb"])))
    if not rows:
        return "(the last `make bench` had no int8 rows)"
    return markdown_table(("attention", "beam-5 sent/s fp32", "int8", "int8 / fp32", "greedy sent/s fp32", "int8",
                           "int8 / fp32", "int8 peak RSS MB"), rows) + "\n\nSame run: " + bench_provenance(run) + "."


# -- make install (results/install.json, benchmarks/install_time.py) -------------------------------------------


def size(mb) -> str:
    return "–" if mb is None else (f"{mb / 1000:.1f} GB" if mb >= 1000 else f"{mb:.0f} MB")


def torch_wheel(run: dict) -> str:
    """Where torch's wheel came from: the one part of the time that depends on the network."""
    wheel = run.get("torch_wheel")
    if wheel is None:
        return "torch already installed"
    if wheel["source"] == "download":
        return f"torch's {size(wheel['mb'])} wheel downloaded"
    return f"torch's {size(wheel['mb'])} wheel from a local file (a download comes on top)"


def install_provenance(run: dict) -> str:
    return (f"{cpu_phrase(run['cpu'])}, {run['date']}, commit {run['commit']}, pip's cache off, {torch_wheel(run)}: "
            f"`{run['command']}`")


@from_results("install.json")
def install(run: dict) -> str:
    """README's Quick start: how long `make install` took on a fresh clone, and where."""
    return (f"`make install` took {minutes_and_seconds(run['total_seconds'])} on a fresh clone and "
            f"{minutes_and_seconds(run['rerun_seconds'])} the second time ({install_provenance(run)}).")


@from_results("install.json")
def install_details(run: dict) -> str:
    """docs/install.md: each step's time and the disk .venv/ took."""
    # a step's title up to its first colon: the Makefile's line goes on to explain (docs/install.md does too)
    rows = [(step["number"], step["title"].split(":")[0], minutes_and_seconds(step["seconds"])) for step in run["steps"]]
    rows.append(("", "**all** (`" + run["make_command"] + "`)", f"**{minutes_and_seconds(run['total_seconds'])}**"))
    return (markdown_table(("step", "what", "time"), rows)
            + f"\n\nA second `{run['make_command']}` took {minutes_and_seconds(run['rerun_seconds'])}. Disk: `.venv/` "
            f"{size(run['venv_mb'])}, of which torch {size(run['torch_mb'])}. Measured on a {install_provenance(run)}.")


# -- the test suite (results/tests.json, `python -m pytest tests --results-json results/tests.json`) ----------------


@from_results("tests.json")
def tests(run: dict) -> str:
    """docs/tests.md: how long the whole suite took, its counts and its slowest files, with the machine."""
    counts = ", ".join(f"{run[key]} {key}" for key in ("passed", "failed", "skipped", "error") if run[key])
    slowest = ", ".join(f"`{Path(name).name}` {minutes_and_seconds(seconds)}"
                        for name, seconds in list(run["file_seconds"].items())[:6])
    machine = cpu_phrase(run["cpu"], run["cpu"].get("fp32_matmul_gflops"))
    return (f"{counts} in {minutes_and_seconds(run['seconds'])} on a {machine}, {run['date']}, commit {run['commit']}: "
            f"`{run['command']}`. The slowest files: {slowest}.")


#: marker name -> builder; flags_table.py's HOMES says which file holds each
TABLES = {"multi30k-headline": multi30k_headline, "multi30k": multi30k_details, "text-processing": text_processing,
          "peers": peers, "peers-profile": peers_profile, "demo": demo, "demo-details": demo_details, "bench": bench,
          "bench-details": bench_details, "bench-int8": bench_int8, "install": install,
          "install-details": install_details, "tests": tests}

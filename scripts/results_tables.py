"""The docs' tables of measured results, built from the results files the scripts wrote, so that no figure in README
or docs/ can differ from its file. flags_table.py puts them between ``<!-- results:NAME:start -->`` and
``<!-- results:NAME:end -->`` markers (``--write``) and checks them (``--check``, tests/test_docs.py).

Each builder takes the results directory and returns a markdown table; a missing results file gives a line saying
which command writes it. The published figures (PUBLISHED) are the papers', not ours: each names its paper and its
scoring convention.
"""
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


def earlier_de_en(results: Path):
    """results/multi30k.json, the German->English run of the recipe before the pipeline (sacreBLEU only, no machine
    recorded), in the pipeline's layout; None when the file is absent."""
    run = load(results / "multi30k.json")
    if run is None:
        return None
    tests = {name: {"sacrebleu": run[name]["sacrebleu"], "chrf": None, "bleu_tok_lc": None} for name in TEST_SETS}
    return {"tests": tests, "earlier": True, "train_minutes": run["train_minutes"], "checkpoint": run["checkpoint"]}


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
        paper = "; ".join(f"{name[5:9]}: {score} ({who})" for name, (score, who) in published.items()) or \
            "– (this project's earlier recipe: 43.50 / 38.33 sacreBLEU)"
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
            commands.append(f"- {source}{ARROW}{target} (`{path.relative_to(results.parent)}`): `{run['command']}`")
    table = markdown_table(("direction", "test set", "sacreBLEU", "chrF", "BLEU tok-lc", "checkpoint (val sacreBLEU)",
                            "machine; training; text processing"), rows)
    return table + ("\n\n" + "\n".join(commands) if commands else "")


def text_processing(results: Path) -> str:
    """docs/pipeline.md: val sacreBLEU of each text processing in each direction after the same epochs."""
    run = load(results / "text_processing.json")
    if run is None:
        return "(no results/text_processing.json yet: `python benchmarks/text_processing.py --data DIR --work W`)"
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


def peers(results: Path) -> str:
    """README: the three toolkits side by side, from results/peers.json, with benchmarks/peers/harness.py's own table
    and target lines (one function serves docs/peers.md and this)."""
    run = load(results / "peers.json")
    if run is None:
        return "(no results/peers.json yet: `make peers DATA=/path/to/multi30k`, about 2 h 10 min on 2 cores)"
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "peers" / "harness.py"
    spec = importlib.util.spec_from_file_location("peers_harness", path)
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    cpu = run["cpu"]
    return (f"{cpu['cores']}-core {cpu['model']}, fp32 {cpu['fp32_matmul_gflops']:.0f} GFLOP/s:\n\n"
            + harness.results_table(run) + "\n\n" + "; ".join(harness.targets_lines(run)) + ".")


#: marker name -> builder; flags_table.py's HOMES says which file holds each
TABLES = {"multi30k-headline": multi30k_headline, "multi30k": multi30k_details, "text-processing": text_processing,
          "peers": peers}

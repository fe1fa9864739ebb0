"""The README and docs/ stay true to the code and the results files: generated tables (and their builders against
tables written out by hand), size budget (with every results file filled in), links and anchors, the list of fairseq
fixes.

Fast on purpose (a few seconds): everything runs in-process except one run of the script as a user runs it. The
README's commands themselves run in test_readme.py.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_script

from fairseq_attn_gru.fairseq_fixes import FIXES, GLOBAL_FIXES_ENV

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
README_MAX_CHARS = 12_000
#: a markdown link's target and its #anchor: [text](target#anchor)
LINK = re.compile(r"\]\(([^)\s#]*)(?:#([^)\s]*))?\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


@pytest.fixture(scope="module")
def flags_table():
    return load_script("scripts/flags_table.py")


@pytest.fixture(scope="module")
def tables(flags_table):
    return flags_table.generated_tables()


@pytest.fixture(scope="module")
def readme_text():
    return README.read_text(encoding="utf-8")


def fix_name(module) -> str:
    return module.__name__.rsplit(".", 1)[1]


def local_links(markdown: str):
    """(target, anchor) of every relative link outside code blocks; target "" is the page itself. Web addresses are
    not files to check."""
    return [(target, anchor) for target, anchor in LINK.findall(FENCE.sub("", markdown))
            if not re.match(r"[a-z]+:", target)]


def local_link_targets(markdown: str):
    """Relative link targets: web addresses and same-page anchors are not files to check."""
    return [target for target, _ in local_links(markdown) if target]


def heading_anchors(markdown: str) -> set:
    """The #anchors GitHub gives a page's headings: lowercased, punctuation other than - and _ dropped, spaces to
    hyphens, a repeated heading numbered -1, -2, ..."""
    anchors, counts = set(), {}
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", FENCE.sub("", markdown), re.MULTILINE):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
        slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
        anchors.add(slug if slug not in counts else f"{slug}-{counts[slug]}")
        counts[slug] = counts.get(slug, 0) + 1
    return anchors


# -- generated tables -----------------------------------------------------------------------------------------

def home_texts(flags_table):
    """{relative path: text} of every file holding a generated table."""
    return {relative: (REPO / relative).read_text(encoding="utf-8") for relative in set(flags_table.HOMES.values())}


def copy_homes(flags_table, root, edit=lambda relative, text: text):
    for relative, text in home_texts(flags_table).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(edit(relative, text), encoding="utf-8")


def test_tables_match_the_configs(flags_table, tables):
    for relative, file_tables in flags_table.tables_by_file(tables).items():
        stale = flags_table.stale_tables((REPO / relative).read_text(encoding="utf-8"), file_tables)
        assert not stale, f"{relative}: tables {stale} differ from the configs: run `python scripts/flags_table.py --write`"


def test_every_flag_of_every_config_is_in_its_table(flags_table):
    """Guards the generator itself: a field it skipped would pass the comparison above."""
    model_config, toy_config, schedule_config = flags_table.import_configs()
    for config_class, name in ((model_config.GRUAttnConfig, "gru_attn"), (toy_config, "toy_translation"),
                               (schedule_config, "inverse_sqrt_plateau")):
        text = (REPO / flags_table.HOMES[name]).read_text(encoding="utf-8")
        for flag, _, _ in flags_table.flag_rows(config_class):
            assert f"| `{flag}` |" in text, flag
    schedule_flags = [flag for flag, _, _ in flags_table.flag_rows(schedule_config)]
    # --lr, --maximize-best-checkpoint-metric, --stop-time-hours and --max-update are fairseq's flags, which the
    # schedule only reads
    assert schedule_flags == ["--warmup-updates", "--warmup-init-lr", "--lr-shrink", "--lr-patience",
                              "--lr-decay-fraction"]


def test_check_exits_1_with_one_line_when_a_table_is_stale(flags_table, tmp_path, capsys):
    copy_homes(flags_table, tmp_path, lambda relative, text: text.replace("| `--encoder-layers` | 1 |",
                                                                          "| `--encoder-layers` | 7 |"))
    assert flags_table.main(["--check", "--root", str(tmp_path)]) == 1
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and "gru_attn" in message and "--write" in message


def test_write_restores_emptied_tables(flags_table, tables, tmp_path):
    def empty(relative, text):
        for name in tables:
            if flags_table.HOMES[name] == relative:
                text = flags_table.replace_table(text, name, "")
        return text

    copy_homes(flags_table, tmp_path, empty)
    assert flags_table.main(["--write", "--root", str(tmp_path)]) == 0
    for relative, text in home_texts(flags_table).items():
        assert (tmp_path / relative).read_text(encoding="utf-8") == text


def test_a_file_without_markers_is_an_error_not_a_silent_pass(flags_table, tmp_path):
    copy_homes(flags_table, tmp_path, lambda relative, text: "# no tables here\n")
    assert flags_table.main(["--check", "--root", str(tmp_path)]) == 2


def test_the_script_runs_as_users_run_it():
    result = subprocess.run(
        [sys.executable, "scripts/flags_table.py", "--check"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


# -- size and links -----------------------------------------------------------------------------------------

def test_readme_is_a_short_guide(readme_text):
    assert len(readme_text) <= README_MAX_CHARS, (
        f"README.md has {len(readme_text)} characters (limit {README_MAX_CHARS}): move detail to docs/"
    )


def test_docs_links_in_readme_point_at_files(readme_text):
    targets = [t for t in local_link_targets(readme_text) if t.startswith("docs/")]
    assert targets, "README.md links to no docs/ page"


def test_every_docs_page_is_linked_from_readme(readme_text):
    """A page nobody links to is lost text."""
    linked = set(local_link_targets(readme_text))
    orphans = [p.name for p in DOCS.glob("*.md") if f"docs/{p.name}" not in linked]
    assert not orphans, f"docs pages not linked from README.md: {orphans}"


def test_the_heading_anchors_are_githubs():
    page = "# Speed\n## `--cpu-bf16`\n## `make bench`: fairseq's `lstm`, 2× [faster](x.md)\n```\n# not a heading\n```\n## Speed\n"
    assert heading_anchors(page) == {"speed", "--cpu-bf16", "make-bench-fairseqs-lstm-2-faster", "speed-1"}


MARKDOWN_PAGES = ["README.md", *sorted(str(p.relative_to(REPO)) for p in DOCS.rglob("*.md"))]


@pytest.mark.parametrize("page", MARKDOWN_PAGES)
def test_relative_links_resolve_to_files_and_headings(page):
    """Every relative link of README.md and docs/**/*.md names an existing file and, with an #anchor into a markdown
    page, one of that page's headings."""
    path = REPO / page
    broken = []
    for target, anchor in local_links(path.read_text(encoding="utf-8")):
        linked = (path.parent / target).resolve() if target else path
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in heading_anchors(linked.read_text(encoding="utf-8")):
            broken.append(f"{target}#{anchor} (no such heading)")
    assert not broken, f"{page}: broken links: {broken}"


# -- fairseq fixes ----------------------------------------------------------------------------------------

def test_readme_names_every_global_fix_and_the_switch(readme_text):
    """Global fixes change fairseq for every model, so users must be able to see all of them in the README."""
    missing = [fix_name(fix) for fix in FIXES if fix.SCOPE == "global" and f"`{fix_name(fix)}`" not in readme_text]
    assert not missing, f"global fixes missing from README.md: {missing}"
    assert f"{GLOBAL_FIXES_ENV}=0" in readme_text


def test_fixes_page_lists_every_fix_with_its_scope():
    text = (DOCS / "fairseq_fixes.md").read_text(encoding="utf-8")
    for fix in FIXES:
        name = fix_name(fix)
        row = re.search(rf"^\| \[`{name}`\]\(#{name}\) \| (\w+) \|", text, re.MULTILINE)
        assert row, f"docs/fairseq_fixes.md has no table row for {name}"
        assert row.group(1) == fix.SCOPE, f"{name}: docs say {row.group(1)}, the module says {fix.SCOPE}"
        assert re.search(rf"^### {name}$", text, re.MULTILINE), f"docs/fairseq_fixes.md has no section for {name}"


# -- results tables: the builders against tables written out by hand, and the README once every file is filled ------

def made_up_demo():
    type_run = lambda arch, params, seconds, bleu, exact: {  # noqa: E731
        "arch": arch, "params": params, "train_seconds": seconds, "bleu": bleu, "sacrebleu": bleu,
        "exact_match": exact, "sacrebleu_by_length": {"3-8": bleu + 0.04, "9-14": bleu - 1}}
    return {"command": "python scripts/demo.py --out-dir demo_out --results results/demo.json", "date": "2026-12-04",
            "cpu": {"model": "Test CPU", "cores": 2, "flags": [], "fp32_matmul_gflops": 216.6,
                    "bf16_matmul_gflops": 880.0},
            "options": {"rule": "translate", "vocab_size": 100, "min_len": 3, "max_len": 30, "train_size": 12000,
                        "test_size": 500, "epochs": 18, "seed": 1, "lr": 0.003, "clip_norm": 5.0, "cpu_bf16": False},
            "wall_seconds": 644.4, "reused": [], "sacrebleu_signature": "nrefs:1|tok:13a",
            "types": {"none": type_run("gru_seq2seq", 633320, 133.5, 2.42, 0.01),
                      "dot": type_run("gru_attn_dot", 666088, 144.14, 99.394, 0.972)}}


def made_up_bench():
    model = lambda tok_s, ratio, beam5, beam5_ratio, **more: {  # noqa: E731
        "params": 12460784, "train_tok_s": tok_s, "utilization": 0.781 if tok_s else None, "beam5_sent_s": beam5,
        "beam1_sent_s": 2 * beam5, "peak_rss_mb": 1233.4, "train_ratio_vs_lstm": ratio,
        **({"train_ratio_vs_lstm_range": [ratio - 0.02, ratio + 0.03]} if tok_s else {}),
        "beam5_ratio_vs_lstm": beam5_ratio, **more}
    return {"cpu": {"model": "Test CPU", "cores": 2, "flags": ["avx2"]}, "recipe_env": False, "sgemm_gflops": 221.96,
            "bf16_gemm_gflops": 883.0, "sgemm_gflops_rounds": [220.0, 222.0, 221.9], "bf16_gemm_gflops_rounds": [883.0],
            "models": {"fairseq_lstm": model(1490.0, 1.0, 35.0, 1.0), "dot": model(2638.3, 1.77, 113.3, 3.24),
                       "dot_bf16": model(6286.0, 4.22, 232.8, 6.66),
                       "dot_int8": model(None, None, 294.1, 8.4, beam5_ratio_vs_fp32=2.6, beam1_ratio_vs_fp32=2.5)},
            "noise_warning": None, "command": "python benchmarks/bench.py --out-dir bench_out --results results/bench.json",
            "date": "2026-12-04", "wall_minutes": 12.3}


def write_results(root: Path, **files) -> Path:
    results = root / "results"
    results.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (results / f"{name}.json").write_text(json.dumps(content), encoding="utf-8")
    return results


@pytest.fixture(scope="module")
def results_tables():
    return load_script("scripts/results_tables.py")


def test_demo_tables_from_a_made_up_results_file(results_tables, tmp_path):
    results = write_results(tmp_path, demo=made_up_demo())
    provenance = ("toy `translate` rule, vocabulary 100, lengths 3-30, 12,000 training pairs, 18 epochs, 500 test "
                  "sentences, beam 5; 2-core Test CPU, fp32 matmul 217 GFLOP/s, 2026-12-04, `python scripts/demo.py "
                  "--out-dir demo_out --results results/demo.json` (10 min 44 s in all)")
    assert results_tables.demo(results) == (
        "BLEU (exact match) by attention: none 2.42 (1.0 %), dot 99.39 (97.2 %); 134-144 s of training each; "
        + provenance.split("; ", 1)[1] + ".")
    assert results_tables.demo_details(results) == f"""{provenance}.

| attention | arch | params | train seconds | BLEU (fairseq-score) | sacreBLEU | exact match |
|---|---|---|---|---|---|---|
| none | `gru_seq2seq` | 633,320 | 133.5 | 2.42 | 2.42 | 1.0% |
| dot | `gru_attn_dot` | 666,088 | 144.1 | 99.39 | 99.39 | 97.2% |

sacreBLEU by source length (words):

| attention | 3-8 | 9-14 |
|---|---|---|
| none | 2.5 | 1.4 |
| dot | 99.4 | 98.4 |

sacreBLEU signature: `nrefs:1|tok:13a`"""
    reused = {**made_up_demo(), "reused": ["none"]}
    assert "(models reused from an earlier run: none)" in results_tables.demo(write_results(tmp_path, demo=reused))


def test_bench_tables_from_a_made_up_results_file(results_tables, tmp_path):
    results = write_results(tmp_path, bench=made_up_bench())
    provenance = ("`make bench` on a 2-core Test CPU, fp32 matmul 222 GFLOP/s, 2026-12-04, medians of 3 rounds, 12 min: "
                  "`python benchmarks/bench.py --out-dir bench_out --results results/bench.json`")
    assert results_tables.bench(results) == f"""| model | train tok/s | vs lstm | beam-5 sent/s | vs lstm |
|---|---|---|---|---|
| fairseq `lstm` | 1,490 | 1.00 | 35.0 | 1.00 |
| dot | 2,638 | 1.77 | 113.3 | 3.24 |
| dot, `--cpu-bf16` | 6,286 | 4.22 | 232.8 | 6.66 |

{provenance}."""
    assert results_tables.bench_details(results) == f"""{provenance}; bf16 matmul peak 883 GFLOP/s.

| model | params | train tok/s | vs lstm | rounds | FLOP utilisation | beam-5 sent/s | vs lstm | greedy sent/s | peak RSS MB |
|---|---|---|---|---|---|---|---|---|---|
| fairseq `lstm` | 12,460,784 | 1,490 | 1.00 | 0.98-1.03 | 78% | 35.0 | 1.00 | 70.0 | 1,233 |
| dot | 12,460,784 | 2,638 | 1.77 | 1.75-1.80 | 78% | 113.3 | 3.24 | 226.6 | 1,233 |
| dot, `--cpu-bf16` | 12,460,784 | 6,286 | 4.22 | 4.20-4.25 | 78% of bf16 peak | 232.8 | 6.66 | 465.6 | 1,233 |

`--cpu-bf16` on this machine: dot trains at 2.38× and decodes (beam 5) at 2.05× its fp32 speed."""
    assert results_tables.bench_int8(results) == f"""\
| attention | beam-5 sent/s fp32 | int8 | int8 / fp32 | greedy sent/s fp32 | int8 | int8 / fp32 | int8 peak RSS MB |
|---|---|---|---|---|---|---|---|
| dot | 113.3 | 294.1 | **2.60** | 226.6 | 588.2 | **2.50** | 1,233 |

Same run: {provenance}."""
    # the warning comes from the rounds the file keeps (bench.py's test), not from the file's copy of its wording
    noisy = {**made_up_bench(), "sgemm_gflops_rounds": [150.0, 222.0, 221.9], "noise_warning": "stale wording"}
    assert results_tables.bench(write_results(tmp_path, bench=noisy)).endswith(
        ". warning: the rounds disagree by more than 10 % (fp32 matmul peak 150-222): the host's speed varied between "
        "rounds; quote each ratio with its range.")


def test_each_results_table_says_which_command_fills_it_before_it_has_run(results_tables, tmp_path):
    results = write_results(tmp_path)
    assert results_tables.demo(results) == "(no results/demo.json yet: `make demo`, about 11-20 min on 2 cores)"
    assert results_tables.install(results) == ("(no results/install.json yet: `python benchmarks/install_time.py`, "
                                               "about 5 min on 2 cores)")
    multi30k = {"multi30k-headline", "multi30k"}  # a row per direction instead
    for name, builder in results_tables.TABLES.items():
        if name not in multi30k:
            assert builder(results).startswith("(no results/") and " yet: `" in builder(results), name


def test_the_peers_profile_table_against_one_written_out_by_hand(results_tables, tmp_path):
    reading = {"wall_seconds": 20.0, "product_share": 0.61, "product_gflop_s": 118.4, "product_mflop_per_token": 48.7,
               "outside_ops_seconds": 3.0, "torch": "2.2.2+cu121", "fp32_matmul_gflops": 141.2,
               "other_ops": [{"op": "aten::add_", "seconds": 1.0, "calls": 50}]}
    run = {"cpu": {"model": "Test CPU", "cores": 2, "fp32_matmul_gflops": 150.2}, "steps": 20,
           "command": "python benchmarks/peers/speed_profile.py", "opennmt_py": {"train": reading}}
    assert results_tables.peers_profile(write_results(tmp_path, peers_profile=run)) == """\
| toolkit | torch (fp32 matmul peak) | run | wall s | matrix products: share, GFLOP/s | MFLOP a token | outside torch ops \
| the largest other ops |
|---|---|---|---|---|---|---|---|
| OpenNMT-py | 2.2.2+cu121 (141) | training | 20.0 | 61 %, 118 | 48.7 | 15 % | `aten::add_` 5 % |

20 training steps after the warm-up, and the whole beam-5 translation of test_2016_flickr, of each toolkit's \
matched-size `general` run, on a 2-core Test CPU, fp32 matmul 150 GFLOP/s: `python benchmarks/peers/speed_profile.py`, \
after the `make peers` run above (peers_work/). In brackets: the fp32 matmul peak of the toolkit's own torch, \
measured in its process."""


def made_up_install():
    return {"date": "2026-12-04", "cpu": {"model": "Test CPU", "cores": 2, "flags": []}, "commit": "abc1234",
            "make_command": "make install", "total_seconds": 216.4, "rerun_seconds": 0.3,
            "steps": [{"number": 1, "title": "checking prerequisites", "seconds": 1.2},
                      {"number": 5, "title": "fairseq-fixed==0.12.3.1: compiles", "seconds": 153.0}],
            "torch_wheel": {"source": "local file", "mb": 192.4}, "venv_mb": 1432.0, "torch_mb": 754.2,
            "command": "python benchmarks/install_time.py"}


def test_the_install_tables_against_tables_written_out_by_hand(results_tables, tmp_path):
    results = write_results(tmp_path, install=made_up_install())
    provenance = ("2-core Test CPU, 2026-12-04, commit abc1234, pip's cache off, torch's 192 MB wheel from a local file "
                  "(a download comes on top): `python benchmarks/install_time.py`")
    assert results_tables.install(results) == (
        f"`make install` took 3 min 36 s on a fresh clone and 0 s the second time ({provenance}).")
    assert results_tables.install_details(results) == f"""| step | what | time |
|---|---|---|
| 1 | checking prerequisites | 1 s |
| 5 | fairseq-fixed==0.12.3.1 | 2 min 33 s |
|  | **all** (`make install`) | **3 min 36 s** |

A second `make install` took 0 s. Disk: `.venv/` 1.4 GB, of which torch 754 MB. Measured on a {provenance}."""
    downloaded = {**made_up_install(), "torch_wheel": {"source": "download", "mb": 192.4}}
    assert "torch's 192 MB wheel downloaded: " in results_tables.install(write_results(tmp_path, install=downloaded))


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "two pytest-xdist workers"])
def test_the_suites_own_record_against_a_run_of_two_tests(results_tables, tmp_path, workers):
    """`--results-json` (tests/conftest.py) through a real pytest run of one passing and one skipping test, then the
    docs line built from it; with `make test`'s workers, the controller alone writes it, with every worker's
    reports."""
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text())
    (tests / "test_two.py").write_text("import pytest, time\n\ndef test_one():\n    time.sleep(0.3)\n\n"
                                      "def test_two():\n    pytest.skip('no')\n")
    record = tmp_path / "results" / "tests.json"
    options = ["-q", "-p", "no:cacheprovider", *workers, "tests", "--results-json", str(record)]
    done = subprocess.run([sys.executable, "-m", "pytest", *options], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    run = json.loads(record.read_text())
    assert (run["passed"], run["skipped"], run["failed"], run["error"]) == (1, 1, 0, 0)
    assert run["seconds"] >= 0.3 and run["file_seconds"]["tests/test_two.py"] >= 0.3
    assert run["command"] == " ".join(["python -m pytest", *options])
    assert run["cpu"]["fp32_matmul_gflops"] > 0
    line = results_tables.tests(record.parent)
    assert line.startswith(f"1 passed, 1 skipped in {run['seconds']:.0f} s on a {run['cpu']['cores']}-core ")
    assert line.endswith(f"`{run['command']}`. The slowest files: `test_two.py` 0 s.")


#: /proc/cpuinfo's model name on a cloud machine
CPU_NAME = "AMD EPYC 7R13 Processor"


def made_up_multi30k(source, target):
    scores = {"sacrebleu": 41.23, "chrf": 65.43, "bleu_tok_lc": 43.21}
    tests = {"test_2016_flickr": scores, **({"test_2017_flickr": scores} if target != "cs" else {})}
    return {"source_lang": source, "target_lang": target, "tests": tests, "epochs": 23, "precision": "bf16",
            "train_minutes": 57.9, "checkpoint": {"chosen": "checkpoint_avg5.pt", "val_sacrebleu": {
                "checkpoint_best.pt": 44.0, "checkpoint_avg5.pt": 44.5}},
            "prep": {"text_processing": "moses-bpe", "vocab": "joint"},
            "cpu": {"model": CPU_NAME, "cores": 2, "fp32_matmul_gflops": 216.6},
            "command": f"fairseq-attn-gru run --source-lang {source} --target-lang {target} --data /data/multi30k "
                       f"--work multi30k_work/{source}-{target} --results results/multi30k_{source}-{target}.json "
                       "--minutes 58"}


def test_multi30k_headline_against_a_table_written_out_by_hand(results_tables, tmp_path):
    """Bold only where tok-lc BLEU is above the published single model; no 2017 test set for Czech."""
    multi30k = {f"multi30k_{s}-{t}": made_up_multi30k(s, t) for s, t in results_tables.DIRECTIONS}
    machine = f"2-core {CPU_NAME}, fp32 217 GFLOP/s; 57.9 min, 23 epochs, bf16"
    assert results_tables.multi30k_headline(write_results(tmp_path, **multi30k)) == f"""\
| direction | test_2016_flickr tok-lc / sacreBLEU | test_2017_flickr tok-lc / sacreBLEU | \
best published Multi30k-only single model (tok-lc BLEU) | our machine, training |
|---|---|---|---|---|
| de→en | 43.21 / 41.23 | 43.21 / 41.23 | – | {machine} |
| en→de | **43.21** / 41.23 | **43.21** / 41.23 | 2016: 41.02 (Transformer-Tiny, Wu et al. 2021); \
2017: 33.2 (LIUM-CVC NMT, WMT17 Findings) | {machine} |
| en→fr | 43.21 / 41.23 | 43.21 / 41.23 | 2016: 61.4 (Marian, MeMAD at WMT18); 2017: 54.0 (Marian, MeMAD at WMT18) \
| {machine} |
| en→cs | **43.21** / 41.23 | – | 2016: 30.9 (Transformer, Libovický et al. WMT18) | {machine} |"""


def test_the_de_en_row_names_the_earlier_recipes_scores_beside_the_pipelines(results_tables, tmp_path):
    """No paper has a Multi30k-only de->en row: the reference is this project's earlier run, labelled sacreBLEU."""
    earlier = {"train_minutes": 57.74, "checkpoint": {"chosen": "checkpoint_avg5.pt", "val_sacrebleu": {}},
               "test_2016_flickr": {"sacrebleu": 43.5}, "test_2017_flickr": {"sacrebleu": 38.33}}
    results = write_results(tmp_path, **{"multi30k_de-en": made_up_multi30k("de", "en"), "multi30k": earlier})
    row = results_tables.multi30k_headline(results).splitlines()[2]
    assert row.startswith("| de→en | 43.21 / 41.23 | 43.21 / 41.23 | none published; this project's earlier recipe: "
                          "sacreBLEU 43.50 / 38.33 (results/multi30k.json) | "), row
    (results / "multi30k_de-en.json").unlink()  # only the earlier run: its own row, no reference beside it
    row = results_tables.multi30k_headline(results).splitlines()[2]
    assert row.startswith("| de→en | – / 43.50 | – / 38.33 | – | "), row


def made_up_peers():
    entry = lambda tok_s, beam, bleu: {  # noqa: E731
        "version": "2.3.0", "matched": {"train_tok_s": tok_s, "beam5_sent_s": beam, "greedy_sent_s": beam * 2,
                                        "peak_rss_mb": 1234.0},
        "budget": {"test_2016_flickr_sacrebleu": bleu, "test_2017_flickr_sacrebleu": bleu - 5}}
    return {"cpu": {"model": CPU_NAME, "cores": 2, "fp32_matmul_gflops": 216.6},
            "settings": {"budget_minutes": 20, "direction": "de-en"},
            "fairseq_attn_gru": entry(3456.0, 123.4, 38.12), "joeynmt": entry(1234.0, 45.6, 30.12),
            "opennmt_py": entry(2345.0, 67.8, 37.12)}


def test_the_readme_stays_within_its_budget_once_every_results_file_is_filled(flags_table, results_tables,
                                                                               readme_text, tmp_path):
    """The tables grow when the runs fill them: the README must have room for that now, not after the runs.
    Made-up results with a CPU name of the usual length."""
    demo = {**made_up_demo(), "cpu": {**made_up_demo()["cpu"], "model": CPU_NAME}}
    multi30k = {f"multi30k_{s}-{t}": made_up_multi30k(s, t) for s, t in results_tables.DIRECTIONS}
    write_results(tmp_path, demo=demo, bench=made_up_bench(), peers=made_up_peers(), install=made_up_install(),
                  **multi30k)
    tables = flags_table.generated_tables(tmp_path)
    filled = flags_table.updated_text(readme_text, flags_table.tables_by_file(tables)["README.md"])
    assert "not run yet" not in filled and "no results/" not in filled
    assert len(filled) <= README_MAX_CHARS, (
        f"README.md would have {len(filled)} characters once the results files are filled (limit {README_MAX_CHARS})")

"""The peer comparison's own code (benchmarks/peers/, docs/peers.md), without the peers installed: data conversion,
each toolkit's configuration, the measurement, reading a recorded log of each toolkit (tests/peers_logs/: trimmed
from real `make peers SMOKE=1` runs), the table, the targets, the plot, the profile readings (speed_profile.py) and the
one-line refusals."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import REPO, load_script

PEERS = REPO / "benchmarks" / "peers"
LOGS = Path(__file__).parent / "peers_logs"
sys.path.insert(0, str(PEERS))  # the harness imports its neighbours (install, measure) by name
harness = load_script("benchmarks/peers/harness.py")
measure = load_script("benchmarks/peers/measure.py")
op_profile = load_script("benchmarks/op_profile.py")


@pytest.fixture
def prep(tmp_path):
    """A minimal `fairseq-attn-gru prepare` output: subword text, a joint dictionary, prep.json, a BPE codes file."""
    prep = tmp_path / "prep"
    (prep / "text").mkdir(parents=True)
    (prep / "bin").mkdir()
    (prep / "text" / "train.de").write_text("ein Hund@@ chen\nzwei Katzen\n")
    (prep / "text" / "train.en").write_text("a pup@@ py\ntwo cats\n")
    (prep / "text" / "valid.de").write_text("ein Hund\n")
    (prep / "text" / "valid.en").write_text("a dog\n")
    dictionary = "a 2\npup@@ 1\npy 1\ntwo 1\ncats 1\nHund@@ 1\nmadeupword0000 0\nein 2\n"
    (prep / "bin" / "dict.de.txt").write_text(dictionary)
    (prep / "bin" / "dict.en.txt").write_text(dictionary)
    (prep / "bpe.codes").write_text("#version: 0.2\n")
    (prep / "prep.json").write_text(json.dumps({"source_lang": "de", "target_lang": "en",
                                                "text_processing": "moses-bpe", "vocab": "joint",
                                                "subword_size": 100}))
    return prep


@pytest.fixture
def data(prep, tmp_path):
    tests = {"test_2016_flickr": {"de": ["Ein Hund läuft."], "en": ["A dog runs."]}}
    encode = lambda lines, lang: [f"<{lang}> " + line.lower() for line in lines]  # noqa: E731
    return harness.convert_data(prep, tests, encode, "de", "en", tmp_path / "data")


def test_conversion_gives_every_toolkit_the_same_tokens_and_vocabulary(prep, data, tmp_path):
    out = Path(data["dir"])
    for split in ("train", "valid"):
        for lang in ("de", "en"):
            assert (out / f"{split}.{lang}").read_text() == (prep / "text" / f"{split}.{lang}").read_text()
    assert (out / "test_2016_flickr.de").read_text() == "<de> ein hund läuft.\n"  # the prepared processing's own
    assert (out / "test_2016_flickr.en").read_text() == "<en> a dog runs.\n"
    assert (out / "test_2016_flickr.ref").read_text() == "A dog runs.\n"  # scored against the raw reference
    tokens = [line.split(" ")[0] for line in (prep / "bin" / "dict.en.txt").read_text().splitlines()]
    assert Path(data["vocab"]["joeynmt"]).read_text().splitlines() == tokens
    assert [line.split("\t") for line in Path(data["vocab"]["opennmt_py"]).read_text().splitlines()][:2] == \
        [["a", "2"], ["pup@@", "1"]]
    assert data["splits"] == {"train": str(out / "train"), "valid": str(out / "valid"),
                              "test_2016_flickr": str(out / "test_2016_flickr")}


def test_fairseq_dictionary_with_overwrite_flag(tmp_path):
    path = tmp_path / "dict.txt"
    path.write_text("a 3\n<unk> 1 #fairseq:overwrite\n")
    assert harness.fairseq_dictionary_tokens(path) == [("a", 3), ("<unk>", 1)]


@pytest.mark.parametrize("config", harness.MATCHED_CONFIGS)
def test_matched_configs_have_the_same_sizes(config, prep, data, tmp_path):
    sizes = harness.MATCHED
    joey = harness.joeynmt_config(config, data, tmp_path / "joey")
    encoder, decoder = joey["model"]["encoder"], joey["model"]["decoder"]
    assert (encoder["rnn_type"], decoder["rnn_type"], encoder["bidirectional"]) == ("gru", "gru", True)
    assert encoder["embeddings"]["embedding_dim"] == decoder["embeddings"]["embedding_dim"] == sizes["embed"]
    assert encoder["hidden_size"] == sizes["encoder_hidden_per_direction"]  # Joey's is per direction
    assert (decoder["hidden_size"], encoder["num_layers"], decoder["num_layers"]) == \
        (sizes["decoder_hidden"], sizes["encoder_layers"], sizes["decoder_layers"])
    assert decoder["attention"] == {"general": "luong", "bahdanau": "bahdanau"}[config]
    assert decoder["input_feeding"] is (config == "bahdanau")
    assert (joey["training"]["batch_size"], joey["training"]["batch_type"]) == (sizes["batch_tokens"], "token")
    assert joey["training"]["validation_freq"] >= harness.NEVER  # speed runs do not validate
    assert joey["data"]["src"]["level"] == "word" and joey["data"]["src"]["voc_file"] == data["vocab"]["joeynmt"]
    assert joey["use_cuda"] is False and joey["fp16"] is False

    onmt = harness.opennmt_config(config, data, tmp_path / "onmt")
    assert (onmt["encoder_type"], onmt["rnn_type"]) == ("brnn", "GRU")
    assert onmt["enc_hid_size"] == 2 * sizes["encoder_hidden_per_direction"]  # brnn splits it over the directions
    assert (onmt["dec_hid_size"], onmt["word_vec_size"]) == (sizes["decoder_hidden"], sizes["embed"])
    assert onmt["global_attention"] == {"general": "general", "bahdanau": "mlp"}[config]
    assert onmt["input_feed"] == (1 if config == "bahdanau" else 0)
    assert (onmt["batch_size"], onmt["batch_type"], onmt["optim"]) == (sizes["batch_tokens"], "tokens", "adam")
    assert onmt["data"]["corpus_1"]["path_src"] == data["splits"]["train"] + ".de"
    assert onmt["src_vocab"] == onmt["tgt_vocab"] == data["vocab"]["opennmt_py"] and onmt["gpu_ranks"] == []

    flags = harness.fairseq_matched_flags(config, prep, tmp_path / "save")
    value = lambda name: flags[flags.index(name) + 1]  # noqa: E731
    assert value("--arch") == {"general": "gru_attn_general", "bahdanau": "gru_bahdanau"}[config]
    assert (value("--encoder-embed-dim"), value("--encoder-hidden-size"), value("--decoder-hidden-size"),
            value("--max-tokens")) == (str(sizes["embed"]), str(sizes["encoder_hidden_per_direction"]),
                                       str(sizes["decoder_hidden"]), str(sizes["batch_tokens"]))
    assert "--cpu-bf16" not in flags  # fp32, as the peers

    for name, content in (("joey.yaml", joey), ("onmt.yaml", onmt)):  # YAML the peers read back unchanged
        assert yaml.safe_load(harness.write_config(tmp_path / name, content).read_text()) == content


def test_budget_configs_follow_their_sources(prep, data, tmp_path):
    joey = harness.joeynmt_config("budget", data, tmp_path / "joey")  # Joey NMT 1.5's iwslt14_deen_bpe.yaml
    decoder = joey["model"]["decoder"]
    encoder = joey["model"]["encoder"]
    assert (encoder["embeddings"]["embedding_dim"], encoder["hidden_size"], encoder["bidirectional"]) == \
        (620, 500, True)
    assert (decoder["hidden_size"], decoder["attention"], decoder["init_hidden"]) == (1000, "bahdanau", "bridge")
    assert (joey["training"]["learning_rate"], joey["training"]["batch_size"]) == (0.0002, 80)
    onmt = harness.opennmt_config("budget", data, tmp_path / "onmt")  # the published 2-layer BiLSTM 500
    assert (onmt["encoder_type"], onmt["rnn_type"], onmt["enc_layers"], onmt["enc_hid_size"]) == \
        ("brnn", "LSTM", 2, 500)
    assert (onmt["optim"], onmt["learning_rate"], onmt["batch_size"]) == ("sgd", 1.0, 64)
    flags = harness.fairseq_budget_flags(prep, tmp_path / "save", "bf16")  # the pipeline's own defaults
    assert flags[flags.index("--arch") + 1] == "gru_nematus" and "--cpu-bf16" in flags
    from fairseq_attn_gru.pipeline.train import last_value  # the value fairseq uses: the last one given

    assert last_value(flags, "--patience", None) == "-1"  # the budget ends training, not early stopping
    assert set(harness.BUDGET_SOURCES) == set(harness.TOOLKITS)


def test_measure_counts_tokens_after_warmup_and_stops_at_the_budget(tmp_path, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(measure.time, "perf_counter", lambda: clock[0])
    path = tmp_path / "m.jsonl"
    run = measure.TrainMeasure(str(path), budget_seconds=10, curve_seconds=4, tag="t")
    actions = []
    for _ in range(6):
        run.step_started()
        clock[0] += 2.0
        actions.append(run.step_done(100))
        if actions[-1] not in (None, "stop"):
            with run.paused_clock():
                clock[0] += 5.0  # saving a curve checkpoint: not training time
    # steps end at budget seconds 2, 4 (curve mark 4), 6, 8 (mark 8), 10 (stop)
    assert actions[:5] == [None, 4, None, 8, "stop"]
    event = run.finish(str(tmp_path / "final.pt"), threads=2)
    assert event["total_tokens"] == 600 and event["window_tokens"] == 300  # steps 4-6 after WARMUP_STEPS=3
    assert event["window_seconds"] == 6.0 and event["tok_s"] == 50.0  # the pauses are out of the window too
    assert event["paused"] == 10.0 and event["elapsed"] == 12.0
    assert harness.last_event(harness.measure_events(path.read_text()), "train")["tok_s"] == 50.0


#: one product of these sizes: 2·256·128·64 FLOPs
A, B = torch.randn(256, 128), torch.randn(128, 64)
PRODUCT_FLOPS = 2 * 256 * 128 * 64


def test_the_profile_summary_splits_wall_time_and_counts_product_flops():
    from torch.profiler import profile

    # products of 2.1 GFLOP in all, so that even a 2 TFLOP/s host spends over a millisecond in them: the summary
    # rounds seconds to milliseconds, and the small A·B of the other tests rounded to 0 on a fast 2-core host
    big_left, big_right = torch.randn(1024, 512), torch.randn(512, 256)
    big_flops = 2 * 1024 * 512 * 256
    bias, left, right = torch.randn(256), torch.randn(3, 8, 4), torch.randn(3, 4, 5)
    start = time.perf_counter()
    with profile(record_shapes=True) as profiler:
        for _ in range(4):
            torch.mm(big_left, big_right)
            torch.addmm(bias, big_left, big_right)
            torch.bmm(left, right)
            torch.relu(A)
    wall = time.perf_counter() - start
    reading = op_profile.summary(profiler.key_averages(group_by_input_shape=True), wall, tokens=2)
    flops = 4 * (2 * big_flops + 2 * 3 * 8 * 4 * 5)  # mm and addmm of the big product, bmm of 3 (8x4)·(4x5)
    assert reading["product_gflop"] == round(flops / 1e9, 6)
    assert reading["product_mflop_per_token"] == round(flops / 2 / 1e6, 2)
    assert 0 < reading["product_seconds"] <= reading["op_seconds"] <= wall + 0.001  # rounded to milliseconds
    assert abs(reading["outside_ops_seconds"] + reading["op_seconds"] - wall) <= 0.002
    others = {op["op"]: op["calls"] for op in reading["other_ops"]}
    assert others["aten::relu"] == 4 and not set(others) & set(op_profile.PRODUCTS)


def test_a_profiled_training_reads_the_steps_after_the_warmup_and_then_stops(tmp_path):
    path = tmp_path / "m.jsonl"
    run = measure.TrainMeasure(str(path), budget_seconds=3600, tag="p", profile_steps=2)
    actions = []
    for step in range(1, 7):
        run.step_started()
        for _ in range(step):  # step k: k products
            torch.mm(A, B)
        actions.append(run.step_done(10 * step))
        if actions[-1] == "stop":
            break
    assert actions == [None, None, None, None, "stop"]  # steps 4 and 5 profiled, then the run ends
    event = harness.last_event(harness.measure_events(path.read_text()), "profile")
    assert (event["mode"], event["tag"], event["steps"], event["tokens"]) == ("train", "p", 2, 40 + 50)
    assert event["product_gflop"] == round((4 + 5) * PRODUCT_FLOPS / 1e9, 6)
    assert event["torch"] == torch.__version__ and event["fp32_matmul_gflops"] > 0


def test_a_profiled_translation_reads_its_first_call_and_an_unprofiled_one_writes_no_profile(tmp_path):
    path = tmp_path / "m.jsonl"
    calls = measure.TimedCalls(profile=True)
    product = calls.wrap(torch.mm)
    product(A, B)
    product(A, B)  # timed, not profiled
    measure.translate_event(str(path), "beam", sentences=4, calls=calls, beam=5, threads=1, output_tokens=20)
    events = harness.measure_events(path.read_text())
    assert harness.last_event(events, "translate")["seconds"] == round(sum(calls.seconds), 3)
    profiled = harness.last_event(events, "profile")
    assert (profiled["mode"], profiled["beam"], profiled["tokens"]) == ("translate", 5, 20)
    assert profiled["product_gflop"] == round(PRODUCT_FLOPS / 1e9, 6)
    plain = measure.TimedCalls()
    plain.wrap(torch.mm)(A, B)
    measure.translate_event(str(path), "plain", sentences=1, calls=plain, beam=5, threads=1, output_tokens=3)
    events = harness.measure_events(path.read_text())
    assert harness.last_event(events, "translate", "plain") and harness.last_event(events, "profile", "plain") is None


RECORDED = {  # toolkit -> (log, what it says: our measure event (tok/s, steps, tokens in the window), the
    # median of the toolkit's own logged speed, the warnings about the run, the count of deprecation notices)
    "fairseq_attn_gru": ("fairseq_attn_gru.train.log", {"measured": (1228.3, 18, 15420), "own": 1225.9,
                                                        "params": 4735624, "warnings": [], "deprecations": 5}),
    "joeynmt": ("joeynmt.train.log", {"measured": (612.0, 13, 7898), "own": 724.0, "params": 4733952,
                                      "warnings": [],
                                      "deprecations": 1}),  # torch 2.2's notice on the scheduler's `verbose`
    "opennmt_py": ("opennmt_py.train.log", {"measured": (1442.8, 22, 19764), "own": 1459.0, "params": 4538248,
                                            # a one-layer nn.GRU given dropout: docs/peers.md
                                            "warnings": ["dropout option adds dropout after all bu"],
                                            "deprecations": 0}),
}


@pytest.mark.parametrize("toolkit", harness.TOOLKITS)
def test_recorded_logs_are_read(toolkit):
    log = (LOGS / RECORDED[toolkit][0]).read_text()
    event = harness.last_event(harness.measure_events(log), "train")
    expected = RECORDED[toolkit][1]
    assert (event["tok_s"], event["steps"], event["window_tokens"]) == expected["measured"]
    assert event["window_steps"] == event["steps"] - measure.WARMUP_STEPS
    assert harness.toolkit_log_speed(toolkit, log) == expected["own"]
    assert harness.toolkit_log_params(toolkit, log) == expected["params"]
    found = harness.log_warnings(log)
    assert [line.split("UserWarning: ")[-1][:40] for line in found["warnings"]] == expected["warnings"]
    assert len(found["deprecations"]) == expected["deprecations"]


def test_warnings_are_sorted_from_deprecations():
    log = ("2024-01-01 10:00:00,1 WARNING Some config key is unknown\n"
           "x.py:3: UserWarning:\nThe strict flag is deprecated.\n"
           "y.py:1: UserWarning: 'pin_memory' argument is set as true but no accelerator is found\n"
           "2024-01-01 10:00:01,2 WARNING Some config key is unknown\n")
    assert harness.log_warnings(log) == {"warnings": ["WARNING Some config key is unknown"],
                                         "deprecations": ["x.py:3: UserWarning: The strict flag is deprecated."]}


def sample_results():
    entry = lambda tok_s, beam, bleu: {  # noqa: E731
        "version": "1.0", "matched": {"train_tok_s": tok_s, "beam5_sent_s": beam, "greedy_sent_s": beam * 2,
                                      "peak_rss_mb": 700.0},
        "budget": {"test_2016_flickr_sacrebleu": bleu, "test_2017_flickr_sacrebleu": bleu - 5,
                   "val_curve": [{"minutes": 1, "val_sacrebleu": bleu - 10}, {"minutes": 2, "val_sacrebleu": bleu}]}}
    return {"cpu": {"model": "Test CPU", "cores": 2}, "settings": {"budget_minutes": 20, "direction": "de-en"},
            "fairseq_attn_gru": entry(3000.0, 40.0, 38.0), "joeynmt": entry(1000.0, 10.0, 30.0),
            "opennmt_py": entry(1500.0, 25.0, 37.0)}


def test_table_and_targets():
    results = sample_results()
    table = harness.results_table(results).splitlines()
    assert len(table) == 5 and "test_2016_flickr sacreBLEU (20 min)" in table[0]
    assert table[2].startswith("| fairseq-attn-gru | 1.0 | 3,000 | 40.0 | 80.0 | 700 | 38.00 | 33.00 |")
    assert table[3].startswith("| Joey NMT |") and table[4].startswith("| OpenNMT-py |")
    reached = harness.targets(results)
    assert reached["train_tok_s_vs_faster_peer"] == {"value": 2.0, "target": 1.5, "met": True}
    assert reached["beam5_sent_s_vs_faster_peer"] == {"value": 1.6, "target": 2.0, "met": False}
    assert reached["test_2016_flickr_sacrebleu_over_better_peer"] == {"value": 1.0, "target": 2.0, "met": False}
    lines = harness.targets_lines(results)
    assert lines[0] == "training tok/s vs the faster peer: 2.00× (target 1.5×: met)"
    assert lines[2] == "test_2016_flickr sacreBLEU over the better peer: +1.00 (target +2.0: missed)"
    del results["joeynmt"]["matched"]["train_tok_s"]
    assert harness.targets(results)["train_tok_s_vs_faster_peer"]["value"] == 2.0  # a missing figure is skipped


def test_the_output_length_line_puts_beam_speed_per_output_token():
    results = sample_results()
    results["settings"]["matched_minutes"] = 3.0
    for toolkit, tokens in (("fairseq_attn_gru", 2000), ("joeynmt", 1000), ("opennmt_py", 800)):
        results[toolkit]["matched"].update(beam5_output_tokens=tokens, translate_sentences=100)
    line = harness.output_length_line(results)
    # 40 sent/s × 20 tokens, 10 × 10, 25 × 8: 800 against the faster peer's 200
    assert line.endswith("beam-5 output tokens a sentence: fairseq-attn-gru 20.0, Joey NMT 10.0, OpenNMT-py 8.0; "
                         "beam-5 output tokens/s: fairseq-attn-gru 800, Joey NMT 100, OpenNMT-py 200 (4.00× the "
                         "faster peer).")
    assert line.startswith("The matched models, trained 3 minutes,")
    assert line in harness.docs_section(results)
    for toolkit in ("joeynmt", "opennmt_py"):
        del results[toolkit]["matched"]["beam5_output_tokens"]  # a run from before the lengths were kept
    assert harness.output_length_line(results) is None and "output tokens/s" not in harness.docs_section(results)


def test_profile_table():
    reading = lambda share, outside: {  # noqa: E731
        "wall_seconds": 10.0, "product_share": share, "product_gflop_s": 120.0, "product_mflop_per_token": 45.3,
        "outside_ops_seconds": outside, "torch": "2.13.0", "fp32_matmul_gflops": 150.4,
        "other_ops": [{"op": "aten::tanh", "seconds": 1.0, "calls": 9}, {"op": "aten::copy_", "seconds": 0.5,
                                                                          "calls": 3}]}
    profiled = {"fairseq_attn_gru": {"train": reading(0.7, 1.0), "translate": reading(0.3, 4.0)},
                "opennmt_py": {"train": reading(0.8, 0.5)}}
    rows = harness.profile_table(profiled).splitlines()
    assert len(rows) == 5
    assert rows[2] == ("| fairseq-attn-gru | 2.13.0 (150) | training | 10.0 | 70 %, 120 | 45.3 | 10 % | "
                       "`aten::tanh` 10 %, `aten::copy_` 5 % |")
    assert rows[3].startswith("| fairseq-attn-gru | 2.13.0 (150) | beam 5 | 10.0 | 30 %, 120 | 45.3 | 40 % |")
    assert rows[4].startswith("| OpenNMT-py |")


def test_profile_needs_a_finished_run_and_says_so_in_one_line(tmp_path):
    def profile(*arguments):
        return subprocess.run([sys.executable, str(PEERS / "speed_profile.py"), "--work", str(tmp_path / "work"),
                               *arguments], capture_output=True, text=True, cwd=REPO)

    missing = tmp_path / "none.json"
    result = profile("--peers", str(missing))
    assert result.returncode == 2 and result.stderr.strip() == \
        f"error: --peers {str(missing)!r} does not exist: run `make peers` to the end first"
    peers = sample_results()
    for toolkit in harness.TOOLKITS:
        peers[toolkit]["matched"].update(train_setting={"threads": 2}, translate_threads=2)
    (tmp_path / "peers.json").write_text(json.dumps(peers))
    result = profile("--peers", str(tmp_path / "peers.json"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: {tmp_path / 'work' / 'data' / 'test_2016_flickr.de'} is missing")
    result = profile("--steps", "0")
    assert result.returncode == 2 and result.stderr.strip() == \
        "error: --steps=0 is not allowed: a positive number of training steps"


def test_docs_section_is_written_between_its_markers(tmp_path):
    results = sample_results()
    results["command"] = "python benchmarks/peers/compare.py --data DIR"
    results["opennmt_py"]["matched"].update(train_setting={"threads": 1, "num_workers": 0}, tok_s_by_setting=[
        {"threads": 1, "num_workers": 0, "tok_s": 1500.0}, {"threads": 2, "num_workers": 2, "tok_s": 900.0}])
    results["opennmt_py"]["install"] = {"install_seconds": 164.2, "venv_mb": 5505.4}
    page = tmp_path / "peers.md"
    page.write_text(f"# Peers\n\n{harness.DOCS_START}\nold\n{harness.DOCS_END}\nafter\n")
    assert harness.update_docs(results, page)
    text = page.read_text()
    assert text.startswith("# Peers\n\n<!-- peers:start -->\nFrom `results/peers.json`") and "old" not in text
    assert text.endswith("<!-- peers:end -->\nafter\n")
    assert "on Test CPU, 2 cores" in text and "python benchmarks/peers/compare.py --data DIR" in text
    assert harness.results_table(results) in text
    assert "| 1 thread, num_workers 0 (1 thread, num_workers 0: 1,500, 2 threads, num_workers 2: 900) |" in text
    assert "164 s, 5,505 MB" in text and "this project's `.venv/`" in text
    assert not harness.update_docs(results, tmp_path / "missing.md")


def test_plot(tmp_path):
    png = harness.plot_curves(sample_results(), tmp_path / "peers.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert harness.plot_curves({"settings": {}}, tmp_path / "none.png") is None


def run_compare(*arguments):
    return subprocess.run([sys.executable, str(PEERS / "compare.py"), *arguments], capture_output=True, text=True,
                          cwd=REPO)


def test_bad_data_path_is_one_line(tmp_path):
    result = run_compare("--data", str(tmp_path / "nowhere"), "--work", str(tmp_path / "w"))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "is not a directory" in result.stderr and "nowhere" in result.stderr
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "train.de").write_text("x\n")
    result = run_compare("--data", str(tmp_path / "partial"), "--work", str(tmp_path / "w"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "lacks train.en" in result.stderr


def test_bad_minutes_and_unknown_peer_are_one_line(tmp_path):
    result = run_compare("--data", str(tmp_path), "--minutes", "0")
    assert result.returncode == 2 and result.stderr.strip() == \
        "error: --minutes=0.0 is not allowed: a positive number of minutes"
    result = subprocess.run([sys.executable, str(PEERS / "install.py"), "--peers", "marian"], capture_output=True,
                            text=True)
    assert result.returncode == 2 and result.stderr.strip() == \
        "error: --peers='marian' is not allowed: a comma-separated list of joeynmt, opennmt_py"


def test_make_peers_without_data_is_one_line():
    result = subprocess.run(["make", "-s", "peers", "DATA=", "STAMP="], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith("error: DATA is not set: make peers DATA=")  # then make's own

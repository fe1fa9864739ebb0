"""The Multi30k recipe (scripts/multi30k/) on slices of the real data: prepare, train, evaluate, results json.

Skipped when ../shared/data/multi30k is absent. The scripts run as subprocesses, like a person runs them;
OMP_NUM_THREADS=1 because the tiny models here only lose time to thread synchronisation.
"""
import importlib
import json
import os
import shutil

import pytest

from conftest import REPO, SHARED, USER_DIR, run_cli
from fairseq.data import Dictionary, data_utils
from fairseq_attn_gru.recipes.scoring import parse_generate_output

DATA = SHARED / "data" / "multi30k"
SCRIPTS = REPO / "scripts" / "multi30k"
LIMIT = 200
TINY_MODEL = ["--encoder-embed-dim", "16", "--encoder-hidden-size", "16", "--encoder-layers", "1",
              "--decoder-embed-dim", "16", "--decoder-hidden-size", "32", "--decoder-layers", "1",
              "--decoder-out-embed-dim", "16"]

pytestmark = [pytest.mark.shared,
              pytest.mark.skipif(not DATA.is_dir(), reason=f"needs the raw Multi30k files in {DATA}")]


def run_script(name, *args, check=True):
    return run_cli(SCRIPTS / name, *args, check=check, timeout=300, env={"OMP_NUM_THREADS": "1"})


def load_text_module():
    return importlib.import_module("fairseq_attn_gru.recipes.multi30k.text")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A run.py working directory whose prep/ holds prepare.py's output for the first 200 lines of every split."""
    work = tmp_path_factory.mktemp("multi30k")
    run_script("prepare.py", "--data", DATA, "--out", work / "prep", "--limit", LIMIT, "--bpe-merges", 500)
    return work


def test_prepare_writes_data_fairseq_accepted(work):
    prep = work / "prep"
    assert (prep / "bpe.codes").read_text().startswith("#version")
    dictionary = Dictionary.load(str(prep / "bin" / "dict.de.txt"))
    assert dictionary.symbols[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert any(symbol.endswith("@@") for symbol in dictionary.symbols)  # BPE pieces
    assert (prep / "bin" / "dict.en.txt").read_text() == (prep / "bin" / "dict.de.txt").read_text()  # joined
    for split in ("train", "valid", "test", "test1"):
        for lang in ("de", "en"):
            dataset = data_utils.load_indexed_dataset(str(prep / "bin" / f"{split}.de-en.{lang}"), dictionary)
            assert dataset is not None and len(dataset) == LIMIT, (split, lang)


@pytest.mark.parametrize("lang", ["de", "en"])
def test_bpe_text_detokenises_back_to_the_normalised_raw_lines(work, lang):
    text = load_text_module()
    raw = text.normalize(text.read_lines(DATA / f"train.{lang}", LIMIT), lang)
    bpe = text.read_lines(work / "prep" / "bpe" / f"train.{lang}")
    restored = text.detokenize([(line + " ").replace("@@ ", "").strip() for line in bpe], lang)
    same = sum(a == b for a, b in zip(restored, raw))
    assert len(bpe) == LIMIT and same >= 0.95 * LIMIT  # Moses detokenisation is not an exact inverse (McDonald 's)


def test_prepare_names_missing_data(tmp_path):
    # the last stderr line is ours; fairseq's import may log before it (tensorboardX notice), never a traceback
    result = run_script("prepare.py", "--data", tmp_path / "absent", "--out", tmp_path / "out", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"error: --data {str(tmp_path / 'absent')!r} is not a directory"
    (tmp_path / "train.de").write_text("Hallo\n")
    result = run_script("prepare.py", "--data", tmp_path, "--out", tmp_path / "out", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"error: missing split file {str(tmp_path / 'train.en')!r}")


def test_train_evaluate_and_results_end_to_end(work):
    """run.py --models 2: two models side by side (own seeds, the ensemble's patience), each choosing between
    checkpoint_best.pt and its average on val, the test sets translated by their ensemble."""
    results_path = work / "results" / "multi30k.json"  # the module's: the ensemble test reads it
    run_script("run.py", "--data", DATA, "--work", work, "--skip-prepare", "--limit", 20, "--minutes", 1,
               "--results", results_path, "--max-epoch", 2, "--precision", "fp32", "--models", 2, *TINY_MODEL)

    results = json.loads(results_path.read_text())
    assert set(results) == {"arch", "train_flags", "train_minutes", "checkpoint", "members", "test_2016_flickr",
                            "test_2017_flickr", "comparison"}
    members = results["members"]
    assert [member["save_dir"] for member in members] == ["model1", "model2"]
    for seed, member in enumerate(members, start=1):
        member_dir = work / "main" / member["save_dir"]
        # two epochs: checkpoint_best.pt and the average of both epochs compete on val
        val = member["checkpoint"]["val_sacrebleu"]
        assert set(val) == {"checkpoint_best.pt", "checkpoint_avg2.pt"}
        assert member["checkpoint"]["chosen"] == max(val, key=val.get)
        flags = member["train_flags"]
        assert all(isinstance(flag, str) for flag in flags) and "--eval-bleu" in flags
        last_value = importlib.import_module("fairseq_attn_gru.recipes.multi30k.train").last_value
        assert flags[-2:] == ["--seed", str(seed)] and last_value(flags, "--lr-patience", None) == "1"
        assert json.loads((member_dir / "train_info.json").read_text()) == {
            key: member[key] for key in ("arch", "train_flags", "train_minutes")}
        valid_lines = [line for line in (member_dir / "train.log").read_text().splitlines() if "| valid |" in line]
        assert valid_lines and "| bleu " in valid_lines[-1]  # --eval-bleu --eval-bleu-detok moses ran
        for test_set in ("test_2016_flickr", "test_2017_flickr"):
            assert isinstance(member[test_set]["sacrebleu"], float)
    assert results["checkpoint"]["chosen"] == [f"{m['save_dir']}/{m['checkpoint']['chosen']}" for m in members]
    assert isinstance(results["checkpoint"]["val_sacrebleu"]["ensemble"], float)
    assert results["arch"] == "gru_nematus" and results["comparison"] == {}
    assert results["train_flags"] == members[0]["train_flags"]
    assert results["train_minutes"] == max(member["train_minutes"] for member in members) < 5
    for test_set in ("test_2016_flickr", "test_2017_flickr"):
        assert set(results[test_set]) == {"sacrebleu", "signature"}
        assert isinstance(results[test_set]["sacrebleu"], float) and "tok:13a" in results[test_set]["signature"]
        assert len((work / "main" / f"{test_set}.hyp.en").read_text().splitlines()) == 20
    assert (results_path.parent / "multi30k_attention.png").stat().st_size > 0


def by_id(generate_output: str) -> dict:
    """{sentence id: Translation} of fairseq-generate's output (source, first hypothesis, its score in extra)."""
    return {item.id: item for item in parse_generate_output(generate_output)}


def test_the_ensemble_translates_as_fairseq_generate_with_both_checkpoints(work):
    """run.py's test translations are those of fairseq-generate --path A:B (fairseq's ensemble: the models' token
    probabilities averaged at each step), and the scores tell them from either model's alone."""
    results_path = work / "results" / "multi30k.json"
    if not results_path.is_file():
        pytest.skip("needs test_train_evaluate_and_results_end_to_end's run")
    chosen = [work / "main" / path for path in json.loads(results_path.read_text())["checkpoint"]["chosen"]]
    ours = by_id((work / "main" / "test_2016_flickr.generate.log").read_text())

    def generate(paths):
        return by_id(run_cli("fairseq-generate", work / "prep" / "bin", "--user-dir", USER_DIR, "--path",
                             os.pathsep.join(map(str, paths)), "--gen-subset", "test", "--beam", 5, "--remove-bpe",
                             "--batch-size", 64, "--cpu", env={"OMP_NUM_THREADS": "1"}).stdout)

    ensemble = generate(chosen)
    same_source = [i for i in ours if ensemble[i].source == ours[i].source]  # the same tokenised input
    assert len(same_source) >= 18, [(ours[i].source, ensemble[i].source) for i in ours]
    for i in same_source:
        assert ours[i].hypothesis == ensemble[i].hypothesis, i
        assert abs(float(ours[i].extra["score"]) - float(ensemble[i].extra["score"])) < 1e-3, i
    for alone in (generate(chosen[:1]), generate(chosen[1:])):
        assert max(abs(float(ensemble[i].extra["score"]) - float(alone[i].extra["score"])) for i in same_source) > 1e-2


def test_evaluate_int8_translates_with_the_quantized_model(work, tmp_path):
    """evaluate.py --precision int8 loads the checkpoint quantized (the log names the int8 layers) and scores it."""
    checkpoint = work / "main" / "model1" / "checkpoint_best.pt"
    if not checkpoint.is_file():
        pytest.skip("needs test_train_evaluate_and_results_end_to_end's checkpoint")
    args = ["--prep", work / "prep", "--checkpoint", checkpoint, "--src", DATA / "val.de", "--ref", DATA / "val.en"]
    fp32 = run_script("evaluate.py", *args, "--out-prefix", tmp_path / "fp32")
    int8 = run_script("evaluate.py", *args, "--out-prefix", tmp_path / "int8", "--precision", "int8")
    assert "int8: dynamic quantization" in int8.stdout + int8.stderr
    assert "int8: dynamic quantization" not in fp32.stdout + fp32.stderr
    for result in (fp32, int8):
        assert "tok:13a" in json.loads(result.stdout.strip().splitlines()[-1])["signature"]


def test_evaluate_lenpen_reaches_beam_search_and_refuses_a_non_number(work, tmp_path):
    """--lenpen is fairseq's length penalty: a large one picks longer finished hypotheses than 0 does."""
    checkpoint = work / "main" / "model1" / "checkpoint_best.pt"
    if not checkpoint.is_file():
        pytest.skip("needs test_train_evaluate_and_results_end_to_end's checkpoint")
    args = ["--prep", work / "prep", "--checkpoint", checkpoint, "--src", DATA / "val.de", "--ref", DATA / "val.en"]
    lengths = {}
    for lenpen in ("0", "3"):
        run_script("evaluate.py", *args, "--out-prefix", tmp_path / lenpen, "--lenpen", lenpen)
        lengths[lenpen] = sum(len(line.split()) for line in (tmp_path / f"{lenpen}.hyp.en").read_text().splitlines())
    assert lengths["3"] > lengths["0"], lengths
    result = run_script("evaluate.py", *args, "--lenpen", "nan", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "error: --lenpen=nan is not allowed: a finite number (1.0: fairseq's default)"


def test_evaluate_names_a_missing_checkpoint(work, tmp_path):
    result = run_script("evaluate.py", "--prep", work / "prep", "--checkpoint", tmp_path / "none.pt",
                        "--src", DATA / "val.de", "--ref", DATA / "val.en", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: --checkpoint {str(tmp_path / 'none.pt')!r} does not exist"


def test_skip_training_scores_the_finished_run_without_training_again(work, tmp_path):
    """run.py --skip-training takes WORK/main's models as train.py left them: same flags and minutes in the results,
    no new training; a WORK/main without a finished run is one line."""
    if not (work / "main" / "model2" / "train_info.json").is_file():
        pytest.skip("needs test_train_evaluate_and_results_end_to_end's run")
    own_work = tmp_path / "work"
    shutil.copytree(work / "prep", own_work / "prep")
    args = ["--data", DATA, "--work", own_work, "--skip-prepare", "--skip-training", "--limit", 20,
            "--results", tmp_path / "multi30k.json", "--models", 2]
    missing = run_script("run.py", *args, check=False)
    assert missing.returncode == 2 and missing.stderr.strip().splitlines()[-1] == (
        f"error: --skip-training: {str(own_work / 'main' / 'model1')!r} holds no finished train.py run "
        "(train_info.json and checkpoint_best.pt); train it first, with run.py or train.py")

    precision = run_script("run.py", *args, "--precision", "fp32", check=False)
    assert precision.returncode == 2 and precision.stderr.strip().splitlines()[-1] == (
        "error: --precision=fp32 is not allowed with --skip-training: the finished run's training fixed its precision "
        "(the comparison trains the same way)")

    shutil.copytree(work / "main", own_work / "main")
    logs_before = [(own_work / "main" / f"model{i}" / "train.log").read_text() for i in (1, 2)]
    run_script("run.py", *args)
    results = json.loads((tmp_path / "multi30k.json").read_text())
    for i, member in enumerate(results["members"], start=1):
        trained = json.loads((own_work / "main" / f"model{i}" / "train_info.json").read_text())
        assert {key: member[key] for key in ("arch", "train_flags", "train_minutes")} == trained
    # fairseq-train did not run again
    assert [(own_work / "main" / f"model{i}" / "train.log").read_text() for i in (1, 2)] == logs_before
    assert isinstance(results["test_2016_flickr"]["sacrebleu"], float)


def test_reuse_comparison_keeps_the_earlier_runs_table_and_names_its_flags(work, tmp_path):
    results_path = tmp_path / "multi30k.json"
    results_path.write_text(json.dumps({"train_flags": ["--earlier"], "comparison": {}}))
    args = ["--data", DATA, "--skip-prepare", "--limit", 20, "--minutes", 1, "--results", results_path,
            "--reuse-comparison", "--max-update", 2, *TINY_MODEL]  # one model (the default): WORK/main itself
    own_work = tmp_path / "work"
    shutil.copytree(work / "prep", own_work / "prep")
    empty = run_script("run.py", "--work", own_work, *args, check=False)
    assert empty.returncode == 2 and not (own_work / "main").exists()  # refused before any training
    assert empty.stderr.strip().splitlines()[-1] == (
        f"error: --reuse-comparison: {str(results_path)!r} holds no comparison to reuse; "
        "train it with --compare-minutes")

    earlier = {"dot": {"extra_flags": ["--attention-type", "dot"], "val_sacrebleu": 1.5}}
    results_path.write_text(json.dumps({"train_flags": ["--earlier"], "comparison": earlier}))
    run_script("run.py", "--work", own_work, *args)
    results = json.loads(results_path.read_text())
    assert results["comparison"] == earlier and results["comparison_base_flags"] == ["--earlier"]
    assert "--max-update" in results["train_flags"]  # this run's own flags, not the earlier ones
    assert "members" not in results and "--seed" not in results["train_flags"]
    assert json.loads((own_work / "main" / "train_info.json").read_text())["train_flags"] == results["train_flags"]

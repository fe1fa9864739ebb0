"""scripts/joeynmt_reverse.py: Joey NMT's reverse task through fairseq-preprocess -> train -> generate -> score."""
import json

import pytest

from conftest import REPO, SHARED, run_cli

DATA = SHARED / "data" / "joeynmt_reverse"
SCRIPT = str(REPO / "scripts" / "joeynmt_reverse.py")


def run(*args):
    return run_cli(SCRIPT, *args, check=False)


@pytest.mark.skipif(not DATA.is_dir(), reason=f"needs Joey NMT's reverse data in {DATA}")
def test_one_epoch_runs_end_to_end_and_writes_results(tmp_path):
    result = run("--data", DATA, "--work", tmp_path, "--epochs", 1)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results) == {"bleu", "sacrebleu", "sacrebleu_signature", "exact_match", "train_seconds", "params",
                            "test_sentences"}
    assert results["test_sentences"] == 1000 and 0 <= results["bleu"] <= 100  # the full 30 epochs give 99.94


def test_missing_files_get_one_line(tmp_path):
    result = run("--data", tmp_path, "--work", tmp_path / "work")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: --data {str(tmp_path)!r} lacks train.src")

"""More of reliability.md's rows: outputs keep their ids, edge values get one line, interrupts and full disks lose
nothing, checkpoints never run code, and the recipe scripts stop their children and refuse stale results.

One toy checkpoint (module fixture) serves every test that needs a model. Its model accepts sources of at most 12
tokens (--max-source-positions 12 at training), less than the task's default 256 at generation time.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import (BIN, REPO, USER_DIR, children_of, cmdline, default_sigint, kill_all, one_line_error, run_cli,
                      toy_task, wait_until_gone)
from fairseq_attn_gru import UserError

TOY = toy_task("reverse", vocab_size=20, min_len=3, max_len=8, train_size=3000, valid_size=20, test_size=20)
TRAIN = ["--user-dir", USER_DIR, *TOY, "--arch", "gru_attn_dot", "--cpu", "--optimizer", "adam", "--lr", "0.003",
         "--max-tokens", "300", "--seed", "7", "--no-progress-bar", "--no-epoch-checkpoints", "--disable-validation",
         "--max-source-positions", "12"]
HELPERS = REPO / "tests" / "helpers"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("ckpt")
    run_cli("fairseq-train", *TRAIN, "--max-update", "3", "--save-dir", save_dir)
    return save_dir / "checkpoint_last.pt"


# -- fairseq-interactive: ids are input line numbers; constraints stay with their line ------------------------

def test_interactive_ids_and_constraints_follow_the_input_lines(checkpoint):
    lines = [b"w1 w2 w3\tw7",           # 0
             b"",                       # 1 empty
             b"w4 w5 w6\tw11",          # 2
             b"w6 \xff w7",             # 3 not UTF-8
             b"w1 " * 15 + b"w1\tw9",   # 4: 17 tokens, over the model's 12 (the task allows 256)
             b"w8 w9 w10\tw13",         # 5
             b"\tw3",                   # 6 constraints only
             b"w2 w3",                  # 7
             b"w1 " * 10 + b"w1"]       # 8: 12 tokens, within the model's 12, over --max-tokens 11
    result = subprocess.run([str(BIN / "fairseq-interactive"), "--user-dir", USER_DIR, *TOY, "--path", checkpoint,
                             "--cpu", "--beam", "3", "--constraints", "--buffer-size", "3", "--batch-size", "2",
                             "--max-tokens", "11"],
                            input=b"\n".join(lines) + b"\n", capture_output=True, timeout=300,
                            env=dict(os.environ, PYTHONWARNINGS="ignore"))
    stdout, stderr = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0 and "Traceback" not in stderr, stderr[-3000:]
    sources = dict(re.findall(r"^S-(\d+)\t(.*)$", stdout, flags=re.M))
    constraints = re.findall(r"^C-(\d+)\t(.*)$", stdout, flags=re.M)
    assert sources == {"0": "w1 w2 w3", "2": "w4 w5 w6", "5": "w8 w9 w10", "7": "w2 w3"}
    assert sorted(constraints) == [("0", "w7"), ("2", "w11"), ("5", "w13")]  # w9 (line 4's) went nowhere
    for line_id, constraint in constraints:  # constrained decoding put each line's own word in its hypothesis
        hypothesis = re.search(rf"^H-{line_id}\t\S+\t(.*)$", stdout, flags=re.M).group(1)
        assert constraint in hypothesis.split(), (line_id, hypothesis)
    assert "skipped: input line 2 is empty, nothing to translate; no output for id 1" in stderr
    assert "skipped: input line 4 is not UTF-8 text (byte 0xff at 3); no output for id 3" in stderr
    assert ("skipped: input line 5 is too long: 17 tokens, longer than --max-source-positions=12 of the model (from "
            "the checkpoint); no output for id 4") in stderr
    assert "skipped: input line 7 has constraints but no sentence before the first tab; no output for id 6" in stderr
    assert "skipped: input line 9 is too long: 12 tokens, longer than --max-tokens=11; no output for id 8" in stderr


def test_interactive_input_that_cannot_be_read_is_a_user_error(tmp_path):
    """fairseq-interactive --input names a missing file or a directory (the reader our models' sessions use; a
    UserError there is one `error:` line in fairseq-interactive, see test_errors.py)."""
    from fairseq_attn_gru.fairseq_fixes.interactive_input import read_input_lines

    for path, reason in [(tmp_path / "nope.txt", "No such file or directory"), (tmp_path, "Is a directory")]:
        with pytest.raises(UserError, match=re.escape(f"--input='{path}': cannot read it ({reason})")):
            list(read_input_lines(str(path), 1))


# -- toy task flags at edge values (the same checks run in fairseq-train and fairseq-generate) -----------------

def toy(**options):
    from fairseq_attn_gru.tasks.toy_translation import ToyTranslationConfig, ToyTranslationTask

    base = dict(toy_rule="reverse", toy_vocab_size=20, toy_min_len=3, toy_max_len=8, toy_train_size=50,
                toy_valid_size=5, toy_test_size=5)
    return ToyTranslationTask.setup_task(ToyTranslationConfig(**{**base, **options}))


@pytest.mark.parametrize("options, message", [
    ({"toy_vocab_size": 0}, "--toy-vocab-size=0 is not allowed"),
    ({"toy_vocab_size": -5}, "--toy-vocab-size=-5 is not allowed"),
    ({"toy_vocab_size": 10**8}, "--toy-vocab-size=100000000 is not allowed: an integer from 2 to 1,000,000"),
    ({"toy_min_len": 0}, "--toy-min-len=0 is not allowed"),
    ({"toy_min_len": -1}, "--toy-min-len=-1 is not allowed"),
    ({"toy_max_len": 0}, "--toy-max-len=0 is not allowed"),
    ({"toy_max_len": 10**8}, "--toy-max-len=100000000 is not allowed: at most 10,000 words"),
    ({"toy_train_size": -1}, "--toy-train-size=-1 is not allowed"),
    ({"toy_train_size": 10**12}, "--toy-train-size=1000000000000 is not allowed: at most"),
    ({"toy_test_size": 10**12}, "--toy-test-size=1000000000000 is not allowed: at most"),
    ({"toy_seed": -1}, "--toy-seed=-1 is not allowed: an integer >= 0"),
    ({"max_source_positions": 0}, "--max-source-positions=0 is not allowed"),
    ({"max_target_positions": -3}, "--max-target-positions=-3 is not allowed"),
])
def test_toy_flags_out_of_range_are_user_errors(options, message):
    with pytest.raises(UserError, match=re.escape(message)):
        toy(**options)


def batches(task, split, **kwargs):
    task.load_dataset(split)
    return task.get_batch_iterator(task.dataset(split), **kwargs)


@pytest.mark.parametrize("split, options, kwargs, message", [
    ("train", {"toy_train_size": 0}, {"max_tokens": 300, "max_positions": (1024, 1024), "ignore_invalid_inputs": True},
     "--toy-train-size=0 is not allowed: at least 1 sentence pair: the train split is used here"),
    ("test", {"toy_test_size": 0}, {"max_tokens": 300, "max_positions": (256, 256)},
     "--toy-test-size=0 is not allowed: at least 1 sentence pair"),
    ("valid", {"toy_min_len": 280, "toy_max_len": 300}, {"max_tokens": 3000, "max_positions": (200, 1024)},
     "the valid split has source sentences of up to 294 tokens (</s> included), more than --max-source-positions=200 "
     "allows (the model's"),
    ("train", {"toy_min_len": 280, "toy_max_len": 300},
     {"max_tokens": 3000, "max_positions": (200, 1024), "ignore_invalid_inputs": True},
     "the train split has source sentences of up to"),  # fairseq would drop every sentence
    ("test", {}, {"max_tokens": 5, "max_positions": (256, 256)}, "--max-tokens=5 is not allowed: at least the"),
])
def test_toy_splits_that_cannot_be_batched_are_user_errors(split, options, kwargs, message):
    task = toy(**options)
    with pytest.raises(UserError, match=re.escape(message)):
        batches(task, split, **kwargs).next_epoch_itr(shuffle=False)


def test_huge_toy_seed_and_some_too_long_training_sentences_still_work():
    task = toy(toy_seed=99999999999999999999999)
    assert len(list(batches(task, "train", max_tokens=300, max_positions=(1024, 1024)).next_epoch_itr())) > 0
    task = toy(toy_min_len=5, toy_max_len=30)  # fairseq drops the long ones with its warning, as before
    itr = batches(task, "train", max_tokens=3000, max_positions=(20, 1024), ignore_invalid_inputs=True)
    assert 0 < sum(len(batch["id"]) for batch in itr.next_epoch_itr()) < 50


# -- checkpoints never run code, whatever TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD says -----------------------------

class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def evil_checkpoint(checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    state["extra_state"]["payload"] = Payload(tmp_path / "ran")
    evil = tmp_path / "evil.pt"
    torch.save(state, evil)
    return evil


def test_unsafe_load_env_var_does_not_run_a_checkpoint_in_generate(evil_checkpoint, tmp_path):
    result = run_cli("fairseq-generate", "--user-dir", USER_DIR, *TOY, "--path", evil_checkpoint, "--gen-subset",
                     "test", "--cpu", env={"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}, check=False)
    line = one_line_error(result, f"checkpoint '{evil_checkpoint}' refused: it holds an object outside")
    assert "system" in line and not (tmp_path / "ran").exists()


def test_unsafe_load_env_var_does_not_run_a_checkpoint_in_from_pretrained(evil_checkpoint, tmp_path, monkeypatch):
    from fairseq_attn_gru import GRUAttnModel

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(Exception, match="(?i)unsupported global|blocked"):
        GRUAttnModel.from_pretrained(str(evil_checkpoint.parent), checkpoint_file=evil_checkpoint.name)
    assert not (tmp_path / "ran").exists()
    # other torch.load calls in the process keep torch's own rules (here: the variable turns weights_only off)
    plain = tmp_path / "plain.pt"
    torch.save({"payload": Payload(tmp_path / "ran_plain")}, plain)
    torch.load(plain)
    assert (tmp_path / "ran_plain").exists()


# -- a FloatingPointError that is not fairseq's divergence keeps its traceback --------------------------------

def test_numpy_floating_point_error_is_not_reported_as_divergence():
    result = run_cli("fairseq-train", "--user-dir", HELPERS / "numpy_fpe_plugin", *TOY, "--arch", "gru_attn_dot",
                     "--cpu", "--optimizer", "adam", "--lr", "0.003", "--max-tokens", "300", "--max-update", "2",
                     "--no-save", "--disable-validation", "--criterion", "numpy_fpe_cross_entropy", check=False)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" in result.stderr and "diverged" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "FloatingPointError: divide by zero encountered in scalar divide"


# -- fairseq-train: Ctrl-C and a full disk ---------------------------------------------------------------------

def saved_updates(path):
    return torch.load(path, weights_only=True)["optimizer_history"][-1]["num_updates"]


def test_ctrl_c_mid_copy_prints_one_line_and_keeps_checkpoint_last(tmp_path):
    """SIGINT while checkpoint_last.pt is being written (a copy stalled halfway): exit 130, one line naming the
    intact checkpoint, no .tmp left."""
    save_dir, marker = tmp_path / "ckpt", tmp_path / "copying"
    process = subprocess.Popen([sys.executable, str(HELPERS / "slow_copy_train.py"), *TRAIN, "--save-dir",
                                str(save_dir), "--save-interval-updates", "2", "--max-update", "1000"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, SLOW_COPY_MARKER=str(marker), PYTHONWARNINGS="ignore"),
                               preexec_fn=default_sigint)
    try:
        deadline = time.time() + 300
        while not (save_dir / "checkpoint_last.pt").exists():
            assert time.time() < deadline and process.poll() is None
            time.sleep(0.05)
        (tmp_path / "copying.armed").touch()  # the next copy into checkpoint_last.pt stalls halfway
        while not marker.exists():
            assert time.time() < deadline and process.poll() is None
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        stderr = process.communicate(timeout=120)[1]
    finally:
        process.kill()
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    updates = saved_updates(save_dir / "checkpoint_last.pt")
    assert stderr.strip().splitlines()[-1] == (f"interrupted: {save_dir / 'checkpoint_last.pt'} from epoch 1, update "
                                               f"{updates} is intact; run the same command to resume")
    assert not list(save_dir.glob("*.tmp"))


def test_full_disk_while_saving_is_one_line_and_leaves_no_tmp(checkpoint, tmp_path):
    save_dir = tmp_path / "ckpt"
    save_dir.mkdir()
    (save_dir / "checkpoint_last.pt").write_bytes(checkpoint.read_bytes())  # update 3: the run resumes from it
    program = HELPERS / "full_disk_train.py"
    # the first file of a save (written by torch.save), then the copy that makes checkpoint_last.pt
    for full in ("checkpoint_1_4.pt.tmp", "checkpoint_last.pt.tmp"):
        result = run_cli(program, *TRAIN, "--save-dir", save_dir, "--save-interval-updates", "1", "--max-update", "6",
                         env={"FULL_DISK_FILES": full}, check=False)
        one_line_error(result, f"no space left on the device of --save-dir='{save_dir}' while saving a checkpoint")
        assert (f"{save_dir / 'checkpoint_last.pt'} from epoch 1, update 3 is intact: free some space"
                in result.stderr.strip().splitlines()[-1])
        assert "Traceback" not in result.stdout  # fairseq logged one before retrying; a full disk is not retried
        assert not list(save_dir.glob("*.tmp")), full
        assert saved_updates(save_dir / "checkpoint_last.pt") == 3


def test_save_dir_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    result = run_cli("fairseq-train", *TRAIN, "--save-dir", tmp_path / "file", "--max-update", "1", check=False)
    one_line_error(result, f"--save-dir='{tmp_path / 'file'}' cannot hold checkpoints (Not a directory")


# -- scripts/demo.py ----------------------------------------------------------------------------------------------

def demo_main(*args):
    from fairseq_attn_gru.recipes import demo

    return demo.main([str(a) for a in args])


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "--epochs=0 is not allowed: a positive integer"),
    (["--epochs", "-2"], "--epochs=-2 is not allowed"),
    (["--lr", "0"], "--lr=0.0 is not allowed"),
    (["--train-size", "0"], "--train-size=0 is not allowed"),
    (["--types", "dot,dot"], "--types='dot,dot' is not allowed"),
])
def test_demo_rejects_values_that_cannot_work(args, message, tmp_path):
    with pytest.raises(UserError, match=re.escape(message)):
        demo_main("--out-dir", tmp_path, *args)


def test_demo_refuses_checkpoints_trained_with_other_options(checkpoint, tmp_path):
    from fairseq_attn_gru.recipes import demo

    out = tmp_path / "out"
    save_dir = out / "checkpoints" / "dot"
    save_dir.mkdir(parents=True)
    (save_dir / "checkpoint_last.pt").write_bytes(checkpoint.read_bytes())
    with pytest.raises(UserError, match="holds checkpoints without demo_run.json"):  # an older demo's output
        demo_main("--out-dir", out, "--quick", "--types", "dot")
    earlier = demo.parse_args(["--quick", "--types", "dot", "--rule", "reverse"])
    demo.write_record(save_dir, {"options": demo.training_options("dot", earlier), "finished": True,
                                 "train_seconds": 1.5, "params": 1})
    with pytest.raises(UserError, match=r"trained with other options \(rule: 'reverse' there, 'translate' now; "
                                        r"seed: 1 there, 2 now\)"):
        demo_main("--out-dir", out, "--quick", "--types", "dot", "--seed", "2", "--rule", "translate")
    assert not (out / "results.json").exists()


def assert_sigterm_stops_children(command, children_wanted, last_line_start, env=None):
    """Start ``command``; once it runs ``children_wanted`` fairseq-train children, SIGTERM it: it exits 143 with
    stderr's last line starting ``last_line_start``, and none of those children outlives it."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONWARNINGS="ignore", **(env or {})))
    children = []
    try:
        deadline = time.time() + 180
        while len(children) < children_wanted:
            assert time.time() < deadline and process.poll() is None
            children = [pid for pid in children_of(process.pid) if "fairseq-train" in cmdline(pid)]
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        stderr = process.communicate(timeout=60)[1]
        assert process.returncode == 143, stderr[-2000:]
        last = stderr.strip().splitlines()[-1]
        assert last.startswith(last_line_start), last
        wait_until_gone(children, 15, "a fairseq-train outlived the script")
    finally:
        process.kill()
        kill_all(children)


def test_demo_sigterm_stops_its_fairseq_train(tmp_path):
    assert_sigterm_stops_children(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--out-dir", str(tmp_path), "--types", "dot", "--epochs",
         "1", "--train-size", "50000", "--vocab-size", "20", "--max-len", "8", "--test-size", "8"],
        1, "interrupted by SIGTERM: the running fairseq tool was stopped")


# -- the translation pipeline: damaged checkpoints and input files, processes ---------------------------------------

PIPELINE = str(BIN / "fairseq-attn-gru")
TINY = ["--encoder-embed-dim", "8", "--encoder-hidden-size", "8", "--encoder-layers", "1", "--decoder-embed-dim",
        "8", "--decoder-hidden-size", "8", "--decoder-layers", "1", "--decoder-out-embed-dim", "8"]
LANGS = ["--source-lang", "de", "--target-lang", "en"]


def test_average_refuses_damaged_checkpoints_in_one_line(checkpoint, tmp_path):
    from fairseq_attn_gru.pipeline import average

    data = checkpoint.read_bytes()
    for epoch in (1, 2):
        (tmp_path / f"checkpoint{epoch}.pt").write_bytes(data)
    (tmp_path / "checkpoint3.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=re.escape(f"checkpoint '{tmp_path / 'checkpoint3.pt'}' is not a readable")):
        average.main([str(tmp_path), "--last", "3"])
    torch.save({"model": {"x": torch.zeros(2)}}, tmp_path / "checkpoint3.pt")  # readable, another model
    with pytest.raises(UserError, match="cannot be averaged with .*: task: None there, 'toy_translation' in the first"):
        average.main([str(tmp_path), "--last", "3"])
    (tmp_path / "checkpoint3.pt").write_bytes(data)
    (tmp_path / "a_file").write_text("")
    with pytest.raises(UserError, match=re.escape(f"the averaged checkpoint '{tmp_path / 'a_file' / 'avg.pt'}' cannot "
                                                  f"be written: '{tmp_path / 'a_file'}' is a file")):
        average.main([str(tmp_path), "--last", "2", "--out", str(tmp_path / "a_file" / "avg.pt")])
    before = (tmp_path / "checkpoint2.pt").read_bytes()
    with pytest.raises(UserError, match="is an input of this command"):  # the output would destroy an input
        average.main([str(tmp_path), "--last", "2", "--out", str(tmp_path / "checkpoint2.pt")])
    assert (tmp_path / "checkpoint2.pt").read_bytes() == before and not list(tmp_path.rglob("*.tmp"))
    (tmp_path / "checkpoint3.pt").write_bytes(os.urandom(3000))
    result = run_cli(PIPELINE, "average", tmp_path, "--last", "3", check=False)
    one_line_error(result, f"checkpoint '{tmp_path / 'checkpoint3.pt'}' is not a readable PyTorch checkpoint")


def raw_multi30k(directory):
    """Multi30k's file names, two German-English lines each."""
    directory.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test_2016_flickr", "test_2017_flickr"):
        (directory / f"{split}.de").write_text("ein Hund\nzwei Katzen\n")
        (directory / f"{split}.en").write_text("a dog\ntwo cats\n")
    return directory


@pytest.fixture
def prepared(tmp_path):
    from fairseq_attn_gru.pipeline import prepare

    data = raw_multi30k(tmp_path / "data")
    prepare.main([*LANGS, "--data", str(data), "--out", str(tmp_path / "work" / "prep"), "--text-processing", "moses-bpe", "--bpe-merges", "10"])
    return data, tmp_path / "work"


def fake_training(run, monkeypatch, work):
    """run's training and scoring replaced: what is left is its own logic (which sets, which checkpoint)."""
    monkeypatch.setattr(run, "machine_description", lambda: {"model": "test", "cores": 1, "fp32_matmul_gflops": 1,
                                                             "bf16_matmul_gflops": 1})
    monkeypatch.setattr(run, "train", lambda *args, **kwargs: {"arch": "gru_seq2seq", "train_flags": [],
                                                                "train_minutes": 0, "epochs": 1, "device": "cpu",
                                                                "precision": "fp32"})


def test_run_scores_every_test_pair_it_finds(prepared, monkeypatch, capsys):
    """test_2018_flickr and test_2017_mscoco (Multi30k has them; users may too) are scored beside the two flickr sets;
    a test set with one language only is named, not scored (Czech has no test_2017_flickr)."""
    from fairseq_attn_gru.pipeline import run

    data, work = prepared
    for name in ("test_2018_flickr", "test_2017_mscoco"):
        (data / f"{name}.de").write_text("ein Hund\n")
        (data / f"{name}.en").write_text("a dog\n")
    (data / "test_2019_extra.de").write_text("ein Hund\n")
    fake_training(run, monkeypatch, work)
    monkeypatch.setattr(run, "choose_checkpoint", lambda *args, **kwargs: (work / "main" / "checkpoint_best.pt", {}))
    scored = []

    def fake_scores(prep, checkpoint, splits, out_dir, limit):
        scored.extend(split.name for split in splits)
        return {split.name: {"sacrebleu": float(i), "chrf": 0.0, "bleu_tok_lc": 0.0, "signature": f"sig-{split.name}"}
                for i, split in enumerate(splits)}

    monkeypatch.setattr(run, "score_splits", fake_scores)
    results_path = work / "r.json"
    run.main([*LANGS, "--data", str(data), "--work", str(work), "--text-processing", "moses-bpe", "--bpe-merges", "10", "--results", str(results_path),
              "--attention-type", "none"])
    assert scored == ["test_2016_flickr", "test_2017_flickr", "test_2017_mscoco", "test_2018_flickr"]
    assert f"note: {data / 'test_2019_extra'} has no .en file: not a de-en test set" in capsys.readouterr().out
    results = json.loads(results_path.read_text())
    assert list(results["tests"]) == scored and results["tests"]["test_2018_flickr"]["sacrebleu"] == 3.0


def test_run_refuses_a_damaged_extra_test_pair_before_training(tmp_path, monkeypatch):
    from fairseq_attn_gru.pipeline import run

    data = raw_multi30k(tmp_path / "data")
    (data / "test_2018_flickr.de").write_text("ein Hund\nzwei Katzen\n")
    (data / "test_2018_flickr.en").write_text("a dog\n")
    for trainer in ("train", "train_side_by_side", "prepare"):
        monkeypatch.setattr(run, trainer, lambda *args, **kwargs: pytest.fail("went on before checking the test sets"))
    with pytest.raises(UserError, match="test_2018_flickr.de' has 2 lines but .*test_2018_flickr.en' has 1"):
        run.main([*LANGS, "--data", str(data), "--work", str(tmp_path / "work")])
    assert not (tmp_path / "work").exists()


def test_run_names_a_damaged_checkpoint_in_one_line(checkpoint, prepared, monkeypatch):
    """After training (replaced here): a damaged epoch checkpoint to average, or a damaged checkpoint_best.pt."""
    from fairseq_attn_gru.pipeline import run

    data, work = prepared
    main_dir = work / "main"
    main_dir.mkdir()
    fake_training(run, monkeypatch, work)
    good = checkpoint.read_bytes()
    (main_dir / "checkpoint_best.pt").write_bytes(good)
    (main_dir / "checkpoint1.pt").write_bytes(good)
    (main_dir / "checkpoint2.pt").write_bytes(os.urandom(3000))
    args = [*LANGS, "--data", str(data), "--work", str(work), "--text-processing", "moses-bpe", "--bpe-merges", "10", "--results", str(work / "r.json")]
    with pytest.raises(UserError, match=re.escape(f"checkpoint '{main_dir / 'checkpoint2.pt'}' is not a readable")):
        run.main([*args, "--average-last", "2"])
    (main_dir / "checkpoint_best.pt").write_bytes(good[: len(good) // 2])
    with pytest.raises(UserError, match="checkpoint_best.pt' is not a readable PyTorch checkpoint"):
        run.main([*args, "--average-last", "0"])
    assert not (work / "r.json").exists()


def test_train_save_dir_that_is_a_file(prepared):
    from fairseq_attn_gru.pipeline import train

    _, work = prepared
    (work / "file").write_text("")
    with pytest.raises(UserError, match=re.escape(f"SAVE_DIR '{work / 'file' / 'run'}' cannot be created")):
        train.train(work / "prep", work / "file" / "run", precision="fp32")
    with pytest.raises(UserError, match=re.escape(f"SAVE_DIR '{work / 'file'}' cannot be created (it is a file)")):
        train.train(work / "prep", work / "file", precision="fp32")


def test_run_ensemble_members_get_their_own_seed_and_the_users_flags_win():
    from fairseq_attn_gru.pipeline import run
    from fairseq_attn_gru.pipeline.train import last_value

    assert run.member_flags(["--dropout", "0.3"], 1) == [["--dropout", "0.3"]]
    members = run.member_flags(["--seed", "5", "--dropout", "0.3"], 3)
    assert [last_value(flags, "--seed", None) for flags in members] == ["5", "6", "7"]
    assert all(last_value(flags, "--lr-patience", None) == "1" and flags.count("0.3") == 1 for flags in members)
    assert [last_value(flags, "--seed", None) for flags in run.member_flags([], 2)] == ["1", "2"]  # fairseq's 1
    users = run.member_flags(["--lr-patience", "3"], 2)
    assert all(last_value(flags, "--lr-patience", None) == "3" for flags in users)
    assert run.member_dirs(REPO, 1) == [REPO / "main"]
    assert run.member_dirs(REPO, 2) == [REPO / "main" / "model1", REPO / "main" / "model2"]


@pytest.mark.parametrize("flags, message", [
    (["--models", "0"], "--models=0 is not allowed: 1 (one model) or more (an ensemble)"),
    (["--seed", "x"], "--seed=x is not allowed: an integer (an ensemble's models take SEED, SEED+1, ...)"),
])
def test_run_refuses_bad_ensemble_values_in_one_line(flags, message, tmp_path):
    result = run_cli(PIPELINE, "run", *LANGS, "--data", tmp_path, "--work", tmp_path / "work", *flags, check=False)
    one_line_error(result, message)


def test_train_side_by_side_shares_the_cores_and_lets_the_others_finish_when_one_fails(tmp_path, monkeypatch):
    from fairseq_attn_gru.pipeline import train

    finished = []

    def fake_train(prep, save_dir, flags, minutes, precision, threads, echo_prefix, device):
        if save_dir.name == "model1":
            raise UserError("model1 failed")
        time.sleep(0.2)  # still running when model1 fails
        finished.append((save_dir.name, flags, minutes, precision, threads, echo_prefix, device))
        return {"save_dir": save_dir.name}

    monkeypatch.setattr(train, "train", fake_train)
    monkeypatch.setattr(train.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4})
    dirs = [tmp_path / "model1", tmp_path / "model2"]
    with pytest.raises(UserError, match="model1 failed"):
        train.train_side_by_side(tmp_path, dirs, [["--seed", "1"], ["--seed", "2"]], 3.0, "fp32", "cpu")
    assert finished == [("model2", ["--seed", "2"], 3.0, "fp32", 2, "model2", "cpu")]  # 5 cores // 2 models
    monkeypatch.setattr(train.os, "sched_getaffinity", lambda pid: {0})
    results = train.train_side_by_side(tmp_path, dirs[1:] * 2, [["--a"], ["--b"]], None, "bf16")
    assert results == [{"save_dir": "model2"}] * 2 and finished[-1][4] == 1  # never fewer than one thread


def test_train_sigterm_stops_its_fairseq_train(prepared):
    """SIGTERM (or Ctrl-C's SIGINT) to `fairseq-attn-gru train`: fairseq-train stops too, and the step ends with one
    line, status 143, no traceback."""
    _, work = prepared
    assert_sigterm_stops_children(
        [PIPELINE, "train", "--prep", str(work / "prep"), "--save-dir", str(work / "save"), "--precision", "fp32",
         "--max-epoch", "100000", *TINY],
        1, f"interrupted by SIGTERM: fairseq-train was stopped; its checkpoints stay in {work / 'save'}",
        env={"OMP_NUM_THREADS": "1"})


def test_run_sigterm_stops_every_fairseq_train_side_by_side(tmp_path):
    """SIGTERM to `fairseq-attn-gru run` while two models train side by side: both fairseq-train processes stop (none
    is left training on its own), and the pipeline ends with one line, status 143."""
    data = raw_multi30k(tmp_path / "data")
    assert_sigterm_stops_children(
        [PIPELINE, "run", *LANGS, "--data", str(data), "--work", str(tmp_path / "work"), "--text-processing", "moses-bpe", "--bpe-merges", "10",
         "--models", "2", "--precision", "fp32", "--max-epoch", "100000", *TINY],
        2, "interrupted by SIGTERM: the running fairseq tools were stopped", env={"OMP_NUM_THREADS": "1"})

"""fairseq's own ``lstm`` behaves the same with this plugin loaded (``--user-dir``), through fairseq's console tools.

* With ``FAIRSEQ_ATTN_GRU_GLOBAL_FIXES=0`` every fix is scoped to this package's models, so training (per-update
  and per-epoch losses, update counts, validation) and generation (hypotheses and scores) must not change at all.
* With the global fixes on (the default), the same holds where a split's size is a multiple of 8.
* Otherwise the one documented difference (fairseq #5036, fairseq_fixes/last_partial_batch.py): the last partial
  batch is kept. Training with the plugin then equals plain fairseq told not to drop it
  (``--required-batch-size-multiple 1``), and fairseq-generate translates every test sentence where plain fairseq
  drops the last ones.
* fairseq-interactive reads input as fairseq does for fairseq's models: an empty line is translated, not skipped.

fairseq-fixed 0.12.3.1 on torch >= 2.6 cannot load any checkpoint by itself (fairseq #5610: torch.load's
``weights_only=True`` refuses the ``argparse.Namespace`` inside); the plugin's global ``checkpoint_safe_globals`` fix
allows exactly that. Runs without the plugin's global fixes therefore load with torch's own escape hatch,
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``; runs with them load as the plugin does, ``weights_only`` kept.
"""
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fairseq_flow as flow

BIN = Path(sys.executable).parent
USER_DIR = ["--user-dir", flow.USER_DIR]
BATCH = 8  # fairseq's default --required-batch-size-multiple, and the batch size of every run here
UNEVEN = {"train": 20, "valid": 12, "test": 13}  # 20 = 8 + 8 + 4: fairseq drops the last 4
EVEN = {"train": 24, "valid": 8, "test": 16}
#: logged values that measure time, not the computation
TIMING_KEYS = {"wps", "ups", "wpb_per_sec", "wall", "train_wall", "gb_free", "cuda_gb_allocated",
               "cuda_gb_reserved", "cuda_gb_free"}


OWN_ENV = ("FAIRSEQ_ATTN_GRU_GLOBAL_FIXES", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_WEIGHTS_ONLY_LOAD")


def run(tool, *args, global_fixes=None, unsafe_load=False, input=None, check=True):
    """A fairseq console tool; ``global_fixes="0"`` turns the plugin's global fixes off, ``unsafe_load`` lets torch
    load checkpoints with ``weights_only=False`` (what plain fairseq needs on this torch)."""
    env = {k: v for k, v in os.environ.items() if k not in OWN_ENV}
    env.update(OMP_NUM_THREADS="2", PYTHONWARNINGS="ignore")
    if global_fixes is not None:
        env["FAIRSEQ_ATTN_GRU_GLOBAL_FIXES"] = global_fixes
    if unsafe_load:
        env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    result = subprocess.run([str(BIN / tool), *map(str, args)], capture_output=True, text=True, env=env,
                            input=input, timeout=300)
    if check:
        assert result.returncode == 0, f"{tool} {' '.join(map(str, args))} failed:\n{result.stderr[-3000:]}"
    return result





def train(data_bin, save_dir, *extra, global_fixes=None):
    """Two epochs of a tiny lstm, fixed seed; returns the normalised log (see training_log)."""
    result = run("fairseq-train", data_bin, *flow.train_flags("lstm"), "--cpu", "--optimizer", "adam", "--lr", "0.005",
                 "--batch-size", BATCH, "--max-epoch", "2", "--seed", "7", "--num-workers", "0", "--no-progress-bar",
                 "--log-format", "simple", "--log-interval", "1", "--no-epoch-checkpoints", "--save-dir", save_dir,
                 *extra, global_fixes=global_fixes)
    return training_log(result.stdout + result.stderr)


def training_log(text):
    """fairseq-train's per-update, per-epoch and validation records, with timestamps and timings left out:
    ``[(logger, header, {key: value})]``."""
    records = []
    for logger, message in re.findall(r"^[\d-]+ [\d:]+ \| INFO \| (train_inner|train|valid) \| (.*)$", text, re.M):
        if logger == "train_inner":  # "epoch 001:      2 / 3 loss=3.9, ppl=15.1, ..."
            header, _, values = message.partition(" loss=")
            pairs = [item.split("=", 1) for item in ("loss=" + values).split(", ")]
        else:  # "epoch 001 | loss 3.9 | ppl 15.1 | ..." (valid: "epoch 001 | valid on 'valid' subset | loss ...")
            header, *items = message.split(" | ")
            if logger == "valid":
                header = f"{header} | {items.pop(0)}"
            pairs = [item.split(" ", 1) for item in items]
        values = {key: value for key, value in pairs if key not in TIMING_KEYS}
        records.append((logger, " ".join(header.split()), values))
    assert records, text[-3000:]
    return records


def updates_per_epoch(log):
    totals = [int(values["num_updates"]) for logger, _, values in log if logger == "train"]
    return [b - a for a, b in zip([0, *totals], totals)]


def generate(data_bin, checkpoint, *extra, global_fixes=None):
    """fairseq-generate on the test split: its S/T/H/D/P lines and BLEU line (no timings), in printed order.
    Checkpoints load with weights_only kept where the plugin's global fixes are on, else with torch's escape hatch."""
    unsafe_load = "--user-dir" not in extra or global_fixes == "0"
    out = run("fairseq-generate", data_bin, "--path", checkpoint, "--cpu", "--gen-subset", "test", "--batch-size",
              BATCH, "--beam", "5", "--max-len-b", "10", "--num-workers", "0", *extra, global_fixes=global_fixes,
              unsafe_load=unsafe_load).stdout
    lines = [line for line in out.splitlines() if re.match(r"[STHDP]-\d+\t", line) or line.startswith("Generate ")]
    assert any(line.startswith("H-") for line in lines), out[-3000:]
    return lines


def translated_ids(lines):
    return sorted(int(line[2:].split("\t")[0]) for line in lines if line.startswith("H-"))


def weights(checkpoint):
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]


def assert_same_weights(a, b):
    a, b = weights(a), weights(b)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.fixture(scope="module")
def uneven(tmp_path_factory):
    """20/12/13 sentences, and plain fairseq's lstm trained and generating on it (the reference)."""
    root = tmp_path_factory.mktemp("uneven")
    flow.write_corpus(root / "text", UNEVEN, seed=5)
    data_bin = flow.preprocess(root / "text", root / "bin")
    log = train(data_bin, root / "plain")
    checkpoint = root / "plain" / "checkpoint_last.pt"
    return {"root": root, "bin": data_bin, "log": log, "checkpoint": checkpoint,
            "generated": generate(data_bin, checkpoint)}


def test_global_fixes_off_changes_nothing(uneven):
    root = uneven["root"]
    log = train(uneven["bin"], root / "fixes_off", *USER_DIR, global_fixes="0")
    assert log == uneven["log"]
    assert_same_weights(root / "fixes_off" / "checkpoint_last.pt", uneven["checkpoint"])
    generated = generate(uneven["bin"], root / "fixes_off" / "checkpoint_last.pt", *USER_DIR, global_fixes="0")
    assert generated == uneven["generated"]


def test_global_fixes_change_nothing_when_splits_are_multiples_of_8(tmp_path):
    flow.write_corpus(tmp_path / "text", EVEN, seed=6)
    data_bin = flow.preprocess(tmp_path / "text", tmp_path / "bin")
    plain = train(data_bin, tmp_path / "plain")
    plugin = train(data_bin, tmp_path / "plugin", *USER_DIR)
    assert plugin == plain
    assert updates_per_epoch(plain) == [EVEN["train"] // BATCH] * 2
    assert_same_weights(tmp_path / "plugin" / "checkpoint_last.pt", tmp_path / "plain" / "checkpoint_last.pt")
    generated = generate(data_bin, tmp_path / "plain" / "checkpoint_last.pt")
    assert translated_ids(generated) == list(range(EVEN["test"]))
    assert generate(data_bin, tmp_path / "plugin" / "checkpoint_last.pt", *USER_DIR) == generated


def test_the_only_difference_is_the_kept_last_partial_batch(uneven):
    root = uneven["root"]
    # plain fairseq drops the last batch of 4 training sentences: 2 updates per epoch, not 3
    assert updates_per_epoch(uneven["log"]) == [UNEVEN["train"] // BATCH] * 2
    plugin = train(uneven["bin"], root / "plugin", *USER_DIR)
    assert updates_per_epoch(plugin) == [math.ceil(UNEVEN["train"] / BATCH)] * 2
    # ... and with the plugin training is exactly plain fairseq told to keep it (validation included: 12 = 8 + 4)
    keep_all = train(uneven["bin"], root / "plain_keep_all", "--required-batch-size-multiple", "1")
    assert plugin == keep_all
    assert_same_weights(root / "plugin" / "checkpoint_last.pt", root / "plain_keep_all" / "checkpoint_last.pt")

    # generation from the same checkpoint: plain fairseq skips the test sentences of the last partial batch (13 = 8
    # + 5); with the plugin all are translated, and those fairseq did translate come out the same
    plain_ids = translated_ids(uneven["generated"])
    assert len(plain_ids) == UNEVEN["test"] // BATCH * BATCH
    generated = generate(uneven["bin"], uneven["checkpoint"], *USER_DIR)
    assert translated_ids(generated) == list(range(UNEVEN["test"]))
    sentence_lines = [line for line in generated if not line.startswith("Generate ")]
    kept = [line for line in sentence_lines if int(line[2:].split("\t")[0]) in plain_ids]
    assert kept == [line for line in uneven["generated"] if not line.startswith("Generate ")]


def test_interactive_translates_an_empty_line_as_fairseq_does(uneven):
    lines = "s1 s2 s3\n\ns4 s5\n"

    def interactive(*extra):
        result = run("fairseq-interactive", uneven["bin"], "--path", uneven["checkpoint"], "--cpu", "--beam", "5",
                     "--max-len-b", "10", *extra, input=lines, unsafe_load=not extra)
        assert "skipped" not in result.stderr
        return [line for line in result.stdout.splitlines() if re.match(r"[SHDP]-\d+\t", line)]

    plain = interactive()
    assert translated_ids(plain) == [0, 1, 2]
    assert "S-1\t" in plain  # the empty line, translated from </s> alone
    assert interactive(*USER_DIR) == plain


def test_plain_fairseq_cannot_load_a_checkpoint_on_this_torch_the_plugin_can(uneven):
    """The other global fix with a visible effect on lstm (fairseq #5610): without the plugin, fairseq-generate stops
    at torch.load; with it, the same checkpoint loads with weights_only kept (every plugin run above)."""
    result = run("fairseq-generate", uneven["bin"], "--path", uneven["checkpoint"], "--cpu", "--gen-subset", "test",
                 check=False)
    assert result.returncode != 0
    assert "Unsupported global: GLOBAL argparse.Namespace" in result.stderr, result.stderr[-2000:]

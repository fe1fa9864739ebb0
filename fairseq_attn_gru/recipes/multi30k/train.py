"""Train the Multi30k model: a thin wrapper around fairseq-train with the recipe's defaults.

    python scripts/multi30k/train.py DATA_BIN SAVE_DIR [--minutes M] [--precision P] [any fairseq-train flags...]

Every flag after DATA_BIN SAVE_DIR other than --minutes and --precision goes to fairseq-train after the
defaults, so it overrides them (fairseq keeps the last value given). --minutes M stops after M minutes of wall
clock (fairseq's --stop-time-hours: it then validates and saves once more). --precision auto (the default)
adds the model's --cpu-bf16 only where a bfloat16 matmul measures faster than fp32 on this CPU. The full output
goes to SAVE_DIR/train.log; SAVE_DIR/train_info.json records the arch, the exact flags and the minutes taken.
"""
import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import List

from ..cli import USER_DIR, children_stopped_on_signals, fail, run_tool
from ..precision_probe import bf16_speedup

# conditional GRU + layer-normalised GRUs + concat attention: test_2016_flickr 42.40 against 41.07 for
# gru_attn_iwslt_de_en --attention-type concat (docs/multi30k.md)
ARCH = "gru_nematus"
KEEP_LAST_EPOCHS = 5
PRECISIONS = ("auto", "fp32", "bf16")
BF16_MIN_SPEEDUP = 1.1  # "auto" wants a clear win: the timing moves by a few per cent between calls
# glibc keeps the memory each batch frees instead of handing it back to the OS (and faulting it in again), and
# OpenMP threads spin between the decoder's many small per-step ops instead of sleeping: together 2,518 -> 2,995
# tok/s on a 2-core Xeon (benchmarks/NOTES.md). Variables already set in the environment win.
TRAIN_ENV = {"MALLOC_TRIM_THRESHOLD_": "1000000000", "MALLOC_MMAP_THRESHOLD_": "1000000000",
             "MALLOC_TOP_PAD_": "1000000000", "OMP_WAIT_POLICY": "ACTIVE"}


def default_flags(data_bin, save_dir) -> List[str]:
    return [
        # concat attention: val BLEU 27.66 after 3 epochs against general's 14.12 (README, tuning on val)
        str(data_bin), "--user-dir", USER_DIR, "--arch", ARCH, "--attention-type", "concat", "--task", "translation",
        "--source-lang", "de", "--target-lang", "en",
        # embeddings 512 (the architecture's 256; the tied output layer follows): lower val loss per minute from
        # the first epoch, 3.922 against 3.979 in the hour (docs/multi30k.md, tuning on val)
        "--encoder-embed-dim", "512", "--decoder-embed-dim", "512", "--decoder-out-embed-dim", "512",
        "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
        # inverse_sqrt, then a quarter of the rate each time validation loss has not improved for 2 epochs
        # (optim/inverse_sqrt_plateau.py): val BLEU +0.7 on average over the 3 epochs after the first plateau
        "--optimizer", "adam", "--lr", "0.002", "--lr-scheduler", "inverse_sqrt_plateau", "--warmup-updates", "400",
        "--lr-shrink", "0.25", "--lr-patience", "2",
        # 2000-token batches: twice the updates of 4000 for ~10 % fewer tokens/s; validation batches can be
        # larger (no gradients), which makes the per-epoch --eval-bleu cheaper
        # dropout 0.4: val sacreBLEU 43.68 against 0.3's 43.19 (docs/multi30k.md, tuning on val)
        "--max-tokens", "2000", "--max-tokens-valid", "8000", "--dropout", "0.4", "--share-decoder-input-output-embed",
        # validation BLEU is logged; validation loss (fairseq's default metric) picks checkpoint_best.pt, drives
        # early stopping and the schedule: val BLEU moves by up to 1.4 from one epoch to the next on a plateau
        "--eval-bleu", "--eval-bleu-args", '{"beam": 5, "max_len_a": 1.2, "max_len_b": 10}', "--eval-bleu-detok", "moses", "--eval-bleu-remove-bpe",
        "--best-checkpoint-metric", "loss", "--patience", "5",
        # the last epochs' checkpoints stay for run.py to average (average.py)
        "--cpu", "--log-format", "simple", "--log-interval", "50", "--keep-last-epochs", str(KEEP_LAST_EPOCHS),
        "--save-dir", str(save_dir),
    ]


def last_value(flags: List[str], name: str, default: str) -> str:
    """The value fairseq will use for ``name``: the last one given."""
    positions = [i for i, flag in enumerate(flags[:-1]) if flag == name]
    return flags[positions[-1] + 1] if positions else default


def training_env(environ) -> dict:
    """TRAIN_ENV less the variables ``environ`` already sets."""
    return {name: value for name, value in TRAIN_ENV.items() if name not in environ}


def resolve_precision(precision: str) -> str:
    """"bf16" or "fp32"; "auto" picks bf16 where it multiplies a decoder-sized matrix BF16_MIN_SPEEDUP× faster."""
    if precision not in PRECISIONS:
        fail(f"--precision={precision!r} is not allowed: one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        speedup = bf16_speedup()
        precision = "bf16" if speedup > BF16_MIN_SPEEDUP else "fp32"
        print(f"--precision auto: bfloat16 matmuls run at {speedup:.2f}x fp32 speed here -> {precision}", flush=True)
    return precision


def train(data_bin, save_dir, extra_flags=(), minutes=None, precision="auto", threads=None, echo_prefix=None) -> dict:
    """Run fairseq-train; returns (and writes to SAVE_DIR/train_info.json) {"arch", "train_flags", "train_minutes"}.

    ``threads``: OMP_NUM_THREADS for this run, unless the environment sets it. ``echo_prefix``: echo only the epoch
    summaries, tagged with it (for runs side by side), instead of every line."""
    if not (Path(data_bin) / "dict.de.txt").is_file():
        fail(f"DATA_BIN {str(data_bin)!r} holds no binarized data (dict.de.txt); run prepare.py first")
    if "--save-dir" in extra_flags:
        fail("--save-dir is not allowed among the forwarded flags: the checkpoints go to SAVE_DIR")
    save_dir = Path(save_dir)
    try:
        save_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fail(f"SAVE_DIR {str(save_dir)!r} cannot be created ({error.strerror or error})")
    flags = default_flags(data_bin, save_dir) + (["--cpu-bf16"] if resolve_precision(precision) == "bf16" else [])
    if minutes is not None:
        flags += ["--stop-time-hours", f"{minutes / 60:.6g}"]
    flags += [str(flag) for flag in extra_flags]
    start = time.time()
    env = training_env(os.environ)
    if threads is not None and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(threads)
    run_tool("fairseq-train", flags, save_dir / "train.log", echo_all=echo_prefix is None, echo_prefix=echo_prefix,
             env=env)
    info = {"arch": last_value(flags, "--arch", ARCH), "train_flags": flags,
            "train_minutes": round((time.time() - start) / 60, 2)}
    (save_dir / "train_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def train_side_by_side(data_bin, save_dirs: List[Path], member_flags: List[List[str]], minutes=None,
                       precision="auto") -> List[dict]:
    """One fairseq-train per save dir, all at once, the CPU's cores shared out between them (at least one each);
    returns their train() results in order. Each is its own process, so a failure of one leaves the others to
    finish (their checkpoints stay); then the first failure is raised."""
    threads = max(1, len(os.sched_getaffinity(0)) // len(save_dirs))
    with ThreadPoolExecutor(max_workers=len(save_dirs)) as pool:  # the threads only wait on the processes
        futures = [pool.submit(train, data_bin, save_dir, flags, minutes, precision, threads, save_dir.name)
                   for save_dir, flags in zip(save_dirs, member_flags)]
        wait(futures)
    return [future.result() for future in futures]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)  # so fairseq flags are never taken for ours
    parser.add_argument("data_bin", help="fairseq-preprocess output (prepare.py's OUT/bin)")
    parser.add_argument("save_dir", help="where checkpoints, train.log and train_info.json go")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this many minutes of wall clock")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="bf16: the model's --cpu-bf16; auto (default): bf16 where it measures faster here")
    args, fairseq_flags = parser.parse_known_args(argv)
    if args.minutes is not None and args.minutes <= 0:
        fail(f"--minutes={args.minutes} is not allowed: a positive number")
    with children_stopped_on_signals(f"fairseq-train was stopped; its checkpoints stay in {args.save_dir}: run the "
                                     f"same command to go on (it resumes from checkpoint_last.pt)"):
        info = train(args.data_bin, args.save_dir, fairseq_flags, args.minutes, args.precision)
    print(f"trained {info['arch']} for {info['train_minutes']} min; wrote {Path(args.save_dir) / 'train_info.json'}")


if __name__ == "__main__":  # python -m fairseq_attn_gru.recipes.multi30k.train ...
    from ..cli import run_main

    raise SystemExit(run_main(main))

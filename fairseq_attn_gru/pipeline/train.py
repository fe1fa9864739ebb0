"""Train a model on a prepared pair: fairseq-train with the pipeline's defaults, resumable.

    fairseq-attn-gru train --prep WORK/prep --save-dir WORK/main [--minutes M] [--precision P] [fairseq-train flags...]

Every flag other than --prep, --save-dir, --minutes, --precision and --device goes to fairseq-train after the
defaults, so it overrides them (fairseq keeps the last value given). --minutes M stops after M minutes of training
(fairseq's --stop-time-hours: it then validates and saves once more). --device auto (default) trains on the GPU
when torch sees one, else on the CPU (--cpu); --precision auto (default) adds the model's --cpu-bf16 on a CPU where
bfloat16 pays (precision_probe.py), fp32 on a GPU. The full output goes to SAVE_DIR/train.log.

SAVE_DIR/train_run.json records the options (every fairseq-train flag, the prepared data's id) before training
starts; run again, the same command reuses a finished model, resumes an interrupted one from checkpoint_last.pt
(fairseq counts the minutes already trained), and refuses other options in one line. SAVE_DIR/train_info.json,
written at the end, holds the arch, the flags, the minutes and the epochs trained.
"""
import argparse
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import List, Optional

from ..recipes import run_record
from ..recipes.cli import USER_DIR, children_stopped_on_signals, fail, run_tool
from ..recipes.precision_probe import bf16_decision
from .prepare import SETTINGS_FILE, load_prep, processing_of

# conditional GRU + layer-normalised GRUs + concat attention: test_2016_flickr 42.40 against 41.07 for
# gru_attn_iwslt_de_en --attention-type concat on de-en (docs/history/multi30k.md)
ARCH = "gru_nematus"
KEEP_LAST_EPOCHS = 5
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")
BF16_MIN_SPEEDUP = 1.1  # "auto" wants a clear win
RUN_RECORD = "train_run.json"
INFO_FILE = "train_info.json"
# glibc keeps the memory each batch frees instead of handing it back to the OS (and faulting it in again), and
# OpenMP threads spin between the decoder's many small per-step ops instead of sleeping: together 2,518 -> 2,995
# tok/s on a 2-core Xeon (docs/history/benchmarks.md). Variables already set in the environment win.
TRAIN_ENV = {"MALLOC_TRIM_THRESHOLD_": "1000000000", "MALLOC_MMAP_THRESHOLD_": "1000000000",
             "MALLOC_TOP_PAD_": "1000000000", "OMP_WAIT_POLICY": "ACTIVE"}


def default_flags(prep_dir: Path, prep: dict, save_dir, device: str) -> List[str]:
    processing = processing_of(prep_dir, prep)
    return [
        # concat attention: val BLEU 27.66 after 3 epochs against general's 14.12 (de-en, tuning on val)
        str(prep_dir / "bin"), "--user-dir", USER_DIR, "--arch", ARCH, "--attention-type", "concat",
        "--task", "translation", "--source-lang", prep["source_lang"], "--target-lang", prep["target_lang"],
        # embeddings 512 (the architecture's 256; the tied output layer follows): lower val loss per minute from
        # the first epoch, 3.922 against 3.979 in the hour (de-en, tuning on val)
        "--encoder-embed-dim", "512", "--decoder-embed-dim", "512", "--decoder-out-embed-dim", "512",
        "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
        # inverse_sqrt, then a quarter of the rate each time validation loss has not improved for 2 epochs
        # (optim/inverse_sqrt_plateau.py): val BLEU +0.7 on average over the 3 epochs after the first plateau
        "--optimizer", "adam", "--lr", "0.002", "--lr-scheduler", "inverse_sqrt_plateau", "--warmup-updates", "400",
        "--lr-shrink", "0.25", "--lr-patience", "2",
        # 2000-token batches: twice the updates of 4000 for ~10 % fewer tokens/s; validation batches can be
        # larger (no gradients), which makes the per-epoch --eval-bleu cheaper
        # dropout 0.4: val sacreBLEU 43.68 against 0.3's 43.19 (de-en, tuning on val)
        "--max-tokens", "2000", "--max-tokens-valid", "8000", "--dropout", "0.4", "--share-decoder-input-output-embed",
        # validation BLEU is logged; validation loss (fairseq's default metric) picks checkpoint_best.pt, drives
        # early stopping and the schedule: val BLEU moves by up to 1.4 from one epoch to the next on a plateau
        "--eval-bleu", "--eval-bleu-args", '{"beam": 5, "max_len_a": 1.2, "max_len_b": 10}',
        *processing.eval_bleu_flags(prep["target_lang"]),
        "--best-checkpoint-metric", "loss", "--patience", "5",
        # the last epochs' checkpoints stay for `select` to average (average.py)
        *(["--cpu"] if device == "cpu" else []),
        "--log-format", "simple", "--log-interval", "50", "--keep-last-epochs", str(KEEP_LAST_EPOCHS),
        "--save-dir", str(save_dir),
    ]


def last_value(flags: List[str], name: str, default: Optional[str]) -> Optional[str]:
    """The value fairseq will use for ``name``: the last one given."""
    positions = [i for i, flag in enumerate(flags[:-1]) if flag == name]
    return flags[positions[-1] + 1] if positions else default


def flag_values(flags: List[str]) -> dict:
    """{flag: the value fairseq uses} (True for a switch; the positional data path under "data"): what a rerun
    compares, so that the same flags in another order are the same options."""
    values, flags = {}, [str(flag) for flag in flags]
    for i, flag in enumerate(flags):
        if flag.startswith("--"):
            following = flags[i + 1] if i + 1 < len(flags) else None
            values[flag] = following if following is not None and not following.startswith("--") else True
        elif i == 0:
            values["data"] = flag
    return values


def training_env(environ) -> dict:
    """TRAIN_ENV less the variables ``environ`` already sets."""
    return {name: value for name, value in TRAIN_ENV.items() if name not in environ}


def resolve_device(device: str) -> str:
    if device not in DEVICES:
        fail(f"--device={device!r} is not allowed: one of {', '.join(DEVICES)}")
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        fail("--device=cuda is not allowed here: torch sees no GPU (a CPU-only torch build, or no device visible)")
    return device


def resolve_precision(precision: str, device: str = "cpu") -> str:
    """"bf16" or "fp32"; "auto": bf16 on a CPU where it pays (precision_probe.bf16_decision, reason printed), fp32 on
    a GPU (the model's --cpu-bf16 is a CPU feature)."""
    if precision not in PRECISIONS:
        fail(f"--precision={precision!r} is not allowed: one of {', '.join(PRECISIONS)}")
    if device == "cuda":
        if precision == "bf16":
            fail("--precision=bf16 is not allowed on a GPU: it is the model's --cpu-bf16; give fairseq's --fp16 or "
                 "--amp among the fairseq-train flags instead (fairseq-train's --bf16 needs a TPU)")
        return "fp32"
    if precision == "auto":
        use_bf16, why = bf16_decision(BF16_MIN_SPEEDUP)
        precision = "bf16" if use_bf16 else "fp32"
        print(f"--precision auto: {why} -> {precision}", flush=True)
    return precision


def prep_id(prep_dir: Path) -> str:
    """What identifies the prepared data a model is trained on: its settings file's content (inputs' sha256 in it)."""
    from .corpus import fingerprint

    return fingerprint(prep_dir / SETTINGS_FILE)


def epochs_trained(log: str) -> int:
    """The last epoch fairseq-train finished, from its log (0 when none did)."""
    done = re.findall(r"end of epoch (\d+)", log)
    return int(done[-1]) if done else 0


def saved_training_minutes(save_dir: Path) -> float:
    """fairseq's cumulative training time in SAVE_DIR/checkpoint_last.pt (0 without one): what a resumed run counts
    from when the previous one was killed outright (SIGKILL, a lost machine) before it could add its own minutes."""
    path = save_dir / "checkpoint_last.pt"
    if not path.is_file():
        return 0.0
    import torch

    from .. import fairseq_fixes  # noqa: F401  (the safe globals torch.load needs for fairseq checkpoints)

    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # a damaged checkpoint is fairseq-train's to report, with its own message
        return 0.0
    return round(state.get("extra_state", {}).get("previous_training_time", 0.0) / 60, 2)


def train(prep_dir, save_dir, extra_flags=(), minutes=None, precision="auto", threads=None, echo_prefix=None,
          device="auto") -> dict:
    """Run (or reuse, or resume) fairseq-train; returns SAVE_DIR/train_info.json's content: {"arch", "train_flags",
    "train_minutes", "epochs", "device", "precision"}.

    ``threads``: OMP_NUM_THREADS for this run, unless the environment sets it. ``echo_prefix``: echo only the epoch
    summaries, tagged with it (for runs side by side), instead of every line."""
    prep_dir, save_dir = Path(prep_dir), Path(save_dir)
    prep = load_prep(prep_dir)
    if "--save-dir" in extra_flags:
        fail("--save-dir is not allowed among the forwarded flags: the checkpoints go to SAVE_DIR")
    if minutes is not None and not minutes > 0:
        fail(f"--minutes={minutes} is not allowed: a positive number")
    device = resolve_device(device)
    if save_dir.exists() and not save_dir.is_dir():
        fail(f"SAVE_DIR {str(save_dir)!r} cannot be created (it is a file)")
    recorded = run_record.read_record(save_dir, RUN_RECORD)
    # an earlier run's measured choice stands: measuring again could choose otherwise and refuse the resume
    precision = (recorded["options"]["precision"] if recorded and precision == "auto"
                 else resolve_precision(precision, device))
    flags = default_flags(prep_dir, prep, save_dir, device) + (["--cpu-bf16"] if precision == "bf16" else [])
    if minutes is not None:
        flags += ["--stop-time-hours", f"{minutes / 60:.6g}"]
    flags += [str(flag) for flag in extra_flags]
    options = {"prep": prep_id(prep_dir), "device": device, "precision": precision, **flag_values(flags)}
    record = run_record.earlier_run(save_dir, RUN_RECORD, options, "--save-dir")
    if record is not None and record.get("finished"):
        print(f"== {save_dir}: reusing the model trained earlier with the same options", flush=True)
        return json.loads((save_dir / INFO_FILE).read_text())
    if record is not None:
        print(f"== {save_dir}: resuming the interrupted training from checkpoint_last.pt", flush=True)
    try:
        save_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fail(f"SAVE_DIR {str(save_dir)!r} cannot be created ({error.strerror or error})")
    record = record or {"options": options, "finished": False, "train_minutes": 0.0}
    record["train_minutes"] = max(record["train_minutes"], saved_training_minutes(save_dir))
    run_record.write_record(save_dir, RUN_RECORD, record)

    start = time.time()
    env = training_env(os.environ)
    if threads is not None and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(threads)
    log_path = save_dir / "train.log"
    try:
        log = run_tool("fairseq-train", flags, log_path, echo_all=echo_prefix is None, echo_prefix=echo_prefix,
                       env=env, append=True)
    finally:  # interrupted too: the minutes so far count
        record["train_minutes"] = round(record["train_minutes"] + (time.time() - start) / 60, 2)
        run_record.write_record(save_dir, RUN_RECORD, record)
    info = {"arch": last_value(flags, "--arch", ARCH), "train_flags": flags, "train_minutes": record["train_minutes"],
            "epochs": epochs_trained(log), "device": device, "precision": precision}
    (save_dir / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    record["finished"] = True
    run_record.write_record(save_dir, RUN_RECORD, record)
    return info


def train_side_by_side(prep_dir, save_dirs: List[Path], member_flags: List[List[str]], minutes=None,
                       precision="auto", device="auto") -> List[dict]:
    """One fairseq-train per save dir, all at once, the CPU's cores shared out between them (at least one each);
    returns their train() results in order. Each is its own process, so a failure of one leaves the others to
    finish (their checkpoints stay); then the first failure is raised."""
    threads = max(1, len(os.sched_getaffinity(0)) // len(save_dirs))
    with ThreadPoolExecutor(max_workers=len(save_dirs)) as pool:  # the threads only wait on the processes
        futures = [pool.submit(train, prep_dir, save_dir, flags, minutes, precision, threads, save_dir.name, device)
                   for save_dir, flags in zip(save_dirs, member_flags)]
        wait(futures)
    return [future.result() for future in futures]


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """Shared by train and run."""
    parser.add_argument("--minutes", type=float, default=None, help="stop after this many minutes of training")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="bf16: the model's --cpu-bf16; auto (default): bf16 on a CPU where it measures clearly "
                             "faster (the choice and its reason are printed), fp32 on a GPU")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="auto (default): the GPU when torch sees one, else the CPU")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fairseq-attn-gru train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)  # so fairseq flags are never taken for ours
    parser.add_argument("--prep", required=True, help="a `fairseq-attn-gru prepare` output directory")
    parser.add_argument("--save-dir", required=True, help="where checkpoints, train.log and train_info.json go")
    add_training_arguments(parser)
    args, fairseq_flags = parser.parse_known_args(argv)
    with children_stopped_on_signals(f"fairseq-train was stopped; its checkpoints stay in {args.save_dir}: run the "
                                     f"same command to go on (it resumes from checkpoint_last.pt)"):
        info = train(args.prep, args.save_dir, fairseq_flags, args.minutes, args.precision, device=args.device)
    print(f"trained {info['arch']} for {info['train_minutes']} min, {info['epochs']} epochs; wrote "
          f"{Path(args.save_dir) / INFO_FILE}")

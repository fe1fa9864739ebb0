"""The whole Multi30k German->English recipe: prepare -> train -> pick a checkpoint on val -> evaluate both
test sets -> results json.

    python scripts/multi30k/run.py --data /path/to/multi30k --work multi30k_work [--minutes 60]
    python scripts/multi30k/run.py ... --compare-minutes 20     # also train and score 6 variants
    python scripts/multi30k/run.py ... --reuse-comparison       # or keep those of the existing --results file

The main run trains one model on all cores in WORK/main; --models N (N > 1) trains N side by side instead, the
CPU's cores shared out between them, each with its own seed, in WORK/main/model1, model2, ..., and translates the
test sets with their ensemble (fairseq's: the models' next-token probabilities averaged at every beam step). Each
model translates with checkpoint_best.pt or the average of its last --average-last epoch checkpoints
(average.py), whichever scores higher on val.

Writes --results (default results/multi30k.json) and, next to it, <name>_attention.png (the main run's
attention on a test_2016_flickr sentence). Flags it does not know go to every fairseq-train run, after the
recipe's defaults (see train.py). --limit N and --bpe-merges go to prepare.py (--limit also cuts the
evaluation sets): small smoke runs. Running again with the same --work resumes each model from its
checkpoint_last.pt (fairseq's default); delete WORK/main to start over.
"""
import argparse
import contextlib
import json
import os
from pathlib import Path
from typing import List

from . import prepare
from .average import average_checkpoints, epoch_checkpoints
from .evaluate import check_prep, evaluate, translate
from .text import read_lines, require_text_tools
from ..cli import children_stopped_on_signals, fail
from ...errors import UserError, user_message
from .train import KEEP_LAST_EPOCHS, PRECISIONS, last_value, resolve_precision, train, train_side_by_side

from ...models.config import CONFIG_DEFAULTS, NAMED_ARCHITECTURES
from ..plotting import plot_attention, pyplot

TEST_SETS = ("test_2016_flickr", "test_2017_flickr")  # always there (prepare.py binarizes them too)
# trained with --compare-minutes: each adds these flags to the main run's flags
VARIANTS = {
    # the conditional GRU (the recipe's gru_nematus) needs attention: without it, the Luong-order GRU decoder
    "none": ["--attention-type", "none", "--decoder-style", "luong"],
    "dot": ["--attention-type", "dot"],
    "general": ["--attention-type", "general"],
    "concat": ["--attention-type", "concat"],
    "concat_bahdanau": ["--attention-type", "concat", "--decoder-style", "bahdanau"],
    "dot_teacher_forcing_0.8": ["--attention-type", "dot", "--teacher-forcing", "0.8"],
}
# an ensemble's models each get a share of the cores (two models: ~2,700 tok/s each against ~4,000 for one model on
# both cores, docs/multi30k.md), so an epoch takes ~1.5x as long and the recipe's first shrink of the rate after
# two validations without a new best (epoch 22 of a single model) would come after the hour: one validation instead
ENSEMBLE_FLAGS = ["--lr-patience", "1"]
# two models side by side in the hour: val 43.43 against one model's 43.14, within the single run's epoch-to-epoch
# noise, for twice the decoding time (docs/multi30k.md): one model by default, the ensemble an option
DEFAULT_MODELS = 1
ATTENTION_SENTENCE = 0  # the test_2016_flickr line shown in the heat map


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)  # so fairseq flags are never taken for ours
    parser.add_argument("--data", required=True, help="directory with the raw Multi30k files")
    parser.add_argument("--work", required=True, help="working directory: prep/, main/, compare/<variant>/")
    parser.add_argument("--minutes", type=float, default=60, help="main run's training time (default: 60)")
    parser.add_argument("--compare-minutes", type=float, default=0,
                        help="training minutes per comparison variant; 0 (default) skips the comparison")
    parser.add_argument("--reuse-comparison", action="store_true",
                        help="keep the comparison in the existing --results file instead of training it again; "
                             "the json then records that run's flags as comparison_base_flags")
    parser.add_argument("--models", type=int, default=DEFAULT_MODELS,
                        help="models trained side by side (each its own seed, the cores shared out) whose ensemble "
                             "translates; 1: one model on all cores (default: %(default)s)")
    parser.add_argument("--average-last", type=int, default=KEEP_LAST_EPOCHS,
                        help="average the main run's last N epoch checkpoints and keep the average if it beats "
                             "checkpoint_best.pt on val; 0 or 1: no averaging (default: %(default)s)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="bf16: the model's --cpu-bf16 for every run; auto (default): measured once, bf16 where "
                             "it is faster on this CPU")
    parser.add_argument("--skip-prepare", action="store_true", help="reuse WORK/prep from an earlier run")
    parser.add_argument("--skip-training", action="store_true",
                        help="reuse WORK/main as train.py left it (train_info.json, its checkpoints): choose the "
                             "checkpoint on val, score the test sets and write the results, without training again")
    parser.add_argument("--results", default="results/multi30k.json", help="results file (default: %(default)s)")
    parser.add_argument("--bpe-merges", type=int, default=10000, help="for prepare.py (default: 10000)")
    parser.add_argument("--limit", type=int, default=None, help="first N lines of every split (smoke runs)")
    args, train_flags = parser.parse_known_args(argv)
    if args.minutes <= 0:
        fail(f"--minutes={args.minutes} is not allowed: a positive number")
    if args.compare_minutes < 0:
        fail(f"--compare-minutes={args.compare_minutes} is not allowed: 0 (no comparison) or more")
    if args.reuse_comparison and args.compare_minutes > 0:
        fail("--reuse-comparison and --compare-minutes > 0 are not allowed together: reuse the comparison or train it")
    if args.skip_training and args.precision != "auto":
        fail(f"--precision={args.precision} is not allowed with --skip-training: the finished run's training fixed "
             "its precision (the comparison trains the same way)")
    if args.models < 1:
        fail(f"--models={args.models} is not allowed: 1 (one model) or more (an ensemble)")
    seed = last_value(train_flags, "--seed", "1")
    if not seed.lstrip("-").isdigit():
        fail(f"--seed={seed} is not allowed: an integer (an ensemble's models take SEED, SEED+1, ...)")
    if args.average_last < 0:
        fail(f"--average-last={args.average_last} is not allowed: 0 (no averaging) or more")
    return args, train_flags


def member_dirs(work: Path, models: int) -> List[Path]:
    """Where each model of the main run trains: WORK/main for one model, WORK/main/model1, model2, ... for more."""
    return [work / "main"] if models == 1 else [work / "main" / f"model{i}" for i in range(1, models + 1)]


def member_flags(train_flags: List[str], models: int) -> List[List[str]]:
    """Each model's fairseq-train flags: for an ensemble ENSEMBLE_FLAGS (the user's flags override them) and its own
    seed, SEED + i (SEED: the flags' --seed, fairseq's default 1)."""
    if models == 1:
        return [list(train_flags)]
    seed = int(last_value(train_flags, "--seed", "1"))
    return [[*ENSEMBLE_FLAGS, *train_flags, "--seed", str(seed + i)] for i in range(models)]


def trained_run(save_dir: Path) -> dict:
    """train_info.json of a finished train.py run in ``save_dir``; one line when there is none or no checkpoint."""
    info_path = save_dir / "train_info.json"
    if not info_path.is_file() or not (save_dir / "checkpoint_best.pt").is_file():
        fail(f"--skip-training: {str(save_dir)!r} holds no finished train.py run (train_info.json and "
             "checkpoint_best.pt); train it first, with run.py or train.py")
    info = json.loads(info_path.read_text())
    print(f"== main run: reusing {save_dir} ({info['arch']}, {info['train_minutes']} min)", flush=True)
    return info


def score(prep, checkpoint, data, split, limit, out_prefix=None) -> dict:
    """{"sacrebleu", "signature"} of the checkpoint on the raw split files data/<split>.de -> .en."""
    return evaluate(prep, checkpoint, data / f"{split}.de", data / f"{split}.en", limit=limit, out_prefix=out_prefix)


def choose_checkpoint(prep, data, save_dir, average_last, limit):
    """checkpoint_best.pt or the average of the last `average_last` epochs: whichever scores higher on val.

    Returns (path, {"chosen", "val_sacrebleu": {name: score}}). A run with fewer epochs averages those it has.
    """
    candidates = {"checkpoint_best.pt": save_dir / "checkpoint_best.pt"}
    epochs = epoch_checkpoints(save_dir)[-average_last:] if average_last > 1 else []
    if len(epochs) > 1:
        print(f"== main run: averaging {', '.join(path.name for path in epochs)}", flush=True)
        averaged = average_checkpoints(epochs, save_dir / f"checkpoint_avg{len(epochs)}.pt")
        candidates[averaged.name] = averaged
    val = {name: score(prep, path, data, "val", limit, out_prefix=save_dir / f"val.{path.stem}")["sacrebleu"]
           for name, path in candidates.items()}
    chosen = max(val, key=val.get)
    print(f"== main run: val sacreBLEU {val}; translating the test sets with {chosen}", flush=True)
    return candidates[chosen], {"chosen": chosen, "val_sacrebleu": val}


def ensemble(prep, data, main_dir: Path, infos: List[dict], chosen, tests, limit):
    """The ensemble of the models' chosen checkpoints (fairseq's --path A:B:...) and the results json's start: the
    first model's arch and flags (the others differ only by --seed), the longest training, the ensemble's val score,
    and under "members" each model's own run, checkpoint choice and test scores (what the ensemble adds)."""
    checkpoint = os.pathsep.join(str(path) for path, _ in chosen)
    val = score(prep, checkpoint, data, "val", limit, out_prefix=main_dir / "val.ensemble")["sacrebleu"]
    print(f"== main run: val sacreBLEU of the ensemble {val}", flush=True)
    members = []
    for info, (path, selection) in zip(infos, chosen):
        member = {"save_dir": path.parent.name, **info, "checkpoint": selection}
        member.update({name: score(prep, path, data, name, limit, out_prefix=path.parent / name) for name in tests})
        print(f"   {member['save_dir']} alone: " + "  ".join(f"{name} {member[name]['sacrebleu']}" for name in tests),
              flush=True)
        members.append(member)
    results = {"arch": infos[0]["arch"], "train_flags": infos[0]["train_flags"],
               "train_minutes": max(info["train_minutes"] for info in infos),
               "checkpoint": {"chosen": [f"{path.parent.name}/{path.name}" for path, _ in chosen],
                              "val_sacrebleu": {"ensemble": val}},
               "members": members}
    return checkpoint, results


def compare(prep, data, work, train_flags, minutes, precision, limit) -> dict:
    """Each variant trained for the same minutes with the same flags but its own: val and test_2016 sacreBLEU."""
    comparison = {}
    for name, variant_flags in VARIANTS.items():
        print(f"== comparison {name}: training {minutes} min with {' '.join(variant_flags)}", flush=True)
        save_dir = work / "compare" / name
        info = train(prep / "bin", save_dir, [*train_flags, *variant_flags], minutes, precision)
        checkpoint = save_dir / "checkpoint_best.pt"
        val, test = score(prep, checkpoint, data, "val", limit), score(prep, checkpoint, data, TEST_SETS[0], limit)
        comparison[name] = {"extra_flags": variant_flags, "train_minutes": info["train_minutes"],
                            "val_sacrebleu": val["sacrebleu"], "test_2016_flickr_sacrebleu": test["sacrebleu"]}
        print(f"== comparison {name}: val {val['sacrebleu']}  test_2016_flickr {test['sacrebleu']}", flush=True)
    return comparison


def earlier_comparison(results_path: Path) -> dict:
    """{"comparison", "comparison_base_flags"} of an earlier results file, for --reuse-comparison."""
    earlier = json.loads(results_path.read_text()) if results_path.is_file() else {}
    base_flags = earlier.get("comparison_base_flags", earlier.get("train_flags"))
    if not earlier.get("comparison") or not base_flags:
        fail(f"--reuse-comparison: {str(results_path)!r} holds no comparison to reuse; train it with --compare-minutes")
    return {"comparison": earlier["comparison"], "comparison_base_flags": base_flags}


def test_sets(data: Path) -> list:
    """TEST_SETS, then every other test_*.de / test_*.en pair in ``data`` (Multi30k also has test_2018_flickr and
    test_2017_mscoco): each is scored. A test_*.de without its .en is named and skipped (nothing to score against)."""
    found = sorted(path.name[: -len(".de")] for path in data.glob("test_*.de"))
    extra = [name for name in found if name not in TEST_SETS]
    for name in extra:
        if not (data / f"{name}.en").is_file():
            print(f"note: {data / name}.de has no {name}.en beside it: not scored", flush=True)
    return [*TEST_SETS, *(name for name in extra if (data / f"{name}.en").is_file())]


def has_attention(train_info: dict) -> bool:
    """Whether the trained model attends (fairseq-generate --print-alignment crashes on one that does not)."""
    arch_default = NAMED_ARCHITECTURES.get(train_info["arch"], CONFIG_DEFAULTS)["attention_type"]
    return last_value(train_info["train_flags"], "--attention-type", arch_default) != "none"


def plot_test_attention(prep, checkpoint, data, path, log_prefix) -> None:
    """Heat map of the model's attention (BPE tokens: what the model sees) on one test_2016_flickr sentence."""
    source = read_lines(data / "test_2016_flickr.de")[ATTENTION_SENTENCE]
    reference = read_lines(data / "test_2016_flickr.en")[ATTENTION_SENTENCE]
    # no --remove-bpe: the alignment's rows and columns are BPE tokens (+ </s>)
    translation = translate(prep, checkpoint, [source], [reference], log_prefix,
                            generate_flags=["--print-alignment", "soft"])[0]
    plot_attention(translation, path, title=f"attention on test_2016_flickr line {ATTENTION_SENTENCE + 1}",
                   source_label="source (German, BPE)", target_label="output (English, BPE)", figsize=(8, 6.5),
                   fontsize=8)


def check_raw_data(data: Path, extra_splits=()) -> None:
    """Every raw file is readable UTF-8 text and each split's .de and .en have as many lines (> 0): a damaged file
    would otherwise stop prepare.py or evaluate.py with a traceback, or pair the wrong sentences (after the hour of
    training, for a test set only evaluate.py reads)."""
    prepare.check_data(data)
    for split in dict.fromkeys([*prepare.SPLITS, *extra_splits]):
        counts = {}
        for lang in prepare.LANGS:
            path = data / f"{split}.{lang}"
            try:
                counts[lang] = len(read_lines(path))
            except UnicodeDecodeError:
                raw = path.read_bytes()
                try:
                    raw.decode("utf-8")
                    where = ""
                except UnicodeDecodeError as error:  # the position in the whole file, not in a read chunk
                    line = raw.count(b"\n", 0, error.start) + 1
                    where = f" (line {line}, byte 0x{raw[error.start]:02x})"
                fail(f"--data: {str(path)!r} is not UTF-8 text{where}: a damaged file?")
            except OSError as error:
                fail(f"--data: {str(path)!r} cannot be read ({error.strerror or error})")
            if counts[lang] == 0:
                fail(f"--data: {str(path)!r} is empty")
        if counts["de"] != counts["en"]:
            fail(f"--data: {split}.de has {counts['de']} lines but {split}.en has {counts['en']}: the files must be "
                 "line-aligned translations")


@contextlib.contextmanager
def one_line_errors():
    """An exception that carries a one-line message (fairseq's, explained by this package's fixes, e.g. a damaged
    checkpoint loaded in this process) becomes a UserError, which the script prints as ``error: ...``."""
    try:
        yield
    except UserError:
        raise
    except Exception as error:
        message = user_message(error)
        if message is None:
            raise
        raise UserError(message) from error


def main(argv=None):
    """SIGINT/SIGTERM stop the fairseq-train processes first (every model's, side by side), then the script, with
    one line: their checkpoints stay and the same command resumes them."""
    with children_stopped_on_signals("the running fairseq tools were stopped; what they saved stays in --work: run "
                                     "the same command to go on (each model resumes from its checkpoint_last.pt)"), \
            one_line_errors():
        run(argv)


def run(argv=None):
    args, train_flags = parse_args(argv)
    require_text_tools()  # both serve after the hour's training: a missing one is said before it
    pyplot()
    data, work, results_path = Path(args.data), Path(args.work), Path(args.results)
    prep = work / "prep"
    tests = test_sets(data) if data.is_dir() else list(TEST_SETS)  # check_raw_data names a missing directory
    check_raw_data(data, tests)
    if args.skip_prepare:
        check_prep(prep)
    else:
        prepare.main(["--data", str(data), "--out", str(prep), "--bpe-merges", str(args.bpe_merges),
                      *(["--limit", str(args.limit)] if args.limit else [])])

    reused = earlier_comparison(results_path) if args.reuse_comparison else None  # fail before the hour, not after
    save_dirs = member_dirs(work, args.models)
    if args.skip_training:
        infos = [trained_run(save_dir) for save_dir in save_dirs]
        precision = "bf16" if "--cpu-bf16" in infos[0]["train_flags"] else "fp32"  # the comparison trains the same way
    else:
        side_by_side = f", {args.models} models side by side" if args.models > 1 else ""
        print(f"== main run: training {args.minutes} min{side_by_side}", flush=True)
        precision = resolve_precision(args.precision)  # once, so every run trains the same way
        flags = member_flags(train_flags, args.models)
        infos = (train_side_by_side(prep / "bin", save_dirs, flags, args.minutes, precision) if args.models > 1
                 else [train(prep / "bin", save_dirs[0], flags[0], args.minutes, precision)])
    chosen = [choose_checkpoint(prep, data, save_dir, args.average_last, args.limit) for save_dir in save_dirs]
    if args.models == 1:
        (checkpoint, selection), = chosen
        results = {**infos[0], "checkpoint": selection}
    else:
        checkpoint, results = ensemble(prep, data, work / "main", infos, chosen, tests, args.limit)
    print(f"== main run: translating {', '.join(tests)} (beam 5)", flush=True)
    results.update({name: score(prep, checkpoint, data, name, args.limit, out_prefix=work / "main" / name)
                    for name in tests})
    for name in tests:
        print(f"   {name}: sacreBLEU {results[name]['sacrebleu']}  ({results[name]['signature']})", flush=True)
    if reused:
        results.update(reused)
    else:
        results["comparison"] = (compare(prep, data, work, train_flags, args.compare_minutes, precision, args.limit)
                                 if args.compare_minutes > 0 else {})

    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {results_path}")
    attention_path = results_path.with_name(results_path.stem + "_attention.png")
    if has_attention(results):
        plot_test_attention(prep, checkpoint, data, attention_path, log_prefix=work / "main" / "attention")
        print(f"wrote {attention_path}")
    else:
        attention_path.unlink(missing_ok=True)  # an older run's map would look like this model's
        print(f"no {attention_path}: the model has no attention")


if __name__ == "__main__":  # python -m fairseq_attn_gru.recipes.multi30k.run ...
    from ..cli import run_main

    raise SystemExit(run_main(main))

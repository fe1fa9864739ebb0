"""The whole pipeline for one direction: prepare -> train -> pick a checkpoint on val -> evaluate every test set ->
results json.

    fairseq-attn-gru run --source-lang en --target-lang fr --data DIR --work WORK --minutes 58 --results R.json
    fairseq-attn-gru run --source-lang xx --target-lang yy --train P --valid P --test P [P ...] --work WORK ...

Every file is checked before anything is written, the test sets too (corpus.py), so a damaged one stops the run
before the hour of training, not after. WORK/prep is ``prepare``'s output (reused when the settings and inputs are
the same); the main run trains one model in WORK/main (``train``: resumed when interrupted, reused when finished,
refused when its options changed); ``select`` picks checkpoint_best.pt or the average of the last --average-last
epochs on val; every test set is translated (beam 5) and scored (sacreBLEU with its signature, chrF, BLEU tok-lc).
--models N (N > 1) trains N models side by side instead, the cores shared out, each with its own seed, in
WORK/main/model1, model2, ..., and translates with their ensemble. --compare-minutes M also trains and scores a few
attention variants for M minutes each.

--results (default WORK/results.json) gets source_lang, target_lang, train_minutes, epochs, the date, wall_minutes
(this command's, start to results; a resumed run's last part only), the CPU with its measured matmul peaks (before
and after training), the exact command, the preparation (text processing, cleaning counts), the training flags,
the checkpoint choice, and per test set every score; and, next to it, <name>_attention.png (the model's attention
on the first test set's first sentence). Flags the pipeline does not know go to every fairseq-train run after its
defaults. SIGINT/SIGTERM stop the running fairseq tools first, then the pipeline (exit 130/143); the same command
resumes.
"""
import argparse
import contextlib
import datetime
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import List

from ..errors import UserError, user_message
from ..models.config import CONFIG_DEFAULTS, NAMED_ARCHITECTURES
from ..recipes.cli import children_stopped_on_signals, fail
from ..recipes.machine import machine_description
from ..recipes.plotting import plot_attention, pyplot
from .corpus import check_splits, read_pair
from .evaluate import Translator, evaluate_split
from .prepare import add_data_arguments, add_processing_arguments, check_arguments, data_splits, prepare
from .select_checkpoint import choose_checkpoint
from .train import KEEP_LAST_EPOCHS, add_training_arguments, last_value, train, train_side_by_side

# trained with --compare-minutes: each adds these flags to the main run's flags
VARIANTS = {
    # the conditional GRU (the pipeline's gru_nematus) needs attention: without it, the Luong-order GRU decoder
    "none": ["--attention-type", "none", "--decoder-style", "luong"],
    "dot": ["--attention-type", "dot"],
    "general": ["--attention-type", "general"],
    "concat": ["--attention-type", "concat"],
    "concat_bahdanau": ["--attention-type", "concat", "--decoder-style", "bahdanau"],
    "dot_teacher_forcing_0.8": ["--attention-type", "dot", "--teacher-forcing", "0.8"],
}
# an ensemble's models each get a share of the cores (two models: ~2,700 tok/s each against ~4,000 for one model on
# both cores), so an epoch takes ~1.5x as long and the first shrink of the rate after two validations without a
# new best would come after the hour: one validation instead
ENSEMBLE_FLAGS = ["--lr-patience", "1"]
ATTENTION_SENTENCE = 0  # the first test set's line shown in the heat map


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="fairseq-attn-gru run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)  # so fairseq flags are never taken for ours
    add_data_arguments(parser)
    parser.add_argument("--test", nargs="+", default=[], metavar="PREFIX",
                        help="with --train/--valid: test sets, each PREFIX.SRC and PREFIX.TGT (--data finds them)")
    add_processing_arguments(parser)
    parser.add_argument("--work", required=True, help="working directory: prep/, main/, compare/<variant>/")
    add_training_arguments(parser)
    parser.add_argument("--compare-minutes", type=float, default=0,
                        help="training minutes per comparison variant; 0 (default) skips the comparison")
    parser.add_argument("--reuse-comparison", action="store_true",
                        help="keep the comparison in the existing --results file instead of training it again; "
                             "the json then records that run's flags as comparison_base_flags")
    parser.add_argument("--models", type=int, default=1,
                        help="models trained side by side (each its own seed, the cores shared out) whose ensemble "
                             "translates; 1: one model on all cores (default: %(default)s)")
    parser.add_argument("--average-last", type=int, default=KEEP_LAST_EPOCHS,
                        help="average the main run's last N epoch checkpoints and keep the average if it beats "
                             "checkpoint_best.pt on val; 0 or 1: no averaging (default: %(default)s)")
    parser.add_argument("--results", default=None, help="results file (default: WORK/results.json)")
    args, train_flags = parser.parse_known_args(argv)
    if args.minutes is None:
        args.minutes = 60.0
    if not args.minutes > 0:
        fail(f"--minutes={args.minutes} is not allowed: a positive number")
    if not args.compare_minutes >= 0:
        fail(f"--compare-minutes={args.compare_minutes} is not allowed: 0 (no comparison) or more")
    if args.reuse_comparison and args.compare_minutes > 0:
        fail("--reuse-comparison and --compare-minutes > 0 are not allowed together: reuse the comparison or train it")
    if args.models < 1:
        fail(f"--models={args.models} is not allowed: 1 (one model) or more (an ensemble)")
    seed = last_value(train_flags, "--seed", "1")
    if not seed.lstrip("-").isdigit():
        fail(f"--seed={seed} is not allowed: an integer (an ensemble's models take SEED, SEED+1, ...)")
    if args.average_last < 0:
        fail(f"--average-last={args.average_last} is not allowed: 0 (no averaging) or more")
    if args.test and args.data is not None:
        fail("--test is not allowed with --data: --data DIR scores every test_* pair it holds")
    if "--save-dir" in train_flags:
        fail("--save-dir is not allowed: the pipeline trains into WORK/main (and WORK/compare/<variant>)")
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


def score_splits(prep, checkpoint, splits, out_dir: Path, limit) -> dict:
    """{split name: scores} of one checkpoint (or ensemble) on each split; outputs in out_dir/<name>.*."""
    translator = Translator(prep, checkpoint)
    return {split.name: evaluate_split(translator, split, out_dir / split.name, limit) for split in splits}


def ensemble(prep, main_dir: Path, infos: List[dict], chosen, valid, tests, limit):
    """The ensemble of the models' chosen checkpoints (fairseq's --path A:B:...) and the results json's start: the
    first model's arch and flags (the others differ only by --seed), the longest training, the ensemble's val score,
    and under "members" each model's own run, checkpoint choice and test scores (what the ensemble adds)."""
    checkpoint = os.pathsep.join(str(path) for path, _ in chosen)
    val = score_splits(prep, checkpoint, [valid], main_dir / "ensemble", limit)[valid.name]["sacrebleu"]
    print(f"== main run: val sacreBLEU of the ensemble {val}", flush=True)
    members = []
    for info, (path, selection) in zip(infos, chosen):
        member = {"save_dir": path.parent.name, **info, "checkpoint": selection,
                  "tests": score_splits(prep, path, tests, path.parent, limit)}
        print(f"   {member['save_dir']} alone: " + "  ".join(f"{name} {scores['sacrebleu']}"
                                                             for name, scores in member["tests"].items()), flush=True)
        members.append(member)
    results = {"arch": infos[0]["arch"], "train_flags": infos[0]["train_flags"],
               "train_minutes": max(info["train_minutes"] for info in infos),
               "epochs": min(info["epochs"] for info in infos), "device": infos[0]["device"],
               "precision": infos[0]["precision"],
               "checkpoint": {"chosen": [f"{path.parent.name}/{path.name}" for path, _ in chosen],
                              "val_sacrebleu": {"ensemble": val}},
               "members": members}
    return checkpoint, results


def compare(prep, work, train_flags, minutes, precision, device, valid, first_test, limit) -> dict:
    """Each variant trained for the same minutes with the same flags but its own: val and first test set sacreBLEU."""
    comparison = {}
    for name, variant_flags in VARIANTS.items():
        print(f"== comparison {name}: training {minutes} min with {' '.join(variant_flags)}", flush=True)
        save_dir = work / "compare" / name
        info = train(prep, save_dir, [*train_flags, *variant_flags], minutes, precision, device=device)
        scores = score_splits(prep, save_dir / "checkpoint_best.pt", [valid, first_test], save_dir, limit)
        comparison[name] = {"extra_flags": variant_flags, "train_minutes": info["train_minutes"],
                            "val_sacrebleu": scores[valid.name]["sacrebleu"],
                            f"{first_test.name}_sacrebleu": scores[first_test.name]["sacrebleu"]}
        print(f"== comparison {name}: val {scores[valid.name]['sacrebleu']}  "
              f"{first_test.name} {scores[first_test.name]['sacrebleu']}", flush=True)
    return comparison


def earlier_comparison(results_path: Path) -> dict:
    """{"comparison", "comparison_base_flags"} of an earlier results file, for --reuse-comparison."""
    earlier = json.loads(results_path.read_text()) if results_path.is_file() else {}
    base_flags = earlier.get("comparison_base_flags", earlier.get("train_flags"))
    if not earlier.get("comparison") or not base_flags:
        fail(f"--reuse-comparison: {str(results_path)!r} holds no comparison to reuse; train it with --compare-minutes")
    return {"comparison": earlier["comparison"], "comparison_base_flags": base_flags}


def has_attention(train_info: dict) -> bool:
    """Whether the trained model attends (an attention-free model has no alignment to draw)."""
    arch_default = NAMED_ARCHITECTURES.get(train_info["arch"], CONFIG_DEFAULTS)["attention_type"]
    return last_value(train_info["train_flags"], "--attention-type", arch_default) != "none"


def plot_test_attention(prep, checkpoint, split, source_lang, target_lang, path) -> None:
    """Heat map of the model's attention (subword tokens: what the model sees) on one test sentence."""
    texts = read_pair(split, source_lang, target_lang)
    translation = Translator(prep, checkpoint).translations([texts[source_lang][ATTENTION_SENTENCE]],
                                                            alignment=True)[0]
    plot_attention(translation, path, title=f"attention on {split.name} line {ATTENTION_SENTENCE + 1}",
                   source_label=f"source ({source_lang}, subwords)", target_label=f"output ({target_lang}, subwords)",
                   figsize=(8, 6.5), fontsize=8)


@contextlib.contextmanager
def one_line_errors():
    """An exception that carries a one-line message (fairseq's, explained by this package's fixes, e.g. a damaged
    checkpoint loaded in this process) becomes a UserError, which the command prints as ``error: ...``."""
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
    """SIGINT/SIGTERM stop the fairseq-train processes first (every model's, side by side), then the pipeline, with
    one line: their checkpoints stay and the same command resumes them."""
    with children_stopped_on_signals("the running fairseq tools were stopped; what they saved stays in --work: run "
                                     "the same command to go on (each model resumes from its checkpoint_last.pt)"), \
            one_line_errors():
        run(argv)


def run(argv=None):
    started = time.monotonic()
    argv = list(sys.argv[2:] if argv is None else argv)  # sys.argv: fairseq-attn-gru run ...
    args, train_flags = parse_args(argv)
    check_arguments(args)
    pyplot()  # the attention map comes after the hour's training: a missing matplotlib is said before it
    work = Path(args.work)
    results_path = Path(args.results) if args.results else work / "results.json"
    splits = data_splits(args, args.test)
    valid = next(split for split in splits if split.role == "valid")
    tests = [split for split in splits if split.role == "test"]
    if not tests:
        fail("no test set: --data DIR holds no test_* pair with both languages; give --train/--valid with --test, or "
             "use `fairseq-attn-gru prepare` and `train` without one")
    check_splits(splits, args.source_lang, args.target_lang)  # the test sets too: before the hour, not after
    reused = earlier_comparison(results_path) if args.reuse_comparison else None  # fail before the hour, not after
    machine = machine_description()
    print(f"== machine: {machine['model']}, {machine['cores']} cores, matmul fp32 {machine['fp32_matmul_gflops']} "
          f"GFLOP/s, bf16 {machine['bf16_matmul_gflops']} GFLOP/s", flush=True)

    prep = work / "prep"
    args.out = str(prep)
    prepared = prepare(args, splits)
    save_dirs = member_dirs(work, args.models)
    side_by_side = f", {args.models} models side by side" if args.models > 1 else ""
    print(f"== main run: training {args.minutes} min{side_by_side}", flush=True)
    flags = member_flags(train_flags, args.models)
    infos = (train_side_by_side(prep, save_dirs, flags, args.minutes, args.precision, args.device)
             if args.models > 1 else [train(prep, save_dirs[0], flags[0], args.minutes, args.precision,
                                            device=args.device)])
    chosen = [choose_checkpoint(prep, save_dir, args.average_last, label=save_dir.name) for save_dir in save_dirs]
    if args.models == 1:
        (checkpoint, selection), = chosen
        results = {**infos[0], "checkpoint": selection}
    else:
        checkpoint, results = ensemble(prep, work / "main", infos, chosen, valid, tests, args.limit)
    print(f"== main run: translating {', '.join(split.name for split in tests)} (beam 5)", flush=True)
    results["tests"] = score_splits(prep, checkpoint, tests, work / "main", args.limit)
    for name, scores in results["tests"].items():
        print(f"   {name}: sacreBLEU {scores['sacrebleu']}  chrF {scores['chrf']}  BLEU tok-lc {scores['bleu_tok_lc']}"
              f"  ({scores['signature']})", flush=True)
    if reused:
        results.update(reused)
    else:
        results["comparison"] = (compare(prep, work, train_flags, args.compare_minutes, infos[0]["precision"],
                                         infos[0]["device"], valid, tests[0], args.limit)
                                 if args.compare_minutes > 0 else {})
    machine["fp32_matmul_gflops_after"] = machine_description()["fp32_matmul_gflops"]
    results = {"source_lang": args.source_lang, "target_lang": args.target_lang,
               "command": shlex.join(["fairseq-attn-gru", "run", *argv]),
               "date": datetime.date.today().isoformat(),
               "wall_minutes": round((time.monotonic() - started) / 60, 1), "cpu": machine,
               "prep": {key: prepared[key] for key in ("text_processing", "vocab", "subword_size", "cleaning",
                                                       "dictionary", "lines")},
               **results}
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {results_path}")
    attention_path = results_path.with_name(results_path.stem + "_attention.png")
    if has_attention(results):
        plot_test_attention(prep, checkpoint, tests[0], args.source_lang, args.target_lang, attention_path)
        print(f"wrote {attention_path}")
    else:
        attention_path.unlink(missing_ok=True)  # an older run's map would look like this model's
        print(f"no {attention_path}: the model has no attention")

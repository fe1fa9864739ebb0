"""The main demo: what attention does for a GRU seq2seq, on the toy `translate` task.

For each attention type (none, dot, general, concat) it trains with `fairseq-train`, translates the
test split with `fairseq-generate --beam 5`, scores with `fairseq-score` and sacreBLEU's Python API,
and writes to --out-dir: results.md, results.json, attention_<type>.png, bleu_by_length.png.

    python scripts/demo.py --out-dir demo_out           # the full demo (make demo)
    python scripts/demo.py --out-dir /tmp/d --quick     # a seconds-long smoke run (used by the tests)

Each model's checkpoints go to OUT_DIR/checkpoints/<type>/ with demo_run.json, the options they were trained
with.
Running again into the same --out-dir reuses a model trained with the same options (and says so), resumes one
whose training was interrupted, and refuses, in one line, checkpoints trained with other options: use another
--out-dir, or delete OUT_DIR/checkpoints/<type> to train it again. SIGINT/SIGTERM stop the fairseq tool the demo is
running, then the demo (exit status 130/143).
"""
import argparse
import json
import time
from pathlib import Path

from . import run_record
from .cli import USER_DIR, children_stopped_on_signals, fail, run_tool
from .plotting import plot_attention, pyplot
from .scoring import parse_generate_output, sacrebleu_score, score_translations, trained_parameters

ARCH_BY_TYPE = {"none": "gru_seq2seq", "dot": "gru_attn_dot", "general": "gru_attn_general", "concat": "gru_attn_concat"}
MAX_TOKENS = 2000
LENGTH_BUCKETS = [(3, 8), (9, 14), (15, 20), (21, 26), (27, 32), (33, 40)]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", default="demo_out", help="where results and plots go (default: demo_out)")
    parser.add_argument("--types", default="none,dot,general,concat", help="attention types to compare")
    parser.add_argument("--rule", default="translate", choices=["copy", "reverse", "sort", "translate"])
    parser.add_argument("--vocab-size", type=int, default=100, help="toy vocabulary size")
    parser.add_argument("--min-len", type=int, default=3, help="shortest toy sentence")
    parser.add_argument("--max-len", type=int, default=30, help="longest toy sentence")
    parser.add_argument("--train-size", type=int, default=12000, help="training sentence pairs")
    parser.add_argument("--test-size", type=int, default=500, help="test sentence pairs")
    parser.add_argument("--epochs", type=int, default=18, help="training epochs per model (default: 18)")
    parser.add_argument("--seed", type=int, default=1, help="toy data seed (also fairseq's --seed)")
    parser.add_argument("--lr", type=float, default=0.003, help="peak Adam learning rate (default: 0.003)")
    parser.add_argument("--clip-norm", type=float, default=5.0, help="gradient norm clipping (default: 5)")
    parser.add_argument("--cpu-bf16", action="store_true", help="train and generate with the model's --cpu-bf16")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the pipeline in seconds")
    args = parser.parse_args(argv)
    if args.quick:
        args.train_size, args.test_size, args.epochs, args.max_len, args.vocab_size = 200, 16, 1, 8, 20
    types = args.types.split(",")
    unknown = [t for t in types if t not in ARCH_BY_TYPE]
    if unknown:
        parser.error(f"--types: unknown attention type {unknown[0]!r}; allowed: {', '.join(ARCH_BY_TYPE)}")
    if len(set(types)) < len(types):
        fail(f"--types={args.types!r} is not allowed: each attention type once")
    for flag, value, low, allowed in [("--epochs", args.epochs, 1, "a positive integer (fairseq's --max-epoch 0 "
                                       "would train without end)"),
                                      ("--vocab-size", args.vocab_size, 2, "an integer >= 2"),
                                      ("--min-len", args.min_len, 1, "an integer >= 1"),
                                      ("--max-len", args.max_len, args.min_len,
                                       f"an integer >= --min-len ({args.min_len})"),
                                      ("--train-size", args.train_size, 1, "a positive integer"),
                                      ("--test-size", args.test_size, 1, "a positive integer"),
                                      ("--seed", args.seed, 0, "an integer >= 0")]:
        if value < low:
            fail(f"{flag}={value} is not allowed: {allowed}")
    if not args.lr > 0:
        fail(f"--lr={args.lr} is not allowed: a positive number")
    if not args.clip_norm >= 0:
        fail(f"--clip-norm={args.clip_norm} is not allowed: 0 (no clipping) or more")
    return args


# -- the checkpoints of an earlier run into the same --out-dir -------------------------------------------------

RUN_RECORD = "demo_run.json"  # in each model's save dir: the options it was trained with, and how far it got
TRAINING_OPTIONS = ("rule", "vocab_size", "min_len", "max_len", "train_size", "test_size", "epochs", "seed", "lr",
                    "clip_norm", "cpu_bf16")


def training_options(attention_type, args) -> dict:
    """Everything that decides what a model's checkpoints hold (--quick is folded into the sizes)."""
    return {"arch": ARCH_BY_TYPE[attention_type], **{name: getattr(args, name) for name in TRAINING_OPTIONS}}


def earlier_run(save_dir: Path, options: dict):
    """The record of an earlier training into save_dir (None if there was none); refuses other options."""
    return run_record.earlier_run(save_dir, RUN_RECORD, options, "--out-dir")


def write_record(save_dir: Path, record: dict) -> None:
    run_record.write_record(save_dir, RUN_RECORD, record)


def toy_flags(args):
    return ["--task", "toy_translation", "--toy-rule", args.rule, "--toy-vocab-size", args.vocab_size,
            "--toy-min-len", args.min_len, "--toy-max-len", args.max_len, "--toy-train-size", args.train_size,
            "--toy-valid-size", max(args.test_size // 2, 8), "--toy-test-size", args.test_size,
            "--toy-seed", args.seed]


def estimated_updates(args, max_tokens=MAX_TOKENS):
    """Updates in the whole run, for the learning-rate decay: target tokens / tokens per batch (~90% full)."""
    tokens_per_epoch = args.train_size * ((args.min_len + args.max_len) / 2 + 1)
    return max(int(args.epochs * tokens_per_epoch / (0.9 * max_tokens)), 1)


def train(attention_type, args, out_dir):
    save_dir = out_dir / "checkpoints" / attention_type
    options = training_options(attention_type, args)
    record = earlier_run(save_dir, options)
    if record is not None and record.get("finished"):
        print(f"== {attention_type}: reusing {save_dir} (trained earlier with the same options in "
              f"{record['train_seconds']}s)", flush=True)
        return save_dir / "checkpoint_last.pt", record["train_seconds"], record["params"]
    if record is not None:
        print(f"== {attention_type}: resuming the interrupted training in {save_dir}", flush=True)
    record = record or {"options": options, "finished": False, "train_seconds": 0.0}
    save_dir.mkdir(parents=True, exist_ok=True)
    write_record(save_dir, record)
    flags = [*toy_flags(args), "--user-dir", USER_DIR, "--arch", ARCH_BY_TYPE[attention_type], "--cpu",
             "--optimizer", "adam", "--lr", args.lr, "--clip-norm", args.clip_norm, "--dropout", "0.0",
             "--lr-scheduler", "polynomial_decay", "--total-num-update", estimated_updates(args),
             "--end-learning-rate", "0.0001", "--max-tokens", MAX_TOKENS, "--max-epoch", args.epochs,
             "--seed", args.seed, "--save-dir", save_dir, "--no-epoch-checkpoints", "--log-format", "simple",
             "--log-interval", "1000", *(["--cpu-bf16"] if args.cpu_bf16 else [])]
    start = time.time()
    try:
        log = run_tool("fairseq-train", flags, out_dir / f"train_{attention_type}.log", echo_prefix=attention_type)
    finally:  # an interrupted run keeps its time so far, for the run that resumes it
        record["train_seconds"] = round(record["train_seconds"] + time.time() - start, 1)
        write_record(save_dir, record)
    record.update(finished=True, params=trained_parameters(log))
    write_record(save_dir, record)
    return save_dir / "checkpoint_last.pt", record["train_seconds"], record["params"]


def generate(attention_type, checkpoint, args, out_dir):
    flags = [*toy_flags(args), "--user-dir", USER_DIR, "--path", checkpoint, "--gen-subset", "test", "--cpu",
             "--beam", "5", "--batch-size", "64"]
    if attention_type != "none":
        flags += ["--print-alignment", "soft"]
    return parse_generate_output(run_tool("fairseq-generate", flags, out_dir / f"generate_{attention_type}.txt"))


def evaluate(attention_type, translations, out_dir):
    return score_translations(translations, out_dir / f"hyp_{attention_type}.txt", out_dir / f"ref_{attention_type}.txt")


def bleu_by_length(translations):
    scores = {}
    for low, high in LENGTH_BUCKETS:
        bucket = [t for t in translations if low <= len(t.source.split()) <= high]
        if bucket:
            scores[f"{low}-{high}"] = sacrebleu_score([t.hypothesis for t in bucket],
                                                      [t.reference for t in bucket])["score"]
    return scores


def pick_example(translations):
    """The same test sentence for every type: the longest one among the first 50."""
    return max(translations[:50], key=lambda t: (len(t.source.split()), -t.id)).id


def plot_bleu_by_length(by_length, path):
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for attention_type, scores in by_length.items():
        axes.plot(list(scores), list(scores.values()), marker="o", label=attention_type)
    axes.set_xlabel("source length (words)")
    axes.set_ylabel("sacreBLEU")
    axes.set_ylim(0, 102)
    axes.legend()
    axes.grid(alpha=0.3)
    axes.set_title("BLEU by source length")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(results, by_length, args, out_dir):
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [f"# Toy `{args.rule}` task: attention types compared", "",
             f"Options: vocab {args.vocab_size}, lengths {args.min_len}-{args.max_len}, train {args.train_size}, "
             f"test {args.test_size}, {args.epochs} epochs, beam 5.", "",
             "| type | params | train seconds | BLEU (fairseq-score) | sacreBLEU | exact match |",
             "|---|---|---|---|---|---|"]
    for attention_type, r in results.items():
        lines.append(f"| {attention_type} | {r['params']:,} | {r['train_seconds']} | {r['bleu']:.2f} | "
                     f"{r['sacrebleu']:.2f} | {100 * r['exact_match']:.1f}% |")
    buckets = sorted({b for scores in by_length.values() for b in scores}, key=lambda b: int(b.split("-")[0]))
    lines += ["", "sacreBLEU by source length:", "", "| type | " + " | ".join(buckets) + " |",
              "|---|" + "---|" * len(buckets)]
    for attention_type, scores in by_length.items():
        lines.append(f"| {attention_type} | " + " | ".join(f"{scores.get(b, float('nan')):.1f}" for b in buckets)
                     + " |")
    signature = next(iter(results.values()))["sacrebleu_signature"]
    lines += ["", f"sacreBLEU signature: `{signature}`", ""]
    (out_dir / "results.md").write_text("\n".join(lines))


def main(argv=None):
    args = parse_args(argv)
    pyplot()  # the figures come last: a missing matplotlib is said before any training
    out_dir = Path(args.out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fail(f"--out-dir={args.out_dir!r}: cannot create it ({error.strerror or error})")
    with children_stopped_on_signals(f"the running fairseq tool was stopped; models trained so far stay in "
                                     f"{out_dir / 'checkpoints'}: run the same command to go on"):
        run_demo(args, out_dir)


def run_demo(args, out_dir: Path):
    results, by_length, generated = {}, {}, {}
    for attention_type in args.types.split(","):
        print(f"== {attention_type}: training {ARCH_BY_TYPE[attention_type]} for {args.epochs} epoch(s)", flush=True)
        checkpoint, seconds, params = train(attention_type, args, out_dir)
        print(f"== {attention_type}: generating the test split with beam 5", flush=True)
        translations = generate(attention_type, checkpoint, args, out_dir)
        scores = evaluate(attention_type, translations, out_dir)
        results[attention_type] = {**scores, "params": params, "train_seconds": seconds,
                                   "options": training_options(attention_type, args)}
        by_length[attention_type] = bleu_by_length(translations)
        generated[attention_type] = translations
        print(f"== {attention_type}: BLEU {scores['bleu']:.2f}  sacreBLEU {scores['sacrebleu']:.2f}  "
              f"exact match {100 * scores['exact_match']:.1f}%  ({seconds}s training)", flush=True)
    example_id = pick_example(next(iter(generated.values())))
    for attention_type, translations in generated.items():
        example = next(t for t in translations if t.id == example_id)
        plot_attention(example, out_dir / f"attention_{attention_type}.png",
                       title=f"attention: {attention_type} (test sentence {example.id})")
    plot_bleu_by_length(by_length, out_dir / "bleu_by_length.png")
    write_report(results, by_length, args, out_dir)
    print(f"sacreBLEU signature: {next(iter(results.values()))['sacrebleu_signature']}")
    print((out_dir / "results.md").read_text())
    print(f"wrote {out_dir}/results.md, results.json, attention_<type>.png, bleu_by_length.png")


if __name__ == "__main__":  # python -m fairseq_attn_gru.recipes.demo ...
    from .cli import run_main

    raise SystemExit(run_main(main))

"""Joey NMT's `reverse` toy benchmark through fairseq's standard route.

fairseq-preprocess (joined dictionary) -> fairseq-train (gru_attn_dot) -> fairseq-generate --beam 5 on the test
split -> fairseq-score and sacreBLEU. Writes <work>/results.json: {"bleu", "sacrebleu", "sacrebleu_signature",
"exact_match", "train_seconds", "params"}.

    python scripts/joeynmt_reverse.py --data ../shared/data/joeynmt_reverse --work reverse_out
"""
import argparse
import json
import shutil
import time
from pathlib import Path

from .cli import USER_DIR, run_tool
from .scoring import parse_generate_output, score_translations, trained_parameters

SPLITS = {"train": "train", "valid": "dev", "test": "test"}  # fairseq prefix option -> Joey NMT file stem


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with {train,dev,test}.{src,trg}")
    parser.add_argument("--work", default="reverse_out", help="where binarized data, checkpoints, logs go")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs (default: 30)")
    args = parser.parse_args(argv)
    missing = [f"{stem}.{side}" for stem in SPLITS.values() for side in ("src", "trg")
               if not (Path(args.data) / f"{stem}.{side}").is_file()]
    if missing:
        parser.exit(2, f"error: --data {args.data!r} lacks {', '.join(missing)}; expected Joey NMT's "
                    "{train,dev,test}.{src,trg}\n")
    return args


def main(argv=None):
    args = parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data, binarized = Path(args.data).resolve(), work / "bin"
    print("== fairseq-preprocess", flush=True)
    shutil.rmtree(binarized, ignore_errors=True)  # fairseq-preprocess refuses to overwrite its dictionary
    run_tool("fairseq-preprocess", ["--source-lang", "src", "--target-lang", "trg", "--joined-dictionary",
                                    *[flag for prefix, stem in SPLITS.items()
                                      for flag in (f"--{prefix}pref", data / stem)],
                                    "--destdir", binarized, "--workers", "2"], work / "preprocess.log")
    print(f"== fairseq-train gru_attn_dot, {args.epochs} epochs", flush=True)
    start = time.time()
    log = run_tool("fairseq-train", [
        binarized, "--user-dir", USER_DIR, "--arch", "gru_attn_dot", "--encoder-embed-dim", 64,
        "--decoder-embed-dim", 64, "--encoder-hidden-size", 64, "--decoder-hidden-size", 128,
        "--decoder-out-embed-dim", 64, "--encoder-layers", 1, "--decoder-layers", 1, "--dropout", 0.0,
        "--optimizer", "adam", "--lr", 0.003, "--clip-norm", 5, "--max-tokens", 2000, "--max-epoch", args.epochs,
        "--seed", 1, "--cpu", "--save-dir", work / "checkpoints", "--no-epoch-checkpoints",
        "--log-format", "simple", "--log-interval", 1000], work / "train.log", echo_prefix="reverse")
    train_seconds = round(time.time() - start, 1)
    print("== fairseq-generate --beam 5 on test", flush=True)
    translations = parse_generate_output(run_tool("fairseq-generate", [
        binarized, "--user-dir", USER_DIR, "--path", work / "checkpoints" / "checkpoint_best.pt",
        "--gen-subset", "test", "--beam", 5, "--batch-size", 128, "--cpu"], work / "generate.txt"))
    results = {**score_translations(translations, work / "hyp.txt", work / "ref.txt"),
               "train_seconds": train_seconds, "params": trained_parameters(log), "test_sentences": len(translations)}
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":  # python -m fairseq_attn_gru.recipes.joeynmt_reverse ...
    from .cli import run_main

    raise SystemExit(run_main(main))

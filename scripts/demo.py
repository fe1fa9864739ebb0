#!/usr/bin/env python
"""The main demo: what attention does for a GRU seq2seq, on the toy `translate` task.

Entry point: the code, its options and its docs are in fairseq_attn_gru/recipes/demo.py. This script adds one
option, ``--results FILE`` (``make demo`` gives ``results/demo.json``): the summary the docs' demo tables are
generated from (scripts/results_tables.py), written after the demo with the machine it ran on (CPU model, cores,
matmul peaks), the command, the date, the wall-clock time and, per attention type, the parameters, training
seconds, BLEU, sacreBLEU, exact match and sacreBLEU by source length.

    python scripts/demo.py --out-dir demo_out --results results/demo.json
"""
import datetime
import json
import sys
import time
from pathlib import Path

from fairseq_attn_gru.recipes.cli import run_entry, run_main

RESULTS_HELP = ("--results FILE: also write the summary the docs' demo tables are generated from (the machine, the "
                "command, the date, the wall-clock time, each type's figures); make demo writes results/demo.json")


def split_results_flag(argv):
    """(--results's value or None, the other arguments): the recipe's parser does not know the flag."""
    rest, results = [], None
    iterator = iter(argv)
    for arg in iterator:
        if arg == "--results":
            results = next(iterator, None)
            if results is None:
                from fairseq_attn_gru.recipes.cli import fail

                fail("--results needs a file path")
        elif arg.startswith("--results="):
            results = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return results, rest


def finished_earlier(out_dir: Path, types):
    """The attention types whose model an earlier run into ``out_dir`` finished: the demo reuses them, so the wall
    time of this run does not include their training."""
    reused = []
    for attention_type in types:
        record = out_dir / "checkpoints" / attention_type / "demo_run.json"
        try:
            if json.loads(record.read_text()).get("finished"):
                reused.append(attention_type)
        except (OSError, ValueError):
            pass
    return reused


def summary(out_dir: Path, args, argv, reused, wall_seconds, machine) -> dict:
    """The results file's content, from the recipe's own OUT_DIR/results.json and fairseq-generate's output."""
    from fairseq_attn_gru.recipes import demo
    from fairseq_attn_gru.recipes.scoring import parse_generate_output

    recipe = json.loads((out_dir / "results.json").read_text(encoding="utf-8"))
    types = {}
    for attention_type, run in recipe.items():
        generated = (out_dir / f"generate_{attention_type}.txt").read_text(encoding="utf-8")
        types[attention_type] = {
            "arch": run["options"]["arch"], "params": run["params"], "train_seconds": run["train_seconds"],
            "bleu": run["bleu"], "sacrebleu": run["sacrebleu"], "exact_match": run["exact_match"],
            "sacrebleu_by_length": {bucket: round(score, 2) for bucket, score
                                    in demo.bleu_by_length(parse_generate_output(generated)).items()}}
    options = {name: getattr(args, name) for name in demo.TRAINING_OPTIONS}
    return {"command": " ".join(["python", "scripts/demo.py", *argv]), "date": datetime.date.today().isoformat(),
            "cpu": machine, "options": options, "wall_seconds": round(wall_seconds, 1), "reused": reused,
            "sacrebleu_signature": next(iter(recipe.values()))["sacrebleu_signature"], "types": types}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    from fairseq_attn_gru.recipes import demo
    from fairseq_attn_gru.recipes.cli import check_output, write_output

    if "-h" in argv or "--help" in argv:
        try:
            demo.parse_args(["--help"])
        except SystemExit:
            print(f"\n{RESULTS_HELP}")
            return 0
    results, rest = split_results_flag(argv)
    if results is None:
        return demo.main(rest)
    check_output(results, "--results")  # before the demo's minutes, not after
    args = demo.parse_args(rest)
    out_dir = Path(args.out_dir)
    types = args.types.split(",")
    reused = finished_earlier(out_dir, types)
    from fairseq_attn_gru.recipes.machine import machine_description

    machine = machine_description()  # before the demo, as the pipeline measures it before training
    start = time.time()
    status = demo.main(rest)
    content = summary(out_dir, args, argv, reused, time.time() - start, machine)
    write_output(results, lambda path: path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8"),
                 "--results")
    print(f"wrote {results}")
    return status


def wants_wrapper(argv) -> bool:
    """--results (or --help, which names it) needs this script's main; anything else is the recipe's alone."""
    return any(arg in ("-h", "--help", "--results") or arg.startswith("--results=") for arg in argv)


if __name__ == "__main__":
    if wants_wrapper(sys.argv[1:]):
        raise SystemExit(run_main(main))
    raise SystemExit(run_entry("fairseq_attn_gru.recipes.demo:main"))

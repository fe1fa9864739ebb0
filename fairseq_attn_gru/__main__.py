"""``fairseq-attn-gru`` (= ``python -m fairseq_attn_gru``): the translation pipeline's steps, and where the plugin is.

    fairseq-attn-gru run --source-lang en --target-lang fr --data DIR --work WORK     # every step below
    fairseq-attn-gru prepare ...     # check, clean, learn subwords, binarize
    fairseq-attn-gru train ...       # fairseq-train with the pipeline's defaults (resumable)
    fairseq-attn-gru select ...      # checkpoint_best.pt or the average of the last epochs, on val
    fairseq-attn-gru evaluate ...    # translate test sets; sacreBLEU, chrF, BLEU tok-lc
    fairseq-attn-gru translate ...   # raw text in (file or stdin), translations out
    fairseq-attn-gru average ...     # average a run's last epoch checkpoints
    fairseq-attn-gru --user-dir      # the directory to give fairseq's --user-dir

Each step has ``--help``. Bad input ends a step with one ``error: ...`` line (exit status 2). Without arguments it
prints the versions of this package, fairseq and torch.
"""
import argparse
import importlib
import sys
from importlib import metadata
from pathlib import Path

#: what fairseq's --user-dir needs: this package's directory (the same as recipes.cli.USER_DIR)
USER_DIR = str(Path(__file__).resolve().parent)
#: subcommand -> "module:function" in fairseq_attn_gru.pipeline, imported only when it runs (fairseq and torch load
#: slowly, and `--user-dir` must answer at once)
STEPS = {
    "run": "run:main", "prepare": "prepare:main", "train": "train:main", "select": "select_checkpoint:main",
    "evaluate": "evaluate:evaluate_main", "translate": "evaluate:translate_main", "average": "average:main",
}


def version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def run_step(step: str, argv) -> int:
    """One pipeline step with the recipes' conventions: one ``error:`` line for bad input, status 2."""
    from .recipes.cli import run_main, quiet_fairseq_debug_logging

    quiet_fairseq_debug_logging()  # before the step's imports, which may log
    module, _, function = STEPS[step].partition(":")
    return run_main(getattr(importlib.import_module(f"fairseq_attn_gru.pipeline.{module}"), function), argv)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in STEPS:
        return run_step(argv[0], argv[1:])
    parser = argparse.ArgumentParser(prog="fairseq-attn-gru", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", nargs="?", choices=list(STEPS), help="a pipeline step (each has --help)")
    parser.add_argument("--user-dir", action="store_true",
                        help="print the directory to give fairseq's --user-dir (and nothing else)")
    parser.add_argument("--version", action="store_true", help="print this package's version")
    args = parser.parse_args(argv)
    if args.user_dir:
        print(USER_DIR)
    elif args.version:
        print(version("fairseq-attn-gru"))
    else:
        import fairseq
        import torch

        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only build"
        print(f"fairseq-attn-gru {version('fairseq-attn-gru')}\n"
              f"  --user-dir {USER_DIR}\n"
              f"  fairseq {fairseq.__version__}, torch {torch.__version__} ({build})\n"
              f'  use: fairseq-train --user-dir "$(python -m fairseq_attn_gru --user-dir)" ...\n'
              f"  pipeline: fairseq-attn-gru {{{','.join(STEPS)}}} --help")
    return 0


if __name__ == "__main__":
    sys.exit(main())

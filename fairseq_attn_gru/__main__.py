"""``python -m fairseq_attn_gru``: where the plugin is, for fairseq's ``--user-dir``, from any directory.

    fairseq-train --user-dir "$(python -m fairseq_attn_gru --user-dir)" --task toy_translation ...

``--user-dir`` prints the package's directory and nothing else (stdout), so it can go straight into a command line;
without options it prints that and the versions of this package, fairseq and torch. The console script
``fairseq-attn-gru`` (installed with the package) is the same command.
"""
import argparse
import sys
from importlib import metadata
from pathlib import Path

#: what fairseq's --user-dir needs: this package's directory (the same as recipes.cli.USER_DIR)
USER_DIR = str(Path(__file__).resolve().parent)


def version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fairseq_attn_gru", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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
              f'  use: fairseq-train --user-dir "$(python -m fairseq_attn_gru --user-dir)" ...')
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write the toy_translation task's data as text files, for the standard `translation` task.

Writes {train,valid,test}.{src,tgt} and the task's own dictionaries dict.src.txt / dict.tgt.txt, so

    python scripts/make_toy_data.py --out-dir toy_text --toy-rule translate
    fairseq-preprocess --source-lang src --target-lang tgt --trainpref toy_text/train \\
        --validpref toy_text/valid --testpref toy_text/test \\
        --srcdict toy_text/dict.src.txt --tgtdict toy_text/dict.tgt.txt --destdir toy_bin

gives the same dictionaries and token ids as `--task toy_translation` with the same options.
"""
import argparse
from pathlib import Path

from ..tasks import toy_data
from ..tasks.toy_translation import ToyTranslationConfig, ToyTranslationTask


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", required=True, help="directory to write the text files into")
    defaults = ToyTranslationConfig()
    parser.add_argument("--toy-rule", default=defaults.toy_rule, choices=toy_data.RULES)
    for name in ("vocab_size", "min_len", "max_len", "train_size", "valid_size", "test_size", "seed"):
        parser.add_argument(f"--toy-{name.replace('_', '-')}", type=int, default=getattr(defaults, f"toy_{name}"))
    args = parser.parse_args(argv)

    cfg = ToyTranslationConfig(**{k: v for k, v in vars(args).items() if k.startswith("toy_")})
    task = ToyTranslationTask.setup_task(cfg)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split in toy_data.SPLITS:
        pairs = task.split_pairs(split)
        (out_dir / f"{split}.src").write_text("".join(source + "\n" for source, _ in pairs))
        (out_dir / f"{split}.tgt").write_text("".join(target + "\n" for _, target in pairs))
        print(f"{split}: {len(pairs)} pairs")
    task.source_dictionary.save(str(out_dir / "dict.src.txt"))
    task.target_dictionary.save(str(out_dir / "dict.tgt.txt"))
    print(f"wrote {out_dir}/{{train,valid,test}}.{{src,tgt}} and dict.src.txt, dict.tgt.txt")


if __name__ == "__main__":  # python -m fairseq_attn_gru.recipes.toy_text ...
    from .cli import run_main

    raise SystemExit(run_main(main))

"""Translate raw German text with a Multi30k checkpoint and score it with sacreBLEU against raw English.

    python scripts/multi30k/evaluate.py --prep multi30k_work/prep --checkpoint CKPT --src x.de --ref x.en [--precision int8]
        [--beam 5] [--lenpen 1.0]

The checkpoint is loaded in this process through fairseq's hub interface (``GRUAttnModel.from_pretrained`` with the
Moses tokenizer and the subword-nmt BPE of --prep/bpe.codes), which tokenises, BPEs and binarizes each source line
the way prepare.py treated the training data (after prepare.py's Moses punctuation normalisation), translates in
batches with beam search, and removes the BPE; the hypotheses are Moses-detokenised and scored against the
untouched reference lines. Writes PREFIX.hyp.en (detokenised hypotheses) and PREFIX.generate.log (fairseq-generate's
S-/T-/H-/D-/A- lines; default PREFIX: the checkpoint's directory / the source file's stem) and prints
{"sacrebleu", "signature"} as JSON. --checkpoint A.pt:B.pt (checkpoints joined by os.pathsep, as fairseq-generate's
--path takes them) translates with their ensemble, e.g. run.py's WORK/main/model1/checkpoint_best.pt and model2's.
"""
import argparse
import json
import logging
import math
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional, Sequence

from omegaconf import open_dict

from ...errors import UserError, user_message
from ...models import GRUAttnModel
from ..cli import fail, require_file
from ..scoring import Translation, sacrebleu_score
from .text import BPE_CODES, apply_bpe, detokenize, normalize, read_lines, require_text_tools, tokenize, write_lines

#: fairseq-generate's --remove-bpe: what fairseq's post-processing strips from subword-nmt output
BPE_SYMBOL = "@@ "


def check_prep(prep_dir) -> Path:
    prep_dir = Path(prep_dir)
    for needed in (BPE_CODES, "bin/dict.de.txt", "bin/dict.en.txt"):
        if not (prep_dir / needed).is_file():
            fail(f"--prep {str(prep_dir)!r} is not a prepare.py output: {needed} is missing")
    return prep_dir


def checkpoint_paths(checkpoint) -> List[Path]:
    """--checkpoint's files, absolute: one checkpoint, or an ensemble's joined by os.pathsep; a missing one is named."""
    return [require_file(path, "--checkpoint").resolve() for path in str(checkpoint).split(os.pathsep)]


@contextmanager
def _quiet_fairseq():
    """Console output fairseq-generate kept in its log: from_pretrained's whole configuration, the batching INFO
    lines, torch's pin_memory warning on CPU. Warnings and errors still show."""
    loggers = [logging.getLogger(name) for name in ("fairseq.models.fairseq_model", "fairseq.file_utils",
                                                     "fairseq.checkpoint_utils", "fairseq.tasks.translation",
                                                     "fairseq.tasks.fairseq_task", "fairseq.data.iterators")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*'pin_memory' argument is set as true")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


#: --precision -> the model overrides that load it so ("saved": as the checkpoint was trained, --cpu-bf16 or not)
PRECISION_OVERRIDES = {"saved": {}, "fp32": {"cpu_bf16": False}, "bf16": {"cpu_bf16": True},
                       "int8": {"cpu_bf16": False, "int8": True}}


def load_hub(prep_dir, checkpoint, batch_size: int = 64, precision: str = "saved"):
    """fairseq's GeneratorHubInterface for a Multi30k checkpoint: prepare.py's dictionaries (--prep/bin), Moses
    tokenisation without dash splitting or HTML escaping and subword-nmt BPE with --prep/bpe.codes (text.py's
    treatment), batches of ``batch_size`` sentences on the CPU, in ``precision`` (PRECISION_OVERRIDES; int8: the
    model quantized at load time, docs/inference.md)."""
    prep_dir = check_prep(prep_dir).resolve()
    checkpoints = checkpoint_paths(checkpoint)
    with _quiet_fairseq():  # fairseq's hub loads an ensemble from checkpoint file names joined by os.pathsep
        hub = GRUAttnModel.from_pretrained(
            str(checkpoints[0].parent), checkpoint_file=os.pathsep.join(map(str, checkpoints)),
            data_name_or_path=str(prep_dir / "bin"),
            tokenizer="moses", moses_no_dash_splits=True, moses_no_escape=True,
            bpe="subword_nmt", bpe_codes=str(prep_dir / BPE_CODES), source_lang="de", target_lang="en", **PRECISION_OVERRIDES[precision])
    with open_dict(hub.cfg):  # batches by sentence count, like fairseq-generate --batch-size
        hub.cfg.dataset.batch_size, hub.cfg.dataset.max_tokens = batch_size, None
    return hub


def _generate_options(generate_flags: Sequence[str]):
    """(remove_bpe, soft_alignment) from the fairseq-generate flags earlier versions took (all that were used)."""
    flags, remove_bpe, alignment = list(map(str, generate_flags)), False, False
    while flags:
        flag = flags.pop(0)
        if flag == "--remove-bpe":
            remove_bpe = True
        elif flag == "--print-alignment" and flags and flags[0] == "soft":
            flags.pop(0)
            alignment = True
        else:
            fail(f"generate_flags: {flag!r} is not supported; only --remove-bpe and --print-alignment soft are")
    return remove_bpe, alignment


def translate(prep_dir, checkpoint, sources: List[str], references: List[str], log_prefix, beam: int = 5,
              batch_size: int = 64, generate_flags: Sequence[str] = ("--remove-bpe",), hub=None,
              precision: str = "saved", lenpen: float = 1.0) -> List[Translation]:
    """Raw German lines -> the checkpoint's beam-search translations, one per line, in line order.

    Through fairseq's hub interface in this process: each line is normalised like prepare.py's data, then the
    hub tokenises, BPEs and binarizes it with the training dictionary. The Translations hold what
    fairseq-generate printed before: tokenised source, reference and hypothesis text, BPE removed with
    ``--remove-bpe`` in ``generate_flags`` (the default), the soft alignment with ``--print-alignment soft``.
    ``hub`` reuses a ``load_hub`` result; ``precision`` is load_hub's; ``lenpen`` is fairseq-generate's --lenpen (beam
    scores divided by length ** lenpen). Also writes ``log_prefix``.generate.log in fairseq-generate's format.
    """
    remove_bpe, alignment = _generate_options(generate_flags)
    if len(sources) != len(references):
        fail(f"{len(sources)} source lines but {len(references)} references")
    hub = load_hub(prep_dir, checkpoint, batch_size, precision) if hub is None else hub
    post_process = BPE_SYMBOL if remove_bpe else None
    src_dict, tgt_dict = hub.src_dict, hub.tgt_dict
    source_tokens = [hub.encode(line) for line in normalize(sources, "de")]
    reference_tokens = [tgt_dict.encode_line(line, add_if_not_exist=False)
                        for line in apply_bpe(tokenize(references, "en"), Path(prep_dir) / BPE_CODES)]
    with _quiet_fairseq():
        outputs = hub.generate(source_tokens, beam=beam, lenpen=lenpen,
                               **({"print_alignment": "soft"} if alignment else {}))
    translations, log = [], []
    for i, (source, reference, hypos) in enumerate(zip(source_tokens, reference_tokens, outputs)):
        best = hypos[0]
        # fairseq-generate's H- text (utils.post_process_prediction without its dictionary-growing re-encoding)
        hypothesis = tgt_dict.string(best["tokens"].int().cpu(), post_process,
                                     extra_symbols_to_ignore={tgt_dict.eos()})
        soft = best["alignment"]  # rows of "%.6f" strings, as fairseq-generate prints them
        item = Translation(i, source=src_dict.string(source, post_process),
                           reference=tgt_dict.string(reference, post_process, escape_unk=True),
                           hypothesis=hypothesis,
                           soft_alignment=[[float(p) for p in row] for row in soft] if alignment and soft else None)
        translations.append(item)
        log += [f"S-{i}\t{item.source}", f"T-{i}\t{item.reference}",
                f"H-{i}\t{best['score'] / math.log(2)}\t{hypothesis}",
                f"D-{i}\t{best['score'] / math.log(2)}\t{hub.detokenize(hub.remove_bpe(hypothesis))}"]
        if item.soft_alignment is not None:
            log.append(f"A-{i}\t" + " ".join(",".join(row) for row in soft))
    Path(f"{log_prefix}.generate.log").write_text("".join(line + "\n" for line in log), encoding="utf-8")
    return translations


def evaluate(prep_dir, checkpoint, src, ref, beam: int = 5, batch_size: int = 64, out_prefix=None,
             limit: Optional[int] = None, precision: str = "saved", lenpen: float = 1.0) -> dict:
    """sacreBLEU of the checkpoint's translation of raw file src against raw file ref: {"sacrebleu", "signature"}."""
    checkpoints = checkpoint_paths(checkpoint)
    sources, references = read_lines(require_file(src, "--src"), limit), read_lines(require_file(ref, "--ref"), limit)
    if len(sources) != len(references):
        fail(f"--src {str(src)!r} has {len(sources)} lines but --ref {str(ref)!r} has {len(references)}")
    out_prefix = Path(out_prefix or checkpoints[0].parent / Path(src).stem)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    translations = translate(prep_dir, checkpoint, sources, references, out_prefix, beam, batch_size,
                             precision=precision, lenpen=lenpen)
    hypotheses = detokenize([t.hypothesis for t in translations], "en")
    write_lines(f"{out_prefix}.hyp.en", hypotheses)
    score = sacrebleu_score(hypotheses, references)
    return {"sacrebleu": score["score"], "signature": score["signature"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prep", required=True, help="prepare.py's --out directory (bpe.codes, bin/dict.*.txt)")
    parser.add_argument("--checkpoint", required=True,
                        help="a fairseq checkpoint, e.g. SAVE_DIR/checkpoint_best.pt, or several joined by "
                             f"'{os.pathsep}' (A.pt{os.pathsep}B.pt): their ensemble translates, as fairseq-generate --path's")
    parser.add_argument("--src", required=True, help="raw German text, one sentence per line")
    parser.add_argument("--ref", required=True, help="raw English reference, line-aligned with --src")
    parser.add_argument("--beam", type=int, default=5, help="beam size (default: 5)")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per batch (default: 64)")
    parser.add_argument("--precision", choices=list(PRECISION_OVERRIDES), default="saved",
                        help="inference precision: saved (default: as trained, with or without --cpu-bf16), fp32, "
                             "bf16 (--cpu-bf16), int8 (quantized at load time; docs/inference.md)")
    parser.add_argument("--lenpen", type=float, default=1.0,
                        help="length penalty, as fairseq-generate's: beam scores / length ** LENPEN; above 1 favours "
                             "longer translations (default: 1.0)")
    parser.add_argument("--out-prefix", default=None, help="output files prefix (default: CKPT dir / SRC stem)")
    args = parser.parse_args(argv)
    for flag in ("beam", "batch_size"):
        if getattr(args, flag) <= 0:
            fail(f"--{flag.replace('_', '-')}={getattr(args, flag)} is not allowed: a positive integer")
    if not math.isfinite(args.lenpen):
        fail(f"--lenpen={args.lenpen} is not allowed: a finite number (1.0: fairseq's default)")
    require_text_tools()
    try:
        result = evaluate(args.prep, args.checkpoint, args.src, args.ref, args.beam, args.batch_size, args.out_prefix,
                          precision=args.precision, lenpen=args.lenpen)
    except Exception as error:  # loading runs in this process: fairseq's errors that our fixes explain get one line
        message = user_message(error)
        if message is None or isinstance(error, UserError):
            raise
        raise UserError(message) from error
    print(f"sacreBLEU {result['sacrebleu']}  ({result['signature']})")
    print(json.dumps(result))


if __name__ == "__main__":  # python -m fairseq_attn_gru.recipes.multi30k.evaluate ...
    from ..cli import run_main

    raise SystemExit(run_main(main))

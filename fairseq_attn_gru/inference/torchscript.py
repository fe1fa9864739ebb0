"""TorchScript export: a checkpoint becomes one file that runs with ``torch.jit.load``, without fairseq's data dir.

    python scripts/export_torchscript.py checkpoints/checkpoint_best.pt model.ts [--int8] [--fp32] [--data DIR]

The file holds the scripted model in eval mode (``torch.jit.save``) and, as extra files, the source and target
dictionaries in fairseq's ``dict.txt`` format (``dict.src.txt``, ``dict.tgt.txt``); :func:`load_scripted` reads all
three back. ``--int8`` quantizes first (inference/int8.py); ``--fp32`` exports a ``--cpu-bf16`` checkpoint in fp32
(its weights are fp32; the scripted model cannot enter ``torch.autocast``, so without it such a checkpoint is
refused); ``--data`` points at the data directory when it has moved since training (translation tasks read their
dictionaries from it; the toy task needs none).

Refused in one line (``UserError``): a missing checkpoint, a checkpoint of another model, a ``--cpu-bf16`` model
without ``--fp32``, and ``--int8`` for a model with a layer-normalised or deep-transition GRU (int8 runs it in eager
mode only: inference/int8.py's ``Int8DeepGRU``).
"""
import argparse
import io
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch

from ..errors import UserError, user_message
from ..recipes.cli import check_output, fail, require_file, write_output

#: extra files saved beside the scripted model: name in the archive -> which dictionary
DICTIONARY_FILES = {"dict.src.txt": "source", "dict.tgt.txt": "target"}
#: how messages name export's output
OUTPUT = "the TorchScript file"


def load_checkpoint(checkpoint, data: Optional[str] = None, int8: bool = False, fp32: bool = False):
    """(model in eval mode, task) from a checkpoint of this package's model; ``int8`` quantizes it, ``fp32`` turns
    ``--cpu-bf16`` off."""
    from fairseq import checkpoint_utils

    from ..models import GRUAttnModel

    path = require_file(checkpoint, "checkpoint")
    overrides = {**({"data": data} if data else {}), **({"cpu_bf16": False} if fp32 else {})}
    try:
        models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(path)], arg_overrides=overrides)
    except Exception as error:  # fairseq's, with the one line our checkpoint fixes give it
        message = user_message(error)
        if message is None:
            raise
        raise UserError(message) from error
    model = models[0]
    if not isinstance(model, GRUAttnModel):
        fail(f"checkpoint {str(path)!r} holds a {type(model).__name__}, not this package's gru_attn model: "
             "only GRUAttnModel checkpoints are exported")
    if int8:
        from ..models.recurrent import DeepGRU
        from .int8 import quantize_model

        if any(isinstance(module, DeepGRU) for module in model.modules()):
            fail("--int8 export is for models of nn.GRU layers: a layer-normalised or deep-transition GRU runs int8 "
                 "in eager mode only (fairseq-generate --model-overrides \"{'int8': True}\", the hub's int8=True); "
                 "export this model without --int8")

        model.int8 = True
        quantize_model(model, cpu_bf16=model.encoder.cpu_bf16)
    return model.eval(), task


def script_model(model) -> torch.jit.ScriptModule:
    """``torch.jit.script`` of the model in eval mode (GRUAttnModel refuses --cpu-bf16 itself, in one line)."""
    return torch.jit.script(model.eval())


def dictionary_text(dictionary) -> str:
    """fairseq's ``dict.txt`` format: what ``Dictionary.load`` reads back, indices and special symbols included."""
    out = io.StringIO()
    dictionary.save(out)
    return out.getvalue()


def export(checkpoint, out_path, data: Optional[str] = None, int8: bool = False, fp32: bool = False) -> Path:
    """Script ``checkpoint``'s model and save it with its dictionaries to ``out_path``; returns the path."""
    check_output(out_path, OUTPUT, inputs=[checkpoint])  # before loading and scripting, which take a while
    model, task = load_checkpoint(checkpoint, data=data, int8=int8, fp32=fp32)
    scripted = script_model(model)
    dictionaries = {"source": task.source_dictionary, "target": task.target_dictionary}
    extra_files = {name: dictionary_text(dictionaries[side]) for name, side in DICTIONARY_FILES.items()}
    data = getattr(task.cfg, "data", None)
    inputs = [checkpoint, *(sorted(Path(data).glob("dict.*.txt")) if data and Path(data).is_dir() else [])]
    return write_output(out_path, lambda temporary: torch.jit.save(scripted, str(temporary), _extra_files=extra_files),
                        OUTPUT, inputs=inputs)


def load_scripted(path, map_location="cpu") -> Tuple[torch.jit.ScriptModule, Dict[str, object]]:
    """(scripted model, {"source": Dictionary, "target": Dictionary}) from a file ``export`` wrote. A file that is not
    TorchScript, or holds no dictionaries or ones that do not fit the model, is refused in one line (UserError):
    without its dictionaries every word would read as ``<unk>``."""
    from fairseq.data import Dictionary

    path = require_file(path, "TorchScript file")
    extra_files = {name: "" for name in DICTIONARY_FILES}
    try:
        model = torch.jit.load(str(path), map_location=map_location, _extra_files=extra_files)
    except RuntimeError as error:  # a checkpoint, or any other file: torch.jit.load finds no TorchScript archive
        detail = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        fail(f"TorchScript file {str(path)!r} cannot be loaded ({detail[:200]}): write one with "
             "scripts/export_torchscript.py CHECKPOINT OUT")
    missing = [name for name in DICTIONARY_FILES if not _text(extra_files[name]).strip()]
    if missing:
        fail(f"TorchScript file {str(path)!r} holds no {' or '.join(missing)}: without its dictionaries every word "
             "would read as <unk>; write the file with scripts/export_torchscript.py, which saves them in it")
    dictionaries = {side: Dictionary.load(io.StringIO(_text(extra_files[name])))
                    for name, side in DICTIONARY_FILES.items()}
    for side, embeddings in (("source", model.encoder.embed_tokens), ("target", model.decoder.embed_tokens)):
        if len(dictionaries[side]) != embeddings.weight.size(0):
            fail(f"TorchScript file {str(path)!r}: its {side} dictionary has {len(dictionaries[side]):,} symbols but "
                 f"the model's {side} embeddings {embeddings.weight.size(0):,} rows: the file was put together from "
                 "parts that do not belong together; export the checkpoint again")
    return model, dictionaries


def _text(content) -> str:
    return content.decode("utf-8") if isinstance(content, bytes) else content


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a gru_attn checkpoint (fairseq-train's checkpoint_best.pt, ...)")
    parser.add_argument("out", help="the TorchScript file to write")
    parser.add_argument("--data", help="the data directory, if it moved since training (its dictionaries are read)")
    parser.add_argument("--int8", action="store_true", help="quantize GRUs and Linears to int8 first (CPU)")
    parser.add_argument("--fp32", action="store_true", help="export a --cpu-bf16 checkpoint in fp32")
    args = parser.parse_args(argv)
    out = export(args.checkpoint, args.out, data=args.data, int8=args.int8, fp32=args.fp32)
    print(f"wrote {out} (TorchScript model and its dictionaries; load with "
          "fairseq_attn_gru.inference.torchscript.load_scripted or torch.jit.load)")


if __name__ == "__main__":  # python -m fairseq_attn_gru.inference.torchscript ...
    from ..recipes.cli import run_main

    raise SystemExit(run_main(main))

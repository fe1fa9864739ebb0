"""Reliability guards installed on import: bad input gets one clear line, interrupted work loses nothing.

Each guard wraps one fairseq function and changes behaviour only where fairseq would print a traceback,
crash mid-session, or leave a half-written file:

* checkpoint loading: a missing, truncated, corrupt, foreign (object outside the safe globals) or
  mismatched checkpoint is reported as one line naming the file;
* checkpoint saving: ``checkpoint_last.pt`` / ``checkpoint_best.pt`` are written by copy-to-temp +
  rename (fairseq copies them in place, so a kill mid-copy left a truncated file), and weights that
  are not finite are never saved;
* data paths: a missing directory or one without binarized data is named, not a FileNotFoundError;
* fairseq-interactive: lines that are not UTF-8, empty, or longer than the task accepts get a
  message on stderr and are skipped; the session goes on.
"""
import functools
import glob
import os
import shutil
import sys

import torch

from .errors import UserError


def _once(target, name, make_wrapper):
    """Replace ``target.name`` by ``make_wrapper(original)`` unless already done."""
    original = getattr(target, name)
    if getattr(original, "_fairseq_attn_gru_guard", False):
        return
    wrapper = make_wrapper(original)
    wrapper._fairseq_attn_gru_guard = True
    setattr(target, name, wrapper)


# -- checkpoints ----------------------------------------------------------------------------------


def describe_load_error(path: str, error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
    unsupported = [line for line in lines if "unsupported global" in line.lower()]
    if unsupported:
        return (f"checkpoint {path!r} refused: it holds an object outside the allowed safe globals "
                f"({unsupported[0]}); it was not loaded and nothing in it was run")
    detail = next((line for line in lines if "WeightsUnpickler error" in line), lines[0])
    return f"checkpoint {path!r} is not a readable PyTorch checkpoint (truncated or corrupt: {detail})"


def _guard_checkpoint_loading():
    from fairseq import checkpoint_utils

    def wrap_load_to_cpu(original):
        @functools.wraps(original)
        def load_checkpoint_to_cpu(path, *args, **kwargs):
            if not os.path.exists(path):
                raise UserError(f"checkpoint {path!r} does not exist")
            try:
                return original(path, *args, **kwargs)
            except UserError:
                raise
            except Exception as error:  # random bytes can make the unpickler fail in any way at all
                raise UserError(describe_load_error(path, error)) from None

        return load_checkpoint_to_cpu

    def wrap_load_ensemble(original):
        @functools.wraps(original)
        def load_model_ensemble_and_task(filenames, *args, **kwargs):
            for filename in filenames:
                if not os.path.exists(filename):
                    raise UserError(f"--path={filename!r}: no such checkpoint file")
            try:
                return original(filenames, *args, **kwargs)
            except RuntimeError as error:
                if "state_dict" not in str(error):
                    raise
                raise UserError(
                    f"--path={':'.join(filenames)!r}: the checkpoint's weights do not fit the model and task it "
                    f"describes with these options (another arch, task or dictionary?): {str(error).splitlines()[0]}"
                ) from None

        return load_model_ensemble_and_task

    _once(checkpoint_utils, "load_checkpoint_to_cpu", wrap_load_to_cpu)
    _once(checkpoint_utils, "load_model_ensemble_and_task", wrap_load_ensemble)


def _guard_checkpoint_saving():
    from fairseq import checkpoint_utils
    from fairseq.file_io import PathManager

    def wrap_copy(original):
        @functools.wraps(original)
        def copy(src_path, dst_path, overwrite=False):
            if PathManager.path_requires_pathmanager(dst_path):
                return original(src_path, dst_path, overwrite)
            temporary = dst_path + ".tmp"
            shutil.copyfile(src_path, temporary)
            os.replace(temporary, dst_path)  # atomic: dst is the old file or the new one, never half of one
            return True

        return staticmethod(copy)

    def wrap_save_checkpoint(original):
        @functools.wraps(original)
        def save_checkpoint(cfg, trainer, epoch_itr, val_loss):
            bad = [name for name, p in trainer.model.named_parameters() if not torch.isfinite(p).all()]
            if bad:
                raise UserError(
                    f"training diverged: {len(bad)} weight tensor(s) hold NaN/inf (first: {bad[0]}); no checkpoint "
                    "was written and the previous ones are kept; try a lower --lr or --clip-norm"
                )
            return original(cfg, trainer, epoch_itr, val_loss)

        return save_checkpoint

    original_copy = PathManager.__dict__["copy"].__func__
    if not getattr(original_copy, "_fairseq_attn_gru_guard", False):
        wrapped = wrap_copy(original_copy)
        wrapped.__func__._fairseq_attn_gru_guard = True
        PathManager.copy = wrapped
    _once(checkpoint_utils, "save_checkpoint", wrap_save_checkpoint)


# -- data paths -----------------------------------------------------------------------------------


def check_data_path(data: str) -> None:
    for path in str(data).split(os.pathsep):
        if not os.path.isdir(path):
            raise UserError(f"data path {path!r} does not exist (expected a directory made by fairseq-preprocess)")
        if not glob.glob(os.path.join(path, "dict.*.txt")):
            raise UserError(f"data path {path!r} holds no binarized data (no dict.<lang>.txt); run fairseq-preprocess")


def _guard_data_paths():
    from fairseq.tasks.translation import TranslationTask

    def wrap(original):
        @functools.wraps(original)
        def setup_task(cls, cfg, **kwargs):
            check_data_path(cfg.data)
            return original.__func__(cls, cfg, **kwargs)

        return classmethod(setup_task)

    original = TranslationTask.__dict__["setup_task"]
    if not getattr(original.__func__, "_fairseq_attn_gru_guard", False):
        wrapped = wrap(original)
        wrapped.__func__._fairseq_attn_gru_guard = True
        TranslationTask.setup_task = wrapped


# -- generation -----------------------------------------------------------------------------------


def _guard_alignment_without_attention():
    """``--print-alignment`` on a model without attention: one line instead of a crash mid-generation."""
    from fairseq.sequence_generator import SequenceGeneratorWithAlignment

    def make_wrapper(original):
        @functools.wraps(original)
        def __init__(self, models, *args, **kwargs):
            for model in models:
                if getattr(getattr(model, "decoder", None), "attention", "n/a") is None:
                    raise UserError("--print-alignment needs attention, but this model was trained with "
                                    "--attention-type none; drop --print-alignment")
            original(self, models, *args, **kwargs)

        return __init__

    _once(SequenceGeneratorWithAlignment, "__init__", make_wrapper)


# -- fairseq-interactive --------------------------------------------------------------------------


def _skip(message: str) -> None:
    print(f"| skipped: {message}", file=sys.stderr, flush=True)


def read_input_lines(input_path, buffer_size):
    """fairseq-interactive's reader, byte-safe: bad lines are reported and skipped, never fatal."""
    stream = sys.stdin.buffer if input_path == "-" else open(input_path, "rb")
    buffer = []
    try:
        for line_number, raw in enumerate(stream, start=1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as error:
                _skip(f"input line {line_number} is not UTF-8 text (byte 0x{raw[error.start]:02x} at {error.start})")
                continue
            if not line:
                _skip(f"input line {line_number} is empty, nothing to translate")
                continue
            buffer.append(line)
            if len(buffer) >= buffer_size:
                yield buffer
                buffer = []
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    if buffer:
        yield buffer


def interactive_tokens_and_lengths(task, lines, encode_fn):
    """Encoded input lines; lines longer than the task's --max-source-positions are reported and dropped."""
    max_positions = task.max_positions()
    max_source = max_positions[0] if isinstance(max_positions, tuple) else max_positions
    tokens = []
    for line in lines:
        encoded = task.source_dictionary.encode_line(encode_fn(line), add_if_not_exist=False).long()
        if max_source is not None and encoded.numel() > max_source:
            _skip(f"a line of {encoded.numel()} tokens is longer than --max-source-positions={max_source}")
            continue
        unknown = int(encoded.eq(task.source_dictionary.unk()).sum())
        if unknown:
            print(f"| note: {unknown} unknown word(s) read as <unk>", file=sys.stderr, flush=True)
        tokens.append(encoded)
    return tokens, [t.numel() for t in tokens]


def _guard_interactive():
    from fairseq.tasks import FairseqTask

    FairseqTask.get_interactive_tokens_and_lengths = interactive_tokens_and_lengths
    interactive = sys.modules.get("fairseq_cli.interactive")
    if interactive is not None:  # only present when running fairseq-interactive
        interactive.buffered_read = read_input_lines


def install_guards() -> None:
    _guard_checkpoint_loading()
    _guard_checkpoint_saving()
    _guard_data_paths()
    _guard_alignment_without_attention()
    _guard_interactive()

"""Our models only: fairseq-interactive reports a bad input line and goes on, and every output keeps its line's id.

Upstream: no fairseq issue (a line that is not UTF-8 raises ``UnicodeDecodeError``; a line longer than the
task's or the model's ``--max-source-positions`` fails the whole session; ``--input`` naming a missing file ends
in a traceback). Written against fairseq-fixed 0.12.3.1 (``fairseq_cli.interactive.buffered_read`` and
``make_batches``). Scope: a process that holds one of this package's models (fairseq-interactive loads the models
before it reads input); otherwise fairseq's reader and batcher run unchanged.

* Not UTF-8, empty and too-long lines get a message on stderr and are skipped; the session goes on.
* The id of an output (``S-``, ``H-``, ``C-`` ...) is its line's 0-based position in the input, whatever was
  skipped before it. fairseq numbers the lines it got (``start_id += len(inputs)``), so skipping one used to
  shift every later id; here each buffer carries its lines' ids and the batches carry those.
* With ``--constraints``, each line's tab-separated constraints stay with that line: fairseq packs the
  constraints of a buffer by position, so a line dropped as too long gave its constraints to the next sentence.
* "Too long" is the smaller of the task's and the model's (the checkpoint's) ``--max-source-positions``, and
  ``--max-tokens``, which is what fairseq's batcher enforces by raising.

Standard input may be any text stream (fairseq's tests replace ``sys.stdin`` by a ``StringIO``).
"""
import sys

import torch

from ..errors import UserError
from ..inference.lengths import source_limits, too_long
from .patching import serving_ours, wrap_once

SCOPE = "ours"


class InputLines(list):
    """One buffer of good input lines, with ``ids`` (each line's 0-based position in the input) and ``start_id``
    (what fairseq-interactive's ``main`` adds to a batch id: the number of lines it was given before)."""

    def __init__(self, lines, ids, start_id):
        super().__init__(lines)
        self.ids = list(ids)
        self.start_id = start_id


def _skip(line_id: int, message: str) -> None:
    print(f"| skipped: input line {line_id + 1} {message}; no output for id {line_id}", file=sys.stderr, flush=True)


def _raw_lines(input_path):
    """(bytes or str) lines of the file, or of standard input for "-"."""
    if input_path != "-":
        try:
            stream = open(input_path, "rb")
        except OSError as error:
            raise UserError(f"--input={str(input_path)!r}: cannot read it ({error.strerror or error})") from error
        with stream:
            yield from stream
        return
    yield from getattr(sys.stdin, "buffer", sys.stdin)


def read_input_lines(input_path, buffer_size):
    """fairseq-interactive's reader, byte-safe: InputLines of at most ``buffer_size`` good lines."""
    lines, ids, given = [], [], 0
    for line_id, raw in enumerate(_raw_lines(input_path)):
        try:
            line = (raw.decode("utf-8") if isinstance(raw, bytes) else raw).rstrip("\r\n")
        except UnicodeDecodeError as error:
            _skip(line_id, f"is not UTF-8 text (byte 0x{raw[error.start]:02x} at {error.start})")
            continue
        if not line.strip():
            _skip(line_id, "is empty, nothing to translate")
            continue
        lines.append(line)
        ids.append(line_id)
        if len(lines) >= buffer_size:
            yield InputLines(lines, ids, given)
            given += len(lines)
            lines, ids = [], []
    if lines:
        yield InputLines(lines, ids, given)


def batches_keeping_ids(lines: InputLines, cfg, task, max_positions, encode_fn):
    """fairseq-interactive's make_batches for our models: per-line constraints, too-long lines skipped, the
    batches' ids such that ``start_id + id`` is each line's position in the input."""
    use_constraints = bool(cfg.generation.constraints)
    kept_ids, sources, constraints = [], [], []
    for line_id, line in zip(lines.ids, lines):
        parts = line.split("\t") if use_constraints else [line]
        source = parts[0].strip()
        if not source:
            _skip(line_id, "has constraints but no sentence before the first tab")
            continue
        kept_ids.append(line_id)
        sources.append(source)
        constraints.append([task.target_dictionary.encode_line(encode_fn(c.strip()), append_eos=False,
                                                               add_if_not_exist=False)
                            for c in parts[1:] if c.strip()])
    tokens, _ = task.get_interactive_tokens_and_lengths(sources, encode_fn)
    limits = source_limits(task, max_positions, cfg.dataset.max_tokens)
    keep = []
    for index, (line_id, encoded) in enumerate(zip(kept_ids, tokens)):
        over = too_long(encoded.numel(), limits)
        if over:
            _skip(line_id, f"is too long: {encoded.numel()} tokens, longer than {over}")
            continue
        unknown = int(encoded.eq(task.source_dictionary.unk()).sum())
        if unknown:
            print(f"| note: input line {line_id + 1} (id {line_id}): {unknown} unknown word(s) read as <unk>",
                  file=sys.stderr, flush=True)
        keep.append(index)
    if not keep:
        return
    from fairseq.token_generation_constraints import pack_constraints
    from fairseq_cli.interactive import Batch

    kept_tokens = [tokens[i] for i in keep]
    dataset = task.build_dataset_for_inference(
        kept_tokens, [t.numel() for t in kept_tokens],
        constraints=pack_constraints([constraints[i] for i in keep]) if use_constraints else None)
    itr = task.get_batch_iterator(
        dataset=dataset, max_tokens=cfg.dataset.max_tokens, max_sentences=cfg.dataset.batch_size,
        max_positions=max_positions, ignore_invalid_inputs=cfg.dataset.skip_invalid_size_inputs_valid_test,
    ).next_epoch_itr(shuffle=False)
    input_ids = torch.tensor([kept_ids[i] for i in keep]) - lines.start_id
    for batch in itr:
        yield Batch(ids=input_ids[batch["id"]], src_tokens=batch["net_input"]["src_tokens"],
                    src_lengths=batch["net_input"]["src_lengths"], constraints=batch.get("constraints", None))


def skip_bad_lines(original):
    def buffered_read(input, buffer_size):  # fairseq's parameter names
        if not serving_ours():
            return original(input, buffer_size)
        return read_input_lines(input, buffer_size)

    return buffered_read


def keep_line_ids(original):
    def make_batches(lines, cfg, task, max_positions, encode_fn):
        if not serving_ours() or not isinstance(lines, InputLines):
            return original(lines, cfg, task, max_positions, encode_fn)
        return batches_keeping_ids(lines, cfg, task, max_positions, encode_fn)

    return make_batches


def apply() -> None:
    import fairseq_cli.interactive

    wrap_once(fairseq_cli.interactive, "buffered_read", skip_bad_lines, fix=__name__)
    wrap_once(fairseq_cli.interactive, "make_batches", keep_line_ids, fix=__name__)

"""Our models only: fairseq-interactive reports a bad input line and goes on, instead of ending the session.

Upstream: no fairseq issue (a line that is not UTF-8 raises ``UnicodeDecodeError``; a line longer than the
task's ``--max-source-positions`` fails the whole batch). Written against fairseq-fixed 0.12.3.1
(``fairseq_cli.interactive.buffered_read`` and ``FairseqTask.get_interactive_tokens_and_lengths``). Scope: a
process that holds one of this package's models (fairseq-interactive loads the models before it reads input);
otherwise fairseq's reader runs unchanged. Not UTF-8, empty and too-long lines get a message on stderr and are
skipped. Standard input may be any text stream (fairseq's tests replace ``sys.stdin`` by a ``StringIO``).
"""
import sys

from .patching import serving_ours, wrap_once

SCOPE = "ours"


def _skip(message: str) -> None:
    print(f"| skipped: {message}", file=sys.stderr, flush=True)


def _raw_lines(input_path):
    """(bytes or str) lines of the file, or of standard input for "-"."""
    if input_path != "-":
        with open(input_path, "rb") as stream:
            yield from stream
        return
    yield from getattr(sys.stdin, "buffer", sys.stdin)


def read_input_lines(input_path, buffer_size):
    """fairseq-interactive's reader, byte-safe: lists of at most ``buffer_size`` good lines."""
    buffer = []
    for line_number, raw in enumerate(_raw_lines(input_path), start=1):
        try:
            line = (raw.decode("utf-8") if isinstance(raw, bytes) else raw).strip()
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
    if buffer:
        yield buffer


def tokens_within_limits(task, lines, encode_fn):
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


def skip_bad_lines(original):
    def buffered_read(input_path, buffer_size):
        if not serving_ours():
            return original(input_path, buffer_size)
        return read_input_lines(input_path, buffer_size)

    return buffered_read


def skip_long_lines(original):
    def get_interactive_tokens_and_lengths(self, lines, encode_fn):
        if not serving_ours():
            return original(self, lines, encode_fn)
        return tokens_within_limits(self, lines, encode_fn)

    return get_interactive_tokens_and_lengths


def apply() -> None:
    import fairseq_cli.interactive
    from fairseq.tasks import FairseqTask

    wrap_once(fairseq_cli.interactive, "buffered_read", skip_bad_lines, fix=__name__)
    wrap_once(FairseqTask, "get_interactive_tokens_and_lengths", skip_long_lines, fix=__name__)

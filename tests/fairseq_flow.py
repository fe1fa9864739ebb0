"""fairseq's pipeline run in-process, the way fairseq tests itself: text -> preprocess -> train -> validate ->
generate / interactive, each step a ``fairseq_cli`` main called with arguments parsed by fairseq's own parsers.

Every helper takes the same flags as the console tool. generate, interactive and validate return what the tool
printed on stdout (fairseq-validate logs its results there); preprocess and train return what they wrote. The
plugin is loaded with ``--user-dir`` as on the command line (conftest has imported it already; fairseq then notes
it as already imported), so its global fixes are in force: checkpoints load with ``weights_only`` kept, and no
split loses its last partial batch.
"""
import contextlib
import io
import logging
import math
import random
import re
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

import torch
from fairseq import options
from fairseq_cli import generate as generate_cli
from fairseq_cli import interactive as interactive_cli
from fairseq_cli import preprocess as preprocess_cli
from fairseq_cli import train as train_cli
from fairseq_cli import validate as validate_cli

USER_DIR = str(Path(__file__).resolve().parents[1] / "fairseq_attn_gru")

#: tiny sizes per architecture; dot attention needs encoder output (hidden x directions) == decoder hidden
TINY_GRU_BIDIRECTIONAL = ["--encoder-embed-dim", "16", "--encoder-hidden-size", "16", "--decoder-embed-dim", "16",
                          "--decoder-hidden-size", "32", "--decoder-out-embed-dim", "16"]
ARCH_FLAGS: Dict[str, List[str]] = {
    # unidirectional encoder with dot attention: 16 -> 16
    "gru_attn": ["--encoder-embed-dim", "16", "--encoder-hidden-size", "16", "--decoder-embed-dim", "16",
                 "--decoder-hidden-size", "16", "--decoder-out-embed-dim", "16"],
    "gru_seq2seq": TINY_GRU_BIDIRECTIONAL,
    "gru_attn_dot": TINY_GRU_BIDIRECTIONAL,
    "gru_attn_general": TINY_GRU_BIDIRECTIONAL,
    "gru_attn_concat": TINY_GRU_BIDIRECTIONAL,
    "gru_bahdanau": TINY_GRU_BIDIRECTIONAL,
    "gru_attn_iwslt_de_en": TINY_GRU_BIDIRECTIONAL,  # keeps its 2 + 2 layers and dropout 0.3
    "gru_nematus": TINY_GRU_BIDIRECTIONAL,  # keeps its 2 + 2 layers, cgru and layer norm
    # fairseq's own model, for comparison: equal layers and sizes on both sides
    "lstm": ["--encoder-embed-dim", "16", "--encoder-hidden-size", "16", "--encoder-layers", "1",
             "--decoder-embed-dim", "16", "--decoder-hidden-size", "16", "--decoder-layers", "1",
             "--decoder-out-embed-dim", "16"],
}

SOURCE_WORDS = [f"s{i}" for i in range(10)]
TARGET_WORDS = [f"t{i}" for i in range(10)]


# -- data ---------------------------------------------------------------------------------------------------------

def random_pairs(count: int, seed: int, min_len: int = 3, max_len: int = 8):
    """``count`` (source, target) sentence pairs: random source words, target = mapped words in reverse order."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        words = [rng.randrange(len(SOURCE_WORDS)) for _ in range(rng.randint(min_len, max_len))]
        pairs.append((" ".join(SOURCE_WORDS[w] for w in words),
                      " ".join(TARGET_WORDS[(w * 3 + 1) % len(TARGET_WORDS)] for w in reversed(words))))
    return pairs


def write_corpus(root: Path, sizes: Dict[str, int], seed: int = 1) -> Dict[str, List[tuple]]:
    """``root/{split}.src`` and ``.tgt`` text files; returns the pairs by split."""
    root.mkdir(parents=True, exist_ok=True)
    corpus = {}
    for offset, (split, count) in enumerate(sizes.items()):
        pairs = random_pairs(count, seed * 1000 + offset)
        (root / f"{split}.src").write_text("".join(src + "\n" for src, _ in pairs))
        (root / f"{split}.tgt").write_text("".join(tgt + "\n" for _, tgt in pairs))
        corpus[split] = pairs
    return corpus


# -- the fairseq tools, in-process ----------------------------------------------------------------------------------

@contextlib.contextmanager
def _as_console_tool(stdout: io.StringIO):
    """Run a fairseq main as its console tool would: what it prints goes to ``stdout``.

    fairseq's mains reconfigure the root logger (fairseq-validate replaces its handlers by one writing to
    ``sys.stdout``, fairseq-generate calls ``basicConfig`` on its output stream): the logger is restored afterwards,
    so later code (and pytest's log capture) does not keep writing into this run's buffer.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        with contextlib.redirect_stdout(stdout):
            yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)


def preprocess(text_dir: Path, destdir: Path, *flags: str) -> Path:
    """fairseq-preprocess of ``text_dir``'s train/valid/test (src -> tgt) into ``destdir``."""
    parser = options.get_preprocessing_parser()
    args = parser.parse_args(["--source-lang", "src", "--target-lang", "tgt", "--trainpref", str(text_dir / "train"),
                              "--validpref", str(text_dir / "valid"), "--testpref", str(text_dir / "test"),
                              "--destdir", str(destdir), "--workers", "1", *flags])
    preprocess_cli.main(args)
    # preprocess adds a FileHandler to its logger per call: close ours so repeated runs do not pile up open files
    for handler in list(preprocess_cli.logger.handlers):
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == destdir.resolve():
            preprocess_cli.logger.removeHandler(handler)
            handler.close()
    return destdir


def train_flags(arch: str) -> List[str]:
    return ["--arch", arch, *ARCH_FLAGS[arch]]


def train(data_bin: Path, save_dir: Path, arch: str, *flags: str) -> Path:
    """fairseq-train for one epoch on CPU with tiny batches; returns checkpoint_last.pt."""
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, input_args=[
        str(data_bin), "--user-dir", USER_DIR, *train_flags(arch), "--cpu", "--optimizer", "adam", "--lr", "0.005",
        "--max-tokens", "60", "--max-epoch", "1", "--num-workers", "0", "--no-progress-bar", "--log-format", "simple",
        "--log-interval", "1", "--seed", "1", "--save-dir", str(save_dir), "--no-epoch-checkpoints", *flags])
    with _as_console_tool(io.StringIO()):
        train_cli.main(args)
    checkpoint = save_dir / "checkpoint_last.pt"
    assert checkpoint.is_file(), f"fairseq-train wrote no {checkpoint}"
    return checkpoint


def validate(data_bin: Path, checkpoint: Path, *flags: str) -> str:
    """fairseq-validate; returns its stdout (fairseq-validate logs its results there)."""
    parser = options.get_validation_parser()
    input_args = [str(data_bin), "--user-dir", USER_DIR, "--task", "translation", "--path", str(checkpoint), "--cpu",
                  "--num-workers", "0",
                  "--max-tokens", "60", "--no-progress-bar", *flags]
    args = options.parse_args_and_arch(parser, input_args=input_args)
    # what fairseq-validate's cli_main does: the flags given (and only those) override the checkpoint's
    override_args = options.parse_args_and_arch(options.get_validation_parser(), input_args=input_args,
                                                suppress_defaults=True)
    out = io.StringIO()
    with _as_console_tool(out):
        validate_cli.main(args, override_args=override_args)
    return out.getvalue()


def generate(data_bin: Path, checkpoint: Path, *flags: str) -> str:
    """fairseq-generate on the test split; returns its stdout (S-/T-/H-/D-/P-/A- lines)."""
    parser = options.get_generation_parser()
    args = options.parse_args_and_arch(parser, input_args=[
        str(data_bin), "--user-dir", USER_DIR, "--path", str(checkpoint), "--cpu", "--gen-subset", "test",
        "--num-workers", "0", "--max-len-b", "12", *flags])
    out = io.StringIO()
    with _as_console_tool(out):
        generate_cli.main(args)
    return out.getvalue()


def interactive(data_bin: Path, checkpoint: Path, lines: Iterable[str], *flags: str) -> str:
    """fairseq-interactive reading ``lines`` from a replaced ``sys.stdin``; returns its stdout."""
    parser = options.get_interactive_generation_parser()
    args = options.parse_args_and_arch(parser, input_args=[
        str(data_bin), "--user-dir", USER_DIR, "--path", str(checkpoint), "--cpu", "--max-len-b", "12", *flags])
    out = io.StringIO()
    stdin = sys.stdin
    sys.stdin = io.StringIO("".join(line + "\n" for line in lines))
    try:
        with _as_console_tool(out):
            interactive_cli.main(args)
    finally:
        sys.stdin = stdin
    return out.getvalue()


# -- reading the output ---------------------------------------------------------------------------------------------

def lines_of(out: str, kind: str) -> Dict[int, List[List[str]]]:
    """``{sentence id: [tab-separated fields after the id, one list per line]}`` for the ``kind`` lines (H, S, ...)."""
    found: Dict[int, List[List[str]]] = {}
    for match in re.finditer(rf"^{kind}-(\d+)\t(.*)$", out, flags=re.M):
        found.setdefault(int(match.group(1)), []).append(match.group(2).split("\t"))
    return found


def hypotheses(out: str) -> Dict[int, List[dict]]:
    """``{id: [{"score": float, "tokens": [...], "positional": [...], "alignment": str|None}, ...]}`` in order."""
    result: Dict[int, List[dict]] = {}
    positional = lines_of(out, "P")
    alignments = lines_of(out, "A")
    for sentence, rows in lines_of(out, "H").items():
        result[sentence] = []
        for n, (score, *text) in enumerate(rows):
            result[sentence].append({
                "score": float(score),
                "tokens": text[0].split() if text else [],
                "positional": [float(p) for p in positional[sentence][n][0].split()],
                "alignment": alignments[sentence][n][0] if sentence in alignments else None,
            })
    return result


def assert_every_sentence(out: str, count: int, nbest: int = 1) -> Dict[int, List[dict]]:
    """Exactly ``nbest`` hypotheses for each of the sentences 0 .. count-1; returns them."""
    hypos = hypotheses(out)
    assert sorted(hypos) == list(range(count)), f"H- lines for {sorted(hypos)}, expected 0..{count - 1}:\n{out[-3000:]}"
    wrong = {sentence: len(h) for sentence, h in hypos.items() if len(h) != nbest}
    assert not wrong, f"expected {nbest} hypotheses per sentence, got {wrong}"
    n_h_lines = len(re.findall(r"^H-\d+\t", out, flags=re.M))
    assert n_h_lines == count * nbest
    return hypos


def length_normalised(positional: Sequence[float], lenpen: float = 1.0) -> float:
    return sum(positional) / (len(positional) ** lenpen)


def close(a: float, b: float, tol: float) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= tol


def checkpoint_summary(checkpoint: Path) -> dict:
    """What training stored besides the weights: updates done, the epoch to resume at, the validation loss."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    return {"num_updates": int(state["optimizer_history"][-1]["num_updates"]),
            "next_epoch": int(state["extra_state"]["train_iterator"]["epoch"]),
            "val_loss": state["extra_state"]["val_loss"]}

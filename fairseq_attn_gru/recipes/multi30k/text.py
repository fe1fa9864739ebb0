"""Text processing shared by prepare.py and evaluate.py, so new raw text gets exactly the training data's treatment.

Raw line -> Moses punctuation normalisation -> Moses tokenisation (case kept, no HTML escaping) -> joint BPE.
Translations go the other way: fairseq's --remove-bpe, then Moses detokenisation.

sacremoses and subword-nmt (the `multi30k` extra) are imported when text is processed, not with this module:
the scripts call ``require_text_tools()`` before their long work, so a missing one is one ``error:`` line,
also under ``python -m``.
"""
import io
from pathlib import Path
from typing import List, Optional

from ..cli import require_module

BPE_CODES = "bpe.codes"  # file name inside the prepared directory


def require_text_tools():
    """sacremoses and subword-nmt's two modules, or MissingDependencyError saying what to install."""
    return (require_module("sacremoses"), require_module("subword_nmt.learn_bpe"),
            require_module("subword_nmt.apply_bpe"))


def read_lines(path, limit: Optional[int] = None) -> List[str]:
    with open(path, encoding="utf-8") as lines:
        text = [line.rstrip("\r\n") for line in lines]
    return text[:limit] if limit else text


def write_lines(path, lines: List[str]) -> None:
    Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def normalize(lines: List[str], lang: str) -> List[str]:
    normalizer = require_module("sacremoses").MosesPunctNormalizer(lang)
    return [normalizer.normalize(line) for line in lines]


def tokenize(lines: List[str], lang: str) -> List[str]:
    """Normalised, Moses-tokenised lines. escape=False keeps & " ' < > as themselves (not &amp; ...),
    so the detokenised output compares directly with raw references."""
    tokenizer = require_module("sacremoses").MosesTokenizer(lang)
    return [tokenizer.tokenize(line, escape=False, return_str=True) for line in normalize(lines, lang)]


def learn_joint_bpe(tokenized_texts: List[List[str]], codes_path, merges: int) -> None:
    """One BPE model over all given texts together (German and English share a vocabulary)."""
    joined = io.StringIO("".join(line + "\n" for lines in tokenized_texts for line in lines))
    with open(codes_path, "w", encoding="utf-8") as codes:
        require_module("subword_nmt.learn_bpe").learn_bpe(joined, codes, merges)


def apply_bpe(tokenized_lines: List[str], codes_path) -> List[str]:
    with open(codes_path, encoding="utf-8") as codes:
        bpe = require_module("subword_nmt.apply_bpe").BPE(codes)
    return [bpe.process_line(line) for line in tokenized_lines]


def detokenize(lines: List[str], lang: str = "en") -> List[str]:
    """Moses-tokenised (BPE already removed) lines back to plain text."""
    detokenizer = require_module("sacremoses").MosesDetokenizer(lang)
    return [detokenizer.detokenize(line.split()) for line in lines]

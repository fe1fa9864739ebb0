"""Raw parallel text: where a pair's split files are, and that they are fit to use, checked before anything is written.

A split is a file prefix, as fairseq-preprocess takes it: ``--train data/train`` means ``data/train.SRC`` and
``data/train.TGT``, line i of one the translation of line i of the other. ``--data DIR`` is the Multi30k layout
(``DIR/train``, ``DIR/val`` and every ``DIR/test_*`` pair). Every file is read the same way (``read_text``):

- UTF-8 only; other bytes are named with their line and byte, never replaced;
- a byte-order mark at the start of the file is dropped, and lines end at ``\\n`` alone (``\\r\\n`` loses its
  ``\\r``), so files saved on Windows read as the same lines; a ``\\r`` or other line separator (U+2028, U+0085)
  inside a line stays inside it (Python's splitlines would cut there and pair the wrong sentences);
- a split's two files must have as many lines, and at least one.

Language codes become file names and fairseq's ``SRC-TGT`` pair names, so a code is letters, digits and ``_``
(``pt_BR``), starting with a letter: ``-`` and ``.`` would split them wrongly. tests/test_pipeline.py checks each
refusal.
"""
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..recipes.cli import fail

LANG_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,15}")
BOM = "\ufeff"


@dataclass(frozen=True)
class Split:
    """One split of the corpus: ``role`` is train, valid or test; its files are ``prefix.SRC`` / ``prefix.TGT``."""
    name: str
    prefix: Path
    role: str

    def path(self, lang: str) -> Path:
        return Path(f"{self.prefix}.{lang}")


def check_languages(source_lang: str, target_lang: str) -> None:
    for flag, code in (("--source-lang", source_lang), ("--target-lang", target_lang)):
        if not LANG_CODE.fullmatch(code or ""):
            fail(f"{flag}={code!r} is not allowed: a language code of letters, digits and '_', starting with a letter "
                 "(en, de, pt_BR); fairseq's file names cannot hold '-' or '.'")
    if source_lang == target_lang:
        fail(f"--source-lang and --target-lang are both {source_lang!r}: a translation direction needs two languages")


def decode_utf8(raw: bytes, path) -> str:
    """The file's text, or one line naming the line and byte that is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        fail(f"{str(path)!r} is not UTF-8 text (line {line}, byte 0x{raw[error.start]:02x}): convert it, e.g. "
             "iconv -f LATIN1 -t UTF-8")


def read_text(path, limit: Optional[int] = None) -> List[str]:
    """The file's lines (module docstring: UTF-8, BOM dropped, CRLF read as LF), the first ``limit`` if given."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        fail(f"{str(path)!r} does not exist")
    except OSError as error:
        fail(f"{str(path)!r} cannot be read ({error.strerror or error})")
    lines = text_lines(raw, path)
    return lines[:limit] if limit else lines


def text_lines(raw: bytes, name) -> List[str]:
    """Bytes -> lines, as read_text reads a file (``name`` says where they came from in an error)."""
    text = decode_utf8(raw, name)
    if text.startswith(BOM):
        text = text[len(BOM):]
    lines = text.split("\n")
    if lines[-1] == "":  # the newline that ends the last line
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def write_text(path, lines: Sequence[str]) -> None:
    Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def read_pair(split: Split, source_lang: str, target_lang: str, limit: Optional[int] = None) -> Dict[str, List[str]]:
    """{lang: lines} of a split, both sides checked: readable UTF-8, not empty, as many lines each."""
    texts = {lang: read_text(split.path(lang)) for lang in (source_lang, target_lang)}
    for lang, lines in texts.items():
        if not lines:
            fail(f"{str(split.path(lang))!r} is empty")
    counts = {lang: len(lines) for lang, lines in texts.items()}
    if counts[source_lang] != counts[target_lang]:
        fail(f"{str(split.path(source_lang))!r} has {counts[source_lang]} lines but "
             f"{str(split.path(target_lang))!r} has {counts[target_lang]}: a split's files must be line-aligned "
             "translations")
    return {lang: lines[:limit] if limit else lines for lang, lines in texts.items()}


def require_files(splits: Sequence[Split], source_lang: str, target_lang: str) -> None:
    """Every split file exists: a missing one is named with what the pipeline needs."""
    for split in splits:
        for lang in (source_lang, target_lang):
            if not split.path(lang).is_file():
                fail(f"missing {split.role} file {str(split.path(lang))!r} (each split needs PREFIX.{source_lang} "
                     f"and PREFIX.{target_lang})")


def check_splits(splits: Sequence[Split], source_lang: str, target_lang: str) -> Dict[str, int]:
    """{split name: lines}, after every check of ``read_pair`` on every split (run before anything is written)."""
    require_files(splits, source_lang, target_lang)
    return {split.name: len(read_pair(split, source_lang, target_lang)[source_lang]) for split in splits}


def fingerprint(path) -> str:
    """sha256 of the file's bytes: what a rerun compares to tell whether its input changed."""
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def layout_splits(data: Path, source_lang: str, target_lang: str) -> List[Split]:
    """The Multi30k layout of ``--data DIR``: DIR/train, DIR/val, and every DIR/test_* that has both sides (sorted),
    so Multi30k's test_2016_flickr, test_2017_flickr, ... are all scored. A test set with one side only (Czech has
    no test_2017_flickr) is named and left out."""
    if not data.is_dir():
        fail(f"--data {str(data)!r} is not a directory")
    names = sorted({path.name.rsplit(".", 1)[0] for lang in (source_lang, target_lang)
                    for path in data.glob(f"test_*.{lang}")})
    tests = []
    for name in names:
        missing = [lang for lang in (source_lang, target_lang) if not (data / f"{name}.{lang}").is_file()]
        if missing:
            print(f"note: {data / name} has no .{missing[0]} file: not a {source_lang}-{target_lang} test set",
                  flush=True)
        else:
            tests.append(Split(name, data / name, "test"))
    return [Split("train", data / "train", "train"), Split("val", data / "val", "valid"), *tests]


def prefix_splits(train: str, valid: str, tests: Sequence[str]) -> List[Split]:
    """Splits from file prefixes (``--train``, ``--valid``, ``--test``), named after the prefixes' file names."""
    splits = [Split("train", Path(train), "train"), Split("valid", Path(valid), "valid")]
    names = set()
    for prefix in tests:
        name = Path(prefix).name
        if name in names or name in ("train", "valid"):
            fail(f"--test {prefix!r}: another split is already named {name!r} (results and outputs are named after "
                 "the prefix's file name)")
        names.add(name)
        splits.append(Split(name, Path(prefix), "test"))
    return splits

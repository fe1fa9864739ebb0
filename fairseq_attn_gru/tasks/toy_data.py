"""Seeded toy parallel data: every sentence pair is a pure function of the options and the seed.

Source words are ``w0 .. w{V-1}``. Rules:

* ``copy``: the target is the source.
* ``reverse``: the target is the source reversed.
* ``sort``: the target is the source sorted by word number (``w3 w10 w3`` -> ``w3 w3 w10``).
* ``translate``: each source word ``wi`` becomes its lexicon entry ``x{lexicon[i]}`` (a seeded
  permutation of ``0 .. V-1``), and words are reordered block by block: the sentence is cut into
  blocks of 3 words and each block's words are written in the seeded order ``block_order``
  (a fixed non-identity permutation of 3 positions; a shorter last block keeps the relative order
  of the positions it has). Getting word ``j`` of the target right needs looking at a source word
  that is not ``j``: a model needs attention, not just a running summary.
"""
from typing import List, Sequence, Tuple

import numpy as np

from ..errors import config_error

RULES = ["copy", "reverse", "sort", "translate"]
SPLITS = ["train", "valid", "test"]
BLOCK_SIZE = 3


def source_words(vocab_size: int) -> List[str]:
    return [f"w{i}" for i in range(vocab_size)]


def target_words(rule: str, vocab_size: int) -> List[str]:
    return [f"x{i}" for i in range(vocab_size)] if rule == "translate" else source_words(vocab_size)


def translate_rule_params(vocab_size: int, seed: int) -> Tuple[np.ndarray, List[int]]:
    """The lexicon (source word number -> target word number) and the block order, both from ``seed``."""
    rng = np.random.default_rng([seed, 1_000_003])
    lexicon = rng.permutation(vocab_size)
    identity = list(range(BLOCK_SIZE))
    block_order = identity
    while block_order == identity:
        block_order = [int(i) for i in rng.permutation(BLOCK_SIZE)]
    return lexicon, block_order


def reorder_blocks(items: Sequence, block_order: Sequence[int]) -> list:
    out = []
    for start in range(0, len(items), BLOCK_SIZE):
        block = items[start : start + BLOCK_SIZE]
        out.extend(block[i] for i in block_order if i < len(block))
    return out


def apply_rule(rule: str, source: Sequence[int], vocab_size: int, seed: int) -> List[int]:
    """Target word numbers for a source sentence given as word numbers."""
    if rule == "copy":
        return list(source)
    if rule == "reverse":
        return list(reversed(source))
    if rule == "sort":
        return sorted(source)
    if rule == "translate":
        lexicon, block_order = translate_rule_params(vocab_size, seed)
        return reorder_blocks([int(lexicon[w]) for w in source], block_order)
    raise config_error("--toy-rule", rule, "one of " + ", ".join(RULES))


#: limits that keep a toy task a toy: the data is generated in memory (about 1M words/s) at every start
MAX_VOCAB_SIZE = 1_000_000
MAX_SENTENCE_LEN = 10_000
MAX_WORDS_PER_SPLIT = 100_000_000


def validate_options(rule: str, vocab_size: int, min_len: int, max_len: int, sizes: dict, seed: int = 0) -> None:
    if rule not in RULES:
        raise config_error("--toy-rule", rule, "one of " + ", ".join(RULES))
    if not 2 <= vocab_size <= MAX_VOCAB_SIZE:
        raise config_error("--toy-vocab-size", vocab_size, f"an integer from 2 to {MAX_VOCAB_SIZE:,}")
    if min_len < 1:
        raise config_error("--toy-min-len", min_len, "an integer >= 1")
    if max_len < min_len:
        raise config_error("--toy-max-len", max_len, f"an integer >= --toy-min-len ({min_len})")
    if max_len > MAX_SENTENCE_LEN:
        raise config_error("--toy-max-len", max_len, f"at most {MAX_SENTENCE_LEN:,} words (a toy sentence)")
    for flag, size in sizes.items():
        if size < 0:
            raise config_error(flag, size, "0 or more sentences")
        if size * (min_len + max_len) / 2 > MAX_WORDS_PER_SPLIT:
            raise config_error(flag, size, f"at most {MAX_WORDS_PER_SPLIT // max(1, (min_len + max_len) // 2):,} "
                                           f"sentences of {min_len}-{max_len} words ({MAX_WORDS_PER_SPLIT:,} words "
                                           "per split: the toy data is generated in memory at every start)")
    if seed < 0:
        raise config_error("--toy-seed", seed, "an integer >= 0")


def generate_pairs(
    rule: str, vocab_size: int, min_len: int, max_len: int, size: int, seed: int, split: str
) -> List[Tuple[str, str]]:
    """``size`` (source line, target line) pairs for ``split``; each split has its own random stream."""
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    lengths = rng.integers(min_len, max_len + 1, size=size)
    src_vocab, tgt_vocab = source_words(vocab_size), target_words(rule, vocab_size)
    pairs = []
    for length in lengths:
        source = rng.integers(0, vocab_size, size=int(length)).tolist()
        target = apply_rule(rule, source, vocab_size, seed)
        pairs.append((" ".join(src_vocab[w] for w in source), " ".join(tgt_vocab[w] for w in target)))
    return pairs

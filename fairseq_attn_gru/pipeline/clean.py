"""Training-data cleaning: the sentence pairs that would only teach the model noise, dropped and counted.

Applied to the training split only; validation and test sets are never filtered or altered. A pair is dropped for
the first of these reasons that holds (each drop is counted under that one reason):

1. ``empty``: either side is empty or only whitespace;
2. ``too_long``: either side has more than ``max_words`` words (whitespace-separated; Moses' clean-corpus-n.perl
   uses 80, this pipeline 250 by default, which keeps every Multi30k sentence);
3. ``length_ratio``: one side has more than ``max_ratio`` times the words of the other (clean-corpus-n's ratio,
   9 by default); with ``max_ratio`` 0 the check is off (scripts without spaces between words);
4. ``duplicate``: the exact pair (both sides) already appeared earlier; the first occurrence stays.

The counts go into prep.json and the results json. tests/test_pipeline.py checks each reason against a made-up
corpus.
"""
from dataclasses import dataclass
from typing import Dict, List, Tuple

REASONS = ("empty", "too_long", "length_ratio", "duplicate")


@dataclass(frozen=True)
class Limits:
    max_words: int = 250
    max_ratio: float = 9.0


def drop_reason(source: str, target: str, limits: Limits):
    """Why the pair is dropped (one of REASONS but ``duplicate``), or None."""
    source_words, target_words = len(source.split()), len(target.split())
    if not source_words or not target_words:
        return "empty"
    if max(source_words, target_words) > limits.max_words:
        return "too_long"
    if limits.max_ratio and max(source_words, target_words) > limits.max_ratio * min(source_words, target_words):
        return "length_ratio"
    return None


def clean_pairs(sources: List[str], targets: List[str], limits: Limits) -> Tuple[List[str], List[str], Dict[str, int]]:
    """(kept sources, kept targets, counts): counts has ``pairs`` (input), one entry per reason, and ``kept``."""
    counts = {"pairs": len(sources), **dict.fromkeys(REASONS, 0)}
    kept_sources, kept_targets, seen = [], [], set()
    for source, target in zip(sources, targets):
        reason = drop_reason(source, target, limits)
        if reason is None and (source, target) in seen:
            reason = "duplicate"
        if reason:
            counts[reason] += 1
            continue
        seen.add((source, target))
        kept_sources.append(source)
        kept_targets.append(target)
    counts["kept"] = len(kept_sources)
    return kept_sources, kept_targets, counts

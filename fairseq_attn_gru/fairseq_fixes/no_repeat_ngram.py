"""Global fix: ``--no-repeat-ngram-size`` blocks repeated n-grams on CPU.

Upstream: fairseq #4709 and #5206 (both open). Written against fairseq-fixed 0.12.3.1
(``ngram_repeat_block.NGramRepeatBlock._no_repeat_ngram``, the code path without the CUDA extension). Scope: every
model (the blocker does not know the model).

SequenceGenerator hands the blocker its whole token buffer, padded to the maximum length, and the blocker takes
the n-gram to check from the end of that buffer: padding, never the tokens just generated, so it blocks nothing.
We hand it the tokens generated so far (positions 0..step), whose end is the newest n-1 tokens.
"""
from .patching import wrap_once

SCOPE = "global"


def generated_tokens_only(original):
    def _no_repeat_ngram(self, tokens, lprobs, bsz: int, beam_size: int, step: int):
        return original(self, tokens[:, : step + 1], lprobs, bsz, beam_size, step)  # (bsz * beam, step + 1)

    return _no_repeat_ngram


def apply() -> None:
    from fairseq.ngram_repeat_block import NGramRepeatBlock

    wrap_once(NGramRepeatBlock, "_no_repeat_ngram", generated_tokens_only, fix=__name__)

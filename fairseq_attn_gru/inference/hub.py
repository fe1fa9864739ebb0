"""What ``GRUAttnModel.from_pretrained`` returns: fairseq's hub interface with this package's additions.

* ``hub.translate_with_attention(sentences, beam=5)`` (inference/attention_api.py);
* a sentence longer than the model and task take is refused before any decoding, in one line (``UserError``) naming
  the sentence and the limit. fairseq raised a bare ``Exception`` telling the caller to pass a command-line flag
  (``--skip-invalid-size-inputs-valid-test``); its Python equivalent, ``skip_invalid_size_inputs=True``, drops the
  sentence from the outputs, so that they no longer line up with the inputs: refused here too;
* an empty sentence is refused (fairseq-interactive skips such a line; fairseq translated it into whatever the model
  says after nothing);
* generation options are checked: ``beam`` a positive integer (0 and "5" ended in tracebacks), and every other
  keyword one of fairseq's generation options (``lenpenn=1.2`` was set on the config and ignored).
"""
import difflib
from typing import List

import torch
from fairseq import utils
from fairseq.hub_utils import GeneratorHubInterface

from ..errors import UserError
from .lengths import source_limits, too_long

#: characters of a too-long sentence quoted in the message
PREVIEW = 40


class GRUAttnHubInterface(GeneratorHubInterface):
    """fairseq's GeneratorHubInterface for this package's models (module docstring)."""

    def translate_with_attention(self, sentences, beam: int = 5, **generation_args):
        from .attention_api import translate_with_attention

        return translate_with_attention(self, sentences, beam, **generation_args)

    def generate(self, tokenized_sentences, beam: int = 5, verbose: bool = False, skip_invalid_size_inputs=False,
                 inference_step_args=None, prefix_allowed_tokens_fn=None, **kwargs):
        check_generation_options(self, beam, kwargs)
        return super().generate(tokenized_sentences, beam, verbose, skip_invalid_size_inputs, inference_step_args,
                                prefix_allowed_tokens_fn, **kwargs)

    def _build_batches(self, tokens: List[torch.Tensor], skip_invalid_size_inputs: bool):
        check_sources(self, tokens)
        return super()._build_batches(tokens, skip_invalid_size_inputs)


def check_generation_options(hub, beam, options) -> None:
    """UserError for a beam that is not a positive integer or a keyword that is not a generation option."""
    if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
        raise UserError(f"beam={beam!r} is not allowed: a positive integer (1: greedy search)")
    known = set(hub.cfg.generation.keys())
    for name in options:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(f"{name}={options[name]!r} is not a generation option{hint}: fairseq would set it and "
                            "ignore it; the options are fairseq-generate's, with _ for - (lenpen=1.2, max_len_b=50, ...)")


def check_sources(hub, tokens: List[torch.Tensor]) -> None:
    """UserError for the first sentence that is empty or longer than the hub's models and task take (positions,
    then --max-tokens)."""
    max_positions = utils.resolve_max_positions(hub.task.max_positions(),
                                                *[model.max_positions() for model in hub.models])
    limits = source_limits(hub.task, max_positions, hub.cfg.dataset.max_tokens)
    for index, sentence in enumerate(tokens):
        if sentence.numel() <= 1:  # </s> alone
            raise UserError(f"sentence {index + 1} of {len(tokens)} is empty: nothing to translate (fairseq-interactive "
                            "skips such a line); leave it out")
        over = too_long(sentence.numel(), limits)
        if over:
            text = hub.string(sentence)
            preview = text if len(text) <= PREVIEW else text[:PREVIEW] + "..."
            raise UserError(f"sentence {index + 1} of {len(tokens)} ({preview!r}) is too long: {sentence.numel()} "
                            f"tokens (</s> included), more than {over}: split it, or leave it out "
                            "(skip_invalid_size_inputs=True would drop it from the outputs, which then would not "
                            "line up with the inputs)")

"""Our models only: ``--print-alignment`` on a model trained without attention stops with one line.

Upstream: no fairseq issue (fairseq fails mid-generation with a TypeError on the missing attention). Written against
fairseq-fixed 0.12.3.1 (``SequenceGeneratorWithAlignment.__init__``). Scope: this package's models.
"""
from ..errors import UserError
from .patching import is_ours, wrap_once

SCOPE = "ours"


def refuse_without_attention(original):
    def __init__(self, models, *args, **kwargs):
        for model in models:
            if is_ours(model) and model.decoder.attention is None:
                raise UserError("--print-alignment needs attention, but this model was trained with "
                                "--attention-type none; drop --print-alignment")
        original(self, models, *args, **kwargs)

    return __init__


def apply() -> None:
    from fairseq.sequence_generator import SequenceGeneratorWithAlignment

    wrap_once(SequenceGeneratorWithAlignment, "__init__", refuse_without_attention, fix=__name__)

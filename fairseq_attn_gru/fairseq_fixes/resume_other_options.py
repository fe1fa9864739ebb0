"""Our models only: fairseq-train resumed in a ``--save-dir`` whose checkpoint holds a model with other architecture
options says which options differ and what to do, in one line.

Upstream: no fairseq issue (``Trainer.load_checkpoint`` raises ``Exception: Cannot load model parameters from
checkpoint ...; please ensure that the architectures match.`` with a traceback, and does not say which options
differ). Written against fairseq-fixed 0.12.3.1 (``Trainer.load_checkpoint``). Scope: runs that train one of this
package's models, where fairseq raises anyway: the same exception goes on with the one-line message
(errors.explain) that fairseq-train prints instead of the traceback.
"""
from ..errors import explain
from ..models.trained_on import architecture_differences
from .patching import is_ours, wrap_once

SCOPE = "ours"


def saved_model_config(filename):
    """The checkpoint's ``cfg.model`` (None if it cannot be read: fairseq's own error stands then)."""
    import torch

    try:
        state = torch.load(filename, map_location="cpu", weights_only=True)
        return state["cfg"]["model"]
    except Exception:  # a damaged file: fairseq's message is all there is to say
        return None


def name_the_options(original):
    def load_checkpoint(self, filename, *args, **kwargs):
        try:
            return original(self, filename, *args, **kwargs)
        except Exception as error:
            if "Cannot load model parameters" not in str(error) or not is_ours(self.model):
                raise
            saved = saved_model_config(filename)
            found = architecture_differences(saved, self.cfg.model) if saved is not None else []
            if not found:
                raise
            raise explain(error, f"{str(filename)!r} holds a model trained with other options than these "
                                 f"({'; '.join(found)}): resume it with its own options, or train this model "
                                 "into another --save-dir")

    return load_checkpoint


def apply() -> None:
    from fairseq.trainer import Trainer

    wrap_once(Trainer, "load_checkpoint", name_the_options, fix=__name__)

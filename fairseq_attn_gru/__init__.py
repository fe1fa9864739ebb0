"""fairseq-attn-gru: GRU encoder-decoder with selectable attention, as a fairseq plugin.

Load it with ``--user-dir fairseq_attn_gru`` (or ``import fairseq_attn_gru``): importing this
package registers the ``gru_attn`` model, its named architectures and the ``toy_translation`` task.
"""
from .errors import MissingDependencyError, UserError, install_excepthook

install_excepthook()  # before anything can fail: errors a person can fix print as one line
try:
    import fairseq  # noqa: F401
except ImportError:
    raise MissingDependencyError(
        "fairseq-attn-gru needs fairseq: run `make install` in the checkout "
        "(it installs torch==2.13.0 and fairseq-fixed==0.12.3.1 into .venv/)"
    ) from None

from .compat import (  # noqa: E402
    fix_diverse_beam_search_batches,
    keep_last_partial_batch,
    register_checkpoint_safe_globals,
)

register_checkpoint_safe_globals()
keep_last_partial_batch()
fix_diverse_beam_search_batches()

from .safety import install_guards  # noqa: E402

install_guards()

from . import model, toy_task  # noqa: E402,F401  (run the @register_* decorators)
from .model import GRUAttnModel  # noqa: E402,F401
from .beam_stopping import install_patient_stopping  # noqa: E402

install_patient_stopping()

__all__ = ["GRUAttnModel", "UserError"]

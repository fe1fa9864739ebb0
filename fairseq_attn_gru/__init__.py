"""fairseq-attn-gru: GRU encoder-decoder with selectable attention, as a fairseq plugin.

Load it with ``--user-dir`` (or ``import fairseq_attn_gru``): importing registers the ``gru_attn`` model, its named
architectures, the ``toy_translation`` task and the ``inverse_sqrt_plateau`` learning-rate schedule (optim/), then
applies the fairseq fixes (fairseq_fixes/, each with its upstream bug and scope).
"""
from .errors import MissingDependencyError, UserError, install_cli_excepthook

try:
    import fairseq  # noqa: F401
except ImportError:
    raise MissingDependencyError(
        "fairseq-attn-gru needs torch and fairseq, which pip does not install with it. In the checkout: run "
        "`make install`. In an environment where pip installed this package: `pip install cython torch==2.13.0` "
        "(or the torch build you need: docs/install.md), then "
        "`pip install --no-build-isolation --no-deps fairseq-fixed==0.12.3.1`"
    ) from None

from . import models, optim, tasks  # noqa: E402  (runs the @register_* decorators)
from .fairseq_fixes import apply_all  # noqa: E402
from .models import GRUAttnModel  # noqa: E402

apply_all()
install_cli_excepthook()

__all__ = ["GRUAttnModel", "UserError"]

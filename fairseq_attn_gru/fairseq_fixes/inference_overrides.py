"""Global fix, refusals only: ``--model-overrides`` (or ``from_pretrained``'s keyword arguments) asking for one of
this package's inference options on a model that does not have it stops with one line.

Upstream: no fairseq issue (fairseq applies an override only to options a checkpoint's config has, and drops the
others without a word). Written against fairseq-fixed 0.12.3.1 (``checkpoint_utils.load_model_ensemble_and_task``).
Scope: every model, but only where the overrides name ``int8`` or ``cpu_bf16`` with a value other than False:
``fairseq-generate --model-overrides "{'int8': True}"`` on fairseq's own ``lstm`` generated in fp32 and said nothing.
Any other override, and every other run, is fairseq's as before.
"""
from ..errors import UserError
from .patching import is_ours, wrap_once

SCOPE = "global"

#: this package's options that change how a loaded model runs, and what each would have done
INFERENCE_OPTIONS = {"int8": "int8 quantization", "cpu_bf16": "CPU bfloat16"}


def refuse_unhonoured(original):
    def load_model_ensemble_and_task(filenames, arg_overrides=None, *args, **kwargs):
        ensemble, cfg, task = original(filenames, arg_overrides, *args, **kwargs)
        asked = [name for name in INFERENCE_OPTIONS if (arg_overrides or {}).get(name, False) is not False]
        foreign = next(((path, model) for path, model in zip(filenames, ensemble) if not is_ours(model)), None)
        if asked and foreign is not None:
            path, model = foreign
            name = asked[0]
            raise UserError(f"--model-overrides {name!r}: {arg_overrides[name]!r} asks for {INFERENCE_OPTIONS[name]}, "
                            f"an option of this package's gru_attn models, but {str(path)!r} holds "
                            f"{type(model).__name__}, which has no such option and would run in fp32: drop it")
        return ensemble, cfg, task

    return load_model_ensemble_and_task


def apply() -> None:
    from fairseq import checkpoint_utils

    wrap_once(checkpoint_utils, "load_model_ensemble_and_task", refuse_unhonoured, fix=__name__)

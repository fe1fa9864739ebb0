"""What a model's output means: the dictionaries and task options it was trained with, saved in its checkpoints and
checked wherever it is loaded.

A checkpoint's weights are indexed by dictionary position, but the dictionaries live elsewhere: in the data
directory (fairseq's translation task) or in the task options (``toy_translation``, whose ``--toy-rule`` also says
what the target is). A model loaded with other dictionaries, or a toy ``reverse`` model asked for ``copy``, runs
and scores BLEU 0 without a word; so does an ensemble of models trained on different data, and an average of their
weights.

``GRUAttnModel.build_model`` records the *signature* of the task it is built for in fairseq's task state, which
fairseq saves in every checkpoint (``task_state``): each dictionary's size and a digest of its symbols, and the
options that give the symbols their meaning (a task's ``meaning()``, where it has one). When fairseq loads a
checkpoint it restores that state into the task *before* building the model (``load_model_ensemble_and_task``:
``task.load_state_dict``, then ``task.build_model``), so the model compares the checkpoint's signature with the
task's and refuses a difference in one line, for every member of an ensemble. Checkpoints saved before the
signature existed carry none and are not checked. ``checkpoint_differences`` compares two checkpoints' files (what
averaging needs).
"""
import dataclasses
import hashlib
from typing import Dict, List, Optional

from ..errors import UserError

#: the task-state entry that holds the signature
KEY = "gru_attn_trained_on"

#: options that do not change what the parameters mean: training-only (dropouts, teacher forcing, frozen or
#: pretrained embeddings at the start) and inference-only ones, and the registry's bookkeeping
NOT_ARCHITECTURE = {"_name", "arch", "dropout", "encoder_dropout_in", "encoder_dropout_out", "decoder_dropout_in",
                    "decoder_dropout_out", "encoder_word_dropout", "decoder_word_dropout", "encoder_freeze_embed",
                    "decoder_freeze_embed", "encoder_embed_path", "decoder_embed_path", "teacher_forcing",
                    "teacher_forcing_min", "teacher_forcing_decay_updates", "cpu_bf16", "int8",
                    "max_source_positions", "max_target_positions"}


def dictionary_signature(dictionary) -> str:
    digest = hashlib.sha256("\n".join(dictionary.symbols).encode("utf-8")).hexdigest()[:12]
    return f"{len(dictionary):,} symbols, sha256 {digest}"


def signature(task) -> Dict[str, str]:
    """What ``task`` makes a model's input and output mean."""
    found = {"source dictionary": dictionary_signature(task.source_dictionary),
             "target dictionary": dictionary_signature(task.target_dictionary)}
    meaning = getattr(task, "meaning", None)
    if callable(meaning):
        found.update(meaning())
    return found


def differences(saved: Dict[str, str], current: Dict[str, str]) -> List[str]:
    """``name: X there, Y here`` for every entry of ``saved`` that ``current`` does not match."""
    return [f"{name}: {saved[name]} there, {current.get(name, 'none')} here" for name in saved
            if saved[name] != current.get(name)]


def check_and_record(task) -> None:
    """In ``build_model``: refuse a checkpoint whose saved signature differs from ``task``'s, then record ``task``'s
    (for the checkpoints training will save). A task without fairseq's task state is left alone."""
    state = getattr(task, "state", None)
    if state is None or not hasattr(state, "merge_state_dict"):
        return
    current = signature(task)
    saved = state.state_dict.get(KEY)  # restored from the checkpoint being loaded, if it has one
    found = differences(saved, current) if isinstance(saved, dict) else []
    if found:
        raise UserError(f"{loaded_checkpoint_name()} was trained for other data than it is loaded with "
                        f"({'; '.join(found)}): load it with the data directory and task options it was trained "
                        "with (the models of an ensemble must share them)")
    state.merge_state_dict({KEY: current})


def loaded_checkpoint_name() -> str:
    from ..fairseq_fixes.checkpoint_errors import last_checkpoint_read

    path = last_checkpoint_read()
    return f"checkpoint {path!r}" if path else "the checkpoint being loaded"


def architecture(model_cfg) -> Dict[str, object]:
    """The options of a saved ``gru_attn`` config that decide what its parameters mean (NOT_ARCHITECTURE left out),
    with this package's defaults for those an older checkpoint lacks."""
    from .config import GRUAttnConfig

    get = model_cfg.get if hasattr(model_cfg, "get") else lambda name, default=None: getattr(model_cfg, name, default)
    options = {}
    for config_field in dataclasses.fields(GRUAttnConfig):
        if config_field.name not in NOT_ARCHITECTURE:
            value = get(config_field.name, None)
            options[config_field.name] = config_field.default if value is None else value
    return {name: str(value) if not isinstance(value, (bool, int, float)) else value
            for name, value in options.items()}


def architecture_differences(saved_cfg, current_cfg) -> List[str]:
    """``--flag: X there, Y here`` for each architecture option two ``gru_attn`` configs set differently."""
    saved, current = architecture(saved_cfg), architecture(current_cfg)
    return [f"--{name.replace('_', '-')}: {saved[name]!r} there, {current[name]!r} here" for name in saved
            if saved[name] != current[name]]


def checkpoint_differences(first: dict, other: dict) -> List[str]:
    """How checkpoint state ``other`` differs from ``first`` (both as ``torch.load`` returns a fairseq checkpoint) in
    what decides whether their parameters can be averaged: the task, the data signature, and for this package's
    models the architecture options. Empty when nothing that matters differs (or nothing can be told)."""
    found = []
    first_task, other_task = _task_name(first), _task_name(other)
    if first_task != other_task:
        found.append(f"task: {other_task!r} there, {first_task!r} in the first")
    signatures = [(state.get("task_state") or {}).get(KEY) for state in (first, other)]
    if all(isinstance(s, dict) for s in signatures):
        found += [item.replace(" here", " in the first") for item in differences(signatures[1], signatures[0])]
    models = [_model_cfg(state) for state in (first, other)]
    if all(model is not None and _is_gru_attn(model) for model in models):
        found += [item.replace(" here", " in the first") for item in architecture_differences(models[1], models[0])]
    return found


def _cfg(state: dict) -> Optional[dict]:
    cfg = state.get("cfg")
    return cfg if hasattr(cfg, "get") else None


def _task_name(state: dict) -> Optional[str]:
    cfg = _cfg(state)
    task = cfg.get("task") if cfg is not None else None
    return task.get("_name") if hasattr(task, "get") else None


def _model_cfg(state: dict):
    cfg = _cfg(state)
    return cfg.get("model") if cfg is not None else None


def _is_gru_attn(model_cfg) -> bool:
    from fairseq.models import ARCH_MODEL_REGISTRY

    from .gru_attn import GRUAttnModel

    get = model_cfg.get if hasattr(model_cfg, "get") else lambda name, default=None: getattr(model_cfg, name, default)
    name = get("_name", None) or get("arch", None)
    model_class = ARCH_MODEL_REGISTRY.get(name) if isinstance(name, str) else None
    return isinstance(model_class, type) and issubclass(model_class, GRUAttnModel)

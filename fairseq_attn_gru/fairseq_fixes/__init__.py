"""Fixes to fairseq, one module each, applied once when the package is imported.

Each module's docstring names the upstream bug, the fairseq version it was written against
(fairseq-fixed 0.12.3.1) and its scope (``SCOPE``):

* ``"ours"``: acts only where one of this package's models is involved; fairseq's own models run fairseq's code;
* ``"global"``: acts for every model in the process, because the code it fixes runs before any model is known.
  README lists these with the reason. ``FAIRSEQ_ATTN_GRU_GLOBAL_FIXES=0`` leaves all of them unapplied.
"""
from . import (alignment_needs_attention, checkpoint_errors, checkpoint_safe_globals, checkpoint_saving,
               checkpoint_weights_only, cpu_training_precision, data_path_errors, distributed_resume,
               divergence_message, diverse_beam_rows, inference_overrides, interactive_input, last_partial_batch,
               launcher_env, no_repeat_ngram, patient_beam, plateau_schedule_resume, resume_other_options,
               save_dir_errors, training_interrupts)
from .patching import GLOBAL_FIXES_ENV, global_fixes_enabled

FIXES = [
    checkpoint_safe_globals,
    checkpoint_weights_only,
    last_partial_batch,
    diverse_beam_rows,
    no_repeat_ngram,
    checkpoint_errors,
    inference_overrides,
    data_path_errors,
    launcher_env,
    checkpoint_saving,
    training_interrupts,
    cpu_training_precision,
    save_dir_errors,
    distributed_resume,
    divergence_message,
    alignment_needs_attention,
    interactive_input,
    patient_beam,
    plateau_schedule_resume,
    resume_other_options,
]

__all__ = ["FIXES", "GLOBAL_FIXES_ENV", "apply_all"]


def apply_all() -> None:
    for fix in FIXES:
        if fix.SCOPE == "ours" or global_fixes_enabled():
            fix.apply()

"""Our models only: beam search does not stop before its best hypothesis is finished.

Upstream: no fairseq issue (fairseq's rule, documented in ``SequenceGenerator``). Written against fairseq-fixed
0.12.3.1 (``SequenceGenerator.finalize_hypos``, ``FairseqTask.build_generator``). Scope: plain beam search over
ensembles of this package's models; any other model, sampling and diverse beam search keep fairseq's rule.

fairseq's SequenceGenerator ends a sentence as soon as ``beam_size`` hypotheses have ended in ``</s>``.
A confident model breaks that rule of thumb: while the best beam is still going, its own prefix + ``</s>``
keeps ranking among the top candidates (every other beam is far behind), so after ``beam_size`` steps near
the end the sentence is declared finished with only truncated hypotheses. On the toy ``reverse`` rule a
concat-attention model scored 95.0 BLEU with beam 5 against 99.9 greedy, every loss a missing last word.

For plain beam search over ``GRUAttnModel`` ensembles only, finishing a sentence also needs its best finished hypothesis
to score at least as well as the best unfinished beam would if it ended now (the test Hugging Face's beam search
uses). The finished list keeps the ``beam_size`` best hypotheses, not the first ones.

How: the rule is a generator class, :class:`PatientSequenceGenerator` (and ``...WithAlignment`` for
``--print-alignment``), a subclass of fairseq's whose ``finalize_hypos`` applies it. This package's task
(``toy_translation``) returns it from its ``build_generator``, fairseq's extension point for that (as fairseq's own
``examples/fast_noisy_channel`` does). fairseq's translation task has no such hook, so this fix wraps
``FairseqTask.build_generator`` to choose the same class when every model is ours and the caller chose none.
``finalize_hypos`` is a fairseq internal: the class is used only on the fairseq it was written for, with the
parameters it overrides (checked once; otherwise one warning line and fairseq's own generator). A
``SequenceGenerator`` built by hand stays fairseq's; a scripted patient generator runs fairseq's rule
(``torch.jit.script`` compiles fairseq's ``finalize_hypos``: this one is Python).
"""
import copy
import math
from typing import Optional

import torch
from fairseq.sequence_generator import SequenceGenerator, SequenceGeneratorWithAlignment

from .patching import FAIRSEQ_VERSION, all_ours, fairseq_version, signature_mismatch, skip, wrap_once

SCOPE = "ours"


def _patient_applies(generator) -> bool:
    """Plain beam search over this package's models. Sampling and diverse beam search keep fairseq's rule: their
    beams die when they end (they are not refilled from 2 x beam candidates), so waiting could leave none."""
    from fairseq.search import BeamSearch

    return type(generator.search) is BeamSearch and all_ours(getattr(generator.model, "models", []))


def _finished_hypothesis(row_tokens, row_attn, row_cumulative, score):
    positional = row_cumulative.clone()  # (step + 1,)
    positional[1:] = row_cumulative[1:] - row_cumulative[:-1]  # cumulative -> per-token scores
    return {"tokens": row_tokens, "score": score, "attention": row_attn if row_attn is not None else torch.empty(0),
            "alignment": torch.empty(0), "positional_scores": positional}


class PatientBeam:
    """The patient rule as a ``finalize_hypos`` override, mixed into fairseq's generators below."""

    def finalize_hypos(self, step, bbsz_idx, eos_scores, tokens, scores, finalized, finished, beam_size, attn,
                       src_lengths, max_len):
        if not _patient_applies(self):
            return super().finalize_hypos(step, bbsz_idx, eos_scores, tokens, scores, finalized, finished, beam_size,
                                          attn, src_lengths, max_len)
        hypo_tokens = tokens.index_select(0, bbsz_idx)[:, 1 : step + 2].clone()  # (N, step + 1), no leading eos
        hypo_tokens[:, step] = self.eos
        hypo_attn = attn.index_select(0, bbsz_idx)[:, :, 1 : step + 2] if attn is not None else None  # (N, S, step+1)
        cumulative = scores.index_select(0, bbsz_idx)[:, : step + 1].clone()  # (N, step + 1)
        cumulative[:, step] = eos_scores
        length_norm = (step + 1) ** self.len_penalty if self.normalize_scores else 1.0
        final_scores = eos_scores / length_norm  # (N,)

        unfinished = [sentence for sentence, done in enumerate(finished) if not done]  # batch row -> sentence id
        rows = torch.div(bbsz_idx, beam_size, rounding_mode="trunc").tolist()  # (N,) rows of the current batch
        touched, ended_now = {}, {}
        for i, row in enumerate(rows):
            score = final_scores[i]
            if self.match_source_len and step > src_lengths[row]:
                score = torch.tensor(-math.inf).to(score)
            hypotheses = finalized[unfinished[row]]
            hypotheses.append(_finished_hypothesis(hypo_tokens[i], None if hypo_attn is None else hypo_attn[i],
                                                   cumulative[i], score))
            hypotheses.sort(key=lambda hypothesis: float(hypothesis["score"]), reverse=True)
            del hypotheses[beam_size:]  # keep the best beam_size, not the first
            touched[unfinished[row]] = row
            ended_now[row] = ended_now.get(row, 0) + 1

        newly_finished = []
        for sentence, row in touched.items():
            hypotheses = finalized[sentence]
            # all of a sentence's top candidates ending at once leaves fairseq no beam to go on with: finish it
            if step < max_len and ended_now[row] < beam_size:
                if len(hypotheses) < beam_size:
                    continue
                # an unfinished beam's cumulative score can only fall: ending now is its best case
                best_unfinished = scores[row * beam_size : (row + 1) * beam_size, step - 1].max() if step > 0 else 0.0
                if float(hypotheses[0]["score"]) < float(best_unfinished) / length_norm:
                    continue
            finished[sentence] = True
            newly_finished.append(row)
        return newly_finished

    def __prepare_scriptable__(self):
        """``torch.jit.script`` compiles fairseq's generator: this override is Python only."""
        plain = copy.copy(self)
        plain.__class__ = next(base for base in type(self).__mro__ if base.__module__ == SequenceGenerator.__module__)
        return plain


class PatientSequenceGenerator(PatientBeam, SequenceGenerator):
    """fairseq's SequenceGenerator with the patient stopping rule for this package's models."""


class PatientSequenceGeneratorWithAlignment(PatientBeam, SequenceGeneratorWithAlignment):
    """fairseq's SequenceGeneratorWithAlignment (``--print-alignment``) with the patient stopping rule."""


_usable = []  # [bool] once checked


def usable() -> bool:
    """Whether this fairseq is the one the override was written for (checked once, said once)."""
    if not _usable:
        target = "SequenceGenerator.finalize_hypos"
        version = fairseq_version()
        problem = (f"written for fairseq {FAIRSEQ_VERSION}, this is fairseq {version}" if version != FAIRSEQ_VERSION
                   else signature_mismatch(SequenceGenerator.finalize_hypos, PatientBeam.finalize_hypos))
        if problem is not None:
            skip(__name__, target, problem)
        _usable.append(problem is None)
    return _usable[0]


def patient_generator_class(models, args) -> Optional[type]:
    """The generator class for ``models`` with ``args`` (generation options): the patient one over this package's
    models, None (fairseq's choice) otherwise."""
    if getattr(args, "score_reference", False) or not all_ours(models) or not usable():
        return None
    return PatientSequenceGeneratorWithAlignment if getattr(args, "print_alignment", None) else PatientSequenceGenerator


def build_patient_generator(build_generator, models, args, seq_gen_cls=None, extra_gen_cls_kwargs=None,
                            prefix_allowed_tokens_fn=None):
    """``FairseqTask.build_generator`` (passed as ``build_generator``, bound to its task) with the patient class
    where ``patient_generator_class`` chooses it and the caller chose no class of its own."""
    if seq_gen_cls is None:
        seq_gen_cls = patient_generator_class(models, args)
        if seq_gen_cls is PatientSequenceGeneratorWithAlignment:  # what fairseq adds for its own alignment class
            extra_gen_cls_kwargs = {**(extra_gen_cls_kwargs or {}), "print_alignment": args.print_alignment}
    return build_generator(models, args, seq_gen_cls=seq_gen_cls, extra_gen_cls_kwargs=extra_gen_cls_kwargs,
                           prefix_allowed_tokens_fn=prefix_allowed_tokens_fn)


def patient_for_ours(original):
    def build_generator(self, models, args, seq_gen_cls=None, extra_gen_cls_kwargs=None,
                        prefix_allowed_tokens_fn=None):
        return build_patient_generator(lambda *a, **k: original(self, *a, **k), models, args, seq_gen_cls,
                                       extra_gen_cls_kwargs, prefix_allowed_tokens_fn)

    return build_generator


def apply() -> None:
    from fairseq.tasks import FairseqTask

    wrap_once(FairseqTask, "build_generator", patient_for_ours, fix=__name__)

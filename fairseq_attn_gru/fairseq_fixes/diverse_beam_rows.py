"""Global fix: ``--diverse-beam-groups`` works past the first batch.

Upstream: no fairseq issue found; the code is the same in fairseq 0.12.2 and on main. Written against
fairseq-fixed 0.12.3.1 (``search.DiverseBeamSearch.step``). Scope: every model (the search does not know the model).

SequenceGenerator hands the search the dataset ids of the batch's sentences (``original_batch_idxs``) and
DiverseBeamSearch uses them as row numbers into its per-batch ``group_overlap`` table: a batch whose ids are not
0..bsz-1 fails with an IndexError, or, where the ids happen to fit, reads another sentence's row. We translate
ids into row numbers of the batch as it was at step 0.
"""
from .patching import wrap_once

SCOPE = "global"


def ids_to_rows(original):
    def step(self, step, lprobs, scores, prev_output_tokens=None, original_batch_idxs=None):
        if original_batch_idxs is not None:
            if step == 0:
                self._first_step_ids = original_batch_idxs.clone()  # (bsz,)
            rows = original_batch_idxs.unsqueeze(1).eq(self._first_step_ids.unsqueeze(0))  # (bsz_now, bsz)
            original_batch_idxs = rows.long().argmax(dim=1)  # (bsz_now,) row numbers into group_overlap
        return original(self, step, lprobs, scores, prev_output_tokens, original_batch_idxs)

    return step


def apply() -> None:
    from fairseq.search import DiverseBeamSearch

    wrap_once(DiverseBeamSearch, "step", ids_to_rows, fix=__name__)

"""Checkpoint loading on PyTorch >= 2.6, where ``torch.load`` defaults to ``weights_only=True``.

fairseq checkpoints hold, besides tensors and plain containers, an ``argparse.Namespace`` (the
legacy ``args`` entry) and, when trained with ``--eval-bleu``, numpy int64/float64 arrays (the BLEU
n-gram counts kept in the metrics' state). We allow exactly those through
``torch.serialization.add_safe_globals``: an ndarray rebuilt from these globals can only hold plain
numbers (object arrays need globals that stay refused). Everything else stays refused, so a checkpoint
carrying any other object fails to load instead of running code.
"""
import argparse

import numpy as np
import torch

_numpy_core = getattr(np, "_core", None) or np.core  # numpy 2.x / 1.x

#: the only non-tensor classes found in fairseq-written checkpoints (see tests/test_checkpoints.py)
CHECKPOINT_SAFE_GLOBALS = [
    argparse.Namespace,
    _numpy_core.multiarray._reconstruct,
    np.ndarray,
    np.dtype,
    type(np.dtype(np.int64)),
    type(np.dtype(np.float64)),
]


def register_checkpoint_safe_globals() -> None:
    add_safe_globals = getattr(torch.serialization, "add_safe_globals", None)
    if add_safe_globals is not None:  # torch < 2.4 loads everything anyway
        add_safe_globals(CHECKPOINT_SAFE_GLOBALS)


def keep_last_partial_batch() -> None:
    """Stop fairseq from silently dropping sentences.

    fairseq-fixed (like upstream main) drops the last batch when its size is not a multiple of
    ``--required-batch-size-multiple`` (default 8): fairseq-generate then skips up to 7 test
    sentences and BLEU is computed on fewer lines than the reference. We keep that batch.
    """
    from fairseq.data import data_utils

    original = data_utils.batch_by_size
    if getattr(original, "keeps_last_partial_batch", False):
        return

    def batch_by_size(indices, *args, **kwargs):
        import numpy as np

        indices = np.fromiter(indices, dtype=np.int64, count=-1) if not isinstance(indices, np.ndarray) else indices
        batches = original(indices, *args, **kwargs)
        covered = sum(len(batch) for batch in batches)
        if kwargs.get("fixed_shapes") is None and covered < len(indices):
            batches = list(batches) + [indices[covered:]]
        return batches

    batch_by_size.keeps_last_partial_batch = True
    data_utils.batch_by_size = batch_by_size


def fix_diverse_beam_search_batches() -> None:
    """Make ``--diverse-beam-groups`` work past the first batch.

    fairseq-fixed's SequenceGenerator hands the search the dataset ids of the sentences
    (``sample["id"]``), and DiverseBeamSearch uses them as row numbers into its per-batch
    ``group_overlap`` table: any batch whose ids are not 0..bsz-1 fails with an IndexError.
    We translate ids into row numbers of the batch as it was at step 0.
    """
    from fairseq.search import DiverseBeamSearch

    original_step = DiverseBeamSearch.step
    if getattr(original_step, "maps_ids_to_rows", False):
        return

    def step(self, step, lprobs, scores, prev_output_tokens=None, original_batch_idxs=None):
        if original_batch_idxs is not None:
            if step == 0:
                self._first_step_ids = original_batch_idxs.clone()  # (bsz,)
            rows = original_batch_idxs.unsqueeze(1).eq(self._first_step_ids.unsqueeze(0))  # (bsz_now, bsz)
            original_batch_idxs = rows.long().argmax(dim=1)  # (bsz_now,) row numbers into group_overlap
        return original_step(self, step, lprobs, scores, prev_output_tokens, original_batch_idxs)

    step.maps_ids_to_rows = True
    DiverseBeamSearch.step = step

"""Global fix: fairseq no longer drops the last batch of a split, so no sentence goes missing.

Upstream: fairseq #5036 (open; also #5351). Written against fairseq-fixed 0.12.3.1 (``data_utils.batch_by_size``,
as on fairseq main). Scope: every model (batches are made before any model is known).

fairseq drops the last batch when its size is not a multiple of ``--required-batch-size-multiple`` (default 8):
fairseq-generate then skips up to 7 test sentences and BLEU is computed on fewer lines than the reference, and
training never sees those sentences. We keep that batch. Its visible effect on any model: one more batch per
epoch where a split's size left a partial one (fairseq's own ``lstm`` on 20 sentences: 3 updates, not 2).
"""
import numpy as np

from .patching import wrap_once

SCOPE = "global"


def keep_last_batch(original):
    def batch_by_size(indices, *args, **kwargs):
        if not isinstance(indices, np.ndarray):
            indices = np.fromiter(indices, dtype=np.int64, count=-1)
        batches = original(indices, *args, **kwargs)
        covered = sum(len(batch) for batch in batches)
        if kwargs.get("fixed_shapes") is None and covered < len(indices):
            batches = list(batches) + [indices[covered:]]
        return batches

    return batch_by_size


def apply() -> None:
    from fairseq.data import data_utils

    wrap_once(data_utils, "batch_by_size", keep_last_batch, fix=__name__)

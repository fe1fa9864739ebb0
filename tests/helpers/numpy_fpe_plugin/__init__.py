"""A --user-dir plugin: this package's models plus a criterion whose numpy code raises FloatingPointError.

``--criterion numpy_fpe_cross_entropy`` computes fairseq's cross-entropy, then a statistic with numpy under
``np.errstate(all="raise")`` that divides by zero: unrelated to the model's loss, it must keep its traceback.
"""
import numpy as np
from fairseq.criterions import register_criterion
from fairseq.criterions.cross_entropy import CrossEntropyCriterion

import fairseq_attn_gru  # noqa: F401  (the model and the task)


@register_criterion("numpy_fpe_cross_entropy")
class NumpyFPECrossEntropy(CrossEntropyCriterion):
    def forward(self, model, sample, reduce=True):
        result = super().forward(model, sample, reduce)
        with np.errstate(all="raise"):
            np.float64(1.0) / np.float64(0.0)  # FloatingPointError: divide by zero encountered
        return result

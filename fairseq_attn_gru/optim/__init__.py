"""Learning-rate schedules registered with fairseq (``--lr-scheduler``)."""
from .inverse_sqrt_plateau import InverseSqrtPlateauSchedule

__all__ = ["InverseSqrtPlateauSchedule"]

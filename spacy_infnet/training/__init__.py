"""Training: the objectives of the two stages, the stage state machine, and the two-stage
schedule that the spaCy component calls (no spaCy import here)."""

from .objectives import energy_nll_loss, infnet_loss
from .schedule import TwoStageSchedule, distilled_score
from .stages import StageTracker, TwoStageSettings

__all__ = [
    "StageTracker",
    "TwoStageSchedule",
    "TwoStageSettings",
    "distilled_score",
    "energy_nll_loss",
    "infnet_loss",
]

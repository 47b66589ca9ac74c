"""Training objectives and the two-stage schedule shared by the spaCy component and recipes."""

from .objectives import energy_nll_loss, infnet_loss
from .stages import StageTracker, TwoStageSettings

__all__ = ["StageTracker", "TwoStageSettings", "energy_nll_loss", "infnet_loss"]

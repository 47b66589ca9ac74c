"""Training objectives and loops shared by the spaCy component and the recipes."""

from .objectives import energy_nll_loss

__all__ = ["energy_nll_loss"]

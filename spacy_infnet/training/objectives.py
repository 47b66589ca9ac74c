"""Training objectives.

Stage 1 (Tu & Gimpel 2019, §2): the energy Θ is trained by conditional log-likelihood,
minimising  −log p_Θ(y* | x) = log Z_Θ(x) − score_Θ(x, y*),  with log Z computed by the forward
algorithm.  Stage 2 (inference-network distillation, §4) arrives with the inference networks.
"""

from __future__ import annotations

import torch

from ..core.encoding import EncodedBatch
from ..core.energy import BLSTMCRFEnergy


def energy_nll_loss(
    energy: BLSTMCRFEnergy, batch: EncodedBatch, tags: torch.Tensor
) -> torch.Tensor:
    """Mean negative conditional log-likelihood over the sentences of ``batch``.

    Args:
        energy: the energy network (in train mode for dropout).
        batch: encoded inputs, mask [B, T].
        tags: [B, T] long gold label indices (padding ignored).

    Returns:
        A scalar tensor (nats per sentence).
    """
    nll = energy.potentials(batch).nll(tags)
    return nll.sum() / max(int(batch.mask.any(dim=1).sum()), 1)

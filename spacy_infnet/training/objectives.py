"""Training objectives.

Stage 1 (Tu & Gimpel 2019, §2): the energy Θ is trained by conditional log-likelihood,
minimising  −log p_Θ(y* | x) = log Z_Θ(x) − score_Θ(x, y*),  with log Z computed by the forward
algorithm.

Stage 2 (§4): with Θ frozen, the inference network Ψ minimises

    E_Θ(x, A_Ψ(x)) + λ · ℓ_token(y*, A_Ψ(x)),

ℓ_token being the token cross entropy; a local baseline minimises ℓ_token alone.
"""

from __future__ import annotations

import torch

from ..core.encoding import EncodedBatch
from ..core.energy import BLSTMCRFEnergy, Potentials
from ..core.infnets import InferenceNetwork, token_cross_entropy


def _n_sentences(mask: torch.Tensor) -> int:
    return max(int(mask.any(dim=1).sum()), 1)


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
    return nll.sum() / _n_sentences(batch.mask)


def infnet_loss(
    infnet: InferenceNetwork,
    batch: EncodedBatch,
    tags: torch.Tensor,
    potentials: Potentials | None,
    token_weight: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Stage-2 loss, averaged over sentences.

    Args:
        infnet: Ψ (in train mode for dropout).
        batch: encoded inputs, mask [B, T].
        tags: [B, T] long gold labels (padding ignored).
        potentials: the frozen energy's potentials of ``batch`` (no gradient needed); None
            trains a local baseline (ℓ_token only).
        token_weight: λ.  With ``potentials`` None the loss is ℓ_token whatever λ is.

    Returns:
        (scalar loss, {"energy": mean E_Θ(x, A_Ψ(x)), "token": mean ℓ_token}); energy is NaN
        for a local baseline.
    """
    logits = infnet(batch)
    n = _n_sentences(batch.mask)
    token = token_cross_entropy(logits, tags, batch.mask).sum() / n
    if potentials is None:
        return token, {"energy": float("nan"), "token": float(token.detach())}
    energy = potentials.energy(infnet.relaxed(logits, batch.mask)).sum() / n
    loss = energy + token_weight * token if token_weight else energy
    return loss, {"energy": float(energy.detach()), "token": float(token.detach())}

"""Decoding with a trained inference network (Tu & Gimpel 2019, §4).

ŷ_t = argmax_i A_Ψ(x)_{t,i}: one forward pass of Ψ and a per-position argmax (the paper's
"discretized output").  The energy's feature network is *not* run unless energies are
requested (``report_energy=True``, as benchmarks do): the speed gain over Viterbi is the point.
With energies, ``Decoded.energy`` is E_Θ(x, ŷ) and ``extra["relaxed_energy"]`` is
E_Θ(x, A_Ψ(x)), the energy of the relaxed output that Ψ was trained to minimise.
"""

from __future__ import annotations

import torch

from ..encoding import EncodedBatch
from ..energy import BLSTMCRFEnergy
from ..infnets import InferenceNetwork
from .base import Decoded, Decoder


def require_infnet(decoder: Decoder, infnet: InferenceNetwork | None) -> InferenceNetwork:
    """Return ``infnet``; raise ValueError naming ``decoder`` when it is None."""
    if infnet is None:
        raise ValueError(
            f"decoder {decoder.name!r} needs a trained inference network, and this pipeline has "
            "none: add an [components.<name>.infnet] block to the config and train it (stage 2)"
        )
    return infnet


class InferenceNetworkDecoder(Decoder):
    """Argmax of the inference network's output.

    Args:
        report_energy: also compute E_Θ(x, ŷ) and E_Θ(x, A_Ψ(x)) (runs the energy's feature
            network; off for fast prediction).
    """

    name = "infnet"
    needs_infnet = True

    def __init__(self, report_energy: bool = False) -> None:
        self.report_energy = report_energy
        self.uses_energy = report_energy

    @torch.no_grad()
    def decode(
        self,
        energy: BLSTMCRFEnergy,
        batch: EncodedBatch,
        infnet: InferenceNetwork | None = None,
    ) -> Decoded:
        net = require_infnet(self, infnet)
        logits = net(batch)
        tags = net.discretize(logits, batch.mask)
        if not self.report_energy:
            return Decoded(tags=tags, energy=None)
        potentials = energy.potentials(batch)
        relaxed = potentials.energy(net.relaxed(logits, batch.mask))
        return Decoded(
            tags=tags, energy=potentials.tag_energy(tags), extra={"relaxed_energy": relaxed}
        )

    def config(self) -> dict:
        return {"name": self.name, "report_energy": self.report_energy}

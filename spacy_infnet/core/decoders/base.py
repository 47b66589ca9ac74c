"""The one decoder interface shared by every inference method of Tu & Gimpel (2019).

A decoder maps a trained energy E_Θ and a batch x to a label sequence per sentence,
ŷ ≈ argmin_y E_Θ(x, y) (§1): exactly (Viterbi, §2), by gradient descent on the relaxed output
(§3), with an inference network (§4), an instance-tailored inference network (§4.2.1), or
gradient descent warm-started from an inference network (§4.2.2).  Every decoder reports the
energy of its discrete output, so methods are compared on accuracy, speed and search error
E(ŷ_method) − E(ŷ_viterbi).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch

from ..encoding import EncodedBatch
from ..energy import BLSTMCRFEnergy
from ..infnets import InferenceNetwork


@dataclass
class Decoded:
    """Output of a decoder.

    Attributes:
        tags: [B, T] long, predicted label indices (0 on padding).
        energy: [B] float, E_Θ(x, ŷ) of the discrete output, or None when the decoder was
            asked not to run the energy (an inference network at prediction time).
        extra: method-specific tensors (e.g. "relaxed_energy" [B], the energy of A_Ψ(x)).
    """

    tags: torch.Tensor
    energy: torch.Tensor | None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)


class Decoder(ABC):
    """Base class: ``decode(energy, batch, infnet=None) -> Decoded``.

    Decoders never modify the parameters of the energy or of the inference network.
    """

    #: short name used by the CLI and benchmarks ("viterbi", "gd", "infnet", ...).
    name: str = "decoder"
    #: whether :meth:`decode` needs a trained inference network.
    needs_infnet: bool = False
    #: whether :meth:`decode` runs the energy's feature network (callers may then skip
    #: encoding inputs only the energy reads, such as characters).
    uses_energy: bool = True

    @abstractmethod
    def decode(
        self,
        energy: BLSTMCRFEnergy,
        batch: EncodedBatch,
        infnet: InferenceNetwork | None = None,
    ) -> Decoded:
        """Decode ``batch`` under ``energy``; returns :class:`Decoded`.

        Raises:
            ValueError: the decoder needs an inference network and ``infnet`` is None.
        """

    def config(self) -> dict:
        """JSON-serialisable settings (for model cards and benchmark output)."""
        return {"name": self.name}

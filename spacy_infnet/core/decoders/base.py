"""The one decoder interface shared by every inference method of Tu & Gimpel (2019).

A decoder maps a trained model (the energy E_Θ and, where the method needs one, the inference
network A_Ψ: :class:`~spacy_infnet.core.model.InfnetModel`) and a batch x to a label sequence
per sentence, ŷ ≈ argmin_y E_Θ(x, y) (§1): exactly (Viterbi, §2), by gradient descent on the
relaxed output (§3), with an inference network (§4), an instance-tailored inference network
(§4.2.1), or gradient descent warm-started from an inference network (§4.2.2).  Every decoder
can report the energy of its discrete output, so methods are compared on accuracy, speed and
search error E(ŷ_method) − E(ŷ_viterbi) (:mod:`spacy_infnet.core.search_error`).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Protocol

import torch

from ..encoding import EncodedBatch
from ..energy import BLSTMCRFEnergy, Potentials
from ..infnets import InferenceNetwork


class DecodingModel(Protocol):
    """What a decoder reads: the trained energy and, for the methods that need one, the
    inference network.  :class:`~spacy_infnet.core.model.InfnetModel` is one."""

    energy: BLSTMCRFEnergy
    infnet: InferenceNetwork | None


@dataclass
class Decoded:
    """Output of a decoder.

    Attributes:
        tags: [B, T] long, predicted label indices (0 on padding).
        energy: [B] float, E_Θ(x, ŷ) of the discrete output (nats), or None when the decoder
            was asked not to run the energy (an inference network at prediction time).
        extra: method-specific tensors (e.g. "relaxed_energy" [B], the energy of A_Ψ(x);
            Viterbi with k > 1: "kbest_tags" [B, k, T] and "kbest_energies" [B, k]).
        potentials: the energy's potentials of the whole batch, when the decoder computed them
            (Viterbi), so that marginals need no second pass of the feature network.
        logits: [B, T, L] the inference network's output, when the decoder ran it.
    """

    tags: torch.Tensor
    energy: torch.Tensor | None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    potentials: Potentials | None = None
    logits: torch.Tensor | None = None


class Decoder(ABC):
    """Base class: ``decode(model, batch) -> Decoded``.

    Decoders read ``model.energy`` (and ``model.infnet``) and never modify their parameters.
    The settings of a decoder are its constructor's arguments; :meth:`config` lists them.
    """

    #: short name used by the CLI and benchmarks ("viterbi", "gd", "infnet", ...).
    name: str = "decoder"
    #: whether :meth:`decode` needs a trained inference network.
    needs_infnet: bool = False
    #: whether :meth:`decode` runs the energy's feature network (callers may then skip
    #: encoding inputs only the energy reads, such as characters).
    uses_energy: bool = True

    @abstractmethod
    def decode(self, model: DecodingModel, batch: EncodedBatch) -> Decoded:
        """Decode ``batch`` under ``model.energy``; returns :class:`Decoded`.

        Raises:
            ValueError: the decoder needs an inference network and ``model`` has none.
        """

    def config(self) -> dict:
        """JSON-serialisable settings: ``{"name": ..., <constructor argument>: value, ...}``
        (for model cards and benchmark output)."""
        settings = inspect.signature(type(self)).parameters.values()
        names = [p.name for p in settings if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        return {"name": self.name, **{name: getattr(self, name) for name in names}}


def require_infnet(decoder: Decoder, model: DecodingModel) -> InferenceNetwork:
    """``model.infnet``; raise ValueError naming ``decoder`` when there is none."""
    if model.infnet is None:
        raise ValueError(
            f"decoder {decoder.name!r} needs a trained inference network, and this pipeline has "
            "none: add an [components.<name>.infnet] block to the config and train it (stage 2)"
        )
    return model.infnet

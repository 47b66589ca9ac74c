"""Decoding with a trained inference network (Tu & Gimpel 2019, §4).

ŷ_t = argmax_i A_Ψ(x)_{t,i}: one forward pass of Ψ and a per-position argmax (the paper's
"discretized output").  With ``rounding="constrained"`` the output is instead the sequence that
the tag scheme allows (BIOES: no I-X after O, ...) with the highest Σ_t log A_Ψ(x)_{t,ŷ_t}: a
Viterbi pass over Ψ's log-probabilities with only the energy's hard constraints as transitions
(O(T·L²), no energy potentials), so a network whose per-position argmax breaks the scheme
still gives well-formed spans.  Where the argmax is well formed the two agree (no sequence
can beat the per-position maxima), so the Viterbi pass runs only on the sentences whose argmax
breaks the scheme.

The energy's feature network is *not* run unless energies are requested
(``report_energy=True``, as benchmarks do): the speed gain over Viterbi is the point.
With energies, ``Decoded.energy`` is E_Θ(x, ŷ) and ``extra["relaxed_energy"]`` is
E_Θ(x, A_Ψ(x)), the energy of the relaxed output that Ψ was trained to minimise.
"""

from __future__ import annotations

import torch

from ..crf import sequence_score, viterbi
from ..encoding import EncodedBatch
from ..energy import BLSTMCRFEnergy
from ..infnets import InferenceNetwork
from .base import Decoded, Decoder, DecodingModel, require_infnet

ROUNDINGS = ("argmax", "constrained")
#: Where Ψ runs: torch, or onnxruntime on an exported graph (``model.onnx_runner``).
BACKENDS = ("torch", "onnx")


def breaks_scheme(energy: BLSTMCRFEnergy, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B] bool: whether each row of ``tags`` [B, T] (``mask`` [B, T]) uses a label bigram,
    first or last label that the energy's tag scheme forbids (never, with scheme "none")."""
    trans, start, end = energy.transition_penalty, energy.start_penalty, energy.end_penalty
    # the penalties the path pays: 0 where the scheme allows it, < 0 where it breaks
    zeros = torch.zeros((*tags.shape, trans.shape[0]), device=tags.device)
    return sequence_score(zeros, trans, tags, mask, start, end).lt(0)


def constrained_rounding(
    energy: BLSTMCRFEnergy, logits: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """The scheme-valid tags [B, T] with the highest summed log-probability under ``logits``
    [B, T, L]; the energy's constraint penalties (−1e4, 0 where allowed) are the only
    transition scores.  With no constraints (scheme "none") this is the per-position argmax.

    The per-position argmax is kept wherever it is allowed (it is then the best sequence); the
    Viterbi pass runs on the other rows only.  Padded positions get tag 0.
    """
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    trans, start, end = energy.transition_penalty, energy.start_penalty, energy.end_penalty
    tags = log_probs.argmax(dim=-1).masked_fill(~mask, 0)
    rows = breaks_scheme(energy, tags, mask).nonzero().squeeze(1)
    if len(rows):
        T = int(mask[rows].sum(dim=1).max())
        _, fixed = viterbi(log_probs[rows, :T], trans, mask[rows, :T], start, end)
        tags[rows, :T] = fixed
    return tags


def round_logits(
    energy: BLSTMCRFEnergy, logits: torch.Tensor, mask: torch.Tensor, rounding: str = "argmax"
) -> torch.Tensor:
    """Tags [B, T] (0 at padding) from Ψ's ``logits`` [B, T, L]: the per-position argmax, or
    with ``rounding = "constrained"`` :func:`constrained_rounding` under ``energy``'s scheme.

    Raises:
        ValueError: an unknown ``rounding``.
    """
    if rounding == "constrained":
        return constrained_rounding(energy, logits, mask)
    if rounding != "argmax":
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    return InferenceNetwork.discretize(logits, mask)


def infnet_logits(model: DecodingModel, batch: EncodedBatch, backend: str) -> torch.Tensor:
    """Ψ's logits [B, T, L] of ``batch`` on ``backend``: "torch" (``model.infnet``) or "onnx"
    (``model.onnx_runner``, :mod:`spacy_infnet.serving.onnx`), on the batch's device.

    Raises:
        ValueError: backend "onnx" on a model without an exported network.
    """
    if backend != "onnx":
        return model.infnet(batch)
    runner = getattr(model, "onnx_runner", None)
    if runner is None:
        raise ValueError(
            "backend 'onnx': this model has no exported inference network; call "
            "spacy_infnet.serving.attach_onnx(model) (a spaCy pipeline does it itself)"
        )
    return torch.from_numpy(runner.logits(batch)).to(batch.mask.device)


class InferenceNetworkDecoder(Decoder):
    """Argmax of the inference network's output.

    Args:
        report_energy: also compute E_Θ(x, ŷ) and E_Θ(x, A_Ψ(x)) (runs the energy's feature
            network; off for fast prediction).
        rounding: "argmax" (per position, the paper's) or "constrained" (the best sequence
            the tag scheme allows; see the module docstring).
        backend: "torch", or "onnx": Ψ runs in onnxruntime from its exported graph
            (``model.onnx_runner``, which a spaCy pipeline attaches on first use:
            :mod:`spacy_infnet.serving.onnx`); the tags are the same.  Energies
            (``report_energy``) are always computed in torch.

    Raises:
        ValueError: an unknown ``rounding`` or ``backend``; at decoding, backend "onnx" on a
            model without an exported network.
    """

    name = "infnet"
    needs_infnet = True

    def __init__(
        self, report_energy: bool = False, rounding: str = "argmax", backend: str = "torch"
    ) -> None:
        if rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.report_energy = report_energy
        self.uses_energy = report_energy
        self.rounding = rounding
        self.backend = backend

    @torch.no_grad()
    def decode(self, model: DecodingModel, batch: EncodedBatch) -> Decoded:
        net = require_infnet(self, model)
        logits = infnet_logits(model, batch, self.backend)
        tags = round_logits(model.energy, logits, batch.mask, self.rounding)
        if not self.report_energy:
            return Decoded(tags=tags, energy=None, logits=logits)
        potentials = model.energy.potentials(batch)
        relaxed = potentials.energy(net.relaxed(logits, batch.mask))
        return Decoded(
            tags=tags,
            energy=potentials.tag_energy(tags),
            extra={"relaxed_energy": relaxed},
            potentials=potentials,
            logits=logits,
        )

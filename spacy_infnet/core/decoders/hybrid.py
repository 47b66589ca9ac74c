"""Hybrid decoding: the inference network first, exact Viterbi where it is unsure.

Not in Tu & Gimpel (2019), whose inference networks trail Viterbi by a little on every task
(§5, Tables 1 and 4) while the repairs they study (warm-started GD, instance tailoring, §4.2)
cost more than Viterbi itself on a CPU.  This decoder keeps Ψ's speed on the sentences Ψ is
sure of and pays for Viterbi only on the others:

    ŷ = A_Ψ(x) rounded (argmax, or the best scheme-valid sequence),   c(x) = min_t p_Ψ(ŷ_t | x)

    ŷ ← argmin_y E_Θ(x, y)  (Viterbi)   if ŷ breaks the tag scheme or c(x) < τ

p_Ψ(· | x) is the softmax of Ψ's logits at each position, so c(x) ∈ (0, 1] is the probability
Ψ gives its least certain label.  The energy's feature network runs on the re-decoded
sentences only, as one batch cut to their longest length.  τ = 0 re-decodes only outputs
that break the scheme; τ > 1 re-decodes every sentence (Viterbi's accuracy, more than
Viterbi's cost).  ``Decoded.extra`` holds ``"confidence"`` [B] (c(x)) and ``"redecoded"``
[B] (bool).
"""

from __future__ import annotations

import torch

from ..encoding import EncodedBatch
from .base import Decoded, Decoder, DecodingModel, require_infnet
from .infnet import BACKENDS, ROUNDINGS, breaks_scheme, infnet_logits, round_logits


class HybridDecoder(Decoder):
    """The inference network's output, re-decoded by Viterbi where it breaks the tag scheme
    or its confidence is under ``threshold`` (see the module docstring).

    Args:
        threshold: τ, on c(x) = the smallest per-token probability of Ψ's labels
            (0: re-decode only scheme violations).
        rounding: Ψ's output: "argmax" or "constrained" (as
            :class:`~.infnet.InferenceNetworkDecoder`); with "constrained" no output breaks
            the scheme, so only τ sends sentences to Viterbi.
        backend: where Ψ runs: "torch" or "onnx" (as
            :class:`~.infnet.InferenceNetworkDecoder`); Viterbi always runs in torch.

    Raises:
        ValueError: a negative ``threshold``, an unknown ``rounding`` or ``backend``; at
            decoding, backend "onnx" on a model without an exported network.
    """

    name = "hybrid"
    needs_infnet = True

    def __init__(
        self, threshold: float = 0.9, rounding: str = "argmax", backend: str = "torch"
    ) -> None:
        if threshold < 0:
            raise ValueError(f"threshold must be ≥ 0, got {threshold}")
        if rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.threshold = float(threshold)
        self.rounding = rounding
        self.backend = backend

    @torch.no_grad()
    def decode(self, model: DecodingModel, batch: EncodedBatch) -> Decoded:
        require_infnet(self, model)
        mask = batch.mask
        logits = infnet_logits(model, batch, self.backend)
        tags = round_logits(model.energy, logits, mask, self.rounding)
        probs = torch.softmax(logits.float(), dim=-1).gather(-1, tags.unsqueeze(-1)).squeeze(-1)
        confidence = probs.masked_fill(~mask, 1.0).amin(dim=1)
        redo = breaks_scheme(model.energy, tags, mask) | (confidence < self.threshold)
        rows = redo.nonzero().squeeze(1)
        if len(rows):
            sub = batch.select(rows)
            _, fixed = model.energy.potentials(sub).viterbi()
            T = fixed.shape[1]
            tags[rows, :T] = fixed
            tags[rows, T:] = 0
        extra = {"confidence": confidence, "redecoded": redo}
        return Decoded(tags=tags, energy=None, extra=extra, logits=logits)

"""Exact decoding with the Viterbi algorithm (Tu & Gimpel 2019, §2; O(T·L²) per sentence).

ŷ = argmax_y score(x, y) = argmin_y E_Θ(x, y) over one-hot label sequences, computed by the
max-product recursion in :func:`spacy_infnet.core.crf.viterbi`.  Its energy is the reference
for search error: no other decoder can reach a lower energy.

With ``k > 1`` the decoder also returns the k lowest-energy sequences that the tag scheme
allows (k-best Viterbi, O(k·T·L²): :func:`spacy_infnet.core.kbest.kbest_viterbi`); the first
of them is ŷ.
"""

from __future__ import annotations

import torch

from ..encoding import EncodedBatch
from ..kbest import kbest_viterbi
from .base import Decoded, Decoder, DecodingModel


class ViterbiDecoder(Decoder):
    """Exact argmin of the energy by dynamic programming.

    Args:
        k: how many lowest-energy sequences to return (1: ŷ only).  With k > 1,
            ``Decoded.extra`` holds "kbest_tags" [B, k, T] and "kbest_energies" [B, k]
            (nats, ascending; +inf where a sentence has fewer than k allowed sequences).

    Raises:
        ValueError: ``k < 1``.
    """

    name = "viterbi"

    def __init__(self, k: int = 1) -> None:
        if int(k) != k or k < 1:
            raise ValueError(f"k must be an integer ≥ 1, got {k!r}")
        self.k = int(k)

    @torch.no_grad()
    def decode(self, model: DecodingModel, batch: EncodedBatch) -> Decoded:
        potentials = model.energy.potentials(batch)
        if self.k == 1:
            best_score, tags = potentials.viterbi()
            return Decoded(tags=tags, energy=-best_score, potentials=potentials)
        energy = model.energy
        inf = float("-inf")
        # the scheme's forbidden bigrams, first and last labels are ruled out, not penalised
        scores, paths = kbest_viterbi(
            potentials.emissions,
            potentials.transitions.masked_fill(energy.transition_penalty < 0, inf),
            self.k,
            potentials.mask,
            potentials.start_transitions.masked_fill(energy.start_penalty < 0, inf),
            potentials.end_transitions.masked_fill(energy.end_penalty < 0, inf),
        )
        return Decoded(
            tags=paths[:, 0].clone(),
            energy=-scores[:, 0],
            extra={"kbest_tags": paths, "kbest_energies": -scores},
            potentials=potentials,
        )

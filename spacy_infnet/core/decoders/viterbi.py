"""Exact decoding with the Viterbi algorithm (Tu & Gimpel 2019, §2; O(T·L²) per sentence).

ŷ = argmax_y score(x, y) = argmin_y E_Θ(x, y) over one-hot label sequences, computed by the
max-product recursion in :func:`spacy_infnet.core.crf.viterbi`.  Its energy is the reference
for search error: no other decoder can reach a lower energy.
"""

from __future__ import annotations

import torch

from ..encoding import EncodedBatch
from .base import Decoded, Decoder, DecodingModel


class ViterbiDecoder(Decoder):
    """Exact argmin of the energy by dynamic programming."""

    name = "viterbi"

    @torch.no_grad()
    def decode(self, model: DecodingModel, batch: EncodedBatch) -> Decoded:
        best_score, tags = model.energy.potentials(batch).viterbi()
        return Decoded(tags=tags, energy=-best_score)

"""Predictions with more than one label sequence per sentence: confidence and k-best lists.

:meth:`~spacy_infnet.core.model.InfnetModel.predict` gives label indices only, the fast path.
:func:`predict_details` decodes the same way and adds, on request:

* **token confidence** — p(y_t = ŷ_t | x) per token.  Under a decoder that runs the energy
  (Viterbi, GD) it is the CRF's exact marginal from the forward–backward pass
  (:func:`~spacy_infnet.core.confidence.token_confidence`); under an inference-network decoder
  (infnet, hybrid) it is Ψ's own softmax probability of the label.
* **entity confidence** (NER, ``scheme`` given) — per predicted entity, the probability that
  exactly this labelled segment is in the output: under the CRF exactly, by a constrained
  forward pass (:func:`~spacy_infnet.core.confidence.entity_confidences`); under Ψ, whose
  output distribution factorises over positions, the product of Ψ's probabilities of the
  segment's labels (IOB2: times the probability that the next label does not continue it).
* **k-best** — with ``ViterbiDecoder(k > 1)``, the k lowest-energy sequences the scheme allows
  and their energies (nats).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .confidence import entity_confidences, token_confidence
from .decoders import Decoded, Decoder
from .schemes import tags_to_spans

#: (start token, end token exclusive, entity type, probability)
ScoredEntity = tuple[int, int, str, float]


@dataclass
class Prediction:
    """One sentence's output.

    Attributes:
        tags: label indices, one per token.
        token_confidence: per token, the probability of its label (None: not asked).
        entities: NER only, the predicted entities with their probabilities (None: not asked
            or a tagging task).
        kbest: the k best sequences as (label indices, energy in nats), lowest energy first
            (None: the decoder returns one sequence).
    """

    tags: list[int]
    token_confidence: list[float] | None = None
    entities: list[ScoredEntity] | None = None
    kbest: list[tuple[list[int], float]] | None = None


def predict_details(
    model,
    words: Sequence[Sequence[str]],
    decoder: Decoder,
    confidence: bool = False,
    scheme: str | None = None,
    temperature: float = 1.0,
) -> list[Prediction]:
    """Decode ``words`` with ``decoder`` (as :meth:`InfnetModel.predict`) and add what the
    module docstring lists: confidence when ``confidence`` is set (entity confidence too when
    ``scheme``, "bioes" or "iob2", is given), k-best lists when the decoder returns them.

    Args:
        model: an :class:`~spacy_infnet.core.model.InfnetModel`.
        words: token lists; empty ones give an empty :class:`Prediction`.
        temperature: T > 0 of temperature scaling (Guo et al. 2017): the probabilities are
            those of the potentials (or Ψ's logits) divided by T.  The labels do not change
            (argmax and Viterbi are invariant to it); T > 1 softens over-confident scores.

    Raises:
        ValueError: as the decoder, an unknown ``scheme``, or ``temperature ≤ 0``.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    out = [Prediction([]) for _ in words]
    rows, batch, decoded = model.decode_words(words, decoder)
    if decoded is None:
        return out
    lengths = batch.mask.sum(dim=1).tolist()
    tags = decoded.tags.cpu().tolist()
    for i, row, n in zip(rows, tags, lengths):
        out[i].tags = row[:n]
    if confidence:
        tokens, entities = confidence_of(model, batch, decoded, scheme, temperature)
        for k, i in enumerate(rows):
            out[i].token_confidence = tokens[k][: lengths[k]]
            if entities is not None:
                out[i].entities = entities[k]
    if "kbest_tags" in decoded.extra:
        paths = decoded.extra["kbest_tags"].cpu().tolist()
        energies = decoded.extra["kbest_energies"].cpu().tolist()
        for k, i in enumerate(rows):
            out[i].kbest = [
                (p[: lengths[k]], e) for p, e in zip(paths[k], energies[k]) if e != float("inf")
            ]
    return out


def confidence_of(
    model, batch, decoded: Decoded, scheme: str | None = None, temperature: float = 1.0
) -> tuple[list[list[float]], list[list[ScoredEntity]] | None]:
    """The confidence of a decoder's output ``decoded`` on ``batch`` (see the module
    docstring): per row the probability of each position's label (padding 0), and with
    ``scheme`` the entities with their probabilities (else None), at ``temperature``."""
    tags, mask = decoded.tags, batch.mask
    names = list(model.labels)
    if decoded.logits is not None:  # Ψ's own, factorised probabilities
        probs = torch.softmax(decoded.logits.float() / temperature, dim=-1)
        tokens = probs.gather(-1, tags.unsqueeze(-1)).squeeze(-1).masked_fill(~mask, 0.0)
        entities = (
            None if scheme is None else _factorised_entities(probs, tags, mask, names, scheme)
        )
        return tokens.cpu().tolist(), entities
    potentials = decoded.potentials
    if potentials is None:
        with torch.no_grad():
            potentials = model.energy.potentials(batch)
    t = float(temperature)
    parts = (
        potentials.emissions / t,
        potentials.transitions / t,
        mask,
        potentials.start_transitions / t,
        potentials.end_transitions / t,
    )
    tokens = token_confidence(*parts, tags=tags).cpu().tolist()
    entities = None if scheme is None else entity_confidences(*parts, tags, names, scheme)
    return tokens, entities


def _factorised_entities(
    probs: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor, names: list[str], scheme: str
) -> list[list[ScoredEntity]]:
    """Entities of ``tags`` with their probability under Ψ's factorised output ``probs``."""
    index = {name: k for k, name in enumerate(names)}
    lengths = mask.sum(dim=1).tolist()
    p = probs.cpu()
    out = []
    for b, row in enumerate(tags.cpu().tolist()):
        n = lengths[b]
        spans = tags_to_spans([names[k] for k in row[:n]], scheme)
        scored = []
        for start, end, label in spans:
            value = 1.0
            for t in range(start, end):
                value *= float(p[b, t, row[t]])
            follow = index.get(f"I-{label}")
            if scheme != "bioes" and end < n and follow is not None:
                value *= 1.0 - float(p[b, end, follow])
            scored.append((start, end, label, value))
        out.append(scored)
    return out

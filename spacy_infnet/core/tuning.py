"""Tuning protocols for the iterative decoders (Tu & Gimpel 2019, §3, §6; Table 6).

Gradient descent, instance tailoring and warm-started GD have two knobs, the number of steps N
and the learning rate η.  The paper reports them under two protocols:

* **dev-tuned** (:func:`dev_tuned`): one (N, η) for every test sentence, the one with the best
  dev score;
* **oracle** (:func:`oracle`): for each sentence separately, the (N, η) whose output is most
  accurate on *that sentence's gold labels*.  It uses the test labels, so it is an upper bound
  on what the method can reach, not a result.

Both consume a *sweep*, ``{(N, η): [tags of sentence 0, tags of sentence 1, ...]}``, produced
by :func:`sweep` with each decoder's ``decode_steps`` (one run of max N steps per η).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .decoders import DecodingModel, IterativeDecoder

#: The paper's grids (§6): steps N and learning rates η.
PAPER_STEPS = (5, 10, 20, 30, 40, 50, 100, 500, 1000)
PAPER_LEARNING_RATES = (1e4, 5e3, 1e3, 500, 100, 50, 10, 5, 1)
#: Learning rates for instance-tailored inference networks (fine-tuning Ψ's parameters wants
#: SGD-sized steps, not the paper's output-space grid).
TAILORED_LEARNING_RATES = (1e-4, 5e-4, 1e-3, 5e-3, 1e-2)

Setting = tuple[int, float]
#: {(N, η): per sentence, (tags, energy of the discrete output)}
Sweep = dict[Setting, list[tuple[list[int], float]]]


def sweep(
    decoder: IterativeDecoder,
    model: DecodingModel,
    batches: Iterable,
    steps: Sequence[int],
    learning_rates: Sequence[float],
) -> Sweep:
    """Decode every batch once per η, keeping the output after each N.

    Args:
        decoder: GD, warm-started GD or instance tailoring (``decode_steps``).
        model: the trained energy (and inference network, for decoders that need one).
        batches: :class:`~spacy_infnet.core.encoding.EncodedBatch` objects (re-iterated per η).
        steps, learning_rates: the grids.

    Returns:
        {(N, η): [(tags, energy) per sentence, in batch order]}; tags are lists of label
        indices of each sentence's length.
    """
    batches = list(batches)
    out: Sweep = {(n, lr): [] for lr in learning_rates for n in steps}
    for lr in learning_rates:
        for batch in batches:
            runs = decoder.decode_steps(model, batch, steps=steps, learning_rate=lr)
            lengths = batch.mask.sum(dim=1).tolist()
            for n, decoded in runs.items():
                tags = decoded.tags.tolist()
                energies = decoded.energy.tolist()
                out[(n, lr)].extend((row[:k], e) for row, k, e in zip(tags, lengths, energies))
    return out


def dev_tuned(results: Sweep, score: Callable[[list[list[int]]], float]) -> tuple[Setting, float]:
    """The (N, η) whose outputs score best under ``score`` (e.g. dev accuracy or F1).

    Ties go to fewer steps, then to the smaller learning rate.  Returns ((N, η), score).

    Raises:
        ValueError: ``results`` is empty.
    """
    if not results:
        raise ValueError("dev_tuned needs at least one (N, learning rate) setting")
    scored = {key: score([tags for tags, _ in rows]) for key, rows in results.items()}
    best = max(scored, key=lambda k: (scored[k], -k[0], -k[1]))
    return best, scored[best]


def oracle(
    results: Sweep, gold: Sequence[Sequence[int]]
) -> tuple[list[list[int]], list[float], list[Setting]]:
    """Per sentence, the output of the (N, η) with the most correct tokens (oracle upper bound).

    Ties go to the lower energy, then fewer steps, then the smaller learning rate.

    Returns:
        (tags per sentence, energy per sentence, chosen (N, η) per sentence).

    Raises:
        ValueError: ``results`` is empty or a setting has a different number of sentences
            than ``gold``.
    """
    if not results:
        raise ValueError("oracle needs at least one (N, learning rate) setting")
    for key, rows in results.items():
        if len(rows) != len(gold):
            raise ValueError(f"setting {key} has {len(rows)} sentences, gold has {len(gold)}")
    tags_out, energies, chosen = [], [], []
    for i, g in enumerate(gold):
        g_t = torch.as_tensor(list(g))

        def rank(key, i=i, g_t=g_t):
            tags, e = results[key][i]
            correct = int((torch.as_tensor(tags) == g_t).sum()) if len(g_t) else 0
            return (correct, -e, -key[0], -key[1])

        key = max(results, key=rank)
        tags_out.append(results[key][i][0])
        energies.append(results[key][i][1])
        chosen.append(key)
    return tags_out, energies, chosen

"""Potentials of one benchmark cell: random Gaussian ones, or a trained pipeline's.

See the package docstring (:mod:`benchmarks.viterbi_peers`) for how the sentence lengths are
drawn and which test sentences a pipeline decodes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "MIN_LENGTH",
    "Problem",
    "load_tagger",
    "load_test_sentences",
    "parse_pipeline_data",
    "pipeline_problem",
    "random_problem",
    "sample_lengths",
    "twitter_train_lengths",
]

MIN_LENGTH = 2  # torch-struct needs at least one edge per sentence


@dataclass
class Problem:
    """CRF potentials of one benchmark cell (score = −energy), on the CPU.

    Attributes:
        source: where the potentials come from (``"random"`` or ``"pipeline NAME (DATA test)"``).
        emissions: ``[B, T, L]`` float32.
        transitions: ``[L, L]``; ``transitions[i, j]`` scores ``i -> j``.
        start_transitions, end_transitions: ``[L]``.
        mask: ``[B, T]`` bool, left-aligned, every row at least ``MIN_LENGTH`` long and
            ``T`` equal to the longest row.
    """

    source: str
    emissions: Tensor
    transitions: Tensor
    start_transitions: Tensor
    end_transitions: Tensor
    mask: Tensor

    def __post_init__(self) -> None:
        if self.emissions.dim() != 3:
            raise ValueError(f"emissions must be [B, T, L], got {tuple(self.emissions.shape)}")
        B, T, L = self.emissions.shape
        if self.transitions.shape != (L, L):
            raise ValueError(f"transitions must be [{L}, {L}], got {tuple(self.transitions.shape)}")
        for name in ("start_transitions", "end_transitions"):
            if getattr(self, name).shape != (L,):
                raise ValueError(f"{name} must be [{L}], got {tuple(getattr(self, name).shape)}")
        if self.mask.shape != (B, T):
            raise ValueError(f"mask must be [{B}, {T}], got {tuple(self.mask.shape)}")
        self.mask = self.mask.bool()
        lengths = self.mask.sum(dim=1)
        if B and not torch.equal(self.mask, torch.arange(T)[None, :] < lengths[:, None]):
            raise ValueError("mask must be left-aligned (True for the real tokens, then False)")
        if B and int(lengths.min()) < MIN_LENGTH:
            raise ValueError(
                f"every sentence needs at least {MIN_LENGTH} tokens (torch-struct needs an edge), "
                f"got a length of {int(lengths.min())}"
            )
        if B and int(lengths.max()) != T:
            raise ValueError(f"pad to the longest sentence: T = {T}, longest {int(lengths.max())}")

    @property
    def lengths(self) -> Tensor:
        """``[B]`` long sentence lengths."""
        return self.mask.sum(dim=1)

    @property
    def batch_size(self) -> int:
        return self.emissions.shape[0]

    @property
    def max_length(self) -> int:
        return self.emissions.shape[1]

    @property
    def num_labels(self) -> int:
        return self.emissions.shape[2]


def twitter_train_lengths(min_length: int = MIN_LENGTH) -> list[int]:
    """Lengths (tokens) of the embedded Twitter POS training sentences, those ``≥ min_length``."""
    from spacy_infnet.data import load_dataset

    tokens = load_dataset("twitter_pos")["train"]["tokens"]
    return [len(t) for t in tokens if len(t) >= min_length]


def sample_lengths(pool: Sequence[int], batch_size: int, seed: int) -> Tensor:
    """Draw ``batch_size`` lengths from ``pool`` with replacement (seeded).

    Returns:
        ``[batch_size]`` long tensor.

    Raises:
        ValueError: empty ``pool``.
    """
    if not pool:
        raise ValueError("no sentence lengths to sample from")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(pool), (batch_size,), generator=g)
    return torch.as_tensor(list(pool), dtype=torch.long)[idx]


def random_problem(
    num_labels: int, lengths: Sequence[int] | Tensor, seed: int, source: str = "random"
) -> Problem:
    """Gaussian potentials (standard normal) for sentences of the given lengths (seeded).

    Args:
        num_labels: ``L``.
        lengths: ``[B]`` sentence lengths, each ``≥ 2``; the batch is padded to the longest.
        seed: seed of the generator; padded emissions are random too.

    Returns:
        a :class:`Problem` with ``emissions [B, T, L]``, ``transitions [L, L]``,
        ``start/end_transitions [L]`` and the left-aligned mask.

    Raises:
        ValueError: a length below 2.
    """
    lengths = torch.as_tensor(lengths, dtype=torch.long)
    B, L = len(lengths), int(num_labels)
    T = int(lengths.max()) if B else MIN_LENGTH
    g = torch.Generator().manual_seed(seed)
    return Problem(
        source=source,
        emissions=torch.randn(B, T, L, generator=g),
        transitions=torch.randn(L, L, generator=g),
        start_transitions=torch.randn(L, generator=g),
        end_transitions=torch.randn(L, generator=g),
        mask=torch.arange(T)[None, :] < lengths[:, None],
    )


def parse_pipeline_data(spec: str) -> tuple[str, str | None]:
    """``"NAME[:PATH]"`` → ``(NAME, PATH or None)``, e.g. ``"conll2003:../data/conll2003"``.

    Raises:
        ValueError: an empty NAME.
    """
    name, _, path = spec.partition(":")
    if not name:
        raise ValueError(f"--pipeline-data expects NAME[:PATH], got {spec!r}")
    return name, (path or None)


def load_test_sentences(name: str, path: str | None, min_length: int = MIN_LENGTH) -> list:
    """Token lists of the test split of data set ``name`` with at least ``min_length`` tokens.

    Raises:
        ValueError: unknown data set, or no sentence long enough.
    """
    from spacy_infnet.data import load_dataset

    tokens = load_dataset(name, path)["test"]["tokens"]
    pool = [list(t) for t in tokens if len(t) >= min_length]
    if not pool:
        raise ValueError(f"no test sentence of {name} has {min_length} or more tokens")
    return pool


def load_tagger(directory: str | os.PathLike):
    """The ``infnet_tagger`` component of the spaCy pipeline in ``directory``, in eval mode, on
    the CPU (:func:`spacy_infnet.bench.harness.load_tagger`).

    Raises:
        OSError: ``spacy.load`` cannot read the directory.
        ValueError: the pipeline has no ``infnet_tagger``.
    """
    from spacy_infnet.bench.harness import load_tagger as load_pipeline

    return load_pipeline(directory, "cpu")[1]


def pipeline_problem(component, sentences: Sequence[Sequence[str]], source: str) -> Problem:
    """The potentials of a trained ``infnet_tagger`` on ``sentences`` (each ≥ 2 tokens).

    Args:
        component: the pipeline's ``infnet_tagger`` (see :func:`load_tagger`).
        sentences: ``B`` token lists.
        source: label of the potentials in the output.

    Returns:
        a :class:`Problem` with ``L = len(component.labels)``, float32 on the CPU.
    """
    with torch.no_grad():
        batch = component.encoder.encode([list(s) for s in sentences], chars=True)
        pot = component.energy.potentials(batch)

    def cpu(t: Tensor) -> Tensor:
        return t.detach().to("cpu", torch.float32).contiguous()

    mask = pot.mask.detach().cpu().bool()
    T = int(mask.sum(dim=1).max())
    return Problem(
        source=source,
        emissions=cpu(pot.emissions[:, :T]),
        transitions=cpu(pot.transitions),
        start_transitions=cpu(pot.start_transitions),
        end_transitions=cpu(pot.end_transitions),
        mask=mask[:, :T].contiguous(),
    )

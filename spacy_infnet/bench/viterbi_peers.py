r"""Our batched Viterbi against pytorch-crf and torch-struct, on identical potentials.

Command::

    python -m spacy_infnet bench-viterbi [--labels 17,25,321,400] [--batch-sizes 1,10,100,1000]
        [--repeats 3] [--threads 1] [--seed 0]
        [--pipeline DIR --pipeline-data NAME[:PATH]]...  [--no-random]
        [--peers pytorch-crf,torch-struct] [--torch-struct-max-gib 2] [--peer-time-budget 120]
        [--output results/bench_viterbi.json] [--no-progress]

What is compared
----------------
Three exact MAP decoders of a linear-chain CRF get the same float32 potentials on the CPU:

* ours: :func:`spacy_infnet.core.crf.viterbi` (batched, one Python step per position);
* pytorch-crf: ``torchcrf.CRF(L, batch_first=True).decode(emissions, mask)`` under
  ``torch.no_grad()``, its list of lists turned into a ``[B, T]`` tensor;
* torch-struct: ``torch_struct.LinearChainCRF(log_potentials, lengths=lengths).argmax`` (max
  semiring, parallel scan over the positions, argmax as edge indicators through autograd),
  folded potentials and indicators converted back to tags.

Every conversion (potentials to a peer's format, its output back to a ``[B, T]`` tag tensor)
is inside the timed function; building the ``CRF`` module and planning torch-struct's chunks
are not.  Each cell (potentials source, ``L`` labels, ``B`` sentences) is timed as one warm-up
run, then ``--repeats`` runs of the whole batch; the median is reported in seconds, with the
speed ratio ``peer seconds / our seconds`` (×5 means ours is five times faster).

Potentials
----------
(a) ``random``: Gaussian emissions ``[B, T, L]``, transitions ``[L, L]``, start and end ``[L]``
    (seeded from ``--seed``, ``L`` and ``B``); the sentence lengths are drawn (seeded from
    ``--seed`` and ``B``, so every ``L`` sees the same lengths) from the Twitter POS training
    set.  Padded positions hold random numbers too, which every decoder must ignore.
(b) ``pipeline``: the potentials of a trained ``infnet_tagger`` (``--pipeline DIR``, its own
    ``L``) on the first ``B`` test sentences (cycled if the split is shorter) of the data set
    named by the matching ``--pipeline-data NAME[:PATH]`` (e.g. ``conll2003:../shared/data/
    conll2003``).  NER potentials carry the scheme's ``-1e4`` constraint penalties.

Only sentences of at least 2 tokens are used: torch-struct's chain needs at least one edge.
Each batch is padded to its longest sentence.

Conventions mapping
-------------------
Ours: ``score(y) = s[y_0] + Σ_t U[t, y_t] + Σ_{t≥1} W[y_{t-1}, y_t] + e[y_last]`` with
``W[i, j]`` the score of ``i -> j``.

pytorch-crf uses the same parametrisation (its ``transitions[i, j]`` scores ``i -> j``, plus
``start_transitions`` and ``end_transitions``), so the three tensors are copied as they are
(checked in the tests: differences of its log-likelihoods equal differences of our
``sequence_score``).  It needs ``mask[:, 0]`` all true, hence the length rule above.

torch-struct scores a path by one potential per edge ``n = 0 .. N-2`` (between positions ``n``
and ``n + 1``), ``log_potentials[b, n, c_next, c_prev]``; ours are folded in as::

    log_potentials[b, n, c, p] = W[p, c] + U[b, n+1, c]
                               + [n == 0] (U[b, 0, p] + s[p]) + [n == len_b - 2] e[c]

so each path's summed edge potentials equal our score.  Edges ``n ≥ len_b - 1`` are ignored by
torch-struct (``lengths``), and ``N`` must equal the longest length.  From the argmax edge
indicators: ``y_0`` = the ``c_prev`` of edge 0 and ``y_{n+1}`` = the ``c_next`` of edge ``n``.

Memory and time rules
---------------------
* torch-struct's parallel scan materialises ``[n, bin/2, L, L, L]`` floats in its first step
  (``bin`` = ``N - 1`` rounded up to a power of two), e.g. ~200 GB for ``L = 321`` and
  ``B = 100``.  The batch is therefore sorted by length and cut into chunks whose estimated peak
  memory (:func:`torch_struct_bytes`, measured to be within ~10 % at large ``L``) stays below
  ``--torch-struct-max-gib`` (default 2); the cell's time is the sum over the chunks and the
  output says into how many chunks it was cut.  If one sentence alone is over the cap the peer
  is skipped on that cell ("skipped: over memory cap ...").
* ``--peer-time-budget`` (seconds, default 120) guards each peer's first (warm-up) run of a
  cell: after each chunk the elapsed time is extrapolated by the estimated work done; if the
  run took longer than the budget, or is extrapolated to take more than 1.2 × the budget, the
  peer is stopped and reported "skipped: over time budget (first k of B sentences took s)".
  No extrapolated figure ever enters the table (the estimate is kept in the JSON only).
* A peer that cannot be imported is reported "skipped: not installed (...)", never faked.

Agreement
---------
Per row the peers' paths are compared with ours on the real positions.  A row counts as
*identical* when every peer that ran returned our path, as a *tie* when some path differs but
its score (our ``sequence_score`` in float64) equals ours within ``1e-4`` relative (relative to
``max(|a|, |b|, 1)``); anything else is a disagreement.  The table shows
"identical paths k/B, ties t" (plus "DISAGREE d" when there are any).

Output
------
:func:`main` writes a JSON dict (environment, settings, rows) to ``--output`` and the Markdown
table (:func:`markdown`) next to it with the same stem, prints the Markdown and returns 0, or 1
if any cell disagrees, or 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..core.crf import sequence_score, viterbi
from . import cpu_model

__all__ = [
    "NOT_INSTALLED",
    "PEERS",
    "OursDecoder",
    "PeerSkipped",
    "Problem",
    "PytorchCRFDecoder",
    "TorchStructDecoder",
    "add_arguments",
    "agreement",
    "bench_cell",
    "environment",
    "main",
    "make_decoder",
    "markdown",
    "pipeline_problem",
    "random_problem",
    "run_benchmark",
    "sample_lengths",
    "time_decoder",
    "torch_struct_bytes",
    "torch_struct_chunks",
    "torch_struct_log_potentials",
    "torch_struct_tags",
    "twitter_train_lengths",
]

PEERS = ("pytorch-crf", "torch-struct")
_PEER_MODULES = {"pytorch-crf": "torchcrf", "torch-struct": "torch_struct"}
NOT_INSTALLED = (
    "skipped: not installed (pip install pytorch-crf / torch-struct, or the [dev] extra)"
)
MIN_LENGTH = 2  # torch-struct needs at least one edge per sentence
TIE_RTOL = 1e-4
# A first run extrapolated past this multiple of the budget is "clearly" over it.
_CLEAR_MARGIN = 1.2
# Peak memory of torch-struct's argmax relative to its first scan step (measured on CPU: 1.06 to
# 1.12 for L >= 200), plus the per-sentence [N, L, L] charts, log potentials and gradients.
_SCAN_FACTOR = 1.15
_CHART_FACTOR = 6
_GIB = float(1 << 30)

Progress = Callable[[int, float], None]
"""Called after each chunk of a run with (sentences done, fraction of estimated work done)."""


class PeerSkipped(Exception):
    """A peer cannot run on a cell; ``str(exc)`` is the reason shown in the table."""

    def __init__(self, reason: str, **details) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


# --------------------------------------------------------------------------
# problems (potentials of one cell)
# --------------------------------------------------------------------------
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
    from ..data import load_dataset

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
    from ..data import load_dataset

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
    from .harness import load_tagger as load_pipeline

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


# --------------------------------------------------------------------------
# decoders
# --------------------------------------------------------------------------
def _import_peer(name: str):
    try:
        return importlib.import_module(_PEER_MODULES[name])
    except ImportError as exc:
        raise PeerSkipped(NOT_INSTALLED, error=str(exc)) from exc


class OursDecoder:
    """Our :func:`~spacy_infnet.core.crf.viterbi` on a :class:`Problem`.

    Calling it (``decoder(progress=None)``) returns the ``[B, T]`` long tags (0 on padding).
    """

    name = "ours"

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.chunks = 1

    def __call__(self, progress: Progress | None = None) -> Tensor:
        p = self.problem
        _, tags = viterbi(
            p.emissions, p.transitions, p.mask, p.start_transitions, p.end_transitions
        )
        if progress is not None:
            progress(p.batch_size, 1.0)
        return tags


class PytorchCRFDecoder:
    """pytorch-crf's ``CRF.decode`` with our potentials copied into a ``CRF(L, batch_first=True)``.

    Calling it runs ``decode`` under ``torch.no_grad()`` and converts the list of lists into a
    ``[B, T]`` long tensor (0 on padding); both are timed.

    Raises:
        PeerSkipped: pytorch-crf is not installed.
    """

    name = "pytorch-crf"

    def __init__(self, problem: Problem) -> None:
        torchcrf = _import_peer(self.name)
        self.problem = problem
        self.chunks = 1
        crf = torchcrf.CRF(problem.num_labels, batch_first=True)
        with torch.no_grad():
            # Same convention as ours: crf.transitions[i, j] scores i -> j.
            crf.transitions.copy_(problem.transitions)
            crf.start_transitions.copy_(problem.start_transitions)
            crf.end_transitions.copy_(problem.end_transitions)
        self.crf = crf.eval()

    def __call__(self, progress: Progress | None = None) -> Tensor:
        p = self.problem
        with torch.no_grad():
            paths = self.crf.decode(p.emissions, p.mask)
        tags = torch.zeros(p.batch_size, p.max_length, dtype=torch.long)
        # The mask is left-aligned, so its row-major True entries follow the concatenated paths.
        tags[p.mask] = torch.tensor([y for path in paths for y in path], dtype=torch.long)
        if progress is not None:
            progress(p.batch_size, 1.0)
        return tags


def torch_struct_log_potentials(
    emissions: Tensor,
    transitions: Tensor,
    start_transitions: Tensor,
    end_transitions: Tensor,
    lengths: Tensor,
) -> Tensor:
    """Fold our potentials into torch-struct's linear-chain edge potentials.

    ``out[b, n, c, p] = W[p, c] + U[b, n+1, c] + [n == 0] (U[b, 0, p] + s[p])
    + [n == len_b - 2] e[c]``, so the sum over a path's edges is our score of the path.

    Args:
        emissions: ``[B, T, L]`` (``T ≥ max(lengths)``; positions past it are dropped).
        transitions: ``[L, L]``; ``transitions[i, j]`` scores ``i -> j``.
        start_transitions, end_transitions: ``[L]``.
        lengths: ``[B]`` long, each ``≥ 2``.

    Returns:
        ``[B, N - 1, L, L]`` with ``N = max(lengths)``; indexed ``[b, n, c_next, c_prev]``.
        Edges ``n ≥ len_b - 1`` hold junk that torch-struct masks out (pass ``lengths``).

    Raises:
        ValueError: a length below 2.
    """
    lengths = lengths.long()
    if int(lengths.min()) < MIN_LENGTH:
        raise ValueError(f"torch-struct needs sentences of at least {MIN_LENGTH} tokens")
    N = int(lengths.max())
    em = emissions[:, :N]
    B = em.shape[0]
    # [B, N-1, L(next), 1] + [L(next), L(prev)]
    edges = em[:, 1:].unsqueeze(3) + transitions.t()
    edges[:, 0] += (em[:, 0] + start_transitions).unsqueeze(1)  # broadcast over c_next
    rows = torch.arange(B)
    last = lengths - 2
    edges[rows, last] += end_transitions.unsqueeze(1)  # broadcast over c_prev
    return edges


def torch_struct_tags(edges: Tensor, lengths: Tensor) -> Tensor:
    """Tag sequences from torch-struct's argmax edge indicators.

    Args:
        edges: ``[B, N - 1, L, L]`` 0/1 indicators ``[b, n, c_next, c_prev]`` of the chosen path.
        lengths: ``[B]`` long.

    Returns:
        ``[B, N]`` long tags, 0 at padded positions.
    """
    B, N1 = edges.shape[:2]
    tags = torch.empty(B, N1 + 1, dtype=torch.long)
    tags[:, 0] = edges[:, 0].sum(dim=1).argmax(dim=1)  # c_prev of edge 0
    tags[:, 1:] = edges.sum(dim=3).argmax(dim=2)  # c_next of edge n
    tags.masked_fill_(torch.arange(N1 + 1)[None, :] >= lengths[:, None], 0)
    return tags


def _bin_length(n: int) -> int:
    """torch-struct pads the ``n - 1`` edges of a chain of length ``n`` to a power of two."""
    return 1 if n <= 2 else 1 << math.ceil(math.log2(n - 1))


def torch_struct_bytes(num_sentences: int, length: int, num_labels: int, itemsize: int = 4) -> int:
    """Estimated peak memory (bytes) of torch-struct's argmax on ``num_sentences`` padded to
    ``length`` tokens: the ``[n, bin/2, L, L, L]`` first scan step, plus charts and gradients."""
    bin_n = _bin_length(length)
    scan = (bin_n // 2) * num_labels**3
    charts = (bin_n + length) * num_labels**2
    return int(num_sentences * itemsize * (_SCAN_FACTOR * scan + _CHART_FACTOR * charts))


def torch_struct_chunks(lengths: Tensor, num_labels: int, max_bytes: float) -> list[Tensor]:
    """Split a batch into sub-batches whose estimated torch-struct memory is ``≤ max_bytes``.

    The whole batch in its own order if it fits; otherwise the sentences sorted by length
    (stable), cut greedily, so each chunk pads only to its own longest sentence.

    Args:
        lengths: ``[B]`` long.
        num_labels: ``L``.
        max_bytes: the cap (see :func:`torch_struct_bytes`).

    Returns:
        a list of ``[n_k]`` long index tensors, covering every row once.

    Raises:
        PeerSkipped: one sentence alone is estimated above the cap.
    """
    B = len(lengths)
    longest = int(lengths.max())
    one = torch_struct_bytes(1, longest, num_labels)
    if one > max_bytes:
        raise PeerSkipped(
            f"skipped: over memory cap (one sentence of {longest} tokens needs "
            f"~{one / _GIB:.1f} GiB > {max_bytes / _GIB:g} GiB, see --torch-struct-max-gib)",
            needed_gib=one / _GIB,
        )
    if torch_struct_bytes(B, longest, num_labels) <= max_bytes:
        return [torch.arange(B)]
    order = torch.sort(lengths, stable=True).indices.tolist()
    chunks, current, cur_max = [], [], 0
    for i in order:
        n = int(lengths[i])
        if (
            current
            and torch_struct_bytes(len(current) + 1, max(cur_max, n), num_labels) > max_bytes
        ):
            chunks.append(torch.tensor(current, dtype=torch.long))
            current, cur_max = [], 0
        current.append(i)
        cur_max = max(cur_max, n)
    chunks.append(torch.tensor(current, dtype=torch.long))
    return chunks


class TorchStructDecoder:
    """torch-struct's ``LinearChainCRF(...).argmax`` on a :class:`Problem`, in memory-capped chunks.

    Calling it folds the potentials of each chunk (:func:`torch_struct_log_potentials`), runs
    the argmax (autograd on, as torch-struct needs) and converts the indicators to tags
    (:func:`torch_struct_tags`), all timed; returns ``[B, T]`` long tags (0 on padding).

    Raises:
        PeerSkipped: torch-struct is not installed, or one sentence is over the memory cap.
    """

    name = "torch-struct"

    def __init__(self, problem: Problem, max_bytes: float) -> None:
        self.torch_struct = _import_peer(self.name)
        self.problem = problem
        lengths = problem.lengths
        L = problem.num_labels
        self.chunk_index = torch_struct_chunks(lengths, L, max_bytes)
        self.chunks = len(self.chunk_index)
        work = [
            torch_struct_bytes(len(idx), int(lengths[idx].max()), L) for idx in self.chunk_index
        ]
        total = float(sum(work))
        acc, self.work_done = 0.0, []
        for w in work:
            acc += w
            self.work_done.append(acc / total)
        self.work_done[-1] = 1.0

    def __call__(self, progress: Progress | None = None) -> Tensor:
        p = self.problem
        lengths = p.lengths
        tags = torch.zeros(p.batch_size, p.max_length, dtype=torch.long)
        done = 0
        with torch.enable_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*arg_constraints.*")
            for idx, frac in zip(self.chunk_index, self.work_done):
                lens = lengths[idx]
                n = int(lens.max())
                log_pot = torch_struct_log_potentials(
                    p.emissions[idx, :n],
                    p.transitions,
                    p.start_transitions,
                    p.end_transitions,
                    lens,
                )
                dist = self.torch_struct.LinearChainCRF(log_pot, lengths=lens)
                tags[idx, :n] = torch_struct_tags(dist.argmax.detach(), lens)
                del dist, log_pot
                done += len(idx)
                if progress is not None:
                    progress(done, frac)
        return tags


def make_decoder(name: str, problem: Problem, torch_struct_max_gib: float = 2.0):
    """The decoder ``name`` (``"ours"``, ``"pytorch-crf"`` or ``"torch-struct"``) for ``problem``.

    Raises:
        PeerSkipped: the peer is not installed, or (torch-struct) over the memory cap.
        ValueError: unknown name.
    """
    if name == "ours":
        return OursDecoder(problem)
    if name == "pytorch-crf":
        return PytorchCRFDecoder(problem)
    if name == "torch-struct":
        return TorchStructDecoder(problem, torch_struct_max_gib * _GIB)
    raise ValueError(f"unknown decoder {name!r}; known: ours, {', '.join(PEERS)}")


# --------------------------------------------------------------------------
# timing and agreement
# --------------------------------------------------------------------------
class _OverBudget(Exception):
    pass


def time_decoder(decoder, repeats: int, budget_s: float | None = None) -> dict:
    """Time ``decoder``: one guarded warm-up run, then ``repeats`` timed runs of the whole batch.

    Args:
        decoder: a callable ``decoder(progress) -> [B, T] tags`` with ``problem`` and ``chunks``.
        repeats: timed runs (≥ 1).
        budget_s: seconds allowed for the first run (see the module docstring); ``None`` = no
            limit.

    Returns:
        ``{"seconds": median (s), "times": [s, ...], "warmup_seconds": s, "tags": [B, T]}``.

    Raises:
        PeerSkipped: the first run is over the time budget (the reason names how far it got).
    """
    B = decoder.problem.batch_size
    start = time.perf_counter()

    def guard(done: int, frac: float) -> None:
        elapsed = time.perf_counter() - start
        estimate = elapsed / max(frac, 1e-12)
        if elapsed > budget_s or (frac < 1.0 and estimate > _CLEAR_MARGIN * budget_s):
            raise _OverBudget(done, elapsed, estimate)

    try:
        tags = decoder(guard if budget_s is not None else None)
    except _OverBudget as over:
        done, elapsed, estimate = over.args
        raise PeerSkipped(
            f"skipped: over time budget (first {done} of {B} sentences took {elapsed:.1f} s)",
            sentences_done=done,
            elapsed_seconds=elapsed,
            extrapolated_seconds=estimate,
            budget_seconds=budget_s,
        ) from None
    warmup = time.perf_counter() - start
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        tags = decoder(None)
        times.append(time.perf_counter() - t0)
    return {
        "seconds": statistics.median(times),
        "times": times,
        "warmup_seconds": warmup,
        "tags": tags,
    }


def agreement(
    problem: Problem, ours: Tensor, peers: dict[str, Tensor], rtol: float = TIE_RTOL
) -> dict:
    """Compare the peers' paths with ours, counting score ties.

    Args:
        problem: the potentials.
        ours: ``[B, T]`` our tags.
        peers: peer name → ``[B, T]`` tags (only real positions are compared).
        rtol: paths whose scores (float64 ``sequence_score``) differ by at most
            ``rtol · max(|a|, |b|, 1)`` count as ties.

    Returns:
        ``{"compared": [names], "batch": B, "identical": k, "ties": t, "disagree": d,
        "all_agree": bool | None (None when no peer ran), "rtol": rtol,
        "per_peer": {name: {"identical", "ties", "disagree", "max_rel_gap"}}}`` where a row is
        identical when every peer returned our path, a tie when every differing path is a tie.
    """
    p = problem
    B = p.batch_size
    dt = torch.float64
    pot = (p.emissions.to(dt), p.transitions.to(dt))
    ends = (p.start_transitions.to(dt), p.end_transitions.to(dt))

    def score(tags: Tensor) -> Tensor:
        return sequence_score(pot[0], pot[1], tags, p.mask, ends[0], ends[1])

    ours_score = score(ours)
    all_same = torch.ones(B, dtype=torch.bool)
    all_ok = torch.ones(B, dtype=torch.bool)
    per_peer = {}
    for name, tags in peers.items():
        same = ((tags == ours) | ~p.mask).all(dim=1)
        peer_score = score(tags)
        scale = torch.maximum(peer_score.abs(), ours_score.abs()).clamp_min(1.0)
        gap = (peer_score - ours_score).abs() / scale
        ok = same | (gap <= rtol)
        all_same &= same
        all_ok &= ok
        per_peer[name] = {
            "identical": int(same.sum()),
            "ties": int((ok & ~same).sum()),
            "disagree": int((~ok).sum()),
            "max_rel_gap": float(gap.max()) if B else 0.0,
        }
    disagree = int((~all_ok).sum())
    return {
        "compared": list(peers),
        "batch": B,
        "identical": int(all_same.sum()),
        "ties": int((all_ok & ~all_same).sum()),
        "disagree": disagree,
        "all_agree": (disagree == 0) if peers else None,
        "rtol": rtol,
        "per_peer": per_peer,
    }


def bench_cell(
    problem: Problem,
    repeats: int = 3,
    peers: Sequence[str] = PEERS,
    peer_time_budget: float | None = 120.0,
    torch_struct_max_gib: float = 2.0,
) -> dict:
    """Time ours and the peers on one problem and check that they agree.

    Returns:
        a row: ``source``, ``labels`` (L), ``batch`` (B), ``max_length``, ``tokens``, then
        ``ours`` and one entry per peer, each ``{"status": "ok", "seconds", "times",
        "warmup_seconds", "chunks"}`` (peers also ``"ratio"`` = peer s / ours s) or
        ``{"status": "skipped", "reason", ...}``, ``agreement`` (see :func:`agreement`) and
        ``cell_seconds`` (wall time of the whole cell, timing and agreement check included).
    """
    start = time.perf_counter()
    row = {
        "source": problem.source,
        "labels": problem.num_labels,
        "batch": problem.batch_size,
        "max_length": problem.max_length,
        "tokens": int(problem.lengths.sum()),
    }
    ours_timing = time_decoder(OursDecoder(problem), repeats)
    ours_tags = ours_timing.pop("tags")
    row["ours"] = {"status": "ok", **ours_timing, "chunks": 1}
    peer_tags = {}
    for name in peers:
        try:
            decoder = make_decoder(name, problem, torch_struct_max_gib)
            timing = time_decoder(decoder, repeats, peer_time_budget)
        except PeerSkipped as skip:
            row[name] = {"status": "skipped", "reason": skip.reason, **skip.details}
        else:
            peer_tags[name] = timing.pop("tags")
            row[name] = {
                "status": "ok",
                **timing,
                "ratio": timing["seconds"] / ours_timing["seconds"],
                "chunks": decoder.chunks,
            }
        decoder = None
        gc.collect()
    row["agreement"] = agreement(problem, ours_tags, peer_tags)
    row["cell_seconds"] = time.perf_counter() - start
    return row


# --------------------------------------------------------------------------
# the grid
# --------------------------------------------------------------------------
def environment() -> dict:
    """Torch version, threads, CPU model (``/proc/cpuinfo`` if present), platform, peers."""
    versions = {}
    for dist in ("pytorch-crf", "torch-struct"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "peer_versions": versions,
    }


def _pipeline_label(directory: str) -> str:
    path = Path(directory)
    return path.parent.name if path.name in ("model-best", "model-last") else path.name


def run_benchmark(
    labels: Sequence[int] = (17, 25, 321, 400),
    batch_sizes: Sequence[int] = (1, 10, 100, 1000),
    repeats: int = 3,
    seed: int = 0,
    pipelines: Sequence[tuple[str, str, str | None]] = (),
    random: bool = True,
    peers: Sequence[str] = PEERS,
    peer_time_budget: float | None = 120.0,
    torch_struct_max_gib: float = 2.0,
    progress: bool = True,
) -> dict:
    """Run the grid: random potentials for every ``L × B``, then every pipeline for every ``B``.

    Args:
        labels: label counts for the random potentials.
        batch_sizes: sentences per batch.
        repeats: timed runs per decoder and cell (after one warm-up).
        seed: seed of the lengths and random potentials.
        pipelines: ``(directory, data set name, data path or None)`` triples.
        random: include the random potentials.
        peers: which peers to run (subset of :data:`PEERS`).
        peer_time_budget: seconds for a peer's first run of a cell (``None`` = no limit).
        torch_struct_max_gib: torch-struct's memory cap per chunk (GiB).
        progress: show a tqdm bar over the cells (stderr).

    Returns:
        ``{"environment": ..., "settings": ..., "rows": [row, ...], "wall_seconds": s}``
        (JSON-serialisable), rows as in :func:`bench_cell`.

    Raises:
        ValueError: an unknown peer; whatever loading a pipeline or data set raises.
    """
    from tqdm.auto import tqdm

    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise ValueError(f"unknown peer(s) {unknown}; known: {', '.join(PEERS)}")
    cells: list[tuple] = []
    if random:
        cells += [("random", L, B) for L in labels for B in batch_sizes]
    cells += [("pipeline", i, B) for i in range(len(pipelines)) for B in batch_sizes]
    settings = {
        "labels": list(labels),
        "batch_sizes": list(batch_sizes),
        "repeats": repeats,
        "warmup_runs": 1,
        "seed": seed,
        "threads": torch.get_num_threads(),
        "random": random,
        "pipelines": [
            {"directory": str(d), "data": name, "data_path": path} for d, name, path in pipelines
        ],
        "peers": list(peers),
        "peer_time_budget_s": peer_time_budget,
        "torch_struct_max_gib": torch_struct_max_gib,
        "min_length": MIN_LENGTH,
        "lengths": "random: sampled from the Twitter POS training set; pipelines: first B test "
        "sentences (cycled); only sentences of >= 2 tokens (torch-struct needs an edge)",
        "tie_rtol": TIE_RTOL,
    }
    start = time.perf_counter()
    rows = []
    pool = None
    loaded: dict[int, tuple] = {}
    bar = tqdm(cells, desc="bench-viterbi", unit="cell", disable=not progress, file=sys.stderr)
    for kind, key, B in bar:
        if kind == "random":
            bar.set_postfix_str(f"random L={key} B={B}")
            if pool is None:
                pool = twitter_train_lengths()
            lengths = sample_lengths(pool, B, seed * 1_000_003 + B)
            problem = random_problem(key, lengths, seed * 1_000_003 + key * 10_007 + B)
        else:
            directory, name, path = pipelines[key]
            bar.set_postfix_str(f"{_pipeline_label(directory)} B={B}")
            if key not in loaded:
                loaded[key] = (load_tagger(directory), load_test_sentences(name, path))
            comp, sentences = loaded[key]
            batch = [sentences[i % len(sentences)] for i in range(B)]
            source = f"pipeline {_pipeline_label(directory)} ({name} test)"
            problem = pipeline_problem(comp, batch, source)
        rows.append(bench_cell(problem, repeats, peers, peer_time_budget, torch_struct_max_gib))
        problem = None
        gc.collect()
    bar.close()
    return {
        "environment": environment(),
        "settings": settings,
        "rows": rows,
        "wall_seconds": time.perf_counter() - start,
    }


# --------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------
def _fmt_seconds(s: float) -> str:
    return f"{s:.3g}" if s < 100 else f"{s:.0f}"


def _fmt_ratio(r: float) -> str:
    return f"×{r:.2f}" if r < 10 else f"×{r:.1f}" if r < 100 else f"×{r:.0f}"


def _peer_cell(entry: dict | None) -> str:
    if entry is None:
        return "not run"
    if entry["status"] != "ok":
        return entry["reason"].replace("|", "/")
    extra = f"; {entry['chunks']} chunks" if entry.get("chunks", 1) > 1 else ""
    return f"{_fmt_seconds(entry['seconds'])} ({_fmt_ratio(entry['ratio'])}{extra})"


def _agreement_cell(agree: dict) -> str:
    if not agree["compared"]:
        return "n/a (no peer ran)"
    text = f"identical paths {agree['identical']}/{agree['batch']}, ties {agree['ties']}"
    if agree["disagree"]:
        text += f", DISAGREE {agree['disagree']}"
    return text


def markdown(results: dict) -> str:
    """A Markdown report of :func:`run_benchmark`'s results: a header and one table row per cell.

    Columns: potentials source, L, B, ours s, pytorch-crf s (×ratio), torch-struct s (×ratio),
    agreement.  Seconds are medians per whole batch; ratio = peer s / ours s.
    """
    env, st = results["environment"], results["settings"]
    versions = ", ".join(f"{k} {v or 'not installed'}" for k, v in env["peer_versions"].items())
    budget = st["peer_time_budget_s"]
    budget = "no limit" if budget is None else f"{budget:g} s"
    lines = [
        "# Viterbi: ours vs pytorch-crf vs torch-struct",
        "",
        (
            f"- Environment: torch {env['torch']}, {env['threads']} thread(s), CPU "
            f"{env['cpu'] or 'unknown'} ({env['cpu_count']} cores), {env['platform']}; "
            f"{versions}."
        ),
        (
            f"- Seconds: median of {st['repeats']} timed runs of the whole batch after 1 "
            "warm-up (float32, CPU); ratio = peer seconds / our seconds (×5: ours is 5 times "
            "faster)."
        ),
        f"- Sentence lengths: {st['lengths']}; seed {st['seed']}.",
        f"- Wall time of the whole benchmark: {results.get('wall_seconds', float('nan')):.0f} s.",
        (
            "- torch-struct: where the batch would exceed the memory cap of "
            f"{st['torch_struct_max_gib']:g} GiB (--torch-struct-max-gib) it is sorted by "
            "length and chunked (time = sum over the chunks; the number of chunks is shown); "
            "a sentence alone over the cap skips the cell."
        ),
        (
            "- Time budget: a peer whose first run of a cell took, or was extrapolated to take, "
            f"more than {budget} (--peer-time-budget) is stopped on that cell and shown as "
            "skipped; no extrapolated figure is in the table."
        ),
        (
            "- Agreement: identical paths = all peers that ran returned our path; ties = a "
            f"different path with a score equal to ours within {st['tie_rtol']:g} relative."
        ),
        "",
        (
            "| potentials | L | B | ours s | pytorch-crf s (×ratio) | torch-struct s (×ratio) "
            "| agreement |"
        ),
        "|---|---:|---:|---:|---|---|---|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['source']} | {row['labels']} | {row['batch']} "
            f"| {_fmt_seconds(row['ours']['seconds'])} "
            f"| {_peer_cell(row.get('pytorch-crf'))} | {_peer_cell(row.get('torch-struct'))} "
            f"| {_agreement_cell(row['agreement'])} |"
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------
def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _peer_list(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in values if v not in PEERS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown peer(s) {unknown}; known: {', '.join(PEERS)}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench-viterbi`` options to ``parser`` (see the module docstring)."""
    parser.add_argument(
        "--labels", type=_int_list, default=[17, 25, 321, 400], help="L for random potentials"
    )
    parser.add_argument(
        "--batch-sizes", type=_int_list, default=[1, 10, 100, 1000], help="sentences per batch"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after 1 warm-up")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0, help="seed of lengths and potentials")
    parser.add_argument(
        "--pipeline",
        action="append",
        default=[],
        metavar="DIR",
        help="trained spaCy pipeline with an infnet_tagger (repeatable)",
    )
    parser.add_argument(
        "--pipeline-data",
        action="append",
        default=[],
        metavar="NAME[:PATH]",
        help="test data of the matching --pipeline, e.g. conll2003:../shared/data/conll2003, "
        "twitter_pos, ud_ewt:../shared/data/ud_english_ewt (repeatable)",
    )
    parser.add_argument("--no-random", action="store_true", help="only the pipelines' potentials")
    parser.add_argument(
        "--peers", type=_peer_list, default=list(PEERS), help="comma-separated peers to run"
    )
    parser.add_argument(
        "--torch-struct-max-gib",
        type=float,
        default=2.0,
        help="estimated memory cap per torch-struct chunk (GiB)",
    )
    parser.add_argument(
        "--peer-time-budget",
        type=float,
        default=120.0,
        help="seconds a peer's first run of a cell may take (0 = no limit)",
    )
    parser.add_argument(
        "--output",
        default="results/bench_viterbi.json",
        help="JSON results; the Markdown goes next to it with the same stem",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    """Run the benchmark, write ``--output`` (JSON) and its ``.md``, print the Markdown.

    Returns:
        0 when every cell agrees, 1 when some cell disagrees, 2 for bad arguments.
    """
    if len(args.pipeline) != len(args.pipeline_data):
        print(
            f"bench-viterbi: {len(args.pipeline)} --pipeline but {len(args.pipeline_data)} "
            "--pipeline-data; give one NAME[:PATH] per pipeline",
            file=sys.stderr,
        )
        return 2
    if args.repeats < 1 or args.threads < 1:
        print("bench-viterbi: --repeats and --threads must be at least 1", file=sys.stderr)
        return 2
    try:
        pipelines = [
            (d, *parse_pipeline_data(spec)) for d, spec in zip(args.pipeline, args.pipeline_data)
        ]
    except ValueError as exc:
        print(f"bench-viterbi: {exc}", file=sys.stderr)
        return 2
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        results = run_benchmark(
            labels=args.labels,
            batch_sizes=args.batch_sizes,
            repeats=args.repeats,
            seed=args.seed,
            pipelines=pipelines,
            random=not args.no_random,
            peers=args.peers,
            peer_time_budget=args.peer_time_budget or None,
            torch_struct_max_gib=args.torch_struct_max_gib,
            progress=not args.no_progress,
        )
    finally:
        torch.set_num_threads(threads)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    text = markdown(results)
    out.with_suffix(".md").write_text(text, encoding="utf-8")
    print(text)
    print(f"wrote {out} and {out.with_suffix('.md')}", file=sys.stderr)
    return 1 if any(r["agreement"]["disagree"] for r in results["rows"]) else 0

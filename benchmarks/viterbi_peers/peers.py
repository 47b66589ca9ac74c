"""The three decoders timed on a :class:`~.problems.Problem`: ours, pytorch-crf and
torch-struct, with torch-struct's folding of the potentials, its edge indicators back to tags
and its memory-capped chunking (see the package docstring for the conventions mapping).
"""

from __future__ import annotations

import importlib
import math
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from spacy_infnet.core.crf import _viterbi, viterbi

from .problems import MIN_LENGTH, Problem

__all__ = [
    "NOT_INSTALLED",
    "PEERS",
    "OursDecoder",
    "PeerSkipped",
    "Progress",
    "PytorchCRFDecoder",
    "TorchStructDecoder",
    "make_decoder",
    "torch_struct_bytes",
    "torch_struct_chunks",
    "torch_struct_log_potentials",
    "torch_struct_tags",
]

PEERS = ("pytorch-crf", "torch-struct", "ours-torch")
_PEER_MODULES = {"pytorch-crf": "torchcrf", "torch-struct": "torch_struct"}  # ours-torch: none
NOT_INSTALLED = (
    "skipped: not installed (pip install pytorch-crf / torch-struct, or the [dev] extra)"
)
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
    #: the Viterbi function timed
    decode = staticmethod(viterbi)

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.chunks = 1

    def __call__(self, progress: Progress | None = None) -> Tensor:
        p = self.problem
        with torch.no_grad():
            _, tags = self.decode(
                p.emissions, p.transitions, p.mask, p.start_transitions, p.end_transitions
            )
        if progress is not None:
            progress(p.batch_size, 1.0)
        return tags


class OursTorchDecoder(OursDecoder):
    """Our batched torch recursion (``crf._viterbi``) alone, without the compiled CPU kernel
    that :func:`~spacy_infnet.core.crf.viterbi` dispatches small CPU batches to: the Viterbi of
    releases before it, as a same-run reference."""

    name = "ours-torch"
    decode = staticmethod(_viterbi)


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
    """The decoder ``name`` (``"ours"``, ``"ours-torch"``, ``"pytorch-crf"`` or ``"torch-struct"``)
    for ``problem``.

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
    if name == "ours-torch":
        return OursTorchDecoder(problem)
    raise ValueError(f"unknown decoder {name!r}; known: ours, {', '.join(PEERS)}")

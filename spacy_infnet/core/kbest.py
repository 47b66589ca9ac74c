r"""Exact k-best Viterbi decoding for linear-chain CRFs (pure PyTorch).

The ``k`` label sequences of highest score (lowest energy ``E = -score``, see
:mod:`spacy_infnet.core.crf` for the energy and the tensor conventions), with
their scores.  This is the k-best / list Viterbi algorithm (Seshadri &
Sundberg, "List Viterbi decoding algorithms with applications", IEEE Trans.
Communications 1994; the "parallel" variant), as used for n-best decoding of
neural CRF taggers in NCRF++ (Yang & Zhang, ACL 2018 demo).  Written from the
recursion below; no code is taken from those works.

Recursion
---------
For every position ``t`` and label ``j`` keep the ``k`` best scores of partial
sequences ``y_0 .. y_t`` ending in ``y_t = j``, ``δ_t(j, 1) ≥ … ≥ δ_t(j, k)``,
and for each one a backpointer ``ψ_t(j, r) = (i, r')``: the previous label and
the rank of the partial sequence it extends::

    δ_0(j, 1) = s_j + U[0, j],          δ_0(j, r) = -inf  (r > 1)
    δ_t(j, ·) = U[t, j] + k-max_{(i, r')} ( δ_{t-1}(i, r') + W[i, j] )      t = 1 .. n-1
    ψ_t(j, ·) = the arguments (i, r') of those k maxima
    best k    = k-max_{(j, r)} ( δ_{n-1}(j, r) + e_j )

where ``k-max`` picks the ``k`` largest of its ``L·k`` candidates, in
descending order.  The sequences are read off by following the backpointers
from each of the ``k`` final choices.  Distinct (label, rank) pairs are distinct
partial sequences, so the ``k`` results are ``k`` distinct label sequences
(as long as their scores are finite).  A top-``k`` selection over ``L·k``
candidates costs ``O(L·k)`` (``torch.topk`` is a selection, not a sort; only
the ``k`` selected values are sorted), so decoding costs ``O(k · T · L²)``
time (plus ``O(T · L · k log k)`` for the small sorts) and keeps
``[B, T, L, k]`` backpointers; ``k = 1`` is the ordinary Viterbi algorithm.

Ties
----
Among candidates of equal score the one with the lowest previous label, then
the lowest previous rank, is preferred (and at the end the lowest last label,
then rank).  The rank-1 result is therefore the sequence that
:func:`spacy_infnet.core.crf.viterbi` returns, for every ``k``.

Forbidden transitions
---------------------
Potentials may contain ``-inf`` (forbidden transitions / first / last labels):
sequences using them are never returned with a finite score.  The tagging
scheme penalties of :mod:`spacy_infnet.core.constraints` are a large *finite*
number (``-1e4``), under which forbidden sequences are merely very unlikely and
*are* returned once the allowed ones run out; pass ``forbidden_below`` (e.g.
``-1e3``) to treat every transition / start / end potential at or below it as
``-inf``, so that only allowed sequences are returned.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from .crf import _prepare

__all__ = ["kbest_viterbi"]

# The recursion materialises a [B, L, L·k] candidate tensor (plus bool / long
# work tensors of the same size) per step; batches are split so that it stays
# below this many elements.
_CPU_MAX_BUFFER_ELEMS = 1 << 22
_MAX_BUFFER_ELEMS = 1 << 27


def kbest_viterbi(
    emissions: Tensor,
    transitions: Tensor,
    k: int,
    mask: Tensor | None = None,
    start_transitions: Tensor | None = None,
    end_transitions: Tensor | None = None,
    *,
    forbidden_below: float | None = None,
) -> tuple[Tensor, Tensor]:
    r"""The ``k`` highest-scoring label sequences of each row, exactly, in ``O(k · T · L²)``.

    Runs without autograd (inputs are detached); any device works.  Ties are
    broken towards the lowest label index (see the module docstring), so
    ``scores[:, 0]`` and ``tags[:, 0]`` equal :func:`spacy_infnet.core.crf.viterbi`'s
    result.  Each finite ``scores[b, r]`` is the score
    (:func:`spacy_infnet.core.crf.sequence_score`) of ``tags[b, r]``, up to
    floating-point rounding (the sums are taken in a different order).

    Args:
        emissions: ``[B, T, L]`` unary scores.
        transitions: ``[L, L]``; ``transitions[i, j]`` scores ``i -> j``.
            ``-inf`` entries are forbidden transitions.
        k: how many sequences to return per row (``k ≥ 1``).
        mask: ``[B, T]`` bool, left-aligned, or ``None`` (every position real).
        start_transitions, end_transitions: ``[L]`` or ``None`` (zeros); ``-inf``
            entries forbid a first / last label.
        forbidden_below: when given, every entry of ``transitions``,
            ``start_transitions`` and ``end_transitions`` at or below this value
            is treated as ``-inf`` (forbidden).  Use it with the finite ``-1e4``
            penalties of :func:`spacy_infnet.core.constraints.constraint_penalties`
            (e.g. ``forbidden_below=-1e3``) to get only sequences the tagging
            scheme allows.  Emissions are never changed.  ``None`` (default):
            nothing is changed.

    Returns:
        ``(scores, tags)``: ``scores`` ``[B, k]`` in descending order per row, in
        the potentials' (promoted floating) dtype; ``tags`` ``[B, k, T]`` long,
        0 at padded positions.  A row with fewer than ``k`` sequences of finite
        score (a row of ``n`` tokens has ``L**n`` sequences; forbidden potentials
        rule out more) has ``-inf`` scores and all-0 tags in the remaining
        entries.  A zero-length row has exactly one sequence, the empty one, of
        score 0.

    Raises:
        ValueError: if ``k`` is not an integer ``≥ 1``, or a shape does not match
            (the message names the shapes).
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    k = int(k)
    emissions, transitions, mask, start_transitions, end_transitions = _prepare(
        emissions, transitions, mask, start_transitions, end_transitions
    )
    with torch.no_grad():
        emissions = emissions.detach()
        transitions = transitions.detach()
        if start_transitions is not None:
            start_transitions = start_transitions.detach()
        if end_transitions is not None:
            end_transitions = end_transitions.detach()
        if forbidden_below is not None:
            threshold = float(forbidden_below)
            transitions = _forbid(transitions, threshold)
            start_transitions = _forbid(start_transitions, threshold)
            end_transitions = _forbid(end_transitions, threshold)

        B, T, L = emissions.shape
        device, dtype = emissions.device, emissions.dtype
        if mask is None:
            lengths = torch.full((B,), T, dtype=torch.long, device=device)
        else:
            lengths = mask.sum(dim=1).to(device=device, dtype=torch.long)
        if B == 0 or T == 0 or L == 0 or int(lengths.max()) == 0:
            # Only zero-length rows have a sequence (the empty one, score 0).
            scores = torch.full((B, k), -math.inf, dtype=dtype, device=device)
            scores[:, 0].masked_fill_(lengths == 0, 0.0)
            return scores, torch.zeros(B, k, T, dtype=torch.long, device=device)

        limit = _CPU_MAX_BUFFER_ELEMS if device.type == "cpu" else _MAX_BUFFER_ELEMS
        chunk = max(1, limit // (L * L * k))
        if B <= chunk:
            return _kbest(emissions, transitions, k, lengths, start_transitions, end_transitions)
        scores, tags = [], []
        for lo in range(0, B, chunk):
            s, p = _kbest(
                emissions[lo : lo + chunk],
                transitions,
                k,
                lengths[lo : lo + chunk],
                start_transitions,
                end_transitions,
            )
            scores.append(s)
            tags.append(p)
        return torch.cat(scores), torch.cat(tags)


def _forbid(potentials: Tensor | None, threshold: float) -> Tensor | None:
    if potentials is None:
        return None
    return potentials.masked_fill(potentials <= threshold, -math.inf)


def _top_k(cand: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The ``k`` largest entries along the last dimension, descending, ties by lowest index.

    ``cand`` is ``[..., n]`` with ``n ≥ k``; returns values and indices ``[..., k]``.
    ``torch.topk`` leaves the choice among equal values open, so only its
    ``k``-th largest value is used: every entry above it is kept, and of those
    equal to it the ones of lowest index, until ``k`` are kept.  Costs
    ``O(n + k log k)`` per row.
    """
    if k == 1:
        # torch.max returns the first maximal index.
        values, index = cand.max(dim=-1, keepdim=True)
        return values, index
    n = cand.shape[-1]
    kth = cand.topk(k, dim=-1, sorted=False).values.amin(dim=-1, keepdim=True)
    above = cand > kth
    tied = cand == kth
    room = k - above.sum(dim=-1, keepdim=True)
    keep = above | (tied & (tied.cumsum(dim=-1) <= room))
    # Write the kept indices, in index order, to slots 0 .. k-1 (slot k is a
    # dump for the others; without NaNs exactly k entries are kept).
    slot = torch.where(keep, keep.cumsum(dim=-1) - 1, k).clamp_(max=k)
    arange = torch.arange(n, device=cand.device).expand_as(cand)
    index = torch.zeros(*cand.shape[:-1], k + 1, dtype=torch.long, device=cand.device)
    index.scatter_(-1, slot, arange)
    index = index[..., :k]
    values = cand.gather(-1, index)
    # A stable sort of the k kept values keeps ties in index order.
    values, order = values.sort(dim=-1, descending=True, stable=True)
    return values, index.gather(-1, order)


def _kbest(
    emissions: Tensor,
    transitions: Tensor,
    k: int,
    lengths: Tensor,
    start_transitions: Tensor | None,
    end_transitions: Tensor | None,
) -> tuple[Tensor, Tensor]:
    B, T_full, L = emissions.shape
    device, dtype = emissions.device, emissions.dtype
    T = max(1, int(lengths.max()))  # positions past the longest row are never needed
    last = (lengths - 1).clamp(min=0)  # each row's last real position

    # State layout [B, L(label), k(rank)]; flat index label * k + rank.
    # w_rep[j, i * k + r] = W[i, j]: the candidates for label j at step t are
    # δ_{t-1}.reshape(B, 1, L·k) + w_rep.
    w_rep = transitions.t().repeat_interleave(k, dim=1)  # [L(j), L(i)·k]
    delta = torch.full((B, L, k), -math.inf, dtype=dtype, device=device)
    delta[:, :, 0] = emissions[:, 0]
    if start_transitions is not None:
        delta[:, :, 0] += start_transitions
    final = delta.clone()  # δ at each row's last real position
    backptr = torch.zeros(T, B, L * k, dtype=torch.long, device=device)
    for t in range(1, T):
        cand = delta.reshape(B, 1, L * k) + w_rep  # [B, L(j), L(i)·k]
        values, index = _top_k(cand, k)  # [B, L, k]
        delta = values + emissions[:, t].unsqueeze(2)
        backptr[t] = index.reshape(B, L * k)
        final = torch.where((last == t).view(B, 1, 1), delta, final)
    if end_transitions is not None:
        final = final + end_transitions.unsqueeze(1)
    scores, cur = _top_k(final.reshape(B, L * k), k)  # [B, k]; cur: flat label * k + rank

    # Backtracking: position t is real for the rows with t < length; a row's
    # chosen (label, rank) stays put until its last real position is reached.
    path = torch.zeros(T, B, k, dtype=torch.long, device=device)
    for t in range(T - 1, -1, -1):
        active = (t < lengths).view(B, 1)
        path[t] = torch.where(active, cur // k, 0)
        if t > 0:
            cur = torch.where(active, backptr[t].gather(1, cur), cur)

    tags = torch.zeros(B, k, T_full, dtype=torch.long, device=device)
    tags[:, :, :T] = path.permute(1, 2, 0)
    # Entries without a (finite) sequence: -inf and all-0 tags; zero-length
    # rows: the empty sequence (score 0), then nothing.
    empty = lengths == 0
    scores[empty] = -math.inf
    scores[:, 0].masked_fill_(empty, 0.0)
    tags.masked_fill_((scores == -math.inf).unsqueeze(2), 0)
    return scores, tags

r"""Linear-chain CRF energy, exact inference and likelihood (pure PyTorch).

Energy (Tu & Gimpel, NAACL 2019, §2)
------------------------------------
For an input ``x`` of length ``T`` and a label sequence ``y`` over ``L`` labels,
each ``y_t`` is a vector in ``R^L`` (a one-hot vector for a discrete labelling,
or a point of the probability simplex for a *relaxed* labelling)::

    E(x, y) = -( Σ_{t=0}^{T-1} Σ_i y_{t,i} · U[t, i]            (unary / emissions)
                 + Σ_{t=1}^{T-1} y_{t-1}ᵀ W y_t                 (pairwise / transitions)
                 + sᵀ y_0 + eᵀ y_{T-1} )                        (start / end)

with ``U = emissions``, ``W = transitions`` (``W[i, j]`` scores label ``i`` at
position ``t-1`` followed by label ``j`` at position ``t``), ``s`` the start
and ``e`` the end potentials.  The *score* of a labelling is ``-E``.  The
energy is multilinear in ``(y_0, ..., y_{T-1})``, so for relaxed ``y`` it equals
the expected energy under the factorised distribution ``Π_t y_t``.

Forward algorithm (log-partition)
---------------------------------
``Z(x) = Σ_y exp(-E(x, y))`` over one-hot labellings, computed in log space::

    α_0(j) = s_j + U[0, j]
    α_t(j) = U[t, j] + logsumexp_i ( α_{t-1}(i) + W[i, j] )      t = 1 .. T-1
    log Z  = logsumexp_j ( α_{T-1}(j) + e_j )

``∂ log Z / ∂ U[t, j]`` is the unary marginal ``p(y_t = j | x)``.

Viterbi (exact energy minimisation)
-----------------------------------
Exact MAP inference, ``argmin_y E(x, y)``, the reference point against which
Tu & Gimpel (2019, §3) compare approximate inference methods; it costs
``O(T · L²)``::

    δ_0(j)  = s_j + U[0, j]
    δ_t(j)  = U[t, j] + max_i ( δ_{t-1}(i) + W[i, j] )           t = 1 .. T-1
    ψ_t(j)  = argmax_i ( δ_{t-1}(i) + W[i, j] )                 (backpointer)
    y*_{T-1} = argmax_j ( δ_{T-1}(j) + e_j ),   y*_{t-1} = ψ_t(y*_t)

Conventions (all public functions)
----------------------------------
* ``emissions``: ``[B, T, L]`` float tensor.
* ``transitions``: ``[L, L]``, ``transitions[i, j]`` = score of ``i -> j``.
* ``mask``: ``[B, T]`` bool, left-aligned (``True`` for real tokens, then only
  ``False``); ``None`` means every position is real.  Rows of length 0 are
  allowed: their score, energy and log-partition are 0 and their tags are 0.
* ``start_transitions`` / ``end_transitions``: ``[L]`` or ``None`` (zeros).  The
  end potential is applied at each sequence's last *real* position.
* Potentials are promoted to a common floating dtype; any device works.

All functions are vectorised over the batch; the recursions loop once over
``T`` in Python.  Forbidden transitions are expected to be encoded as large
finite negative scores (e.g. ``-1e4``, see :mod:`spacy_infnet.core.constraints`),
which keeps everything finite in float32.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import viterbi_cpu

__all__ = [
    "crf_energy",
    "crf_nll",
    "log_partition",
    "marginals",
    "sequence_score",
    "viterbi",
]

# Viterbi materialises one [B, L, L] work buffer per step.  Batches are split
# so that it stays below this many elements: on CPU a cache-sized buffer
# (8 MiB in float32) is about 2x faster at L≈321 than one big buffer; on
# accelerators only memory matters.
_CPU_MAX_BUFFER_ELEMS = 1 << 21
_MAX_BUFFER_ELEMS = 1 << 27
# Work-buffer layout switch for Viterbi (measured on CPU: reducing over the
# leading dimension wins for small label sets, over the last one for large).
_SLAB_LAYOUT_MAX_LABELS = 128
# From this many labels on, the forward algorithm runs as a matrix product in probability space
# (O(B·L²) multiply-adds through BLAS, [B, L] autograd memory per step) instead of a logsumexp
# over a [B, L, L] tensor per step.
_MATMUL_FORWARD_MIN_LABELS = 64
# Small CPU batches (float32 / float64, numba installed) are decoded by the compiled kernel of
# spacy_infnet.core.viterbi_cpu, one row at a time, instead of the batched torch recursion, whose
# time at small B is per-step dispatch overhead.  Measured with one torch thread (random
# potentials, Twitter POS lengths, T = 12..38; a 2-core CPU shared with a training job): the
# kernel was faster at every size tried, L = 9..400 and B = 1..3000 (B·T·L² up to 1.8e10),
# x5-15 at B <= 10, x3-14 at B = 100..3000 (two runs).  So with one torch thread: always.
# The kernel is single-threaded while torch splits its large ops over intra-op threads, so with
# more threads it is used only up to this B·T·L² (sentences of 38 tokens: ~1500 at L = 17, ~700
# at L = 25, 4 at L = 321), a conservative cut: several threads could not be timed there.
_NUMBA_MAX_WORK = 1 << 24


# --------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------
def _shape(t: Tensor | None) -> tuple[int, ...] | None:
    return None if t is None else tuple(t.shape)


def _prepare(
    emissions: Tensor,
    transitions: Tensor,
    mask: Tensor | None,
    start_transitions: Tensor | None,
    end_transitions: Tensor | None,
):
    """Check shapes, promote potentials to one floating dtype, normalise mask."""
    if not isinstance(emissions, Tensor) or emissions.dim() != 3:
        raise ValueError(
            f"emissions must have shape [B, T, L], got {_shape(emissions) if isinstance(emissions, Tensor) else type(emissions)}"
        )
    B, T, L = emissions.shape
    if transitions.shape != (L, L):
        raise ValueError(
            f"transitions must have shape [L, L] = {(L, L)} to match emissions "
            f"{tuple(emissions.shape)}, got {tuple(transitions.shape)}"
        )
    for name, vec in (
        ("start_transitions", start_transitions),
        ("end_transitions", end_transitions),
    ):
        if vec is not None and vec.shape != (L,):
            raise ValueError(
                f"{name} must have shape [L] = {(L,)} to match emissions "
                f"{tuple(emissions.shape)}, got {tuple(vec.shape)}"
            )
    if mask is not None:
        if mask.shape != (B, T):
            raise ValueError(
                f"mask must have shape [B, T] = {(B, T)} to match emissions "
                f"{tuple(emissions.shape)}, got {tuple(mask.shape)}"
            )
        if mask.dtype != torch.bool:
            mask = mask != 0
    dtype = emissions.dtype
    for t in (transitions, start_transitions, end_transitions):
        if t is not None:
            dtype = torch.promote_types(dtype, t.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    emissions = emissions.to(dtype)
    transitions = transitions.to(dtype)
    if start_transitions is not None:
        start_transitions = start_transitions.to(dtype)
    if end_transitions is not None:
        end_transitions = end_transitions.to(dtype)
    return emissions, transitions, mask, start_transitions, end_transitions


# --------------------------------------------------------------------------
# scores and energies
# --------------------------------------------------------------------------
def sequence_score(
    emissions: Tensor,
    transitions: Tensor,
    tags: Tensor,
    mask: Tensor | None = None,
    start_transitions: Tensor | None = None,
    end_transitions: Tensor | None = None,
) -> Tensor:
    r"""Score (= negative energy) of discrete label sequences.

    ``score(y) = s[y_0] + Σ_t U[t, y_t] + Σ_{t≥1} W[y_{t-1}, y_t] + e[y_last]``,
    summed over the real positions of each row only.

    Args:
        emissions: ``[B, T, L]`` unary scores.
        transitions: ``[L, L]``; ``transitions[i, j]`` scores ``i -> j``.
        tags: ``[B, T]`` integer labels in ``[0, L)``; values at padded
            positions are ignored (they may be anything, e.g. ``-100``).
        mask: ``[B, T]`` bool, left-aligned, or ``None`` (all real).
        start_transitions, end_transitions: ``[L]`` or ``None``.

    Returns:
        ``[B]`` scores (0 for zero-length rows); differentiable w.r.t. the
        potentials.

    Raises:
        ValueError: if a shape does not match (the message names the shapes).
    """
    emissions, transitions, mask, start_transitions, end_transitions = _prepare(
        emissions, transitions, mask, start_transitions, end_transitions
    )
    B, T, _ = emissions.shape
    if tags.shape != (B, T):
        raise ValueError(
            f"tags must have shape [B, T] = {(B, T)} to match emissions "
            f"{tuple(emissions.shape)}, got {tuple(tags.shape)}"
        )
    if T == 0:
        return emissions.new_zeros(B)
    tags = tags.long()
    if mask is not None:
        tags = tags.masked_fill(~mask, 0)

    unary = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # [B, T]
    pair = transitions[tags[:, :-1], tags[:, 1:]]  # [B, T-1]
    if mask is not None:
        unary = unary.masked_fill(~mask, 0.0)
        pair = pair.masked_fill(~mask[:, 1:], 0.0)
    score = unary.sum(dim=1) + pair.sum(dim=1)

    lengths = None if mask is None else mask.sum(dim=1)
    if start_transitions is not None:
        s = start_transitions[tags[:, 0]]
        score = score + (s if lengths is None else s.masked_fill(lengths == 0, 0.0))
    if end_transitions is not None:
        if lengths is None:
            last = tags[:, -1]
        else:
            last = tags.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        e = end_transitions[last]
        score = score + (e if lengths is None else e.masked_fill(lengths == 0, 0.0))
    return score


def crf_energy(
    emissions: Tensor,
    transitions: Tensor,
    y: Tensor,
    mask: Tensor | None = None,
    start_transitions: Tensor | None = None,
    end_transitions: Tensor | None = None,
) -> Tensor:
    r"""CRF energy ``E(x, y)`` of one-hot or relaxed labellings (Tu & Gimpel 2019, §2).

    ``E = -( Σ_t y_tᵀ U[t] + Σ_{t≥1} y_{t-1}ᵀ W y_t + sᵀ y_0 + eᵀ y_last )``
    over the real positions of each row.  Multilinear in ``y``, so for relaxed
    ``y`` it is the expected energy under ``Π_t y_t``, and
    ``crf_energy(one_hot(tags)) == -sequence_score(tags)``.

    Args:
        emissions: ``[B, T, L]``.
        transitions: ``[L, L]``; ``transitions[i, j]`` scores ``i -> j``.
        y: ``[B, T, L]`` one-hot or relaxed labels (each real position a vector,
            normally a distribution over labels; not checked).  Values at
            padded positions are ignored.
        mask: ``[B, T]`` bool, left-aligned, or ``None``.
        start_transitions, end_transitions: ``[L]`` or ``None``.

    Returns:
        ``[B]`` energies (0 for zero-length rows), differentiable w.r.t. ``y``
        and all potentials.

    Raises:
        ValueError: if a shape does not match (the message names the shapes).
    """
    emissions, transitions, mask, start_transitions, end_transitions = _prepare(
        emissions, transitions, mask, start_transitions, end_transitions
    )
    B, T, L = emissions.shape
    if y.shape != (B, T, L):
        raise ValueError(
            f"y must have shape [B, T, L] = {(B, T, L)} to match emissions "
            f"{tuple(emissions.shape)}, got {tuple(y.shape)}"
        )
    if T == 0:
        return emissions.new_zeros(B)
    dtype = (
        torch.promote_types(emissions.dtype, y.dtype)
        if y.dtype.is_floating_point
        else emissions.dtype
    )
    y = y.to(dtype)
    emissions = emissions.to(dtype)
    transitions = transitions.to(dtype)
    if start_transitions is not None:
        start_transitions = start_transitions.to(dtype)
    if end_transitions is not None:
        end_transitions = end_transitions.to(dtype)

    unary = (y * emissions).sum(dim=2)  # [B, T]
    pair = (torch.matmul(y[:, :-1], transitions) * y[:, 1:]).sum(dim=2)  # [B, T-1]
    if mask is not None:
        unary = unary.masked_fill(~mask, 0.0)
        pair = pair.masked_fill(~mask[:, 1:], 0.0)
    score = unary.sum(dim=1) + pair.sum(dim=1)

    lengths = None if mask is None else mask.sum(dim=1)
    if start_transitions is not None:
        s = torch.matmul(y[:, 0], start_transitions)
        score = score + (s if lengths is None else s.masked_fill(lengths == 0, 0.0))
    if end_transitions is not None:
        if lengths is None:
            y_last = y[:, -1]
        else:
            idx = (lengths - 1).clamp(min=0).view(B, 1, 1).expand(B, 1, L)
            y_last = y.gather(1, idx).squeeze(1)
        e = torch.matmul(y_last, end_transitions)
        score = score + (e if lengths is None else e.masked_fill(lengths == 0, 0.0))
    return -score


# --------------------------------------------------------------------------
# forward algorithm
# --------------------------------------------------------------------------
def log_partition(
    emissions: Tensor,
    transitions: Tensor,
    mask: Tensor | None = None,
    start_transitions: Tensor | None = None,
    end_transitions: Tensor | None = None,
) -> Tensor:
    r"""Log-partition ``log Z(x) = logsumexp_y score(y)`` by the forward algorithm.

    Computed in log space with ``logsumexp`` (stable for ``-1e4`` penalties in
    float32), ``O(T · L²)``; differentiable (autograd keeps one ``[B, L, L]``
    tensor per step).  ``∂ log Z / ∂ emissions`` are the unary marginals.

    Args:
        emissions: ``[B, T, L]``.
        transitions: ``[L, L]``; ``transitions[i, j]`` scores ``i -> j``.
        mask: ``[B, T]`` bool, left-aligned, or ``None``.
        start_transitions, end_transitions: ``[L]`` or ``None``.

    Returns:
        ``[B]`` log-partition values (0 for zero-length rows).

    Raises:
        ValueError: if a shape does not match (the message names the shapes).
    """
    emissions, transitions, mask, start_transitions, end_transitions = _prepare(
        emissions, transitions, mask, start_transitions, end_transitions
    )
    B, T, _ = emissions.shape
    if T == 0:
        return emissions.new_zeros(B)
    # trans_t[j, i] = W[i, j]: the reduction over i runs along the contiguous dim.
    trans_t = transitions.t().contiguous().unsqueeze(0)  # [1, L(j), L(i)]
    alpha = emissions[:, 0]
    if start_transitions is not None:
        alpha = alpha + start_transitions
    step_mask = None if mask is None else mask.unsqueeze(2)  # [B, T, 1]
    if transitions.shape[0] >= _MATMUL_FORWARD_MIN_LABELS:
        # logsumexp_i(α(i) + W[i, j]) = m + w + log Σ_i exp(α(i) − m) · exp(W[i, j] − w),
        # with m = max_i α(i) per row and w = max W; the floor keeps log finite for labels
        # reachable only through forbidden (−1e4) transitions.
        w_max = transitions.detach().max()
        exp_trans = torch.exp(transitions - w_max)  # [L(i), L(j)]
        tiny = torch.finfo(emissions.dtype).tiny
        for t in range(1, T):
            m = alpha.detach().amax(dim=1, keepdim=True)
            prob = torch.matmul(torch.exp(alpha - m), exp_trans).clamp_min(tiny)
            nxt = torch.log(prob) + m + w_max + emissions[:, t]
            alpha = nxt if step_mask is None else torch.where(step_mask[:, t], nxt, alpha)
    else:
        for t in range(1, T):
            nxt = torch.logsumexp(alpha.unsqueeze(1) + trans_t, dim=2) + emissions[:, t]
            alpha = nxt if step_mask is None else torch.where(step_mask[:, t], nxt, alpha)
    if end_transitions is not None:
        alpha = alpha + end_transitions
    log_z = torch.logsumexp(alpha, dim=1)
    if mask is not None:
        log_z = log_z.masked_fill(~mask[:, 0], 0.0)
    return log_z


def crf_nll(
    emissions: Tensor,
    transitions: Tensor,
    tags: Tensor,
    mask: Tensor | None = None,
    start_transitions: Tensor | None = None,
    end_transitions: Tensor | None = None,
) -> Tensor:
    r"""Negative conditional log-likelihood ``log Z(x) - score(x, y)``.

    Args:
        emissions: ``[B, T, L]``.
        transitions: ``[L, L]``.
        tags: ``[B, T]`` gold labels (padded positions ignored).
        mask: ``[B, T]`` bool, left-aligned, or ``None``.
        start_transitions, end_transitions: ``[L]`` or ``None``.

    Returns:
        ``[B]`` non-negative losses (0 for zero-length rows); reduce as needed.

    Raises:
        ValueError: if a shape does not match.
    """
    return log_partition(
        emissions, transitions, mask, start_transitions, end_transitions
    ) - sequence_score(emissions, transitions, tags, mask, start_transitions, end_transitions)


def marginals(
    emissions: Tensor,
    transitions: Tensor,
    mask: Tensor | None = None,
    start_transitions: Tensor | None = None,
    end_transitions: Tensor | None = None,
) -> Tensor:
    r"""Unary marginals ``p(y_t = j | x)`` as ``∂ log Z / ∂ emissions``.

    Returns:
        ``[B, T, L]``; each real position sums to 1, padded positions are 0.
        Not differentiable itself (computed with a detached copy).
    """
    with torch.enable_grad():
        em = emissions.detach().requires_grad_(True)
        log_z = log_partition(
            em,
            transitions.detach(),
            mask,
            None if start_transitions is None else start_transitions.detach(),
            None if end_transitions is None else end_transitions.detach(),
        )
        (grad,) = torch.autograd.grad(log_z.sum(), em)
    return grad


# --------------------------------------------------------------------------
# Viterbi
# --------------------------------------------------------------------------
def viterbi(
    emissions: Tensor,
    transitions: Tensor,
    mask: Tensor | None = None,
    start_transitions: Tensor | None = None,
    end_transitions: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Exact minimum-energy (maximum-score) label sequences, ``O(T · L²)``.

    The recursion runs up to the longest row for every row (no per-step
    masking); each row's result is read off at its last real position, and
    padded steps are skipped in the backtracking.  Only the ``δ`` values are
    stored (``[T, B, L]``); backpointers are recomputed along the chosen path,
    which is cheaper than a max-with-indices reduction at every step.  Runs
    without autograd (inputs are detached).  Ties are broken towards the
    lowest label index.

    On the CPU, float32 / float64 batches are decoded instead by the compiled
    kernel of :mod:`spacy_infnet.core.viterbi_cpu` (identical results) when
    numba is installed and either torch runs one thread or ``B · T · L²`` is
    at most ``_NUMBA_MAX_WORK``; its first call in a process compiles it or
    loads it from numba's disk cache.

    Args:
        emissions: ``[B, T, L]``.
        transitions: ``[L, L]``; ``transitions[i, j]`` scores ``i -> j``.
        mask: ``[B, T]`` bool, left-aligned, or ``None``.
        start_transitions, end_transitions: ``[L]`` or ``None``.

    Returns:
        ``(best_score, tags)``: ``best_score`` ``[B]`` (the maximal score, i.e.
        minus the minimal energy; 0 for zero-length rows) in the potentials'
        dtype, and ``tags`` ``[B, T]`` long with 0 at padded positions.

    Raises:
        ValueError: if a shape does not match (the message names the shapes).
    """
    emissions, transitions, mask, start_transitions, end_transitions = _prepare(
        emissions, transitions, mask, start_transitions, end_transitions
    )
    B, T, L = emissions.shape
    if (
        emissions.device.type == "cpu"
        and emissions.dtype in (torch.float32, torch.float64)
        and (B * T * L * L <= _NUMBA_MAX_WORK or torch.get_num_threads() == 1)
        and viterbi_cpu.available()
    ):
        # Zero-copy numpy views (detached only where needed: a few µs matter at B = 1).
        arrays = [
            None if t is None else (t.detach() if t.requires_grad else t).numpy()
            for t in (emissions, transitions, start_transitions, end_transitions)
        ]
        lengths = None if mask is None else mask.numpy().sum(axis=1)
        score, tags = viterbi_cpu.viterbi(arrays[0], arrays[1], lengths, arrays[2], arrays[3])
        return torch.from_numpy(score), torch.from_numpy(tags)
    with torch.no_grad():
        emissions = emissions.detach()
        transitions = transitions.detach()
        if start_transitions is not None:
            start_transitions = start_transitions.detach()
        if end_transitions is not None:
            end_transitions = end_transitions.detach()
        if B == 0 or T == 0 or L == 0:
            return (
                emissions.new_zeros(B),
                torch.zeros(B, T, dtype=torch.long, device=emissions.device),
            )
        limit = _CPU_MAX_BUFFER_ELEMS if emissions.device.type == "cpu" else _MAX_BUFFER_ELEMS
        chunk = max(1, limit // (L * L))
        if B <= chunk:
            return _viterbi(emissions, transitions, mask, start_transitions, end_transitions)
        scores, paths = [], []
        for lo in range(0, B, chunk):
            s, p = _viterbi(
                emissions[lo : lo + chunk],
                transitions,
                None if mask is None else mask[lo : lo + chunk],
                start_transitions,
                end_transitions,
            )
            scores.append(s)
            paths.append(p)
        return torch.cat(scores), torch.cat(paths)


def _viterbi(
    emissions: Tensor,
    transitions: Tensor,
    mask: Tensor | None,
    start_transitions: Tensor | None,
    end_transitions: Tensor | None,
) -> tuple[Tensor, Tensor]:
    B, T_full, L = emissions.shape
    device, dtype = emissions.device, emissions.dtype
    lengths = None
    T = T_full
    if mask is not None:
        lengths = mask.sum(dim=1)
        T = int(lengths.max())  # positions past the longest row are never needed
        if T == 0:
            return emissions.new_zeros(B), torch.zeros(B, T_full, dtype=torch.long, device=device)
        emissions = emissions[:, :T]
        mask = mask[:, :T]

    # Forward pass: δ_t for every row and position (no per-step masking: each
    # row's result is read off at its own last position afterwards).  Only the
    # max *values* are kept; max-with-indices is several times slower than
    # amax, and the argmax is recomputed on the single backtracked path.
    delta = torch.empty(T, B, L, dtype=dtype, device=device)
    delta_out = delta.unbind(0)
    em_steps = emissions.unbind(1)
    if start_transitions is not None:
        torch.add(em_steps[0], start_transitions, out=delta_out[0])
    else:
        delta_out[0].copy_(em_steps[0])
    if L <= _SLAB_LAYOUT_MAX_LABELS:
        # buf[i, b, j] = δ_{t-1}(b, i) + W[i, j]; the max over i is an
        # elementwise max of L contiguous [B, L] slabs (fast for small L).
        buf = torch.empty(L, B, L, dtype=dtype, device=device)
        trans = transitions.unsqueeze(1)  # [L, 1, L]
        delta_in = delta.permute(0, 2, 1).unsqueeze(3).unbind(0)  # [L, B, 1] views
        reduce_dim = 0
    else:
        # buf[b, j, i] = δ_{t-1}(b, i) + W[i, j]; the max over i runs along the
        # contiguous last dimension (fast for large L).
        buf = torch.empty(B, L, L, dtype=dtype, device=device)
        trans = transitions.t().contiguous()  # [L(j), L(i)]
        delta_in = delta.unsqueeze(2).unbind(0)  # [B, 1, L] views
        reduce_dim = 2
    for t in range(1, T):
        torch.add(delta_in[t - 1], trans, out=buf)
        torch.amax(buf, dim=reduce_dim, out=delta_out[t])
        delta_out[t].add_(em_steps[t])
    del buf

    # δ at each row's last real position, plus the end potentials.
    if lengths is None:
        final = delta_out[T - 1]
    else:
        final = delta[(lengths - 1).clamp(min=0), torch.arange(B, device=device)]  # [B, L]
    if end_transitions is not None:
        final = final + end_transitions
    best_score, last_tag = final.max(dim=1)

    # Backtracking, one vectorised step per position:
    #   y_{t-1} = argmax_i δ_{t-1}(i) + W[i, y_t]
    # Rows whose sequence ends before t keep their current tag.
    path = torch.empty(T, B, dtype=torch.long, device=device)
    path_steps = path.unbind(0)
    path_steps[T - 1].copy_(last_tag)
    trans_rows = transitions.t().contiguous()  # trans_rows[j] = W[:, j]
    scratch = torch.empty(B, L, dtype=dtype, device=device)
    prev = torch.empty(B, dtype=torch.long, device=device)
    mask_steps = None if mask is None else mask.t().unbind(0)
    for t in range(T - 1, 0, -1):
        torch.index_select(trans_rows, 0, path_steps[t], out=scratch)
        scratch.add_(delta_out[t - 1])
        if mask_steps is None:
            torch.argmax(scratch, dim=1, out=path_steps[t - 1])
        else:
            torch.argmax(scratch, dim=1, out=prev)
            torch.where(mask_steps[t], prev, path_steps[t], out=path_steps[t - 1])

    if T < T_full:
        tags = torch.zeros(B, T_full, dtype=torch.long, device=device)
        tags[:, :T] = path.t()
    else:
        tags = path.t().contiguous()
    if mask is not None:
        tags[:, :T].masked_fill_(~mask, 0)
        best_score = best_score.masked_fill(lengths == 0, 0.0)
    return best_score, tags

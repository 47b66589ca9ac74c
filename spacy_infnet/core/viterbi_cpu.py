r"""Compiled CPU Viterbi for small batches (numba), the fast path of :func:`.crf.viterbi`.

Why
---
The batched torch recursion of :func:`spacy_infnet.core.crf.viterbi` issues a handful of torch
operations per position (an add, an ``amax`` and an add forward, an ``index_select``, an add, an
``argmax`` and a ``where`` backward).  For one sentence or a few, with the label sets of POS or
NER (``L`` ≈ 17–25) and ``T`` ≈ 15–40, each of those operations does a few hundred
multiply-adds at most, so the run time is almost entirely torch's per-operation dispatch
overhead (a few microseconds each), not arithmetic.  This module runs the same recursion as one
compiled loop nest per call instead, so that the only overhead left is one function call.

The recursion
-------------
Exactly the Viterbi recursion of the :mod:`spacy_infnet.core.crf` module docstring, row by row,
up to each row's own length ``n``::

    δ_0(j)  = s_j + U[0, j]
    δ_t(j)  = U[t, j] + max_i ( δ_{t-1}(i) + W[i, j] )           t = 1 .. n-1
    y*_{n-1} = argmax_j ( δ_{n-1}(j) + e_j ),   y*_{t-1} = argmax_i ( δ_{t-1}(i) + W[i, y*_t] )

computed in the potentials' own dtype (float32 or float64) with the same additions in the same
order as the torch path, so the ``δ`` values, scores and paths are bit-for-bit those of
``crf._viterbi``.  Ties go to the lowest label index (strict ``>`` scanning labels upwards, as
``torch.argmax`` returns the first maximum); rows of length 0 score 0; tags are 0 on padded
positions.  Only ``δ`` (``[T, L]`` per row) is kept, and the backpointer is recomputed along the
chosen path, as in the torch path.  NaN potentials are outside the contract (torch propagates
NaN through ``amax``; this kernel does not).

When it is used
---------------
:func:`.crf.viterbi` calls :func:`viterbi` for CPU tensors of dtype float32 / float64 when
:func:`available` is true and either torch runs one thread (the kernel was faster at every size
measured) or the batch is small (``B · T · L²`` up to ``crf._NUMBA_MAX_WORK``; see the
measurement there).  Larger batches with several torch threads, other dtypes and every
accelerator keep the batched torch path.  numba is optional: without it (or if it fails to
import) :func:`available` is false and torch runs everywhere.

Compilation and cache
---------------------
The kernel is compiled on first use, once per dtype, and saved with numba's on-disk cache
(``cache=True``) so that later processes load it instead of recompiling.  Measured on a 2-core
AMD EPYC shared with a training job: importing numba 0.25–0.4 s (done lazily, by the first
:func:`available` call, not when :mod:`spacy_infnet` is imported); compiling 1.0–1.1 s for
float32 plus 0.7 s for float64; from the cache, the first call of a process takes 0.4–0.9 s
(numba's one-time set-up of its compiler target, which also imports ``scipy.linalg``) and a second
dtype 5–10 ms.  With a Viterbi-decoding Twitter POS pipeline the first ``nlp(text)`` of a process
took 0.7 s once the cache existed (1.6–1.8 s the very first time; 0.01 s with the torch path),
later calls the same as before; one decoded sentence costs about 30 µs here.

numba looks for a cache directory in order: ``NUMBA_CACHE_DIR`` if set, then the ``__pycache__``
folder beside this file if writable, then a user-wide folder (``~/.cache/numba`` on Linux).  If
none is writable (e.g. a read-only install with a read-only home) numba refuses ``cache=True``
and the kernel is built without the disk cache; if writing the cache fails later, likewise.
Either way it is then compiled once per process.
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["available", "viterbi"]

_lock = threading.Lock()
_numba = None  # the numba module once imported, False if it cannot be imported
_kernel = None  # the numba dispatcher of _viterbi_rows


def available() -> bool:
    """Whether numba can be imported (tried once; the import costs ~0.3 s)."""
    global _numba
    if _numba is None:
        with _lock:
            if _numba is None:
                try:
                    import numba
                except ImportError:  # not installed, or built against another numpy
                    _numba = False
                else:
                    _numba = numba
    return _numba is not False


def _viterbi_rows(emissions, transitions, lengths, start, end, score, tags):  # pragma: no cover
    # Compiled by numba (the coverage tool cannot see inside).  start / end have length 0 when
    # absent.  score [B] and tags [B, T] come in zeroed; rows are filled up to their length.
    B = emissions.shape[0]
    L = emissions.shape[2]
    delta = np.empty((emissions.shape[1], L), dtype=emissions.dtype)
    has_start = start.shape[0] > 0
    has_end = end.shape[0] > 0
    for b in range(B):
        n = lengths[b]
        if n < 0 or n > emissions.shape[1]:
            raise ValueError("lengths must lie in [0, T]")
        if n == 0:
            continue
        for j in range(L):
            if has_start:
                delta[0, j] = emissions[b, 0, j] + start[j]
            else:
                delta[0, j] = emissions[b, 0, j]
        for t in range(1, n):
            prev = delta[t - 1]
            cur = delta[t]
            a = prev[0]
            for j in range(L):
                cur[j] = a + transitions[0, j]
            for i in range(1, L):
                a = prev[i]
                for j in range(L):
                    v = a + transitions[i, j]
                    cur[j] = max(cur[j], v)
            for j in range(L):
                cur[j] += emissions[b, t, j]
        last = delta[n - 1]
        best = last[0] + end[0] if has_end else last[0]
        arg = 0
        for j in range(1, L):
            v = last[j] + end[j] if has_end else last[j]
            if v > best:
                best = v
                arg = j
        score[b] = best
        tags[b, n - 1] = arg
        for t in range(n - 1, 0, -1):
            y = tags[b, t]
            prev = delta[t - 1]
            best = transitions[0, y] + prev[0]
            arg = 0
            for i in range(1, L):
                v = transitions[i, y] + prev[i]
                if v > best:
                    best = v
                    arg = i
            tags[b, t - 1] = arg


def _build(cache: bool):
    return _numba.njit(cache=cache, nogil=True)(_viterbi_rows)


def _get_kernel():
    global _kernel
    if _kernel is None:
        with _lock:
            if _kernel is None:
                try:
                    _kernel = _build(cache=True)
                except RuntimeError:  # numba found no writable cache directory
                    _kernel = _build(cache=False)
    return _kernel


def viterbi(
    emissions: np.ndarray,
    transitions: np.ndarray,
    lengths: np.ndarray | None = None,
    start: np.ndarray | None = None,
    end: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact Viterbi decoding of a batch on the CPU, same results as ``crf._viterbi``.

    Args:
        emissions: ``[B, T, L]`` float32 or float64.
        transitions: ``[L, L]``, ``transitions[i, j]`` scores ``i -> j``.
        lengths: ``[B]`` integer row lengths (``0 ≤ n ≤ T``; a left-aligned mask's row sums), or
            ``None`` for all ``T``.
        start, end: ``[L]`` start / end potentials, or ``None``.

    All arrays are converted to the emissions' dtype and made C-contiguous (no copy when they
    already are).

    Returns:
        ``(best_score, tags)``: ``[B]`` in the emissions' dtype (0 for empty rows) and
        ``[B, T]`` int64 with 0 on padded positions.

    Raises:
        RuntimeError: numba is not available (check :func:`available` first).
        ValueError: a shape or dtype does not fit.
    """
    if not available():
        raise RuntimeError("numba is not installed; use spacy_infnet.core.crf.viterbi")
    dtype = emissions.dtype
    if dtype not in (np.float32, np.float64) or emissions.ndim != 3:
        raise ValueError(
            f"emissions must be a float32/float64 [B, T, L] array, got {dtype} {emissions.shape}"
        )
    B, T, L = emissions.shape
    if transitions.shape != (L, L):
        raise ValueError(f"transitions must have shape {(L, L)}, got {transitions.shape}")
    emissions = np.ascontiguousarray(emissions)
    transitions = np.ascontiguousarray(transitions, dtype=dtype)
    empty = np.empty(0, dtype=dtype)
    vecs = []
    for name, vec in (("start", start), ("end", end)):
        if vec is None:
            vecs.append(empty)
        elif vec.shape != (L,):
            raise ValueError(f"{name} must have shape {(L,)}, got {vec.shape}")
        else:
            vecs.append(np.ascontiguousarray(vec, dtype=dtype))
    if lengths is None:
        lengths = np.full(B, T, dtype=np.int64)
    else:
        lengths = np.ascontiguousarray(lengths, dtype=np.int64)
        if lengths.shape != (B,):
            raise ValueError(f"lengths must have shape [B] = {(B,)}, got {lengths.shape}")
    score = np.zeros(B, dtype=dtype)
    tags = np.zeros((B, T), dtype=np.int64)
    if B == 0 or T == 0 or L == 0:
        return score, tags
    global _kernel
    try:
        _get_kernel()(emissions, transitions, lengths, vecs[0], vecs[1], score, tags)
    except OSError:  # the compiled code could not be written to the disk cache
        with _lock:
            _kernel = _build(cache=False)
        _kernel(emissions, transitions, lengths, vecs[0], vecs[1], score, tags)
    return score, tags

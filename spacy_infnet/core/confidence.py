r"""Exact confidence scores of a linear-chain CRF: token marginals and span (entity) probabilities.

Conventions are those of :mod:`spacy_infnet.core.crf`: ``emissions`` ``[B, T, L]``,
``transitions`` ``[L, L]`` (``transitions[i, j]`` scores label ``i`` followed by label ``j``),
``mask`` ``[B, T]`` bool and left-aligned (``None``: every position is real), ``start`` /
``end`` ``[L]`` or ``None`` (zeros).  Pass the potentials the tagger decodes with (for an
:class:`~spacy_infnet.core.energy.Potentials` ``p``: ``p.emissions, p.transitions, p.mask,
p.start_transitions, p.end_transitions``, constraint penalties included), so the
probabilities are those of the distribution ``p(y | x) ∝ exp(score(x, y))`` whose mode Viterbi
returns.  All results are probabilities (unitless, in ``[0, 1]``), detached from autograd.

Token confidence
----------------
``token_confidence`` is the unary marginal ``p(y_t = tags_t | x)`` of each position's label
(``crf.marginals``, i.e. ``∂ log Z / ∂ U``).

Segment (span) probability
--------------------------
The probability that a labelled segment ``(b, i, j, X)`` (row ``b``, tokens ``i .. j-1``,
entity type ``X``) is part of the output is the total probability of the label sequences that
contain it, which is *not* the product of its token marginals (those ignore the correlations
along the chain).  The segment fixes a set ``A_t ⊆ {0 .. L-1}`` of allowed labels at each
position ``t``:

* BIOES: ``A_i = {S-X}`` for a one-token segment, otherwise ``A_i = {B-X}``,
  ``A_t = {I-X}`` for ``i < t < j-1``, ``A_{j-1} = {E-X}``;
* IOB2 / BIO: ``A_i = {B-X}``, ``A_t = {I-X}`` for ``i < t < j``, and, when ``j`` is a real
  position, ``A_j`` = every label but ``I-X`` (the entity ends at ``j``);
* every other position: all ``L`` labels.

The forward algorithm restricted to these sets,

    α_0(l) = s_l + U[0, l]                                        (l ∈ A_0, else −∞)
    α_t(l) = U[t, l] + logsumexp_k ( α_{t-1}(k) + W[k, l] )        (l ∈ A_t, else −∞)
    log Z_A = logsumexp_l ( α_{n-1}(l) + e_l )

sums ``exp(score)`` over exactly the sequences with ``y_t ∈ A_t`` for all ``t``, so

    P(segment | x) = Z_A / Z = exp(log Z_A − log Z).

Outside the segment every label is allowed, so the recursion only needs restricting over
the segment itself: with the unconstrained forward values ``α_t`` and backward values
``β_t(l)`` (log Σ over the continuations after label ``l`` at ``t``, end scores included)
computed once per sentence, the restricted forward starts from ``α_{i-1}`` (the start scores
at ``i = 0``), runs over the constrained positions ``i .. k`` (``k = j-1``; IOB2: ``j`` when
it is a real position) and ends in

    log Z_A = logsumexp_l ( α^A_k(l) + β_k(l) ),   log Z = logsumexp_l ( α_{n-1}(l) + e_l ),

so the ratio is at most 1 up to rounding; it is clamped to ``[0, 1]``.  Cost: ``O(n · L²)``
per sentence plus ``O(|segment| · L²)`` per segment, linear in a document's length however
many entities it holds.  Many segments are batched, in chunks that bound the ``[rows, L, L]``
work buffer.  This is the constrained forward(-backward)
computation of exact field / span confidences of Culotta & McCallum (2004), "Confidence
estimation for information extraction" (HLT-NAACL 2004).

The probability is that of the scheme's *well-formed* encoding of the segment.  The lenient
span reader :func:`~spacy_infnet.core.schemes.tags_to_spans` also reads spans out of some
ill-formed sequences (e.g. BIOES ``O I-X E-X``); under the hard scheme constraints
(:mod:`spacy_infnet.core.constraints`, −1e4 per violation) those sequences carry a relative
weight of about ``e^{-10^4}`` (0 in float64), so the two readings agree.

Numerics
--------
Disallowed labels are set to ``−∞`` (not a large finite negative number, which would leak the
mass of forbidden sequences when the allowed ones are themselves penalised).  ``torch.logsumexp``
of an all-``−∞`` slice is ``−∞`` (never NaN), ``−∞ + finite = −∞`` and no ``+∞`` ever enters,
so an impossible segment (e.g. one that only ``−∞`` potentials reach) gets ``log Z_A = −∞`` and
probability exactly 0.  Potentials may themselves contain ``−∞`` (e.g. forbidden transitions
written as ``−∞`` rather than penalties); NaN or ``+∞`` at a real position is rejected.  The
recursion runs without autograd, in the potentials' dtype (float16 / bfloat16 are promoted to
float32); use float64 potentials where the probabilities must be exact to ~1e-12 (in float32,
``log Z`` of a long sentence carries an absolute rounding error of about ``1e-7 · |log Z|``,
which becomes the relative error of the probability).

Errors
------
Every public function raises ``ValueError`` with the offending value: a shape that does not
match (from :mod:`.crf`'s checks), a tag outside ``[0, L)`` at a real position, a label list
whose length is not ``L``, an unknown or unsupported scheme (``iob1`` has no structural span
encoding here), a segment whose row, boundaries or type are invalid or whose type has no
``B-X`` / ``I-X`` / ``E-X`` / ``S-X`` label that the segment needs, NaN / ``+∞`` potentials, or
a sentence with no label sequence of finite score (``log Z = −∞``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from .crf import _prepare, marginals, viterbi
from .schemes import normalize_scheme, tags_to_spans

__all__ = [
    "constrained_log_partition",
    "entity_confidences",
    "segment_probability",
    "token_confidence",
]

#: Upper bound on the elements of the ``[rows, L, L]`` buffer of one forward step; segment rows
#: are processed in chunks below it (32 MiB in float64).
_MAX_BUFFER_ELEMS = 1 << 22

#: Schemes with a structural span encoding (canonical names of :func:`.schemes.normalize_scheme`).
_SPAN_SCHEMES = ("bioes", "iob2")

Segment = tuple[int, int, int, str]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _prepare_all(emissions, transitions, mask, start, end):
    """Validate and promote like :mod:`.crf` (half precision → float32), detach, make a mask."""
    emissions, transitions, mask, start, end = _prepare(emissions, transitions, mask, start, end)
    if emissions.dtype in (torch.float16, torch.bfloat16):
        emissions, transitions = emissions.float(), transitions.float()
        start = None if start is None else start.float()
        end = None if end is None else end.float()
    B, T, _ = emissions.shape
    if mask is None:
        mask = torch.ones(B, T, dtype=torch.bool, device=emissions.device)
    detach = [None if x is None else x.detach() for x in (emissions, transitions, start, end)]
    emissions, transitions, start, end = detach
    mask = mask.to(emissions.device)
    _check_finite("emissions", emissions[mask])
    for name, x in (("transitions", transitions), ("start", start), ("end", end)):
        if x is not None:
            _check_finite(name, x)
    return emissions, transitions, mask, start, end


def _check_finite(name: str, x: Tensor) -> None:
    """NaN and +inf are rejected (−inf is a valid "impossible" score)."""
    bad = torch.isnan(x) | (x == float("inf"))
    if bool(bad.any()):
        value = x[bad][0].item()
        raise ValueError(f"{name} must not contain NaN or +inf, got {value}")


def _check_labels(labels: Sequence[str], n_labels: int) -> dict[str, int]:
    labels = list(labels)
    if len(labels) != n_labels:
        raise ValueError(
            f"labels must name the L = {n_labels} labels of the potentials, got {len(labels)}"
        )
    return {str(lab): k for k, lab in enumerate(labels)}


def _span_scheme(scheme: str) -> str:
    canonical = normalize_scheme(scheme)
    if canonical not in _SPAN_SCHEMES:
        raise ValueError(
            f"segment probabilities need scheme 'bioes'/'iobes' or 'iob2'/'bio', got {scheme!r}"
        )
    return canonical


def _check_tags(tags: Tensor, mask: Tensor, n_labels: int) -> Tensor:
    B, T = mask.shape
    if not isinstance(tags, Tensor) or tuple(tags.shape) != (B, T):
        shape = tuple(tags.shape) if isinstance(tags, Tensor) else type(tags)
        raise ValueError(f"tags must have shape [B, T] = {(B, T)}, got {shape}")
    tags = tags.to(mask.device).long().masked_fill(~mask, 0)
    bad = (tags < 0) | (tags >= n_labels)
    if bool(bad.any()):
        raise ValueError(f"tags must lie in [0, {n_labels}), got {tags[bad][0].item()}")
    return tags


def _forward_all(emissions: Tensor, transitions: Tensor, start: Tensor | None) -> Tensor:
    """Every forward value α_t(l) [B, T, L] (log-space; emission of t included; values past a
    row's length are meaningless)."""
    _, T, _ = emissions.shape
    alpha = emissions.clone()
    if T == 0:
        return alpha
    if start is not None:
        alpha[:, 0] += start
    trans_t = transitions.t().contiguous().unsqueeze(0)  # [1, L(l), L(k)]
    for t in range(1, T):
        alpha[:, t] = torch.logsumexp(alpha[:, t - 1].unsqueeze(1) + trans_t, dim=2) + alpha[:, t]
    return alpha


def _backward_all(
    emissions: Tensor, transitions: Tensor, mask: Tensor, end: Tensor | None
) -> Tensor:
    """Every backward value β_t(l) [B, T, L]: log Σ over the continuations after label l at t
    to the row's end, ``end`` included, the emission of t not (β at a row's last real
    position is ``end``; values past a row's length are meaningless)."""
    B, T, L = emissions.shape
    last = emissions.new_zeros(B, L) if end is None else end.expand(B, L)
    beta = last.unsqueeze(1).repeat(1, T, 1)
    trans = transitions.unsqueeze(0)  # [1, L(l), L(k)]
    for t in range(T - 2, -1, -1):
        nxt = torch.logsumexp(trans + (emissions[:, t + 1] + beta[:, t + 1]).unsqueeze(1), dim=2)
        beta[:, t] = torch.where(mask[:, t + 1].unsqueeze(1), nxt, last)
    return beta


def _log_partition(alpha: Tensor, mask: Tensor, end: Tensor | None) -> Tensor:
    """log Z [B] from the forward values ``alpha`` [B, T, L] (:func:`_forward_all`): the
    values at each row's last real position plus the end scores; 0 for zero-length rows."""
    B, T, _ = alpha.shape
    if T == 0:
        return alpha.new_zeros(B)
    last = alpha[torch.arange(B, device=alpha.device), (mask.sum(dim=1) - 1).clamp_min(0)]
    return torch.logsumexp(last if end is None else last + end, dim=1).masked_fill(~mask[:, 0], 0.0)


def _chunk_rows(n_labels: int) -> int:
    return max(1, _MAX_BUFFER_ELEMS // max(1, n_labels * n_labels))


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------
def constrained_log_partition(
    emissions: Tensor,
    transitions: Tensor,
    mask: Tensor | None = None,
    start: Tensor | None = None,
    end: Tensor | None = None,
    allowed: Tensor | None = None,
) -> Tensor:
    r"""``log Σ_{y : y_t ∈ A_t ∀t} exp(score(x, y))``: the forward algorithm over allowed labels.

    Args:
        emissions: ``[B, T, L]`` unary scores.
        transitions: ``[L, L]``; ``transitions[i, j]`` scores ``i -> j``.
        mask: ``[B, T]`` bool, left-aligned, or ``None`` (all real).
        start, end: ``[L]`` or ``None``.
        allowed: ``[B, T, L]`` bool, True where a label is allowed (entries at padded positions
            are ignored), or ``None`` (all allowed: the ordinary ``log Z``).

    Returns:
        ``[B]`` log-partition values in nats (``−inf`` where no allowed sequence has a finite
        score, 0 for zero-length rows); not differentiable (computed without autograd).

    Raises:
        ValueError: a shape that does not match, or NaN / ``+inf`` potentials.
    """
    emissions, transitions, mask, start, end = _prepare_all(
        emissions, transitions, mask, start, end
    )
    B, T, L = emissions.shape
    if allowed is not None:
        if not isinstance(allowed, Tensor) or tuple(allowed.shape) != (B, T, L):
            shape = tuple(allowed.shape) if isinstance(allowed, Tensor) else type(allowed)
            raise ValueError(f"allowed must have shape [B, T, L] = {(B, T, L)}, got {shape}")
        emissions = emissions.masked_fill(~allowed.to(emissions.device).bool(), float("-inf"))
    with torch.no_grad():
        return _log_partition(_forward_all(emissions, transitions, start), mask, end)


def token_confidence(
    emissions: Tensor,
    transitions: Tensor,
    mask: Tensor | None = None,
    start: Tensor | None = None,
    end: Tensor | None = None,
    tags: Tensor | None = None,
) -> Tensor:
    r"""Marginal probability ``p(y_t = tags_t | x)`` of each position's label.

    Args:
        emissions: ``[B, T, L]`` unary scores.
        transitions: ``[L, L]``; ``transitions[i, j]`` scores ``i -> j``.
        mask: ``[B, T]`` bool, left-aligned, or ``None`` (all real).
        start, end: ``[L]`` or ``None``.
        tags: ``[B, T]`` integer labels (values at padded positions are ignored), or ``None``
            for the Viterbi tags of the same potentials.

    Returns:
        ``[B, T]`` probabilities in ``[0, 1]`` (potentials' dtype), 0 at padded positions.

    Raises:
        ValueError: a shape that does not match, a tag outside ``[0, L)`` at a real position,
            or NaN / ``+inf`` potentials.
    """
    emissions, transitions, mask, start, end = _prepare_all(
        emissions, transitions, mask, start, end
    )
    L = emissions.shape[2]
    if tags is None:
        _, tags = viterbi(emissions, transitions, mask, start, end)
    tags = _check_tags(tags, mask, L)
    probs = marginals(emissions, transitions, mask, start, end)  # [B, T, L]
    conf = probs.gather(2, tags.unsqueeze(2)).squeeze(2)
    return conf.clamp(0.0, 1.0).masked_fill(~mask, 0.0)


def segment_probability(
    emissions: Tensor,
    transitions: Tensor,
    mask: Tensor | None,
    start: Tensor | None,
    end: Tensor | None,
    segments: Iterable[Sequence],
    labels: Sequence[str],
    scheme: str = "bioes",
) -> Tensor:
    r"""Exact probability ``Z_A / Z`` that each labelled segment is part of the CRF's output.

    See the module docstring for the allowed-label sets ``A_t`` of a segment under BIOES and
    IOB2 and for the numerics.

    Args:
        emissions: ``[B, T, L]`` unary scores.
        transitions: ``[L, L]``; ``transitions[i, j]`` scores ``i -> j``.
        mask: ``[B, T]`` bool, left-aligned, or ``None`` (all real).
        start, end: ``[L]`` or ``None``.
        segments: ``N`` tuples ``(row, start, end, type)``: row ``0 <= row < B``, tokens
            ``start .. end-1`` with ``0 <= start < end <= length[row]``, entity type such as
            ``"PER"`` (the part of a label after its ``B-``/``I-``/``E-``/``S-`` prefix).
        labels: the ``L`` label strings in label-index order (e.g. ``"O"``, ``"B-PER"``).
        scheme: ``"bioes"`` (alias ``"iobes"``) or ``"iob2"`` (alias ``"bio"``).

    Returns:
        ``[N]`` probabilities in ``[0, 1]`` (potentials' dtype, their device), in the order of
        ``segments``.

    Raises:
        ValueError: invalid shapes, labels, scheme or segment (the message names it), NaN /
            ``+inf`` potentials, or a sentence without any sequence of finite score.
    """
    emissions, transitions, mask, start, end = _prepare_all(
        emissions, transitions, mask, start, end
    )
    scheme = _span_scheme(scheme)
    B, _, L = emissions.shape
    index = _check_labels(labels, L)
    lengths = mask.sum(dim=1).tolist()
    device = emissions.device

    rows, starts, ends, first, inner, last, single = [], [], [], [], [], [], []
    for seg in segments:
        if len(seg) != 4:
            raise ValueError(f"a segment is (row, start, end, type), got {seg!r}")
        b, i, j, typ = seg
        b, i, j = int(b), int(i), int(j)
        if not 0 <= b < B:
            raise ValueError(f"segment {tuple(seg)!r}: row {b} outside [0, {B})")
        if not 0 <= i < j <= lengths[b]:
            raise ValueError(
                f"segment {tuple(seg)!r}: need 0 <= start < end <= {lengths[b]} (row {b}'s length)"
            )
        typ = str(typ)
        if not typ or typ == "O":
            raise ValueError(f"segment {tuple(seg)!r}: invalid entity type {typ!r}")

        def label(prefix: str, seg=seg, typ=typ) -> int:
            name = f"{prefix}-{typ}"
            if name not in index:
                raise ValueError(f"segment {tuple(seg)!r} needs label {name!r}, not in labels")
            return index[name]

        rows.append(b)
        starts.append(i)
        ends.append(j)
        if scheme == "bioes":
            single.append(label("S") if j - i == 1 else -1)
            first.append(label("B") if j - i > 1 else -1)
            inner.append(label("I") if j - i > 2 else -1)
            last.append(label("E") if j - i > 1 else -1)
        else:
            first.append(label("B"))
            # I-X is needed inside a longer segment; after a segment it is forbidden if it exists.
            i_label = f"I-{typ}"
            inner.append(label("I") if j - i > 1 else index.get(i_label, -1))
    N = len(rows)
    if N == 0:
        return emissions.new_zeros(0)

    with torch.no_grad():
        alpha = _forward_all(emissions, transitions, start)  # [B, T, L]
        beta = _backward_all(emissions, transitions, mask, end)  # [B, T, L]
        log_z = _log_partition(alpha, mask, end)  # [B]
        used = set(rows)
        for b, value in enumerate(log_z.tolist()):
            if value == float("-inf") and b in used:
                raise ValueError(f"row {b} has no label sequence of finite score (log Z = -inf)")

        def as_t(xs: list[int]) -> Tensor:
            return torch.tensor(xs, dtype=torch.long, device=device)

        # The segment constrains positions i .. k (k = j - 1; IOB2: j, "not I-X", when j is a
        # real position); outside them every label is allowed, so
        #   log Z_A = logsumexp_l ( α^A_k(l) + β_k(l) ),
        # α^A the forward recursion over the allowed labels, started from the unconstrained
        # α_{i-1} (the start scores at i = 0): O(segment length · L²) per segment.
        if scheme == "bioes":
            lasts = [j - 1 for j in ends]
        else:
            lasts = [j if j < lengths[b] else j - 1 for b, j in zip(rows, ends)]
        rows_t, starts_t, ends_t, lasts_t = as_t(rows), as_t(starts), as_t(ends), as_t(lasts)
        first_t, inner_t = as_t(first), as_t(inner)
        if scheme == "bioes":
            last_t, single_t = as_t(last), as_t(single)
        out = emissions.new_empty(N)
        lab = torch.arange(L, device=device)
        trans = transitions.unsqueeze(0)  # [1, L(k), L(l)]
        chunk = _chunk_rows(L)
        for lo in range(0, N, chunk):
            sl = slice(lo, lo + chunk)
            r, i_, j_, k_ = rows_t[sl], starts_t[sl], ends_t[sl], lasts_t[sl]
            a = None
            for step in range(int((k_ - i_).max()) + 1):
                t = i_ + step
                active = t <= k_
                t = torch.minimum(t, k_)
                # forced[n]: the one label allowed at t (-1: all); banned[n]: IOB2's I-X at j
                forced = torch.where(t < j_, inner_t[sl], -1)
                banned = torch.full_like(forced, -1)
                if scheme == "bioes":
                    forced = torch.where(t == j_ - 1, last_t[sl], forced)
                    forced = torch.where(t == i_, first_t[sl], forced)
                    forced = torch.where((t == i_) & (j_ - i_ == 1), single_t[sl], forced)
                else:
                    forced = torch.where(t == i_, first_t[sl], forced)
                    banned = torch.where(t == j_, inner_t[sl], banned)
                allowed = ((forced < 0).unsqueeze(1) | (lab == forced.unsqueeze(1))) & ~(
                    (lab == banned.unsqueeze(1)) & (banned >= 0).unsqueeze(1)
                )
                if a is None:
                    prev = alpha[r, (i_ - 1).clamp_min(0)]
                    into = torch.logsumexp(prev.unsqueeze(2) + trans, dim=1)
                    if start is not None:
                        into = torch.where((i_ == 0).unsqueeze(1), start.expand_as(into), into)
                    else:
                        into = into.masked_fill((i_ == 0).unsqueeze(1), 0.0)
                    a = (emissions[r, t] + into).masked_fill(~allowed, float("-inf"))
                    continue
                nxt = emissions[r, t] + torch.logsumexp(a.unsqueeze(2) + trans, dim=1)
                a = torch.where(active.unsqueeze(1), nxt.masked_fill(~allowed, float("-inf")), a)
            log_za = torch.logsumexp(a + beta[r, k_], dim=1)
            out[sl] = torch.exp(log_za - log_z[r])
        return out.clamp_(0.0, 1.0)


def entity_confidences(
    emissions: Tensor,
    transitions: Tensor,
    mask: Tensor | None,
    start: Tensor | None,
    end: Tensor | None,
    tags: Tensor | None,
    labels: Sequence[str],
    scheme: str = "bioes",
) -> list[list[tuple[int, int, str, float]]]:
    r"""The entities of ``tags`` with their exact probabilities under the CRF.

    Entities are read from the label strings of each row's real positions by
    :func:`~spacy_infnet.core.schemes.tags_to_spans`; each gets
    :func:`segment_probability` (all rows' entities in one batch).

    Args:
        emissions: ``[B, T, L]`` unary scores.
        transitions: ``[L, L]``; ``transitions[i, j]`` scores ``i -> j``.
        mask: ``[B, T]`` bool, left-aligned, or ``None`` (all real).
        start, end: ``[L]`` or ``None``.
        tags: ``[B, T]`` integer labels (padded positions ignored), or ``None`` for the Viterbi
            tags of the same potentials.
        labels: the ``L`` label strings in label-index order.
        scheme: ``"bioes"`` (alias ``"iobes"``) or ``"iob2"`` (alias ``"bio"``).

    Returns:
        One list per row of ``(start, end, type, probability)`` tuples (token offsets, ``end``
        exclusive; probability a float in ``[0, 1]``), in order of ``start``.

    Raises:
        ValueError: as :func:`token_confidence` and :func:`segment_probability`.
    """
    emissions, transitions, mask, start, end = _prepare_all(
        emissions, transitions, mask, start, end
    )
    canonical = _span_scheme(scheme)
    L = emissions.shape[2]
    names = list(labels)
    _check_labels(names, L)
    if tags is None:
        _, tags = viterbi(emissions, transitions, mask, start, end)
    tags = _check_tags(tags, mask, L)
    lengths = mask.sum(dim=1).tolist()
    spans: list[list[tuple[int, int, str]]] = []
    for b, row in enumerate(tags.tolist()):
        spans.append(tags_to_spans([names[k] for k in row[: lengths[b]]], canonical))
    segments = [(b, i, j, typ) for b, row in enumerate(spans) for i, j, typ in row]
    probs = segment_probability(
        emissions, transitions, mask, start, end, segments, names, canonical
    ).tolist()
    out: list[list[tuple[int, int, str, float]]] = [[] for _ in spans]
    for (b, i, j, typ), p in zip(segments, probs, strict=True):
        out[b].append((i, j, typ, float(p)))
    return out

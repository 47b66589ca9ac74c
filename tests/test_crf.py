"""Tests for spacy_infnet.core.crf and spacy_infnet.core.constraints.

Exact inference is checked against brute-force enumeration of all L^T label
sequences, and against pytorch-crf / torch-struct when they are installed.
"""

import itertools
import warnings

import pytest
import torch
import torch.nn.functional as F

from spacy_infnet.core import crf as crf_mod
from spacy_infnet.core.constraints import (
    TransitionConstraints,
    constraint_penalties,
    transition_constraints,
)
from spacy_infnet.core.crf import (
    crf_energy,
    crf_nll,
    log_partition,
    marginals,
    sequence_score,
    viterbi,
)

DT = torch.float64
NER_TYPES = ["PER", "LOC", "ORG", "MISC"]
BIOES_LABELS = ["O"] + [f"{p}-{t}" for t in NER_TYPES for p in "BIES"]  # L = 17
IOB2_LABELS = ["O"] + [f"{p}-{t}" for t in NER_TYPES for p in "BI"]  # L = 9


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def make_problem(B, T, L, lengths=None, seed=0, dtype=DT, with_start_end=True, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    em = torch.randn(B, T, L, generator=g, dtype=dtype) * scale
    W = torch.randn(L, L, generator=g, dtype=dtype) * scale
    s = torch.randn(L, generator=g, dtype=dtype) * scale if with_start_end else None
    e = torch.randn(L, generator=g, dtype=dtype) * scale if with_start_end else None
    if lengths is None:
        lengths = torch.randint(0, T + 1, (B,), generator=g)
    lengths = torch.as_tensor(lengths)
    mask = torch.arange(T)[None, :] < lengths[:, None]
    return em, W, s, e, mask, lengths


def all_sequences(L, n):
    """[L^n, n] long tensor of every label sequence of length n."""
    if n == 0:
        return torch.zeros(1, 0, dtype=torch.long)
    return torch.tensor(list(itertools.product(range(L), repeat=n)), dtype=torch.long)


def brute_scores(em_b, W, s, e, n):
    """Scores of all sequences of length n for one row (hand-written sum)."""
    L = W.shape[0]
    Y = all_sequences(L, n)
    if n == 0:
        return Y, torch.zeros(1, dtype=em_b.dtype)
    score = em_b[torch.arange(n), Y].sum(dim=1)  # Σ_t U[t, y_t]
    if n > 1:
        score = score + W[Y[:, :-1], Y[:, 1:]].sum(dim=1)
    if s is not None:
        score = score + s[Y[:, 0]]
    if e is not None:
        score = score + e[Y[:, -1]]
    return Y, score


def loop_score(em_b, W, s, e, tags_b, n):
    """Plain Python per-position score of one tag sequence."""
    total = 0.0
    for t in range(n):
        total += float(em_b[t, tags_b[t]])
        if t > 0:
            total += float(W[tags_b[t - 1], tags_b[t]])
    if n > 0:
        if s is not None:
            total += float(s[tags_b[0]])
        if e is not None:
            total += float(e[tags_b[n - 1]])
    return total


# ---------------------------------------------------------------------------
# brute force
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("L,T", [(2, 1), (2, 5), (3, 4), (3, 5), (4, 3), (4, 5)])
@pytest.mark.parametrize("with_start_end", [True, False])
def test_exact_inference_matches_brute_force(L, T, with_start_end):
    lengths = [T, 1, 0] + list(range(1, T + 1))
    B = len(lengths)
    em, W, s, e, mask, lengths = make_problem(
        B, T, L, lengths, seed=L * 10 + T, with_start_end=with_start_end
    )
    log_z = log_partition(em, W, mask, s, e)
    best, tags = viterbi(em, W, mask, s, e)
    assert log_z.shape == (B,) and best.shape == (B,) and tags.shape == (B, T)
    assert tags.dtype == torch.long
    for b in range(B):
        n = int(lengths[b])
        _, scores = brute_scores(em[b], W, s, e, n)
        torch.testing.assert_close(log_z[b], torch.logsumexp(scores, 0))
        torch.testing.assert_close(best[b], scores.max())
        # the returned path achieves the max (ties allowed)
        torch.testing.assert_close(
            torch.tensor(loop_score(em[b], W, s, e, tags[b], n), dtype=DT), scores.max()
        )
        assert (tags[b, n:] == 0).all()
    torch.testing.assert_close(sequence_score(em, W, tags, mask, s, e), best)


@pytest.mark.parametrize(
    "slab_max, buffer_elems", [(0, 1 << 30), (1 << 30, 1 << 30), (0, 1), (1 << 30, 1)]
)
def test_viterbi_code_paths(monkeypatch, slab_max, buffer_elems):
    """Both work-buffer layouts and batch chunking give the brute-force optimum."""
    monkeypatch.setattr(crf_mod, "_SLAB_LAYOUT_MAX_LABELS", slab_max)
    monkeypatch.setattr(crf_mod, "_CPU_MAX_BUFFER_ELEMS", buffer_elems)
    L, T = 3, 5
    lengths = [0, 5, 1, 3, 4, 2, 5]
    em, W, s, e, mask, lengths = make_problem(len(lengths), T, L, lengths, seed=7)
    best, tags = viterbi(em, W, mask, s, e)
    for b, n in enumerate(lengths.tolist()):
        _, scores = brute_scores(em[b], W, s, e, n)
        torch.testing.assert_close(best[b], scores.max())
    torch.testing.assert_close(sequence_score(em, W, tags, mask, s, e), best)
    assert (tags[~mask] == 0).all()
    # no mask at all
    best_nm, tags_nm = viterbi(em, W, None, s, e)
    for b in range(len(lengths)):
        _, scores = brute_scores(em[b], W, s, e, T)
        torch.testing.assert_close(best_nm[b], scores.max())
    torch.testing.assert_close(sequence_score(em, W, tags_nm, None, s, e), best_nm)


def test_sequence_score_matches_loop_and_ignores_padding():
    L, T = 5, 7
    em, W, s, e, mask, lengths = make_problem(9, T, L, [7, 1, 0, 3, 5, 6, 2, 4, 7], seed=3)
    g = torch.Generator().manual_seed(4)
    tags = torch.randint(0, L, (9, T), generator=g)
    ref = torch.tensor(
        [loop_score(em[b], W, s, e, tags[b], int(lengths[b])) for b in range(9)], dtype=DT
    )
    torch.testing.assert_close(sequence_score(em, W, tags, mask, s, e), ref)
    junk = tags.masked_fill(~mask, -100)  # padded positions may hold anything
    torch.testing.assert_close(sequence_score(em, W, junk, mask, s, e), ref)
    # without start / end and without a mask
    ref_plain = torch.tensor(
        [loop_score(em[b], W, None, None, tags[b], T) for b in range(9)], dtype=DT
    )
    torch.testing.assert_close(sequence_score(em, W, tags), ref_plain)


def test_nll_is_normalised():
    L, T = 3, 4
    em, W, s, e, mask, lengths = make_problem(5, T, L, [4, 3, 1, 0, 2], seed=11)
    for b, n in enumerate(lengths.tolist()):
        Y = all_sequences(L, n)
        tags = torch.zeros(Y.shape[0], T, dtype=torch.long)
        tags[:, :n] = Y
        em_b = em[b : b + 1].expand(Y.shape[0], T, L)
        mask_b = mask[b : b + 1].expand(Y.shape[0], T)
        nll = crf_nll(em_b, W, tags, mask_b, s, e)
        assert (nll >= -1e-9).all()
        torch.testing.assert_close(torch.exp(-nll).sum(), torch.tensor(1.0, dtype=DT))


# ---------------------------------------------------------------------------
# energy
# ---------------------------------------------------------------------------
def test_energy_of_viterbi_path_and_one_hot():
    L, T = 4, 6
    em, W, s, e, mask, _lengths = make_problem(8, T, L, [6, 0, 1, 2, 3, 4, 5, 6], seed=5)
    best, tags = viterbi(em, W, mask, s, e)
    y = F.one_hot(tags, L).to(DT)
    torch.testing.assert_close(crf_energy(em, W, y, mask, s, e), -best)
    g = torch.Generator().manual_seed(6)
    rand_tags = torch.randint(0, L, (8, T), generator=g)
    torch.testing.assert_close(
        crf_energy(em, W, F.one_hot(rand_tags, L).to(DT), mask, s, e),
        -sequence_score(em, W, rand_tags, mask, s, e),
    )
    # padded positions of y are ignored
    y_junk = y.clone()
    y_junk[~mask] = 123.0
    torch.testing.assert_close(crf_energy(em, W, y_junk, mask, s, e), -best)


@pytest.mark.parametrize("with_start_end", [True, False])
def test_relaxed_energy_is_expected_energy(with_start_end):
    L, T = 3, 4
    lengths = [4, 3, 1, 0, 2]
    em, W, s, e, mask, lengths = make_problem(
        5, T, L, lengths, seed=13, with_start_end=with_start_end
    )
    g = torch.Generator().manual_seed(14)
    y = torch.softmax(torch.randn(5, T, L, generator=g, dtype=DT), dim=-1).requires_grad_(True)
    energy = crf_energy(em, W, y, mask, s, e)
    for b, n in enumerate(lengths.tolist()):
        Y, scores = brute_scores(em[b], W, s, e, n)
        if n == 0:
            expected = torch.tensor(0.0, dtype=DT)
        else:
            prob = y[b, torch.arange(n), Y].prod(dim=1).detach()  # Π_t y_t[Y_t]
            expected = (prob * -scores).sum()
        torch.testing.assert_close(energy[b].detach(), expected)
    # differentiable w.r.t. y, zero gradient at padded positions
    energy.sum().backward()
    assert torch.isfinite(y.grad).all()
    assert (y.grad[~mask] == 0).all()


def test_gradcheck_energy_and_log_partition():
    L, T = 3, 4
    em, W, s, e, mask, _ = make_problem(3, T, L, [4, 2, 1], seed=21)
    y = torch.softmax(torch.randn(3, T, L, dtype=DT), -1)
    args = [t.clone().requires_grad_(True) for t in (em, W, y, s, e)]
    assert torch.autograd.gradcheck(
        lambda em_, W_, y_, s_, e_: crf_energy(em_, W_, y_, mask, s_, e_), args
    )
    args = [t.clone().requires_grad_(True) for t in (em, W, s, e)]
    assert torch.autograd.gradcheck(
        lambda em_, W_, s_, e_: log_partition(em_, W_, mask, s_, e_), args
    )


# ---------------------------------------------------------------------------
# gradients = marginals
# ---------------------------------------------------------------------------
def test_log_partition_gradient_is_marginals():
    L, T = 3, 5
    lengths = [5, 4, 1, 0, 3]
    em, W, s, e, mask, lengths = make_problem(5, T, L, lengths, seed=17)
    em = em.requires_grad_(True)
    log_partition(em, W, mask, s, e).sum().backward()
    grad = em.grad
    sums = grad.sum(-1)
    torch.testing.assert_close(sums[mask], torch.ones_like(sums[mask]))
    assert (grad[~mask] == 0).all()
    for b, n in enumerate(lengths.tolist()):
        if n == 0:
            continue
        Y, scores = brute_scores(em[b].detach(), W, s, e, n)
        p = torch.softmax(scores, 0)
        brute = torch.zeros(n, L, dtype=DT)
        for t in range(n):
            brute[t].index_add_(0, Y[:, t], p)
        torch.testing.assert_close(grad[b, :n], brute)
    torch.testing.assert_close(marginals(em.detach(), W, mask, s, e), grad)


# ---------------------------------------------------------------------------
# oracles
# ---------------------------------------------------------------------------
def test_against_pytorch_crf():
    torchcrf = pytest.importorskip("torchcrf")
    L, T, B = 6, 9, 12
    g = torch.Generator().manual_seed(31)
    lengths = torch.randint(1, T + 1, (B,), generator=g)  # pytorch-crf needs length >= 1
    lengths[0] = T
    em, W, s, e, mask, lengths = make_problem(B, T, L, lengths, seed=32)
    tags = torch.randint(0, L, (B, T), generator=g)
    ref = torchcrf.CRF(L, batch_first=True).to(DT)
    with torch.no_grad():
        ref.transitions.copy_(W)
        ref.start_transitions.copy_(s)
        ref.end_transitions.copy_(e)
    llh = ref(em, tags, mask=mask, reduction="none")
    torch.testing.assert_close(-crf_nll(em, W, tags, mask, s, e), llh.detach())
    decoded = ref.decode(em, mask=mask)
    _, ours = viterbi(em, W, mask, s, e)
    for b in range(B):
        n = int(lengths[b])
        assert ours[b, :n].tolist() == decoded[b]


def test_against_torch_struct():
    torch_struct = pytest.importorskip("torch_struct")
    L, T, B = 5, 8, 10
    g = torch.Generator().manual_seed(41)
    lengths = torch.randint(2, T + 1, (B,), generator=g)
    lengths[0] = T  # torch-struct requires max(lengths) == N
    em, W, s, e, mask, lengths = make_problem(B, T, L, lengths, seed=42)
    # log_potentials[b, n, z_{n+1}, z_n]
    lp = em[:, 1:, :, None] + W.t()[None, None]
    lp = lp.clone()
    lp[:, 0] += (em[:, 0] + s)[:, None, :]
    last_edge = lengths - 2
    lp[torch.arange(B), last_edge] += e[None, :, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dist = torch_struct.LinearChainCRF(lp, lengths=lengths)
        partition = dist.partition
        argmax = dist.argmax  # [B, N-1, C, C] one-hot edges
    torch.testing.assert_close(partition, log_partition(em, W, mask, s, e))
    _best, ours = viterbi(em, W, mask, s, e)
    for b in range(B):
        n = int(lengths[b])
        edges = argmax[b, : n - 1]
        assert torch.all(edges.sum((-1, -2)) == 1)
        path = [int(edges[0].sum(0).argmax())] + [
            int(edges[k].sum(1).argmax()) for k in range(n - 1)
        ]
        assert path == ours[b, :n].tolist()


# ---------------------------------------------------------------------------
# constraints
# ---------------------------------------------------------------------------
def test_bioes_constraints_hand_picked():
    c = transition_constraints(BIOES_LABELS, "bioes")
    assert isinstance(c, TransitionConstraints)
    idx = {lab: i for i, lab in enumerate(BIOES_LABELS)}

    def ok(a, b):
        return bool(c.transitions[idx[a], idx[b]])

    assert c.transitions.shape == (17, 17) and c.start.shape == (17,) and c.end.shape == (17,)
    assert c.transitions.dtype == torch.bool
    for a, b in [
        ("O", "O"),
        ("O", "B-PER"),
        ("O", "S-LOC"),
        ("B-PER", "I-PER"),
        ("B-PER", "E-PER"),
        ("I-PER", "I-PER"),
        ("I-ORG", "E-ORG"),
        ("E-PER", "B-LOC"),
        ("E-PER", "O"),
        ("S-PER", "S-PER"),
        ("S-MISC", "B-MISC"),
    ]:
        assert ok(a, b), (a, b)
    for a, b in [
        ("O", "I-PER"),
        ("O", "E-PER"),
        ("B-PER", "I-LOC"),
        ("B-PER", "O"),
        ("B-PER", "B-PER"),
        ("I-PER", "O"),
        ("I-PER", "E-LOC"),
        ("I-PER", "S-PER"),
        ("E-PER", "I-PER"),
        ("S-PER", "E-PER"),
        ("B-LOC", "S-LOC"),
    ]:
        assert not ok(a, b), (a, b)
    assert [bool(c.start[idx[x]]) for x in ["O", "B-PER", "S-PER", "I-PER", "E-PER"]] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert [bool(c.end[idx[x]]) for x in ["O", "E-PER", "S-PER", "B-PER", "I-PER"]] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert int(c.transitions.sum()) == 9 * 9 + 8 * 2
    # alias
    assert torch.equal(transition_constraints(BIOES_LABELS, "IOBES").transitions, c.transitions)


def test_iob2_and_none_constraints():
    c = transition_constraints(IOB2_LABELS, "iob2")
    idx = {lab: i for i, lab in enumerate(IOB2_LABELS)}
    T_ = c.transitions
    assert not T_[idx["O"], idx["I-PER"]]
    assert T_[idx["B-PER"], idx["I-PER"]] and T_[idx["I-PER"], idx["I-PER"]]
    assert not T_[idx["B-PER"], idx["I-LOC"]] and not T_[idx["I-LOC"], idx["I-PER"]]
    assert (
        T_[idx["I-PER"], idx["O"]] and T_[idx["B-PER"], idx["B-PER"]] and T_[idx["O"], idx["B-LOC"]]
    )
    assert not c.start[idx["I-PER"]] and c.start[idx["B-PER"]] and c.start[idx["O"]]
    assert c.end.all()
    assert torch.equal(transition_constraints(IOB2_LABELS, "bio").transitions, T_)
    n = transition_constraints(["a", "b", "c"], "none")
    assert n.transitions.all() and n.start.all() and n.end.all() and n.transitions.shape == (3, 3)


@pytest.mark.parametrize(
    "labels, scheme, bad",
    [
        (["O", "B-PER", "X-PER"], "bioes", "X-PER"),
        (["O", "BPER"], "bioes", "BPER"),
        (["O", "B-"], "bioes", "B-"),
        (["O", "E-PER"], "iob2", "E-PER"),
        (["o"], "bioes", "o"),
    ],
)
def test_unknown_label_raises(labels, scheme, bad):
    with pytest.raises(ValueError, match=bad):
        transition_constraints(labels, scheme)


def test_unknown_scheme_raises():
    with pytest.raises(ValueError, match="bilux"):
        transition_constraints(["O"], "bilux")


def test_constraint_penalties_values():
    c = transition_constraints(BIOES_LABELS)
    tr, st, en = constraint_penalties(c)
    assert tr.shape == (17, 17) and st.shape == (17,) and en.shape == (17,)
    assert tr.dtype == torch.get_default_dtype()
    assert torch.equal(tr == 0, c.transitions) and torch.equal(tr == -1e4, ~c.transitions)
    assert torch.equal(st == 0, c.start) and torch.equal(en == -1e4, ~c.end)
    tr64, _, _ = constraint_penalties(c, penalty=-50.0, dtype=torch.float64)
    assert tr64.dtype == torch.float64 and set(tr64.unique().tolist()) == {0.0, -50.0}


def _assert_valid_paths(tags, lengths, c):
    _B, T = tags.shape
    for_mask = torch.arange(T)[None] < lengths[:, None]
    pair_ok = c.transitions[tags[:, :-1], tags[:, 1:]] | ~for_mask[:, 1:]
    assert pair_ok.all()
    real = lengths > 0
    assert c.start[tags[real, 0]].all()
    last = tags.gather(1, (lengths - 1).clamp(min=0)[:, None]).squeeze(1)
    assert c.end[last[real]].all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_constrained_viterbi_never_forbidden(dtype):
    c = transition_constraints(BIOES_LABELS, "bioes")
    tr_pen, st_pen, en_pen = constraint_penalties(c, dtype=dtype)
    L, T, B = 17, 12, 64
    for seed in range(25):
        em, W, s, e, mask, lengths = make_problem(B, T, L, seed=100 + seed, dtype=dtype, scale=3.0)
        best, tags = viterbi(em, W + tr_pen, mask, s + st_pen, e + en_pen)
        _assert_valid_paths(tags, lengths, c)
        assert (best > -1e3).all()  # an allowed path always exists and was found
    # the forward algorithm with penalties matches brute force on a tiny label set
    small = ["O", "B-X", "I-X", "E-X", "S-X"]
    cs = transition_constraints(small)
    trs, sts, ens = constraint_penalties(cs, dtype=torch.float64)
    em, W, s, e, mask, lengths = make_problem(4, 4, 5, [4, 3, 1, 0], seed=9)
    best, tags = viterbi(em, W + trs, mask, s + sts, e + ens)
    _assert_valid_paths(tags, lengths, cs)
    log_z = log_partition(em, W + trs, mask, s + sts, e + ens)
    for b, n in enumerate(lengths.tolist()):
        _, scores = brute_scores(em[b], W + trs, s + sts, e + ens, n)
        torch.testing.assert_close(log_z[b], torch.logsumexp(scores, 0))
        torch.testing.assert_close(best[b], scores.max())


def test_float32_penalties_are_numerically_safe():
    c = transition_constraints(BIOES_LABELS, "bioes")
    tr_pen, st_pen, en_pen = constraint_penalties(c, dtype=torch.float32)
    em, W, s, e, mask, _lengths = make_problem(32, 20, 17, seed=55, dtype=torch.float32, scale=10.0)
    em.requires_grad_(True)
    W.requires_grad_(True)
    log_z = log_partition(em, W + tr_pen, mask, s + st_pen, e + en_pen)
    assert torch.isfinite(log_z).all()
    log_z.sum().backward()
    assert torch.isfinite(em.grad).all() and torch.isfinite(W.grad).all()
    # forbidden transitions get (essentially) no mass
    sums = em.grad.sum(-1)[mask]
    torch.testing.assert_close(sums, torch.ones_like(sums), atol=1e-4, rtol=0)
    # relaxed energies with penalties stay finite
    y = torch.softmax(torch.randn(32, 20, 17), -1).requires_grad_(True)
    energy = crf_energy(em, W + tr_pen, y, mask, s + st_pen, e + en_pen)
    energy.sum().backward()
    assert torch.isfinite(energy).all() and torch.isfinite(y.grad).all()
    # nll with gold-like (valid) tags is finite and non-negative
    _, tags = viterbi(em, W + tr_pen, mask, s + st_pen, e + en_pen)
    nll = crf_nll(em, W + tr_pen, tags, mask, s + st_pen, e + en_pen)
    assert torch.isfinite(nll).all() and (nll > -1e-2).all()


# ---------------------------------------------------------------------------
# dtypes, devices, shapes, edge cases
# ---------------------------------------------------------------------------
def test_float32_agrees_with_float64():
    em, W, s, e, mask, _ = make_problem(16, 10, 7, seed=61)
    args32 = [t.float() for t in (em, W)]
    lz32 = log_partition(args32[0], args32[1], mask, s.float(), e.float())
    assert lz32.dtype == torch.float32
    torch.testing.assert_close(
        lz32.double(), log_partition(em, W, mask, s, e), atol=1e-4, rtol=1e-5
    )
    b32, t32 = viterbi(args32[0], args32[1], mask, s.float(), e.float())
    b64, t64 = viterbi(em, W, mask, s, e)
    assert b32.dtype == torch.float32
    torch.testing.assert_close(b32.double(), b64, atol=1e-4, rtol=1e-5)
    assert torch.equal(t32, t64)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    em, W, s, e, mask, _ = make_problem(16, 10, 7, seed=62)
    dev = [t.cuda() for t in (em, W, s, e, mask)]
    torch.testing.assert_close(
        log_partition(*dev[:2], dev[4], *dev[2:4]).cpu(), log_partition(em, W, mask, s, e)
    )
    b, t = viterbi(*dev[:2], dev[4], *dev[2:4])
    b_ref, t_ref = viterbi(em, W, mask, s, e)
    torch.testing.assert_close(b.cpu(), b_ref)
    assert torch.equal(t.cpu(), t_ref)


def test_edge_cases():
    L = 4
    # all rows empty
    em, W, s, e, mask, _ = make_problem(3, 5, L, [0, 0, 0], seed=71)
    best, tags = viterbi(em, W, mask, s, e)
    assert torch.equal(best, torch.zeros(3, dtype=DT)) and torch.equal(
        tags, torch.zeros(3, 5, dtype=torch.long)
    )
    assert torch.equal(log_partition(em, W, mask, s, e), torch.zeros(3, dtype=DT))
    assert torch.equal(sequence_score(em, W, tags, mask, s, e), torch.zeros(3, dtype=DT))
    # T = 0 and B = 0
    em0 = torch.zeros(2, 0, L, dtype=DT)
    assert viterbi(em0, W)[1].shape == (2, 0)
    assert log_partition(em0, W).shape == (2,)
    assert viterbi(torch.zeros(0, 3, L, dtype=DT), W)[1].shape == (0, 3)
    # trailing padding columns beyond the longest row
    em, W, s, e, mask, _lengths = make_problem(3, 6, L, [2, 3, 1], seed=72)
    best, tags = viterbi(em, W, mask, s, e)
    b2, t2 = viterbi(em[:, :3], W, mask[:, :3], s, e)
    torch.testing.assert_close(best, b2)
    assert torch.equal(tags[:, :3], t2) and (tags[:, 3:] == 0).all()
    # integer (0/1) masks are accepted
    torch.testing.assert_close(
        log_partition(em, W, mask.long(), s, e), log_partition(em, W, mask, s, e)
    )
    # viterbi does not build a graph
    b, _ = viterbi(em.clone().requires_grad_(True), W, mask, s, e)
    assert not b.requires_grad


def test_shape_errors_name_shapes():
    em = torch.zeros(2, 3, 4)
    W = torch.zeros(4, 4)
    with pytest.raises(ValueError, match=r"\(5, 5\)"):
        log_partition(em, torch.zeros(5, 5))
    with pytest.raises(ValueError, match=r"\[B, T, L\]"):
        viterbi(torch.zeros(3, 4), W)
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        viterbi(em, W, mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="start_transitions"):
        crf_nll(em, W, torch.zeros(2, 3, dtype=torch.long), start_transitions=torch.zeros(3))
    with pytest.raises(ValueError, match="end_transitions"):
        crf_energy(em, W, torch.zeros(2, 3, 4), end_transitions=torch.zeros(5))
    with pytest.raises(ValueError, match=r"\(2, 3, 5\)"):
        crf_energy(em, W, torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        sequence_score(em, W, torch.zeros(3, 3, dtype=torch.long))


def test_module_does_not_import_spacy():
    import ast
    import inspect

    from spacy_infnet.core import constraints as cons_mod

    for mod in (crf_mod, cons_mod):
        tree = ast.parse(inspect.getsource(mod))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0] in ("spacy", "thinc") for n in names), names


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_large_label_forward_matches_logsumexp_recursion(dtype, monkeypatch):
    """From _MATMUL_FORWARD_MIN_LABELS labels on, the forward algorithm runs as a product in
    probability space; it must agree with the log-space recursion (values and gradients), also
    with −1e4 forbidden transitions, masks and float32."""
    import spacy_infnet.core.crf as crf_module

    g = torch.Generator().manual_seed(3)
    B, T, L = 6, 9, crf_module._MATMUL_FORWARD_MIN_LABELS + 16
    em = (3 * torch.randn(B, T, L, generator=g, dtype=torch.float64)).to(dtype)
    tr = (2 * torch.randn(L, L, generator=g, dtype=torch.float64)).to(dtype)
    tr[:, :10] = -1e4  # the first ten labels can only start a sequence
    st = torch.randn(L, generator=g, dtype=torch.float64).to(dtype)
    en = torch.randn(L, generator=g, dtype=torch.float64).to(dtype)
    mask = torch.arange(T)[None] < torch.tensor([9, 1, 5, 0, 7, 2])[:, None]

    def run():
        params = [p.clone().requires_grad_(True) for p in (em, tr, st, en)]
        lz = log_partition(params[0], params[1], mask, params[2], params[3])
        grads = torch.autograd.grad(lz.sum(), params)
        return lz, grads

    fast, fast_grads = run()
    monkeypatch.setattr(crf_module, "_MATMUL_FORWARD_MIN_LABELS", 10**9)
    slow, slow_grads = run()
    tol = {"rtol": 1e-5, "atol": 1e-4} if dtype == torch.float32 else {}
    torch.testing.assert_close(fast, slow, **tol)
    for a, b in zip(fast_grads, slow_grads):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, **tol)

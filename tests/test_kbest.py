"""Tests for spacy_infnet.core.kbest: exact k-best Viterbi against brute-force enumeration."""

import itertools
import math

import pytest
import torch

from spacy_infnet.core.constraints import constraint_penalties, transition_constraints
from spacy_infnet.core.crf import sequence_score, viterbi
from spacy_infnet.core.kbest import kbest_viterbi

DT = torch.float64
BIOES_LABELS = ["O", "B-PER", "I-PER", "E-PER", "S-PER"]  # L = 5


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def make_problem(B, T, L, lengths=None, seed=0, with_start_end=True, dtype=DT):
    g = torch.Generator().manual_seed(seed)
    em = torch.randn(B, T, L, generator=g, dtype=dtype)
    trans = torch.randn(L, L, generator=g, dtype=dtype)
    start = torch.randn(L, generator=g, dtype=dtype) if with_start_end else None
    end = torch.randn(L, generator=g, dtype=dtype) if with_start_end else None
    mask = None
    if lengths is not None:
        mask = torch.arange(T).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return em, trans, mask, start, end


def brute_force(em, trans, mask, start, end, allowed=None):
    """Per row: all (score, tags) with finite score, best first (ties: lexicographic)."""
    B, T, L = em.shape
    lengths = [T] * B if mask is None else mask.sum(1).tolist()
    rows = []
    for b in range(B):
        n = lengths[b]
        seqs = [s for s in itertools.product(range(L), repeat=n) if allowed is None or allowed(s)]
        if not seqs:
            rows.append([])
            continue
        tags = torch.zeros(len(seqs), T, dtype=torch.long)
        if n:
            tags[:, :n] = torch.tensor(seqs, dtype=torch.long)
        row_mask = None if mask is None else mask[b : b + 1].expand(len(seqs), T)
        scores = sequence_score(
            em[b : b + 1].expand(len(seqs), T, L), trans, tags, row_mask, start, end
        )
        order = torch.sort(scores, descending=True, stable=True).indices
        rows.append([(float(scores[i]), tags[i]) for i in order if math.isfinite(scores[i])])
    return rows


def check_against_brute_force(
    em, trans, k, mask, start, end, allowed=None, check_tags=True, **kwargs
):
    scores, tags = kbest_viterbi(em, trans, k, mask, start, end, **kwargs)
    B, T, _ = em.shape
    assert scores.shape == (B, k) and scores.dtype == em.dtype
    assert tags.shape == (B, k, T) and tags.dtype == torch.long
    for b, ref in enumerate(brute_force(em, trans, mask, start, end, allowed)):
        m = min(k, len(ref))
        ref_scores = torch.tensor([s for s, _ in ref[:m]], dtype=DT)
        torch.testing.assert_close(scores[b, :m], ref_scores, rtol=0, atol=1e-10)
        if check_tags:  # random continuous potentials: no ties, so the order is unique
            for r in range(m):
                assert torch.equal(tags[b, r], ref[r][1]), (b, r)
        assert torch.all(scores[b, m:] == -math.inf)
        assert torch.all(tags[b, m:] == 0)
    # The reported scores are the scores of the reported sequences.
    finite = torch.isfinite(scores)
    flat_tags = tags.reshape(B * k, T)

    def rep(x):
        return None if x is None else x.repeat_interleave(k, dim=0)

    rescored = sequence_score(rep(em), trans, flat_tags, rep(mask), start, end).reshape(B, k)
    torch.testing.assert_close(rescored[finite], scores[finite], rtol=0, atol=1e-10)
    assert torch.all(scores[:, :-1] >= scores[:, 1:])
    return scores, tags


def bioes_allowed(labels):
    c = transition_constraints(labels, "bioes")

    def allowed(seq):
        if not seq:
            return True
        return (
            bool(c.start[seq[0]])
            and bool(c.end[seq[-1]])
            and all(bool(c.transitions[a, b]) for a, b in itertools.pairwise(seq))
        )

    return allowed


# ---------------------------------------------------------------------------
# brute force
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("with_start_end", [True, False])
@pytest.mark.parametrize("T,L", [(1, 3), (3, 3), (4, 4), (5, 3)])
def test_matches_brute_force(seed, with_start_end, T, L):
    em, trans, mask, start, end = make_problem(3, T, L, seed=seed, with_start_end=with_start_end)
    for k in (1, 2, 7):
        check_against_brute_force(em, trans, k, mask, start, end)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("with_start_end", [True, False])
def test_padded_batch(seed, with_start_end):
    lengths = [4, 2, 0, 1, 3, 4]
    em, trans, mask, start, end = make_problem(6, 4, 3, lengths, seed, with_start_end)
    for k in (1, 4, 10):  # k = 10 > 3**2 and 3**1 sequences of the short rows
        scores, tags = check_against_brute_force(em, trans, k, mask, start, end)
        assert scores[2, 0] == 0 and torch.all(scores[2, 1:] == -math.inf)
        assert torch.all(tags[2] == 0)
        assert torch.all(tags.masked_select(~mask.unsqueeze(1).expand_as(tags)) == 0)


def test_k_larger_than_number_of_sequences():
    em, trans, mask, start, end = make_problem(2, 3, 3, seed=3)
    scores, tags = check_against_brute_force(em, trans, 40, mask, start, end)  # 27 sequences
    assert torch.isfinite(scores[:, :27]).all() and torch.all(scores[:, 27:] == -math.inf)
    # 27 distinct sequences per row
    for b in range(2):
        assert len({tuple(t.tolist()) for t in tags[b, :27]}) == 27


def test_padding_beyond_longest_row_and_all_empty():
    em, trans, mask, start, end = make_problem(3, 5, 3, [2, 0, 1], seed=4)
    check_against_brute_force(em, trans, 5, mask, start, end)
    # every row empty
    scores, tags = kbest_viterbi(em, trans, 3, torch.zeros(3, 5, dtype=torch.bool), start, end)
    assert torch.equal(scores, torch.tensor([[0.0, -math.inf, -math.inf]] * 3, dtype=DT))
    assert torch.equal(tags, torch.zeros(3, 3, 5, dtype=torch.long))
    # T = 0 and B = 0
    scores, tags = kbest_viterbi(em[:, :0], trans, 2, None, start, end)
    assert scores.tolist() == [[0.0, -math.inf]] * 3 and tags.shape == (3, 2, 0)
    scores, tags = kbest_viterbi(em[:0], trans, 2)
    assert scores.shape == (0, 2) and tags.shape == (0, 2, 5)


def test_minus_inf_potentials():
    em, trans, mask, start, end = make_problem(3, 4, 3, [4, 3, 2], seed=5)
    trans = trans.clone()
    trans[0, 1] = trans[2, 2] = trans[1, 0] = -math.inf
    start = start.clone()
    start[1] = -math.inf
    end = end.clone()
    end[0] = -math.inf

    def allowed(seq):
        bad = {(0, 1), (2, 2), (1, 0)}
        return seq[0] != 1 and seq[-1] != 0 and not any(p in bad for p in itertools.pairwise(seq))

    for k in (1, 5, 81):
        check_against_brute_force(em, trans, k, mask, start, end, allowed)


# ---------------------------------------------------------------------------
# BIOES constraints
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_bioes_constraints(seed):
    L = len(BIOES_LABELS)
    em, trans, mask, start, end = make_problem(5, 4, L, [4, 3, 1, 0, 2], seed)
    pen_t, pen_s, pen_e = constraint_penalties(
        transition_constraints(BIOES_LABELS, "bioes"), dtype=DT
    )
    allowed = bioes_allowed(BIOES_LABELS)
    n_valid = [
        len(brute_force(em[b : b + 1], trans, mask[b : b + 1], start, end, allowed)[0])
        for b in range(5)
    ]
    for k in (1, 6, 200):  # 200 > number of valid sequences of every row
        scores, tags = check_against_brute_force(
            em, trans + pen_t, k, mask, start + pen_s, end + pen_e, allowed, forbidden_below=-1e3
        )
        for b in range(5):
            m = min(k, n_valid[b])
            assert torch.isfinite(scores[b, :m]).all() and torch.all(scores[b, m:] == -math.inf)
            n = int(mask[b].sum())
            for r in range(m):
                assert allowed(tuple(tags[b, r, :n].tolist()))
        # The same constraints given as -inf need no threshold.
        inf_t, inf_s, inf_e = (p.masked_fill(p < 0, -math.inf) for p in (pen_t, pen_s, pen_e))
        scores_inf, tags_inf = kbest_viterbi(em, trans + inf_t, k, mask, start + inf_s, end + inf_e)
        assert torch.equal(scores_inf, scores) and torch.equal(tags_inf, tags)


def test_bioes_finite_penalty_without_threshold_returns_invalid_tail():
    """Without ``forbidden_below`` the -1e4 penalties are ordinary (very low) scores."""
    L = len(BIOES_LABELS)
    em, trans, mask, start, end = make_problem(1, 2, L, seed=6)
    pen_t, pen_s, pen_e = constraint_penalties(
        transition_constraints(BIOES_LABELS, "bioes"), dtype=DT
    )
    scores, tags = check_against_brute_force(
        em, trans + pen_t, L**2, mask, start + pen_s, end + pen_e
    )
    assert torch.isfinite(scores).all()
    n_valid = sum(bioes_allowed(BIOES_LABELS)(tuple(t.tolist())) for t in tags[0])
    assert n_valid < L**2
    assert scores[0, n_valid - 1] > -1e3 > scores[0, n_valid]


# ---------------------------------------------------------------------------
# k = 1 is Viterbi
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_k1_equals_viterbi(seed):
    em, trans, mask, start, end = make_problem(6, 9, 7, [9, 5, 0, 1, 9, 3], seed)
    best, path = viterbi(em, trans, mask, start, end)
    for k in (1, 3):
        scores, tags = kbest_viterbi(em, trans, k, mask, start, end)
        assert torch.equal(scores[:, 0], best)
        assert torch.equal(tags[:, 0], path)


@pytest.mark.parametrize("seed", [0, 1])
def test_ties_follow_viterbi(seed):
    """Integer potentials have many ties; they are broken as viterbi breaks them."""
    g = torch.Generator().manual_seed(seed)
    em = torch.randint(-1, 2, (8, 6, 4), generator=g).to(DT)
    trans = torch.randint(-1, 2, (4, 4), generator=g).to(DT)
    start = torch.randint(-1, 2, (4,), generator=g).to(DT)
    mask = torch.arange(6).unsqueeze(0) < torch.tensor([6, 6, 5, 4, 3, 2, 1, 0]).unsqueeze(1)
    best, path = viterbi(em, trans, mask, start, start)
    for k in (1, 4):
        scores, tags = kbest_viterbi(em, trans, k, mask, start, start)
        assert torch.equal(scores[:, 0], best)
        assert torch.equal(tags[:, 0], path)
    # With ties the order of equal scores is not unique, but the score lists are.
    scores, tags = check_against_brute_force(
        em[:3, :4], trans, 12, None, start, start, check_tags=False
    )
    assert (scores[:, :-1] == scores[:, 1:]).any()  # there are ties
    for b in range(3):
        assert len({tuple(t.tolist()) for t in tags[b]}) == 12


# ---------------------------------------------------------------------------
# API details
# ---------------------------------------------------------------------------
def test_errors():
    em, trans, *_ = make_problem(2, 3, 3)
    for k in (0, -1, 1.5, True, None):
        with pytest.raises(ValueError, match="k must be"):
            kbest_viterbi(em, trans, k)
    with pytest.raises(ValueError, match="transitions"):
        kbest_viterbi(em, trans[:2], 2)
    with pytest.raises(ValueError, match="mask"):
        kbest_viterbi(em, trans, 2, mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="start_transitions"):
        kbest_viterbi(em, trans, 2, start_transitions=torch.zeros(4))
    with pytest.raises(ValueError, match="emissions"):
        kbest_viterbi(em[0], trans, 2)


def test_dtype_promotion_no_grad_and_chunking(monkeypatch):
    em, trans, mask, start, end = make_problem(5, 4, 3, [4, 2, 3, 1, 0], seed=7)
    ref_scores, ref_tags = kbest_viterbi(em, trans, 5, mask, start, end)
    # float32 emissions + float64 transitions -> float64; no autograd graph
    em32 = em.float().requires_grad_(True)
    scores, tags = kbest_viterbi(em32, trans.requires_grad_(True), 5, mask, start, end)
    assert scores.dtype == DT and not scores.requires_grad
    scores32, _ = kbest_viterbi(em.float(), trans.float(), 5, mask.long(), start.float(), None)
    assert scores32.dtype == torch.float32
    # split batches give the same result
    from spacy_infnet.core import kbest as kbest_mod

    monkeypatch.setattr(kbest_mod, "_CPU_MAX_BUFFER_ELEMS", 1)
    scores, tags = kbest_viterbi(em, trans.detach(), 5, mask, start, end)
    assert torch.equal(scores, ref_scores) and torch.equal(tags, ref_tags)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    em, trans, mask, start, end = make_problem(4, 5, 4, [5, 3, 0, 2], seed=8)
    ref = kbest_viterbi(em, trans, 6, mask, start, end)
    out = kbest_viterbi(em.cuda(), trans.cuda(), 6, mask.cuda(), start.cuda(), end.cuda())
    assert out[0].device.type == "cuda"
    torch.testing.assert_close(out[0].cpu(), ref[0])
    assert torch.equal(out[1].cpu(), ref[1])

"""Tests for spacy_infnet.core.confidence: token marginals and exact segment probabilities.

Everything is checked against brute-force enumeration of all L^n label sequences of each row
(scored with crf.sequence_score, normalised by a softmax), in float64.
"""

import itertools

import pytest
import torch

from spacy_infnet.core import confidence as conf_mod
from spacy_infnet.core.confidence import (
    constrained_log_partition,
    entity_confidences,
    segment_probability,
    token_confidence,
)
from spacy_infnet.core.constraints import constraint_penalties, transition_constraints
from spacy_infnet.core.crf import log_partition, marginals, sequence_score, viterbi
from spacy_infnet.core.schemes import tags_to_spans

DT = torch.float64
TYPES = ["PER", "LOC"]
BIOES = ["O"] + [f"{p}-{t}" for t in TYPES for p in "BIES"]  # L = 9
IOB2 = ["O"] + [f"{p}-{t}" for t in TYPES for p in "BI"]  # L = 5
LABELS = {"bioes": BIOES, "iob2": IOB2}
# Row lengths of the padded batches: T = 4 for BIOES (9^4 sequences), 5 for IOB2 (5^5).
LENGTHS = {"bioes": [4, 2, 0, 1, 3], "iob2": [5, 3, 1, 0, 4]}


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def make_problem(scheme, constrained, seed=0, scale=1.5):
    """Random potentials of a padded batch; with ``constrained`` the scheme's hard constraints
    are added as -1e4 penalties, as BLSTMCRFEnergy.potentials does."""
    labels, lengths = LABELS[scheme], torch.tensor(LENGTHS[scheme])
    B, T, L = len(lengths), int(lengths.max()), len(labels)
    g = torch.Generator().manual_seed(seed)
    em = torch.randn(B, T, L, generator=g, dtype=DT) * scale
    W = torch.randn(L, L, generator=g, dtype=DT) * scale
    s = torch.randn(L, generator=g, dtype=DT) * scale
    e = torch.randn(L, generator=g, dtype=DT) * scale
    if constrained:
        pen_t, pen_s, pen_e = constraint_penalties(transition_constraints(labels, scheme), dtype=DT)
        W, s, e = W + pen_t, s + pen_s, e + pen_e
    mask = torch.arange(T)[None, :] < lengths[:, None]
    return em, W, s, e, mask


def brute(em_row, W, s, e, n):
    """(sequences [L^n, n], probabilities [L^n]) of one row of length n by enumeration."""
    L = W.shape[0]
    seqs = torch.tensor(list(itertools.product(range(L), repeat=n)), dtype=torch.long)
    k = seqs.shape[0]
    scores = sequence_score(em_row[:n].unsqueeze(0).expand(k, n, L), W, seqs, None, s, e)
    return seqs, torch.softmax(scores, dim=0)


def contains(seqs, labels, scheme, i, j, typ):
    """[K] bool: which sequences hold the segment (i, j, typ) in the scheme's well-formed
    encoding (written from the scheme definition, independently of the implementation)."""
    idx = {lab: k for k, lab in enumerate(labels)}
    n = seqs.shape[1]
    if scheme == "bioes":
        names = [f"S-{typ}"] if j - i == 1 else [f"B-{typ}"] + [f"I-{typ}"] * (j - i - 2)
        names += [] if j - i == 1 else [f"E-{typ}"]
        want = torch.tensor([idx[x] for x in names])
        return (seqs[:, i:j] == want).all(dim=1)
    want = torch.tensor([idx[f"B-{typ}"]] + [idx[f"I-{typ}"]] * (j - i - 1))
    hit = (seqs[:, i:j] == want).all(dim=1)
    if j < n:
        hit &= seqs[:, j] != idx[f"I-{typ}"]
    return hit


def all_segments(lengths):
    return [
        (b, i, j, typ)
        for b, n in enumerate(lengths)
        for i in range(n)
        for j in range(i + 1, n + 1)
        for typ in TYPES
    ]


# ---------------------------------------------------------------------------
# token confidence
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["bioes", "iob2"])
@pytest.mark.parametrize("constrained", [False, True])
def test_token_confidence_matches_brute_force(scheme, constrained):
    em, W, s, e, mask = make_problem(scheme, constrained, seed=1)
    B, T, L = em.shape
    tags = torch.randint(0, L, (B, T), generator=torch.Generator().manual_seed(2))
    tags = tags.masked_fill(~mask, -100)  # padded values are ignored
    got = token_confidence(em, W, mask, s, e, tags)
    got_viterbi = token_confidence(em, W, mask, s, e)
    _, vit = viterbi(em, W, mask, s, e)
    assert got.shape == (B, T) and got.dtype == DT
    for b, n in enumerate(LENGTHS[scheme]):
        assert torch.all(got[b, n:] == 0) and torch.all(got_viterbi[b, n:] == 0)
        if n == 0:
            continue
        seqs, p = brute(em[b], W, s, e, n)
        for t in range(n):
            want = p[seqs[:, t] == tags[b, t]].sum()
            torch.testing.assert_close(got[b, t], want, atol=1e-12, rtol=0)
            want_v = p[seqs[:, t] == vit[b, t]].sum()
            torch.testing.assert_close(got_viterbi[b, t], want_v, atol=1e-12, rtol=0)
    assert torch.all((got >= 0) & (got <= 1))


def test_token_confidence_without_mask_or_start_end():
    em, W, _, _, _ = make_problem("iob2", False, seed=3)
    em = em[:1, :4]
    tags = torch.tensor([[0, 1, 2, 3]])
    seqs, p = brute(em[0], W, None, None, 4)
    got = token_confidence(em, W, tags=tags)
    want = torch.stack([p[seqs[:, t] == tags[0, t]].sum() for t in range(4)])
    torch.testing.assert_close(got[0], want, atol=1e-12, rtol=0)


# ---------------------------------------------------------------------------
# segment probability
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["bioes", "iob2"])
@pytest.mark.parametrize("constrained", [False, True])
def test_segment_probability_matches_brute_force(scheme, constrained):
    labels = LABELS[scheme]
    em, W, s, e, mask = make_problem(scheme, constrained, seed=4)
    segments = all_segments(LENGTHS[scheme])
    got = segment_probability(em, W, mask, s, e, segments, labels, scheme)
    assert got.shape == (len(segments),) and got.dtype == DT
    assert torch.all((got >= 0) & (got <= 1))
    cache = {}
    for (b, i, j, typ), value in zip(segments, got, strict=True):
        if b not in cache:
            cache[b] = brute(em[b], W, s, e, LENGTHS[scheme][b])
        seqs, p = cache[b]
        want = p[contains(seqs, labels, scheme, i, j, typ)].sum()
        torch.testing.assert_close(value, want, atol=1e-12, rtol=1e-9)


@pytest.mark.parametrize("scheme", ["bioes", "iob2"])
def test_segment_probability_is_not_the_product_of_token_marginals(scheme):
    """Emissions that favour one 3-token PER entity: the constraints correlate the tokens, so
    the segment probability differs from the product of its token marginals."""
    labels = LABELS[scheme]
    idx = {lab: k for k, lab in enumerate(labels)}
    inner = "I-PER" if scheme == "iob2" else "E-PER"
    em = torch.zeros(1, 4, len(labels), dtype=DT)
    for t, lab in enumerate(["B-PER", "I-PER", inner]):
        em[0, t, idx[lab]] = 2.0
    W, s, e = constraint_penalties(transition_constraints(labels, scheme), dtype=DT)
    got = segment_probability(em, W, None, s, e, [(0, 0, 3, "PER")], labels, scheme)
    m = marginals(em, W, None, s, e)[0]
    product = m[0, idx["B-PER"]] * m[1, idx["I-PER"]] * m[2, idx[inner]]
    seqs, p = brute(em[0], W, s, e, 4)
    want = p[contains(seqs, labels, scheme, 0, 3, "PER")].sum()
    torch.testing.assert_close(got[0], want, atol=1e-12, rtol=1e-9)
    assert abs(float(got[0]) - float(product)) > 0.1 * float(got[0])


def test_single_token_bioes_segment_is_the_s_marginal():
    em, W, s, e, mask = make_problem("bioes", True, seed=6)
    segments = [(b, t, t + 1, "LOC") for b, n in enumerate(LENGTHS["bioes"]) for t in range(n)]
    got = segment_probability(em, W, mask, s, e, segments, BIOES, "bioes")
    m = marginals(em, W, mask, s, e)
    want = torch.stack([m[b, t, BIOES.index("S-LOC")] for b, t, _, _ in segments])
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


@pytest.mark.parametrize("scheme", ["bioes", "iob2"])
def test_constrained_probabilities_match_the_lenient_span_reader(scheme):
    """Under the hard constraints, the well-formed encoding carries all the mass, so the
    probability equals that of every sequence from which tags_to_spans reads the segment."""
    labels = LABELS[scheme]
    em, W, s, e, mask = make_problem(scheme, True, seed=7)
    b, n = 0, LENGTHS[scheme][0]
    seqs, p = brute(em[b], W, s, e, n)
    decoded = [set(tags_to_spans([labels[k] for k in row], scheme)) for row in seqs.tolist()]
    segments = all_segments([n])
    got = segment_probability(em, W, mask, s, e, segments, labels, scheme)
    for (_, i, j, typ), value in zip(segments, got, strict=True):
        hit = torch.tensor([(i, j, typ) in spans for spans in decoded])
        torch.testing.assert_close(value, p[hit].sum(), atol=1e-12, rtol=1e-9)


def test_probabilities_of_segments_covering_a_token_sum_to_its_entity_marginal():
    """Segments are disjoint events at a position: Σ_{segments ∋ t} P = 1 - p(y_t = O)
    (exact under the hard BIOES constraints, here for a longer sentence than brute force)."""
    n = 9
    g = torch.Generator().manual_seed(8)
    L = len(BIOES)
    em = torch.randn(1, n, L, generator=g, dtype=DT)
    pen_t, pen_s, pen_e = constraint_penalties(transition_constraints(BIOES, "bioes"), dtype=DT)
    W = torch.randn(L, L, generator=g, dtype=DT) + pen_t
    segments = all_segments([n])
    got = segment_probability(em, W, None, pen_s, pen_e, segments, BIOES, "bioes")
    m = marginals(em, W, None, pen_s, pen_e)[0]
    for t in range(n):
        covering = sum(
            float(p) for (_, i, j, _), p in zip(segments, got, strict=True) if i <= t < j
        )
        assert covering == pytest.approx(1 - float(m[t, 0]), abs=1e-12)


def test_minus_inf_constraints_agree_with_penalties_and_give_exact_zeros():
    em, W, s, e, mask = make_problem("bioes", False, seed=9)
    cons = transition_constraints(BIOES, "bioes")
    pen = constraint_penalties(cons, dtype=DT)
    ninf = constraint_penalties(cons, penalty=float("-inf"), dtype=DT)
    segments = all_segments(LENGTHS["bioes"])
    with_pen = segment_probability(em, W + pen[0], mask, s + pen[1], e + pen[2], segments, BIOES)
    with_inf = segment_probability(em, W + ninf[0], mask, s + ninf[1], e + ninf[2], segments, BIOES)
    assert not torch.isnan(with_inf).any()
    torch.testing.assert_close(with_inf, with_pen, atol=1e-12, rtol=0)
    # An impossible segment: B-PER may not start a sentence.
    s_inf = (s + ninf[1]).clone()
    s_inf[BIOES.index("B-PER")] = float("-inf")
    seg = [(0, 0, 2, "PER"), (0, 0, 1, "PER")]
    got = segment_probability(em, W + ninf[0], mask, s_inf, e + ninf[2], seg, BIOES)
    assert got[0].item() == 0.0 and 0.0 < got[1].item() < 1.0


def test_chunked_rows_give_the_same_probabilities(monkeypatch):
    em, W, s, e, mask = make_problem("iob2", True, seed=10)
    segments = all_segments(LENGTHS["iob2"])
    once = segment_probability(em, W, mask, s, e, segments, IOB2, "bio")
    monkeypatch.setattr(conf_mod, "_MAX_BUFFER_ELEMS", 3 * len(IOB2) ** 2)  # 3 rows a chunk
    chunked = segment_probability(em, W, mask, s, e, segments, IOB2, "bio")
    torch.testing.assert_close(chunked, once, atol=1e-14, rtol=0)


def test_float32_is_close_to_float64():
    em, W, s, e, mask = make_problem("bioes", True, seed=11)
    segments = all_segments(LENGTHS["bioes"])
    exact = segment_probability(em, W, mask, s, e, segments, BIOES)
    f32 = [x.float() for x in (em, W, s, e)]
    approx = segment_probability(f32[0], f32[1], mask, f32[2], f32[3], segments, BIOES)
    assert approx.dtype == torch.float32
    torch.testing.assert_close(approx.double(), exact, atol=1e-5, rtol=0)


def test_constrained_log_partition():
    em, W, s, e, mask = make_problem("bioes", True, seed=12)
    torch.testing.assert_close(
        constrained_log_partition(em, W, mask, s, e), log_partition(em, W, mask, s, e)
    )
    allowed = torch.ones(em.shape, dtype=torch.bool)
    allowed[:, :, 0] = False  # no O anywhere
    b, n = 0, LENGTHS["bioes"][0]
    seqs, _ = brute(em[b], W, s, e, n)
    k = seqs.shape[0]
    scores = sequence_score(em[b, :n].expand(k, n, -1), W, seqs, None, s, e)
    want = torch.logsumexp(scores[(seqs != 0).all(dim=1)], dim=0)
    got = constrained_log_partition(em, W, mask, s, e, allowed)
    torch.testing.assert_close(got[b], want)
    assert got[2].item() == 0.0  # zero-length row
    none = torch.zeros(em.shape, dtype=torch.bool)
    assert torch.isneginf(constrained_log_partition(em, W, mask, s, e, none)[0])


# ---------------------------------------------------------------------------
# entity confidences
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["bioes", "iob2"])
def test_entity_confidences(scheme):
    labels = LABELS[scheme]
    em, W, s, e, mask = make_problem(scheme, True, seed=13, scale=3.0)
    lengths = LENGTHS[scheme]
    # Given tags (ill-formed ones included: read leniently, scored in the well-formed encoding).
    tags = torch.randint(0, len(labels), mask.shape, generator=torch.Generator().manual_seed(14))
    for given in (tags, None):
        out = entity_confidences(em, W, mask, s, e, given, labels, scheme)
        used = viterbi(em, W, mask, s, e)[1] if given is None else given
        assert len(out) == len(lengths)
        n_entities = 0
        for b, n in enumerate(lengths):
            names = [labels[k] for k in used[b, :n].tolist()]
            assert [x[:3] for x in out[b]] == tags_to_spans(names, scheme)
            if n == 0:
                assert out[b] == []
                continue
            seqs, p = brute(em[b], W, s, e, n)
            for i, j, typ, prob in out[b]:
                assert isinstance(prob, float) and 0.0 <= prob <= 1.0
                want = float(p[contains(seqs, labels, scheme, i, j, typ)].sum())
                assert prob == pytest.approx(want, abs=1e-12)
                n_entities += 1
        assert n_entities > 0


def test_entity_confidences_without_entities():
    em, W, s, e, mask = make_problem("bioes", False, seed=15)
    tags = torch.zeros(mask.shape, dtype=torch.long)  # all O
    assert entity_confidences(em, W, mask, s, e, tags, BIOES, "iobes") == [[] for _ in mask]


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------
def test_errors_name_the_offending_value():
    em, W, s, e, mask = make_problem("bioes", False, seed=16)
    ok = [(0, 0, 2, "PER")]
    with pytest.raises(ValueError, match="row 7"):
        segment_probability(em, W, mask, s, e, [(7, 0, 1, "PER")], BIOES)
    with pytest.raises(ValueError, match="<= 2"):  # row 1 has length 2
        segment_probability(em, W, mask, s, e, [(1, 1, 3, "PER")], BIOES)
    with pytest.raises(ValueError, match="start < end"):
        segment_probability(em, W, mask, s, e, [(0, 2, 2, "PER")], BIOES)
    with pytest.raises(ValueError, match="'B-ORG'"):
        segment_probability(em, W, mask, s, e, [(0, 0, 2, "ORG")], BIOES)
    with pytest.raises(ValueError, match="'O'"):
        segment_probability(em, W, mask, s, e, [(0, 0, 2, "O")], BIOES)
    with pytest.raises(ValueError, match="'E-PER'"):  # IOB2 labels have no E-/S-
        segment_probability(em[..., :5], W[:5, :5], mask, s[:5], e[:5], ok, IOB2, "bioes")
    with pytest.raises(ValueError, match="'iob1'"):
        segment_probability(em, W, mask, s, e, ok, BIOES, "iob1")
    with pytest.raises(ValueError, match="xyz"):
        segment_probability(em, W, mask, s, e, ok, BIOES, "xyz")
    with pytest.raises(ValueError, match="L = 9.*got 5"):
        segment_probability(em, W, mask, s, e, ok, IOB2)
    with pytest.raises(ValueError, match="got 9"):
        token_confidence(em, W, mask, s, e, torch.full(mask.shape, 9))
    with pytest.raises(ValueError, match="-1"):
        entity_confidences(em, W, mask, s, e, torch.full(mask.shape, -1), BIOES)
    with pytest.raises(ValueError, match=r"\(5, 4\)"):
        token_confidence(em, W, mask, s, e, torch.zeros(2, 2, dtype=torch.long))
    bad = em.clone()
    bad[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="nan"):
        segment_probability(bad, W, mask, s, e, ok, BIOES)
    with pytest.raises(ValueError, match="inf"):
        token_confidence(em, W.clone().fill_(float("inf")), mask, s, e)
    impossible = torch.full_like(s, float("-inf"))
    with pytest.raises(ValueError, match="row 0 has no label sequence"):
        segment_probability(em, W, mask, impossible, e, ok, BIOES)
    with pytest.raises(ValueError, match="row, start, end, type"):
        segment_probability(em, W, mask, s, e, [(0, 1)], BIOES)
    assert segment_probability(em, W, mask, s, e, [], BIOES).shape == (0,)


@pytest.mark.parametrize("scheme", ["bioes", "iob2"])
def test_long_rows_equal_the_constrained_forward_over_the_whole_row(scheme):
    """On rows too long to enumerate (lengths 60, 23, 41), each segment's probability (a
    forward pass restricted over the segment only, joined to the backward values) equals the
    forward pass restricted over the whole row (``constrained_log_partition`` with the
    segment's allowed sets): segments at the start, in the middle and at each row's end."""
    labels = LABELS[scheme]
    lengths = torch.tensor([60, 23, 41])
    B, T, L = len(lengths), int(lengths.max()), len(labels)
    g = torch.Generator().manual_seed(21)
    em = torch.randn(B, T, L, generator=g, dtype=DT) * 2
    W = torch.randn(L, L, generator=g, dtype=DT)
    pen_t, pen_s, pen_e = constraint_penalties(transition_constraints(labels, scheme), dtype=DT)
    W, s, e = W + pen_t, pen_s, pen_e
    mask = torch.arange(T)[None, :] < lengths[:, None]
    index = {lab: k for k, lab in enumerate(labels)}
    segments = [
        (b, i, min(i + w, n), typ)
        for b, n in enumerate(lengths.tolist())
        for i in (0, 7, n - 3, n - 1)
        for w in (1, 2, 3)
        for typ in TYPES
    ]
    got = segment_probability(em, W, mask, s, e, segments, labels, scheme)
    assert float(got.max()) > 0.3 and float((got > 1e-3).float().mean()) > 0.2
    log_z = log_partition(em, W, mask, s, e)
    for (b, i, j, typ), p in zip(segments, got.tolist(), strict=True):
        allowed = torch.ones(1, T, L, dtype=torch.bool)
        if scheme == "bioes":
            names = ["S"] if j - i == 1 else ["B"] + ["I"] * (j - i - 2) + ["E"]
        else:
            names = ["B"] + ["I"] * (j - i - 1)
            if j < lengths[b]:
                allowed[0, j, index[f"I-{typ}"]] = False
        for t, prefix in zip(range(i, j), names):
            allowed[0, t] = False
            allowed[0, t, index[f"{prefix}-{typ}"]] = True
        log_za = constrained_log_partition(em[b : b + 1], W, mask[b : b + 1], s, e, allowed)
        want = torch.exp(log_za[0] - log_z[b]).clamp(0, 1).item()
        assert p == pytest.approx(want, abs=1e-10), (b, i, j, typ)

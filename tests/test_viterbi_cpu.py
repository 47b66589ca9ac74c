"""Tests for spacy_infnet.core.viterbi_cpu (the numba Viterbi kernel) and its dispatch in
spacy_infnet.core.crf.viterbi.

The kernel must return exactly what the batched torch recursion ``crf._viterbi`` returns: the
same scores (bit for bit, in the potentials' dtype) and the same paths, ties included.
"""

import numpy as np
import pytest
import torch

from spacy_infnet.core import crf, viterbi_cpu
from spacy_infnet.core.constraints import constraint_penalties, transition_constraints

DTYPES = [torch.float32, torch.float64]
BIOES_LABELS = ["O"] + [f"{p}-{t}" for t in ("PER", "LOC", "ORG", "MISC") for p in "BIES"]


def make_problem(lengths, T, L, seed, dtype, scale=1.0, integer=False):
    g = torch.Generator().manual_seed(seed)
    B = len(lengths)

    def draw(*shape):
        if integer:  # small integers: many exact ties between paths
            return torch.randint(-2, 3, shape, generator=g).to(dtype)
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype)

    lengths = torch.as_tensor(lengths, dtype=torch.long)
    mask = torch.arange(T)[None, :] < lengths[:, None]
    return draw(B, T, L), draw(L, L), draw(L), draw(L), mask, lengths


def kernel(em, W, lengths, s=None, e=None):
    score, tags = viterbi_cpu.viterbi(
        em.numpy(),
        W.numpy(),
        None if lengths is None else lengths.numpy(),
        None if s is None else s.numpy(),
        None if e is None else e.numpy(),
    )
    return torch.from_numpy(score), torch.from_numpy(tags)


def assert_same(got, ref):
    assert got[0].dtype == ref[0].dtype and got[1].dtype == torch.long
    assert torch.equal(got[0], ref[0]), (got[0], ref[0])
    assert torch.equal(got[1], ref[1]), (got[1], ref[1])


# ---------------------------------------------------------------------------
# the kernel against the torch recursion
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ends", ["both", "none", "start", "end"])
def test_kernel_equals_torch_path(dtype, ends):
    pytest.importorskip("numba")
    # a zero-length row, full rows, and trailing columns beyond the longest row
    lengths = [0, 9, 1, 5, 2, 9, 7]
    for L in (1, 2, 3, 4, 5, 8, 9, 16, 17, 24, 25, 30):
        em, W, s, e, mask, lens = make_problem(lengths, 11, L, seed=L, dtype=dtype, scale=2.0)
        s = s if ends in ("both", "start") else None
        e = e if ends in ("both", "end") else None
        ref = crf._viterbi(em, W, mask, s, e)
        assert_same(kernel(em, W, lens, s, e), ref)
        assert (ref[1][~mask] == 0).all() and ref[0][0] == 0
        # no mask: every row has all T positions
        assert_same(kernel(em, W, None, s, e), crf._viterbi(em, W, None, s, e))


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernel_equals_both_torch_layouts_and_penalties(dtype, monkeypatch):
    """Both work-buffer layouts of the torch path, with BIOES -1e4 penalties and large scales."""
    pytest.importorskip("numba")
    tr_pen, st_pen, en_pen = constraint_penalties(
        transition_constraints(BIOES_LABELS, "bioes"), dtype=dtype
    )
    lengths = [12, 0, 3, 1, 12, 8]
    em, W, s, e, mask, lens = make_problem(lengths, 12, 17, seed=5, dtype=dtype, scale=10.0)
    args = (em, W + tr_pen, mask, s + st_pen, e + en_pen)
    got = kernel(em, W + tr_pen, lens, s + st_pen, e + en_pen)
    assert_same(got, crf._viterbi(*args))
    monkeypatch.setattr(crf, "_SLAB_LAYOUT_MAX_LABELS", 0)  # the [B, L, L] layout
    assert_same(got, crf._viterbi(*args))


@pytest.mark.parametrize("dtype", DTYPES)
def test_ties_go_to_the_lowest_label(dtype):
    pytest.importorskip("numba")
    # all-zero potentials: every path ties, torch and the kernel both return all zeros
    L, T = 6, 7
    em = torch.zeros(3, T, L, dtype=dtype)
    W = torch.zeros(L, L, dtype=dtype)
    zeros = torch.zeros(L, dtype=dtype)
    lens = torch.tensor([7, 0, 4])
    mask = torch.arange(T)[None] < lens[:, None]
    ref = crf._viterbi(em, W, mask, zeros, zeros)
    assert torch.equal(ref[1], torch.zeros(3, T, dtype=torch.long))
    assert_same(kernel(em, W, lens, zeros, zeros), ref)
    # small integer potentials: many exact ties at every step, forward and backward
    for seed in range(20):
        L = 1 + seed % 7
        em, W, s, e, mask, lens = make_problem(
            [6, 1, 0, 4, 6], 6, L, seed=seed, dtype=dtype, integer=True
        )
        assert_same(kernel(em, W, lens, s, e), crf._viterbi(em, W, mask, s, e))


def test_kernel_edge_cases_and_errors():
    pytest.importorskip("numba")
    W = np.zeros((3, 3), dtype=np.float32)
    for shape in [(0, 4, 3), (2, 0, 3)]:
        score, tags = viterbi_cpu.viterbi(np.zeros(shape, dtype=np.float32), W)
        assert score.shape == (shape[0],) and tags.shape == shape[:2] and tags.dtype == np.int64
    # every row empty
    score, tags = viterbi_cpu.viterbi(np.ones((2, 4, 3)), np.ones((3, 3)), np.array([0, 0]))
    assert score.dtype == np.float64 and not score.any() and not tags.any()
    # non-contiguous inputs are accepted
    em = np.random.default_rng(0).standard_normal((4, 3, 5)).transpose(1, 0, 2)
    trans = np.random.default_rng(1).standard_normal((5, 5)).T
    ref = crf._viterbi(torch.from_numpy(em), torch.from_numpy(trans), None, None, None)
    score, tags = viterbi_cpu.viterbi(em, trans)
    assert np.array_equal(score, ref[0].numpy()) and np.array_equal(tags, ref[1].numpy())
    with pytest.raises(ValueError, match="float32/float64"):
        viterbi_cpu.viterbi(np.zeros((1, 2, 3), dtype=np.int64), W)
    with pytest.raises(ValueError, match="transitions"):
        viterbi_cpu.viterbi(np.zeros((1, 2, 3), dtype=np.float32), W[:2])
    with pytest.raises(ValueError, match="end"):
        viterbi_cpu.viterbi(np.zeros((1, 2, 3), dtype=np.float32), W, end=np.zeros(2))
    with pytest.raises(ValueError, match="lengths"):
        viterbi_cpu.viterbi(np.zeros((1, 2, 3), dtype=np.float32), W, np.array([3]))


def test_cache_fallbacks(monkeypatch):
    """No writable cache directory (numba raises at decoration), or a failed save: the kernel
    is rebuilt without the disk cache."""
    pytest.importorskip("numba")
    built = []

    def uncached(*args):
        args[-2][:] = 7.0  # score

    def build(cache):
        built.append(cache)
        if cache:
            raise RuntimeError("cannot cache function: no locator available")
        return uncached

    monkeypatch.setattr(viterbi_cpu, "_kernel", None)
    monkeypatch.setattr(viterbi_cpu, "_build", build)
    score, _ = viterbi_cpu.viterbi(np.zeros((2, 3, 4)), np.zeros((4, 4)))
    assert built == [True, False] and (score == 7.0).all()

    def failing_save(*args):
        raise OSError("read-only file system")

    built.clear()
    monkeypatch.setattr(viterbi_cpu, "_kernel", failing_save)
    score, _ = viterbi_cpu.viterbi(np.zeros((2, 3, 4)), np.zeros((4, 4)))
    assert built == [False] and (score == 7.0).all() and viterbi_cpu._kernel is uncached


# ---------------------------------------------------------------------------
# dispatch in crf.viterbi
# ---------------------------------------------------------------------------
@pytest.fixture
def spy(monkeypatch):
    calls = []
    real = viterbi_cpu.viterbi

    def wrapped(*args):
        calls.append(args[0].shape)
        return real(*args)

    monkeypatch.setattr(viterbi_cpu, "viterbi", wrapped)
    return calls


def test_dispatch_small_cpu_batches_use_the_kernel(spy, monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setattr(crf.torch, "get_num_threads", lambda: 4)
    monkeypatch.setattr(crf, "_NUMBA_MAX_WORK", 2 * 6 * 5 * 5)
    em, W, s, e, mask, _ = make_problem([6, 0], 6, 5, seed=1, dtype=torch.float32)
    got = crf.viterbi(em.requires_grad_(True), W, mask, s, e)
    assert spy == [(2, 6, 5)]
    assert not got[0].requires_grad
    assert_same(got, crf._viterbi(em.detach(), W, mask, s, e))
    # integer masks and mixed dtypes are promoted first (float64 kernel)
    got = crf.viterbi(em, W.double(), mask.long(), None, e)
    assert spy[-1] == (2, 6, 5) and got[0].dtype == torch.float64
    assert_same(got, crf._viterbi(em.detach().double(), W.double(), mask, None, e.double()))


def test_dispatch_large_batches_keep_torch(spy, monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setattr(crf, "_NUMBA_MAX_WORK", 2 * 6 * 5 * 5 - 1)
    em, W, s, e, mask, _ = make_problem([6, 3], 6, 5, seed=2, dtype=torch.float32)
    monkeypatch.setattr(crf.torch, "get_num_threads", lambda: 4)
    torch_result = crf.viterbi(em, W, mask, s, e)
    assert spy == []  # over the limit with several torch threads: torch
    monkeypatch.setattr(crf.torch, "get_num_threads", lambda: 1)
    assert_same(crf.viterbi(em, W, mask, s, e), torch_result)
    assert spy == [(2, 6, 5)]  # one torch thread: the kernel at any size


def test_dispatch_falls_back_to_torch(spy, monkeypatch):
    em, W, s, e, mask, _ = make_problem([4, 2], 4, 3, seed=3, dtype=torch.float32)
    # half precision has no kernel
    best, tags = crf.viterbi(em.bfloat16(), W.bfloat16(), mask, s.bfloat16(), e.bfloat16())
    assert best.dtype == torch.bfloat16 and tags.shape == (2, 4)
    # numba missing
    monkeypatch.setattr(viterbi_cpu, "available", lambda: False)
    assert_same(crf.viterbi(em, W, mask, s, e), crf._viterbi(em, W, mask, s, e))
    assert spy == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_dispatch_cuda_keeps_torch(spy):
    em, W, s, e, mask, _ = make_problem([4, 2], 4, 3, seed=4, dtype=torch.float32)
    best, tags = crf.viterbi(*(t.cuda() for t in (em, W, mask, s, e)))
    assert spy == [] and tags.is_cuda
    assert_same((best.cpu(), tags.cpu()), crf._viterbi(em, W, mask, s, e))


def test_available_without_numba(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_numba(name, *args, **kwargs):
        if name == "numba":
            raise ImportError("No module named 'numba'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_numba)
    monkeypatch.setattr(viterbi_cpu, "_numba", None)
    assert viterbi_cpu.available() is False
    with pytest.raises(RuntimeError, match="numba"):
        viterbi_cpu.viterbi(np.zeros((1, 2, 3)), np.zeros((3, 3)))


@pytest.mark.parametrize("buffer_elems", [1, 1 << 30])
def test_torch_path_with_chunking_equals_kernel(buffer_elems, monkeypatch):
    """crf.viterbi's own torch path (batch chunking included) against the kernel."""
    pytest.importorskip("numba")
    em, W, s, e, mask, lens = make_problem([5, 0, 2, 5, 1], 5, 4, seed=6, dtype=torch.float64)
    ref = kernel(em, W, lens, s, e)
    monkeypatch.setattr(viterbi_cpu, "available", lambda: False)
    monkeypatch.setattr(crf, "_CPU_MAX_BUFFER_ELEMS", buffer_elems)
    assert_same(crf.viterbi(em, W, mask, s, e), ref)

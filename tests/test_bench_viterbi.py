"""Tests for benchmarks.viterbi_peers (our Viterbi against pytorch-crf and torch-struct).

The peer mappings are checked against brute-force enumeration of all L^T label sequences; the
benchmark itself is run end to end on a tiny grid.
"""

import itertools
import json
import sys
import time
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

import benchmarks.viterbi_peers as vp
from benchmarks.viterbi_peers.peers import _PEER_MODULES
from spacy_infnet.core.crf import sequence_score


def brute_force(problem):
    """Best path of every row by enumerating all L^len paths, scored by a hand-written sum."""
    em = problem.emissions.double()
    W = problem.transitions.double()
    s = problem.start_transitions.double()
    e = problem.end_transitions.double()
    L = problem.num_labels
    best = []
    for b, n in enumerate(problem.lengths.tolist()):
        scored = []
        for path in itertools.product(range(L), repeat=n):
            total = float(s[path[0]] + e[path[-1]])
            total += sum(float(em[b, t, y]) for t, y in enumerate(path))
            total += sum(float(W[path[t - 1], path[t]]) for t in range(1, n))
            scored.append((total, path))
        scored.sort(reverse=True)
        assert scored[0][0] - scored[1][0] > 1e-6, "test problem should have a unique optimum"
        best.append(list(scored[0][1]))
    return best


def small_problem(lengths, seed, L=3):
    return vp.random_problem(L, lengths, seed)


PROBLEM_LENGTHS = [
    [4, 2, 3, 4, 2],  # padded rows, incl. length 2
    [2, 2, 2],  # a single edge everywhere
    [3, 4, 4],
    [4],
]


def decoder_for(name, problem, max_gib=2.0):
    if name != "ours":
        pytest.importorskip(_PEER_MODULES[name])
    return vp.make_decoder(name, problem, max_gib)


@pytest.mark.parametrize("name", ["ours", "pytorch-crf", "torch-struct"])
@pytest.mark.parametrize("case", range(len(PROBLEM_LENGTHS)))
def test_decoders_find_the_brute_force_optimum(name, case):
    for seed in range(3):
        problem = small_problem(PROBLEM_LENGTHS[case], seed=100 * case + seed)
        tags = decoder_for(name, problem)()
        assert tags.shape == (problem.batch_size, problem.max_length)
        assert tags.dtype == torch.long
        for b, path in enumerate(brute_force(problem)):
            assert tags[b, : len(path)].tolist() == path, (name, case, seed, b)
            assert (tags[b, len(path) :] == 0).all()


def test_pytorch_crf_transition_convention_matches_ours():
    torchcrf = pytest.importorskip("torchcrf")
    problem = small_problem([4, 3, 2], seed=7)
    # A strongly asymmetric W: a transposed mapping would change the score differences.
    problem.transitions += 3.0 * torch.triu(torch.ones(3, 3), diagonal=1)
    crf = vp.PytorchCRFDecoder(problem).crf
    assert isinstance(crf, torchcrf.CRF)
    g = torch.Generator().manual_seed(0)
    a = torch.randint(3, (3, 4), generator=g)
    b = torch.randint(3, (3, 4), generator=g)
    with torch.no_grad():
        llh_a = crf(problem.emissions, a, problem.mask, reduction="none")
        llh_b = crf(problem.emissions, b, problem.mask, reduction="none")
    ours = [
        sequence_score(
            problem.emissions,
            problem.transitions,
            tags,
            problem.mask,
            problem.start_transitions,
            problem.end_transitions,
        )
        for tags in (a, b)
    ]
    torch.testing.assert_close(llh_a - llh_b, ours[0] - ours[1], atol=1e-4, rtol=1e-5)


def test_torch_struct_log_potentials_sum_to_our_score():
    problem = small_problem([5, 2, 3], seed=3, L=4)
    lengths = problem.lengths
    edges = vp.torch_struct_log_potentials(
        problem.emissions,
        problem.transitions,
        problem.start_transitions,
        problem.end_transitions,
        lengths,
    )
    assert edges.shape == (3, 4, 4, 4)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        tags = torch.randint(4, (3, 5), generator=g)
        expected = sequence_score(
            problem.emissions,
            problem.transitions,
            tags,
            problem.mask,
            problem.start_transitions,
            problem.end_transitions,
        )
        for b, n in enumerate(lengths.tolist()):
            total = sum(float(edges[b, i, tags[b, i + 1], tags[b, i]]) for i in range(n - 1))
            assert total == pytest.approx(float(expected[b]), abs=1e-4)


def test_torch_struct_tags_inverts_edge_indicators():
    lengths = torch.tensor([4, 2, 3])
    tags = torch.tensor([[2, 0, 1, 1], [1, 2, 0, 0], [0, 0, 2, 0]])
    edges = torch.zeros(3, 3, 3, 3)
    for b, n in enumerate(lengths.tolist()):
        for i in range(n - 1):
            edges[b, i, tags[b, i + 1], tags[b, i]] = 1.0
    assert vp.torch_struct_tags(edges, lengths).tolist() == tags.tolist()


def test_torch_struct_chunks_respect_the_cap_and_still_decode_exactly():
    pytest.importorskip("torch_struct")
    lengths = [9, 2, 5, 17, 3, 9, 2, 6]
    problem = vp.random_problem(20, lengths, seed=5)
    cap = vp.torch_struct_bytes(2, 17, 20)  # two of the longest sentences fit, not the batch
    chunks = vp.torch_struct_chunks(problem.lengths, 20, cap)
    assert len(chunks) > 1
    assert sorted(torch.cat(chunks).tolist()) == list(range(len(lengths)))
    for idx in chunks:
        assert vp.torch_struct_bytes(len(idx), int(problem.lengths[idx].max()), 20) <= cap
    decoder = vp.TorchStructDecoder(problem, cap)
    assert decoder.chunks == len(chunks)
    ours = vp.OursDecoder(problem)()
    assert torch.equal(decoder(), ours)
    # the whole batch in one chunk when it fits
    assert len(vp.torch_struct_chunks(problem.lengths, 20, 1e12)) == 1


def test_torch_struct_sentence_over_the_cap_is_skipped():
    lengths = torch.tensor([3, 40])
    with pytest.raises(vp.PeerSkipped, match="skipped: over memory cap .* 40 tokens"):
        vp.torch_struct_chunks(lengths, 321, 2 * 2**30)


def test_agreement_counts_ties_and_disagreements():
    L, T = 2, 3
    problem = vp.Problem(
        source="hand-made",
        emissions=torch.zeros(3, T, L),
        transitions=torch.zeros(L, L),
        start_transitions=torch.zeros(L),
        end_transitions=torch.zeros(L),
        mask=torch.tensor([[True, True, True], [True, True, True], [True, True, False]]),
    )
    problem.emissions[2, :, 0] = 1.0  # row 2: label 0 everywhere is the unique best (score 2)
    ours = torch.tensor([[0, 0, 0], [0, 1, 0], [0, 0, 0]])
    # row 0: same path (padding ignored); row 1: another path with the same score 0 (a tie);
    # row 2: a worse path (score 1 vs 2)
    peer = torch.tensor([[0, 0, 0], [1, 1, 1], [0, 1, 1]])
    same = ours.clone()
    same[2, 2] = 1  # differs only at the padded position
    result = vp.agreement(problem, ours, {"a": same, "b": peer})
    assert result["compared"] == ["a", "b"]
    assert (result["identical"], result["ties"], result["disagree"]) == (1, 1, 1)
    assert result["all_agree"] is False
    assert result["per_peer"]["a"] == {
        "identical": 3,
        "ties": 0,
        "disagree": 0,
        "max_rel_gap": 0.0,
    }
    assert (result["per_peer"]["b"]["ties"], result["per_peer"]["b"]["disagree"]) == (1, 1)
    assert result["per_peer"]["b"]["max_rel_gap"] == pytest.approx(0.5)
    # without the bad row everything agrees, with one tie
    result = vp.agreement(
        problem, ours, {"b": torch.where(torch.arange(3)[:, None] == 2, ours, peer)}
    )
    assert (result["identical"], result["ties"], result["disagree"]) == (2, 1, 0)
    assert result["all_agree"] is True
    assert vp.agreement(problem, ours, {})["all_agree"] is None


class SlowChunks:
    """A fake decoder: ``n`` chunks of ``seconds`` each, reporting its progress."""

    def __init__(self, n, seconds, problem):
        self.n, self.seconds, self.problem, self.chunks = n, seconds, problem, n
        self.calls = 0

    def __call__(self, progress=None):
        self.calls += 1
        per = self.problem.batch_size // self.n
        for k in range(1, self.n + 1):
            time.sleep(self.seconds)
            if progress is not None:
                progress(k * per, k / self.n)
        return torch.zeros(self.problem.batch_size, self.problem.max_length, dtype=torch.long)


def test_time_budget_stops_a_peer_after_its_first_chunk():
    problem = vp.random_problem(3, [2] * 10, seed=0)
    # extrapolated 10 x 0.03 s = 0.3 s > 1.2 x 0.1 s, though the first chunk is within budget
    slow = SlowChunks(10, 0.03, problem)
    with pytest.raises(vp.PeerSkipped) as info:
        vp.time_decoder(slow, repeats=3, budget_s=0.1)
    assert str(info.value).startswith("skipped: over time budget (first 1 of 10 sentences took")
    assert info.value.details["extrapolated_seconds"] > 0.12
    assert slow.calls == 1
    # within budget: one warm-up and the timed repeats
    fast = SlowChunks(2, 0.001, problem)
    timing = vp.time_decoder(fast, repeats=3, budget_s=10.0)
    assert fast.calls == 4
    assert len(timing["times"]) == 3
    assert timing["seconds"] == sorted(timing["times"])[1]


def invoke(*args):
    """Run the typer app in-process; re-raise anything but its exit (a real error)."""
    result = CliRunner().invoke(vp.app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def run_main(tmp_path, *extra):
    out = tmp_path / "bench.json"
    result = invoke(
        *["--labels", "5", "--batch-sizes", "1,3", "--repeats", "1", "--output", str(out)],
        *["--no-progress", *extra],
    )
    return result, out


def test_main_writes_json_and_markdown_and_all_agree(tmp_path):
    pytest.importorskip("torchcrf")
    pytest.importorskip("torch_struct")
    result, out = run_main(tmp_path)
    assert result.exit_code == 0
    results = json.loads(out.read_text())
    assert results["environment"]["torch"] == torch.__version__
    assert results["settings"]["repeats"] == 1
    rows = results["rows"]
    assert [(r["source"], r["labels"], r["batch"]) for r in rows] == [
        ("random", 5, 1),
        ("random", 5, 3),
    ]
    for row in rows:
        assert row["ours"]["seconds"] > 0
        for peer in vp.PEERS:
            assert row[peer]["status"] == "ok"
            assert row[peer]["ratio"] == pytest.approx(
                row[peer]["seconds"] / row["ours"]["seconds"]
            )
        agree = row["agreement"]
        assert agree["compared"] == list(vp.PEERS)
        assert agree["all_agree"] is True
        assert agree["identical"] + agree["ties"] == row["batch"]
    md = out.with_suffix(".md").read_text()
    assert "| potentials | L | B | ours s | pytorch-crf s (×ratio) |" in md
    assert "| random | 5 | 3 |" in md
    assert "identical paths" in md and "DISAGREE" not in md
    assert md in result.stdout


def test_missing_peer_is_reported_as_skipped(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchcrf", None)  # `import torchcrf` raises ImportError
    monkeypatch.setitem(sys.modules, "torch_struct", None)
    result, out = run_main(tmp_path)
    assert result.exit_code == 0
    for row in json.loads(out.read_text())["rows"]:
        for peer in ("pytorch-crf", "torch-struct"):
            assert row[peer]["status"] == "skipped"
            assert row[peer]["reason"] == vp.NOT_INSTALLED
        # our own torch path needs no package: it is still compared
        assert row["ours-torch"]["status"] == "ok"
        assert row["agreement"]["compared"] == ["ours-torch"]
    md = out.with_suffix(".md").read_text()
    assert md.count("skipped: not installed (pip install pytorch-crf / torch-struct") == 4
    assert "identical paths" in md


def test_one_missing_peer_leaves_the_other_compared(monkeypatch):
    pytest.importorskip("torch_struct")
    monkeypatch.setitem(sys.modules, "torchcrf", None)
    row = vp.bench_cell(vp.random_problem(4, [3, 2, 5], seed=1), repeats=1)
    assert row["pytorch-crf"]["reason"] == vp.NOT_INSTALLED
    assert row["torch-struct"]["status"] == "ok"
    assert row["agreement"]["compared"] == ["torch-struct", "ours-torch"]
    assert row["agreement"]["identical"] == 3


def test_pipeline_problem_and_argument_checks(tmp_path):
    B, T, L = 2, 5, 3
    g = torch.Generator().manual_seed(0)
    pot = SimpleNamespace(
        emissions=torch.randn(B, T, L, generator=g, dtype=torch.float64),
        transitions=torch.randn(L, L, generator=g),
        start_transitions=torch.randn(L, generator=g),
        end_transitions=torch.randn(L, generator=g),
        mask=torch.tensor([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], dtype=torch.bool),
    )
    seen = []
    comp = SimpleNamespace(
        encoder=SimpleNamespace(encode=lambda sents, chars: seen.append((sents, chars)) or "x"),
        energy=SimpleNamespace(potentials=lambda batch: pot),
    )
    problem = vp.pipeline_problem(comp, [("a", "b", "c"), ("d", "e")], "pipeline p (d test)")
    assert seen == [([["a", "b", "c"], ["d", "e"]], True)]
    assert problem.emissions.shape == (2, 3, 3) and problem.emissions.dtype == torch.float32
    assert problem.lengths.tolist() == [3, 2]
    assert vp.parse_pipeline_data("conll2003:../shared/data/conll2003") == (
        "conll2003",
        "../shared/data/conll2003",
    )
    assert vp.parse_pipeline_data("twitter_pos") == ("twitter_pos", None)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        vp.random_problem(3, [3, 1], seed=0)
    result, out = run_main(tmp_path, "--pipeline", "somewhere")
    assert result.exit_code == 2 and not out.exists()
    assert "--pipeline-data" in result.stderr


@pytest.mark.parametrize(
    "option, value, named",
    [
        ("--labels", "17,x", "17,x"),
        ("--batch-sizes", "0", "0"),
        ("--peers", "crf++", "crf++"),
        ("--repeats", "abc", "--repeats"),  # rejected while parsing (typer), not by main
        ("--pipeline", "no/such/dir", "no/such/dir"),
    ],
)
def test_bad_option_is_one_line_without_traceback(tmp_path, option, value, named):
    out = tmp_path / "bench.json"
    extra = ["--pipeline-data", "twitter_pos"] if option == "--pipeline" else []
    result = invoke(option, value, *extra, "--output", str(out), "--no-progress")
    assert result.exit_code != 0 and not out.exists()
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert named in lines[0] and option in lines[0]
    assert "Traceback" not in result.output and result.stdout == ""

"""``bench-beyond`` (spacy_infnet.bench.beyond) on a small trained POS pipeline: the hybrid
curve ends at Viterbi's accuracy, the k-best oracle never falls below the 1-best, and
calibration and temperature fitting write what they promise."""

import json

import pytest

from spacy_infnet.cli import main


@pytest.fixture(scope="module")
def beyond(small_pos_pipeline, tmp_path_factory):
    out = tmp_path_factory.mktemp("beyond") / "b.json"
    args = ["bench-beyond", str(small_pos_pipeline), "--dataset", "twitter_pos", "--limit", "40"]
    args += ["--thresholds", "0,0.9,2", "--ks", "1,3", "--calibrate", "viterbi"]
    args += ["--repeats", "1", "--fit-temperature", "--output", str(out)]
    assert main(args) == 0
    return out, json.loads(out.read_text())


def test_hybrid_curve_ends_at_viterbi_and_redecodes_more_with_tau(beyond):
    _, results = beyond
    rows = {(r["decoder"], r["threshold"]): r for r in results["hybrid_curve"]}
    viterbi = rows[("viterbi", None)]["score"]
    assert rows[("hybrid", 2.0)]["score"] == pytest.approx(viterbi)
    assert rows[("hybrid", 2.0)]["redecoded"] == 1.0
    shares = [rows[("hybrid", t)]["redecoded"] for t in (0.0, 0.9, 2.0)]
    assert shares == sorted(shares)
    # ≠ Viterbi: 0 for Viterbi itself and for the hybrid that re-decodes everything; the
    # hybrid never differs on more sentences than Ψ alone with the same rounding
    assert rows[("viterbi", None)]["differs"] == 0 == rows[("hybrid", 2.0)]["differs"]
    assert 0 < rows[("infnet", None)]["differs"] <= 1
    assert rows[("hybrid", 0.9)]["differs"] <= rows[("infnet", None)]["differs"]
    assert all(r["sentences_per_s"] > 0 for r in rows.values())


def test_oracle_and_calibration(beyond):
    out, results = beyond
    oracle = {r["k"]: r["score"] for r in results["oracle"]}
    viterbi = next(r["score"] for r in results["hybrid_curve"] if r["decoder"] == "viterbi")
    assert oracle[1] == pytest.approx(viterbi)
    assert oracle[3] >= oracle[1]
    raw, fitted = results["calibration"]
    assert raw["temperature"] == 1.0 and raw["units"] == "tokens" and raw["n"] > 400
    fit = results["temperatures"][0]
    assert fitted["temperature"] == fit["temperature"]
    assert fit["nll"][str(fit["temperature"])] == min(fit["nll"].values())
    assert 0 <= fitted["ece"] <= 1 and 0 <= raw["ece"] <= 1
    assert "| k | oracle F1 / acc |" in (out.parent / "b.md").read_text()
    for name in ("b_hybrid.png", "b_reliability_viterbi.png", "b_reliability_viterbi_fit.png"):
        assert (out.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

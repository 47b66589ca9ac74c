"""Tests for spacy_infnet.bench.calibration (ECE, reliability table and diagram)."""

import numpy as np
import pytest
import torch

from spacy_infnet.bench.calibration import (
    expected_calibration_error,
    reliability_diagram,
    reliability_table,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_perfectly_calibrated_predictions_have_small_ece():
    rng = np.random.default_rng(0)
    conf = rng.uniform(size=200_000)
    correct = rng.uniform(size=conf.size) < conf  # right with probability = confidence
    assert expected_calibration_error(conf, correct) < 0.01
    assert expected_calibration_error(conf, correct, n_bins=20) < 0.01


def test_over_confident_predictions_have_ece_of_the_gap():
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.5, 1.0, size=200_000)
    correct = rng.uniform(size=conf.size) < conf - 0.2  # 20 points less accurate than claimed
    assert expected_calibration_error(conf, correct) == pytest.approx(0.2, abs=0.01)


def test_ece_of_a_tiny_over_confident_example_by_hand():
    # Bin (0.9, 1.0]: 4 predictions, mean confidence 0.95, accuracy 0.5 → gap 0.45.
    # Bin (0.8, 0.9]: 2 predictions, mean confidence 0.85, accuracy 0.5 → gap 0.35.
    # ECE = 4/6 · 0.45 + 2/6 · 0.35 = 2.5 / 6.
    conf = [0.95, 0.95, 0.95, 0.95, 0.85, 0.85]
    correct = [True, True, False, False, True, False]
    assert expected_calibration_error(conf, correct) == pytest.approx(2.5 / 6, abs=1e-12)
    # The same as 0/1 ints, NumPy arrays and torch tensors.
    as_int = [int(c) for c in correct]
    assert expected_calibration_error(np.array(conf), as_int) == pytest.approx(2.5 / 6)
    assert expected_calibration_error(torch.tensor(conf), torch.tensor(correct)) == pytest.approx(
        2.5 / 6
    )


def test_reliability_table():
    conf = [0.0, 0.3, 0.31, 1.0, 0.95]
    correct = [0, 1, 0, 1, 1]
    table = reliability_table(conf, correct, n_bins=10)
    assert len(table) == 10
    assert [row["count"] for row in table] == [1, 0, 1, 1, 0, 0, 0, 0, 0, 2]
    assert table[0]["lower"] == 0.0 and table[9]["upper"] == 1.0
    assert table[2]["lower"] == pytest.approx(0.2) and table[2]["upper"] == pytest.approx(0.3)
    assert table[2]["confidence"] == pytest.approx(0.3)  # 0.3 lies in (0.2, 0.3]
    assert table[3]["confidence"] == pytest.approx(0.31) and table[3]["accuracy"] == 0.0
    assert table[9]["confidence"] == pytest.approx(0.975) and table[9]["accuracy"] == 1.0
    assert table[1]["confidence"] is None and table[1]["accuracy"] is None
    ece = expected_calibration_error(conf, correct)
    want = (0.0 + abs(1 - 0.3) + abs(0 - 0.31) + 2 * abs(1 - 0.975)) / 5
    assert ece == pytest.approx(want, abs=1e-12)


def test_reliability_diagram_writes_a_png(tmp_path):
    rng = np.random.default_rng(2)
    conf = rng.uniform(size=1000)
    correct = rng.uniform(size=conf.size) < conf**2
    path = tmp_path / "reliability.png"
    path.write_bytes(b"old")  # replaced
    out = reliability_diagram(conf, correct, path, title="synthetic", n_bins=15)
    assert out == path
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reliability.png"]  # no temp file


def test_reliability_diagram_validates_before_writing(tmp_path):
    path = tmp_path / "bad.png"
    with pytest.raises(ValueError, match="1.5"):
        reliability_diagram([0.2, 1.5], [True, False], path)
    assert not path.exists()


def test_input_validation_names_the_offending_value():
    with pytest.raises(ValueError, match="3 and 2"):
        expected_calibration_error([0.1, 0.2, 0.3], [True, False])
    with pytest.raises(ValueError, match=r"1\.5 at index 1"):
        expected_calibration_error([0.2, 1.5], [True, False])
    with pytest.raises(ValueError, match=r"-0\.1 at index 0"):
        reliability_table([-0.1, 0.5], [True, False])
    with pytest.raises(ValueError, match="nan"):
        expected_calibration_error([0.2, float("nan")], [True, False])
    with pytest.raises(ValueError, match="got 2 at index 1"):
        expected_calibration_error([0.2, 0.4], [1, 2])
    with pytest.raises(ValueError, match="empty"):
        expected_calibration_error([], [])
    with pytest.raises(ValueError, match="n_bins.*0"):
        expected_calibration_error([0.5], [True], n_bins=0)
    with pytest.raises(ValueError, match=r"1-D.*\(1, 2\)"):
        expected_calibration_error([[0.5, 0.5]], [[True, True]])

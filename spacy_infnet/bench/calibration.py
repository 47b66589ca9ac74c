r"""Calibration of confidence scores: expected calibration error and reliability diagrams.

A predictor is *calibrated* when, among the predictions made with confidence ``c``, a fraction
``c`` is correct.  With ``n`` predictions of confidence ``c_k ∈ [0, 1]`` and correctness
``a_k ∈ {0, 1}``, split ``[0, 1]`` into ``M`` equal-width bins ``I_m = ((m-1)/M, m/M]``
(``m = 1 .. M``; the first bin also holds ``c = 0``) and let ``B_m`` be the predictions whose
confidence falls in ``I_m``.  Then (Guo et al. 2017, "On calibration of modern neural
networks", ICML, §2)::

    acc(B_m)  = (1/|B_m|) Σ_{k ∈ B_m} a_k
    conf(B_m) = (1/|B_m|) Σ_{k ∈ B_m} c_k
    ECE       = Σ_m (|B_m| / n) · | acc(B_m) − conf(B_m) |

ECE is a probability (unitless, in ``[0, 1]``); 0 for a perfectly calibrated predictor, up to
sampling noise of order ``sqrt(M / n)``.  A *reliability diagram* plots ``acc(B_m)`` per bin
against the diagonal ``acc = conf``: bars below the diagonal are over-confident bins.

Typical inputs are the exact CRF confidences of :mod:`spacy_infnet.core.confidence`: token
marginals of the predicted tags with ``correct = (predicted tag == gold tag)``, or entity
probabilities with ``correct = (the entity is in the gold annotation)``.

Inputs are 1-D sequences of the same length ``n ≥ 1`` (lists, NumPy arrays or torch tensors):
``confidences`` finite floats in ``[0, 1]``, ``correct`` booleans or 0/1.  Anything else
raises ``ValueError`` naming the offending value.  This module uses NumPy and matplotlib only
(Agg backend, no display).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import atomic_write

__all__ = ["expected_calibration_error", "reliability_diagram", "reliability_table"]


def _as_array(values: Any, name: str) -> np.ndarray:
    if hasattr(values, "detach"):  # torch tensor, any device
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def _validate(confidences: Any, correct: Any, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """``(confidences float64 [n], correct float64 [n] of 0/1)`` after the checks."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    conf = _as_array(confidences, "confidences")
    hit = _as_array(correct, "correct")
    if conf.shape[0] != hit.shape[0]:
        raise ValueError(
            f"confidences and correct must have the same length, got {conf.shape[0]} and "
            f"{hit.shape[0]}"
        )
    if conf.shape[0] == 0:
        raise ValueError("confidences is empty: need at least one prediction")
    try:
        conf = conf.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"confidences must be numbers: {err}") from err
    bad = ~((conf >= 0.0) & (conf <= 1.0))  # NaN fails both comparisons
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(f"confidences must lie in [0, 1], got {conf.tolist()[k]!r} at index {k}")
    if hit.dtype != np.bool_:
        try:
            as_float = hit.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"correct must be booleans or 0/1: {err}") from err
        bad = ~((as_float == 0.0) | (as_float == 1.0))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"correct must be booleans or 0/1, got {hit.tolist()[k]!r} at index {k}"
            )
        hit = as_float
    return conf, hit.astype(np.float64)


def _edges(n_bins: int) -> np.ndarray:
    """``[M + 1]`` bin edges ``m / M``, each the correctly rounded quotient (so a confidence
    of exactly ``0.3`` lies in ``(0.2, 0.3]``)."""
    return np.arange(n_bins + 1) / n_bins


def _bin_index(conf: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each confidence: ``m - 1`` for ``c ∈ ((m-1)/M, m/M]``, 0 for ``c = 0``."""
    return np.digitize(conf, _edges(n_bins)[1:-1], right=True)


def reliability_table(
    confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10
) -> list[dict[str, Any]]:
    """Per-bin statistics of a reliability diagram.

    Args:
        confidences: ``[n]`` predicted probabilities in ``[0, 1]``.
        correct: ``[n]`` booleans (or 0/1): whether each prediction is right.
        n_bins: number ``M`` of equal-width bins over ``[0, 1]``.

    Returns:
        ``M`` dicts, in order of the bins: ``lower`` / ``upper`` (the bin's edges, bin
        ``(lower, upper]``), ``count`` (predictions in the bin), ``confidence`` (their mean
        confidence) and ``accuracy`` (their fraction correct); the last two are ``None`` for an
        empty bin.

    Raises:
        ValueError: inputs of different lengths, empty, not 1-D, a confidence outside
            ``[0, 1]`` or NaN, a ``correct`` value other than 0/1, or ``n_bins < 1`` (the
            message names the value).
    """
    conf, hit = _validate(confidences, correct, n_bins)
    idx = _bin_index(conf, n_bins)
    counts = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    hit_sum = np.bincount(idx, weights=hit, minlength=n_bins)
    edges = _edges(n_bins)
    rows = []
    for m in range(n_bins):
        n = int(counts[m])
        rows.append(
            {
                "lower": float(edges[m]),
                "upper": float(edges[m + 1]),
                "count": n,
                "confidence": float(conf_sum[m] / n) if n else None,
                "accuracy": float(hit_sum[m] / n) if n else None,
            }
        )
    return rows


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10
) -> float:
    """Expected calibration error ``Σ_m |B_m|/n · |acc(B_m) − conf(B_m)|`` (Guo et al. 2017).

    Args:
        confidences: ``[n]`` predicted probabilities in ``[0, 1]``.
        correct: ``[n]`` booleans (or 0/1).
        n_bins: number ``M`` of equal-width bins over ``[0, 1]``.

    Returns:
        The ECE, a probability in ``[0, 1]``.

    Raises:
        ValueError: as :func:`reliability_table`.
    """
    table = reliability_table(confidences, correct, n_bins)
    n = sum(row["count"] for row in table)
    return float(
        sum(
            row["count"] / n * abs(row["accuracy"] - row["confidence"])
            for row in table
            if row["count"]
        )
    )


def reliability_diagram(
    confidences: Sequence[float],
    correct: Sequence[bool],
    path: str | Path,
    title: str = "Reliability diagram",
    n_bins: int = 10,
) -> Path:
    """Write a reliability diagram as a PNG: accuracy per confidence bin against the diagonal.

    Bars give each non-empty bin's accuracy (drawn over the bin's width), a dashed line the
    diagonal ``accuracy = confidence``, a dot each bin's (mean confidence, accuracy); the ECE
    is in the title and the legend.  The file is written atomically (a temporary file in the same
    folder, then a rename), so a reader never sees half a PNG.

    Args:
        confidences: ``[n]`` predicted probabilities in ``[0, 1]``.
        correct: ``[n]`` booleans (or 0/1).
        path: the PNG's path (its folder must exist).
        title: the figure's title (the ECE is appended).
        n_bins: number ``M`` of equal-width bins over ``[0, 1]``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: as :func:`reliability_table`.
    """
    table = reliability_table(confidences, correct, n_bins)
    ece = expected_calibration_error(confidences, correct, n_bins)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    full = [row for row in table if row["count"]]
    width = 1.0 / n_bins
    fig, ax = plt.subplots(figsize=(4.8, 4.8), dpi=120)
    try:
        ax.bar(
            [row["lower"] for row in full],
            [row["accuracy"] for row in full],
            width=width,
            align="edge",
            color="tab:blue",
            edgecolor="black",
            alpha=0.8,
            label=f"accuracy (ECE = {ece:.4f})",
        )
        ax.plot(
            [row["confidence"] for row in full],
            [row["accuracy"] for row in full],
            "o",
            color="tab:red",
            markersize=4,
            label="bin (mean confidence, accuracy)",
        )
        ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        n = sum(row["count"] for row in table)
        ax.set_title(f"{title}\nECE = {ece:.4f} ({n:,} predictions, {n_bins} bins)", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    path = Path(path)
    atomic_write(path, buf.getvalue())
    return path

"""Search error (Tu & Gimpel 2019, §6): how far a decoder's output is from the energy's minimum.

For a sentence x and a decoder's discrete output ŷ,

    search error(x) = E_Θ(x, ŷ) − E_Θ(x, ŷ_Viterbi)  ≥ 0,

since Viterbi finds the exact minimiser of the energy.  Energies are in nats (the energy is a
negative unnormalised log-score).  Two optimal paths can tie, and float round-off separates
equal energies by a few ulps, so differences within :data:`RELATIVE_TOLERANCE` ·
max(1, |E_Viterbi|) count as exactly 0.  A difference below −tolerance (an output with *lower*
energy than Viterbi's) is impossible for a correct Viterbi and is counted separately: every table
and benchmark reports that count, and it should be 0.

This is the one definition used by ``python -m spacy_infnet bench`` and the Table 6 recipe.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

#: Differences within this fraction of max(1, |E_Viterbi|) are ties (search error 0).
RELATIVE_TOLERANCE = 1e-4


def search_errors(
    energies: Sequence[float], viterbi: Sequence[float], rtol: float = RELATIVE_TOLERANCE
) -> dict[str, Any]:
    """Per-sentence search errors E(ŷ) − E(ŷ_Viterbi) and their summary.

    Args:
        energies: E_Θ(x, ŷ) per sentence (nats), of the decoder's discrete output.
        viterbi: E_Θ(x, ŷ_Viterbi) per sentence (nats), same order.
        rtol: the tie tolerance, relative to max(1, |E_Viterbi|).

    Returns:
        {"mean": mean search error (nats; NaN for no sentences), "zero_share": fraction of
        sentences with none (in [0, 1]), "below_viterbi": count of sentences more than the
        tolerance *below* Viterbi's energy (a bug if any), "per_sentence": the errors, ties as
        exactly 0.0}.

    Raises:
        ValueError: the two sequences differ in length, or ``rtol`` is negative.
    """
    if len(energies) != len(viterbi):
        raise ValueError(
            f"search_errors: {len(energies)} energies but {len(viterbi)} Viterbi energies"
        )
    if rtol < 0:
        raise ValueError(f"search_errors: rtol must be ≥ 0, got {rtol}")
    errors: list[float] = []
    below = 0
    for e, v in zip(energies, viterbi):
        d, tol = float(e) - float(v), rtol * max(1.0, abs(float(v)))
        below += d < -tol
        errors.append(0.0 if abs(d) <= tol else d)
    return {
        "mean": statistics.fmean(errors) if errors else float("nan"),
        "zero_share": sum(d == 0.0 for d in errors) / max(1, len(errors)),
        "below_viterbi": below,
        "per_sentence": errors,
    }

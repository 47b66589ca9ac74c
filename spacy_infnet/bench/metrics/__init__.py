"""Evaluation metrics for the benchmarks, loaded with ``evaluate`` from files inside the package.

:data:`SEQEVAL_PATH` is a local ``evaluate`` module wrapping seqeval (conlleval-style entity F1
for NER, token accuracy for tagging; see ``seqeval/seqeval.py``).  It needs no network: the Hub
copy of the metric is unreachable offline, so :func:`load_seqeval` never asks the Hub.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

#: Directory of the local seqeval ``evaluate`` module (pass ``str(SEQEVAL_PATH)`` to
#: ``evaluate.load``).
SEQEVAL_PATH = Path(__file__).resolve().parent / "seqeval"


@lru_cache(maxsize=1)
def load_seqeval():
    """``evaluate.load`` of the packaged seqeval module (cached per process).

    Raises:
        FileNotFoundError: the module file is missing from the installed package.
    """
    import evaluate

    script = SEQEVAL_PATH / "seqeval.py"
    if not script.is_file():
        raise FileNotFoundError(
            f"the packaged seqeval metric is missing: {script} (reinstall spacy-infnet)"
        )
    return evaluate.load(str(SEQEVAL_PATH))


def score_labels(
    predictions: Sequence[Sequence[str]],
    references: Sequence[Sequence[str]],
    task: str,
    unknown_label: str | None = None,
) -> dict:
    """Score label strings: conlleval F1 (``task="ner"``) or token accuracy (``task="tag"``).

    Returns the seqeval module's output plus ``"metric"``, the headline figure in percent
    (F1 × 100 for NER, accuracy × 100 for tags), and ``"metric_name"``.

    Raises:
        ValueError: unknown task, or a prediction and its reference differ in length.
    """
    out = load_seqeval().compute(
        predictions=[list(p) for p in predictions],
        references=[list(r) for r in references],
        task=task,
        unknown_label=unknown_label,
    )
    key, name = ("overall_f1", "F1") if task == "ner" else ("overall_accuracy", "accuracy")
    out["metric"] = 100.0 * out[key]
    out["metric_name"] = name
    return out

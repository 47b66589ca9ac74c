"""Scorers: spaCy's own span scorer (NER, conlleval-style exact-match P/R/F) and token-attribute
scorer (tag accuracy), chosen by the component's ``task``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from spacy.scorer import Scorer, get_ner_prf
from spacy.training import Example
from spacy.util import registry


def score_infnet(examples: Iterable[Example], *, task: str = "ner", **kwargs: Any) -> dict:
    """``task="ner"``: ents_p / ents_r / ents_f / ents_per_type; ``task="tag"``: tag_acc."""
    if task == "ner":
        return get_ner_prf(examples)
    if task == "tag":
        return Scorer.score_token_attr(examples, "tag", missing_values={None, ""})
    raise ValueError(f"unknown task {task!r}: expected 'ner' or 'tag'")


@registry.scorers("spacy_infnet.scorer.v1")
def make_infnet_scorer() -> Callable[..., dict]:
    return score_infnet

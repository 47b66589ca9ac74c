"""Scorers: spaCy's own span scorer (NER, conlleval-style exact-match P/R/F) and token-attribute
scorer (tag accuracy), chosen by the component's ``task``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from spacy.scorer import Scorer, get_ner_prf
from spacy.training import Example
from spacy.util import registry


def score_infnet(
    examples: Iterable[Example],
    *,
    task: str = "ner",
    never_correct: Iterable[str] = (),
    **kwargs: Any,
) -> dict:
    """``task="ner"``: ents_p / ents_r / ents_f / ents_per_type; ``task="tag"``: tag_acc
    (spaCy's :meth:`~spacy.scorer.Scorer.score_token_attr`).  A token whose gold tag is in
    ``never_correct`` counts as wrong whatever is predicted: the CCG protocol's ``*`` (the
    supertags outside the 400 most frequent, Tu & Gimpel 2019 §5)."""
    examples = list(examples)
    if task == "ner":
        return get_ner_prf(examples)
    if task == "tag":
        scores = Scorer.score_token_attr(examples, "tag", missing_values={None, ""})
        wrong = set(never_correct)
        if wrong and scores.get("tag_acc") is not None:
            scores["tag_acc"] = tag_accuracy(examples, wrong)
        return scores
    raise ValueError(f"unknown task {task!r}: expected 'ner' or 'tag'")


#: the predicted tag written over a correct never-correct tag before scoring (matches no gold tag)
_NEVER = "<never-correct>"


def tag_accuracy(examples: Iterable[Example], never_correct: set[str] = frozenset()) -> float:
    """spaCy's ``tag_acc`` (:meth:`~spacy.scorer.Scorer.score_token_attr`, missing gold tags
    skipped), with every token whose gold tag is in ``never_correct`` counted wrong: the scored
    predictions are copies in which such a token's tag, when it matches, is replaced by one that
    cannot."""
    scored = []
    for eg in examples:
        pred = eg.predicted.copy()
        for token, gold in zip(pred, _gold_tags(eg)):
            if gold in never_correct and token.tag_ == gold:
                token.tag_ = _NEVER
        scored.append(Example(pred, eg.reference))
    return Scorer.score_token_attr(scored, "tag", missing_values={None, ""})["tag_acc"]


def _gold_tags(eg: Example) -> list[str | None]:
    """The gold tag of each predicted token aligned to exactly one gold token (else None)."""
    x2y = eg.alignment.x2y
    lengths, data = x2y.lengths, x2y.data
    starts = lengths.cumsum() - lengths
    return [
        eg.reference[int(data[starts[i]])].tag_ if lengths[i] == 1 else None
        for i in range(len(eg.predicted))
    ]


@registry.scorers("spacy_infnet.scorer.v1")
def make_infnet_scorer(never_correct: list[str] = []) -> Callable[..., dict]:  # noqa: B006
    """The component's scorer; ``never_correct``: gold tags always counted wrong (CCG: ``*``)."""
    if not never_correct:
        return score_infnet
    return partial(score_infnet, never_correct=tuple(never_correct))

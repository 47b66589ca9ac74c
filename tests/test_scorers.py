"""The component's scorer: spaCy's scores, and the CCG protocol's never-correct ``*``."""

import pytest
import spacy
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example

from spacy_infnet.pipeline.scorers import make_infnet_scorer, tag_accuracy


def examples():
    nlp = spacy.blank("en")
    words = ["a", "b", "c", "d", "e"]
    pred = Doc(nlp.vocab, words=words, tags=["X", "*", "Y", "Z", "*"])
    gold = Doc(nlp.vocab, words=words, tags=["X", "*", "Y", "W", ""])  # "e": no gold tag
    return [Example(pred, gold)]


def test_tag_accuracy_is_spacys_without_never_correct_tags():
    egs = examples()
    assert (
        tag_accuracy(egs)
        == Scorer.score_token_attr(egs, "tag", missing_values={None, ""})["tag_acc"]
        == pytest.approx(3 / 5)
    )


def test_the_star_supertag_is_always_wrong():
    egs = examples()
    assert tag_accuracy(egs, {"*"}) == pytest.approx(
        2 / 5
    )  # the correct "*" of "b" is counted wrong
    assert make_infnet_scorer(["*"])(egs, task="tag")["tag_acc"] == pytest.approx(2 / 5)
    assert make_infnet_scorer()(egs, task="tag")["tag_acc"] == pytest.approx(3 / 5)
    assert [t.tag_ for t in egs[0].predicted] == ["X", "*", "Y", "Z", "*"]  # not modified

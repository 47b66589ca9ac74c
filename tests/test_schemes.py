"""Tests for spacy_infnet.core.schemes (no data files needed)."""

import itertools

import pytest

from spacy_infnet.core.schemes import (
    bioes_to_iob2,
    convert_scheme,
    entity_types,
    iob1_to_iob2,
    iob2_to_bioes,
    labels_for_scheme,
    normalize_scheme,
    spans_to_tags,
    split_tag,
    tags_to_spans,
)


def test_normalize_scheme_aliases():
    assert normalize_scheme("BIO") == "iob2"
    assert normalize_scheme("iobes") == "bioes"
    assert normalize_scheme("IOB1") == "iob1"
    with pytest.raises(ValueError, match="bilou"):
        normalize_scheme("bilou")


def test_split_tag():
    assert split_tag("O") == ("O", "")
    assert split_tag("B-PER") == ("B", "PER")
    assert split_tag("S-B-X") == ("S", "B-X")  # only the first hyphen splits
    assert split_tag("PER") == ("I", "PER")  # IO-style bare label


def test_iob1_to_iob2():
    iob1 = ["I-ORG", "O", "I-MISC", "I-MISC", "B-MISC", "O", "I-PER", "I-LOC"]
    assert iob1_to_iob2(iob1) == [
        "B-ORG", "O", "B-MISC", "I-MISC", "B-MISC", "O", "B-PER", "B-LOC",
    ]  # fmt: skip


def test_iob2_bioes_both_ways():
    iob2 = ["B-PER", "I-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "O", "B-ORG"]
    bioes = ["B-PER", "I-PER", "E-PER", "O", "S-LOC", "B-LOC", "E-LOC", "O", "S-ORG"]
    assert iob2_to_bioes(iob2) == bioes
    assert bioes_to_iob2(bioes) == iob2
    assert convert_scheme(iob2, "bio", "iobes") == bioes


def test_to_iob1_uses_b_only_between_touching_same_type():
    iob2 = ["B-PER", "B-PER", "I-PER", "O", "B-LOC", "B-ORG"]
    assert convert_scheme(iob2, "iob2", "iob1") == [
        "I-PER",
        "B-PER",
        "I-PER",
        "O",
        "I-LOC",
        "I-ORG",
    ]
    assert iob1_to_iob2(convert_scheme(iob2, "iob2", "iob1")) == iob2


def test_tags_to_spans_valid():
    tags = ["B-PER", "E-PER", "O", "S-LOC", "B-ORG", "I-ORG", "E-ORG"]
    assert tags_to_spans(tags) == [(0, 2, "PER"), (3, 4, "LOC"), (4, 7, "ORG")]
    assert tags_to_spans(["O", "O"]) == []
    assert tags_to_spans([]) == []


@pytest.mark.parametrize(
    "tags, expected",
    [
        # I-/E- without a matching open entity start new ones; type change closes.
        (["I-PER", "E-LOC", "O", "B-ORG"], [(0, 1, "PER"), (1, 2, "LOC"), (3, 4, "ORG")]),
        # B- left open is closed where the entity ends.
        (["B-PER", "O", "B-LOC", "I-LOC"], [(0, 1, "PER"), (2, 4, "LOC")]),
        (["B-PER", "B-PER", "E-PER"], [(0, 1, "PER"), (1, 3, "PER")]),
        (["E-PER", "E-PER"], [(0, 1, "PER"), (1, 2, "PER")]),
        (["S-PER", "I-PER", "E-PER"], [(0, 1, "PER"), (1, 3, "PER")]),
        (["B-PER", "I-LOC", "E-LOC"], [(0, 1, "PER"), (1, 3, "LOC")]),
        (["B-PER", "S-PER"], [(0, 1, "PER"), (1, 2, "PER")]),
        (["I-MISC"], [(0, 1, "MISC")]),
        (["PER", "PER", "O"], [(0, 2, "PER")]),
    ],
)
def test_tags_to_spans_repairs_invalid_sequences(tags, expected):
    assert tags_to_spans(tags, "bioes") == expected


def test_tags_to_spans_never_raises_exhaustive():
    """Every sequence of length <= 4 over a small tag set decodes to valid spans."""
    alphabet = ["O", "B-A", "I-A", "E-A", "S-A", "B-B", "I-B", "E-B"]
    for n in range(5):
        for tags in itertools.product(alphabet, repeat=n):
            for scheme in ("iob1", "iob2", "bioes"):
                spans = tags_to_spans(list(tags), scheme)
                covered = set()
                for s, e, _ in spans:
                    assert 0 <= s < e <= n
                    assert not covered & set(range(s, e))
                    covered |= set(range(s, e))
                # every non-O token belongs to some entity: nothing is dropped
                assert covered == {i for i, t in enumerate(tags) if t != "O"}
                # re-encoding gives a valid sequence that decodes to the same spans
                for target in ("iob1", "iob2", "bioes"):
                    again = spans_to_tags(n, spans, target)
                    assert tags_to_spans(again, target) == spans


def test_spans_to_tags_round_trip():
    spans = [(0, 1, "LOC"), (1, 4, "PER"), (6, 8, "MISC")]
    bioes = spans_to_tags(9, spans, "bioes")
    assert bioes == ["S-LOC", "B-PER", "I-PER", "E-PER", "O", "O", "B-MISC", "E-MISC", "O"]
    assert tags_to_spans(bioes, "bioes") == spans
    iob2 = spans_to_tags(9, spans, "iob2")
    assert iob2 == ["B-LOC", "B-PER", "I-PER", "I-PER", "O", "O", "B-MISC", "I-MISC", "O"]
    assert tags_to_spans(iob2, "iob2") == spans
    # unsorted input is accepted
    assert spans_to_tags(9, list(reversed(spans)), "bioes") == bioes


@pytest.mark.parametrize(
    "spans",
    [[(0, 2, "A"), (1, 3, "B")], [(0, 0, "A")], [(2, 6, "A")], [(-1, 1, "A")], [(0, 1, "")]],
)
def test_spans_to_tags_rejects_bad_spans(spans):
    with pytest.raises(ValueError):
        spans_to_tags(5, spans, "bioes")


def test_labels_for_scheme():
    assert labels_for_scheme(["PER", "LOC", "ORG", "MISC"], "bioes") == [
        "O",
        "B-LOC", "I-LOC", "E-LOC", "S-LOC",
        "B-MISC", "I-MISC", "E-MISC", "S-MISC",
        "B-ORG", "I-ORG", "E-ORG", "S-ORG",
        "B-PER", "I-PER", "E-PER", "S-PER",
    ]  # fmt: skip
    assert len(labels_for_scheme(["PER", "LOC", "ORG", "MISC", "PER", "O"], "iobes")) == 17
    assert labels_for_scheme(["B", "A"], "bio") == ["O", "B-A", "I-A", "B-B", "I-B"]
    with pytest.raises(ValueError):
        labels_for_scheme(["A"], "nope")


def test_entity_types():
    assert entity_types(["O", "B-PER", "E-PER", "S-LOC", "I-MISC"]) == ["LOC", "MISC", "PER"]


def test_unknown_scheme_raises():
    with pytest.raises(ValueError, match="known schemes"):
        convert_scheme(["O"], "iob2", "bilou")
    with pytest.raises(ValueError):
        tags_to_spans(["O"], "xyz")

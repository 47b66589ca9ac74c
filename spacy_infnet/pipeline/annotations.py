"""Between spaCy's annotations and the model's label sequences, per task.

``task = "ner"``: gold entities are read from ``Example.get_aligned_ner`` (spaCy's BILUO) as
labels of the component's scheme (BIOES, Tu & Gimpel 2019 §5, or IOB2), and predicted labels
are written to ``doc.ents`` (ill-formed sequences are repaired, never dropped).
``task = "tag"``: gold and predicted labels are ``token.tag_``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from spacy.tokens import Doc, Span
from spacy.training import Example

from ..core.schemes import biluo_to_bioes, convert_scheme, labels_for_scheme, tags_to_spans


def label_set(examples: Iterable[Example], task: str, scheme: str) -> list[str]:
    """The model's labels for the tags (tag task) or entity types (NER) of the examples'
    reference docs: sorted tags, or :func:`~spacy_infnet.core.schemes.labels_for_scheme`."""
    if task == "tag":
        return sorted({t.tag_ for eg in examples for t in eg.reference if t.tag_})
    return labels_for_scheme({e.label_ for eg in examples for e in eg.reference.ents}, scheme)


def gold_labels(eg: Example, task: str, scheme: str) -> list[str] | None:
    """The gold labels aligned to ``eg.predicted``'s tokens; None if any is missing."""
    if task == "tag":
        tags = list(eg.get_aligned("TAG", as_string=True))
        return None if any(not t for t in tags) else tags
    biluo = eg.get_aligned_ner()
    if any(t in (None, "-", "") for t in biluo):
        return None
    bioes = biluo_to_bioes(biluo)
    return bioes if scheme == "bioes" else convert_scheme(bioes, "bioes", scheme)


def gold_batch(
    examples: Iterable[Example], labels: Sequence[str], task: str, scheme: str
) -> tuple[list[list[str]], list[list[int]]]:
    """Words and gold label indices (in ``labels``) of the examples whose gold labels all
    align (:func:`gold_labels`); the others are left out.

    Raises:
        ValueError: a gold label outside ``labels`` (naming it).
    """
    index = {label: i for i, label in enumerate(labels)}
    words, gold = [], []
    for eg in examples:
        names = gold_labels(eg, task, scheme)
        if not names:
            continue
        unknown = [t for t in names if t not in index]
        if unknown:
            raise ValueError(
                f"infnet_tagger: gold label {unknown[0]!r} is not in the label set "
                f"({len(index)} labels) of this component"
            )
        gold.append([index[t] for t in names])
        words.append([t.text for t in eg.predicted])
    return words, gold


def set_labels(doc: Doc, labels: Sequence[str], task: str, scheme: str) -> None:
    """Write one sentence's predicted labels to ``doc`` (tags, or entities)."""
    if task == "tag":
        for token, tag in zip(doc, labels):
            token.tag_ = tag
        return
    spans = [Span(doc, s, e, label=t) for s, e, t in tags_to_spans(labels, scheme)]
    doc.set_ents(spans, default="outside")

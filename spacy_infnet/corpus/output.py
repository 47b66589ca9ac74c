"""A tagged ``Doc`` as an output record: one JSON object per document, or a spaCy ``DocBin``.

The JSON record of a document (:func:`json_record`; key order as listed)::

    {"id": 17, "source": "corpus.txt:18", "tokens": ["Peter", "lives", ...],
     "tags": ["NNP", "VBZ", ...], "confidence": [0.98, 0.91, ...]}          # a tag pipeline
    {"id": 17, "source": "corpus.txt:18", "tokens": ["Peter", "lives", ...],
     "entities": [{"start": 0, "end": 5, "label": "PER", "text": "Peter", "score": 0.97}]}

``id``: the record's 0-based index; ``source``: its location; ``start``/``end``: character
offsets into the document's text (the input text; for pre-tokenised words, the words joined by
single spaces), end exclusive.  ``confidence`` (tags: the probability of each token's tag,
``token._.infnet_confidence``) and ``score`` (entities: the probability of the entity,
``doc.spans["infnet_ents"].attrs["scores"]``) appear only when asked for, rounded to
:data:`DIGITS` decimals (the component computes them in float32; see
:mod:`spacy_infnet.pipeline.outputs`).

A ``DocBin`` keeps the whole ``Doc`` (tags, entities, the scored spans and the confidence
extension through ``store_user_data``); the record's id and source are in
``doc.user_data[ID_KEY]`` and ``doc.user_data[SOURCE_KEY]``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from ..pipeline.outputs import SPANS_KEY, register_extensions

#: decimals of the probabilities written
DIGITS = 6
ID_KEY = "infnet_id"
SOURCE_KEY = "infnet_source"
TASKS = ("tag", "ner")


def words_doc(vocab: Vocab, words: Iterable[str]) -> Doc:
    """A ``Doc`` of pre-tokenised ``words``, one space between them and none after the last
    (so ``doc.text == " ".join(words)``)."""
    words = list(words)
    return Doc(vocab, words=words, spaces=[True] * (len(words) - 1) + [False])


def _prob(value: float | None) -> float | None:
    return None if value is None else round(float(value), DIGITS)


def json_record(
    doc: Doc, index: int, source: str, *, task: str, confidence: bool = False
) -> dict[str, Any]:
    """The output record of a tagged ``doc`` (see the module docstring).

    Args:
        task: the component's task, ``"tag"`` (``token.tag_``) or ``"ner"`` (``doc.ents``).
        confidence: add the probabilities (the component must have been run with
            ``confidence = true``; missing ones are null).

    Raises:
        ValueError: an unknown task.
    """
    record: dict[str, Any] = {"id": index, "source": source, "tokens": [t.text for t in doc]}
    if task == "tag":
        record["tags"] = [t.tag_ for t in doc]
        if confidence:
            register_extensions()
            record["confidence"] = [_prob(t._.infnet_confidence) for t in doc]
        return record
    if task != "ner":
        raise ValueError(f"unknown task {task!r}: choose from {', '.join(TASKS)}")
    scores: dict[tuple[int, int, str], float] = {}
    if confidence and SPANS_KEY in doc.spans:
        group = doc.spans[SPANS_KEY]
        values = group.attrs.get("scores", [])
        scores = {(s.start, s.end, s.label_): float(p) for s, p in zip(group, values)}
    entities = []
    for ent in doc.ents:
        entity = {
            "start": ent.start_char,
            "end": ent.end_char,
            "label": ent.label_,
            "text": ent.text,
        }
        if confidence:
            entity["score"] = _prob(scores.get((ent.start, ent.end, ent.label_)))
        entities.append(entity)
    record["entities"] = entities
    return record


def json_line(record: dict[str, Any]) -> bytes:
    """One line of a JSONL shard: the record as UTF-8 JSON (non-ASCII kept) and ``\\n``."""
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def docbin_bytes(docs: Iterable[tuple[Doc, int, str]]) -> bytes:
    """A ``.spacy`` file of ``(doc, id, source)`` triples: the docs with their user data
    (confidence), id and source (``doc.user_data[ID_KEY]``, ``[SOURCE_KEY]``)."""
    bin_ = DocBin(store_user_data=True)
    for doc, index, source in docs:
        doc.user_data[ID_KEY] = index
        doc.user_data[SOURCE_KEY] = source
        bin_.add(doc)
    return bin_.to_bytes()


def read_docbin(path: str | Path, vocab: Vocab) -> Iterator[Doc]:
    """The docs of a ``.spacy`` shard, with their id and source in ``doc.user_data``."""
    register_extensions()
    yield from DocBin().from_disk(path).get_docs(vocab)

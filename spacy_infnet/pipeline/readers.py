"""Corpus readers: ``spacy train`` reads straight from :func:`spacy_infnet.load_dataset`.

Config::

    [corpora.train]
    @readers = "spacy_infnet.DatasetCorpus.v1"
    name = "conll2003"
    split = "train"
    path = ${paths.conll2003}
    task = "ner"
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from confection import ConfigValidationError
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import registry

from ..core.schemes import tags_to_spans
from ..data import load_dataset


@lru_cache(maxsize=8)
def _load_split(name: str, path: str | None, split: str, options: tuple) -> tuple:
    """``((tokens, tags, document), ...)`` per sentence; document is None without the column."""
    dsd = load_dataset(name, path=path, **dict(options))
    if split not in dsd:
        raise ValueError(f"dataset {name!r} has no split {split!r}; it has {sorted(dsd)}")
    ds = dsd[split]
    names = ds.features["tags"].feature.names
    documents = ds["document"] if "document" in ds.column_names else [None] * len(ds)
    return tuple(
        (tuple(tokens), tuple(names[t] for t in tags), document)
        for tokens, tags, document in zip(ds["tokens"], ds["tags"], documents)
    )


def split_labels(name: str, path: str | None, split: str, options: dict | None = None) -> set:
    """The tag names that occur in one split (read once per process, shared with
    :func:`dataset_examples`).

    Raises:
        ValueError: the dataset has no such split; the loader's errors.
    """
    rows = _load_split(name, path, split, tuple(sorted((options or {}).items())))
    return {tag for _, tags, _ in rows for tag in tags}


def _group_documents(rows: list, name: str, split: str) -> list:
    """Merge consecutive sentences of one document: ``(tokens, tags, sent_starts)`` rows."""
    if rows and rows[0][2] is None:
        raise ValueError(
            f"documents=True needs document boundaries, and {name}/{split} has no 'document' "
            "column (CoNLL-2003 has one when read from local files: path=<folder with eng.train>)"
        )
    grouped = []
    for _, sentences in itertools.groupby(rows, key=lambda row: row[2]):
        tokens, tags, starts = [], [], []
        for sent_tokens, sent_tags, _ in sentences:
            if not sent_tokens:
                continue
            starts.extend([True] + [False] * (len(sent_tokens) - 1))
            tokens.extend(sent_tokens)
            tags.extend(sent_tags)
        if tokens:
            grouped.append((tuple(tokens), tuple(tags), starts))
    return grouped


def make_reference(
    nlp: Language,
    tokens: tuple[str, ...],
    tags: tuple[str, ...],
    task: str,
    scheme: str,
    sent_starts: list[bool] | None = None,
) -> Doc:
    """A gold ``Doc``: entities from ``scheme`` tags (task "ner") or ``token.tag_`` (task "tag")."""
    if task == "tag":
        return Doc(nlp.vocab, words=list(tokens), tags=list(tags), sent_starts=sent_starts)
    doc = Doc(nlp.vocab, words=list(tokens), sent_starts=sent_starts)
    doc.set_ents(
        [Span(doc, s, e, label=lab) for s, e, lab in tags_to_spans(list(tags), scheme=scheme)],
        default="outside",
    )
    return doc


def dataset_examples(
    nlp: Language,
    name: str,
    split: str,
    *,
    path: str | None = None,
    task: str = "ner",
    scheme: str = "bioes",
    options: dict | None = None,
    limit: int = 0,
    shuffle: bool = False,
    documents: bool = False,
) -> Iterator[Example]:
    """Yield :class:`spacy.training.Example` objects for one split of a dataset.

    One example per sentence, or with ``documents=True`` one per document (its sentences joined,
    ``Token.is_sent_start`` marking where each begins), so that a transformer energy reads each
    sentence with its neighbours as context.  ``limit`` counts sentences (taken in file order,
    before grouping); ``shuffle`` shuffles the examples.

    Raises:
        ValueError: an unknown ``task``; ``documents=True`` on a dataset without a ``document``
            column.
    """
    if task not in ("ner", "tag"):
        raise ValueError(f"unknown task {task!r}: expected 'ner' or 'tag'")
    rows = list(_load_split(name, path, split, tuple(sorted((options or {}).items()))))
    if limit:
        rows = rows[:limit]
    if documents:
        rows = _group_documents(rows, name, split)
    else:
        rows = [(tokens, tags, None) for tokens, tags, _ in rows]
    if shuffle:
        random.shuffle(rows)
    for tokens, tags, starts in rows:
        if not tokens:
            continue
        ref = make_reference(nlp, tokens, tags, task, scheme, sent_starts=starts)
        yield Example(Doc(nlp.vocab, words=list(tokens), sent_starts=starts), ref)


#: What the data folder of each dataset holds, for the error of a missing ``path``.
_FOLDER_CONTENTS = {
    "conll2003": "eng.train, eng.testa, eng.testb",
    "ud_ewt": "en_ewt-ud-{train,dev,test}.conllu",
    "ccgbank": "data/AUTO/SS/wsj_SSDD.auto",
    "ewt_ccg": "train.auto, dev.auto, test.auto",
}


def check_data_path(name: str, split: str, path: str) -> None:
    """Raise a :class:`confection.ConfigValidationError` when the data ``path`` does not exist.

    ``spacy train`` / ``spacy debug`` print this error as one block, without a traceback.  The
    message suggests ``--paths.<name>``: the shipped configs name their data path variable after
    the dataset (``paths.conll2003``, ``paths.ud_ewt``, ``paths.ccgbank``).
    """
    if Path(path).exists():
        return
    cwd = Path.cwd()
    resolved = Path(os.path.normpath(cwd / path))
    holds = _FOLDER_CONTENTS.get(name)
    what = f"the folder holding {holds}" if holds else "the data folder"
    raise ConfigValidationError(
        title=f"Data folder of dataset {name!r} not found",
        desc=(
            f"The {split} corpus has path = {path!r}; resolved against the current directory "
            f"({cwd}) that is {resolved}, which does not exist.\n"
            f"Pass {what} with --paths.{name} DIR, for example\n"
            f"    python -m spacy train CONFIG --paths.{name} /path/to/{name}\n"
            "(or, in a config without that variable, set `path` of its [corpora] readers)."
        ),
        show_config=False,
    )


@registry.readers("spacy_infnet.DatasetCorpus.v1")
def create_dataset_corpus(
    name: str,
    split: str,
    path: str | None = None,
    task: str = "ner",
    scheme: str = "bioes",
    options: dict[str, Any] = {},  # noqa: B006  (spaCy config defaults are plain values)
    limit: int = 0,
    shuffle: bool = False,
    documents: bool = False,
) -> Callable[[Language], Iterator[Example]]:
    """Reader over ``spacy_infnet.load_dataset(name, path, **options)[split]``.

    Args:
        name: dataset name ("twitter_pos", "conll2003", "ccgbank", "ud_ewt", "conll").
        split: "train", "validation" or "test".
        path: data folder (``None``/empty: the dataset's default, e.g. embedded Twitter POS).
        task: "ner" (tags are converted to entity spans) or "tag" (tags go to ``token.tag_``).
        scheme: scheme of the dataset's tags for task "ner" ("bioes", "iob2", "iob1").
        options: extra keyword arguments of the loader.
        limit: keep only the first ``limit`` sentences (0 = all).
        shuffle: shuffle the examples every time the corpus is read.
        documents: one example per document (sentences joined, sentence starts kept) instead
            of one per sentence; needs a ``document`` column (CoNLL-2003 from local files).

    Raises:
        confection.ConfigValidationError: ``path`` is given but does not exist (checked when the
            config is resolved, before any data is read; the message names ``--paths.<name>``).
    """
    path = path or None
    if path is not None:
        check_data_path(name, split, path)

    def read(nlp: Language) -> Iterator[Example]:
        yield from dataset_examples(
            nlp,
            name,
            split,
            path=path,
            task=task,
            scheme=scheme,
            options=options,
            limit=limit,
            shuffle=shuffle,
            documents=documents,
        )

    return read

"""Universal Dependencies English EWT (CoNLL-U) as a tagging dataset.

The default label is ``UPOS|FEATS`` (e.g. ``NOUN|Number=Sing``,
``PUNCT|_``), a large morphosyntactic tag set used here as an open stand-in
for CCG supertags.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import datasets

from .conll import build_tagging_dataset, read_lines

__all__ = ["TAG_COLUMNS", "UD_EWT_FILES", "UPOS_TAGS", "load_ud_ewt", "read_conllu"]

#: Split -> file name in the data folder.
UD_EWT_FILES: dict[str, str] = {
    "train": "en_ewt-ud-train.conllu",
    "validation": "en_ewt-ud-dev.conllu",
    "test": "en_ewt-ud-test.conllu",
}

#: Supported values of ``tag_column``.
TAG_COLUMNS: tuple[str, ...] = ("upos_feats", "upos", "xpos")

#: The 17 universal part-of-speech tags of UD v2.
UPOS_TAGS: frozenset[str] = frozenset({
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
})  # fmt: skip

# CoNLL-U columns: ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC
_FORM, _UPOS, _XPOS, _FEATS = 1, 3, 4, 5
#: A word (``3``), a multiword-token range (``3-4``) or an empty node (``3.1``).
_ID = re.compile(r"\d+(?:-\d+|\.\d+)?")


def _tag(fields: list[str], tag_column: str) -> str:
    if tag_column == "upos_feats":
        return f"{fields[_UPOS]}|{fields[_FEATS]}"
    if tag_column == "upos":
        return fields[_UPOS]
    return fields[_XPOS]


def read_conllu(
    path: str | os.PathLike, tag_column: str = "upos_feats"
) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """Read a CoNLL-U file into ``(ids, tokens, tags)``.

    Comment lines, multiword-token ranges (``1-2``) and empty nodes (``1.1``)
    are skipped; tokens are the FORMs of the syntactic words.  A sentence's
    id is its ``# sent_id`` comment, or its index in the file if it has none.

    Raises:
        ValueError: a line that does not have 10 tab-separated columns, an ID
            that is none of the three forms, an empty FORM, a UPOS outside
            :data:`UPOS_TAGS` (when the tags use it), bytes that are not
            UTF-8, or a sentence without words (naming file and line); an
            unknown ``tag_column``; a file without sentences (naming the
            file).
    """
    if tag_column not in TAG_COLUMNS:
        raise ValueError(f"Unknown tag_column {tag_column!r}; choose one of {TAG_COLUMNS}")
    path = Path(path)
    ids: list[str] = []
    all_tokens: list[list[str]] = []
    all_tags: list[list[str]] = []
    tokens: list[str] = []
    tags: list[str] = []
    sent_id: str | None = None
    first_line: int | None = None  # of the sentence being read
    check_upos = tag_column != "xpos"

    def flush() -> None:
        nonlocal tokens, tags, sent_id, first_line
        if first_line is not None and not tokens:
            name = "a sentence" if sent_id is None else f"sentence {sent_id!r}"
            raise ValueError(
                f"{path}:{first_line}: {name} without words (only comments, multiword-token "
                "ranges or empty nodes)"
            )
        if tokens:
            ids.append(sent_id if sent_id is not None else str(len(ids)))
            all_tokens.append(tokens)
            all_tags.append(tags)
        tokens, tags, sent_id, first_line = [], [], None, None

    for lineno, line in read_lines(path):
        if not line.strip():
            flush()
            continue
        if first_line is None:
            first_line = lineno
        if line.startswith("#"):
            if line.startswith("# sent_id") and "=" in line:
                sent_id = line.split("=", 1)[1].strip()
            continue
        fields = line.split("\t")
        if len(fields) != 10:
            raise ValueError(
                f"{path}:{lineno}: expected 10 tab-separated CoNLL-U columns, got {len(fields)}"
            )
        word_id = fields[0]
        if not _ID.fullmatch(word_id):
            raise ValueError(f"{path}:{lineno}: ID {word_id!r} is not a CoNLL-U word ID")
        if "-" in word_id or "." in word_id:
            continue
        if not fields[_FORM]:
            raise ValueError(f"{path}:{lineno}: empty FORM (word {word_id})")
        if check_upos and fields[_UPOS] not in UPOS_TAGS:
            raise ValueError(f"{path}:{lineno}: UPOS {fields[_UPOS]!r} is not a UD v2 tag")
        tokens.append(fields[_FORM])
        tags.append(_tag(fields, tag_column))
    flush()
    if not ids:
        raise ValueError(f"{path}: no sentences found (empty file)")
    return ids, all_tokens, all_tags


def load_ud_ewt(
    path: str | os.PathLike | None = None, tag_column: str = "upos_feats"
) -> datasets.DatasetDict:
    """Load UD English EWT for tagging.

    Args:
        path: folder with ``en_ewt-ud-{train,dev,test}.conllu``.
        tag_column: "upos_feats" (``UPOS|FEATS``, FEATS ``_`` kept
            literally), "upos" or "xpos".

    Returns:
        DatasetDict (train / validation / test; dev is the validation split)
        with ``id`` (the ``sent_id``), ``tokens`` and ``tags``.  ClassLabel
        names: the labels of train sorted, then the labels seen only in
        dev/test appended sorted, so every split encodes (a model trained on
        train never predicts those).

    Raises:
        ValueError: ``path`` is None, unknown ``tag_column``, a malformed
            line (naming file and line) or an empty file.
        FileNotFoundError: a file is missing from ``path``.
    """
    if path is None:
        raise ValueError(
            "UD English EWT is not bundled: pass path=<folder with "
            "en_ewt-ud-train.conllu, en_ewt-ud-dev.conllu, en_ewt-ud-test.conllu>"
        )
    folder = Path(path)
    splits = {split: read_conllu(folder / name, tag_column) for split, name in UD_EWT_FILES.items()}
    train_labels = {t for tags in splits["train"][2] for t in tags}
    other = {t for split in ("validation", "test") for tags in splits[split][2] for t in tags}
    names = sorted(train_labels) + sorted(other - train_labels)
    return build_tagging_dataset(splits, names)

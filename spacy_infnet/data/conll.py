"""Generic loader for column-formatted tagging files (CoNLL style).

One token per line, columns separated by whitespace (or a given separator),
a blank line between sentences.  Also holds the small helpers the other
loaders of this package share (reading blocks, building the splits).
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import datasets

from ..core.schemes import convert_scheme, normalize_scheme

__all__ = ["SPLITS", "load_conll", "read_lines"]

#: Split names every loader returns, in order.
SPLITS: tuple[str, ...] = ("train", "validation", "test")

Line = tuple[int, list[str]]  # (1-based line number, fields)


def read_lines(path: str | os.PathLike, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yield the lines of a text file as ``(lineno, line)``: 1-based numbers, lines without
    their end (``\n``, ``\r\n`` or ``\r``).  A UTF-8 byte-order mark opening the file is
    dropped.

    Raises:
        ValueError: bytes that are not valid ``encoding`` (naming file and line).
        FileNotFoundError: no such file.
    """
    path = Path(path)
    # utf-8-sig: the same codec, less a leading byte-order mark
    codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    try:
        with open(path, encoding=codec, newline=None) as fh:
            for lineno, line in enumerate(fh, start=1):
                yield lineno, line.rstrip("\r\n")
    except UnicodeDecodeError as err:
        bad = bytes(err.object[err.start : err.end])
        raise ValueError(
            f"{path}:{_undecodable_line(path, codec)}: not valid {encoding} text "
            f"({err.reason}: {bad!r})"
        ) from None


def _undecodable_line(path: Path, encoding: str) -> int:
    """The 1-based number of the first line of ``path`` that ``encoding`` cannot decode (the
    last line when the file ends inside a character)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    lineno = 0
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError:
                return lineno
    return max(lineno, 1)


def read_blocks(
    path: str | os.PathLike,
    separator: str | None = None,
    comment_prefix: str | None = None,
    doc_separator: str | None = None,
    encoding: str = "utf-8",
) -> Iterator[list[Line]]:
    """Yield the sentences of a column file as lists of ``(lineno, fields)``.

    Blank lines end a sentence; a line whose first field equals
    ``doc_separator`` also ends a sentence and yields nothing itself; lines
    starting with ``comment_prefix`` are skipped.  Line numbers are 1-based.

    Raises:
        ValueError: bytes that are not valid ``encoding`` (naming file and line).
    """
    for _, block in read_document_blocks(path, separator, comment_prefix, doc_separator, encoding):
        yield block


def read_document_blocks(
    path: str | os.PathLike,
    separator: str | None = None,
    comment_prefix: str | None = None,
    doc_separator: str | None = None,
    encoding: str = "utf-8",
) -> Iterator[tuple[int, list[Line]]]:
    """:func:`read_blocks` with each sentence's document: ``(document, block)`` pairs, where
    ``document`` counts the ``doc_separator`` lines before the sentence, from 0 (sentences
    before the first separator are in document 0 too)."""
    block: list[Line] = []
    n_separators = 0
    for lineno, line in read_lines(path, encoding):
        if comment_prefix and line.startswith(comment_prefix):
            continue
        if not line.strip():
            if block:
                yield max(n_separators - 1, 0), block
                block = []
            continue
        fields = line.split(separator) if separator is not None else line.split()
        if doc_separator is not None and fields and fields[0] == doc_separator:
            if block:
                yield max(n_separators - 1, 0), block
                block = []
            n_separators += 1
            continue
        block.append((lineno, fields))
    if block:
        yield max(n_separators - 1, 0), block


def tagging_features(names: Sequence[str], extra: dict | None = None) -> datasets.Features:
    """Features ``id``/``tokens``/``tags`` (plus ``extra`` columns before ``tags``)."""
    cols: dict = {
        "id": datasets.Value("string"),
        "tokens": datasets.Sequence(datasets.Value("string")),
    }
    if extra:
        cols.update(extra)
    cols["tags"] = datasets.Sequence(datasets.ClassLabel(names=list(names)))
    return datasets.Features(cols)


def encode(tag_lists: Iterable[Sequence[str]], names: Sequence[str]) -> list[list[int]]:
    """Map string tags to ClassLabel ids (KeyError for an unknown tag)."""
    table = {name: i for i, name in enumerate(names)}
    return [[table[t] for t in tags] for tags in tag_lists]


def build_split(columns: dict, features: datasets.Features) -> datasets.Dataset:
    """Build one split from a column dict (ClassLabel columns already ints)."""
    return datasets.Dataset.from_dict(columns, features=features)


def build_tagging_dataset(
    splits: dict[str, tuple[list[str], list[list[str]], list[list[str]]]],
    names: Sequence[str],
) -> datasets.DatasetDict:
    """Build a DatasetDict from ``{split: (ids, tokens, string tags)}``."""
    features = tagging_features(names)
    out = {}
    for split, (ids, tokens, tags) in splits.items():
        out[split] = build_split(
            {"id": ids, "tokens": tokens, "tags": encode(tags, names)}, features
        )
    return datasets.DatasetDict(out)


def _needed_columns(index: int) -> int:
    return index + 1 if index >= 0 else -index


def _resolve(path: str | os.PathLike | None, name: str | os.PathLike) -> Path:
    name = Path(name)
    if path is None or name.is_absolute():
        return name
    return Path(path) / name


def load_conll(
    path: str | os.PathLike | None = None,
    train: str | os.PathLike | None = "train.txt",
    validation: str | os.PathLike | None = "dev.txt",
    test: str | os.PathLike | None = "test.txt",
    token_column: int = 0,
    tag_column: int = -1,
    separator: str | None = None,
    scheme: str | None = None,
    target_scheme: str | None = None,
    labels: Sequence[str] | None = None,
    comment_prefix: str | None = None,
    doc_separator: str | None = "-DOCSTART-",
    encoding: str = "utf-8",
) -> datasets.DatasetDict:
    """Load the user's own column-formatted tagging files.

    Args:
        path: folder holding the split files; ``None`` means the split
            arguments are full paths (or relative to the working directory).
        train, validation, test: split file names, relative to ``path`` or
            absolute.  ``None`` leaves that split out.
        token_column, tag_column: column indices (negative counts from the
            end; default first and last column).
        separator: column separator; ``None`` splits on any whitespace.
        scheme, target_scheme: when both are given, tags are converted from
            ``scheme`` to ``target_scheme`` (see :mod:`.schemes`; ill-formed
            sequences are repaired).
        labels: the allowed labels in ClassLabel order; a tag outside them
            raises.  Without it the labels are the sorted union over all
            splits, with "O" first if present.
        comment_prefix: lines starting with it are skipped.
        doc_separator: a line whose first column equals it separates
            sentences and produces none (``None`` to disable).
        encoding: file encoding.

    Returns:
        DatasetDict with the requested splits, columns ``id`` (sentence index
        in the split), ``tokens`` and ``tags`` (ClassLabel, same names in
        every split).

    Raises:
        ValueError: a line with fewer columns than needed, an empty token,
            bytes that are not valid ``encoding``, or a tag outside
            ``labels`` (naming file and line); a file without sentences
            (naming the file); ``target_scheme`` without ``scheme``, an
            unknown scheme, or no split requested.
        FileNotFoundError: a split file that does not exist.
    """
    if target_scheme is not None and scheme is None:
        raise ValueError("target_scheme requires scheme (the scheme of the files)")
    if scheme is not None:
        normalize_scheme(scheme)
    if target_scheme is not None:
        normalize_scheme(target_scheme)
    files = {
        split: _resolve(path, name)
        for split, name in zip(SPLITS, (train, validation, test))
        if name is not None
    }
    if not files:
        raise ValueError("No split requested: train, validation and test are all None")
    needed = max(_needed_columns(token_column), _needed_columns(tag_column))
    if token_column != tag_column:
        needed = max(needed, 2)
    allowed = None if labels is None else {str(x) for x in labels}

    read: dict[str, tuple[list[str], list[list[str]], list[list[str]]]] = {}
    for split, file in files.items():
        ids, all_tokens, all_tags = [], [], []
        for block in read_blocks(file, separator, comment_prefix, doc_separator, encoding):
            tokens, tags, linenos = [], [], []
            for lineno, fields in block:
                n = len(fields)
                ok = -n <= token_column < n and -n <= tag_column < n
                if ok and token_column != tag_column:
                    ok = token_column % n != tag_column % n
                if not ok:
                    raise ValueError(
                        f"{file}:{lineno}: expected at least {needed} columns "
                        f"(token column {token_column}, tag column {tag_column}), got {n}"
                    )
                if not fields[token_column]:
                    raise ValueError(f"{file}:{lineno}: empty token (column {token_column})")
                tokens.append(fields[token_column])
                tags.append(fields[tag_column])
                linenos.append(lineno)
            if scheme is not None and target_scheme is not None:
                tags = convert_scheme(tags, scheme, target_scheme)
            if allowed is not None:
                for tag, lineno in zip(tags, linenos):
                    if tag not in allowed:
                        raise ValueError(f"{file}:{lineno}: tag {tag!r} is not in the given labels")
            ids.append(str(len(ids)))
            all_tokens.append(tokens)
            all_tags.append(tags)
        if not ids:
            raise ValueError(f"{file}: no sentences found (empty file)")
        read[split] = (ids, all_tokens, all_tags)

    if labels is not None:
        names = list(dict.fromkeys(str(x) for x in labels))
    else:
        seen = {t for _, _, tag_lists in read.values() for tags in tag_lists for t in tags}
        names = (["O"] if "O" in seen else []) + sorted(seen - {"O"})
    return build_tagging_dataset(read, names)

"""Reading pretrained word vectors in GloVe or word2vec text format."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["WordVectors", "load_word_vectors"]


@dataclass
class WordVectors:
    """A word-vector table.

    Attributes:
        words: the vocabulary, row order of ``vectors``.
        vectors: float32 array of shape ``[len(words), dim]``.
        index: word -> row; built from ``words`` when not given (the first
            occurrence of a duplicated word wins).
    """

    words: list[str]
    vectors: np.ndarray
    index: dict[str, int] = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.words = list(self.words)
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.words):
            raise ValueError(
                f"vectors must have shape [{len(self.words)}, D], got {self.vectors.shape}"
            )
        if self.index is None:
            index: dict[str, int] = {}
            for i, word in enumerate(self.words):
                index.setdefault(word, i)
            self.index = index

    @property
    def dim(self) -> int:
        """Dimensionality D of the vectors."""
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> np.ndarray:
        """Return the vector of ``word``; raises KeyError if it is unknown."""
        return self.vectors[self.index[word]]

    def get(self, word: str, default=None):
        """Return the vector of ``word`` or ``default``."""
        i = self.index.get(word)
        return default if i is None else self.vectors[i]


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _open_binary(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def _numbered_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(1-based line number, bytes)`` of the (decompressed) file.

    Raises:
        ValueError: damaged or truncated gzip data (naming file and line).
    """
    lineno = 0
    try:
        with _open_binary(path) as fh:
            for lineno, raw in enumerate(fh, start=1):
                yield lineno, raw
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise ValueError(f"{path}:{lineno + 1}: damaged or truncated gzip data ({err})") from None


def load_word_vectors(path: str | os.PathLike, limit: int | None = None) -> WordVectors:
    """Read word vectors from a GloVe or word2vec *text* file.

    GloVe format: one ``word v1 ... vD`` line per word, no header.  word2vec
    text format: the same preceded by a header line ``V D``.  The header is
    recognised as a first line holding exactly two integers.  Words may
    contain spaces (as in some GloVe releases) when the extra fields are not
    numbers.  Blank lines are skipped; ``.gz`` files are decompressed.
    Duplicate words keep their first vector.

    Args:
        path: the file.
        limit: read at most this many (distinct) words, from the top
            (a positive integer, or None for all).

    Returns:
        A :class:`WordVectors` with float32 vectors.

    Raises:
        ValueError: if the file holds no vectors (naming the file), or a line
            is malformed -- wrong number of values, a non-numeric or
            non-finite (nan, inf, overflowing) value, a bad header, invalid
            UTF-8, damaged gzip data, or the end of a file with fewer vectors
            than its word2vec header announces (naming the file and 1-based
            line).
        FileNotFoundError: if ``path`` does not exist.
    """
    path = Path(path)
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive integer or None, got {limit}")
    words: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    dim: int | None = None
    first = True
    announced: int | None = None  # the word2vec header's row count
    n_rows = 0  # vector lines read, duplicates included
    lineno = 0
    for lineno, raw in _numbered_lines(path):
        if limit is not None and len(words) >= limit:
            break
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}:{lineno}: invalid UTF-8 ({err})") from None
        if lineno == 1:
            line = line.removeprefix("\ufeff")  # a byte-order mark
        parts = line.split()
        if not parts:
            continue
        if first:
            first = False
            if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                announced, dim = int(parts[0]), int(parts[1])
                if dim <= 0:
                    raise ValueError(f"{path}:{lineno}: bad word2vec header {line.strip()!r}")
                continue
        if dim is None:
            dim = len(parts) - 1
            if dim <= 0:
                raise ValueError(f"{path}:{lineno}: a word without values")
        n_word = len(parts) - dim
        if n_word < 1 or (n_word > 1 and any(_is_float(p) for p in parts[1:n_word])):
            raise ValueError(
                f"{path}:{lineno}: expected {dim} values after the word, got {len(parts) - 1}"
            )
        word = " ".join(parts[:n_word])
        try:
            with np.errstate(over="ignore"):  # an overflow is reported below
                vec = np.array([float(v) for v in parts[n_word:]], dtype=np.float32)
        except ValueError:
            bad = next(v for v in parts[n_word:] if not _is_float(v))
            raise ValueError(f"{path}:{lineno}: non-numeric value {bad!r}") from None
        finite = np.isfinite(vec)
        if not finite.all():
            bad = parts[n_word + int(np.argmin(finite))]
            raise ValueError(f"{path}:{lineno}: value {bad!r} is not a finite float32")
        n_rows += 1
        if word in seen:
            continue
        seen.add(word)
        words.append(word)
        rows.append(vec)
    else:
        if announced is not None and n_rows < announced:
            raise ValueError(
                f"{path}:{lineno}: the file ends after {n_rows} vectors, its word2vec header "
                f"announces {announced} (a truncated file?)"
            )
    if not words:
        raise ValueError(f"{path}: no word vectors found (empty file)")
    return WordVectors(words, np.stack(rows))

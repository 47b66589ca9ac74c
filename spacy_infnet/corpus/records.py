"""Numbered input records of a corpus: one :class:`Record` per document, with its 0-based index,
a human location (``corpus.txt:17``, ``data.parquet row 17``) and either a text, pre-tokenised
words, or the reason it is bad.

Formats (:data:`FORMATS`, detected by :func:`detect_format`):

* ``text`` (``.txt``, ``.text``): one document per line.  Each line is decoded on its own, so a
  line that is not UTF-8 is one bad record; ``\\n`` and ``\\r\\n`` end lines (never the other
  Unicode line breaks); a last line without a newline is a record; a UTF-8 byte order mark
  at the start is dropped.  Locations are ``FILE:LINE``, lines counted from 1.
* ``jsonl`` (``.jsonl``, ``.ndjson``): one JSON object per line, with a text field (default
  ``text``) or a words field (default ``words``: a list of strings).  Locations ``FILE:LINE``.
* ``parquet`` (``.parquet``, ``.pq``, or a directory of them, read in sorted order): the same
  fields as columns, streamed in record batches with pyarrow.  Locations ``FILE row N``, rows
  counted from 0 within each file.
* ``hf``: a Hugging Face dataset written with ``save_to_disk`` (a directory with
  ``state.json`` or ``dataset_dict.json``), read with ``datasets.load_from_disk``; a
  ``DatasetDict`` needs ``split``.  Locations ``DIR[SPLIT] row N``, rows from 0.

Bad records are never dropped: a missing field, a field of the wrong type, bytes that are not
UTF-8 (or a string with a lone surrogate), invalid JSON, an empty or whitespace-only text, an
empty words list or an empty word each give a :class:`Record` whose ``error`` says why.

``datasets`` and ``pyarrow`` are imported only when a Parquet file or a saved dataset is read.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = ("text", "jsonl", "parquet", "hf")
SUFFIXES = {
    ".txt": "text",
    ".text": "text",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
#: bytes read at a time from a text or JSONL file
CHUNK = 1 << 20
#: rows read at a time from a Parquet file or a saved dataset
ROWS = 1024
BOM = codecs.BOM_UTF8


@dataclass(frozen=True)
class Record:
    """One input document.

    Attributes:
        index: 0-based position in the input (across the files of a Parquet directory).
        source: where it is, for people: ``corpus.txt:17`` (line from 1) or
            ``data.parquet row 17`` (row from 0).
        text: the raw text (tokenised by the pipeline), or None.
        words: pre-tokenised words (a ``Doc`` is built from them, one space between words), or
            None.
        error: why the record is bad (then ``text`` and ``words`` are None), or None.
    """

    index: int
    source: str
    text: str | None = None
    words: tuple[str, ...] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def bad_entry(self) -> dict[str, Any]:
        """``{"id", "source", "reason"}``: how a sidecar lists a bad record."""
        return {"id": self.index, "source": self.source, "reason": self.error}


# -- formats ---------------------------------------------------------------------------------
def detect_format(path: str | Path) -> str:
    """The format of ``path``: from a file's suffix (:data:`SUFFIXES`), or for a directory
    ``hf`` (it holds ``state.json`` or ``dataset_dict.json``) or ``parquet`` (it holds
    ``*.parquet`` files).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the format cannot be told (names the path and the formats).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input {path} does not exist")
    if path.is_dir():
        if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
            return "hf"
        if parquet_files(path):
            return "parquet"
        raise ValueError(
            f"{path} is a directory that holds neither a saved Hugging Face dataset "
            "(state.json or dataset_dict.json) nor .parquet files"
        )
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"cannot tell the format of {path} from its suffix {path.suffix!r}: pass the "
            f"format ({', '.join(FORMATS)}); suffixes known: {', '.join(SUFFIXES)}"
        )
    return fmt


def check_format(fmt: str | None, path: str | Path) -> str:
    """``fmt`` if it is one of :data:`FORMATS`, :func:`detect_format` of ``path`` if it is None
    or ``"auto"``.

    Raises:
        ValueError: an unknown format, or one that cannot be detected.
        FileNotFoundError: ``path`` does not exist.
    """
    if fmt is None or fmt == "auto":
        return detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown input format {fmt!r}: choose from auto, {', '.join(FORMATS)}")
    if not Path(path).exists():
        raise FileNotFoundError(f"input {path} does not exist")
    return fmt


def parquet_files(path: str | Path) -> list[Path]:
    """A Parquet file itself, or the ``*.parquet`` files under a directory (sorted by their
    relative path, hidden and ``_``-prefixed names skipped as pyarrow does)."""
    path = Path(path)
    if path.is_file():
        return [path]
    found = []
    for file in path.rglob("*.parquet"):
        rel = file.relative_to(path)
        if not any(part.startswith((".", "_")) for part in rel.parts):
            found.append(file)
    return sorted(found, key=lambda f: f.relative_to(path).as_posix())


# -- one record from a line or a row ---------------------------------------------------------
_KINDS = {bool: "a boolean", int: "a number", float: "a number", str: "a string", dict: "an object"}


def _kind(value: Any) -> str:
    """``value``'s kind in JSON words: "a number", "an object", "a list", ..."""
    if isinstance(value, (list, tuple)):
        return "a list"
    return _KINDS.get(type(value), f"a {type(value).__name__}")


def _surrogate(text: str) -> int | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        return err.start
    return None


def check_text(value: Any, name: str) -> tuple[str | None, str | None]:
    """(text, None) for a usable text, else (None, reason)."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as err:
            return None, f"field {name!r} is not UTF-8 (byte {err.start})"
    if not isinstance(value, str):
        return None, f"field {name!r} is {_kind(value)}, not a string"
    if not value:
        return None, f"field {name!r} is empty"
    if value.isspace():
        return None, f"field {name!r} is whitespace only"
    at = _surrogate(value)
    if at is not None:
        return None, f"field {name!r} is not valid Unicode (lone surrogate at character {at})"
    return value, None


def check_words(value: Any, name: str) -> tuple[tuple[str, ...] | None, str | None]:
    """(words, None) for a usable list of words, else (None, reason)."""
    if not isinstance(value, (list, tuple)):
        return None, f"field {name!r} is {_kind(value)}, not a list of strings"
    if not value:
        return None, f"field {name!r} is an empty list"
    for i, word in enumerate(value):
        if not isinstance(word, str):
            return None, f"{name}[{i}] is {_kind(word)}, not a string"
        if not word:
            return None, f"{name}[{i}] is an empty string"
        at = _surrogate(word)
        if at is not None:
            return None, f"{name}[{i}] is not valid Unicode (lone surrogate at character {at})"
    return tuple(value), None


def record_from_row(
    index: int, source: str, row: Mapping[str, Any], text_field: str, words_field: str
) -> Record:
    """The record of a JSON object, a Parquet row or a dataset row: its text field if that is
    present and not null, else its words field.  Never raises for bad content: the
    :class:`Record` carries the reason."""
    for name, check in ((text_field, check_text), (words_field, check_words)):
        if name in row and row[name] is not None:
            value, error = check(row[name], name)
            if error is not None:
                return Record(index, source, error=error)
            if check is check_text:
                return Record(index, source, text=value)
            return Record(index, source, words=value)
    present = [name for name in (text_field, words_field) if name in row]
    if present:
        return Record(index, source, error=f"field {present[0]!r} is null")
    return Record(index, source, error=f"missing field {text_field!r} (or {words_field!r})")


def record_from_line(
    index: int, source: str, line: bytes, fmt: str, text_field: str, words_field: str
) -> Record:
    """The record of one line of a text (``fmt="text"``) or JSONL (``"jsonl"``) file, without
    its line break.  Never raises for bad content: the :class:`Record` carries the reason."""
    try:
        decoded = line.decode("utf-8")
    except UnicodeDecodeError as err:
        return Record(index, source, error=f"not UTF-8 ({err.reason} at byte {err.start})")
    if not decoded:
        return Record(index, source, error="empty line")
    if decoded.isspace():
        return Record(index, source, error="whitespace-only line")
    if fmt == "text":
        return Record(index, source, text=decoded)
    try:
        value = json.loads(decoded)
    except json.JSONDecodeError as err:
        return Record(index, source, error=f"invalid JSON ({err.msg} at column {err.colno})")
    if not isinstance(value, dict):
        return Record(index, source, error=f"{_kind(value)}, not a JSON object")
    return record_from_row(index, source, value, text_field, words_field)


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of a byte stream given in chunks, without ``\n`` or ``\r\n`` and without a
    UTF-8 byte order mark at the start; a last line without a newline is a line, an empty
    stream has none."""
    rest, started = b"", False
    for chunk in chunks:
        rest += chunk
        if not started:
            if len(rest) < len(BOM) and BOM.startswith(rest):
                continue  # too short to tell
            rest, started = rest.removeprefix(BOM), True
        lines = rest.split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line[:-1] if line.endswith(b"\r") else line
    if rest:
        yield rest[:-1] if rest.endswith(b"\r") else rest


def _chunks(fh) -> Iterator[bytes]:
    while chunk := fh.read(CHUNK):
        yield chunk


# -- readers ---------------------------------------------------------------------------------
def read_records(
    path: str | Path,
    fmt: str | None = None,
    *,
    text_field: str = "text",
    words_field: str = "words",
    split: str | None = None,
    start: int = 0,
) -> Iterator[Record]:
    """The records of ``path`` in order, from index ``start`` on (those before it are skipped
    without being decoded).

    Args:
        path: a text, JSONL or Parquet file, a directory of Parquet files, or a saved dataset.
        fmt: one of :data:`FORMATS`; None or "auto": :func:`detect_format`.
        text_field, words_field: the fields (columns) read.
        split: the split of a saved ``DatasetDict``.

    Raises:
        FileNotFoundError: no such input.
        ValueError: an unknown format; a Parquet file or dataset with neither field (names the
            columns it has); a ``DatasetDict`` without a (known) ``split``.
    """
    path = Path(path)
    fmt = check_format(fmt, path)
    if fmt in ("text", "jsonl"):
        return _read_lines(path, fmt, text_field, words_field, start)
    if fmt == "parquet":
        return _read_parquet(path, text_field, words_field, start)
    return _read_dataset(path, text_field, words_field, split, start)


def count_records(
    path: str | Path,
    fmt: str | None = None,
    *,
    text_field: str = "text",
    words_field: str = "words",
    split: str | None = None,
) -> int:
    """How many records :func:`read_records` yields: lines of a text or JSONL file (one pass
    over its bytes), rows of Parquet files (their metadata) or of a dataset.

    Raises:
        the errors of :func:`read_records`.
    """
    path = Path(path)
    fmt = check_format(fmt, path)
    if fmt in ("text", "jsonl"):
        n, last = 0, b"\n"
        with open(path, "rb") as fh:
            for chunk in _chunks(fh):
                n += chunk.count(b"\n")
                last = chunk[-1:]
        return n + (last != b"\n")
    if fmt == "parquet":
        inputs = parquet_inputs(path, text_field, words_field)
        return sum(pf.metadata.num_rows for _, _, pf, _, _ in inputs)
    return len(_load_dataset(path, text_field, words_field, split)[0])


def _read_lines(path: Path, fmt: str, text_field: str, words_field: str, start: int):
    name = path.name
    with open(path, "rb") as fh:
        for i, line in enumerate(split_lines(_chunks(fh))):
            if i >= start:
                yield record_from_line(i, f"{name}:{i + 1}", line, fmt, text_field, words_field)


def _parquet_file(file: Path, text_field: str, words_field: str):
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(file)
    names = pf.schema_arrow.names
    columns = [c for c in (text_field, words_field) if c in names]
    if not columns:
        raise ValueError(
            f"{file} has no column {text_field!r} or {words_field!r} (it has "
            f"{', '.join(names) or 'none'}): name yours with --text-field or --words-field"
        )
    return pf, columns


def parquet_inputs(path: Path, text_field: str, words_field: str) -> list[tuple]:
    """(file, its name in locations, ParquetFile, columns read, index of its first row) of
    each Parquet file of ``path``, checked before any row is read."""
    out, offset = [], 0
    for file in parquet_files(path):
        pf, columns = _parquet_file(file, text_field, words_field)
        name = file.name if file == path else file.relative_to(path).as_posix()
        out.append((file, name, pf, columns, offset))
        offset += pf.metadata.num_rows
    return out


def _read_parquet(path: Path, text_field: str, words_field: str, start: int):
    inputs = parquet_inputs(path, text_field, words_field)

    def rows() -> Iterator[Record]:
        for _, name, pf, columns, first in inputs:
            index = first
            meta = pf.metadata
            for g in range(meta.num_row_groups):
                n = meta.row_group(g).num_rows
                if index + n <= start:
                    index += n
                    continue
                for batch in pf.iter_batches(batch_size=ROWS, row_groups=[g], columns=columns):
                    for row in batch.to_pylist():
                        if index >= start:
                            where = f"{name} row {index - first}"
                            yield record_from_row(index, where, row, text_field, words_field)
                        index += 1

    return rows()


def _load_dataset(path: Path, text_field: str, words_field: str, split: str | None):
    import datasets

    ds = datasets.load_from_disk(str(path))
    label = path.name
    if isinstance(ds, datasets.DatasetDict):
        if split is None or split not in ds:
            raise ValueError(
                f"{path} is a DatasetDict: name a split ({', '.join(ds)})"
                + ("" if split is None else f", not {split!r}")
            )
        ds, label = ds[split], f"{path.name}[{split}]"
    columns = [c for c in (text_field, words_field) if c in ds.column_names]
    if not columns:
        raise ValueError(
            f"{path} has no column {text_field!r} or {words_field!r} (it has "
            f"{', '.join(ds.column_names) or 'none'}): name yours with --text-field or "
            "--words-field"
        )
    return ds.select_columns(columns), label


def _read_dataset(path: Path, text_field: str, words_field: str, split: str | None, start: int):
    ds, label = _load_dataset(path, text_field, words_field, split)
    return _dataset_rows(ds, label, text_field, words_field, start)


def _dataset_rows(ds, label: str, text_field: str, words_field: str, start: int):
    for first in range(start, len(ds), ROWS):
        batch = ds[first : first + ROWS]
        names = list(batch)
        for j, values in enumerate(zip(*(batch[n] for n in names))):
            i = first + j
            row = dict(zip(names, values))
            yield record_from_row(i, f"{label} row {i}", row, text_field, words_field)

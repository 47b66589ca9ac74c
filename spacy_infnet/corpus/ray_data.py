"""The same tagging on Ray Data (``pip install "spacy-infnet[ray]"``): read, tag in a pool of
actors that each load the pipeline once, write JSON (or Parquet) files.

    from spacy_infnet.corpus.ray_data import tag_corpus_ray
    summary = tag_corpus_ray("runs/pos/model-best", "tweets.txt", "tagged_ray/", concurrency=2)

or ``python -m spacy_infnet tag PIPELINE INPUT OUTPUT_DIR --ray --n-process 2``.

The plan: ``ray.data.read_datasource`` of a subclass of Ray's public ``FileBasedDatasource``
→ ``map_batches(_RayTagger, compute=ActorPoolStrategy(size=N))`` (a
:class:`~.batch.BatchTagger` in each actor: the checks of :mod:`.records`, the records of
:mod:`.output`) → ``write_json`` or ``write_parquet``.  Text and JSONL are read by
:class:`LineRecordsDatasource`: every line is a row with its line number, and a line that is
not UTF-8, empty or not a JSON object becomes a row with an ``error`` (Ray's own ``read_text``
decodes whole files, so one bad byte fails the read, and drops empty lines).  Parquet is read
by :class:`ParquetRecordsDatasource`, which numbers the rows as ``tag`` does:
``ray.data.read_parquet`` cannot tell a row's index (``Dataset.zip`` with ``ray.data.range``
could, but it is deprecated since Ray 2.60 and its tasks waited forever for a CPU beside a
pool of actors that held them all).  Reads and writes take no CPU slot, so N actors may use N
CPUs.  Order is kept (``DataContext.execution_options.preserve_order``).

Each output row is the JSON record that ``tag`` writes, plus ``error``: null, or the reason of
a bad record (whose outputs are null).  ``write_json`` writes null fields too: compare rows
with their null fields dropped.  Probabilities (``--confidence``) can differ from ``tag``'s in
the last float32 digits (other batches); tags and entities do not.  This path does not resume:
it refuses an output directory that exists and is not empty.

**A multi-node cluster.**  The same code runs unchanged on a cluster: start Ray on each node
(``ray start --head`` on one, ``ray start --address=HEAD:6379`` on the others), put the
pipeline, the input and the output where every node can read and write them (the same NFS
path on every node, or the pipeline on NFS and ``s3://bucket/corpus.jsonl`` /
``s3://bucket/tagged/`` for the data, which pyarrow reads and writes directly), and connect
with ``ray.init(address="auto")`` — ``tag_corpus_ray(..., address="auto")``, ``tag ... --ray
--ray-address auto`` — or submit the command as a job::

    ray job submit --address http://HEAD:8265 --working-dir . -- \\
        python -m spacy_infnet tag /nfs/pipeline s3://bucket/corpus.jsonl s3://bucket/tagged \\
        --ray --ray-address auto --n-process 32

``--n-process`` is the number of tagging actors (one CPU each; with ``--gpu-id 0``, one GPU
each).

**Hugging Face ``datasets`` instead of Ray** (one machine, processes; see
:class:`~.batch.BatchTagger`)::

    from datasets import load_from_disk
    from spacy_infnet.corpus import BatchTagger

    tagger = BatchTagger("runs/pos/model-best")
    ds = load_from_disk("corpus_ds")
    tagged = ds.map(tagger, batched=True, batch_size=256, with_indices=True, num_proc=2,
                    remove_columns=ds.column_names, features=tagger.features())
    tagged.to_json("tagged.jsonl")
"""

from __future__ import annotations

import inspect
import logging
import os
import posixpath
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .batch import BatchTagger
from .records import (
    CHUNK,
    SUFFIXES,
    Record,
    check_format,
    record_from_line,
    record_from_row,
    split_lines,
)

logger = logging.getLogger("spacy.infnet")

OUTPUT_FORMATS = ("jsonl", "parquet")

try:  # the datasource subclasses Ray's; without Ray, importing this module still works
    from ray.data.datasource import FileBasedDatasource as _Base
except ImportError:  # pragma: no cover - ray is an optional extra
    _Base = object


def _records_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.int64()),
            ("source", pa.string()),
            ("text", pa.string()),
            ("words", pa.list_(pa.string())),
            ("error", pa.string()),
        ]
    )


def _records_table(records: list[Record]):
    import pyarrow as pa

    rows = [
        {
            "id": r.index,
            "source": r.source,
            "text": r.text,
            "words": None if r.words is None else list(r.words),
            "error": r.error,
        }
        for r in records
    ]
    return pa.Table.from_pylist(rows, schema=_records_schema())


class LineRecordsDatasource(_Base):
    """A text or JSONL file as rows ``id`` (0-based line index), ``source`` (``FILE:LINE``),
    ``text``, ``words``, ``error``: every line is a row, checked by
    :func:`~.records.record_from_line` (the same checks as ``tag``), so bad lines are rows
    with an ``error`` instead of failing the read or vanishing.

    Args:
        path: one file (local, or any filesystem pyarrow opens, e.g. ``s3://``).
        fmt: ``text`` or ``jsonl``.
        text_field, words_field: the JSONL fields.
        rows_per_block: rows per output block.
    """

    def __init__(
        self,
        path: str,
        *,
        fmt: str,
        text_field: str = "text",
        words_field: str = "words",
        rows_per_block: int = 4096,
        **kwargs: Any,
    ) -> None:
        super().__init__(path, **kwargs)
        self.fmt, self.text_field, self.words_field = fmt, text_field, words_field
        self.rows_per_block = rows_per_block

    def _read_stream(self, f, path: str) -> Iterator:
        name = posixpath.basename(path)
        records: list[Record] = []
        chunks = iter(lambda: f.read(CHUNK), b"")
        for i, line in enumerate(split_lines(chunks)):
            where = f"{name}:{i + 1}"
            records.append(
                record_from_line(i, where, line, self.fmt, self.text_field, self.words_field)
            )
            if len(records) >= self.rows_per_block:
                yield _records_table(records)
                records = []
        if records:
            yield _records_table(records)


class ParquetRecordsDatasource(_Base):
    """Parquet files as the rows of :class:`LineRecordsDatasource` (``id``: the row's index
    across the files, ``source``: ``FILE row N``), checked by
    :func:`~.records.record_from_row`.  Each file is read whole into memory by its read task,
    then in record batches; the files' first indices come from :func:`parquet_plan`.

    Args:
        plan: ``(path, name, first index)`` of each file, as :func:`parquet_plan` gives them.
        filesystem: the pyarrow filesystem of the paths.
    """

    def __init__(
        self,
        plan: list[tuple[str, str, int]],
        *,
        filesystem,
        text_field: str = "text",
        words_field: str = "words",
        rows_per_block: int = 4096,
        **kwargs: Any,
    ) -> None:
        super().__init__([p for p, _, _ in plan], filesystem=filesystem, **kwargs)
        self.plan = {p: (name, first) for p, name, first in plan}
        self.text_field, self.words_field = text_field, words_field
        self.rows_per_block = rows_per_block

    def _read_stream(self, f, path: str) -> Iterator:
        import pyarrow as pa
        import pyarrow.parquet as pq

        name, first = self.plan[path]
        pf = pq.ParquetFile(pa.BufferReader(f.readall()))
        fields = (self.text_field, self.words_field)
        columns = [c for c in fields if c in pf.schema_arrow.names]
        index = first
        for batch in pf.iter_batches(batch_size=self.rows_per_block, columns=columns):
            records = []
            for row in batch.to_pylist():
                where = f"{name} row {index - first}"
                records.append(record_from_row(index, where, row, *fields))
                index += 1
            yield _records_table(records)


def parquet_plan(input: str, text_field: str, words_field: str):
    """``(filesystem, [(path, name, first index)])`` of a Parquet file or directory, local or
    remote (``s3://...``): the files in the order and with the names ``tag`` reads them
    (:func:`~.records.parquet_files`), and the index of each one's first row.

    Raises:
        FileNotFoundError: no such file or directory.
        ValueError: no Parquet file, or one with neither field (names its columns).
    """
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    if "://" in input:
        fs, root = pafs.FileSystem.from_uri(input)
    else:
        fs, root = pafs.LocalFileSystem(), os.path.abspath(input)
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"input {input} does not exist")
    if info.type == pafs.FileType.File:
        files = [(root, posixpath.basename(root))]
    else:
        found = fs.get_file_info(pafs.FileSelector(root, recursive=True))
        files = []
        for item in found:
            rel = posixpath.relpath(item.path, root)
            hidden = any(part.startswith((".", "_")) for part in rel.split("/"))
            if item.type == pafs.FileType.File and rel.endswith(".parquet") and not hidden:
                files.append((item.path, rel))
        files.sort(key=lambda f: f[1])
    if not files:
        raise ValueError(f"{input} holds no .parquet file")
    plan, first = [], 0
    for path, name in files:
        with fs.open_input_file(path) as fh:
            pf = pq.ParquetFile(fh)
            names, rows = pf.schema_arrow.names, pf.metadata.num_rows
        if text_field not in names and words_field not in names:
            raise ValueError(
                f"{name} has no column {text_field!r} or {words_field!r} (it has "
                f"{', '.join(names) or 'none'})"
            )
        plan.append((path, name, first))
        first += rows
    return fs, plan


class _RayTagger:
    """The ``map_batches`` callable class: one per actor, loading the pipeline once."""

    def __init__(self, tagger: BatchTagger) -> None:
        self.tagger = tagger
        self.tagger.load()

    def __call__(self, batch):
        records = [
            Record(
                r["id"],
                r["source"],
                r["text"],
                None if r["words"] is None else tuple(r["words"]),
                r["error"],
            )
            for r in batch.to_pylist()
        ]
        return self.tagger.table(self.tagger.tag(records))


def _check_new(output_dir: str) -> None:
    """Raises ValueError if ``output_dir`` (local or remote) exists and holds files."""
    import pyarrow.fs as pafs

    if "://" in output_dir:
        fs, root = pafs.FileSystem.from_uri(output_dir)
    else:
        fs, root = pafs.LocalFileSystem(), os.path.abspath(output_dir)
    if fs.get_file_info(pafs.FileSelector(root, allow_not_found=True)):
        raise ValueError(
            f"{output_dir} is not empty: the Ray path writes a new directory (it does not resume)"
        )


def _zero_cpu(fn) -> dict[str, Any]:
    """Run ``fn``'s tasks (a read or write) without a CPU slot: the named ``num_cpus`` where
    Ray has it (≥ 2.50 for reads), else ``ray_remote_args``."""
    if "num_cpus" in inspect.signature(fn).parameters:
        return {"num_cpus": 0}
    return {"ray_remote_args": {"num_cpus": 0}}


@dataclass
class RaySummary:
    """What :func:`tag_corpus_ray` did.

    Attributes:
        output_dir: where Ray wrote the files.
        documents, tokens: tagged; bad_records: rows with an ``error``.
        seconds: wall time from reading to the last file written (s), not counting Ray's
            start; documents_per_second, tokens_per_second: over it.
    """

    output_dir: str
    documents: int
    tokens: int
    bad_records: int
    seconds: float
    documents_per_second: float
    tokens_per_second: float

    def line(self) -> str:
        return (
            f"tagged {self.documents:,} documents ({self.tokens:,} tokens) on Ray, "
            f"{self.bad_records:,} bad records kept as rows with an error; {self.seconds:.1f} s, "
            f"{self.documents_per_second:,.1f} documents/s; wrote {self.output_dir}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _counts(batch) -> dict[str, int]:
    """Documents, tokens and bad records of a pyarrow table of output rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    good = pc.is_null(batch["error"])
    n_good = int(pc.sum(good.cast(pa.int64())).as_py() or 0)
    tokens = 0
    if not pa.types.is_null(batch["tokens"].type):  # a file of bad rows only
        lengths = pc.list_value_length(pc.filter(batch["tokens"], good))
        tokens = int(pc.sum(lengths).as_py() or 0)
    return {
        "documents": n_good,
        "tokens": tokens,
        "bad_records": batch.num_rows - n_good,
    }


def _count(output_dir: str, output_format: str) -> dict[str, int]:
    """:func:`_counts` of the files Ray wrote: read here if they are local, else with Ray."""
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    totals = {"documents": 0, "tokens": 0, "bad_records": 0}
    if "://" in output_dir:
        import ray.data

        read = ray.data.read_json if output_format == "jsonl" else ray.data.read_parquet
        tables = (
            read(output_dir)
            .select_columns(["tokens", "error"])
            .iter_batches(batch_format="pyarrow")
        )
    else:
        suffix = ".json" if output_format == "jsonl" else ".parquet"
        files = sorted(Path(output_dir).glob(f"*{suffix}"))
        if output_format == "jsonl":
            tables = (pajson.read_json(f) for f in files)
        else:
            tables = (pq.read_table(f, columns=["tokens", "error"]) for f in files)
    for table in tables:
        if table.num_rows:
            for key, value in _counts(table).items():
                totals[key] += value
    return totals


def tag_corpus_ray(
    pipeline: str | Path,
    input: str,
    output_dir: str,
    *,
    input_format: str | None = None,
    text_field: str = "text",
    words_field: str = "words",
    output_format: str = "jsonl",
    concurrency: int = 2,
    batch_size: int = 256,
    gpu_id: int = -1,
    on_error: str = "skip",
    confidence: bool = False,
    decoder: str | None = None,
    component: str = "infnet_tagger",
    address: str | None = None,
    num_cpus: int | None = None,
    progress: bool = True,
) -> RaySummary:
    """Tag ``input`` on Ray Data into files under ``output_dir`` (see the module docstring).

    Args:
        input: a text, JSONL or Parquet file, or a directory of Parquet files (saved Hugging
            Face datasets: use ``tag`` without Ray, or ``Dataset.map``).
        output_format: ``jsonl`` (``write_json``) or ``parquet`` (``write_parquet``).
        concurrency: tagging actors (each loads the pipeline once; one CPU each, or one GPU
            with ``gpu_id`` ≥ 0).
        batch_size: rows per ``map_batches`` call (and ``nlp.pipe`` batch).
        address: the Ray cluster to join (``"auto"``, ``"ray://HEAD:10001"``); None: the
            running one, else a new local one with ``num_cpus`` CPUs (None: all).
        the others: as :func:`.tag.tag_corpus`.

    Returns:
        a :class:`RaySummary`.

    Raises:
        ImportError: Ray Data is not installed.
        FileNotFoundError: no such pipeline or (local) input.
        ValueError: a bad setting; a saved dataset as input; ``output_dir`` exists and is
            not empty; an input format that cannot be told (a remote input without a known
            suffix: pass ``input_format``).
        BadRecordError: a bad record with ``on_error="refuse"``.
    """
    import ray
    import ray.data
    from ray.data import DataContext

    from .tag import ON_ERROR, BadRecordError

    if output_format not in OUTPUT_FORMATS:
        raise ValueError(
            f"unknown Ray output format {output_format!r}: choose from {', '.join(OUTPUT_FORMATS)}"
        )
    if on_error not in ON_ERROR:
        raise ValueError(f"unknown on_error {on_error!r}: choose from {', '.join(ON_ERROR)}")
    if concurrency < 1 or batch_size < 1:
        raise ValueError(f"concurrency and batch size must be ≥ 1, got {concurrency}, {batch_size}")
    if "://" not in str(input):
        fmt = check_format(input_format, input)
    elif input_format in (None, "auto"):
        fmt = SUFFIXES.get(posixpath.splitext(str(input).rstrip("/"))[1].lower())
        if fmt is None:
            raise ValueError(f"cannot tell the format of {input}: pass the input format")
    else:
        fmt = check_format(input_format, ".")
    if fmt == "hf":
        raise ValueError(
            f"{input} is a saved Hugging Face dataset: the Ray path reads text, JSONL and "
            "Parquet; tag it without --ray, or with Dataset.map (see spacy_infnet.corpus.batch)"
        )
    out = str(output_dir)
    _check_new(out)
    tagger = BatchTagger(
        str(pipeline),
        component=component,
        decoder=decoder,
        confidence=confidence,
        text_field=text_field,
        words_field=words_field,
        batch_size=batch_size,
        gpu_id=0 if gpu_id >= 0 else -1,  # each actor sees its own GPU as device 0
        on_error=on_error,
    )
    started_ray = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address is None and num_cpus is not None:
            kwargs["num_cpus"] = num_cpus
        ray.init(address=address, **kwargs)
        started_ray = True
    ctx = DataContext.get_current()
    old = ctx.execution_options.preserve_order, ctx.enable_progress_bars
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = progress
    try:
        started = time.perf_counter()
        fields = {"text_field": text_field, "words_field": words_field}
        if fmt == "parquet":
            fs, plan = parquet_plan(str(input), **fields)
            source = ParquetRecordsDatasource(plan, filesystem=fs, **fields)
        else:
            source = LineRecordsDatasource(str(input), fmt=fmt, **fields)
        ds = ray.data.read_datasource(source, **_zero_cpu(ray.data.read_datasource))
        ds = ds.map_batches(
            _RayTagger,
            fn_constructor_args=(tagger,),
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=concurrency),
            num_cpus=0 if gpu_id >= 0 else 1,
            num_gpus=1 if gpu_id >= 0 else 0,
        )
        try:
            if output_format == "jsonl":
                ds.write_json(out, force_ascii=False, **_zero_cpu(ds.write_json))
            else:
                ds.write_parquet(out, **_zero_cpu(ds.write_parquet))
        except Exception as err:
            message = _bad_record(err)
            if message is not None:
                raise BadRecordError(message) from None
            raise
        seconds = time.perf_counter() - started
        sums = _count(out, output_format)
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = old
        if started_ray:
            ray.shutdown()
    summary = RaySummary(
        output_dir=out,
        **sums,
        seconds=seconds,
        documents_per_second=sums["documents"] / seconds if seconds else 0.0,
        tokens_per_second=sums["tokens"] / seconds if seconds else 0.0,
    )
    logger.debug("tag: %s", summary.line())
    return summary


def _bad_record(err: BaseException) -> str | None:
    """The message of the :class:`~.tag.BadRecordError` behind ``err``, or None.  Ray wraps an
    actor's error (``RayTaskError(UserCodeException)``) and keeps the original only as text,
    in the remote traceback."""
    from .tag import BadRecordError

    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, BadRecordError):
            return str(err)
        found = re.search(r"BadRecordError: (.+)", str(err))
        if found:
            return found.group(1).strip()
        err = getattr(err, "cause", None) or err.__cause__ or err.__context__
    return None

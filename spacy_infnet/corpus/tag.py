"""Tag a corpus with a trained pipeline into a directory of shards, resumably.

    from spacy_infnet.corpus import tag_corpus
    summary = tag_corpus("runs/pos/model-best", "tweets.txt", "tagged/", shard_size=10_000)

Shard ``k`` holds the records ``[k·S, (k+1)·S)`` of the input (``S = shard_size``): the JSON
records of its good documents (:mod:`.output`; or a ``DocBin``), its bad records listed in its
sidecar.  The layout, the atomic writes and what counts as a finished shard are in
:mod:`.shards`.  A rerun with the same settings skips the finished shards and tags the rest; a
rerun with other settings (pipeline, weights, decoder, confidence, input, fields, shard size or
output format; see :func:`fingerprint`) refuses.  Batch size, processes, GPU and ``on_error``
do not change the output and may differ between runs.
"""

from __future__ import annotations

import logging
import math
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..pipeline.checksum import weights_sha256
from . import shards
from .load import TaggerSettings, pipe_input
from .output import docbin_bytes, json_line, json_record
from .records import Record, check_format, count_records, read_records

logger = logging.getLogger("spacy.infnet")

ON_ERROR = ("skip", "refuse")


class BadRecordError(ValueError):
    """A bad record met with ``on_error="refuse"``; ``str()`` is a one-line message naming the
    input, the record's location and the reason."""


def refusal(record: Record, input: str | Path | None = None) -> BadRecordError:
    """The :class:`BadRecordError` of ``record``: ``bad record at data/corpus.txt:17: empty
    line (...)``, the location under the input path as given where it names that file."""
    where = record.source
    if input is not None:
        name = Path(input).name
        if where.startswith(name):
            where = f"{input}{where[len(name) :]}"
        else:
            where = f"{where} of {input}"
    return BadRecordError(
        f"bad record at {where}: {record.error} (--on-error skip lists bad records in the "
        "sidecars and goes on)"
    )


def peak_rss_mb() -> tuple[float, float]:
    """(this process, its largest finished child): peak resident set size in MB (10⁶ bytes),
    from ``resource.getrusage`` (``RUSAGE_SELF``, ``RUSAGE_CHILDREN``)."""
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, else KiB
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale / 1e6
    return own, children


@dataclass
class TagSummary:
    """What a run of :func:`tag_corpus` did.

    Attributes:
        output_dir: the output directory.
        documents, tokens: tagged by this run (documents: good records).
        bad_records: bad records skipped by this run (listed in the sidecars).
        shards_written: shards written by this run; shards_skipped: finished by earlier runs.
        seconds: wall time of the run (s); documents_per_second, tokens_per_second: this run's
            documents and tokens over ``seconds``.
        peak_rss_mb: peak resident memory of this process (MB); peak_rss_children_mb: of its
            largest child process (``n_process`` > 1), MB.
        total_documents, total_bad_records: in all shards of the output, this run's and
            earlier ones'.
    """

    output_dir: str
    documents: int = 0
    tokens: int = 0
    bad_records: int = 0
    shards_written: int = 0
    shards_skipped: int = 0
    seconds: float = 0.0
    documents_per_second: float = 0.0
    tokens_per_second: float = 0.0
    peak_rss_mb: float = 0.0
    peak_rss_children_mb: float = 0.0
    total_documents: int = 0
    total_bad_records: int = 0

    def line(self) -> str:
        """The one-line summary that ``tag`` prints."""
        return (
            f"tagged {self.documents:,} documents ({self.tokens:,} tokens), "
            f"{self.bad_records:,} bad records skipped; shards: {self.shards_written} written, "
            f"{self.shards_skipped} skipped (finished before); {self.seconds:.1f} s, "
            f"{self.documents_per_second:,.1f} documents/s; peak RSS {self.peak_rss_mb:,.0f} MB "
            f"(largest child {self.peak_rss_children_mb:,.0f} MB); {self.output_dir} holds "
            f"{self.total_documents:,} documents, {self.total_bad_records:,} bad records"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fingerprint(
    settings: TaggerSettings,
    input: Path,
    input_format: str,
    *,
    text_field: str,
    words_field: str,
    split: str | None,
    output_format: str,
    shard_size: int,
) -> dict[str, Any]:
    """What the output depends on: the pipeline (resolved path, SHA-256 of its weights,
    component, decoder, confidence), the input (resolved path, format, size in bytes, fields,
    split), the output format and the shard size."""
    if input.is_dir():  # not the cache files that Dataset.map writes into a saved dataset
        files = [p for p in input.rglob("*") if p.is_file() and not p.name.startswith("cache-")]
        size = sum(p.stat().st_size for p in files)
    else:
        size = input.stat().st_size
    return {
        "pipeline": str(Path(settings.pipeline).resolve()),
        "weights_sha256": weights_sha256(settings.pipeline, settings.component),
        "component": settings.component,
        "decoder": settings.decoder,
        "confidence": settings.confidence,
        "input": str(input.resolve()),
        "input_format": input_format,
        "input_bytes": size,
        "text_field": text_field,
        "words_field": words_field,
        "split": split,
        "output_format": output_format,
        "shard_size": shard_size,
    }


@dataclass
class _Shard:
    """One shard's records, in input order: the good ones to tag, the bad ones to list."""

    k: int
    records: int = 0
    good: list[Record] = field(default_factory=list)
    bad: list[Record] = field(default_factory=list)


def _whole_shards(
    records: Iterator[Record], done: set[int], shard_size: int, on_error: str
) -> Iterator[_Shard | Record]:
    """The shards not in ``done``, each once all its records are read; with ``on_error =
    "refuse"``, the first bad record instead of its shard, and nothing after it."""
    current: _Shard | None = None
    for record in records:
        k = record.index // shard_size
        if k in done:
            continue
        if current is not None and current.k != k:
            yield current
            current = None
        if current is None:
            current = _Shard(k)
        current.records += 1
        if record.ok:
            current.good.append(record)
        elif on_error == "refuse":
            yield record
            return
        else:
            current.bad.append(record)
    if current is not None:
        yield current


@dataclass(frozen=True)
class _Job:
    """What tagging a shard needs besides its records (the same in every process)."""

    settings: TaggerSettings
    out: Path
    output_format: str
    shard_size: int
    batch_size: int | None
    gpu_id: int


_loaded: dict[str, Any] = {}  # this process's pipeline: {"job", "nlp", "task"}


def _load(job: _Job) -> None:
    """Load the pipeline once per process (the pool's initializer, or in this process)."""
    nlp, task = job.settings.load(job.gpu_id)
    _loaded.update(job=job, nlp=nlp, task=task)


def _init_worker(job: _Job) -> None:
    """A pool worker: die with the main process (Linux ``PR_SET_PDEATHSIG``), so that a killed
    run leaves no worker that finishes its shard beside a rerun; then load the pipeline."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    _load(job)


def _tag_shard(shard: _Shard, on_doc: Callable[[], None] | None = None) -> tuple[int, int]:
    """Tag one shard's good records with the loaded pipeline and write the shard and its
    sidecar (atomically); returns (documents, tokens).  Every process batches a shard alike
    (batches never span shards), so the bytes do not depend on the number of processes."""
    job, nlp, task = _loaded["job"], _loaded["nlp"], _loaded["task"]
    inputs = ((pipe_input(r, nlp.vocab), (r.index, r.source)) for r in shard.good)
    items: list = []
    tokens = 0
    for doc, (index, source) in nlp.pipe(inputs, as_tuples=True, batch_size=job.batch_size):
        if job.output_format == "jsonl":
            record = json_record(doc, index, source, task=task, confidence=job.settings.confidence)
            items.append(json_line(record))
        else:
            items.append((doc, index, source))
        tokens += len(doc)
        if on_doc is not None:
            on_doc()
    data = b"".join(items) if job.output_format == "jsonl" else docbin_bytes(items)
    meta = {
        "first_id": shard.k * job.shard_size,
        "records": shard.records,
        "documents": len(items),
        "tokens": tokens,
        "bad_records": len(shard.bad),
        "bad": [r.bad_entry() for r in shard.bad],
    }
    shards.write_shard(job.out, shard.k, job.output_format, data, meta)
    logger.debug("tag: wrote shard %d (%d documents)", shard.k, len(items))
    return len(items), tokens


def tag_corpus(
    pipeline: str | Path,
    input: str | Path,
    output_dir: str | Path,
    *,
    input_format: str | None = None,
    text_field: str = "text",
    words_field: str = "words",
    split: str | None = None,
    output_format: str = "jsonl",
    shard_size: int = 10_000,
    batch_size: int | None = None,
    n_process: int = 1,
    gpu_id: int = -1,
    on_error: str = "skip",
    confidence: bool = False,
    decoder: str | None = None,
    component: str = "infnet_tagger",
    progress: bool = True,
) -> TagSummary:
    """Tag every record of ``input`` with ``pipeline`` into shards under ``output_dir``,
    skipping the shards an earlier run with the same settings finished.

    Args:
        pipeline: a trained pipeline directory with an ``infnet_tagger``.
        input: a text, JSONL or Parquet file, a directory of Parquet files, or a saved
            Hugging Face dataset (:mod:`.records`).
        output_dir: created if missing (layout: :mod:`.shards`).
        input_format: ``text``, ``jsonl``, ``parquet``, ``hf``; None or "auto": from the
            suffix or the directory.
        text_field, words_field: the field read as text, or else as pre-tokenised words.
        split: the split of a saved ``DatasetDict``.
        output_format: ``jsonl`` (JSON records, :func:`.output.json_record`) or ``docbin``.
        shard_size: records per shard (≥ 1).
        batch_size: documents per ``nlp.pipe`` batch (None: the pipeline's ``batch_size``).
        n_process: processes that tag (≥ 1); above 1, a pool of worker processes tags whole
            shards, each loading the pipeline once (:func:`_run`).
        gpu_id: ≥ 0: run on that CUDA device (spaCy's ``require_gpu``); -1: CPU.
        on_error: ``skip``: list bad records in the sidecars and go on; ``refuse``: stop at the
            first bad record, after writing the shards finished before it.
        confidence: write probabilities (token tags' or entities').
        decoder: a short decoder name of ``spacy_infnet.pipeline.registry.DECODERS`` (None:
            the pipeline's).
        component: the name of the ``infnet_tagger``.
        progress: show a tqdm bar on stderr (documents/s).

    Returns:
        a :class:`TagSummary` (the command prints its :meth:`TagSummary.line`).

    Raises:
        FileNotFoundError: no such pipeline, weights or input.
        ValueError: a bad setting (unknown format, decoder, ``on_error``; shard size or
            process count < 1); an input without the fields; ``output_dir`` holding the output
            of other settings, or locked by another run.
        BadRecordError: a bad record with ``on_error="refuse"`` (a ValueError).
    """
    started = time.perf_counter()
    if output_format not in shards.OUTPUT_FORMATS:
        raise ValueError(
            f"unknown output format {output_format!r}: choose from "
            f"{', '.join(shards.OUTPUT_FORMATS)}"
        )
    if on_error not in ON_ERROR:
        raise ValueError(f"unknown on_error {on_error!r}: choose from {', '.join(ON_ERROR)}")
    if shard_size < 1:
        raise ValueError(f"shard size must be at least 1, got {shard_size}")
    if n_process < 1:
        raise ValueError(f"n_process must be at least 1, got {n_process}")
    settings = TaggerSettings(str(pipeline), component, decoder, bool(confidence))
    settings.check()
    input = Path(input)
    fmt = check_format(input_format, input)
    fields = {"text_field": text_field, "words_field": words_field, "split": split}
    total = count_records(input, fmt, **fields)
    print_ = fingerprint(
        settings, input, fmt, **fields, output_format=output_format, shard_size=shard_size
    )

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with shards.locked(out):
        removed = shards.remove_stale_temporaries(out)
        if removed:
            logger.info("tag: removed %d temporary files of an interrupted run", removed)
        if shards.check_fingerprint(out, print_):
            shards.write_json(out / shards.FINGERPRINT, print_)
        summary = TagSummary(output_dir=str(out))
        n_shards = math.ceil(total / shard_size)
        done: set[int] = set()
        for k in range(n_shards):
            size = min(shard_size, total - k * shard_size)
            meta = shards.finished_shard(out, k, output_format, size)
            if meta is not None:
                done.add(k)
                summary.total_documents += meta.get("documents", 0)
                summary.total_bad_records += meta.get("bad_records", 0)
        summary.shards_skipped = len(done)
        todo = [k for k in range(n_shards) if k not in done]
        if todo:
            job = _Job(settings, out, output_format, shard_size, batch_size, gpu_id)
            _run(
                job,
                input,
                fmt,
                fields,
                summary,
                done=done,
                start=todo[0] * shard_size,
                total=total,
                n_process=n_process,
                on_error=on_error,
                progress=progress,
            )
    summary.seconds = time.perf_counter() - started
    if summary.seconds > 0:
        summary.documents_per_second = summary.documents / summary.seconds
        summary.tokens_per_second = summary.tokens / summary.seconds
    summary.peak_rss_mb, summary.peak_rss_children_mb = peak_rss_mb()
    logger.debug("tag: %s", summary.line())
    return summary


def _run(
    job: _Job,
    input: Path,
    fmt: str,
    fields: dict,
    summary: TagSummary,
    *,
    done: set[int],
    start: int,
    total: int,
    n_process: int,
    on_error: str,
    progress: bool,
) -> None:
    """Tag the records from ``start`` on, writing each shard not in ``done`` once it is whole.

    This process reads the input and groups it into shards.  With ``n_process`` = 1 it tags
    them itself; with more, a pool of ``n_process`` worker processes (spawned; each loads the
    pipeline once) tags whole shards and writes them, so that no ``Doc`` crosses a process
    boundary, with at most 2·``n_process`` shards read ahead."""
    from tqdm import tqdm

    shard_size = job.shard_size
    bar = tqdm(
        total=total,
        initial=start,  # the records before start are in finished shards
        unit="doc",
        desc=f"tag {input.name}",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )

    def count(shard: _Shard, documents: int, tokens: int) -> None:
        summary.shards_written += 1
        summary.documents += documents
        summary.tokens += tokens
        summary.bad_records += len(shard.bad)
        summary.total_documents += documents
        summary.total_bad_records += len(shard.bad)

    skip_done = (k * shard_size for k in sorted(done) if k * shard_size >= start)
    skipped = sum(min(shard_size, total - s) for s in skip_done)
    refused: Record | None = None
    records = read_records(input, fmt, start=start, **fields)
    try:
        bar.update(skipped)  # finished shards after start are read past, not tagged
        if n_process == 1:
            _load(job)
            for shard in _whole_shards(records, done, shard_size, on_error):
                if isinstance(shard, Record):
                    refused = shard
                    break
                count(shard, *_tag_shard(shard, on_doc=lambda: bar.update(1)))
                bar.update(len(shard.bad))
        else:
            refused = _run_pool(
                job, n_process, _whole_shards(records, done, shard_size, on_error), count, bar
            )
    finally:
        bar.close()
    if refused is not None:
        raise refusal(refused, input)


def _run_pool(
    job: _Job,
    n_process: int,
    work: Iterator[_Shard | Record],
    count: Callable[[_Shard, int, int], None],
    bar: Any,
) -> Record | None:
    """Tag the shards of ``work`` in a pool of ``n_process`` processes; returns the refused
    record, if any (after the shards before it are written)."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    pending: dict[Future, _Shard] = {}

    def collect(futures: set[Future]) -> None:
        for future in futures:
            shard = pending.pop(future)
            count(shard, *future.result())
            bar.update(shard.records)

    refused = None
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(n_process, context, initializer=_init_worker, initargs=(job,)) as pool:
        try:
            for shard in work:
                if isinstance(shard, Record):
                    refused = shard
                    break
                if len(pending) >= 2 * n_process:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    collect(finished)
                pending[pool.submit(_tag_shard, shard)] = shard
            collect(set(wait(pending).done))
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return refused

"""Tagging corpora far larger than a test split: ``python -m spacy_infnet tag``.

Modules:
    records: input readers (text, JSONL, Parquet, saved Hugging Face datasets) yielding
        numbered records, bad ones with the reason.
    output: a tagged ``Doc`` as a JSON record (tokens, tags or entities with character
        offsets, optional probabilities) or in a ``DocBin``.
    shards: the output directory (shards, sidecars, fingerprint, lock).
    tag: :func:`tag_corpus`, resumable, in one process or a pool of worker
    processes that tag whole shards.
    batch: :class:`BatchTagger`, tagging batches inside other engines' workers
        (``datasets.Dataset.map(num_proc=...)``, Ray Data).
    ray_data: :func:`~.ray_data.tag_corpus_ray`, the same on Ray Data (optional extra ``ray``;
        imported on first use).

This layer sits on top of ``core``, ``pipeline`` and ``fileio``; nothing below imports it.
"""

from .batch import BatchTagger
from .output import json_record, read_docbin
from .records import FORMATS, Record, count_records, detect_format, read_records
from .shards import bad_records, iter_output
from .tag import BadRecordError, TagSummary, tag_corpus


def __getattr__(name: str):
    if name in ("tag_corpus_ray", "RaySummary"):
        from . import ray_data

        return getattr(ray_data, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FORMATS",
    "BadRecordError",
    "BatchTagger",
    "RaySummary",
    "Record",
    "TagSummary",
    "bad_records",
    "count_records",
    "detect_format",
    "iter_output",
    "json_record",
    "read_docbin",
    "read_records",
    "tag_corpus",
    "tag_corpus_ray",
]

"""Tagging batches of records inside another engine's workers: Ray Data's ``map_batches``
(:mod:`.ray_data`) or Hugging Face ``datasets.Dataset.map(num_proc=...)``.

A :class:`BatchTagger` is a small picklable object: the pipeline is loaded on first use in each
worker process (never pickled), and its output rows are the JSON records of ``tag``
(:func:`.output.json_record`) plus an ``error`` column, null for good records and the reason
for bad ones (whose other outputs are null).  The Hugging Face alternative to Ray::

    from datasets import load_from_disk
    from spacy_infnet.corpus import BatchTagger

    tagger = BatchTagger("runs/pos/model-best")
    ds = load_from_disk("corpus_ds")                  # a Dataset with a "text" column
    tagged = ds.map(tagger, batched=True, batch_size=256, with_indices=True, num_proc=2,
                    remove_columns=ds.column_names, features=tagger.features())
    tagged.to_json("tagged.jsonl")                     # one JSON record per line, in order
"""

from __future__ import annotations

from typing import Any

from .load import TaggerSettings, pipe_input
from .output import json_record
from .records import Record, record_from_row

#: output columns, in order (``tags``/``confidence`` or ``entities`` as the task has them)
COLUMNS = ("id", "source", "tokens", "tags", "confidence", "entities", "error")


def output_schema(task: str, confidence: bool):
    """The pyarrow schema of the output rows of a ``task`` (``"tag"`` or ``"ner"``)
    component: ``id`` int64, ``source`` string, ``tokens`` list<string>, then ``tags``
    list<string> (and ``confidence`` list<double>) or ``entities`` list<struct<start, end:
    int64, label, text: string (, score: double)>>, and ``error`` string."""
    import pyarrow as pa

    fields = [("id", pa.int64()), ("source", pa.string()), ("tokens", pa.list_(pa.string()))]
    if task == "tag":
        fields.append(("tags", pa.list_(pa.string())))
        if confidence:
            fields.append(("confidence", pa.list_(pa.float64())))
    else:
        entity = [
            ("start", pa.int64()),
            ("end", pa.int64()),
            ("label", pa.string()),
            ("text", pa.string()),
        ]
        if confidence:
            entity.append(("score", pa.float64()))
        fields.append(("entities", pa.list_(pa.struct(entity))))
    fields.append(("error", pa.string()))
    return pa.schema(fields)


class BatchTagger:
    """Tag lists of :class:`~.records.Record` (or a Hugging Face batch) in any process.

    Args:
        pipeline: a trained pipeline directory (readable by every worker).
        component, decoder, confidence: as in :func:`.tag.tag_corpus`.
        text_field, words_field: the fields of rows given to :meth:`__call__`.
        batch_size: ``nlp.pipe`` batch size (None: the pipeline's).
        gpu_id: ≥ 0: the CUDA device of each worker.
        on_error: ``skip`` (bad records become rows with an ``error``) or ``refuse`` (raise
            :class:`~.tag.BadRecordError` at the first).
        name: how :meth:`__call__` names rows in locations (``NAME row N``).

    Raises (when tagging):
        FileNotFoundError, ValueError: as :meth:`.load.TaggerSettings.load`.
        BadRecordError: a bad record with ``on_error="refuse"``.
    """

    def __init__(
        self,
        pipeline: str,
        *,
        component: str = "infnet_tagger",
        decoder: str | None = None,
        confidence: bool = False,
        text_field: str = "text",
        words_field: str = "words",
        batch_size: int | None = None,
        gpu_id: int = -1,
        on_error: str = "skip",
        name: str = "dataset",
    ) -> None:
        self.settings = TaggerSettings(str(pipeline), component, decoder, bool(confidence))
        self.settings.check()
        self.text_field, self.words_field = text_field, words_field
        self.batch_size, self.gpu_id, self.on_error, self.name = batch_size, gpu_id, on_error, name
        self._nlp = None
        self._task: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_nlp"] = None  # each worker loads its own pipeline
        return state

    def load(self):
        """``(nlp, task)``, loaded once per process."""
        if self._nlp is None:
            self._nlp, self._task = self.settings.load(self.gpu_id)
        return self._nlp, self._task

    @property
    def task(self) -> str:
        return self.load()[1]

    def tag(self, records: list[Record]) -> list[dict[str, Any]]:
        """One output row per record, in order: the JSON record of a good one, ``{"id",
        "source", "error"}`` of a bad one."""
        from .tag import refusal

        nlp, task = self.load()
        if self.on_error == "refuse":
            for record in records:
                if not record.ok:
                    raise refusal(record)
        good = [r for r in records if r.ok]
        docs = iter(nlp.pipe((pipe_input(r, nlp.vocab) for r in good), batch_size=self.batch_size))
        rows = []
        for r in records:
            if r.ok:
                doc = next(docs)
                conf = self.settings.confidence
                rows.append(json_record(doc, r.index, r.source, task=task, confidence=conf))
            else:
                rows.append({"id": r.index, "source": r.source, "error": r.error})
        return rows

    def schema(self):
        """:func:`output_schema` of this pipeline."""
        return output_schema(self.task, self.settings.confidence)

    def table(self, rows: list[dict[str, Any]]):
        """``rows`` as a pyarrow Table of :meth:`schema` (missing outputs null)."""
        import pyarrow as pa

        return pa.Table.from_pylist(rows, schema=self.schema())

    def features(self):
        """The ``datasets.Features`` of the output (``Dataset.map(features=...)``)."""
        from datasets import Features

        return Features.from_arrow_schema(self.schema())

    def __call__(self, batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        """``Dataset.map(tagger, batched=True, with_indices=True)``: a batch of rows (columns
        as lists) and their indices → the output columns."""
        names = list(batch)
        records = [
            record_from_row(
                i,
                f"{self.name} row {i}",
                dict(zip(names, values)),
                self.text_field,
                self.words_field,
            )
            for i, values in zip(indices, zip(*(batch[n] for n in names)))
        ]
        return self.table(self.tag(records)).to_pydict()

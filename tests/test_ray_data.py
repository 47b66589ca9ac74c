"""Tagging on other engines: Ray Data (``spacy_infnet.corpus.ray_data``, a local cluster of 2
CPUs started here) and Hugging Face ``Dataset.map(num_proc=2)`` give the records of the
single-process ``tag``, bad lines included (as rows with an error) and in order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import ray

from spacy_infnet.corpus import BatchTagger, bad_records, iter_output, tag_corpus
from spacy_infnet.data import load_dataset


@pytest.fixture(scope="module")
def tweets() -> list[str]:
    data = load_dataset("twitter_pos")
    return [" ".join(r["tokens"]) for s in ("train", "validation", "test") for r in data[s]]


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPUs, shut down after the module."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def ray_rows(out: Path) -> list[dict]:
    """The rows Ray wrote (JSON lines files), in file order."""
    rows = []
    for path in sorted(out.glob("*.json")):
        rows.extend(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())
    return rows


def split(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(good rows without their null fields, bad rows as ``{"id", "source", "reason"}``)."""
    good = [{k: v for k, v in r.items() if v is not None} for r in rows if r["error"] is None]
    bad = [{"id": r["id"], "source": r["source"], "reason": r["error"]} for r in rows if r["error"]]
    return good, bad


def test_ray_output_equals_the_single_process_output(cluster, small_pos_pipeline, tweets, tmp_path):
    from spacy_infnet.corpus.ray_data import tag_corpus_ray

    objects = [{"text": t} for t in tweets[:700]] + [{"words": t.split()} for t in tweets[700:900]]
    lines = [json.dumps(o, ensure_ascii=False).encode() for o in objects]
    lines[10] = b""  # empty: Ray's read_text would drop it
    lines[20] = '{"text": "caf\xe9"}'.encode("latin-1")  # not UTF-8: read_text fails the file
    lines[30] = b"[1, 2]"
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_bytes(b"\n".join(lines) + b"\n")
    single = tag_corpus(small_pos_pipeline, corpus, tmp_path / "single", progress=False)
    summary = tag_corpus_ray(
        small_pos_pipeline, str(corpus), str(tmp_path / "ray"), concurrency=2, batch_size=64
    )
    rows = ray_rows(tmp_path / "ray")
    assert len({r["id"] for r in rows}) == len(rows) == 900
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)  # order kept
    good, bad = split(rows)
    assert good == list(iter_output(tmp_path / "single"))
    assert bad == bad_records(tmp_path / "single")
    assert [b["source"] for b in bad] == ["corpus.jsonl:11", "corpus.jsonl:21", "corpus.jsonl:31"]
    assert (summary.documents, summary.tokens, summary.bad_records) == (
        single.documents,
        single.tokens,
        3,
    )
    with pytest.raises(ValueError, match="is not empty"):
        tag_corpus_ray(small_pos_pipeline, str(corpus), str(tmp_path / "ray"))


def test_ray_reads_parquet_writes_parquet_and_refuses_bad_records(
    cluster, small_pos_pipeline, tweets, tmp_path
):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from spacy_infnet.corpus import BadRecordError
    from spacy_infnet.corpus.ray_data import tag_corpus_ray

    texts = tweets[:150] + [None] + tweets[150:300]
    (tmp_path / "pq").mkdir()
    pq.write_table(
        pa.table({"text": texts[:120]}), tmp_path / "pq" / "a.parquet", row_group_size=50
    )
    pq.write_table(
        pa.table({"text": texts[120:]}), tmp_path / "pq" / "b.parquet", row_group_size=50
    )
    tag_corpus(small_pos_pipeline, tmp_path / "pq", tmp_path / "single", progress=False)
    summary = tag_corpus_ray(
        small_pos_pipeline,
        str(tmp_path / "pq"),
        str(tmp_path / "ray"),
        output_format="parquet",
        concurrency=1,
    )
    assert (summary.documents, summary.bad_records) == (300, 1)
    table = pq.read_table(tmp_path / "ray").sort_by("id")
    good, bad = split(table.to_pylist())
    assert good == list(iter_output(tmp_path / "single"))
    assert bad == [{"id": 150, "source": "b.parquet row 30", "reason": "field 'text' is null"}]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(tweets[:50] + ["   "] + tweets[50:60]) + "\n")
    with pytest.raises(BadRecordError, match=r"^bad record at corpus.txt:51: whitespace-only line"):
        tag_corpus_ray(
            small_pos_pipeline, str(corpus), str(tmp_path / "r2"), on_error="refuse", concurrency=1
        )


def test_dataset_map_with_two_processes_gives_the_tag_records(small_pos_pipeline, tweets, tmp_path):
    """The Hugging Face alternative of the module docstring of spacy_infnet.corpus.ray_data."""
    import datasets

    texts = tweets[:120] + [""] + tweets[120:200]
    ds = datasets.Dataset.from_dict({"text": texts, "other": list(range(len(texts)))})
    ds.save_to_disk(str(tmp_path / "corpus_ds"))
    ds = datasets.load_from_disk(str(tmp_path / "corpus_ds"))
    tagger = BatchTagger(str(small_pos_pipeline), name="corpus_ds")
    tagged = ds.map(
        tagger,
        batched=True,
        batch_size=32,
        with_indices=True,
        num_proc=2,
        remove_columns=ds.column_names,
        features=tagger.features(),
    )
    tag_corpus(small_pos_pipeline, tmp_path / "corpus_ds", tmp_path / "single", progress=False)
    good, bad = split(tagged.to_list())
    assert good == list(iter_output(tmp_path / "single"))
    assert bad == bad_records(tmp_path / "single")
    assert bad == [{"id": 120, "source": "corpus_ds row 120", "reason": "field 'text' is empty"}]

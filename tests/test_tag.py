"""``tag`` (spacy_infnet.corpus): every input format with its bad records reported by line,
skip vs refuse, resume (finished shards skipped, damaged or half-made ones redone, stale
temporary files ignored), refusing other settings, ``n_process=2``, DocBin output, entity
offsets, and a run killed three times with SIGKILL that ends with the output of an
uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc

from spacy_infnet.cli import main
from spacy_infnet.corpus import (
    BadRecordError,
    bad_records,
    iter_output,
    read_docbin,
    read_records,
    tag_corpus,
)
from spacy_infnet.corpus.shards import finished_shard
from spacy_infnet.data import load_dataset
from spacy_infnet.pipeline.readers import dataset_examples

from small_configs import small_tagger, train_briefly

ANSI = re.compile(r"\x1b\[[0-9;]*m")


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tweets() -> list[str]:
    """Real tweets (Twitter POS, all splits), as texts."""
    data = load_dataset("twitter_pos")
    return [" ".join(r["tokens"]) for s in ("train", "validation", "test") for r in data[s]]


@pytest.fixture(scope="module")
def pos_nlp(small_pos_pipeline):
    return spacy.load(small_pos_pipeline)


@pytest.fixture(scope="module")
def ner_pipeline(shared_data, tmp_path_factory) -> Path:
    """A small NER pipeline (BLSTM-CRF energy, Viterbi) trained for 4 epochs on 200 real
    CoNLL-2003 sentences: a few seconds, and it finds entities."""
    nlp = small_tagger(task="ner", infnet=None, energy_max_epochs=100)
    conll = str(shared_data / "conll2003")
    examples = list(dataset_examples(nlp, "conll2003", "train", path=conll, task="ner", limit=200))
    train_briefly(nlp, examples, epochs=4, learn_rate=0.02, batch_size=16)
    path = tmp_path_factory.mktemp("pipelines") / "small_ner"
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="module")
def news(shared_data) -> list[list[str]]:
    """The words of 150 real CoNLL-2003 training sentences."""
    nlp = spacy.blank("en")
    conll = str(shared_data / "conll2003")
    examples = dataset_examples(nlp, "conll2003", "train", path=conll, task="ner", limit=150)
    return [[t.text for t in eg.reference] for eg in examples if len(eg.reference) > 1]


def tag(pipeline, input, out, **kwargs):
    return tag_corpus(pipeline, input, out, progress=False, **kwargs)


def shard_bytes(out: Path) -> dict[str, bytes]:
    """Every shard, sidecar and the fingerprint of an output directory."""
    names = sorted(p.name for p in out.iterdir() if p.name.startswith(("part-", "fingerprint")))
    return {name: (out / name).read_bytes() for name in names}


# -- formats and bad records -------------------------------------------------------------------
def test_text_lines_are_tagged_as_the_pipeline_tags_them_and_bad_lines_are_listed(
    small_pos_pipeline, pos_nlp, tweets, tmp_path
):
    good = tweets[:40]
    lines = [t.encode() for t in good[:10]]
    lines += [b"", b"  \t ", "caf\xe9 tweet".encode("latin-1")]  # lines 11, 12, 13: bad
    lines += [t.encode() + b"\r" for t in good[10:20]]  # CRLF line ends
    lines += [t.encode() for t in good[20:]]
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(b"\n".join(lines))  # the last line has no newline
    summary = tag(small_pos_pipeline, corpus, tmp_path / "out", shard_size=7)

    rows = list(iter_output(tmp_path / "out"))
    assert [r["id"] for r in rows] == list(range(10)) + list(range(13, 43))
    assert [r["source"] for r in rows][:11] == [f"corpus.txt:{i}" for i in range(1, 11)] + [
        "corpus.txt:14"
    ]
    expected = [pos_nlp(t) for t in good]
    assert [r["tokens"] for r in rows] == [[t.text for t in d] for d in expected]
    assert [r["tags"] for r in rows] == [[t.tag_ for t in d] for d in expected]
    assert bad_records(tmp_path / "out") == [
        {"id": 10, "source": "corpus.txt:11", "reason": "empty line"},
        {"id": 11, "source": "corpus.txt:12", "reason": "whitespace-only line"},
        {
            "id": 12,
            "source": "corpus.txt:13",
            "reason": "not UTF-8 (invalid continuation byte at byte 3)",
        },
    ]
    assert (summary.documents, summary.bad_records) == (40, 3)
    assert summary.tokens == sum(len(d) for d in expected)
    assert (summary.shards_written, summary.shards_skipped) == (7, 0)  # 43 records, 7 per shard
    assert summary.total_documents == 40 and summary.peak_rss_mb > 50
    meta = json.loads((tmp_path / "out" / "part-00001.meta.json").read_text())
    assert (meta["first_id"], meta["records"], meta["documents"], meta["bad_records"]) == (
        7,
        7,
        4,
        3,
    )


def test_jsonl_reads_text_or_words_and_reports_each_kind_of_bad_object(
    small_pos_pipeline, pos_nlp, tweets, tmp_path
):
    words = tweets[5].split()
    objects = [
        json.dumps({"text": tweets[0], "extra": 1}),
        json.dumps({"words": words}),
        "{not json",
        json.dumps([tweets[1]]),
        json.dumps({"txt": tweets[1]}),
        json.dumps({"text": 42}),
        json.dumps({"text": None}),
        json.dumps({"words": "one two"}),
        json.dumps({"words": []}),
        json.dumps({"words": ["ok", 3]}),
        json.dumps({"words": ["ok", ""]}),
        '{"text": "broken \\ud800 surrogate"}',
        json.dumps({"text": "   "}),
        json.dumps({"text": tweets[2], "words": ["ignored"]}),
    ]
    lines = [o.encode() for o in objects] + [b'{"text": "\xff"}', b""]
    lines[0] = b"\xef\xbb\xbf" + lines[0]  # a UTF-8 byte order mark starts the file
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_bytes(b"\n".join(lines) + b"\n")
    summary = tag(small_pos_pipeline, corpus, tmp_path / "out", shard_size=5)

    rows = list(iter_output(tmp_path / "out"))
    assert [(r["id"], r["source"]) for r in rows] == [
        (0, "corpus.jsonl:1"),
        (1, "corpus.jsonl:2"),
        (13, "corpus.jsonl:14"),
    ]
    assert rows[1]["tokens"] == words  # pre-tokenised words are kept as they are
    by_words = pos_nlp(Doc(pos_nlp.vocab, words=words))
    assert rows[1]["tags"] == [t.tag_ for t in by_words]
    assert rows[0]["tags"] == [t.tag_ for t in pos_nlp(tweets[0])]
    assert rows[2]["tags"] == [t.tag_ for t in pos_nlp(tweets[2])]
    reasons = {b["source"]: b["reason"] for b in bad_records(tmp_path / "out")}
    assert reasons == {
        "corpus.jsonl:3": "invalid JSON (Expecting property name enclosed in double quotes "
        "at column 2)",
        "corpus.jsonl:4": "a list, not a JSON object",
        "corpus.jsonl:5": "missing field 'text' (or 'words')",
        "corpus.jsonl:6": "field 'text' is a number, not a string",
        "corpus.jsonl:7": "field 'text' is null",
        "corpus.jsonl:8": "field 'words' is a string, not a list of strings",
        "corpus.jsonl:9": "field 'words' is an empty list",
        "corpus.jsonl:10": "words[1] is a number, not a string",
        "corpus.jsonl:11": "words[1] is an empty string",
        "corpus.jsonl:12": "field 'text' is not valid Unicode (lone surrogate at character 7)",
        "corpus.jsonl:13": "field 'text' is whitespace only",
        "corpus.jsonl:15": "not UTF-8 (invalid start byte at byte 10)",
        "corpus.jsonl:16": "empty line",
    }
    assert (summary.documents, summary.bad_records) == (3, 13)


def test_parquet_and_saved_datasets_give_the_jsonl_output(small_pos_pipeline, tweets, tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = tweets[:12] + [None, ""] + tweets[12:20]
    (tmp_path / "pq").mkdir()
    pq.write_table(pa.table({"text": texts[:9]}), tmp_path / "pq" / "a.parquet", row_group_size=4)
    pq.write_table(pa.table({"text": texts[9:]}), tmp_path / "pq" / "b.parquet", row_group_size=4)
    jsonl = tmp_path / "same.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    datasets.DatasetDict({"test": datasets.Dataset.from_dict({"text": texts})}).save_to_disk(
        str(tmp_path / "saved")
    )
    outputs = {}
    for name, kwargs in [
        ("same.jsonl", {}),
        ("pq", {}),
        ("saved", {"split": "test"}),
    ]:
        summary = tag(small_pos_pipeline, tmp_path / name, tmp_path / f"out_{name}", **kwargs)
        assert (summary.documents, summary.bad_records) == (20, 2), name
        outputs[name] = list(iter_output(tmp_path / f"out_{name}"))
    strip = [{k: v for k, v in r.items() if k != "source"} for r in outputs["same.jsonl"]]
    for name in ("pq", "saved"):
        assert [{k: v for k, v in r.items() if k != "source"} for r in outputs[name]] == strip
    assert [r["source"] for r in outputs["pq"]][8:10] == ["a.parquet row 8", "b.parquet row 0"]
    assert outputs["saved"][0]["source"] == "saved[test] row 0"
    assert bad_records(tmp_path / "out_pq") == [
        {"id": 12, "source": "b.parquet row 3", "reason": "field 'text' is null"},
        {"id": 13, "source": "b.parquet row 4", "reason": "field 'text' is empty"},
    ]
    # reading from the middle skips the rows before without reading them
    assert [r.index for r in read_records(tmp_path / "pq", start=7)][:3] == [7, 8, 9]
    with pytest.raises(ValueError, match=r"DatasetDict: name a split \(test\)"):
        tag(small_pos_pipeline, tmp_path / "saved", tmp_path / "o1")
    with pytest.raises(ValueError, match=r"has no column 'body' or 'words' \(it has text\)"):
        tag(small_pos_pipeline, tmp_path / "pq", tmp_path / "o2", text_field="body")
    with pytest.raises(ValueError, match="cannot tell the format of .*'.csv'"):
        (tmp_path / "x.csv").write_text("a\n")
        tag(small_pos_pipeline, tmp_path / "x.csv", tmp_path / "o3")


# -- refuse, resume, settings ------------------------------------------------------------------
def test_refuse_stops_at_the_first_bad_record_and_a_rerun_with_skip_resumes(
    small_pos_pipeline, tweets, tmp_path
):
    lines = tweets[:7] + ["\t"] + tweets[7:20] + [""]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    with pytest.raises(BadRecordError) as err:
        tag(small_pos_pipeline, corpus, out, shard_size=3, on_error="refuse")
    assert str(err.value) == (
        f"bad record at {corpus}:8: whitespace-only line (--on-error skip lists bad records in "
        "the sidecars and goes on)"
    )
    # shards 0 and 1 (records 0-5) were finished before record 7; shard 2 holds the bad one
    assert sorted(p.name for p in out.glob("part-*.jsonl")) == [
        "part-00000.jsonl",
        "part-00001.jsonl",
    ]
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*")}
    summary = tag(small_pos_pipeline, corpus, out, shard_size=3, on_error="skip")
    assert (summary.shards_skipped, summary.shards_written) == (2, 6)
    assert (summary.documents, summary.bad_records, summary.total_documents) == (14, 2, 20)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("part-0000[01]*")} == before
    assert [b["source"] for b in bad_records(out)] == ["corpus.txt:8", "corpus.txt:22"]


def test_resume_skips_finished_shards_and_redoes_missing_damaged_and_half_made_ones(
    small_pos_pipeline, tweets, tmp_path
):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(tweets[:60]) + "\n")
    out = tmp_path / "out"
    first = tag(small_pos_pipeline, corpus, out, shard_size=10)
    assert first.shards_written == 6
    reference = shard_bytes(out)
    (out / "part-00001.jsonl").unlink()  # a run killed between the sidecar and the shard
    damaged = out / "part-00002.jsonl"
    damaged.write_bytes(damaged.read_bytes()[:-20])  # truncated by something else
    (out / "part-00003.meta.json").unlink()  # a shard without its sidecar is not trusted
    stale = out / ".part-00004.jsonl.x1y2z3.tmp"
    stale.write_bytes(b'{"id": 0, "half a rec')  # left by a killed atomic write
    kept = {n: (out / n).stat().st_mtime_ns for n in ("part-00000.jsonl", "part-00004.jsonl")}
    time.sleep(0.01)

    summary = tag(small_pos_pipeline, corpus, out, shard_size=10)
    assert (summary.shards_written, summary.shards_skipped) == (3, 3)
    assert summary.documents == 30 and summary.total_documents == 60
    assert shard_bytes(out) == reference
    assert {n: (out / n).stat().st_mtime_ns for n in kept} == kept
    assert not stale.exists()
    again = tag(small_pos_pipeline, corpus, out, shard_size=10)
    assert (again.shards_written, again.shards_skipped, again.documents) == (0, 6, 0)


def test_a_rerun_with_other_settings_refuses_and_changes_nothing(
    small_pos_pipeline, tweets, tmp_path, capsys
):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(tweets[:12]) + "\n")
    out = tmp_path / "out"
    tag(small_pos_pipeline, corpus, out, shard_size=5)
    reference = shard_bytes(out)
    for kwargs, differs in [
        ({"shard_size": 4}, "shard_size: 5 then, 4 now"),
        ({"shard_size": 5, "decoder": "viterbi"}, "decoder: None then, 'viterbi' now"),
        ({"shard_size": 5, "confidence": True}, "confidence: False then, True now"),
        ({"shard_size": 5, "output_format": "docbin"}, "output_format: 'jsonl' then"),
    ]:
        with pytest.raises(ValueError, match=re.escape(differs)):
            tag(small_pos_pipeline, corpus, out, **kwargs)
    with corpus.open("a") as fh:
        fh.write("one more tweet\n")
    with pytest.raises(ValueError, match="input_bytes"):
        tag(small_pos_pipeline, corpus, out, shard_size=5)
    assert shard_bytes(out) == reference
    (out / "fingerprint.json").unlink()
    with pytest.raises(ValueError, match="holds shards but no valid fingerprint.json"):
        tag(small_pos_pipeline, corpus, out, shard_size=5)
    # the command line: the same refusal as one line, status 1
    argv = ["tag", str(small_pos_pipeline), str(corpus), str(tmp_path / "o2"), "--no-progress"]
    assert main(argv + ["--shard-size", "5"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(argv + ["--shard-size", "6"])
    assert exc.value.code == 1
    lines = [ANSI.sub("", x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("✘ tag: ") and "shard_size: 5 then" in lines[0]
    for bad_argv, message in [
        (["tag", str(small_pos_pipeline), str(tmp_path / "none.txt"), str(out)], "none.txt"),
        (argv + ["--decoder", "beam"], "unknown decoder 'beam'"),
        (argv + ["--on-error", "ignore"], "unknown on_error 'ignore'"),
        (argv + ["--format", "csv"], "unknown input format 'csv'"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main(bad_argv)
        out_lines = [x for x in capsys.readouterr().out.splitlines() if x.strip()]
        assert exc.value.code == 1 and len(out_lines) == 1 and message in out_lines[0]


# -- processes, DocBin, entities -------------------------------------------------------------
def test_two_processes_write_the_bytes_of_one(small_pos_pipeline, tweets, tmp_path):
    """``-n 2`` through the command line (a subprocess with a time limit: forked workers must
    not hang) gives byte-identical shards and sidecars, probabilities included."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(tweets[:500] + [""] + tweets[500:700]) + "\n")
    one = tag(small_pos_pipeline, corpus, tmp_path / "one", shard_size=150, confidence=True)
    cmd = [sys.executable, "-m", "spacy_infnet", "tag", str(small_pos_pipeline), str(corpus)]
    cmd += [str(tmp_path / "two"), "--shard-size", "150", "--confidence", "-n", "2"]
    cmd += ["--no-progress", "--summary", str(tmp_path / "summary.json")]
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300, env=_env())
    assert res.returncode == 0, res.stderr[-3000:]
    assert "tagged 700 documents" in res.stdout and "1 bad records skipped" in res.stdout
    assert shard_bytes(tmp_path / "two") == shard_bytes(tmp_path / "one")
    reported = json.loads((tmp_path / "summary.json").read_text())
    assert reported["documents"] == one.documents == 700
    assert reported["tokens"] == one.tokens and reported["peak_rss_children_mb"] > 0
    rows = list(iter_output(tmp_path / "one"))
    assert all(len(r["confidence"]) == len(r["tags"]) for r in rows)
    assert all(0 < p <= 1 for r in rows for p in r["confidence"])


def test_docbin_output_round_trips_with_entities_scores_ids_and_sources(
    ner_pipeline, news, tmp_path
):
    corpus = tmp_path / "news.jsonl"
    corpus.write_text("".join(json.dumps({"words": w}) + "\n" for w in news))
    kwargs = {"shard_size": 40, "confidence": True}
    tag(ner_pipeline, corpus, tmp_path / "bin", output_format="docbin", **kwargs)
    tag(ner_pipeline, corpus, tmp_path / "json", **kwargs)
    rows = list(iter_output(tmp_path / "json"))
    vocab = spacy.blank("en").vocab
    docs = [
        d for p in sorted((tmp_path / "bin").glob("part-*.spacy")) for d in read_docbin(p, vocab)
    ]
    assert len(docs) == len(rows) == len(news)
    n_entities = 0
    for doc, row in zip(docs, rows):
        assert (doc.user_data["infnet_id"], doc.user_data["infnet_source"]) == (
            row["id"],
            row["source"],
        )
        assert [t.text for t in doc] == row["tokens"]
        assert [(e.start_char, e.end_char, e.label_, e.text) for e in doc.ents] == [
            (e["start"], e["end"], e["label"], e["text"]) for e in row["entities"]
        ]
        scores = doc.spans["infnet_ents"].attrs["scores"]
        assert [round(float(p), 6) for p in scores] == [e["score"] for e in row["entities"]]
        assert all(t._.infnet_confidence is not None for t in doc)
        n_entities += len(doc.ents)
    assert n_entities >= 50


def test_entity_offsets_index_the_text_of_texts_and_of_words(ner_pipeline, news, tmp_path):
    nlp = spacy.load(ner_pipeline)
    texts = [" ".join(w) for w in news]
    objects = [{"text": "  " + t + " ."} for t in texts[:60]] + [{"words": w} for w in news[60:]]
    corpus = tmp_path / "news.jsonl"
    corpus.write_text("".join(json.dumps(o) + "\n" for o in objects))
    tag(ner_pipeline, corpus, tmp_path / "out", shard_size=50)
    rows = list(iter_output(tmp_path / "out"))
    n = 0
    for obj, row in zip(objects, rows):
        text = obj["text"] if "text" in obj else " ".join(obj["words"])
        expected = nlp(text) if "text" in obj else nlp(Doc(nlp.vocab, words=obj["words"]))
        assert [(e["start"], e["end"], e["label"]) for e in row["entities"]] == [
            (e.start_char, e.end_char, e.label_) for e in expected.ents
        ]
        for e in row["entities"]:
            assert text[e["start"] : e["end"]] == e["text"]
            n += 1
    assert (
        n >= 50 and any(r["entities"] for r in rows[:60]) and any(r["entities"] for r in rows[60:])
    )


# -- SIGKILL -----------------------------------------------------------------------------------
def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def test_killed_three_times_then_resumed_equals_an_uninterrupted_run(
    small_pos_pipeline, tweets, tmp_path
):
    """The command is killed with SIGKILL at a random moment after it has started writing,
    three times; a fourth run finishes; the shards, sidecars and fingerprint are the bytes
    of an uninterrupted run, and no half-written shard was ever visible."""
    lines = [f"{t} #{i}" for i, t in enumerate(tweets * 4)][:9000]
    lines[1234] = ""  # a bad record, listed the same way by both runs
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n")
    # small batches: the first shard is written early, so each killed run does little
    tag(small_pos_pipeline, corpus, tmp_path / "whole", shard_size=250, batch_size=32)
    reference = shard_bytes(tmp_path / "whole")
    assert len([n for n in reference if n.endswith(".jsonl")]) == 36

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "spacy_infnet", "tag", str(small_pos_pipeline), str(corpus)]
    cmd += [str(out), "--shard-size", "250", "--batch-size", "32", "--no-progress"]
    rng = random.Random(os.urandom(8))
    delays = []
    for _ in range(3):
        finished = len(list(out.glob("part-*.meta.json")))
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
        deadline = time.monotonic() + 120
        while len(list(out.glob("part-*.meta.json"))) <= finished:  # until it writes
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.005)
        delays.append(rng.uniform(0, 0.25))
        time.sleep(delays[-1])
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, f"finished before the kill (delays {delays})"
        for shard in out.glob("part-*.jsonl"):  # every visible shard is whole
            k = int(shard.name[5:10])
            assert finished_shard(out, k, "jsonl", 250) is not None, (shard, delays)
    done = len(list(out.glob("part-*.jsonl")))
    assert 0 < done < 36, delays
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300, env=_env())
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"{36 - done} written, {done} skipped" in res.stdout, (res.stdout, delays)
    assert shard_bytes(out) == reference, delays
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


# -- the recipe, at a small size ---------------------------------------------------------------
@pytest.mark.slow
def test_tag_corpus_recipe_at_a_small_size(small_pos_pipeline, shared_data, tmp_path):
    script = Path(__file__).resolve().parents[1] / "recipes" / "tag_corpus.py"
    cmd = [sys.executable, str(script), str(small_pos_pipeline), "--tokens", "20000"]
    cmd += ["--conll2003", str(shared_data / "conll2003")]
    cmd += ["--ud-ewt", str(shared_data / "ud_english_ewt"), "--corpus", str(tmp_path / "c.txt")]
    cmd += ["--work", str(tmp_path / "work"), "--output", str(tmp_path / "result")]
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=900, env=_env())
    assert res.returncode == 0, res.stderr[-3000:]
    table = json.loads((tmp_path / "result.json").read_text())
    runs = {r["name"]: r for r in table["runs"]}
    assert set(runs) == {
        "tag -n 1, infnet",
        "tag -n 2, infnet",
        "tag -n 1, viterbi",
        "tag -n 2, viterbi",
        "ray, 2 CPUs, infnet",
    }
    assert all(r["documents"] == table["corpus"]["documents"] for r in runs.values())
    assert table["ray_equals_tag_n_process_2"] is True
    assert (tmp_path / "result.md").read_text().count("\n|") >= 5

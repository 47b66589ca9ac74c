"""Hub export and loading: round trip for every decoder, the Hub cache offline, the model card,
the upload call, ``spacy package``, and the errors for damaged or mismatched exports."""

import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
import torch
from huggingface_hub import ModelCard

from spacy_infnet import from_pretrained, save_pretrained
from spacy_infnet.bench import harness
from spacy_infnet.cli import main as cli_main
from spacy_infnet.data import load_dataset
from spacy_infnet.hub import ExportError, build_wheel, push_to_hub
from spacy_infnet.pipeline.registry import DECODERS, decoder_block

WEIGHTS = "infnet_tagger/model.safetensors"


@pytest.fixture(scope="module")
def tweets() -> list[list[str]]:
    """40 real DAILY547 tweets (test split)."""
    return [list(ex["tokens"]) for ex in load_dataset("twitter_pos")["test"].select(range(40))]


def tags_of(nlp, sentences: list[list[str]]) -> list[list[str]]:
    docs = [spacy.tokens.Doc(nlp.vocab, words=words) for words in sentences]
    return [[t.tag_ for t in doc] for doc in nlp.pipe(docs)]


def run_python(script: str, data, env: dict):
    """Run ``script`` in a fresh interpreter with ``data`` as JSON on stdin; its last line of
    output, parsed as JSON."""
    proc = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(data),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def bench_results(small_pos_pipeline, tmp_path_factory) -> Path:
    settings = harness.BenchSettings(
        dataset="twitter_pos",
        split="test",
        decoders=["viterbi", "infnet"],
        limit=30,
        repeats=1,
        warmup=1,
    )
    results = harness.run_bench([small_pos_pipeline], settings)
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    out.write_text(json.dumps(results))
    return out


@pytest.fixture(scope="module")
def export(small_pos_pipeline, bench_results, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hub") / "export"
    return save_pretrained(
        small_pos_pipeline, out, bench=bench_results, repo_id="spacy-infnet/tiny-pos"
    )


@pytest.fixture
def damaged(export, tmp_path) -> Path:
    """A private copy of the export that a test may damage."""
    return Path(shutil.copytree(export, tmp_path / "copy"))


def test_export_layout_is_a_spacy_pipeline_with_config_json_and_card(export):
    names = {p.relative_to(export).as_posix() for p in export.rglob("*") if p.is_file()}
    assert {"README.md", "config.json", "config.cfg", "meta.json", WEIGHTS} <= names
    config = json.loads((export / "config.json").read_text())
    assert config["task"] == "tag"
    labels = json.loads((export / "infnet_tagger" / "cfg.json").read_text())["labels"]
    assert config["labels"] == labels and config["n_labels"] == len(labels) > 10
    assert config["decoder"]["@decoders"] == "spacy_infnet.InferenceNetwork.v1"
    assert config["infnet"]["architecture"] == "cnn"
    assert config["versions"]["spacy"] == spacy.__version__
    # every pipeline file is listed with its real checksum, and nothing else
    listed = set(config["files"])
    assert listed == names - {"README.md", "config.json"}
    digest = hashlib.sha256((export / WEIGHTS).read_bytes()).hexdigest()
    assert config["files"][WEIGHTS]["sha256"] == digest


#: Every method with its registry defaults (variants such as infnet_constrained: below).
METHODS = sorted(name for name, entry in DECODERS.items() if not entry.settings)


@pytest.mark.parametrize("decoder", METHODS)
def test_from_pretrained_predicts_as_the_trained_pipeline(
    decoder, small_pos_pipeline, export, tweets
):
    block = decoder_block(decoder)
    original = spacy.load(
        small_pos_pipeline, config={"components": {"infnet_tagger": {"decoder": block}}}
    )
    loaded = from_pretrained(export, decoder=decoder)
    assert loaded.get_pipe("infnet_tagger").decoder.name == decoder
    a = original.get_pipe("infnet_tagger")
    b = loaded.get_pipe("infnet_tagger")
    for net_a, net_b in ((a.energy, b.energy), (a.infnet, b.infnet)):
        for (k, v), (k2, v2) in zip(net_a.state_dict().items(), net_b.state_dict().items()):
            assert k == k2 and torch.equal(v, v2)
    assert tags_of(loaded, tweets) == tags_of(original, tweets)


def test_from_pretrained_takes_a_decoder_variant_of_the_table(small_pos_pipeline, export, tweets):
    original = spacy.load(
        small_pos_pipeline,
        config={"components": {"infnet_tagger": {"decoder": decoder_block("infnet_constrained")}}},
    )
    loaded = from_pretrained(export, decoder="infnet_constrained")
    decoder = loaded.get_pipe("infnet_tagger").decoder
    assert (decoder.name, decoder.rounding) == ("infnet", "constrained")
    assert tags_of(loaded, tweets) == tags_of(original, tweets)


def test_export_and_bench_agree_on_the_weights_checksum(
    small_pos_pipeline, bench_results, export, tmp_path
):
    """The bench records the SHA-256 of the source's weights file; ``nlp.to_disk`` in the
    export re-writes that file byte for byte, so the export's config.json, a bench of the
    export and an export of the in-memory pipeline all agree on it."""
    recorded = json.loads(bench_results.read_text())["pipelines"][0]["weights_sha256"]
    source = (small_pos_pipeline / WEIGHTS).read_bytes()
    assert recorded == hashlib.sha256(source).hexdigest()
    assert (export / WEIGHTS).read_bytes() == source
    assert json.loads((export / "config.json").read_text())["files"][WEIGHTS]["sha256"] == recorded
    settings = harness.BenchSettings(
        dataset="twitter_pos", decoders=["viterbi"], limit=4, repeats=1, warmup=0
    )
    (again,) = harness.run_bench([export], settings)["pipelines"]
    assert again["weights_sha256"] == recorded
    # an in-memory pipeline: the checksum of the file its to_disk writes
    out = save_pretrained(spacy.load(small_pos_pipeline), tmp_path / "mem", bench=bench_results)
    assert ModelCard.load(out / "README.md").data.eval_results


def test_export_refuses_bench_results_of_another_pipeline_or_without_checksum(
    small_pos_pipeline, bench_results, tmp_path
):
    results = json.loads(bench_results.read_text())
    ours = results["pipelines"][0]["weights_sha256"]
    other = dict(results["pipelines"][0], weights_sha256="ab" * 32)
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps(dict(results, pipelines=[other])))
    with pytest.raises(ValueError, match=rf"{re.escape(str(foreign))}.*{'ab' * 6}….*{ours[:12]}…"):
        save_pretrained(small_pos_pipeline, tmp_path / "out", bench=foreign)
    legacy = dict(results, pipelines=[{k: v for k, v in other.items() if k != "weights_sha256"}])
    with pytest.raises(
        ValueError, match="no weights checksum.*rerun `python -m spacy_infnet bench`"
    ):
        save_pretrained(small_pos_pipeline, tmp_path / "out", bench=legacy)
    assert not (tmp_path / "out").exists()  # refused before anything was written
    # several pipelines: the one with the exported weights is taken
    both = dict(results, pipelines=[other, results["pipelines"][0]])
    out = save_pretrained(small_pos_pipeline, tmp_path / "out", bench=both)
    assert ModelCard.load(out / "README.md").data.eval_results


def test_from_pretrained_keeps_the_exported_decoder_and_takes_a_config_block(export, tweets):
    nlp = from_pretrained(export)
    assert nlp.get_pipe("infnet_tagger").decoder.name == "infnet"
    gd = from_pretrained(
        export, decoder={"@decoders": "spacy_infnet.GradientDescent.v1", "steps": 3}
    )
    assert gd.get_pipe("infnet_tagger").decoder.steps == 3
    with pytest.raises(ValueError, match="unknown decoder 'beam'"):
        from_pretrained(export, decoder="beam")


def test_loading_never_unpickles(export, tweets, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("something tried to unpickle while loading an export")

    for name in ("load", "loads"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)
    nlp = from_pretrained(export, decoder="viterbi")
    assert len(tags_of(nlp, tweets[:3])) == 3


def _populate_hub_cache(export: Path, cache: Path, repo_id: str) -> str:
    """Lay ``export`` out in a Hub cache as ``snapshot_download`` does: content-addressed
    blobs, a snapshot folder of relative symlinks per commit, and refs/main → the commit."""
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    for p in sorted(export.rglob("*")):
        if not p.is_file():
            continue
        data = p.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / p.relative_to(export)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return commit


def test_hub_id_resolves_from_the_cache_with_hf_hub_offline(export, tmp_path, tweets):
    cache = tmp_path / "hub"
    commit = _populate_hub_cache(export, cache, "spacy-infnet/tiny-pos")
    script = (
        "import json, sys, spacy\n"
        "from spacy_infnet import from_pretrained\n"
        "words = json.loads(sys.stdin.read())\n"
        "nlp = from_pretrained('spacy-infnet/tiny-pos', decoder='viterbi')\n"
        "docs = [spacy.tokens.Doc(nlp.vocab, words=w) for w in words]\n"
        "out = {'tags': [[t.tag_ for t in d] for d in nlp.pipe(docs)],\n"
        "       'path': str(nlp.path)}\n"
        "try:\n"
        "    from_pretrained('spacy-infnet/not-cached')\n"
        "except OSError as err:\n"
        "    out['error'] = str(err)\n"
        "print(json.dumps(out))\n"
    )
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        HF_HUB_CACHE=str(cache),
        HF_HOME=str(tmp_path / "hf_home"),
    )
    out = run_python(script, tweets[:10], env)
    assert Path(out["path"]) == cache / "models--spacy-infnet--tiny-pos" / "snapshots" / commit
    expected = tags_of(from_pretrained(export, decoder="viterbi"), tweets[:10])
    assert out["tags"] == expected
    # an id missing from the cache while offline: the error names the local-path alternative
    assert "spacy-infnet/not-cached" in out["error"]
    assert "HF_HUB_OFFLINE" in out["error"] and "local export" in out["error"]


def test_unreachable_hub_id_error_names_the_local_path_alternative(tmp_path):
    with pytest.raises(OSError, match="pass the path of a local export"):
        from_pretrained("nobody-here/no-such-model", local_files_only=True, cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        from_pretrained(tmp_path / "missing" / "export")


def test_truncated_safetensors_is_refused_with_its_path(damaged):
    weights = damaged / WEIGHTS
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ExportError, match=r"model\.safetensors is truncated"):
        from_pretrained(damaged)
    # spacy.load of the damaged component alone (no config.json check) fails clearly too
    with pytest.raises(ValueError, match=r"cannot read weights .*model\.safetensors"):
        spacy.load(damaged)


def test_tampered_safetensors_is_refused(damaged):
    weights = damaged / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF  # a byte of a tensor: still a valid file, other numbers
    weights.write_bytes(bytes(data))
    with pytest.raises(ExportError, match=r"model\.safetensors was modified after export"):
        from_pretrained(damaged)


def test_missing_config_json_and_missing_weights(damaged):
    (damaged / WEIGHTS).unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors is missing"):
        from_pretrained(damaged)
    (damaged / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"config\.json is missing.*save_pretrained"):
        from_pretrained(damaged)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("labels", "swap", "label set does not match"),
        ("versions", {"spacy_infnet": "99.0.0"}, "exported by spacy-infnet 99.0.0"),
        ("format_version", 2, "format version 2 is not supported"),
        ("spacy_version", ">=9.0.0,<9.1.0", "trained for spaCy >=9.0.0,<9.1.0"),
    ],
)
def test_mismatched_config_json_is_refused(damaged, field, value, message):
    config = json.loads((damaged / "config.json").read_text())
    if value == "swap":
        config["labels"][0], config["labels"][1] = config["labels"][1], config["labels"][0]
    else:
        config[field] = value
    (damaged / "config.json").write_text(json.dumps(config))
    with pytest.raises(ExportError, match=message):
        from_pretrained(damaged)


def test_model_card_metadata_and_metrics_come_from_the_benchmark(export, bench_results):
    card = ModelCard.load(export / "README.md")
    data = card.data
    assert data.library_name == "spacy"
    assert {"spacy", "token-classification"} <= set(data.tags)
    assert data.model_name == "spacy-infnet/tiny-pos"
    rows = json.loads(bench_results.read_text())["pipelines"][0]["rows"]
    results = {r.metric_name: r for r in data.eval_results}
    assert len(results) == len(rows) == 2
    for row in rows:
        r = results[f"accuracy ({row['method']})"]
        assert r.metric_type == "accuracy" and r.dataset_split == "test"
        assert r.metric_value == pytest.approx(row["metric"] / 100, abs=1e-4)
        assert f"| {row['method']} | {row['metric']:.2f} |" in card.text
    assert 'from_pretrained("spacy-infnet/tiny-pos")' in card.text


def test_card_without_benchmark_and_export_refuses_foreign_directories(
    small_pos_pipeline, tmp_path
):
    out = save_pretrained(small_pos_pipeline, tmp_path / "plain")
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "spacy"
    # exporting again over an earlier export replaces it; a foreign directory is refused
    save_pretrained(small_pos_pipeline, out)
    assert from_pretrained(out).pipe_names == ["infnet_tagger"]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        save_pretrained(small_pos_pipeline, foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_push_to_hub_creates_the_repo_and_uploads_the_export(small_pos_pipeline, monkeypatch):
    from huggingface_hub import HfApi

    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        files = sorted(p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*"))
        # the uploaded folder must itself load (checksums, labels, weights)
        tagger = from_pretrained(folder_path).get_pipe("infnet_tagger")
        calls.append(("upload_folder", repo_id, files, tagger.stage, kwargs))
        return "https://huggingface.co/spacy-infnet/tiny-pos/commit/0"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    url = push_to_hub(small_pos_pipeline, "spacy-infnet/tiny-pos", private=True, token="t")
    assert url.endswith("/commit/0")
    (c1, repo1, kw1), (c2, repo2, files, stage, kw2) = calls
    assert (c1, repo1, kw1["private"], kw1["exist_ok"]) == (
        "create_repo",
        "spacy-infnet/tiny-pos",
        True,
        True,
    )
    assert c2 == "upload_folder" and repo2 == "spacy-infnet/tiny-pos"
    assert {"README.md", "config.json", WEIGHTS} <= set(files)
    assert stage == "infnet" and kw2["repo_type"] == "model"


def test_cli_export_writes_a_loadable_repository(small_pos_pipeline, bench_results, tmp_path):
    out = tmp_path / "cli_export"
    argv = ["export", str(small_pos_pipeline), str(out), "--bench", str(bench_results)]
    assert cli_main(argv) == 0
    assert from_pretrained(out).pipe_names == ["infnet_tagger"]
    with pytest.raises(SystemExit, match="export: .*not empty"):
        cli_main(["export", str(small_pos_pipeline), str(tmp_path)])


def test_spacy_package_wheel_installs_and_loads(export, tmp_path, tweets):
    pytest.importorskip("wheel", reason="spacy package --build wheel needs `wheel` or `build`")
    wheel = build_wheel(export, tmp_path / "dist", name="tiny_pos", version="0.0.1")
    assert wheel.name.startswith("en_tiny_pos-0.0.1") and wheel.suffix == ".whl"
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
        + ["--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    script = (
        "import json, sys, spacy\n"
        "nlp = spacy.load('en_tiny_pos')\n"
        "words = json.loads(sys.stdin.read())\n"
        "docs = [spacy.tokens.Doc(nlp.vocab, words=w) for w in words]\n"
        "print(json.dumps([[t.tag_ for t in d] for d in nlp.pipe(docs)]))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    assert run_python(script, tweets[:10], env) == tags_of(from_pretrained(export), tweets[:10])

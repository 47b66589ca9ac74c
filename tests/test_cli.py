"""The command line (``spacy_infnet.cli``): one typer app reached as ``python -m spacy_infnet``,
``spacy-infnet`` and ``python -m spacy infnet``; user errors as one line and status 1; the
dataset options reaching the loaders; any decoder of the table in ``bench`` and ``evaluate``;
``export`` refusing benchmark results of another pipeline."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
import torch

from spacy_infnet.cli import app, main
from spacy_infnet.data import load_dataset

COMMANDS = {"convert", "evaluate", "bench", "bench-beyond", "export", "push", "tag"}
WEIGHTS = "infnet_tagger/model.safetensors"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run(args: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, **(env or {})),
    )


def listed_commands(help_text: str) -> set[str]:
    """The command names of a click group's --help (wrapped descriptions are indented more)."""
    return set(re.findall(r"^  (\S+)", help_text.split("Commands:", 1)[1], re.MULTILINE))


def fails_with_one_line(argv: list[str], capsys) -> str:
    """Run ``main(argv)``; it must exit with status 1 after printing exactly one line (stderr
    may hold progress bars), and no traceback; returns that line without colours."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 1
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    lines = [ANSI.sub("", line) for line in out.out.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"✘ {argv[0]}: ") and lines[0][2:] == str(exc.value)
    return lines[0]


def test_the_three_entry_ways_reach_the_same_app():
    script = Path(sys.executable).with_name("spacy-infnet")
    procs = {
        "python -m spacy infnet": run([sys.executable, "-m", "spacy", "infnet", "--help"]),
        "python -m spacy_infnet": run([sys.executable, "-m", "spacy_infnet", "--help"]),
    }
    if script.exists():
        procs["spacy-infnet"] = run([str(script), "--help"])
    spacy_help = run([sys.executable, "-m", "spacy", "--help"])
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, (name, err[-2000:])
        assert listed_commands(out) == COMMANDS, name
    out, err = spacy_help.communicate(timeout=300)
    assert "infnet" in listed_commands(out)
    # in-process: spaCy's registry imports the entry point, which is this very app
    from spacy.cli._util import app as spacy_app
    from spacy.util import registry

    assert registry.cli.get_all()["infnet"] is app
    assert [g.typer_instance for g in spacy_app.registered_groups].count(app) == 1


def test_a_missing_pipeline_is_one_line_without_a_traceback_through_spacys_cli(tmp_path):
    proc = run([sys.executable, "-m", "spacy", "infnet", "evaluate", "/nonexistent", "d.spacy"])
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1
    assert "Traceback" not in out + err
    (line,) = [ANSI.sub("", x) for x in out.splitlines() if x.strip()]
    assert line == (
        "✘ evaluate: pipeline directory /nonexistent does not exist (pass a trained pipeline "
        "such as runs/pos/model-best)"
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["evaluate", "/nonexistent", "data.spacy"], "pipeline directory /nonexistent does not"),
        (["evaluate", "PIPELINE", "data.spacy", "--decoder", "beam"], "unknown decoder 'beam'"),
        (["evaluate", "PIPELINE", "TMP/missing.spacy"], "data file TMP/missing.spacy does not"),
        (["bench", "PIPELINE", "--dataset", "twitter_pos", "--decoders", "gd,beam"], "'beam'"),
        (["bench", "PIPELINE", "--dataset", "no_such"], "unknown dataset 'no_such'"),
        (["bench", "PIPELINE", "--dataset", "twitter_pos", "--option", "limit"], "KEY=VALUE"),
        (["bench", "PIPELINE", "--dataset", "conll", "--option", "trian=a"], "no option 'trian'"),
        (["convert", "conll", "TMP/out.spacy", "--path", "TMP"], "train.txt"),
        (["export", "PIPELINE", "TMP/out", "--bench", "TMP/none.json"], "none.json do not"),
        (
            ["bench", "PIPELINE", "--dataset", "twitter_pos", "--limit", "4", "--warmup", "0"]
            + ["--repeats", "1", "--decoders", "gd", "--set", "gd.bogus=1", "--output"]
            + ["TMP/b.json"],
            "Config error for 'spacy_infnet.GradientDescent.v1': .*bogus: unexpected argument",
        ),
    ],
)
def test_user_errors_print_one_line_and_exit_1(argv, message, small_pos_pipeline, tmp_path, capsys):
    argv = [
        a.replace("PIPELINE", str(small_pos_pipeline)).replace("TMP", str(tmp_path)) for a in argv
    ]
    line = fails_with_one_line(argv, capsys)
    assert re.search(message.replace("TMP", re.escape(str(tmp_path))), line), line


@pytest.fixture(scope="module")
def constrained_bench(small_pos_pipeline, tmp_path_factory) -> Path:
    """``bench --decoders infnet,infnet_constrained`` on the small POS pipeline (its JSON)."""
    out = tmp_path_factory.mktemp("cli_bench") / "bench.json"
    argv = ["bench", str(small_pos_pipeline), "--dataset", "twitter_pos", "--limit", "16"]
    argv += ["--repeats", "1", "--warmup", "0", "--output", str(out)]
    assert main(argv + ["--decoders", "infnet,infnet_constrained"]) == 0
    return out


def test_bench_runs_infnet_constrained_and_records_the_weights_checksum(
    constrained_bench, small_pos_pipeline
):
    (p,) = json.loads(constrained_bench.read_text())["pipelines"]
    rows = {r["method"]: r for r in p["rows"]}
    assert list(rows) == [
        "Viterbi",
        "inference network",
        "inference network, constrained rounding",
    ]
    constrained = rows["inference network, constrained rounding"]
    assert constrained["decoder"] == "infnet_constrained"
    assert constrained["settings"]["rounding"] == "constrained"
    assert constrained["search_error"]["below_viterbi"] == 0
    # a tag task has no scheme constraints: constrained rounding is the argmax
    assert constrained["metric"] == rows["inference network"]["metric"]
    digest = hashlib.sha256((small_pos_pipeline / WEIGHTS).read_bytes()).hexdigest()
    assert p["weights_sha256"] == digest


def test_the_cli_logs_progress_through_spacys_logger_at_info(small_pos_pipeline, tmp_path, caplog):
    spacy_logger = logging.getLogger("spacy")
    spacy_logger.setLevel(logging.WARNING)
    argv = ["bench", str(small_pos_pipeline), "--dataset", "twitter_pos", "--limit", "4"]
    argv += ["--repeats", "1", "--warmup", "0", "--decoders", "viterbi"]
    assert main(argv + ["--output", str(tmp_path / "b.json")]) == 0
    assert spacy_logger.level == logging.INFO
    (record,) = [r for r in caplog.records if r.getMessage().startswith("Viterbi: ")]
    assert record.name == "spacy.infnet" and record.levelno == logging.INFO


def _write_conll(path: Path, sentences) -> None:
    names = sentences.features["tags"].feature.names
    lines = []
    for tokens, tags in zip(sentences["tokens"], sentences["tags"]):
        lines += [f"{tok}\t{names[t]}" for tok, t in zip(tokens, tags)] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")


def test_bench_option_reaches_the_loader(small_pos_pipeline, tmp_path, capsys):
    tweets = load_dataset("twitter_pos")
    data = tmp_path / "tweets"
    data.mkdir()
    _write_conll(data / "tr.tsv", tweets["train"].select(range(20)))
    _write_conll(data / "dv.tsv", tweets["validation"].select(range(10)))
    _write_conll(data / "ts.tsv", tweets["test"].select(range(12)))
    common = ["--repeats", "1", "--warmup", "0", "--decoders", "viterbi"]
    argv = ["bench", str(small_pos_pipeline), "--dataset", "conll", "--path", str(data)]
    line = fails_with_one_line(argv + common + ["--output", str(tmp_path / "x.json")], capsys)
    assert "train.txt" in line  # the loader's default file names: the traceback
    options = ["--option", "train=tr.tsv", "--option", "validation=dv.tsv"]
    options += ["--option", "test=ts.tsv", "--option", "doc_separator=null"]
    out = tmp_path / "conll.json"
    assert main(argv + options + common + ["--output", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["settings"]["dataset_options"] == {
        "train": "tr.tsv",
        "validation": "dv.tsv",
        "test": "ts.tsv",
        "doc_separator": None,
    }
    (p,) = results["pipelines"]
    assert p["sentences"] == 12
    # the same 12 tweets as the built-in loader's: the same accuracy
    reference = tmp_path / "twitter.json"
    argv = ["bench", str(small_pos_pipeline), "--dataset", "twitter_pos", "--limit", "12"]
    assert main(argv + common + ["--output", str(reference)]) == 0
    (q,) = json.loads(reference.read_text())["pipelines"]
    assert p["rows"][0]["metric"] == pytest.approx(q["rows"][0]["metric"], abs=1e-9)


def test_convert_and_evaluate_on_a_docbin_or_a_dataset_agree(small_pos_pipeline, tmp_path):
    docbin = tmp_path / "test.spacy"
    assert main(["convert", "twitter_pos", str(docbin), "--task", "tag", "--split", "test"]) == 0
    scores = {}
    for how, source in (("docbin", [str(docbin)]), ("dataset", ["--dataset", "twitter_pos"])):
        out = tmp_path / f"{how}.json"
        argv = ["evaluate", str(small_pos_pipeline), *source, "--decoder", "infnet_constrained"]
        assert main(argv + ["--output", str(out)]) == 0
        scores[how] = json.loads(out.read_text())
    assert scores["docbin"]["tag_acc"] == scores["dataset"]["tag_acc"] > 0.3


@pytest.fixture
def other_pipeline(small_pos_pipeline, tmp_path) -> Path:
    """The small pipeline with one energy weight changed: another pipeline, other checksum."""
    nlp = spacy.load(small_pos_pipeline)
    with torch.no_grad():
        next(nlp.get_pipe("infnet_tagger").energy.parameters()).add_(0.01)
    nlp.to_disk(tmp_path / "other")
    return tmp_path / "other"


def test_export_refuses_bench_results_of_another_pipeline(
    constrained_bench, other_pipeline, small_pos_pipeline, tmp_path, capsys
):
    ours = json.loads(constrained_bench.read_text())["pipelines"][0]["weights_sha256"]
    theirs = hashlib.sha256((other_pipeline / WEIGHTS).read_bytes()).hexdigest()
    assert ours != theirs
    argv = ["export", str(other_pipeline), str(tmp_path / "out"), "--bench"]
    line = fails_with_one_line(argv + [str(constrained_bench)], capsys)
    assert str(constrained_bench) in line and ours[:12] in line and theirs[:12] in line
    assert "measured another pipeline" in line
    assert not (tmp_path / "out").exists()
    # results of this pipeline are accepted and fill the card
    argv = ["export", str(small_pos_pipeline), str(tmp_path / "ok"), "--bench"]
    assert main(argv + [str(constrained_bench)]) == 0
    card = (tmp_path / "ok" / "README.md").read_text()
    assert "inference network, constrained rounding" in card


def test_export_refuses_bench_results_without_a_checksum(
    constrained_bench, small_pos_pipeline, tmp_path, capsys
):
    results = json.loads(constrained_bench.read_text())
    for entry in results["pipelines"]:
        del entry["weights_sha256"]
    legacy = tmp_path / "legacy.json"
    legacy.write_text(json.dumps(results))
    argv = ["export", str(small_pos_pipeline), str(tmp_path / "out"), "--bench", str(legacy)]
    line = fails_with_one_line(argv, capsys)
    assert str(legacy) in line and "no weights checksum" in line
    assert "rerun `python -m spacy_infnet bench` on this pipeline" in line


def test_push_to_an_unreachable_hub_is_one_line(small_pos_pipeline):
    proc = run(
        [sys.executable, "-m", "spacy_infnet", "push", str(small_pos_pipeline), "nobody/tiny"],
        env={"HF_HUB_OFFLINE": "1", "HF_TOKEN": "hf_nothing"},
    )
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err[-2000:]
    assert "Traceback" not in out + err
    (line,) = [ANSI.sub("", x) for x in out.splitlines() if x.strip()]
    assert line.startswith("✘ push: ")

"""The benchmark harness (``python -m spacy_infnet bench``): the packaged seqeval metric loads
offline and scores like seqeval and like exact span matching; search errors; one run of every
decoder on a small trained pipeline checked against Viterbi and spaCy's scorer; the outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import spacy
import torch
from seqeval.metrics import f1_score

from spacy_infnet.bench import harness
from spacy_infnet.bench.metrics import SEQEVAL_PATH, score_labels
from spacy_infnet.cli import main
from spacy_infnet.core.schemes import tags_to_spans
from spacy_infnet.core.tuning import PAPER_LEARNING_RATES
from spacy_infnet.data import load_dataset
from spacy_infnet.pipeline.readers import dataset_examples


def test_packaged_seqeval_loads_offline_with_an_empty_cache(tmp_path):
    code = (
        "import evaluate, sys; m = evaluate.load(sys.argv[1]); "
        "print(m.compute(predictions=[['B-PER', 'E-PER', 'O']], "
        "references=[['B-PER', 'E-PER', 'S-LOC']])['overall_f1'])"
    )
    env = dict(
        os.environ, HF_HUB_OFFLINE="1", HF_EVALUATE_OFFLINE="1", HF_HOME=str(tmp_path / "hf")
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(SEQEVAL_PATH)],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip().splitlines()[-1]) == pytest.approx(2 / 3)  # P 1, R 1/2


def _exact_span_f1(pred, gold) -> float:
    tp = n_pred = n_gold = 0
    for p, g in zip(pred, gold):
        ps, gs = set(tags_to_spans(p, scheme="bioes")), set(tags_to_spans(g, scheme="bioes"))
        tp, n_pred, n_gold = tp + len(ps & gs), n_pred + len(ps), n_gold + len(gs)
    precision, recall = tp / n_pred, tp / n_gold
    return 100 * 2 * precision * recall / (precision + recall)


def test_ner_f1_matches_seqeval_and_exact_span_matching_on_real_conll(shared_data):
    test = load_dataset("conll2003", shared_data / "conll2003")["test"].select(range(400))
    names = test.features["tags"].feature.names
    gold = [[names[t] for t in tags] for tags in test["tags"]]
    pred = []
    for i, sent in enumerate(gold):  # well-formed errors: retype or drop whole entities
        out = list(sent)
        for k, (start, end, label) in enumerate(tags_to_spans(sent, scheme="bioes")):
            if (i + k) % 5 == 0:
                out[start:end] = ["O"] * (end - start)
            elif (i + k) % 7 == 0:
                new = "LOC" if label != "LOC" else "PER"
                out[start:end] = [t[:2] + new for t in out[start:end]]
        pred.append(out)
    scores = score_labels(pred, gold, "ner")
    assert scores["metric_name"] == "F1"
    assert scores["metric"] == pytest.approx(100 * f1_score(gold, pred), abs=1e-9)
    assert scores["metric"] == pytest.approx(_exact_span_f1(pred, gold), abs=1e-9)
    assert 50 < scores["metric"] < 95  # the perturbation did something, not everything
    assert score_labels(gold, gold, "ner")["metric"] == 100.0


def test_tag_accuracy_counts_the_unknown_label_as_always_wrong():
    gold = [["N", "V", "*"], ["*", "D"]]
    pred = [["N", "A", "*"], ["*", "D"]]
    assert score_labels(pred, gold, "tag")["metric"] == pytest.approx(100 * 4 / 5)
    assert score_labels(pred, gold, "tag", unknown_label="*")["metric"] == pytest.approx(40.0)
    with pytest.raises(ValueError, match="sentence 1 has 1 predicted and 2 gold"):
        score_labels([["N"], ["D"]], [["N"], ["*", "D"]], "tag")


def test_search_errors_summary():
    out = harness.search_errors([-10.0, -9.0, -20.00001, -31.0], [-10.0, -10.0, -20.0, -30.0])
    # −1e-5 at |E| = 20 is round-off (tolerance 2e-3): a tie, counted as 0.
    assert out["per_sentence"] == pytest.approx([0.0, 1.0, 0.0, -1.0])
    assert out["zero_share"] == 0.5
    assert out["below_viterbi"] == 1
    assert out["mean"] == pytest.approx(0.0)


@pytest.fixture(scope="module")
def bench_run(small_pos_pipeline):
    settings = harness.BenchSettings(
        dataset="twitter_pos",
        split="test",
        limit=24,
        repeats=2,
        warmup=1,
        batch_size=8,
        gd_steps=[0, 10],
    )
    return harness.run_bench([small_pos_pipeline], settings)


def test_bench_runs_every_decoder_and_viterbi_is_the_energy_minimum(bench_run, small_pos_pipeline):
    (p,) = bench_run["pipelines"]
    methods = [r["method"] for r in p["rows"]]
    assert methods == [
        "Viterbi",
        "inference network",
        "gradient descent N=0",
        "gradient descent N=10",
        "instance-tailored infnet N=5",
        "warm-started GD N=5",
    ]
    assert p["sentences"] == 24 and not p["skipped"]
    for row in p["rows"]:
        se = row["search_error"]
        assert len(se["per_sentence"]) == 24
        assert se["below_viterbi"] == 0, row["method"]
        assert len(row["seconds_all"]) == 2
        assert row["examples_per_s"] == pytest.approx(24 / row["seconds"])
    rows = {r["method"]: r for r in p["rows"]}
    assert rows["Viterbi"]["search_error"]["zero_share"] == 1.0
    # 10 GD steps from random logits get much closer to the minimum than none.
    assert (
        rows["gradient descent N=10"]["search_error"]["mean"]
        < rows["gradient descent N=0"]["search_error"]["mean"]
    )
    # Viterbi's average energy is the mean of −(best score) from the DP, computed here directly.
    nlp = spacy.load(small_pos_pipeline)
    comp = nlp.get_pipe("infnet_tagger")
    words, _ = harness.load_split("twitter_pos", None, "test", limit=24)
    with torch.no_grad():
        best, _ = comp.energy.eval().potentials(comp.encoder.encode(words)).viterbi()
    assert rows["Viterbi"]["avg_energy"] == pytest.approx(-best.mean().item(), rel=1e-5)


def test_bench_accuracy_equals_spacys_scorer(bench_run, small_pos_pipeline):
    (p,) = bench_run["pipelines"]
    for decoder, method in (("viterbi", "Viterbi"), ("infnet", "inference network")):
        nlp = spacy.load(
            small_pos_pipeline,
            config={
                "components": {
                    "infnet_tagger": {
                        "decoder": {"@decoders": harness.DECODERS[decoder].registered}
                    }
                }
            },
        )
        examples = list(dataset_examples(nlp, "twitter_pos", "test", task="tag", limit=24))
        expected = 100 * nlp.evaluate(examples)["tag_acc"]
        (row,) = [r for r in p["rows"] if r["method"] == method]
        assert row["metric"] == pytest.approx(expected, abs=1e-9)


def test_bench_outputs_json_markdown_and_figures(bench_run, tmp_path):
    two = dict(bench_run, pipelines=bench_run["pipelines"] * 2)
    paths = harness.write_outputs(two, tmp_path / "out" / "results.json")
    names = sorted(p.name for p in paths)
    assert names == [
        "results.json",
        "results.md",
        "results_figure1.png",
        "results_figure2_0.png",
        "results_figure2_1.png",
    ]
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["environment"]["batch_size"] == 8 and data["environment"]["torch"]
    md = (tmp_path / "out" / "results.md").read_text()
    assert "| Viterbi | – |" in md and "gradient descent N=10" in md
    for p in paths:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_cli_settings_tuning_and_errors(small_pos_pipeline, tmp_path, capsys):
    out = tmp_path / "cli.json"
    argv = ["bench", str(small_pos_pipeline), "--dataset", "twitter_pos", "--limit", "12"]
    argv += ["--repeats", "1", "--warmup", "0", "--output", str(out)]
    assert main(argv + ["--decoders", "gd", "--set", "gd.learning_rate=100"]) == 0
    rows = json.loads(out.read_text())["pipelines"][0]["rows"]
    assert [r["method"] for r in rows] == ["Viterbi", "gradient descent N=20"]
    assert rows[1]["settings"]["learning_rate"] == 100.0
    assert "| gradient descent N=20 | 100 |" in capsys.readouterr().out

    argv_tuned = argv + ["--decoders", "warm_gd", "--tune-learning-rates", "--tune-limit", "20"]
    assert main(argv_tuned) == 0
    (row,) = [
        r for r in json.loads(out.read_text())["pipelines"][0]["rows"] if r["decoder"] != "viterbi"
    ]
    assert row["settings"]["learning_rate"] in PAPER_LEARNING_RATES

    with pytest.raises(SystemExit, match="unknown decoder.*beam"):
        main(argv + ["--decoders", "viterbi,beam"])
    with pytest.raises(SystemExit, match="does not exist"):
        main(["bench", str(tmp_path / "nope"), "--dataset", "twitter_pos"])
    with pytest.raises(SystemExit):
        main(argv + ["--set", "learning_rate=3"])


def test_bench_skips_inference_network_decoders_before_stage_two(tmp_path):
    from small_configs import small_tagger

    nlp = small_tagger(energy_max_epochs=2)
    examples = list(dataset_examples(nlp, "twitter_pos", "train", task="tag", limit=20))
    nlp.initialize(lambda: examples)
    nlp.to_disk(tmp_path / "stage1")
    settings = harness.BenchSettings(
        dataset="twitter_pos", decoders=["viterbi", "infnet"], limit=5, repeats=1, warmup=0
    )
    (p,) = harness.run_bench([tmp_path / "stage1"], settings)["pipelines"]
    assert [r["decoder"] for r in p["rows"]] == ["viterbi"]
    assert "no trained inference network" in p["skipped"]["infnet"]
    assert p["infnet"] is None  # not reported (nor plotted in Figure 1) before stage 2

"""The ``infnet_tagger`` spaCy component on real data: training, prediction, serialisation,
decoder swapping, entry points, multiprocessing."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
import torch
from spacy.tokens import Doc
from spacy.util import registry

from spacy_infnet.core.decoders import Decoded, Decoder
from spacy_infnet.pipeline.readers import dataset_examples

from small_configs import SMALL_ENERGY


def train(nlp, examples, epochs, batch_size=16, seed=0):
    spacy.util.fix_random_seed(seed)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.01
    losses = {}
    for _ in range(epochs):
        for batch in spacy.util.minibatch(examples, size=batch_size):
            nlp.update(batch, sgd=optimizer, losses=losses)
    return losses


@pytest.fixture(scope="module")
def pos_nlp():
    """A tagger trained for a few epochs on 300 real tweets."""
    nlp = spacy.blank("en")
    nlp.add_pipe("infnet_tagger", config={"task": "tag", "energy": SMALL_ENERGY})
    examples = list(dataset_examples(nlp, "twitter_pos", "train", task="tag", limit=300))
    train(nlp, examples, epochs=6)
    return nlp


@pytest.fixture(scope="module")
def conll_dir(shared_data):
    return shared_data / "conll2003"


@pytest.fixture(scope="module")
def ner_nlp(conll_dir):
    """An NER pipeline trained for a few epochs on 400 real CoNLL-2003 sentences."""
    nlp = spacy.blank("en")
    nlp.add_pipe("infnet_tagger", config={"task": "ner", "energy": SMALL_ENERGY})
    examples = list(
        dataset_examples(nlp, "conll2003", "train", path=str(conll_dir), task="ner", limit=400)
    )
    train(nlp, examples, epochs=6)
    return nlp


def test_factory_found_through_entry_point_without_import():
    code = (
        "import spacy\n"
        "nlp = spacy.blank('en')\n"
        "pipe = nlp.add_pipe('infnet_tagger')\n"
        "print(type(pipe).__module__, pipe.task)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["spacy_infnet.pipeline.component", "ner"]


def test_unknown_task_is_rejected():
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="unknown task 'chunk'"):
        nlp.add_pipe("infnet_tagger", config={"task": "chunk"})


def test_pos_tagger_learns_real_tweets(pos_nlp):
    nlp = pos_nlp
    seen = {
        t.tag_
        for eg in dataset_examples(nlp, "twitter_pos", "train", task="tag", limit=300)
        for t in eg.reference
    }
    assert nlp.get_pipe("infnet_tagger").labels == tuple(sorted(seen))
    dev = list(dataset_examples(nlp, "twitter_pos", "validation", task="tag", limit=200))
    scores = nlp.evaluate(dev)
    # Majority tag (N) covers ~14% of tokens; a few epochs on 300 tweets reach far beyond.
    assert scores["tag_acc"] > 0.6, scores
    doc = nlp("I predict I won't win a single game")
    assert all(t.tag_ for t in doc)


def test_ner_learns_and_writes_entities(ner_nlp, conll_dir):
    nlp = ner_nlp
    tagger = nlp.get_pipe("infnet_tagger")
    assert len(tagger.labels) == 17 and tagger.labels[0] == "O"
    dev = list(
        dataset_examples(nlp, "conll2003", "validation", path=str(conll_dir), task="ner", limit=300)
    )
    scores = nlp.evaluate(dev)
    assert scores["ents_f"] > 0.2, scores  # untrained: ~0
    assert {"PER", "ORG", "LOC", "MISC"} >= set(scores["ents_per_type"])


def test_invalid_bioes_sequence_is_repaired_not_dropped(ner_nlp):
    tagger = ner_nlp.get_pipe("infnet_tagger")
    doc = Doc(ner_nlp.vocab, words=["Peter", "Blackburn", "visited", "Brussels", "today"])
    names = ["I-PER", "E-LOC", "O", "B-ORG", "O"]  # not a valid BIOES sequence
    tagger.set_annotations([doc], [[tagger.labels.index(n) for n in names]])
    assert len(doc.ents) >= 2
    assert doc.ents[0].start == 0 and doc.ents[-1].label_ == "ORG"


def test_viterbi_predictions_never_break_bioes(ner_nlp, conll_dir):
    tagger = ner_nlp.get_pipe("infnet_tagger")
    docs = [
        eg.predicted
        for eg in dataset_examples(
            ner_nlp, "conll2003", "test", path=str(conll_dir), task="ner", limit=200
        )
    ]
    from spacy_infnet.core.constraints import transition_constraints

    allowed = transition_constraints(tagger.labels, "bioes")
    for pred in tagger.predict(docs):
        if not pred:
            continue
        assert allowed.start[pred[0]] and allowed.end[pred[-1]]
        assert all(allowed.transitions[a, b] for a, b in itertools.pairwise(pred))


def test_disk_round_trip_gives_identical_predictions(ner_nlp, conll_dir, tmp_path):
    texts = [
        " ".join(t.text for t in eg.reference)
        for eg in dataset_examples(
            ner_nlp, "conll2003", "test", path=str(conll_dir), task="ner", limit=100
        )
    ]
    before = [[(e.start, e.end, e.label_) for e in d.ents] for d in ner_nlp.pipe(texts)]
    ner_nlp.to_disk(tmp_path / "pipeline")
    files = {p.name for p in (tmp_path / "pipeline" / "infnet_tagger").iterdir()}
    assert files == {"cfg.json", "model.safetensors"}
    loaded = spacy.load(tmp_path / "pipeline")
    after = [[(e.start, e.end, e.label_) for e in d.ents] for d in loaded.pipe(texts)]
    assert after == before
    assert sum(map(len, before)) > 0
    a = ner_nlp.get_pipe("infnet_tagger").energy.state_dict()
    b = loaded.get_pipe("infnet_tagger").energy.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_bytes_round_trip(pos_nlp):
    nlp2 = spacy.blank("en")
    nlp2.add_pipe("infnet_tagger", config={"task": "tag", "energy": SMALL_ENERGY})
    nlp2.from_bytes(pos_nlp.to_bytes())
    text = "lol i cant believe its already friday !!! #tgif"
    assert [t.tag_ for t in nlp2(text)] == [t.tag_ for t in pos_nlp(text)]


def test_serialisation_honours_exclude(pos_nlp, tmp_path):
    """spaCy's serialisation fields of a pipe ("cfg", "vocab", "model") can each be left out;
    nlp.to_disk leaves the component's vocab out (the pipeline writes one)."""
    comp = pos_nlp.get_pipe("infnet_tagger")
    comp.to_disk(tmp_path / "all")
    assert {p.name for p in (tmp_path / "all").iterdir()} == {
        "cfg.json",
        "model.safetensors",
        "vocab",
    }
    comp.to_disk(tmp_path / "no_model", exclude=["model", "vocab"])
    assert {p.name for p in (tmp_path / "no_model").iterdir()} == {"cfg.json"}
    data = comp.to_bytes(exclude=["vocab"])
    assert len(data) < len(comp.to_bytes())
    nlp2 = spacy.blank("en")
    other = nlp2.add_pipe("infnet_tagger", config={"task": "tag", "energy": SMALL_ENERGY})
    other.from_bytes(data, exclude=["vocab"])
    text = "lol i cant believe its already friday !!! #tgif"
    assert [t.tag_ for t in nlp2(text)] == [t.tag_ for t in pos_nlp(text)]
    # settings without weights: the networks' shapes, untrained
    fresh = spacy.blank("en").add_pipe("infnet_tagger", config={"task": "tag"})
    fresh.from_disk(tmp_path / "no_model", exclude=["vocab", "model"])
    assert fresh.labels == comp.labels and fresh.energy is not None


def test_a_write_that_fails_midway_leaves_the_saved_files_whole(pos_nlp, tmp_path, monkeypatch):
    """Files are written to a temporary name and renamed: a failure (or a kill) while writing
    leaves the previous file as it was and no partial file behind."""
    from spacy_infnet import fileio  # the package's one atomic writer

    pos_nlp.to_disk(tmp_path / "p")
    target = tmp_path / "p" / "infnet_tagger" / "model.safetensors"
    before = target.read_bytes()

    def fail(fd):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(fileio.os, "fsync", fail)
    with torch.no_grad():
        next(pos_nlp.get_pipe("infnet_tagger").energy.parameters()).add_(1.0)
    with pytest.raises(OSError, match="simulated"):
        pos_nlp.to_disk(tmp_path / "p")
    assert target.read_bytes() == before
    assert not [p.name for p in target.parent.iterdir() if p.name.endswith(".tmp")]
    with torch.no_grad():
        next(pos_nlp.get_pipe("infnet_tagger").energy.parameters()).sub_(1.0)


def test_cfg_json_of_the_single_config_layout_still_loads(pos_nlp, tmp_path):
    """Pipelines saved before the energy settings were split into BLSTM-CRF and transformer
    dataclasses (one dict with a `transformer` field, no `constraint_scheme`) load unchanged."""
    pos_nlp.to_disk(tmp_path / "p")
    path = tmp_path / "p" / "infnet_tagger" / "cfg.json"
    cfg = json.loads(path.read_text())
    energy = {k: v for k, v in cfg["energy"].items() if k != "architecture"}
    energy.update(
        transformer=None,
        pooling="first",
        fine_tune_transformer=True,
        transformer_learning_rate=5e-5,
        transformer_schedule="constant",
        max_length=None,
        stride=None,
        case_dim=0,
    )
    cfg["energy"] = energy
    del cfg["constraint_scheme"]
    path.write_text(json.dumps(cfg))
    loaded = spacy.load(tmp_path / "p")
    text = "lol i cant believe its already friday !!! #tgif"
    assert [t.tag_ for t in loaded(text)] == [t.tag_ for t in pos_nlp(text)]


def test_missing_weights_file_is_named(pos_nlp, tmp_path):
    pos_nlp.to_disk(tmp_path / "p")
    (tmp_path / "p" / "infnet_tagger" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        spacy.load(tmp_path / "p")


class _GreedyDecoder(Decoder):
    """Per-position argmax of the emissions (ignores transitions): a stand-in decoder."""

    name = "greedy-test"

    def decode(self, model, batch):
        pot = model.energy.potentials(batch)
        tags = pot.emissions.argmax(-1) * batch.mask
        return Decoded(tags=tags, energy=pot.tag_energy(tags))


@registry.decoders("test_pipeline.Greedy.v1")
def _make_greedy():
    return _GreedyDecoder()


def test_decoder_swapped_at_load_without_retraining(pos_nlp, tmp_path):
    pos_nlp.to_disk(tmp_path / "p")
    swapped = spacy.load(
        tmp_path / "p",
        config={
            "components": {"infnet_tagger": {"decoder": {"@decoders": "test_pipeline.Greedy.v1"}}}
        },
    )
    tagger = swapped.get_pipe("infnet_tagger")
    assert isinstance(tagger.decoder, _GreedyDecoder)
    assert swapped.config["components"]["infnet_tagger"]["decoder"]["@decoders"] == (
        "test_pipeline.Greedy.v1"
    )
    docs = [
        eg.predicted
        for eg in dataset_examples(pos_nlp, "twitter_pos", "test", task="tag", limit=100)
    ]
    original = pos_nlp.get_pipe("infnet_tagger")
    # Same weights, different decoder: the Viterbi energy is never higher than greedy's.
    batch = original.encoder.encode([[t.text for t in d] for d in docs])
    original.energy.eval()
    tagger.energy.eval()
    with torch.no_grad():
        e_vit = original.decoder.decode(original.torch_model, batch).energy
        e_greedy = tagger.decoder.decode(tagger.torch_model, batch).energy
    assert torch.all(e_vit <= e_greedy + 1e-4)


def test_pipe_with_two_processes(ner_nlp, conll_dir, tmp_path):
    """`nlp.pipe(n_process=2)` on 1,000 real CoNLL sentences gives the single-process output.

    Run in a subprocess with a time limit: forked workers used to hang on torch's OpenMP pool
    (the component now makes forked children single-threaded)."""
    texts = [
        " ".join(t.text for t in eg.reference)
        for eg in dataset_examples(
            ner_nlp, "conll2003", "test", path=str(conll_dir), task="ner", limit=1000
        )
    ]
    assert len(texts) == 1000
    one = [[[e.start, e.end, e.label_] for e in d.ents] for d in ner_nlp.pipe(texts, batch_size=64)]
    ner_nlp.to_disk(tmp_path / "pipeline")
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    code = (
        "import json, sys, spacy\n"
        "nlp = spacy.load(sys.argv[1])\n"
        "texts = json.load(open(sys.argv[2]))\n"
        "docs = nlp.pipe(texts, batch_size=64, n_process=2)\n"
        "print(json.dumps([[[e.start, e.end, e.label_] for e in d.ents] for d in docs]))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "pipeline"), str(tmp_path / "texts.json")],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == one
    assert sum(map(len, one)) > 0


CONFIG_DATA = {
    # config: (overrides pointing at real data or fixtures, expected task)
    "pos.cfg": ([], "tag"),
    "ner.cfg": (["--paths.conll2003", "{shared}/conll2003"], "ner"),
    "ner_trf.cfg": (
        ["--paths.conll2003", "{shared}/conll2003", "--training.batcher.size", "8"],
        "ner",
    ),
    "morph.cfg": (["--paths.ud_ewt", "{shared}/ud_english_ewt"], "tag"),
    "ccg.cfg": (["--paths.ccgbank", "{root}/tests/fixtures/ccgbank"], "tag"),
    "ccg_ewt.cfg": (["--paths.ewt_ccg", "{shared}/ewt_ccg"], "tag"),
    "pos_plain.cfg": ([], "tag"),
}


# Configs whose pipeline trains both stages (energy, then inference network) in one run.
TWO_STAGE_CONFIGS = {"pos.cfg", "pos_plain.cfg", "ner.cfg", "ner_trf.cfg"}


@pytest.mark.parametrize("config", sorted(CONFIG_DATA))
def test_spacy_train_cli_runs_every_shipped_config(config, shared_data, tmp_path):
    """`spacy train configs/X.cfg` reads its data through the registered reader and saves a
    pipeline that loads back (a few steps on a small slice of the real data)."""
    root = Path(__file__).resolve().parents[1]
    overrides, task = CONFIG_DATA[config]
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "spacy",
        "train",
        str(root / "configs" / config),
        "--output",
        str(out),
        "--training.max_steps",
        "12",
        "--training.eval_frequency",
        "6",
        "--corpora.train.limit",
        "150",
        "--corpora.dev.limit",
        "60",
        "--components.infnet_tagger.energy.hidden_size",
        "16",
        *(o.format(shared=shared_data, root=root) for o in overrides),
    ]
    two_stage = config in TWO_STAGE_CONFIGS
    if two_stage:  # stage 1 for one epoch (15 updates), then the inference network
        cmd[cmd.index("12")] = "30"
        cmd += ["--components.infnet_tagger.stages.energy_max_epochs", "1"]
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600, cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (out / "model-best" / "infnet_tagger" / "model.safetensors").exists()
    nlp = spacy.load(out / "model-last")
    tagger = nlp.get_pipe("infnet_tagger")
    assert tagger.task == task and len(tagger.labels) > 1
    if two_stage:
        assert "stage 2 begins" in res.stderr
        assert tagger.stage == "infnet"
        best = spacy.load(out / "model-best").get_pipe("infnet_tagger")
        assert best.stage == "infnet"  # stage-2 checkpoints rank above stage-1 ones
    doc = nlp("Peter Blackburn visited Brussels on Monday .")
    if task == "tag":
        assert all(t.tag_ in tagger.labels for t in doc)
    else:
        assert all(e.label_ in {"PER", "ORG", "LOC", "MISC"} for e in doc.ents)


def test_document_examples_join_the_sentences_of_each_document(conll_dir, tmp_path):
    """documents=True: one example per -DOCSTART- document of eng.testa (216), sentence starts
    where each sentence began, and the same entities as the sentence-level examples."""
    nlp = spacy.blank("en")
    kw = {"path": str(conll_dir), "task": "ner"}
    sents = list(dataset_examples(nlp, "conll2003", "validation", **kw))
    docs = list(dataset_examples(nlp, "conll2003", "validation", documents=True, **kw))
    assert len(sents) == 3_250 and len(docs) == 216
    for attr in ("reference", "predicted"):
        starts = [t.is_sent_start for eg in docs for t in getattr(eg, attr)]
        assert sum(starts) == len(sents)
    words = [t.text for eg in docs for t in eg.reference]
    assert words == [t.text for eg in sents for t in eg.reference]
    first = docs[0].reference
    assert [[t.text for t in s] for s in first.sents][:2] == [
        [t.text for t in s.reference] for s in sents[:2]
    ]

    def ents(examples):
        out, offset = [], 0
        for eg in examples:
            out += [(e.start + offset, e.end + offset, e.label_) for e in eg.reference.ents]
            offset += len(eg.reference)
        return out

    assert ents(docs) == ents(sents)
    # limit counts sentences (before grouping): 20 sentences are the first document's
    head = list(dataset_examples(nlp, "conll2003", "validation", documents=True, limit=20, **kw))
    assert sum(len(eg.reference) for eg in head) == sum(len(eg.reference) for eg in sents[:20])
    with pytest.raises(ValueError, match="no 'document' column"):
        next(dataset_examples(nlp, "twitter_pos", "train", task="tag", documents=True))
    out = tmp_path / "testa_docs.spacy"
    cmd = [sys.executable, "-m", "spacy_infnet", "convert", "conll2003", str(out)]
    cmd += ["--path", str(conll_dir), "--split", "validation", "--documents"]
    run = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert "wrote 216 docs" in run.stdout
    saved = list(spacy.tokens.DocBin().from_disk(out).get_docs(nlp.vocab))
    assert sum(1 for d in saved for _ in d.sents) == 3_250
    assert [(e.start, e.end, e.label_) for e in saved[0].ents] == [
        (e.start, e.end, e.label_) for e in first.ents
    ]


def test_loading_and_tagging_import_neither_datasets_nor_pyarrow(small_pos_pipeline):
    """A trained pipeline loads and tags (with either decoder) without `datasets`/pyarrow,
    which only training and the corpus readers need (checked in a fresh interpreter)."""
    script = (
        "import sys, spacy\n"
        "for decoder in ('spacy_infnet.Viterbi.v1', 'spacy_infnet.InferenceNetwork.v1'):\n"
        "    cfg = {'components': {'infnet_tagger': {'decoder': {'@decoders': decoder}}}}\n"
        "    nlp = spacy.load(sys.argv[1], config=cfg)\n"
        "    doc = nlp('ikr smh he asked fir yo last name so he can add u on fb lololol')\n"
        "    assert len(doc) > 5 and all(t.tag_ for t in doc), [t.tag_ for t in doc]\n"
        "print(sorted(m for m in ('datasets', 'pyarrow') if m in sys.modules))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", script, str(small_pos_pipeline)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]"


# -- confidence and k-best on the Doc ---------------------------------------------------------


def _ner_docs(nlp, conll_dir, limit=60):
    examples = dataset_examples(
        nlp, "conll2003", "test", path=str(conll_dir), task="ner", limit=limit
    )
    return [[t.text for t in eg.reference] for eg in examples]


def test_confidence_and_kbest_are_written_only_when_asked(ner_nlp, conll_dir):
    """Off by default: nothing beyond the labels.  With confidence on and Viterbi k = 5: the
    scored spans are doc.ents with probabilities in (0, 1]; every token has the probability of
    its label; the k-best list starts with the labels written, its energies ascend and equal the
    energy of each listed sequence computed separately; entity probabilities never fall under
    the k-best lower bound (the probability mass of the listed sequences that contain the
    entity) and the tokens' marginals bound them from above."""
    from spacy_infnet.core.crf import log_partition
    from spacy_infnet.core.schemes import tags_to_spans
    from spacy_infnet.pipeline.outputs import SPANS_KEY

    words = _ner_docs(ner_nlp, conll_dir)
    tagger = ner_nlp.get_pipe("infnet_tagger")
    plain = list(ner_nlp.pipe([Doc(ner_nlp.vocab, words=w) for w in words]))
    assert all(SPANS_KEY not in d.spans for d in plain)
    old = tagger.decoder
    tagger.confidence = True
    tagger.decoder = registry.resolve({"d": {"@decoders": "spacy_infnet.Viterbi.v1", "k": 5}})["d"]
    try:
        docs = list(ner_nlp.pipe([Doc(ner_nlp.vocab, words=w) for w in words]))
    finally:
        tagger.confidence, tagger.decoder = False, old
    model, labels = tagger.torch_model, tagger.labels
    entities = 0
    for doc, before in zip(docs, plain):
        assert [(e.start, e.end, e.label_) for e in doc.ents] == [
            (e.start, e.end, e.label_) for e in before.ents
        ]
        group = doc.spans[SPANS_KEY]
        assert [(s.start, s.end, s.label_) for s in group] == [
            (e.start, e.end, e.label_) for e in doc.ents
        ]
        scores = group.attrs["scores"]
        assert len(scores) == len(group) and all(0 < p <= 1 for p in scores)
        probs = [t._.infnet_confidence for t in doc]
        assert all(0 < p <= 1 for p in probs)
        kbest = doc._.infnet_kbest
        assert 1 <= len(kbest) <= 5
        first = kbest[0]["labels"]
        assert tags_to_spans(first, "bioes") == [(e.start, e.end, e.label_) for e in doc.ents]
        energies = [k["energy"] for k in kbest]
        assert energies == sorted(energies)
        index = {name: i for i, name in enumerate(labels)}
        seqs = [[index[x] for x in k["labels"]] for k in kbest]
        recomputed = model.energies([[t.text for t in doc]] * len(seqs), seqs)
        assert recomputed == pytest.approx(energies, abs=1e-3)
        batch = model.encode([[t.text for t in doc]])
        with torch.no_grad():
            pot = model.energy.potentials(batch)
            log_z = float(
                log_partition(
                    pot.emissions,
                    pot.transitions,
                    pot.mask,
                    pot.start_transitions,
                    pot.end_transitions,
                )
            )
        p_seq = [torch.tensor(-e - log_z).exp().item() for e in energies]
        for span, p in zip(group, scores):
            key = (span.start, span.end, span.label_)
            lower = sum(q for q, k in zip(p_seq, kbest) if key in tags_to_spans(k["labels"]))
            assert p >= lower - 1e-4
            assert p <= min(probs[span.start : span.end]) + 1e-4
            entities += 1
    assert entities >= 20


def test_confidence_under_the_inference_network_is_its_own_probability(small_pos_pipeline):
    nlp = spacy.load(small_pos_pipeline)
    tagger = nlp.get_pipe("infnet_tagger")
    tagger.confidence = True
    words = [["@user", "this", "is", "sooo", "good", "lol"], ["going", "home", "now"]]
    docs = list(nlp.pipe([Doc(nlp.vocab, words=w) for w in words]))
    model = tagger.torch_model
    batch = model.encode(words)
    with torch.no_grad():
        probs = torch.softmax(model.infnet(batch), dim=-1).amax(dim=-1)
    for b, doc in enumerate(docs):
        got = [t._.infnet_confidence for t in doc]
        assert got == pytest.approx(probs[b, : len(doc)].tolist(), abs=1e-5)
        assert "infnet_ents" not in doc.spans  # a tagging task has no entities

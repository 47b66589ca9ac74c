"""The two-stage schedule (spacy_infnet.training.schedule) on a small real model: the switch,
the restored best energy, the frozen-emission cache, model selection across the stages, and
the limits it refuses."""

from pathlib import Path

import pytest
import torch
from spacy.util import combine_score_weights, load_config

from spacy_infnet.core.encoding import TokenEncoder
from spacy_infnet.core.energy import BLSTMCRFConfig
from spacy_infnet.core.infnets import InfnetConfig
from spacy_infnet.core.model import InfnetModel
from spacy_infnet.core.transformer import TransformerCRFConfig
from spacy_infnet.data import load_dataset
from spacy_infnet.training.schedule import (
    STAGE2_COLUMNS,
    TwoStageSchedule,
    check_stage_limits,
    distilled_score,
    transformer_schedule_epochs,
)
from spacy_infnet.training.stages import TwoStageSettings


@pytest.fixture(scope="module")
def tweets():
    ds = load_dataset("twitter_pos")["train"].select(range(40))
    names = ds.features["tags"].feature.names
    return [list(r["tokens"]) for r in ds], [list(r["tags"]) for r in ds], names


def _model(tweets):
    words, _, names = tweets
    torch.manual_seed(0)
    encoder = TokenEncoder.from_corpus(words)
    energy = BLSTMCRFConfig(word_dim=8, hidden_size=8, char_filters=6, dropout=0.0)
    infnet = InfnetConfig("cnn", hidden_size=8, case_dim=2)
    return InfnetModel.build(energy, names, encoder, infnet)


def test_switch_after_the_epoch_limit_restores_the_best_energy_and_caches_emissions(tweets, caplog):
    words, tags, _ = tweets
    model = _model(tweets)
    settings = TwoStageSettings(energy_max_epochs=2)
    schedule = TwoStageSchedule(settings, n_train=len(words))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    best = None
    for epoch in range(2):
        for i in range(0, len(words), 10):
            schedule.before_update(model)
            loss = schedule.loss(model, words[i : i + 10], tags[i : i + 10])
            schedule.record_update(len(words[i : i + 10]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        score = [0.8, 0.5][epoch]  # the first epoch's energy is the best on "dev"
        schedule.record_score(model, score)
        if epoch == 0:
            best = {k: v.clone() for k, v in model.energy.state_dict().items()}
    assert schedule.stage == "energy" and model.stage == "energy"
    assert distilled_score(model) == {"distilled": 0.0}
    with caplog.at_level("INFO", logger="spacy.infnet"):
        schedule.before_update(model)
    assert schedule.stage == "infnet" and model.stage == "infnet"
    assert distilled_score(model) == {"distilled": 1.0}
    assert STAGE2_COLUMNS in caplog.text and "update 4" in caplog.text
    for key, value in model.energy.state_dict().items():
        assert torch.equal(value, best[key]), key
    assert not any(p.requires_grad for p in model.energy.parameters())
    # stage 2: the energy's features run once per sentence, then come from the cache
    calls = []
    model.energy.features.register_forward_hook(lambda *a: calls.append(1))
    for _ in range(2):
        loss = schedule.loss(model, words[:10], tags[:10])
        loss.backward()
    assert len(calls) == 1
    assert model.infnet.inputs.embed.weight.grad is not None


def test_energy_source_starts_in_stage_2_and_a_model_without_infnet_never_switches(tweets):
    words, _, names = tweets
    model = _model(tweets)
    schedule = TwoStageSchedule(TwoStageSettings(energy_max_epochs=1), n_train=len(words))
    schedule.start_stage2(model)
    assert schedule.stage == "infnet" and model.stage == "infnet"
    energy_only = InfnetModel.build(
        BLSTMCRFConfig(word_dim=8, hidden_size=8, char_cnn=False), names, model.encoder
    )
    other = TwoStageSchedule(TwoStageSettings(energy_max_epochs=1), n_train=2)
    other.record_update(10)
    other.before_update(energy_only)
    assert other.stage == "energy" and distilled_score(energy_only) == {}


def test_stage_limits_and_the_linear_transformer_schedule_are_checked():
    with pytest.raises(ValueError, match="energy_patience"):
        check_stage_limits(TwoStageSettings(energy_patience=500), patience=500, max_epochs=0)
    with pytest.raises(ValueError, match="energy_max_epochs"):
        check_stage_limits(TwoStageSettings(), patience=100, max_epochs=0)
    with pytest.raises(ValueError, match="no epoch"):
        check_stage_limits(TwoStageSettings(energy_max_epochs=5), patience=0, max_epochs=5)
    check_stage_limits(TwoStageSettings(energy_max_epochs=4), patience=100, max_epochs=5)
    linear = TransformerCRFConfig(learning_rate_schedule="linear")
    assert transformer_schedule_epochs(linear, TwoStageSettings(energy_max_epochs=3), True, 9) == 3
    assert transformer_schedule_epochs(linear, TwoStageSettings(), False, 9) == 9
    assert transformer_schedule_epochs(BLSTMCRFConfig(), TwoStageSettings(), True, 0) is None
    with pytest.raises(ValueError, match="stages.energy_max_epochs"):
        transformer_schedule_epochs(linear, TwoStageSettings(), True, 9)


@pytest.mark.parametrize("config", ["pos.cfg", "ner.cfg", "ner_trf.cfg"])
def test_shipped_weights_rank_every_stage_2_checkpoint_above_every_stage_1_one(config):
    """spaCy ranks checkpoints by Σ weight·score over the normalised score weights; with
    distilled weighted at least as much as the task metric, a stage-2 checkpoint with the worst
    metric (0) ranks no lower than a stage-1 one with the best (1)."""
    root = Path(__file__).resolve().parents[1]
    cfg = load_config(root / "configs" / config, interpolate=False)
    weights = combine_score_weights([dict(cfg["training"]["score_weights"])])
    metric = "ents_f" if weights.get("ents_f") else "tag_acc"

    def ranked(scores):
        return sum(scores.get(k, 0.0) * (w or 0.0) for k, w in weights.items())

    assert ranked({metric: 0.0, "distilled": 1.0}) >= ranked({metric: 1.0, "distilled": 0.0})

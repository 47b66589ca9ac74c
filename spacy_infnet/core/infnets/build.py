"""Building an inference network from its settings: ``config.architecture`` names the class."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .base import InferenceNetwork, InfnetConfig
from .blstm import BLSTMInferenceNetwork
from .cnn import CNNInferenceNetwork
from .seq2seq import Seq2SeqInferenceNetwork

#: ``InfnetConfig.architecture`` → the network class (§4.1).
NETWORKS: dict[str, type[InferenceNetwork]] = {
    "cnn": CNNInferenceNetwork,
    "blstm": BLSTMInferenceNetwork,
    "seq2seq": Seq2SeqInferenceNetwork,
}


def build_infnet(
    config: InfnetConfig, n_labels: int, n_words: int, n_chars: int, pieces: Any = None
) -> InferenceNetwork:
    """Instantiate the architecture named by ``config.architecture``.

    Args:
        pieces: a :class:`~spacy_infnet.core.pieces.WordPieceBags`, needed (and only used) when
            ``config.piece_embeddings``: the piece table gets ``pieces.n_pieces`` rows.

    Raises:
        ValueError: ``config.piece_embeddings`` without ``pieces``.
    """
    cls = NETWORKS[config.architecture]
    if not config.piece_embeddings:
        return cls(config, n_labels, n_words, n_chars)
    if pieces is None:
        raise ValueError(
            "piece_embeddings = true reads words as a transformer tokenizer's pieces: it needs "
            "a transformer energy (spacy_infnet.TransformerCRF.v1)"
        )
    net = cls(replace(config, n_pieces=pieces.n_pieces), n_labels, n_words, n_chars)
    net.inputs.pieces = pieces
    return net

"""Inference networks A_Ψ(x) (Tu & Gimpel 2019, §4): CNN, BLSTM and seq2seq taggers."""

from .base import (
    ARCHITECTURES,
    InferenceNetwork,
    InfnetConfig,
    InputEmbedding,
    token_cross_entropy,
)
from .blstm import BLSTMInferenceNetwork
from .build import NETWORKS, build_infnet
from .cnn import CNNInferenceNetwork
from .seq2seq import Seq2SeqInferenceNetwork

__all__ = [
    "ARCHITECTURES",
    "NETWORKS",
    "BLSTMInferenceNetwork",
    "CNNInferenceNetwork",
    "InferenceNetwork",
    "InfnetConfig",
    "InputEmbedding",
    "Seq2SeqInferenceNetwork",
    "build_infnet",
    "token_cross_entropy",
]

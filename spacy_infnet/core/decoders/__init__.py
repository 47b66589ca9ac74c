"""Decoders: one interface (:class:`Decoder`) for every inference method."""

from .base import Decoded, Decoder, DecodingModel, require_infnet
from .gradient import GradientDescentDecoder, IterativeDecoder, WarmStartGDDecoder
from .hybrid import HybridDecoder
from .infnet import InferenceNetworkDecoder
from .tailored import InstanceTailoredDecoder
from .viterbi import ViterbiDecoder

__all__ = [
    "Decoded",
    "Decoder",
    "DecodingModel",
    "GradientDescentDecoder",
    "HybridDecoder",
    "InferenceNetworkDecoder",
    "InstanceTailoredDecoder",
    "IterativeDecoder",
    "ViterbiDecoder",
    "WarmStartGDDecoder",
    "require_infnet",
]

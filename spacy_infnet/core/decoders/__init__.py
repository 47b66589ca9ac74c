"""Decoders: one interface (:class:`Decoder`) for every inference method."""

from .base import Decoded, Decoder
from .gradient import GradientDescentDecoder, WarmStartGDDecoder
from .infnet import InferenceNetworkDecoder
from .tailored import InstanceTailoredDecoder
from .viterbi import ViterbiDecoder

__all__ = [
    "Decoded",
    "Decoder",
    "GradientDescentDecoder",
    "InferenceNetworkDecoder",
    "InstanceTailoredDecoder",
    "ViterbiDecoder",
    "WarmStartGDDecoder",
]

"""Decoders: one interface (:class:`Decoder`) for every inference method."""

from .base import Decoded, Decoder
from .infnet import InferenceNetworkDecoder
from .viterbi import ViterbiDecoder

__all__ = ["Decoded", "Decoder", "InferenceNetworkDecoder", "ViterbiDecoder"]

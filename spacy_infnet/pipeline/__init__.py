"""spaCy adapter: the ``infnet_tagger`` component (:mod:`.component`), everything registered
with spaCy (:mod:`.registry`), corpus readers (:mod:`.readers`, which need ``datasets``: they
are imported only when a config names them) and scorers."""

from .component import InfnetTagger
from .registry import DECODERS, decoder_block, make_infnet_tagger

__all__ = ["DECODERS", "InfnetTagger", "decoder_block", "make_infnet_tagger"]

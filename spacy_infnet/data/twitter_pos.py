"""ARK Twitter POS data (Gimpel et al. 2011; Owoputi et al. 2013), v0.3.

The four data files are shipped inside this package (folder
``spacy_infnet/data/twitter_pos/``, CC BY 3.0, see the ``SOURCE.md`` there).
Splits follow Owoputi et al. (2013) and Tu & Gimpel's code:
train = oct27.train + oct27.dev (1,327 tweets), validation = oct27.test
(500), test = daily547.test (547).
"""

from __future__ import annotations

import os
from pathlib import Path

import datasets

from .conll import build_tagging_dataset, read_blocks

__all__ = ["TWITTER_POS_FILES", "TWITTER_POS_TAGS", "data_dir", "load_twitter_pos"]

#: The 25 ARK Twitter POS tags, sorted (the ClassLabel names).
TWITTER_POS_TAGS: list[str] = [
    "!", "#", "$", "&", ",", "@", "A", "D", "E", "G", "L", "M", "N",
    "O", "P", "R", "S", "T", "U", "V", "X", "Y", "Z", "^", "~",
]  # fmt: skip

#: Split -> the files it is made of, in order.
TWITTER_POS_FILES: dict[str, tuple[str, ...]] = {
    "train": ("oct27.train", "oct27.dev"),
    "validation": ("oct27.test",),
    "test": ("daily547.test",),
}


def data_dir() -> Path:
    """Return the folder holding the embedded copies of the data files."""
    return Path(__file__).resolve().parent / "twitter_pos"


def _read_file(path: Path) -> tuple[list[list[str]], list[list[str]]]:
    known = set(TWITTER_POS_TAGS)
    all_tokens, all_tags = [], []
    for block in read_blocks(path, separator="\t"):
        tokens, tags = [], []
        for lineno, fields in block:
            if len(fields) != 2:
                raise ValueError(
                    f"{path}:{lineno}: expected 'token<TAB>tag' (2 fields), got {len(fields)}"
                )
            token, tag = fields
            if not token:
                raise ValueError(f"{path}:{lineno}: empty token")
            if tag not in known:
                raise ValueError(f"{path}:{lineno}: unknown Twitter POS tag {tag!r}")
            tokens.append(token)
            tags.append(tag)
        all_tokens.append(tokens)
        all_tags.append(tags)
    if not all_tokens:
        raise ValueError(f"{path}: no tweets found (empty file)")
    return all_tokens, all_tags


def load_twitter_pos(path: str | os.PathLike | None = None) -> datasets.DatasetDict:
    """Load the ARK Twitter POS data as a DatasetDict.

    Args:
        path: ``None`` for the copy shipped with the package, or a folder
            holding ``oct27.train``, ``oct27.dev``, ``oct27.test`` and
            ``daily547.test`` (``token<TAB>tag`` lines, blank line between
            tweets).

    Returns:
        DatasetDict with splits train (1,327 tweets), validation (500), test
        (547); columns ``id`` (tweet index within the split), ``tokens``,
        ``tags`` (ClassLabel over the 25 sorted tags).

    Raises:
        ValueError: a line without exactly two tab-separated fields, with an
            empty token, with a tag outside the 25 ARK tags or with bytes that
            are not UTF-8 (naming file and line); a file without tweets
            (naming the file).
        FileNotFoundError: a data file is missing from ``path``.
    """
    folder = data_dir() if path is None else Path(path)
    splits = {}
    for split, names in TWITTER_POS_FILES.items():
        tokens, tags = [], []
        for name in names:
            t, g = _read_file(folder / name)
            tokens.extend(t)
            tags.extend(g)
        ids = [str(i) for i in range(len(tokens))]
        splits[split] = (ids, tokens, tags)
    return build_tagging_dataset(splits, TWITTER_POS_TAGS)

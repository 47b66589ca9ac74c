"""CCGbank (Hockenmaier & Steedman, 2007) supertagging data from AUTO files.

CCGbank is licensed by the LDC and is not shipped; point ``path`` at a copy.
An AUTO file holds, per sentence, a header line
``ID=wsj_0001.1 PARSER=GOLD NUMPARSE=1`` and one line with the derivation.
Leaves look like ``(<L N/N NNP NNP Pierre N_73/N_73>)``, i.e.
``(<L category modified_POS original_POS word predicate-argument-category>)``;
internal nodes ``(<T category head_index n_children> child ... )``.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import datasets

from .conll import build_tagging_dataset

__all__ = [
    "DEFAULT_SECTIONS",
    "UNKNOWN_SUPERTAG",
    "find_auto_files",
    "load_ccgbank",
    "parse_auto_tree",
    "read_auto_file",
]

#: Label for supertags outside the kept set.
UNKNOWN_SUPERTAG = "*"

#: The standard split: train 02-21, validation 00, test 23.
DEFAULT_SECTIONS: dict[str, tuple[int, ...]] = {
    "train": tuple(range(2, 22)),
    "validation": (0,),
    "test": (23,),
}

_AUTO_NAME = re.compile(r"^wsj_(\d\d)(\d\d)\.auto$")


def parse_auto_tree(line: str) -> list[tuple[str, str]]:
    """Parse one AUTO derivation line into its leaves ``[(word, supertag)]``.

    Checks the bracketing, the node headers (``<T cat head n>`` with integer
    head and n, ``<L cat pos pos word pred_arg>``) and that every internal
    node has the number of children it declares; there must be exactly one
    tree.

    Raises:
        ValueError: describing what is malformed (without file/line; see
            :func:`read_auto_file`).
    """
    leaves: list[tuple[str, str]] = []
    stack: list[list[int]] = []  # [declared children, children seen]
    n_roots = 0
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch.isspace():
            i += 1
            continue
        if n_roots:
            raise ValueError(f"text after the end of the tree at column {i + 1}")
        if line.startswith("(<L ", i):
            end = line.find(">)", i)
            if end < 0:
                raise ValueError(f"unterminated leaf at column {i + 1}")
            fields = line[i + 4 : end].split()
            if len(fields) != 5:
                raise ValueError(
                    f"leaf at column {i + 1} has {len(fields)} fields, expected 5 "
                    "(category, modified POS, original POS, word, predicate-argument category)"
                )
            leaves.append((fields[3], fields[0]))
            i = end + 2
            if stack:
                stack[-1][1] += 1
            else:
                n_roots += 1
        elif line.startswith("(<T ", i):
            end = line.find(">", i)
            if end < 0:
                raise ValueError(f"unterminated node header at column {i + 1}")
            fields = line[i + 4 : end].split()
            if len(fields) != 3 or not fields[1].isdigit() or not fields[2].isdigit():
                raise ValueError(
                    f"node header at column {i + 1} must be '<T category head n_children>'"
                )
            declared = int(fields[2])
            if declared < 1:
                raise ValueError(f"node at column {i + 1} declares {declared} children")
            stack.append([declared, 0])
            i = end + 1
        elif ch == ")":
            if not stack:
                raise ValueError(f"unbalanced ')' at column {i + 1}")
            declared, seen = stack.pop()
            if declared != seen:
                raise ValueError(
                    f"node closed at column {i + 1} has {seen} children, declares {declared}"
                )
            if stack:
                stack[-1][1] += 1
            else:
                n_roots += 1
            i += 1
        else:
            raise ValueError(f"unexpected text {line[i : i + 10]!r} at column {i + 1}")
    if stack:
        raise ValueError(f"{len(stack)} unclosed node(s) at the end of the line")
    if not leaves:
        raise ValueError("no tree on the line")
    return leaves


def read_auto_file(path: str | os.PathLike) -> list[tuple[str, list[str], list[str]]]:
    """Read an AUTO file into ``[(sentence_id, words, supertags)]``.

    Raises:
        ValueError: a malformed tree line, a tree without a preceding
            ``ID=`` header, or a header without a tree (naming file and
            1-based line).
    """
    path = Path(path)
    out: list[tuple[str, list[str], list[str]]] = []
    header: tuple[int, str] | None = None
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            if line.startswith("ID="):
                if header is not None:
                    raise ValueError(
                        f"{path}:{header[0]}: header {header[1]!r} is not followed by a tree"
                    )
                header = (lineno, line.split()[0][3:])
                continue
            if header is None:
                raise ValueError(f"{path}:{lineno}: tree line without a preceding 'ID=' header")
            try:
                leaves = parse_auto_tree(line)
            except ValueError as err:
                raise ValueError(f"{path}:{lineno}: malformed AUTO tree: {err}") from None
            out.append((header[1], [w for w, _ in leaves], [c for _, c in leaves]))
            header = None
    if header is not None:
        raise ValueError(f"{path}:{header[0]}: header {header[1]!r} is not followed by a tree")
    return out


def find_auto_files(path: str | os.PathLike) -> dict[int, list[Path]]:
    """Find ``wsj_SSDD.auto`` files below ``path``, grouped by section ``SS``.

    Returns ``{section: [files sorted by name]}``.
    """
    by_section: dict[int, list[Path]] = {}
    for file in Path(path).rglob("wsj_*.auto"):
        m = _AUTO_NAME.match(file.name)
        if m and file.is_file():
            by_section.setdefault(int(m.group(1)), []).append(file)
    return {s: sorted(files, key=lambda f: f.name) for s, files in sorted(by_section.items())}


def _sections(value: Iterable[int | str] | int | str) -> tuple[int, ...]:
    if isinstance(value, (int, str)):
        value = [value]
    return tuple(int(v) for v in value)


def load_ccgbank(
    path: str | os.PathLike | None = None,
    n_supertags: int | None = 400,
    max_train_length: int | None = 50,
    train_sections: Iterable[int | str] | None = None,
    validation_sections: Iterable[int | str] | None = None,
    test_sections: Iterable[int | str] | None = None,
) -> datasets.DatasetDict:
    """Load CCGbank supertagging data.

    Args:
        path: the CCGbank root or its ``data/AUTO`` folder; ``wsj_SSDD.auto``
            files are found recursively.
        n_supertags: keep the ``n_supertags`` most frequent supertags of the
            (length-filtered) training split; ties are broken by first
            occurrence in the training data (file order, then sentence
            order).  Every other supertag, in every split, becomes ``"*"``.
            ``None`` keeps every supertag seen in train.
        max_train_length: train keeps only sentences with fewer than this
            many tokens (``None``: no limit); other splits keep all.
        train_sections, validation_sections, test_sections: override the
            standard sections (02-21, 00, 23).

    Returns:
        DatasetDict (train / validation / test) with ``id`` (e.g.
        ``wsj_0001.1``), ``tokens`` (words) and ``tags`` (supertags).
        ClassLabel names: the kept supertags by decreasing train frequency,
        then ``"*"``.

    Raises:
        ValueError: ``path`` is None, a split has no AUTO file, a malformed
            line (naming file and line), or a bad option value.
    """
    if path is None:
        raise ValueError(
            "CCGbank is licensed (LDC2005T13) and not bundled: pass path=<CCGbank root "
            "or its data/AUTO folder>"
        )
    if n_supertags is not None and n_supertags < 1:
        raise ValueError(f"n_supertags must be positive or None, got {n_supertags}")
    if max_train_length is not None and max_train_length < 1:
        raise ValueError(f"max_train_length must be positive or None, got {max_train_length}")
    chosen = {
        "train": DEFAULT_SECTIONS["train"] if train_sections is None else _sections(train_sections),
        "validation": DEFAULT_SECTIONS["validation"]
        if validation_sections is None
        else _sections(validation_sections),
        "test": DEFAULT_SECTIONS["test"] if test_sections is None else _sections(test_sections),
    }
    files = find_auto_files(path)
    read: dict[str, tuple[list[str], list[list[str]], list[list[str]]]] = {}
    for split, sections in chosen.items():
        split_files = [f for s in sections for f in files.get(s, [])]
        if not split_files:
            raise ValueError(
                f"No wsj_SSDD.auto files for the {split} split (sections "
                f"{', '.join(f'{s:02d}' for s in sections)}) under {path}"
            )
        ids, tokens, tags = [], [], []
        for file in split_files:
            for sent_id, words, cats in read_auto_file(file):
                too_long = max_train_length is not None and len(words) >= max_train_length
                if split == "train" and too_long:
                    continue
                ids.append(sent_id)
                tokens.append(words)
                tags.append(cats)
        read[split] = (ids, tokens, tags)

    counts = Counter(c for cats in read["train"][2] for c in cats)
    counts.pop(UNKNOWN_SUPERTAG, None)
    # Counter keeps first-occurrence order and sorted() is stable, so equal
    # counts stay in order of first occurrence.
    ranked = sorted(counts, key=lambda c: -counts[c])
    kept = ranked if n_supertags is None else ranked[:n_supertags]
    keep = set(kept)
    for split, (ids, tokens, tags) in read.items():
        read[split] = (
            ids,
            tokens,
            [[c if c in keep else UNKNOWN_SUPERTAG for c in cats] for cats in tags],
        )
    return build_tagging_dataset(read, kept + [UNKNOWN_SUPERTAG])

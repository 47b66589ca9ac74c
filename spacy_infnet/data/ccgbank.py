"""CCGbank (Hockenmaier & Steedman, 2007) supertagging data from AUTO files.

CCGbank is licensed by the LDC and is not shipped; point ``path`` at a copy.
An AUTO file holds, per sentence, a header line
``ID=wsj_0001.1 PARSER=GOLD NUMPARSE=1`` and one line with the derivation.
Leaves look like ``(<L N/N NNP NNP Pierre N_73/N_73>)``, i.e.
``(<L category modified_POS original_POS word predicate-argument-category>)``;
internal nodes ``(<T category head_index n_children> child ... )``.

The data may also come as one AUTO file per split (``split_files``, or a
folder holding ``train.auto`` / ``dev.auto`` / ``test.auto``), as does the
open EWT-CCG corpus (:func:`load_ewt_ccg`): silver CCG supertags converted
from the gold UD English EWT trees, a stand-in for the licensed CCGbank.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

import datasets

from .conll import build_tagging_dataset, read_lines

__all__ = [
    "DEFAULT_SECTIONS",
    "EWT_CCG_FILES",
    "SPLIT_FILES",
    "UNKNOWN_SUPERTAG",
    "find_auto_files",
    "find_split_files",
    "load_ccgbank",
    "load_ewt_ccg",
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

#: Split -> file name of a folder with one AUTO file per split (auto-detected by
#: :func:`load_ccgbank` when the folder has no ``wsj_SSDD.auto`` files).
SPLIT_FILES: dict[str, str] = {
    "train": "train.auto",
    "validation": "dev.auto",
    "test": "test.auto",
}

#: The files of EWT-CCG (``shared/data/ewt_ccg``): the same names as :data:`SPLIT_FILES`.
EWT_CCG_FILES: dict[str, str] = dict(SPLIT_FILES)

_SPLITS = ("train", "validation", "test")

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
            ``ID=`` header, a header without a tree, or bytes that are not
            UTF-8 (naming file and 1-based line); a file without trees
            (naming the file).
    """
    path = Path(path)
    out: list[tuple[str, list[str], list[str]]] = []
    header: tuple[int, str] | None = None
    for lineno, line in read_lines(path):
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
    if not out:
        raise ValueError(f"{path}: no sentences found (empty file)")
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


def find_split_files(path: str | os.PathLike) -> dict[str, Path] | None:
    """The per-split AUTO files of the folder ``path``, if it has all of them.

    Returns ``{"train": path/train.auto, "validation": path/dev.auto,
    "test": path/test.auto}`` (see :data:`SPLIT_FILES`) when ``path`` is a
    folder holding those three files, else ``None``.
    """
    folder = Path(path)
    files = {split: folder / name for split, name in SPLIT_FILES.items()}
    if folder.is_dir() and all(f.is_file() for f in files.values()):
        return files
    return None


def _resolve_split_files(
    split_files: Mapping[str, str | os.PathLike], path: str | os.PathLike | None
) -> dict[str, Path]:
    if not isinstance(split_files, Mapping):
        raise TypeError(
            "split_files must be a mapping {'train': file, 'validation': file, 'test': file}, "
            f"got {type(split_files).__name__}"
        )
    unknown = sorted(set(split_files) - set(_SPLITS))
    missing = [s for s in _SPLITS if s not in split_files]
    if unknown or missing:
        raise ValueError(
            "split_files must name exactly the splits 'train', 'validation' and 'test'"
            + (f"; unknown: {', '.join(map(repr, unknown))}" if unknown else "")
            + (f"; missing: {', '.join(map(repr, missing))}" if missing else "")
        )
    base = Path(path) if path is not None else Path()
    resolved: dict[str, Path] = {}
    for split in _SPLITS:
        file = base / split_files[split]
        if not file.is_file():
            raise ValueError(f"AUTO file of the {split} split not found: {file}")
        resolved[split] = file
    return resolved


def load_ccgbank(
    path: str | os.PathLike | None = None,
    n_supertags: int | None = 400,
    max_train_length: int | None = 50,
    train_sections: Iterable[int | str] | None = None,
    validation_sections: Iterable[int | str] | None = None,
    test_sections: Iterable[int | str] | None = None,
    split_files: Mapping[str, str | os.PathLike] | None = None,
) -> datasets.DatasetDict:
    """Load CCG supertagging data from AUTO files (CCGbank or one file per split).

    Where the files come from, in this order:

    1. ``split_files`` given: those three files.
    2. ``wsj_SSDD.auto`` files found recursively below ``path``: CCGbank's
       sections (the standard ones, or ``*_sections``).
    3. none, no ``*_sections`` given, and ``path`` is a folder holding
       ``train.auto``, ``dev.auto`` (validation) and ``test.auto``
       (:data:`SPLIT_FILES`, e.g. EWT-CCG): those files.

    The protocol (Tu & Gimpel 2019, §5) is the same for
    every source: the supertag set comes from the length-filtered train
    split only, and every other supertag, in every split, becomes ``"*"``.

    Args:
        path: the CCGbank root or its ``data/AUTO`` folder (``wsj_SSDD.auto``
            files are found recursively), or a folder with ``train.auto`` /
            ``dev.auto`` / ``test.auto``; with ``split_files``, the folder
            its relative paths are resolved against (``None``: the current
            directory).
        n_supertags: keep the ``n_supertags`` most frequent supertags of the
            (length-filtered) training split; ties are broken by first
            occurrence in the training data (file order, then sentence
            order).  Every other supertag, in every split, becomes ``"*"``.
            ``None`` keeps every supertag seen in train.
        max_train_length: train keeps only sentences with fewer than this
            many tokens (``None``: no limit); other splits keep all.
        train_sections, validation_sections, test_sections: override the
            standard CCGbank sections (02-21, 00, 23).
        split_files: ``{"train": file, "validation": file, "test": file}``,
            one AUTO file per split (all three keys, no others); relative
            paths are resolved against ``path``.  Cannot be combined with
            ``*_sections``.

    Returns:
        DatasetDict (train / validation / test) with ``id`` (the header's
        ``ID=`` value, e.g. ``wsj_0001.1``), ``tokens`` (words, one list
        per sentence) and ``tags`` (supertags, ClassLabel ids, one per
        token).  ClassLabel names, identical across splits: the kept
        supertags by decreasing train frequency, then ``"*"`` (so at most
        ``n_supertags + 1`` names).

    Raises:
        ValueError: ``path`` is None without ``split_files``; ``split_files``
            combined with ``*_sections``, not naming exactly the three
            splits, or naming a file that does not exist (naming it); a
            split with no AUTO file (naming ``path``); a malformed line
            (naming file and line); or a bad option value.
    """
    sections_given = any(
        s is not None for s in (train_sections, validation_sections, test_sections)
    )
    if split_files is not None and sections_given:
        raise ValueError(
            "split_files cannot be combined with train_sections/validation_sections/"
            "test_sections: give either one AUTO file per split or CCGbank sections"
        )
    if path is None and split_files is None:
        raise ValueError(
            "CCGbank is licensed (LDC2005T13) and not bundled: pass path=<CCGbank root "
            "or its data/AUTO folder, or a folder with train.auto, dev.auto, test.auto>"
        )
    if n_supertags is not None and n_supertags < 1:
        raise ValueError(f"n_supertags must be positive or None, got {n_supertags}")
    if max_train_length is not None and max_train_length < 1:
        raise ValueError(f"max_train_length must be positive or None, got {max_train_length}")

    by_split: dict[str, list[Path]]
    if split_files is not None:
        by_split = {s: [f] for s, f in _resolve_split_files(split_files, path).items()}
    else:
        files = find_auto_files(path)
        per_split = None if files or sections_given else find_split_files(path)
        if per_split is not None:
            by_split = {s: [f] for s, f in per_split.items()}
        else:
            given = {
                "train": train_sections,
                "validation": validation_sections,
                "test": test_sections,
            }
            chosen = {
                split: DEFAULT_SECTIONS[split] if value is None else _sections(value)
                for split, value in given.items()
            }
            by_split = {}
            for split, sections in chosen.items():
                found = [f for s in sections for f in files.get(s, [])]
                if not found:
                    hint = ""
                    if not files:
                        hint = (
                            f" (nor, without *_sections, all of {', '.join(SPLIT_FILES.values())})"
                            if not sections_given
                            else " (for a folder with train.auto/dev.auto/test.auto, "
                            "drop the *_sections options)"
                        )
                    raise ValueError(
                        f"No wsj_SSDD.auto files for the {split} split (sections "
                        f"{', '.join(f'{s:02d}' for s in sections)}) under {path}{hint}"
                    )
                by_split[split] = found

    read: dict[str, tuple[list[str], list[list[str]], list[list[str]]]] = {}
    for split, split_paths in by_split.items():
        ids, tokens, tags = [], [], []
        for file in split_paths:
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


def _default_ewt_ccg_places() -> list[Path]:
    repo_root = Path(__file__).resolve().parents[2]  # .../spacy_infnet/data/ccgbank.py
    places = [Path.cwd() / "../shared/data/ewt_ccg", repo_root / "../shared/data/ewt_ccg"]
    return [Path(os.path.normpath(p)) for p in places]


def load_ewt_ccg(path: str | os.PathLike | None = None, **options) -> datasets.DatasetDict:
    """Load EWT-CCG: silver CCG supertags for UD English EWT (an open stand-in for CCGbank).

    The folder holds ``train.auto`` / ``dev.auto`` / ``test.auto`` in CCGbank's
    AUTO format (12,243 / 1,970 / 2,050 sentences; 553 supertags in train,
    the 400 most frequent cover 99.92% of train tokens; see its SOURCE.md).
    This is :func:`load_ccgbank` with ``split_files`` = :data:`EWT_CCG_FILES`,
    so the paper's protocol applies unchanged (400 most frequent train
    supertags + ``"*"``, train sentences under 50 tokens).

    Args:
        path: the ``ewt_ccg`` folder; ``None`` looks for ``../shared/data/ewt_ccg``
            relative to the current directory, then relative to the
            repository root (the folder holding the ``spacy_infnet`` package).
        **options: keyword arguments of :func:`load_ccgbank` (``n_supertags``,
            ``max_train_length``, ``split_files``).

    Returns:
        DatasetDict (train / validation / test) with ``id`` (the UD
        ``sent_id``), ``tokens`` and ``tags`` (supertag ClassLabel ids), as
        :func:`load_ccgbank`.

    Raises:
        ValueError: ``path`` is None and neither default place exists (the
            message names both and the ``path=`` alternative); ``*_sections``
            options (EWT-CCG has no sections); whatever :func:`load_ccgbank`
            raises (a missing file, a malformed line naming file and line).
        TypeError: an option :func:`load_ccgbank` does not take.
    """
    if path is None:
        places = _default_ewt_ccg_places()
        found = next((p for p in places if p.is_dir()), None)
        if found is None:
            raise ValueError(
                "EWT-CCG data folder not found; looked for ../shared/data/ewt_ccg relative to "
                f"the current directory ({places[0]}) and to the repository root "
                f"({places[1]}). Pass path=<folder holding train.auto, dev.auto, test.auto>"
            )
        path = found
    options.setdefault("split_files", EWT_CCG_FILES)
    return load_ccgbank(path, **options)

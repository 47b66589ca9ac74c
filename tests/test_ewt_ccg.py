"""EWT-CCG (open silver CCG supertags of UD English EWT) through the CCGbank loader.

The expected numbers are the ones of ``shared/data/ewt_ccg/SOURCE.md``, recomputed here from the
raw AUTO files with an independent reader (header lines and a leaf regex), not with the loader.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import datasets
import pytest

from spacy_infnet.data import DATASETS, dataset_key, load_dataset, load_ewt_ccg
from spacy_infnet.data import ccgbank as ccgbank_module
from spacy_infnet.data.ccgbank import EWT_CCG_FILES, load_ccgbank

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "ewt_ccg"
SPLITS = ["train", "validation", "test"]
FILES = {"train": "train.auto", "validation": "dev.auto", "test": "test.auto"}

#: SOURCE.md: sentences and tokens per file, distinct supertags in train, top-400 coverage.
SOURCE_SENTENCES = {"train": 12_243, "validation": 1_970, "test": 2_050}
SOURCE_TOKENS = {"train": 193_821, "validation": 24_060, "test": 24_211}
SOURCE_TRAIN_SUPERTAGS = 553
SOURCE_TOP400_COVERAGE = 0.9992

_LEAF = re.compile(r"\(<L (\S+) \S+ \S+ (\S+) \S+>\)")

needs_data = pytest.mark.skipif(
    not SHARED.is_dir(),
    reason=f"EWT-CCG data folder {SHARED} not found (shared/data/ewt_ccg beside the repository)",
)


# --------------------------------------------------------------------------- helpers


def raw_read(file: Path) -> tuple[int, list[tuple[str, list[str], list[str]]]]:
    """``(number of 'ID=' header lines, [(id, words, supertags)])``, read without the loader."""
    headers = 0
    sentences = []
    sent_id = None
    for line in file.read_text(encoding="utf-8").splitlines():
        if line.startswith("ID="):
            headers += 1
            sent_id = line.split()[0][3:]
        elif line.strip():
            leaves = _LEAF.findall(line)
            sentences.append((sent_id, [w for _, w in leaves], [c for c, _ in leaves]))
    return headers, sentences


def top_k(sentences, k: int) -> list[str]:
    """The ``k`` most frequent supertags, ties by first occurrence."""
    counts: dict[str, int] = {}
    for _, _, cats in sentences:
        for c in cats:
            counts[c] = counts.get(c, 0) + 1
    ranked = sorted(counts, key=lambda c: -counts[c])  # dicts keep first-occurrence order
    return ranked[:k]


def names_of(ds) -> list[str]:
    return ds.features["tags"].feature.names


def decoded(ds) -> list[list[str]]:
    names = names_of(ds)
    return [[names[i] for i in row] for row in ds["tags"]]


def star_share(ds) -> float:
    rows = decoded(ds)
    return sum(t == "*" for row in rows for t in row) / sum(len(row) for row in rows)


def assert_same(a: datasets.DatasetDict, b: datasets.DatasetDict) -> None:
    assert list(a) == list(b) == SPLITS
    for split in SPLITS:
        assert names_of(a[split]) == names_of(b[split])
        assert a[split]["id"] == b[split]["id"]
        assert a[split]["tokens"] == b[split]["tokens"]
        assert a[split]["tags"] == b[split]["tags"]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def raw():
    if not SHARED.is_dir():
        pytest.skip(f"EWT-CCG data folder {SHARED} not found")
    return {split: raw_read(SHARED / name) for split, name in FILES.items()}


@pytest.fixture(scope="module")
def ewt():
    """``load_dataset("ewt_ccg")`` with its default path and options (the paper's protocol)."""
    if not SHARED.is_dir():
        pytest.skip(f"EWT-CCG data folder {SHARED} not found")
    return load_dataset("ewt_ccg")


# --------------------------------------------------------------------------- the real data


@needs_data
def test_raw_files_match_source_md(raw):
    for split in SPLITS:
        headers, sentences = raw[split]
        assert headers == len(sentences) == SOURCE_SENTENCES[split], split
        assert sum(len(w) for _, w, _ in sentences) == SOURCE_TOKENS[split], split
        assert all(len(w) == len(c) > 0 for _, w, c in sentences)
    train = raw["train"][1]
    counts = Counter(c for _, _, cats in train for c in cats)
    assert len(counts) == SOURCE_TRAIN_SUPERTAGS
    assert "*" not in counts  # the unknown label cannot clash with a real category
    coverage = sum(n for _, n in counts.most_common(400)) / sum(counts.values())
    assert round(coverage, 4) == SOURCE_TOP400_COVERAGE


@needs_data
def test_counts_and_labels(ewt, raw):
    assert list(ewt) == SPLITS
    names = names_of(ewt["train"])
    assert len(names) == 401 and names[-1] == "*" and names.count("*") == 1
    for split in SPLITS:
        assert names_of(ewt[split]) == names
    # train: only the sentences with fewer than 50 tokens, in file order
    train_raw = raw["train"][1]
    short = [s for s in train_raw if len(s[1]) < 50]
    assert len(ewt["train"]) == len(short) < SOURCE_SENTENCES["train"]
    assert ewt["train"]["id"] == [i for i, _, _ in short]
    assert max(len(t) for t in ewt["train"]["tokens"]) == 49
    # dev and test keep every sentence, long ones included
    for split in ("validation", "test"):
        sentences = raw[split][1]
        assert len(ewt[split]) == SOURCE_SENTENCES[split]
        assert ewt[split]["id"] == [i for i, _, _ in sentences]
        assert ewt[split]["tokens"] == [w for _, w, _ in sentences]
        assert any(len(w) >= 50 for _, w, _ in sentences)
    # the kept set: the 400 most frequent supertags of the length-filtered train, by frequency
    kept = top_k(short, 400)
    assert names[:-1] == kept
    keep = set(kept)
    for split, sentences in (("train", short), ("validation", raw["validation"][1]),
                             ("test", raw["test"][1])):  # fmt: skip
        expected = [[c if c in keep else "*" for c in cats] for _, _, cats in sentences]
        assert decoded(ewt[split]) == expected, split


@needs_data
def test_star_share(ewt, raw):
    short = [s for s in raw["train"][1] if len(s[1]) < 50]
    counts = Counter(c for _, _, cats in short for c in cats)
    coverage = sum(n for _, n in counts.most_common(400)) / sum(counts.values())
    assert star_share(ewt["train"]) == pytest.approx(1 - coverage, abs=1e-12)
    assert 0 < star_share(ewt["train"]) < 0.001
    for split in ("validation", "test"):
        assert 0 < star_share(ewt[split]) < 0.005


@needs_data
def test_unfiltered_train_matches_source_md_coverage(ewt):
    # SOURCE.md's 99.92% is over all train sentences: without the length filter, "*" is
    # exactly the part of train not covered by the 400 most frequent supertags.  The
    # relative split_files are resolved against path.
    dd = load_ccgbank(
        SHARED,
        max_train_length=None,
        split_files={"train": "train.auto", "validation": "dev.auto", "test": "test.auto"},
    )
    assert len(dd["train"]) == SOURCE_SENTENCES["train"]
    assert len(names_of(dd["train"])) == 401
    share = star_share(dd["train"])
    assert round(1 - share, 4) == SOURCE_TOP400_COVERAGE
    assert share == pytest.approx(0.0008, abs=0.00005)


@needs_data
def test_auto_detection_equals_explicit_split_files(ewt):
    # load_ewt_ccg passes split_files explicitly; load_ccgbank on the folder detects them
    assert EWT_CCG_FILES == FILES
    assert_same(load_ccgbank(SHARED), ewt)


@needs_data
def test_names_and_default_places(tmp_path, monkeypatch):
    assert DATASETS["ewt_ccg"] is load_ewt_ccg
    for name in ("ewt_ccg", "ewt-ccg", "EWT-CCG", "ccg_ewt", "ccg-ewt"):
        assert dataset_key(name) == "ewt_ccg"
    monkeypatch.chdir(tmp_path)
    places = ccgbank_module._default_ewt_ccg_places()
    assert places[0] == (tmp_path.parent / "shared" / "data" / "ewt_ccg")
    assert places[1].resolve() == SHARED


# --------------------------------------------------------------------------- small files

TREE = "(<T S 1 2> (<L NP PRON PRON It NP{1}>) (<L S\\NP VERB VERB rose (S{2}\\NP{1}){2}>) )"


def small_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILES.values():
        (folder / name).write_text(
            f"ID={name}.1 PARSER=GOLD NUMPARSE=1\n{TREE}\nID={name}.2 PARSER=GOLD NUMPARSE=1\n"
            f"{TREE}\n",
            encoding="utf-8",
        )
    return folder


def test_small_folder_auto_detected_and_explicit(tmp_path, monkeypatch):
    folder = small_folder(tmp_path / "ewt")
    auto = load_ccgbank(folder)
    assert auto["validation"]["id"] == ["dev.auto.1", "dev.auto.2"]
    assert names_of(auto["train"]) == ["NP", "S\\NP", "*"]
    assert_same(auto, load_ccgbank(folder, split_files=dict(FILES)))
    assert_same(auto, load_dataset("ewt_ccg", path=folder))
    # relative split_files go against path; path None: against the current directory
    (folder / "dev.auto").rename(folder / "other.auto")
    files = {"train": "train.auto", "validation": "other.auto", "test": "test.auto"}
    assert load_ccgbank(folder, split_files=files)["validation"]["id"] == [
        "dev.auto.1", "dev.auto.2",
    ]  # fmt: skip
    monkeypatch.chdir(folder)
    assert_same(load_ccgbank(split_files=files), load_ccgbank(folder, split_files=files))
    absolute = {s: folder / f for s, f in files.items()}
    assert_same(load_ccgbank(tmp_path / "elsewhere", split_files=absolute), auto)


def test_malformed_line_names_file_and_line(tmp_path):
    folder = small_folder(tmp_path / "ewt")
    bad = folder / "dev.auto"
    bad.write_text(
        f"ID=a PARSER=GOLD NUMPARSE=1\n{TREE}\nID=b PARSER=GOLD NUMPARSE=1\n{TREE[:-2]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"dev\.auto:4: malformed AUTO tree"):
        load_ewt_ccg(folder)
    with pytest.raises(ValueError, match=r"dev\.auto:4: malformed AUTO tree"):
        load_ccgbank(folder)


def test_option_errors(tmp_path, monkeypatch):
    folder = small_folder(tmp_path / "ewt")
    with pytest.raises(ValueError, match="split_files cannot be combined"):
        load_ccgbank(folder, split_files=dict(FILES), train_sections=[2])
    with pytest.raises(ValueError, match="split_files cannot be combined"):
        load_ewt_ccg(folder, test_sections=23)
    with pytest.raises(ValueError, match="missing: 'test'"):
        load_ccgbank(folder, split_files={"train": "train.auto", "validation": "dev.auto"})
    with pytest.raises(ValueError, match="unknown: 'dev'"):
        load_ccgbank(folder, split_files={**FILES, "dev": "dev.auto"})
    with pytest.raises(TypeError, match="mapping"):
        load_ccgbank(folder, split_files="train.auto")
    with pytest.raises(ValueError, match=r"test split not found: .*nope\.auto"):
        load_ccgbank(folder, split_files={**FILES, "test": "nope.auto"})
    # an incomplete folder is not auto-detected; the error says what was looked for
    (folder / "test.auto").unlink()
    with pytest.raises(ValueError, match=r"No wsj_SSDD\.auto.*train\.auto, dev\.auto, test\.auto"):
        load_ccgbank(folder)
    with pytest.raises(ValueError, match=r"test split not found: .*test\.auto"):
        load_ewt_ccg(folder)
    # no default folder: both places tried are named, and path= is suggested
    places = [tmp_path / "a" / "ewt_ccg", tmp_path / "b" / "ewt_ccg"]
    monkeypatch.setattr(ccgbank_module, "_default_ewt_ccg_places", lambda: places)
    with pytest.raises(ValueError, match="path=") as err:
        load_dataset("ccg_ewt")
    assert str(places[0]) in str(err.value) and str(places[1]) in str(err.value)

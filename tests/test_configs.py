"""The shipped configs are complete spaCy configs: spaCy's own `debug config` and `debug data`
accept them, and a missing data folder ends `spacy train` with one short message."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from confection import ConfigValidationError

from spacy_infnet.pipeline.readers import create_dataset_corpus

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p.name for p in (ROOT / "configs").glob("*.cfg"))

#: config -> {path variable: folder under shared/data, or "{root}/..." in the repo}
DATA = {
    "pos.cfg": {},
    "ner.cfg": {"conll2003": "conll2003"},
    "ner_trf.cfg": {"conll2003": "conll2003"},
    "ner_trf_blstm.cfg": {"conll2003": "conll2003"},
    "morph.cfg": {"ud_ewt": "ud_english_ewt"},
    "ccg.cfg": {"ccgbank": "{root}/tests/fixtures/ccgbank"},  # CCGbank itself is licensed
    "ccg_ewt.cfg": {"ewt_ccg": "ewt_ccg"},
    "pos_plain.cfg": {},
    "ner_plain.cfg": {"conll2003": "conll2003"},
    "ccg_ewt_plain.cfg": {"ewt_ccg": "ewt_ccg"},
}

#: `debug data` on a slice: the loaders still read whole files, spaCy's checks see a few docs.
SLICE = ["--corpora.train.limit", "300", "--corpora.dev.limit", "100"]


def spacy_cli(*args: str, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "spacy", *args]
    return subprocess.run(
        cmd, check=False, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def output(res: subprocess.CompletedProcess) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", res.stdout + res.stderr)  # without wasabi's colours


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "error" in line.lower() or "✘" in line]


def data_overrides(config: str, shared: Path | None, tmp_path: Path) -> list[str]:
    """``--paths.X DIR`` for the config's data: the real folder, or (``shared`` None) an empty
    one, enough for `debug config`, which resolves the readers but reads no data."""
    args = []
    for var, folder in DATA[config].items():
        if folder.startswith("{root}"):
            path = Path(folder.format(root=ROOT))
        elif shared is not None:
            path = shared / folder
        else:
            path = tmp_path / folder
            path.mkdir()
        args += [f"--paths.{var}", str(path)]
    return args


@pytest.fixture
def shared_or_none(request) -> Path | None:
    """The real data folder (the ``shared_data`` fixture), or None where it is absent."""
    try:
        return request.getfixturevalue("shared_data")
    except pytest.skip.Exception:
        return None


def test_every_config_is_listed():
    assert set(CONFIGS) == set(DATA)


@pytest.mark.parametrize("config", CONFIGS)
def test_debug_config_passes(config, shared_or_none, tmp_path):
    args = data_overrides(config, shared_or_none, tmp_path)
    res = spacy_cli("debug", "config", f"configs/{config}", *args)
    text = output(res)
    assert res.returncode == 0, text
    assert "Config is valid" in text, text
    assert not error_lines(text), text


@pytest.mark.parametrize("config", ["pos.cfg", "ner.cfg", "morph.cfg", "ccg_ewt.cfg"])
def test_debug_data_passes(config, request, tmp_path):
    needs_shared = any(not folder.startswith("{root}") for folder in DATA[config].values())
    # ner, morph: skipped without the real data
    shared = request.getfixturevalue("shared_data") if needs_shared else None
    args = data_overrides(config, shared, tmp_path)
    res = spacy_cli("debug", "data", f"configs/{config}", *args, *SLICE)
    text = output(res)
    assert res.returncode == 0, text
    assert "Corpus is loadable" in text and "Traceback" not in text, text
    assert not error_lines(text), text


def test_missing_data_folder_is_one_clean_message(tmp_path):
    """`spacy train` from another directory: the relative default path is not found, and the
    reader's ConfigValidationError is printed by spaCy as one block, without a traceback."""
    out = tmp_path / "out"
    res = spacy_cli("train", str(ROOT / "configs" / "ner.cfg"), "--output", str(out), cwd=tmp_path)
    text = output(res)
    assert res.returncode != 0, text
    assert "Traceback" not in text, text
    assert "--paths.conll2003" in text, text
    assert "../shared/data/conll2003" in text, text  # the path as given ...
    assert str(tmp_path.parent / "shared" / "data" / "conll2003") in text, text  # ... and resolved
    assert not (out / "model-last").exists()


def test_reader_checks_the_path_when_the_config_is_resolved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigValidationError) as err:
        create_dataset_corpus("ud_ewt", "train", path="no/such/dir", task="tag")
    text = str(err.value)
    assert "'ud_ewt'" in text and "'no/such/dir'" in text
    assert str(tmp_path / "no" / "such" / "dir") in text
    assert "--paths.ud_ewt DIR" in text
    # no path: the dataset's default (embedded Twitter POS), nothing to check
    assert callable(create_dataset_corpus("twitter_pos", "train", path=None, task="tag"))
    assert callable(create_dataset_corpus("ud_ewt", "train", path=str(tmp_path), task="tag"))

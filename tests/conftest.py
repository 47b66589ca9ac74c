"""Shared pytest fixtures."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder with the real data sets (``shared/data`` beside the repo).

    Override with the environment variable ``SPACY_INFNET_DATA``; tests that
    use this fixture are skipped when the folder does not exist.
    """
    path = Path(
        os.environ.get(
            "SPACY_INFNET_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
        )
    )
    if not path.is_dir():
        pytest.skip(
            f"real data folder {path} not found (set SPACY_INFNET_DATA to the folder holding "
            "twitter_pos/, conll2003/, ud_english_ewt/, embeddings/)"
        )
    return path

"""Shared pytest fixtures."""

import os
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist runs one worker per core (pyproject's addopts): one torch thread each, so
    # that two workers do not oversubscribe the cores
    import torch

    torch.set_num_threads(1)


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


@pytest.fixture(scope="session")
def small_pos_pipeline(tmp_path_factory) -> Path:
    """A small two-stage Twitter POS pipeline on disk: a BLSTM-CRF+ energy (2 epochs) and a CNN
    inference network distilled from it (3 epochs), trained on 150 real tweets."""

    from spacy_infnet.pipeline.readers import dataset_examples

    from small_configs import small_tagger, train_briefly

    nlp = small_tagger(decoder="spacy_infnet.InferenceNetwork.v1", energy_max_epochs=2)
    examples = list(dataset_examples(nlp, "twitter_pos", "train", task="tag", limit=150))
    dev = list(dataset_examples(nlp, "twitter_pos", "validation", task="tag", limit=50))
    train_briefly(nlp, examples, epochs=5, learn_rate=0.01, batch_size=20, dev=dev)
    assert nlp.get_pipe("infnet_tagger").stage == "infnet"
    path = tmp_path_factory.mktemp("pipelines") / "small_pos"
    nlp.to_disk(path)
    return path

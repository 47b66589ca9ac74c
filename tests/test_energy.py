"""The BLSTM-CRF(+) energy network on real sentences: padding invariance, Viterbi optimality,
likelihood training, pretrained vectors, encoder serialisation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spacy_infnet import load_dataset
from spacy_infnet.core.decoders import ViterbiDecoder
from spacy_infnet.core.encoding import UNK, TokenEncoder, case_class
from spacy_infnet.core.energy import BLSTMCRFConfig, BLSTMCRFEnergy
from spacy_infnet.core.model import InfnetModel
from spacy_infnet.training import energy_nll_loss


@pytest.fixture(scope="module")
def tweets():
    ds = load_dataset("twitter_pos")["train"]
    names = ds.features["tags"].feature.names
    return ds["tokens"][:64], ds["tags"][:64], names


def make_energy(sentences, labels, seed=0, **cfg):
    torch.manual_seed(seed)
    enc = TokenEncoder.from_corpus(sentences)
    config = BLSTMCRFConfig(word_dim=24, hidden_size=16, char_filters=8, **cfg)
    return enc, BLSTMCRFEnergy(config, labels, enc.n_words, enc.n_chars)


def test_encoder_normalises_and_round_trips():
    enc = TokenEncoder.from_corpus([["Call", "me", "at", "555-1234"]])
    assert "call" in enc.word_index and "000-0000" in enc.word_index
    batch = enc.encode([["CALL", "ME", "at", "999-9999", "zebra"], []])
    assert batch.word_ids.shape == (2, 5) and batch.mask.sum().item() == 5
    assert batch.word_ids[0, 4].item() == UNK
    assert batch.word_ids[0, 3].item() == enc.word_index["000-0000"]
    assert not batch.mask[1].any() and batch.char_ids.shape[2] == len("999-9999")
    again = TokenEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    assert again.words == enc.words and again.chars == enc.chars
    assert torch.equal(
        again.encode([["CALL", "zebra"]]).word_ids, enc.encode([["CALL", "zebra"]]).word_ids
    )


def test_encoder_matches_a_token_by_token_lookup(tweets):
    """Every tensor of a padded batch equals looking each token up on its own (word index of
    its normal form, case class, characters, pretrained vector of an out-of-vocabulary word
    the table has), and a changed vocabulary or table is seen by the next batch."""
    sents = tweets[0]
    enc = TokenEncoder.from_corpus(sents[:20])
    table_words = ["zebra", "the", "Zebu", "lol"]
    table = np.arange(len(table_words) * 3, dtype=np.float32).reshape(-1, 3) + 1
    enc.set_vectors(table_words, table)
    batch_sents = [["Zebra", "ZEBU", "the"], *sents[18:24], [], ["x"]]
    batch = enc.encode(batch_sents)
    table_row = {}
    for i, w in enumerate(table_words):
        table_row.setdefault(enc.normalize(w), i)
    for b, sent in enumerate(batch_sents):
        assert int(batch.mask[b].sum()) == len(sent) and not batch.mask[b, len(sent) :].any()
        for t, tok in enumerate(sent):
            norm = enc.normalize(tok)
            word = enc.word_index.get(norm, UNK)
            assert batch.word_ids[b, t].item() == word
            assert batch.case_ids[b, t].item() == case_class(tok)
            chars = [enc.char_index.get(c, UNK) for c in tok[: enc.max_word_length]]
            row = batch.char_ids[b, t].tolist()
            assert row[: len(chars)] == chars and not any(row[len(chars) :])
            vec = table[table_row[norm]] if word == UNK and norm in table_row else None
            assert bool(batch.pretrained_mask[b, t]) == (vec is not None)
            if vec is not None:
                assert batch.pretrained[b, t].tolist() == vec.tolist()
    assert batch.word_ids[0, 0].item() == UNK
    enc.add_words(["zebra"])
    again = enc.encode(batch_sents[:1])
    assert again.word_ids[0, 0].item() == enc.word_index["zebra"]
    assert not again.pretrained_mask[0, 0] and again.pretrained_mask[0, 1]
    enc.set_vectors(None, None)
    assert enc.encode(batch_sents[:1]).pretrained is None
    enc.add_chars(["\u2603"])
    snow = enc.encode([["\u2603"]]).char_ids[0, 0, 0].item()
    assert snow == enc.char_index["\u2603"] != UNK


def test_padding_does_not_change_a_sentence_energy(tweets):
    """A sentence's potentials are the same alone and in a padded batch (packed BLSTM, masked
    character max pooling)."""
    sents, _, names = tweets
    enc, energy = make_energy(sents, names)
    energy.eval()
    short = min(sents, key=len)
    long = max(sents, key=len)
    with torch.no_grad():
        alone = energy.potentials(enc.encode([short]))
        batched = energy.potentials(enc.encode([long, short]))
    n = len(short)
    torch.testing.assert_close(alone.emissions[0, :n], batched.emissions[1, :n])
    _, tags_alone = alone.viterbi()
    _, tags_batched = batched.viterbi()
    assert torch.equal(tags_alone[0, :n], tags_batched[1, :n])


def test_viterbi_output_has_the_lowest_energy(tweets):
    sents, _, names = tweets
    enc, energy = make_energy(sents, names)
    energy.eval()
    batch = enc.encode(sents)
    with torch.no_grad():
        decoded = ViterbiDecoder().decode(InfnetModel(energy), batch)
        pot = energy.potentials(batch)
        torch.testing.assert_close(pot.tag_energy(decoded.tags), decoded.energy)
        # Any other labelling (here: 20 random perturbations of the Viterbi path) is no better.
        g = torch.Generator().manual_seed(0)
        for _ in range(20):
            flip = torch.rand(batch.mask.shape, generator=g) < 0.2
            other = torch.where(
                flip, torch.randint(len(names), flip.shape, generator=g), decoded.tags
            )
            assert torch.all(pot.tag_energy(other) >= decoded.energy - 1e-4)
        # The relaxed energy of the per-position softmax of the emissions is ≥ the optimum too.
        relaxed = pot.energy(pot.emissions.softmax(-1))
        assert torch.all(relaxed >= decoded.energy - 1e-4)


def test_likelihood_training_lowers_the_gold_energy_gap(tweets):
    sents, tags, names = tweets
    enc, energy = make_energy(sents, names, dropout=0.0)
    batch = enc.encode(sents)
    gold = torch.zeros(batch.mask.shape, dtype=torch.long)
    for i, row in enumerate(tags):
        gold[i, : len(row)] = torch.tensor(row)
    opt = torch.optim.Adam([p for p in energy.parameters() if p.requires_grad], lr=0.01)
    first = None
    for _ in range(40):
        opt.zero_grad()
        loss = energy_nll_loss(energy, batch, gold)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.3 * first
    energy.eval()
    with torch.no_grad():
        pred = ViterbiDecoder().decode(InfnetModel(energy), batch).tags
    acc = (pred == gold)[batch.mask].float().mean().item()
    assert acc > 0.9  # the 64 training tweets are fitted


def test_fixed_embeddings_get_no_gradient(tweets):
    sents, _, names = tweets
    enc, energy = make_energy(sents, names, char_cnn=False, fine_tune_embeddings=False, dropout=0.0)
    assert energy.features.char_cnn is None
    batch = enc.encode(sents[:4])
    gold = torch.zeros(batch.mask.shape, dtype=torch.long)
    energy_nll_loss(energy, batch, gold).backward()
    assert energy.features.embed.weight.grad is None
    assert energy.features.lstm.weight_ih_l0.grad is not None


def test_pretrained_rows_are_loaded_and_checked(tweets):
    sents, _, names = tweets
    enc = TokenEncoder.from_corpus(sents)
    rng = np.random.default_rng(0)
    words = ["the", "lol", "photosynthesis"]
    table = rng.normal(size=(3, 16)).astype(np.float32)
    enc.set_vectors(words, table)
    energy = BLSTMCRFEnergy(
        BLSTMCRFConfig(word_dim=16, hidden_size=8), names, enc.n_words, enc.n_chars
    )
    the = enc.word_index["the"]
    energy.features.load_pretrained(torch.tensor([the]), torch.from_numpy(table[:1]))
    torch.testing.assert_close(energy.features.embed.weight[the], torch.from_numpy(table[0]))
    assert "photosynthesis" not in enc.word_index
    batch = enc.encode([["the", "photosynthesis"]])
    assert batch.word_ids[0, 1] == 1 and batch.pretrained_mask.tolist() == [[False, True]]
    torch.testing.assert_close(batch.pretrained[0, 1], torch.from_numpy(table[2]))
    with pytest.raises(ValueError, match="dimension 50, the word embedding has 16"):
        energy.features.load_pretrained(torch.tensor([the]), torch.zeros(1, 50))

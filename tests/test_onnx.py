"""ONNX export of inference networks (spacy_infnet.serving.onnx): onnxruntime's logits and tags
equal PyTorch's on padded batches, with and without characters, case classes and a pretrained
vector table; constrained rounding; the decoder; errors."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from spacy_infnet.core.decoders import InferenceNetworkDecoder
from spacy_infnet.core.encoding import TokenEncoder
from spacy_infnet.core.energy import BLSTMCRFConfig
from spacy_infnet.core.infnets import CNNInferenceNetwork, InfnetConfig
from spacy_infnet.core.model import InfnetModel
from spacy_infnet.data import load_dataset
from spacy_infnet.serving import (
    OnnxInfnet,
    attach_onnx,
    export_infnet,
    onnx_input_names,
    tags_from_logits,
)

ENERGY = BLSTMCRFConfig(word_dim=16, hidden_size=8, char_filters=8)
ARCHS = {
    "cnn_chars_case": InfnetConfig(
        "cnn", hidden_size=16, windows=(1, 3), char_cnn=True, case_dim=4
    ),
    "cnn_words": InfnetConfig("cnn", hidden_size=16, windows=(1, 5)),
    "cnn_dilated": InfnetConfig("cnn", hidden_size=8, windows=(1, 3), dilations=(2, 4), case_dim=4),
    "blstm2_chars": InfnetConfig("blstm", hidden_size=8, n_layers=2, char_cnn=True),
    "blstm_case": InfnetConfig("blstm", hidden_size=8, case_dim=4),
    "seq2seq": InfnetConfig("seq2seq", hidden_size=8, label_dim=6, char_cnn=True),
}


@pytest.fixture(scope="module")
def tweets():
    """Real tweets (the first 48 of the embedded training data) and the POS label names."""
    ds = load_dataset("twitter_pos")["train"].select(range(48))
    return [list(r["tokens"]) for r in ds], ds.features["tags"].feature.names


def _model(config, tweets, labels=None, scheme="none", vectors=False):
    words, names = tweets
    torch.manual_seed(0)
    encoder = TokenEncoder.from_corpus(words[:24])  # the other tweets have unknown words
    model = InfnetModel.build(ENERGY, labels or names, encoder, config, scheme)
    if vectors:  # a table that knows the unseen words of the later tweets
        table_words = sorted({w for s in words for w in s})
        table = np.random.default_rng(0).normal(size=(len(table_words), 16)).astype(np.float32)
        model.set_vectors(table_words, table)
    model.stage = "infnet"
    return model.eval()


def _batches(words):
    """Padded batches of different lengths, with a length-1 sentence alone and inside one."""
    return [words[24:31], [["lol"]], [words[30], ["ok"], words[40]], words[:3]]


def _compare(model, path, words, rounding="argmax"):
    network = OnnxInfnet(path, labels=model.labels)
    decoder = InferenceNetworkDecoder(rounding=rounding)
    for sentences in _batches(words):
        batch = model.encode(sentences, chars=model.reads_chars(decoder))
        with torch.no_grad():
            expected = model.infnet(batch)
            tags = decoder.decode(model, batch).tags
        logits = network.logits(batch)
        assert logits.shape == tuple(expected.shape)
        mask = batch.mask
        torch.testing.assert_close(
            torch.from_numpy(logits)[mask], expected[mask], atol=1e-4, rtol=1e-4
        )
        got = tags_from_logits(logits, mask, rounding, model.energy)
        assert torch.equal(got, tags)
    return network


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_logits_and_tags_match_torch(arch, tweets, tmp_path):
    model = _model(ARCHS[arch], tweets)
    path = export_infnet(model, tmp_path / f"{arch}.onnx")
    assert path.is_file() and [p.name for p in tmp_path.iterdir()] == [path.name]
    network = _compare(model, path, tweets[0])
    assert network.input_names == onnx_input_names(model.infnet)
    config = ARCHS[arch]
    assert ("char_ids" in network.input_names) == config.char_cnn
    assert ("case_ids" in network.input_names) == (config.case_dim > 0)
    assert network.labels == model.labels and network.n_labels == len(model.labels)
    if config.architecture == "cnn":  # CNN logits are 0 at padding, as in PyTorch
        batch = model.encode(tweets[0][24:31])
        assert not network.logits(batch)[~batch.mask.numpy()].any()


def test_pretrained_vectors_are_read(tweets, tmp_path):
    """With a vector table the graph reads ``pretrained``; batches without vectors get zeros."""
    model = _model(ARCHS["cnn_chars_case"], tweets, vectors=True)
    path = export_infnet(model, tmp_path / "vectors.onnx")
    network = _compare(model, path, tweets[0])
    assert network.vector_dim == 16
    batch = model.encode(tweets[0][24:31])
    assert batch.pretrained is not None and bool(batch.pretrained_mask.any())
    plain = replace(batch, pretrained=None, pretrained_mask=None)
    with torch.no_grad():
        expected = model.infnet(plain)
    torch.testing.assert_close(
        torch.from_numpy(network.logits(plain))[plain.mask],
        expected[plain.mask],
        atol=1e-4,
        rtol=1e-4,
    )
    assert not np.allclose(network.logits(plain), network.logits(batch))
    # a network that does not read the table (distilled from a transformer) has no such inputs
    model.infnet.inputs.reads_vectors = False
    path = export_infnet(model, tmp_path / "no_vectors.onnx")
    network = _compare(model, path, tweets[0])
    assert "pretrained" not in network.input_names and network.vector_dim is None


def test_constrained_rounding_matches(tweets, tmp_path):
    labels = ["O", "B-X", "I-X", "E-X", "S-X", "B-Y", "I-Y", "E-Y", "S-Y"]
    model = _model(ARCHS["blstm_case"], tweets, labels=labels, scheme="bioes")
    path = export_infnet(model, tmp_path / "ner.onnx")
    _compare(model, path, tweets[0], rounding="constrained")
    with pytest.raises(ValueError, match="needs the energy"):
        tags_from_logits(
            np.zeros((1, 1, 9), np.float32), torch.ones(1, 1, dtype=torch.bool), "constrained"
        )


def test_decoder_predicts_as_torch(tweets, tmp_path):
    model = _model(ARCHS["cnn_chars_case"], tweets)
    path = export_infnet(model, tmp_path / "tagger.onnx")
    sentences = tweets[0][24:40] + [[], ["x"]]
    onnx_decoder = InferenceNetworkDecoder(backend="onnx")
    with pytest.raises(ValueError, match="attach_onnx"):
        model.predict(sentences, onnx_decoder)
    attach_onnx(model, path)
    assert model.predict(sentences, onnx_decoder) == model.predict(
        sentences, InferenceNetworkDecoder()
    )
    assert onnx_decoder.config()["backend"] == "onnx"
    # a stale export (other weights) is refused
    other = _model(ARCHS["cnn_chars_case"], tweets)
    with torch.no_grad():
        other.infnet.output.bias.add_(1.0)
    with pytest.raises(ValueError, match="stale export") as err:
        attach_onnx(other, path)
    assert str(path) in str(err.value)
    # without a path: exported to a temporary file, loaded, and the file removed
    runner = attach_onnx(other)
    assert other.onnx_runner is runner and not runner.path.exists()
    assert other.predict(sentences, onnx_decoder) == other.predict(
        sentences, InferenceNetworkDecoder()
    )


def test_errors_name_the_file(tweets, tmp_path):
    missing = tmp_path / "missing.onnx"
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        OnnxInfnet(missing)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.onnx") as err:
        OnnxInfnet(junk)
    assert "\n" not in str(err.value)
    model = _model(ARCHS["cnn_words"], tweets)
    path = export_infnet(model, tmp_path / "pos.onnx")
    with pytest.raises(ValueError, match=r"pos\.onnx.*25 labels, the model has 3") as err:
        OnnxInfnet(path, labels=["A", "B", "C"])
    assert "\n" not in str(err.value)
    other = _model(ARCHS["cnn_words"], tweets, labels=["O", "B-X", "I-X"])
    with pytest.raises(ValueError, match="25 labels, the model has 3"):
        OnnxInfnet(path).check(other)


def test_refusals(tweets, tmp_path):
    with pytest.raises(ValueError, match="has none"):
        export_infnet(SimpleNamespace(infnet=None, labels=()), tmp_path / "none.onnx")
    config = replace(ARCHS["cnn_words"], word_dim=16, piece_embeddings=True, n_pieces=10)
    net = CNNInferenceNetwork(config, 3, 50, 0)
    with pytest.raises(ValueError, match="piece-embedding"):
        export_infnet(SimpleNamespace(infnet=net, labels=("a", "b", "c")), tmp_path / "p.onnx")
    assert not list(tmp_path.iterdir())


def test_pipeline_onnx_backend_and_hub_export(small_pos_pipeline, tweets, tmp_path):
    """A pipeline whose infnet decoder has backend "onnx" exports Ψ on first use (no file) and
    tags as the torch backend; a Hub export with onnx=True carries infnet.onnx, lists it with
    its checksum and loads with the ONNX backend, giving the same tags."""
    import spacy
    from spacy.tokens import Doc

    from spacy_infnet import from_pretrained, save_pretrained

    sentences = tweets[0][:40]
    torch_nlp = spacy.load(small_pos_pipeline)

    def tags(nlp):
        return [[t.tag_ for t in d] for d in nlp.pipe([Doc(nlp.vocab, words=w) for w in sentences])]

    want = tags(torch_nlp)
    block = {"@decoders": "spacy_infnet.InferenceNetwork.v1", "backend": "onnx"}
    lazy = spacy.load(
        small_pos_pipeline, config={"components": {"infnet_tagger": {"decoder": block}}}
    )
    assert tags(lazy) == want
    assert lazy.get_pipe("infnet_tagger").torch_model.onnx_runner is not None

    out = save_pretrained(small_pos_pipeline, tmp_path / "hub", onnx=True)
    assert (out / "infnet_tagger" / "infnet.onnx").is_file()
    manifest = json.loads((out / "config.json").read_text())
    assert "infnet_tagger/infnet.onnx" in manifest["files"]
    served = from_pretrained(out)
    tagger = served.get_pipe("infnet_tagger")
    assert tagger.decoder.backend == "onnx"
    assert tags(served) == want
    assert tagger.torch_model.onnx_runner.path == out / "infnet_tagger" / "infnet.onnx"


def test_hybrid_decoder_runs_psi_on_onnx_with_the_same_output(small_pos_pipeline, tweets):
    """backend = "onnx" in a Hybrid.v1 block: the pipeline attaches the ONNX network itself,
    and the tags, confidences and re-decoded sentences are those of the torch backend."""
    import spacy

    from spacy_infnet.core.decoders import HybridDecoder

    sentences = tweets[0][:60]
    block = {"@decoders": "spacy_infnet.Hybrid.v1", "threshold": 0.6, "backend": "onnx"}
    nlp = spacy.load(
        small_pos_pipeline, config={"components": {"infnet_tagger": {"decoder": block}}}
    )
    assert [d[0].tag_ for d in nlp.pipe([" ".join(s) for s in sentences[:2]])]
    model = nlp.get_pipe("infnet_tagger").torch_model
    assert model.onnx_runner is not None
    out = {}
    for backend in ("torch", "onnx"):
        _, _, out[backend] = model.decode_words(sentences, HybridDecoder(0.6, backend=backend))
    redone = out["torch"].extra["redecoded"]
    assert 0 < int(redone.sum()) < len(sentences)  # both paths of the decoder are taken
    assert torch.equal(out["onnx"].extra["redecoded"], redone)
    assert torch.equal(out["onnx"].tags, out["torch"].tags)
    torch.testing.assert_close(
        out["onnx"].extra["confidence"], out["torch"].extra["confidence"], atol=1e-5, rtol=0
    )
    with pytest.raises(ValueError, match="backend"):
        HybridDecoder(backend="tensorrt")

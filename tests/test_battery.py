"""The bad-input battery (issue 22): hostile input at every entry point.

Each ``test_input_*`` item tries one hostile input, which must give a clear error or a correct
result, with nothing lost and no NaN:

* documents through a trained tag and NER pipeline (``nlp(text)``, ``nlp.pipe``, pre-tokenised
  ``Doc``) under the inference network, Viterbi, and both with ``confidence = true`` (Viterbi
  with k = 3, so that energies are reported too): one label per token from the label set,
  entities inside the doc, scheme-valid label sequences, finite confidences in [0, 1], finite
  energies, and the same result in an ``nlp.pipe`` batch as alone;
* training corpora: the pipeline trains both stages with finite losses and saves;
* malformed files for every loader of :mod:`spacy_infnet.data` and both vectors readers: a
  one-line error naming the file and the line (or the file, when it is empty), or the correct
  result for a valid file;
* damaged pipeline directories and Hub exports: ``spacy.load`` / ``from_pretrained`` raise an
  error naming the file, never return a silently broken pipeline.

N, the number of inputs tried, is the number of ``test_input_*`` items:
``python -m pytest tests/test_battery.py -m "slow or not slow" --collect-only -q | grep -c
test_input_``.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import shutil
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import spacy
import torch
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import minibatch
from spacy.vocab import Vocab

from spacy_infnet.core.schemes import allowed_structure, tags_to_spans
from spacy_infnet.data import load_conll, load_dataset, load_word_vectors
from spacy_infnet.hub import from_pretrained, save_pretrained
from spacy_infnet.pipeline.outputs import SPANS_KEY
from spacy_infnet.pipeline.readers import dataset_examples
from spacy_infnet.pipeline.vectors import load_vectors

from small_configs import small_tagger, train_briefly

COMPONENT = "infnet_tagger"
INFNET = {"@decoders": "spacy_infnet.InferenceNetwork.v1"}
VITERBI = {"@decoders": "spacy_infnet.Viterbi.v1"}
KBEST = {"@decoders": "spacy_infnet.Viterbi.v1", "k": 3}
#: What "a clear error" may be: FileNotFoundError and the like, ValueError (ExportError too).
CLEAR_ERRORS = (OSError, ValueError)


# =========================================================================== 1. documents


@dataclass(frozen=True)
class Variant:
    """A trained pipeline's decoder settings, as ``spacy.load`` overrides them."""

    name: str
    decoder: dict
    confidence: bool = False

    @property
    def k(self) -> int:
        return self.decoder.get("k", 1)


VARIANTS = (
    Variant("infnet", INFNET),
    Variant("viterbi", VITERBI),
    Variant("infnet_confidence", INFNET, confidence=True),
    Variant("viterbi_kbest_confidence", KBEST, confidence=True),
)

SENTENCE = ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."]
LONG_WORDS = (SENTENCE * 556)[:5000]

#: Texts: through ``nlp(text)``, ``nlp.pipe`` and ``nlp(Doc(vocab, words, spaces))`` of their
#: tokens.
TEXTS = {
    "empty": "",
    "one_token": "Reuters",
    "tokens_5000": " ".join(LONG_WORDS),
    "token_10000_chars": "Ab" * 5000,
    "emoji_zwj_skin_tones": "Great win 👍🏽 for the 👩‍👩‍👧‍👦 family 🇬🇧 🏳️‍🌈 😂😂😂 in London !",
    "zero_width": "Paris\u200bLondon \u200d \ufeffBerlin zero\u200dwidth \ufeff Rome\u200b",
    "combining": "Zu\u0308rich cafe\u0301 Z\u0351\u0352\u0353\u0354algo \u0301 n\u0303o Mu\u0308ller",
    "rtl_arabic": "ذهب محمد إلى القاهرة يوم الاثنين .",
    "rtl_hebrew": "נתניהו ביקר בירושלים אתמול .",
    "rtl_mixed": "Obama met عباس in ירושלים \u202eevil\u202c and Paris today .",
    "cjk": "習近平は北京で演説した。 東京 서울특별시 中华人民共和国 Tokyo",
    "control_characters": "EU\x00rejects \x1b[31mGerman\x1b[0m call\x7f to\r\nboycott\rBritish lamb .",
    "whitespace_runs": "EU   rejects \t\t German \n\n call  \u3000 lamb   ",
}
#: Token counts the tokenizer must give (documents of 0, 1 and 5,000 tokens; one long token).
TOKEN_COUNTS = {"empty": 0, "one_token": 1, "tokens_5000": 5000, "token_10000_chars": 1}
#: Pre-tokenised words: through ``nlp(Doc(vocab, words=...))`` and ``nlp.pipe``.
WORDS = {
    "words_whitespace_only": [" ", "\t"],
    "words_line_breaks_and_wide_spaces": ["\n", "\r\n", "\r", "\u3000", "\u00a0", "  "],
    "words_zero_width": ["\u200b", "\u200d", "\ufeff"],
    "words_control_characters": ["\x00", "\x1b", "\x7f", "\r", "EU", "\x00\x00"],
    "words_emoji_zwj_skin_tones": ["👩‍👩‍👧‍👦", "👍🏽", "🏳️‍🌈", "John", "🇬🇧"],
    "words_rtl_mixed": ["Obama", "عباس", "ירושלים", "\u202e", "Paris"],
    "words_combining_only": ["\u0301", "\u0308\u0308", "e\u0301"],
    "words_one_token_10000_chars": ["Müller" * 1666 + "Smit"],
    "words_5000": LONG_WORDS,
}
INPUTS = (*TEXTS, *WORDS)
#: (task, variant, input) left to the slow run: the CRF's entity confidences take a constrained
#: forward pass per entity, quadratic in the length of a document full of entities (~20 s at
#: 5,000 tokens, core/confidence.py).
SLOW = {("ner", "viterbi_kbest_confidence", name) for name in ("tokens_5000", "words_5000")}

DOC_CASES = [
    pytest.param(
        task,
        variant,
        name,
        id=f"{task}-{variant.name}-{name}",
        marks=[pytest.mark.slow] if (task, variant.name, name) in SLOW else [],
    )
    for task in ("tag", "ner")
    for variant in VARIANTS
    for name in INPUTS
]
BATCH_CASES = [
    pytest.param(task, variant, id=f"{task}-{variant.name}")
    for task in ("tag", "ner")
    for variant in VARIANTS
]


def as_input(nlp, name: str) -> str | Doc:
    return TEXTS[name] if name in TEXTS else Doc(nlp.vocab, words=WORDS[name])


def ner_example(nlp, words: list[str], spans: list[tuple[int, int, str]]) -> Example:
    reference = Doc(nlp.vocab, words=words)
    reference.set_ents([Span(reference, s, e, label=t) for s, e, t in spans], default="outside")
    return Example(Doc(nlp.vocab, words=words), reference)


def tag_example(nlp, words: list[str], tags: list[str]) -> Example:
    return Example(Doc(nlp.vocab, words=words), Doc(nlp.vocab, words=words, tags=tags))


@pytest.fixture(scope="module")
def conll_rows(shared_data) -> tuple[list, list]:
    """(words, entity spans) of 200 real CoNLL-2003 training and 60 dev sentences."""
    nlp = spacy.blank("en")
    path = str(shared_data / "conll2003")

    def rows(split: str, limit: int) -> list:
        return [
            (
                [t.text for t in eg.reference],
                [(e.start, e.end, e.label_) for e in eg.reference.ents],
            )
            for eg in dataset_examples(nlp, "conll2003", split, path=path, task="ner", limit=limit)
        ]

    return rows("train", 200), rows("validation", 60)


@pytest.fixture(scope="module")
def tweet_rows() -> tuple[list, list]:
    """(words, tags) of 300 real training and 100 dev tweets."""
    nlp = spacy.blank("en")

    def rows(split: str, limit: int) -> list:
        return [
            ([t.text for t in eg.reference], [t.tag_ for t in eg.reference])
            for eg in dataset_examples(nlp, "twitter_pos", split, task="tag", limit=limit)
        ]

    return rows("train", 300), rows("validation", 100)


@pytest.fixture(scope="module")
def ner_pipeline(conll_rows, tmp_path_factory) -> Path:
    """A small two-stage NER pipeline on disk, trained briefly on real CoNLL-2003 sentences
    (it predicts entities, so that their spans and scores are checked)."""
    nlp = small_tagger(task="ner", decoder=INFNET["@decoders"], energy_max_epochs=3)
    train, dev = ([ner_example(nlp, w, s) for w, s in rows] for rows in conll_rows)
    train_briefly(nlp, train, epochs=6, learn_rate=0.03, batch_size=10, dev=dev)
    assert nlp.get_pipe(COMPONENT).stage == "infnet"
    assert sum(len(doc.ents) for doc in nlp.pipe(eg.reference.text for eg in dev)) > 20
    path = tmp_path_factory.mktemp("battery") / "ner"
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="module")
def pipeline_dirs(small_pos_pipeline, ner_pipeline) -> dict[str, Path]:
    return {"tag": small_pos_pipeline, "ner": ner_pipeline}


@pytest.fixture(scope="module")
def loaded(pipeline_dirs) -> Callable:
    """``load(task, variant)``: the trained pipeline with that decoder (loaded once)."""
    cache: dict = {}

    def load(task: str, variant: Variant):
        if (task, variant.name) not in cache:
            settings = {"decoder": variant.decoder, "confidence": variant.confidence}
            overrides = {"components": {COMPONENT: settings}}
            cache[task, variant.name] = spacy.load(pipeline_dirs[task], config=overrides)
        return cache[task, variant.name]

    return load


@pytest.fixture(scope="module")
def batched(loaded) -> Callable:
    """``batch(task, variant)``: (input names, docs) of one ``nlp.pipe`` call over every input
    of the default run, texts and Docs mixed, 4 to a batch (computed once)."""
    cache: dict = {}

    def batch(task: str, variant: Variant):
        if (task, variant.name) not in cache:
            nlp = loaded(task, variant)
            names = [n for n in INPUTS if (task, variant.name, n) not in SLOW]
            docs = list(nlp.pipe((as_input(nlp, n) for n in names), batch_size=4))
            cache[task, variant.name] = names, docs
        return cache[task, variant.name]

    return batch


def follows_scheme(sequence: list[str], labels: list[str], scheme: str) -> bool:
    """Whether ``sequence`` is a label sequence the scheme allows (start, bigrams, end)."""
    transitions, start, end = allowed_structure(labels, scheme)
    index = {label: i for i, label in enumerate(labels)}
    ids = [index[label] for label in sequence]
    return (
        start[ids[0]]
        and end[ids[-1]]
        and all(transitions[a][b] for a, b in itertools.pairwise(ids))
    )


def check_doc(nlp, variant: Variant, doc: Doc, name: str) -> None:
    """Nothing lost, one valid label per token, finite confidences and energies."""
    tagger = nlp.get_pipe(COMPONENT)
    labels = list(tagger.labels)
    n = len(doc)
    if name in TEXTS:
        assert doc.text == TEXTS[name]
        assert n == TOKEN_COUNTS.get(name, n)
    else:
        assert [t.text for t in doc] == WORDS[name]
    ents = [(e.start, e.end, e.label_) for e in doc.ents]
    if tagger.task == "tag":
        assert all(t.tag_ in labels for t in doc)
    else:
        types = {label[2:] for label in labels if label != "O"}
        assert all(t.ent_iob_ in ("B", "I", "O") for t in doc)
        assert all(0 <= s < e <= n and t in types for s, e, t in ents)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(ents))
    if not variant.confidence:
        return
    probs = doc._.infnet_token_confidence
    if n == 0:
        assert not probs
        return
    assert len(probs) == n and all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in probs)
    if tagger.task == "ner":
        group = doc.spans[SPANS_KEY]
        assert [(s.start, s.end, s.label_) for s in group] == ents
        scores = [float(p) for p in group.attrs["scores"]]
        assert len(scores) == len(ents)
        assert all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in scores)
    if variant.k > 1:
        kbest = doc._.infnet_kbest
        assert 1 <= len(kbest) <= variant.k
        energies = [entry["energy"] for entry in kbest]
        assert all(math.isfinite(e) for e in energies) and energies == sorted(energies)
        for entry in kbest:
            assert len(entry["labels"]) == n and set(entry["labels"]) <= set(labels)
            if tagger.task == "ner":
                assert follows_scheme(entry["labels"], labels, tagger.scheme)
        first = kbest[0]["labels"]
        if tagger.task == "tag":
            assert first == [t.tag_ for t in doc]
        else:
            assert tags_to_spans(first, tagger.scheme) == ents


def annotations(doc: Doc, variant: Variant) -> tuple[dict, list[float]]:
    """What the pipeline wrote on ``doc``: (exact values, floats)."""
    exact = {
        "words": [t.text for t in doc],
        "tags": [t.tag_ for t in doc],
        "ents": [(e.start, e.end, e.label_) for e in doc.ents],
    }
    floats: list[float] = []
    if variant.confidence:
        floats += doc._.infnet_token_confidence or []
        if SPANS_KEY in doc.spans:
            floats += [float(p) for p in doc.spans[SPANS_KEY].attrs["scores"]]
        exact["kbest"] = [entry["labels"] for entry in doc._.infnet_kbest or []]
        floats += [entry["energy"] for entry in doc._.infnet_kbest or []]
    return exact, floats


def assert_same(doc: Doc, alone: Doc, variant: Variant) -> None:
    exact, floats = annotations(doc, variant)
    exact_alone, floats_alone = annotations(alone, variant)
    assert exact == exact_alone
    assert floats == pytest.approx(floats_alone, rel=1e-5, abs=1e-4)


@pytest.mark.parametrize(("task", "variant", "name"), DOC_CASES)
def test_input_document(task, variant, name, loaded, batched):
    """One document alone, pre-tokenised (texts), and within an ``nlp.pipe`` batch."""
    nlp = loaded(task, variant)
    alone = nlp(as_input(nlp, name))
    check_doc(nlp, variant, alone, name)
    if name in TEXTS:
        words = [t.text for t in alone]
        spaces = [bool(t.whitespace_) for t in alone]
        assert_same(nlp(Doc(nlp.vocab, words=words, spaces=spaces)), alone, variant)
    if (task, variant.name, name) in SLOW:
        docs = list(nlp.pipe(["Reuters", as_input(nlp, name), ""], batch_size=3))
        in_batch = docs[1]
    else:
        names, docs = batched(task, variant)
        in_batch = docs[names.index(name)]
    assert_same(in_batch, alone, variant)


@pytest.mark.parametrize(("task", "variant"), BATCH_CASES)
def test_input_mixed_batch(task, variant, loaded, batched):
    """``nlp.pipe`` of a mixed batch (empty, long, exotic; texts and Docs) returns one doc per
    input, in order, each valid."""
    nlp = loaded(task, variant)
    names, docs = batched(task, variant)
    assert len(docs) == len(names) == len(INPUTS) - sum(s[:2] == (task, variant.name) for s in SLOW)
    for name, doc in zip(names, docs):
        check_doc(nlp, variant, doc, name)


# =========================================================================== 2. training corpora


def finite_scores(scores) -> bool:
    """Every number of a (nested) scores dict is finite (None: not computed)."""
    if isinstance(scores, dict):
        return all(finite_scores(v) for v in scores.values())
    return scores is None or not isinstance(scores, float) or math.isfinite(scores)


def train_and_save(nlp, train: list[Example], dev: list[Example], path: Path, epochs: int = 4):
    """Train both stages briefly: every loss finite, dev scores finite, weights finite; saved,
    loaded back, the same predictions on dev.  Returns the reloaded pipeline's dev docs."""
    spacy.util.fix_random_seed(0)
    optimizer = nlp.initialize(lambda: train)
    optimizer.learn_rate = 0.01
    for _ in range(epochs):
        for batch in minibatch(train, size=8):
            loss = nlp.update(batch, sgd=optimizer, losses={})[COMPONENT]
            assert math.isfinite(loss)
        assert finite_scores(nlp.evaluate(dev))
    tagger = nlp.get_pipe(COMPONENT)
    assert tagger.stage == "infnet"
    assert all(torch.isfinite(p).all() for p in tagger.torch_model.parameters())
    nlp.to_disk(path)
    again = spacy.load(path)
    words = [[t.text for t in eg.reference] for eg in dev]
    before = list(nlp.pipe(Doc(nlp.vocab, words=w) for w in words))
    after = list(again.pipe(Doc(again.vocab, words=w) for w in words))
    variant = Variant("infnet", INFNET)
    for doc, doc_before in zip(after, before, strict=True):
        assert_same(doc, doc_before, variant)
    return after


def joined(rows: list, n_tokens: int, count: int, spans: bool) -> list:
    """``count`` rows of ``n_tokens`` tokens, made by joining consecutive ``(words, tags)``
    rows, or with ``spans``, ``(words, entity spans)`` rows (spans shifted; those past the end
    left out)."""
    out, source = [], itertools.cycle(rows)
    for _ in range(count):
        words: list[str] = []
        labels: list = []
        while len(words) < n_tokens:
            w, x = next(source)
            labels += [(s + len(words), e + len(words), t) for s, e, t in x] if spans else x
            words += w
        if spans:
            labels = [span for span in labels if span[1] <= n_tokens]
        out.append((words[:n_tokens], labels if spans else labels[:n_tokens]))
    return out


def test_input_corpus_ner_without_any_entity(conll_rows, tmp_path):
    train_rows, dev_rows = conll_rows
    nlp = small_tagger(task="ner", decoder=INFNET["@decoders"], energy_max_epochs=2)
    train = [ner_example(nlp, w, []) for w, _ in train_rows[:48]]
    dev = [ner_example(nlp, w, s) for w, s in dev_rows[:20]]
    docs = train_and_save(nlp, train, dev, tmp_path / "p")
    assert nlp.get_pipe(COMPONENT).labels == ("O",)
    assert all(not doc.ents and all(t.ent_iob_ == "O" for t in doc) for doc in docs)


def test_input_corpus_ner_type_only_in_dev(conll_rows, tmp_path):
    """MISC is removed from train and kept in dev: dev scoring works, MISC is never predicted."""
    train_rows, dev_rows = conll_rows
    nlp = small_tagger(task="ner", decoder=INFNET["@decoders"], energy_max_epochs=2)
    train = [ner_example(nlp, w, [x for x in s if x[2] != "MISC"]) for w, s in train_rows[:64]]
    dev = [ner_example(nlp, w, s) for w, s in dev_rows[:30]]
    assert any(e.label_ == "MISC" for eg in dev for e in eg.reference.ents)
    docs = train_and_save(nlp, train, dev, tmp_path / "p")
    assert not any("MISC" in label for label in nlp.get_pipe(COMPONENT).labels)
    assert all(e.label_ != "MISC" for doc in docs for e in doc.ents)


def test_input_corpus_tag_only_in_dev(tweet_rows, tmp_path):
    """Emoticon tag E is absent from train and present in dev."""
    train_rows, dev_rows = tweet_rows
    nlp = small_tagger(task="tag", decoder=INFNET["@decoders"], energy_max_epochs=2)
    train = [tag_example(nlp, w, t) for w, t in train_rows if "E" not in t][:64]
    dev = [tag_example(nlp, w, t) for w, t in dev_rows[:30]]
    assert any(t.tag_ == "E" for eg in dev for t in eg.reference)
    docs = train_and_save(nlp, train, dev, tmp_path / "p")
    assert "E" not in nlp.get_pipe(COMPONENT).labels
    assert all(t.tag_ != "E" for doc in docs for t in doc)


def test_input_corpus_ner_1000_token_sentences(conll_rows, tmp_path):
    train_rows, dev_rows = conll_rows
    nlp = small_tagger(task="ner", decoder=INFNET["@decoders"], energy_max_epochs=1)
    train = [ner_example(nlp, w, s) for w, s in joined(train_rows, 1000, 4, spans=True)]
    dev = [ner_example(nlp, w, s) for w, s in joined(dev_rows, 1000, 1, spans=True)]
    docs = train_and_save(nlp, train, dev, tmp_path / "p", epochs=3)
    assert [len(doc) for doc in docs] == [1000]


def test_input_corpus_tag_1000_token_sentences(tweet_rows, tmp_path):
    train_rows, dev_rows = tweet_rows
    nlp = small_tagger(task="tag", decoder=INFNET["@decoders"], energy_max_epochs=1)
    train = [tag_example(nlp, w, t) for w, t in joined(train_rows, 1000, 4, spans=False)]
    dev = [tag_example(nlp, w, t) for w, t in joined(dev_rows, 1000, 1, spans=False)]
    docs = train_and_save(nlp, train, dev, tmp_path / "p", epochs=3)
    assert [len(doc) for doc in docs] == [1000]


def test_input_corpus_ner_empty_and_whitespace_documents(conll_rows, tmp_path):
    """Empty documents, whitespace-only ones and line-break tokens inside sentences."""
    train_rows, dev_rows = conll_rows
    nlp = small_tagger(task="ner", decoder=INFNET["@decoders"], energy_max_epochs=2)
    odd = [([], []), ([" ", "\n"], []), (["\u200b"], [])]
    broken = [
        (["\n", *w, "\r\n"], [(s + 1, e + 1, t) for s, e, t in x]) for w, x in train_rows[:20]
    ]
    rows = odd + broken + train_rows[20:40] + odd
    train = [ner_example(nlp, w, s) for w, s in rows]
    dev = [ner_example(nlp, w, s) for w, s in odd + dev_rows[:10]]
    docs = train_and_save(nlp, train, dev, tmp_path / "p")
    assert [len(doc) for doc in docs[: len(odd)]] == [0, 2, 1]


def test_input_corpus_of_only_empty_documents_is_refused(conll_rows):
    """A train corpus whose documents are all empty: one line saying so at initialise (before,
    training "succeeded" with the label set ("O",) and nothing learned)."""
    nlp = small_tagger(task="ner", energy_max_epochs=1)
    train = [ner_example(nlp, [], []) for _ in range(5)]
    with pytest.raises(ValueError, match=r"^[^\n]*5 training examples are all empty[^\n]*$"):
        nlp.get_pipe(COMPONENT).initialize(lambda: train, nlp=nlp)


def test_input_corpus_gold_type_outside_the_given_labels(conll_rows):
    """Labels given at initialise (PER only), LOC in the gold data: a clear error naming it."""
    train_rows, _ = conll_rows
    nlp = small_tagger(task="ner", energy_max_epochs=1)
    rows = [(w, s) for w, s in train_rows if any(t == "LOC" for *_, t in s)][:4]
    train = [ner_example(nlp, w, s) for w, s in rows]
    nlp.get_pipe(COMPONENT).initialize(lambda: train, nlp=nlp, labels=["PER"])
    with pytest.raises(ValueError, match="LOC.*not in the label set"):
        nlp.update(train, sgd=nlp.create_optimizer())


# =========================================================================== 3. malformed files


@dataclass(frozen=True)
class FileCase:
    """One file a loader reads: the error must name ``line`` (None: an empty file, named), or
    the loader returns ``result`` (a valid file)."""

    loader: str
    name: str
    content: bytes
    line: int | None = None
    result: object = None
    options: dict = field(default_factory=dict)
    filename: str | None = None

    def param(self):
        return pytest.param(self, id=f"{self.loader}-{self.name}")


def _text(text: str) -> bytes:
    return text.encode("utf-8")


def _truncated_gzip() -> tuple[bytes, int]:
    """A gzip file cut in the middle, and the line at which its data ends."""
    data = "".join(f"w{i} {i % 7}.{i % 13} -{i % 11}.5 {i}e-3\n" for i in range(4000)).encode()
    packed = gzip.compress(data)
    cut = packed[: len(packed) // 2]
    readable = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(cut)
    return cut, readable.count(b"\n") + 1


def split_rows(dd, split: str) -> tuple[list, list]:
    names = dd[split].features["tags"].feature.names
    return list(dd[split]["tokens"]), [[names[t] for t in row] for row in dd[split]["tags"]]


TW_GOOD = "hello\tN\nworld\tV\n\n"
C3_GOOD = "-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n\n"
UD_GOOD = (
    "# sent_id = s1\n# text = Hi there\n"
    "1\tHi\thi\tINTJ\tUH\t_\t0\troot\t0:root\t_\n"
    "2\tthere\tthere\tADV\tRB\tPronType=Dem\t1\tadvmod\t1:advmod\t_\n\n"
)  # lines 1-5
AUTO_GOOD = (
    "ID=a.1 PARSER=GOLD NUMPARSE=1\n"
    "(<T S 0 2> (<L NP NNP NNP John NP>) (<L S\\NP VBD VBD ran S\\NP_1>) )\n"
)  # lines 1-2
GZ_CUT, GZ_CUT_LINE = _truncated_gzip()


def _load_twitter(folder: Path, content: bytes, case: FileCase):
    for name in ("oct27.train", "oct27.dev", "daily547.test"):
        (folder / name).write_text(TW_GOOD, encoding="utf-8")
    (bad := folder / "oct27.test").write_bytes(content)
    return bad, lambda: split_rows(load_dataset("twitter_pos", folder), "validation")


def _load_conll2003(folder: Path, content: bytes, case: FileCase):
    for name in ("eng.train", "eng.testb"):
        (folder / name).write_text(C3_GOOD, encoding="utf-8")
    (bad := folder / "eng.testa").write_bytes(content)
    return bad, lambda: split_rows(load_dataset("conll2003", folder), "validation")


def _load_conll(folder: Path, content: bytes, case: FileCase):
    (bad := folder / "train.txt").write_bytes(content)
    options = {"validation": None, "test": None, **case.options}
    return bad, lambda: split_rows(load_conll(folder, **options), "train")


def _load_ud(folder: Path, content: bytes, case: FileCase):
    for name in ("en_ewt-ud-train.conllu", "en_ewt-ud-test.conllu"):
        (folder / name).write_text(UD_GOOD, encoding="utf-8")
    (bad := folder / "en_ewt-ud-dev.conllu").write_bytes(content)
    return bad, lambda: split_rows(load_dataset("ud_ewt", folder), "validation")


def _load_ccg(folder: Path, content: bytes, case: FileCase):
    for name in ("train.auto", "test.auto"):
        (folder / name).write_text(AUTO_GOOD, encoding="utf-8")
    (bad := folder / "dev.auto").write_bytes(content)
    return bad, lambda: split_rows(load_dataset("ccgbank", folder), "validation")


def _load_vectors(folder: Path, content: bytes, case: FileCase):
    (bad := folder / (case.filename or "vectors.txt")).write_bytes(content)

    def load():
        table = load_word_vectors(bad)
        return table.words, table.vectors.tolist()

    return bad, load


def _load_spacy_vectors(folder: Path, content: bytes, case: FileCase):
    (bad := folder / "vectors.txt").write_bytes(content)

    def load():
        vocab = Vocab()
        load_vectors(vocab, bad)
        return vocab.vectors.shape, vocab.get_vector("b").tolist()

    return bad, load


LOADERS = {
    "twitter_pos": _load_twitter,
    "conll2003": _load_conll2003,
    "conll": _load_conll,
    "ud_ewt": _load_ud,
    "ccgbank": _load_ccg,
    "word_vectors": _load_vectors,
    "spacy_vectors": _load_spacy_vectors,
}

F = FileCase
UD_TAIL = "\t_\t0\troot\t0:root\t_\n"  # FEATS HEAD DEPREL DEPS MISC of a one-word sentence
# fmt: off
FILE_CASES = [
    # ---- ARK Twitter POS (token<TAB>tag)
    F("twitter_pos", "wrong_column_count", b"hello\tN\nworld N\n", 2),
    F("twitter_pos", "extra_column", b"hello\tN\tX\n", 1),
    F("twitter_pos", "unknown_tag", b"hello\tN\n\nworld\tNN\n", 3),
    F("twitter_pos", "truncated_mid_line", b"hello\tN\nwor", 2),
    F("twitter_pos", "non_utf8", b"hello\tN\n\xff\xfe\tN\n", 2),
    F("twitter_pos", "truncated_mid_character", b"hello\tN\ncaf\xc3", 2),
    F("twitter_pos", "empty_file", b""),
    F("twitter_pos", "blank_lines_only", b"\n\n\r\n"),
    F("twitter_pos", "empty_token", b"hello\tN\n\t,\n", 2),
    F("twitter_pos", "valid_bom_crlf_emoji", _text("\ufeffhello\tN\r\n😂\tE\r\n\r\nworld\tV\r\n"),
      result=([["hello", "😂"], ["world"]], [["N", "E"], ["V"]])),
    # ---- CoNLL-2003 (token POS chunk NER)
    F("conll2003", "wrong_column_count", b"EU NNP I-ORG\n", 1),
    F("conll2003", "unknown_pos_tag", b"EU XYZ I-NP I-ORG\n", 1),
    F("conll2003", "unknown_ner_tag", b"EU NNP I-NP I-ORG\nrejects VBZ I-VP I-FOO\n", 2),
    F("conll2003", "truncated_mid_line", b"EU NNP I-NP I-ORG\nrejects VBZ", 2),
    F("conll2003", "non_utf8", b"EU NNP I-NP I-ORG\n\xe9t\xe9 NN I-NP O\n", 2),
    F("conll2003", "empty_file", b""),
    F("conll2003", "documents_without_tokens", b"-DOCSTART- -X- O O\n\n-DOCSTART- -X- O O\n"),
    F("conll2003", "valid_bom_crlf", _text("\ufeff-DOCSTART- -X- O O\r\n\r\nEU NNP I-NP I-ORG\r\n"),
      result=([["EU"]], [["S-ORG"]])),
    # ---- the user's own column files
    F("conll", "too_few_columns", b"John B-PER\nSmith\n", 2),
    F("conll", "tag_outside_labels", b"John B-PER\n\nParis B-LOC\n", 3,
      options={"labels": ["O", "B-PER", "I-PER"]}),
    F("conll", "empty_token", b"John\tB-PER\n\tO\n", 2, options={"separator": "\t"}),
    F("conll", "non_utf8", b"Jo\xffhn B-PER\n", 1),
    F("conll", "truncated_mid_character", b"John B-PER\nZ\xc3", 2),
    F("conll", "empty_file", b""),
    F("conll", "valid_bom_iob2_to_bioes", _text("\ufeffJohn B-PER\nSmith I-PER\n"),
      result=([["John", "Smith"]], [["B-PER", "E-PER"]]),
      options={"scheme": "iob2", "target_scheme": "bioes"}),
    # ---- UD English EWT (CoNLL-U)
    F("ud_ewt", "wrong_column_count", b"1\tHi\thi\tINTJ\n", 1),
    F("ud_ewt", "truncated_mid_line", _text(UD_GOOD + "# sent_id = s2\n1\tBye\tby"), 7),
    F("ud_ewt", "non_utf8", _text(UD_GOOD) + b"1\tH\xffi\thi\tINTJ\tUH" + _text(UD_TAIL), 6),
    F("ud_ewt", "empty_file", b""),
    F("ud_ewt", "sentence_of_comments_only",
      _text(UD_GOOD + "# sent_id = s2\n# text = lost\n\n" + UD_GOOD.replace("s1", "s3")), 6),
    F("ud_ewt", "sentence_of_a_multiword_range_only",
      _text(UD_GOOD + "1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n"), 6),
    F("ud_ewt", "bad_word_id", _text("one\tHi\thi\tINTJ\tUH" + UD_TAIL), 1),
    F("ud_ewt", "unknown_upos", _text("1\tHi\thi\tINTERJ\tUH" + UD_TAIL), 1),
    F("ud_ewt", "empty_form", _text("1\t\thi\tINTJ\tUH" + UD_TAIL), 1),
    F("ud_ewt", "valid_bom_multiword_empty_node",
      _text("\ufeff# sent_id = v1\n1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n"
            "1\tdo\tdo\tAUX\tVBP" + UD_TAIL + "2\tn't\tnot\tPART\tRB\t_\t1\tadvmod\t1:advmod\t_\n"
            "2.1\tgo\tgo\tVERB\tVB\t_\t_\t_\t1:conj\t_\n"),
      result=([["do", "n't"]], [["AUX|_", "PART|_"]])),
    # ---- CCGbank AUTO files
    F("ccgbank", "unbalanced_brackets",
      _text("ID=x\n(<T S 0 2> (<L NP NNP NNP John NP>) (<L S\\NP VBD VBD ran S\\NP_1>)\n"), 2),
    F("ccgbank", "leaf_missing_a_field", _text("ID=x\n(<L NP NNP John NP>)\n"), 2),
    F("ccgbank", "node_header_not_integer",
      _text("ID=x\n(<T S zero 1> (<L NP NNP NNP John NP>) )\n"), 2),
    F("ccgbank", "wrong_child_count",
      _text("ID=x\n(<T S 0 3> (<L NP NNP NNP John NP>) (<L S\\NP VBD VBD ran S\\NP_1>) )\n"), 2),
    F("ccgbank", "two_trees_on_a_line",
      _text("ID=x\n(<L NP NNP NNP John NP>) (<L NP NNP NNP Mary NP>)\n"), 2),
    F("ccgbank", "tree_without_header", _text("(<L NP NNP NNP John NP>)\n"), 1),
    F("ccgbank", "header_without_tree", _text(AUTO_GOOD + "ID=b.2 PARSER=GOLD NUMPARSE=1\n"), 3),
    F("ccgbank", "truncated_mid_tree",
      _text(AUTO_GOOD + "ID=b\n(<T S 0 2> (<L NP NNP NNP John NP>) (<L S\\NP VB"), 4),
    F("ccgbank", "not_a_derivation", _text("ID=x\nJohn ran .\n"), 2),
    F("ccgbank", "non_utf8", b"ID=x\n(<L NP NNP NNP J\xf6hn NP>)\n", 2),
    F("ccgbank", "empty_file", b""),
    F("ccgbank", "valid_bom_crlf", _text("\ufeff" + AUTO_GOOD.replace("\n", "\r\n")),
      result=([["John", "ran"]], [["NP", "S\\NP"]])),
    # ---- GloVe / word2vec text files (spacy_infnet.data.vectors)
    F("word_vectors", "wrong_value_count", b"a 1 2 3\nb 1 2\n", 2),
    F("word_vectors", "non_numeric_value", b"a 1 2 3\nb 1 x 3\n", 2),
    F("word_vectors", "nan_value", b"a 1 2 3\nb nan 2 3\n", 2),
    F("word_vectors", "inf_value", b"a 1 2 3\nb 1 -inf 3\n", 2),
    F("word_vectors", "float32_overflow", b"a 1 2 3\nb 1 2 1e39\n", 2),
    F("word_vectors", "truncated_mid_line", b"a 1 2 3\nb 1 2", 2),
    F("word_vectors", "word2vec_header_announces_more_rows", b"3 3\na 1 2 3\nb 1 2 3\n", 3),
    F("word_vectors", "bad_word2vec_header", b"2 0\na 1\n", 1),
    F("word_vectors", "non_utf8", b"a 1 2 3\n\xff 1 2 3\n", 2),
    F("word_vectors", "empty_file", b""),
    F("word_vectors", "word_without_values", b"a\n", 1),
    F("word_vectors", "gzip_truncated", GZ_CUT, GZ_CUT_LINE, filename="vectors.txt.gz"),
    F("word_vectors", "gzip_suffix_on_plain_text", b"a 1 2 3\n", 1, filename="vectors.txt.gz"),
    F("word_vectors", "valid_word_with_spaces_and_duplicate", b"a 1 2\nnew york 3 4\na 5 6\n",
      result=(["a", "new york"], [[1.0, 2.0], [3.0, 4.0]])),
    F("word_vectors", "valid_word2vec_header_bom", _text("\ufeff2 2\na 1 2\nb 3 4\n"),
      result=(["a", "b"], [[1.0, 2.0], [3.0, 4.0]])),
    F("word_vectors", "valid_gzip", gzip.compress(b"a 1 2\nb 3 4\n"), filename="vectors.txt.gz",
      result=(["a", "b"], [[1.0, 2.0], [3.0, 4.0]])),
    # ---- the same files as spaCy vectors (spacy_infnet.pipeline.vectors.load_vectors)
    F("spacy_vectors", "wrong_value_count", b"a 1 2 3\nb 1 2\n", 2),
    F("spacy_vectors", "nan_value", b"a 1 2 3\nb 1 nan 3\n", 2),
    F("spacy_vectors", "valid", b"a 1 2 3\nb 4 5 6\n", result=((2, 3), [4.0, 5.0, 6.0])),
]
# fmt: on


@pytest.mark.parametrize("case", [c.param() for c in FILE_CASES])
def test_input_file(case: FileCase, tmp_path):
    bad, load = LOADERS[case.loader](tmp_path, case.content, case)
    if case.result is not None:
        assert load() == case.result
        return
    with pytest.raises(ValueError) as err:
        load()
    message = str(err.value)
    assert "\n" not in message  # one line
    if case.line is None:
        assert f"{bad}: " in message and "empty file" in message
    else:
        assert f"{bad}:{case.line}: " in message


# =========================================================================== 4. pipeline dirs

WEIGHTS, CFG = "model.safetensors", "cfg.json"
HUB_CONFIG = "config.json"

Damage = Callable[[Path, str, dict], object]


def remove(path: Path, rel: str, others: dict) -> None:
    path.unlink()


def cut(keep: float) -> Damage:
    """Keep the first ``keep`` bytes (an int) or that share of the file (a float)."""

    def damage(path: Path, rel: str, others: dict) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])

    return damage


def write(data: bytes) -> Damage:
    return lambda path, rel, others: path.write_bytes(data)


def edit(key: str, change: Callable) -> Damage:
    """Replace the JSON field ``key`` by ``change(its value)``."""

    def damage(path: Path, rel: str, others: dict) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        data[key] = change(data[key])
        path.write_text(json.dumps(data), encoding="utf-8")

    return damage


def copy_from(base: str) -> Damage:
    """The same file of another pipeline ("tag", "ner")."""
    return lambda path, rel, others: shutil.copy(others[base] / rel, path)


@dataclass(frozen=True)
class DirCase:
    """A copy of a pipeline (``base``: "tag", "ner", or "export", a Hub export of the tag
    pipeline) with the file ``rel`` damaged; loading it must raise a clear error naming that
    file."""

    base: str
    name: str
    rel: str
    damage: Damage

    def param(self):
        return pytest.param(self, id=f"{self.base}-{self.name}")


W, C, H = f"{COMPONENT}/{WEIGHTS}", f"{COMPONENT}/{CFG}", HUB_CONFIG
D = DirCase
# fmt: off
DIR_CASES = [
    # ---- spacy.load of a saved pipeline
    D("tag", "weights_missing", W, remove),
    D("tag", "weights_truncated", W, cut(0.5)),
    D("tag", "weights_header_only", W, cut(200)),
    D("tag", "weights_empty", W, cut(0)),
    D("tag", "weights_of_the_ner_pipeline", W, copy_from("ner")),
    D("ner", "weights_of_the_tag_pipeline", W, copy_from("tag")),
    D("tag", "cfg_missing", C, remove),
    D("tag", "cfg_invalid_json", C, write(b"{labels: [}")),
    D("tag", "cfg_truncated", C, cut(0.5)),
    D("tag", "cfg_empty", C, cut(0)),
    D("tag", "cfg_not_utf8", C, write(b"\xff\xfe{}")),
    D("tag", "cfg_not_an_object", C, write(b"[]")),
    D("tag", "cfg_labels_reordered", C, edit("labels", lambda x: x[1:] + x[:1])),
    D("tag", "cfg_label_renamed", C, edit("labels", lambda x: ["ZZ", *x[1:]])),
    D("tag", "cfg_label_duplicated", C, edit("labels", lambda x: [x[1], *x[1:]])),
    D("tag", "cfg_one_label_fewer", C, edit("labels", lambda x: x[:-1])),
    D("ner", "cfg_label_outside_the_scheme", C, edit("labels", lambda x: ["O", "X-PER", *x[2:]])),
    D("ner", "cfg_of_the_tag_pipeline", C, copy_from("tag")),
    # ---- spacy_infnet.hub.from_pretrained of an export
    D("export", "config_labels_reordered", H, edit("labels", lambda x: x[1:] + x[:1])),
    D("export", "config_label_renamed", H, edit("labels", lambda x: ["ZZ", *x[1:]])),
    D("export", "config_labels_not_a_list", H, edit("labels", lambda x: "NVA")),
    D("export", "config_invalid_json", H, write(b"{oops")),
    D("export", "config_not_utf8", H, write(b"\xff{}")),
    D("export", "config_missing", H, remove),
    D("export", "config_files_not_a_mapping", H, edit("files", sorted)),
    D("export", "config_files_entry_without_size", H,
      edit("files", lambda x: {k: {"sha256": v["sha256"]} for k, v in x.items()})),
    D("export", "config_files_path_outside_the_export", H,
      edit("files", lambda x: {**x, "../../outside.bin": {"sha256": "0" * 64, "bytes": 1}})),
    D("export", "config_component_not_a_name", H, edit("component", lambda x: None)),
    D("export", "weights_missing", W, remove),
    D("export", "weights_truncated", W, cut(0.5)),
    D("export", "weights_of_another_pipeline", W, copy_from("ner")),
    D("export", "cfg_labels_reordered", C, edit("labels", lambda x: x[::-1])),
]
# fmt: on


@pytest.fixture(scope="module")
def export_dir(small_pos_pipeline, tmp_path_factory) -> Path:
    return save_pretrained(small_pos_pipeline, tmp_path_factory.mktemp("battery") / "export")


def _load(base: str, path: Path):
    return from_pretrained(path) if base == "export" else spacy.load(path)


@pytest.mark.parametrize("base", ["tag", "ner", "export"])
def test_undamaged_copies_load(base, pipeline_dirs, export_dir, tmp_path):
    """The control: a plain copy of each pipeline loads and tags (the damage alone fails)."""
    src = export_dir if base == "export" else pipeline_dirs[base]
    nlp = _load(base, shutil.copytree(src, tmp_path / "p"))
    assert len(nlp("EU rejects German call .")) == 5


@pytest.mark.parametrize("case", [c.param() for c in DIR_CASES])
def test_input_directory(case: DirCase, pipeline_dirs, export_dir, tmp_path):
    src = export_dir if case.base == "export" else pipeline_dirs[case.base]
    damaged = shutil.copytree(src, tmp_path / "p")
    case.damage(damaged / case.rel, case.rel, pipeline_dirs)
    with pytest.raises(CLEAR_ERRORS) as err:
        _load(case.base, damaged)
    assert Path(case.rel).name in str(err.value)

"""Tests for spacy_infnet.bench.likelihood: LSTM language models and the §6.2 correlation."""

import itertools
import json
import math
import random
from collections import Counter

import pytest
import torch

from spacy_infnet.bench.likelihood import (
    LSTMLanguageModel,
    corpus_perplexity,
    markdown,
    search_error_vs_likelihood,
    sentence_perplexities,
    train_language_model,
)

torch.set_num_threads(1)

CYCLE = ["a", "b", "c", "d", "e", "f"]
TINY = {"embedding_dim": 16, "hidden_size": 32, "batch_size": 16, "learning_rate": 1e-2}


def cycle_run(rng: random.Random) -> list[str]:
    """A run of the cycle a b c d e f a b ... from a random start, 4 to 8 tokens long."""
    start, length = rng.randrange(len(CYCLE)), rng.randint(4, 8)
    return [CYCLE[(start + i) % len(CYCLE)] for i in range(length)]


def follows_cycle(tokens: list[str]) -> bool:
    return all(
        CYCLE.index(b) == (CYCLE.index(a) + 1) % len(CYCLE) for a, b in itertools.pairwise(tokens)
    )


@pytest.fixture(scope="module")
def cycle_model() -> LSTMLanguageModel:
    rng = random.Random(0)
    return train_language_model(
        [cycle_run(rng) for _ in range(150)], epochs=12, min_count=1, seed=0, **TINY
    )


def test_pattern_sentences_have_lower_perplexity_than_shuffled(cycle_model):
    rng = random.Random(1)
    held_out = [cycle_run(rng) for _ in range(30)]
    shuffled = []
    for sentence in held_out:
        other = list(sentence)
        while follows_cycle(other):
            rng.shuffle(other)
        shuffled.append(other)
    good = sentence_perplexities(cycle_model, held_out)
    bad = sentence_perplexities(cycle_model, shuffled)
    # Same tokens, so only the order can make the difference.
    assert sum(good) / len(good) < 2.2  # about 1.6 is the best possible
    assert sum(bad) / len(bad) > 3 * sum(good) / len(good)
    assert sum(g < b for g, b in zip(good, bad)) >= 28


def test_perplexity_uses_n_plus_one_predictions(cycle_model):
    sentence = ["c", "d", "e", "f"]
    model = cycle_model
    ids = model.encode(sentence)
    inputs = torch.tensor([[model.bos_id, *ids]])
    targets = [*ids, model.eos_id]
    with torch.no_grad():
        log_probs = torch.log_softmax(model(inputs), dim=-1)[0]
    nll = [-float(log_probs[t, target]) for t, target in enumerate(targets)]
    assert len(nll) == len(sentence) + 1
    with_eos = math.exp(sum(nll) / len(nll))
    without_eos = math.exp(sum(nll[:-1]) / len(sentence))
    (got,) = sentence_perplexities(model, [sentence])
    assert got == pytest.approx(with_eos, rel=1e-5)
    assert abs(got - without_eos) > 1e-4
    # Padding next to a longer sentence in the same batch does not change the value.
    batched = sentence_perplexities(model, [["a", "b", "c", "d", "e", "f", "a", "b"], sentence])
    assert batched[1] == pytest.approx(got, rel=1e-5)
    # <pad> and <bos> are never predicted.
    assert float(log_probs[:, model.pad_id].exp().max()) == 0.0
    assert float(log_probs[:, model.bos_id].exp().max()) == 0.0


def test_unseen_and_rare_words_map_to_unk():
    corpus = [["the", "cat", "sat"], ["the", "dog", "sat"], ["The", "cat", "ran"]]
    model = train_language_model(corpus, epochs=1, min_count=2, seed=0, **TINY)
    assert model.encode(["cat", "dog", "zebra", "The"]) == [
        model.index["cat"],
        model.unk_id,  # seen once: below min_count, trains <unk>
        model.unk_id,  # unseen
        model.unk_id,  # case-sensitive without lowercasing, seen once
    ]
    (ppl,) = sentence_perplexities(model, [["zebra", "giraffe", "sat"]])
    assert math.isfinite(ppl) and ppl > 1.0
    lowered = train_language_model(corpus, epochs=1, min_count=2, lowercase=True, **TINY)
    assert lowered.encode(["The", "THE"]) == [lowered.index["the"]] * 2
    assert lowered.vocabulary[4:] == ["the", "cat", "sat"]


def test_training_is_deterministic_and_leaves_global_rng_alone():
    rng = random.Random(3)
    corpus = [cycle_run(rng) for _ in range(40)]
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = train_language_model(corpus, epochs=2, seed=7, **TINY)
    assert torch.equal(torch.get_rng_state(), before)
    second = train_language_model(corpus, epochs=2, seed=7, **TINY)
    other = train_language_model(corpus, epochs=2, seed=8, **TINY)
    held = corpus[:5]
    assert sentence_perplexities(first, held) == sentence_perplexities(second, held)
    assert sentence_perplexities(first, held) != sentence_perplexities(other, held)


def test_dev_history_callback_and_keep_best():
    rng = random.Random(4)
    train, dev = [cycle_run(rng) for _ in range(60)], [cycle_run(rng) for _ in range(10)]
    seen = []
    model = train_language_model(
        train, epochs=4, dev=dev, callback=lambda *args: seen.append(args), **TINY
    )
    assert [e for e, _, _ in seen] == [1, 2, 3, 4]
    assert [h["dev_perplexity"] for h in model.history] == [d for _, _, d in seen]
    assert corpus_perplexity(model, dev) == pytest.approx(min(d for _, _, d in seen), rel=1e-5)
    assert not model.training


def test_empty_sentence_raises_with_index(cycle_model):
    with pytest.raises(ValueError, match="sentence 1 is empty"):
        sentence_perplexities(cycle_model, [["a"], [], ["b"]])
    with pytest.raises(ValueError, match="sentence 0 is empty"):
        train_language_model([[], ["a"]], epochs=1)


def corrupted_label_data(seed: int = 0):
    """Gold labels follow A B C D A B ...; test sentences have k of their labels replaced.

    The search error of a test sentence is k, so it grows with how rare its label sequence is.
    """
    rng = random.Random(seed)
    labels = ["A", "B", "C", "D"]
    words = [f"w{i}" for i in range(12)]

    def sentence(corrupt: int):
        start, length = rng.randrange(4), rng.randint(6, 9)
        tags = [labels[(start + i) % 4] for i in range(length)]
        for i in rng.sample(range(length), corrupt):
            tags[i] = rng.choice([t for t in labels if t != tags[i]])
        return [rng.choice(words) for _ in tags], tags

    train = [sentence(0) for _ in range(150)]
    ks = [k for k in range(5) for _ in range(8)]
    test = [sentence(k) for k in ks]
    return train, test, [float(k) for k in ks]


def test_search_error_tracks_label_sequence_rarity():
    train, test, errors = corrupted_label_data()
    result = search_error_vs_likelihood(
        [w for w, _ in train],
        [t for _, t in train],
        [w for w, _ in test],
        [t for _, t in test],
        {"infnet": errors},
        epochs=10,
        **TINY,
    )
    m = result["methods"]["infnet"]
    assert m["spearman_label_perplexity"]["rho"] > 0.5
    assert m["spearman_label_perplexity"]["p_value"] < 0.01
    # Words are random: nothing for the word LM to find.
    assert abs(m["spearman_word_perplexity"]["rho"]) < 0.5
    assert m["sentences"] == result["sentences"] == 40
    assert m["zero_search_error_share"] == pytest.approx(0.2)
    assert m["note"] is None
    lms = result["language_models"]
    assert lms["labels"]["min_count"] == 1 and lms["labels"]["vocab_size"] == 4 + 4
    json.dumps(result, allow_nan=False)
    table = markdown(result)
    assert table.splitlines()[0].startswith("| method | ρ vs word perplexity (p)")
    row = next(line for line in table.splitlines() if line.startswith("| infnet |"))
    assert f"{m['spearman_label_perplexity']['rho']:+.3f}" in row
    assert row.rstrip().endswith("| 40 | 20.0 |")


def test_constant_search_errors_give_none_with_note():
    train, test, _ = corrupted_label_data(seed=1)
    test_words, test_labels = [w for w, _ in test], [t for _, t in test]
    # Values within zero_tol of zero count as exact ties.
    exact = [0.0] * (len(test) - 1) + [-1e-6]
    result = search_error_vs_likelihood(
        [w for w, _ in train],
        [t for _, t in train],
        test_words + [[]],  # empty sentences are dropped (with their search error)
        test_labels + [[]],
        {"viterbi-exact": exact + [0.0], "gd": [1.0] * len(test) + [0.0]},
        epochs=1,
        **TINY,
    )
    assert result["dropped_empty"] == 1 and result["sentences"] == len(test)
    for name in ("viterbi-exact", "gd"):
        m = result["methods"][name]
        assert m["spearman_word_perplexity"] == {"rho": None, "p_value": None}
        assert m["spearman_label_perplexity"] == {"rho": None, "p_value": None}
        assert "same search error" in m["note"]
    assert result["methods"]["viterbi-exact"]["zero_search_error_share"] == 1.0
    assert result["methods"]["gd"]["zero_search_error_share"] == 0.0
    json.dumps(result, allow_nan=False)
    table = markdown(result)
    assert "| gd | n/a | n/a |" in table
    assert "- gd: rho undefined: every sentence has the same search error" in table


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"train_labels": [["A"]]}, "train_labels has 1 entries but train_words has 2"),
        ({"test_labels": [["A"]] * 3}, "test_words has 2 entries but test_labels has 3"),
        ({"search_errors": {"gd": [0.0]}}, r"search_errors\['gd'\] has 1 entries .* has 2"),
        ({"test_labels": [["A"], ["A"]]}, "test sentence 1: 2 words but 1 labels"),
        ({"search_errors": {"gd": [0.0, -0.5]}}, r"search_errors\['gd'\]\[1\] = -0.5 < 0"),
        ({"search_errors": {"gd": [0.0, float("nan")]}}, "must be finite"),
        ({"hidden": 3}, "unknown language-model options"),
    ],
)
def test_bad_inputs_raise(change, message):
    args = {
        "train_words": [["x"], ["y", "z"]],
        "train_labels": [["A"], ["A", "B"]],
        "test_words": [["x"], ["y", "z"]],
        "test_labels": [["A"], ["A", "B"]],
        "search_errors": {"gd": [0.0, 1.0]},
    }
    extra = {k: v for k, v in change.items() if k not in args}
    args.update({k: v for k, v in change.items() if k in args})
    with pytest.raises(ValueError, match=message):
        search_error_vs_likelihood(**args, **extra)


def test_label_lm_on_twitter_pos_beats_unigram():
    from spacy_infnet.data import load_dataset

    d = load_dataset("twitter_pos")
    names = d["train"].features["tags"].feature.names
    train = [[names[i] for i in row] for row in d["train"]["tags"]]
    test = [[names[i] for i in row] for row in d["test"]["tags"]]
    model = train_language_model(train, epochs=1, min_count=1, seed=0)
    assert model.vocab_size == len(names) + 4
    # Unigram model with <eos>, add-one smoothed: what a context-free model achieves.
    counts = Counter(t for s in train for t in s) + Counter({"<eos>": len(train)})
    total = sum(counts.values()) + len(counts)
    log_p = {t: math.log((c + 1) / total) for t, c in counts.items()}
    n = sum(len(s) + 1 for s in test)
    unigram = math.exp(-(sum(log_p[t] for s in test for t in s) + len(test) * log_p["<eos>"]) / n)
    lstm = corpus_perplexity(model, test)
    assert lstm < 0.75 * unigram < len(names)  # about 9.3 against 15.4

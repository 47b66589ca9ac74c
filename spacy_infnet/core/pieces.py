"""Subword pieces for transformer feature networks: words → pieces → windows → words.

The CRF energy E(x, y) of Tu & Gimpel (2019, §2) scores each position t with a feature vector
f(x, t).  In the BLSTM-CRF that vector is the BLSTM state over word embeddings; here it comes from
a Hugging Face transformer instead.  A transformer reads subword *pieces*, not words, and has a
maximum input length, so one vector per word takes four steps:

1. **words → pieces.**  Each sentence (a list of pre-split words) is tokenised with a *fast*
   tokenizer (``is_split_into_words=True``, no special tokens, no truncation); its word alignment
   (``word_ids()``) says which pieces belong to which word.  A word that yields no pieces (an empty
   string, or only whitespace/control characters such as ``"\\u200b"``) gets one unknown piece,
   so no word is ever dropped.
2. **pieces → windows.**  A sentence whose pieces fit in ``max_length - 2`` positions becomes one
   row ``[CLS] pieces… [SEP]``.  A longer one is cut into overlapping windows of at most
   ``max_length - 2`` pieces, consecutive windows sharing ``stride`` pieces (never truncated).
   Each piece is then *read* from one window only: the one where it is farthest from the nearer
   edge of the window's piece span, i.e. where it sees the most context (ties: the earlier
   window).  The windows of all sentences are stacked and padded into ``[N, P]`` rows.
3. **windows → transformer.**  The caller runs the model on ``input_ids`` / ``attention_mask``
   and gets hidden states ``[N, P, H]``.
4. **pieces → words.**  :func:`pool_words` gathers, for every word, the hidden vectors of its
   pieces (through the flat indices in :attr:`PieceBatch.word_pieces`) and keeps the first one or
   averages them, giving ``[B, T, H]``: the features f(x, t) of the energy.

Steps 1–2 are :func:`encode_pieces`, which needs only the tokenizer; step 4 is differentiable, so
the transformer can be fine-tuned through the energy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # pragma: no cover - typing only
    from transformers import PreTrainedTokenizerFast

#: ``max_length`` used when the tokenizer reports no sensible ``model_max_length`` (Hugging Face
#: uses a huge sentinel value, about 1e30, for "no limit").
DEFAULT_MAX_LENGTH = 512
_SANE_MAX_LENGTH = 100_000

POOLING_MODES = ("first", "mean")


@dataclass
class PieceBatch:
    """Transformer input for a batch of B sentences, with the map from pieces back to words.

    Attributes:
        input_ids: [N, P] long.  N windows (rows), each ``[CLS] pieces… [SEP]`` followed by the
            tokenizer's pad id up to P, the longest row of the batch.  Windows are stacked
            sentence by sentence, in order; an empty sentence has no window.
        attention_mask: [N, P] long, 1 on real positions (CLS and SEP included), 0 on padding.
        word_pieces: [B, T, K] long.  ``word_pieces[b, t, :]`` are the flat indices, into the
            ``[N * P]`` flattening of the windows (``row * P + column``), of the positions from
            which the pieces of word ``t`` of sentence ``b`` are read, in piece order, padded with
            -1.  Every real word has at least one piece; every piece of a sentence appears exactly
            once (overlapping windows hold some pieces twice, but only one copy is referenced).
            T = max words per sentence, K = max pieces per word (both ≥ 1).
        word_mask: [B, T] bool, True on real words (left-aligned).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    word_pieces: torch.Tensor
    word_mask: torch.Tensor

    @property
    def lengths(self) -> torch.Tensor:
        """[B] long: the number of words per sentence."""
        return self.word_mask.sum(dim=1)

    @property
    def piece_counts(self) -> torch.Tensor:
        """[B, T] long: the number of pieces per word (0 on padded words)."""
        return (self.word_pieces >= 0).sum(dim=2)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> PieceBatch:
        """A copy with every tensor on ``device``."""
        return PieceBatch(
            input_ids=self.input_ids.to(device, non_blocking=non_blocking),
            attention_mask=self.attention_mask.to(device, non_blocking=non_blocking),
            word_pieces=self.word_pieces.to(device, non_blocking=non_blocking),
            word_mask=self.word_mask.to(device, non_blocking=non_blocking),
        )


def _special_ids(tokenizer: Any) -> tuple[int, int]:
    """(CLS id, SEP id) that frame a single sequence, or ValueError."""
    cls_id = getattr(tokenizer, "cls_token_id", None)
    sep_id = getattr(tokenizer, "sep_token_id", None)
    if cls_id is not None and sep_id is not None:
        return int(cls_id), int(sep_id)
    build = getattr(tokenizer, "build_inputs_with_special_tokens", None)
    if build is not None:
        marker = -7  # never a real id: the framing tokens are whatever surrounds it
        framed = list(build([marker]))
        if len(framed) == 3 and framed[1] == marker:
            return int(framed[0]), int(framed[2])
    raise ValueError(
        f"{type(tokenizer).__name__} has no CLS/SEP tokens (cls_token_id={cls_id}, "
        f"sep_token_id={sep_id}) and does not frame a sequence with exactly one special token "
        "on each side; encode_pieces needs a BERT-style [CLS] … [SEP] input"
    )


def _resolve_lengths(tokenizer: Any, max_length: int | None, stride: int | None) -> tuple[int, int]:
    """Validated (max_length, stride)."""
    if max_length is None:
        reported = getattr(tokenizer, "model_max_length", None)
        if isinstance(reported, int) and 0 < reported <= _SANE_MAX_LENGTH:
            max_length = reported
        else:
            max_length = DEFAULT_MAX_LENGTH
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 3:
        raise ValueError(
            f"max_length must be an int ≥ 3 (CLS + at least one piece + SEP), got {max_length!r}"
        )
    span = max_length - 2
    if stride is None:
        stride = span // 4
    if isinstance(stride, bool) or not isinstance(stride, int) or not 0 <= stride < span:
        raise ValueError(
            f"stride must be an int with 0 ≤ stride < max_length - 2 = {span} "
            f"(max_length={max_length}), got stride={stride!r}"
        )
    return max_length, stride


def _check_sentences(sentences: Sequence[Sequence[str]]) -> list[list[str]]:
    out = []
    for b, sentence in enumerate(sentences):
        if isinstance(sentence, str):
            raise ValueError(  # noqa: TRY004
                f"sentence {b} is a string ({sentence[:30]!r}); expected a sequence of words"
            )
        words = list(sentence)
        for t, word in enumerate(words):
            if not isinstance(word, str):
                raise ValueError(  # noqa: TRY004
                    f"sentence {b}, word {t}: expected a str, got {type(word).__name__} ({word!r})"
                )
        out.append(words)
    return out


def _window_starts(n_pieces: int, span: int, stride: int) -> list[int]:
    """Start offsets of the windows of a sentence with ``n_pieces`` pieces."""
    if n_pieces == 0:
        return []
    if n_pieces <= span:
        return [0]
    step = span - stride
    n_windows = 1 + math.ceil((n_pieces - span) / step)
    return [k * step for k in range(n_windows)]


def encode_pieces(
    tokenizer: PreTrainedTokenizerFast,
    sentences: Sequence[Sequence[str]],
    max_length: int | None = None,
    stride: int | None = None,
) -> PieceBatch:
    """Tokenise pre-split sentences into transformer windows, keeping the word alignment.

    Args:
        tokenizer: a Hugging Face *fast* tokenizer (``tokenizer.is_fast``); its word alignment is
            needed.  Tokenizers that must be told about pre-split input (byte-level BPE, e.g.
            RoBERTa) have to be loaded with ``add_prefix_space=True``.
        sentences: B sentences, each a sequence of words (str).  Empty sentences are allowed.
        max_length: the most positions in a window, CLS and SEP included.  Default: the
            tokenizer's ``model_max_length``, or 512 when that is missing or absurdly large.
        stride: pieces shared by consecutive windows of a sentence longer than
            ``max_length - 2`` pieces; default ``(max_length - 2) // 4``.

    Returns:
        A :class:`PieceBatch`.  Shapes: ``input_ids``/``attention_mask`` [N, P] with
        P ≤ max_length; ``word_pieces`` [B, T, K]; ``word_mask`` [B, T] (T, K ≥ 1).  Every word
        gets at least one piece: a word the tokenizer turns into nothing (``""``, ``"\\u200b"``,
        ``"\\x00"``…) gets the tokenizer's unknown piece.  A sentence of L pieces gets one window if
        L ≤ max_length - 2, else windows starting at 0, s, 2s, … (s = max_length - 2 - stride)
        until one reaches the end; each piece is read from the window where its distance to the
        nearer edge of the window's piece span is largest (ties: the earlier window).

    Raises:
        ValueError: the tokenizer is not fast, has no CLS/SEP tokens, or has no unknown token
            when one is needed; ``max_length`` < 3; ``stride`` outside
            ``0 ≤ stride < max_length - 2``; a sentence is a plain string; a word is not a str
            (the message names the sentence and the position).
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"encode_pieces needs a fast tokenizer (is_fast=True) for the word alignment; got "
            f"{type(tokenizer).__name__} (load it with AutoTokenizer.from_pretrained(..., "
            "use_fast=True))"
        )
    max_length, stride = _resolve_lengths(tokenizer, max_length, stride)
    span = max_length - 2
    cls_id, sep_id = _special_ids(tokenizer)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:  # padding is masked out; any valid id will do
        pad_id = sep_id
    unk_id = tokenizer.unk_token_id
    words = _check_sentences(sentences)
    B = len(words)
    n_words = [len(w) for w in words]
    total_words = sum(n_words)
    long = torch.long

    # Step 1: words → pieces.  Global word index = word offset of the sentence + word position.
    word_offset = [0] * B
    running = 0
    for b, n in enumerate(n_words):
        word_offset[b] = running
        running += n
    nonempty = [b for b in range(B) if n_words[b] > 0]
    piece_ids: list[int] = []
    piece_word: list[int] = []
    if nonempty:
        enc = tokenizer(
            [words[b] for b in nonempty],
            is_split_into_words=True,
            add_special_tokens=False,
            truncation=False,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )
        all_ids = enc["input_ids"]
        for i, b in enumerate(nonempty):
            offset = word_offset[b]
            wids = enc.word_ids(i)
            if None in wids:  # no special tokens were asked for; skip any unaligned piece
                keep = [k for k, w in enumerate(wids) if w is not None]
                piece_ids.extend(all_ids[i][k] for k in keep)
                piece_word.extend(offset + wids[k] for k in keep)
            else:
                piece_ids.extend(all_ids[i])
                piece_word.extend([offset + w for w in wids])
    gid = torch.tensor(piece_ids, dtype=long)
    gword = torch.tensor(piece_word, dtype=long)
    # Pieces of a word are contiguous and in order for is_split_into_words; sort (stably) by
    # word otherwise, so the layout below never depends on it.
    if gword.numel() > 1 and not bool((gword[1:] >= gword[:-1]).all()):
        gword, order = torch.sort(gword, stable=True)
        gid = gid[order]
    word_sentence = torch.repeat_interleave(
        torch.arange(B, dtype=long), torch.tensor(n_words, dtype=long)
    )
    counts = torch.bincount(gword, minlength=total_words)
    empty = counts == 0
    if unk_id is None and bool(empty.any()):
        g = int(empty.nonzero()[0, 0])
        b = int(word_sentence[g])
        t = g - word_offset[b]
        raise ValueError(
            f"sentence {b}, word {t} ({words[b][t]!r}) yields no pieces and the tokenizer has no "
            "unknown token to stand for it"
        )
    n_pieces = counts.clamp(min=1)  # [total_words]
    word_start = n_pieces.cumsum(0) - n_pieces  # offset of each word's first piece in `seq`
    first_raw = counts.cumsum(0) - counts
    total = int(n_pieces.sum())
    seq = torch.full((total,), unk_id if unk_id is not None else pad_id, dtype=long)
    if gid.numel():
        rank = torch.arange(gid.numel()) - first_raw[gword]
        seq[word_start[gword] + rank] = gid

    sent_len = torch.zeros(B, dtype=long).index_add_(0, word_sentence, n_pieces)
    sent_start = sent_len.cumsum(0) - sent_len

    # Step 2: pieces → windows, and the window each piece is read from.
    choice = torch.zeros(total, dtype=long)  # window of each piece, relative to its sentence
    first_row = [0] * B
    win_rel_start: list[int] = []
    win_abs_start: list[int] = []
    win_len: list[int] = []
    for b, (L, s0) in enumerate(zip(sent_len.tolist(), sent_start.tolist())):
        first_row[b] = len(win_len)
        starts = _window_starts(L, span, stride)
        for s in starts:
            win_rel_start.append(s)
            win_abs_start.append(s0 + s)
            win_len.append(min(s + span, L) - s)
        if len(starts) > 1:
            j = torch.arange(L)
            lo = torch.tensor(starts, dtype=long).unsqueeze(1)
            hi = (lo + span).clamp(max=L)
            inside = (j >= lo) & (j < hi)
            dist = torch.minimum(j - lo, hi - 1 - j).masked_fill(~inside, -1)
            choice[s0 : s0 + L] = dist.argmax(dim=0)  # first maximum: the earlier window
    N = len(win_len)
    P = max(win_len) + 2 if N else 2
    lens = torch.tensor(win_len, dtype=long)
    rel_start = torch.tensor(win_rel_start, dtype=long)
    pos = torch.arange(P)
    if N:
        src = torch.tensor(win_abs_start, dtype=long).unsqueeze(1) + pos - 1
        inner = (pos >= 1) & (pos <= lens.unsqueeze(1))
        input_ids = torch.where(inner, seq[src.clamp(0, total - 1)], torch.tensor(pad_id))
        input_ids[:, 0] = cls_id
        input_ids[torch.arange(N), lens + 1] = sep_id
    else:
        input_ids = torch.full((0, P), pad_id, dtype=long)
    attention_mask = (pos < (lens + 2).unsqueeze(1)).to(long)

    piece_row = torch.repeat_interleave(torch.tensor(first_row, dtype=long), sent_len) + choice
    piece_local = torch.arange(total) - torch.repeat_interleave(sent_start, sent_len)
    piece_col = 1 + piece_local - rel_start[piece_row]
    flat = piece_row * P + piece_col  # [total]

    # Map back: word → flat positions of its pieces.
    T = max(1, max(n_words, default=0))
    K = int(n_pieces.max()) if total_words else 1
    word_pieces = torch.full((B, T, K), -1, dtype=long)
    word_mask = torch.zeros((B, T), dtype=torch.bool)
    if total_words:
        k = torch.arange(K)
        valid = k < n_pieces.unsqueeze(1)
        idx = (word_start.unsqueeze(1) + k).clamp(max=total - 1)
        values = torch.where(valid, flat[idx], torch.tensor(-1))
        word_t = torch.arange(total_words) - torch.tensor(word_offset, dtype=long)[word_sentence]
        word_pieces[word_sentence, word_t] = values
        word_mask[word_sentence, word_t] = True
    return PieceBatch(input_ids, attention_mask, word_pieces, word_mask)


def pool_words(hidden: torch.Tensor, batch: PieceBatch, mode: str = "first") -> torch.Tensor:
    """Pool transformer piece vectors back to one vector per word.

    Args:
        hidden: [N, P, H] transformer outputs for ``batch.input_ids`` (e.g.
            ``last_hidden_state``).
        batch: the :class:`PieceBatch` the transformer was run on.
        mode: ``"first"``: the vector of each word's first piece; ``"mean"``: the mean over all
            its pieces.

    Returns:
        [B, T, H], same dtype and device as ``hidden``; zeros at padded word positions
        (``~batch.word_mask``).  Differentiable with respect to ``hidden``: gradients reach only
        the referenced positions.  ``"mean"`` gathers a [B, T, K, H] intermediate.

    Raises:
        ValueError: unknown ``mode``; ``hidden`` is not [N, P, H] with [N, P] =
            ``batch.input_ids.shape``.
    """
    if mode not in POOLING_MODES:
        raise ValueError(f"unknown pooling mode {mode!r}; expected one of {POOLING_MODES}")
    if hidden.dim() != 3 or tuple(hidden.shape[:2]) != tuple(batch.input_ids.shape):
        raise ValueError(
            f"hidden must be [N, P, H] with [N, P] = input_ids.shape "
            f"{tuple(batch.input_ids.shape)}; got {tuple(hidden.shape)}"
        )
    N, P, H = hidden.shape
    B, T, K = batch.word_pieces.shape
    if N * P == 0:
        return hidden.new_zeros((B, T, H))
    flat = hidden.reshape(N * P, H)
    pieces = batch.word_pieces.to(hidden.device)
    if mode == "first":
        first = pieces[:, :, 0]
        out = flat.index_select(0, first.clamp(min=0).reshape(-1)).reshape(B, T, H)
        return out.masked_fill((first < 0).unsqueeze(-1), 0.0)
    valid = pieces >= 0
    gathered = flat.index_select(0, pieces.clamp(min=0).reshape(-1)).reshape(B, T, K, H)
    summed = gathered.masked_fill(~valid.unsqueeze(-1), 0.0).sum(dim=2)
    count = valid.sum(dim=2).clamp(min=1).to(hidden.dtype)
    return summed / count.unsqueeze(-1)


class WordPieceBags:
    """Every word as the bag of its subword pieces: an open-vocabulary word input.

    An inference network distilled from a transformer energy reads words, not the transformer.
    With a word-index table, a word unseen in training is one shared unknown vector; as a bag of
    the tokenizer's pieces (``mean_k P[piece_k(w)]`` over a [n_pieces, D] table P started from
    the transformer's input embeddings) every word has its own vector, and words seen in
    training lend what they learnt to unseen words made of the same pieces.  Only the tokenizer
    runs, once per distinct word string (cached), never the transformer.

    Args:
        tokenizer: a Hugging Face tokenizer; each word is tokenised alone, without special
            tokens; a word with no pieces (``""``, ``"\\u200b"``) gets the unknown piece.
        n_pieces: rows of the piece table (default ``len(tokenizer)``; a model's embedding
            matrix may have more rows than the tokenizer has pieces).
        cache_size: most word strings remembered (the cache is emptied when full).
    """

    def __init__(
        self, tokenizer: Any, n_pieces: int | None = None, cache_size: int = 1_000_000
    ) -> None:
        self.tokenizer = tokenizer
        self.n_pieces = len(tokenizer) if n_pieces is None else int(n_pieces)
        self.unk = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else 0
        self.cache_size = cache_size
        self._cache: dict[str, tuple[int, ...]] = {}

    def pieces(self, words: Sequence[str]) -> list[tuple[int, ...]]:
        """Piece ids of each word (tokenising only the words not cached yet).

        Raises:
            TypeError: a word is not a ``str``.
        """
        for w in words:
            if not isinstance(w, str):
                raise TypeError(f"words must be str, got {type(w).__name__} {w!r}")
        new = list(dict.fromkeys(w for w in words if w not in self._cache))
        if new:
            if len(self._cache) + len(new) > self.cache_size:
                self._cache.clear()
            ids = self.tokenizer(new, add_special_tokens=False)["input_ids"]
            for w, w_ids in zip(new, ids):
                self._cache[w] = tuple(w_ids) or (self.unk,)
        return [self._cache[w] for w in words]

    def packed(self, words: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(flat, offsets)`` of ``words`` for ``torch.nn.functional.embedding_bag``: their
        piece ids one after the other ([N] long) and where each word's start ([len(words)])."""
        word_pieces = self.pieces(words)
        lengths = torch.tensor([len(p) for p in word_pieces], dtype=torch.long)
        offsets = torch.cumsum(lengths, 0) - lengths
        flat = torch.tensor([i for p in word_pieces for i in p], dtype=torch.long)
        return flat, offsets

    def bags(
        self, sentences: Sequence[Sequence[str]], length: int, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The batch's distinct words as bags, for ``torch.nn.functional.embedding_bag``.

        Args:
            sentences: B token lists.
            length: T ≥ the longest sentence (the padded batch length).

        Returns:
            ``(flat, offsets, index)``: ``flat`` [N] piece ids of the U distinct words, one after
            the other; ``offsets`` [U] where each word's pieces start; ``index`` [B, T] long, the
            word type of each token.  Type 0 is an empty bag (its mean is the zero vector) used
            for padding positions.

        Raises:
            ValueError: a sentence longer than ``length``.
        """
        types: dict[str, int] = {}
        index = torch.zeros(len(sentences), length, dtype=torch.long)
        for b, sentence in enumerate(sentences):
            if len(sentence) > length:
                raise ValueError(f"sentence {b} has {len(sentence)} words, more than T={length}")
            row = [types.setdefault(w, len(types) + 1) for w in sentence]
            index[b, : len(row)] = torch.tensor(row, dtype=torch.long)
        flat, offsets = self.packed(list(types))
        offsets = torch.cat([offsets.new_zeros(1), offsets])  # type 0: the empty bag
        return flat.to(device), offsets.to(device), index.to(device)

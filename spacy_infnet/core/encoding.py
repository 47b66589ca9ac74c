"""Token encoding: words and characters to padded index tensors.

The energy's feature network f(x, t) (Tu & Gimpel 2019, §2 and §2.1) reads two views of each
token: a word index (looked up in a word-embedding table) and, for BLSTM-CRF+, the sequence of
character indices fed to the character CNN.  :class:`TokenEncoder` owns both vocabularies, turns a
batch of token lists into an :class:`EncodedBatch`, and serialises to plain JSON.

Index conventions: word index 0 = padding, 1 = unknown word; char index 0 = padding,
1 = unknown character.

Pretrained word vectors (GloVe, ...): the word vocabulary holds the *training* words only; their
embedding rows start from the vectors (and are fine-tuned in BLSTM-CRF+).  Every other word that
the vector table knows keeps its pretrained vector: :meth:`TokenEncoder.set_vectors` attaches the
table, and :meth:`TokenEncoder.encode` returns those tokens' vectors in
:attr:`EncodedBatch.pretrained`, which the networks read in place of the unknown word's row
(:meth:`EncodedBatch.embed`).  A user's text is not the training set: a test word absent from
training is not an unknown word when the table has it.  Each token also gets a case class (:func:`case_class`), a cheap
capitalisation feature for inference networks that skip the character CNN (the word lookup is
usually lowercased).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch

PAD, UNK = 0, 1
_DIGITS = re.compile(r"\d")


#: Case classes: 0 padding, 1 no cased letter, 2 lowercase, 3 Titlecase, 4 UPPERCASE, 5 mixed.
N_CASE_CLASSES = 6


@functools.lru_cache(maxsize=1 << 16)
def case_class(token: str) -> int:
    """Capitalisation class of ``token`` (see :data:`N_CASE_CLASSES`); cached per string."""
    if token.islower():
        return 2
    if token.isupper():
        return 4
    if token[:1].isupper() and (len(token) == 1 or not any(c.isupper() for c in token[1:])):
        return 3
    if any(c.isupper() for c in token):
        return 5
    return 1


def _spread(per_type: np.ndarray, idx: np.ndarray, mask: np.ndarray, full: bool) -> torch.Tensor:
    """[B, T, ...]: the row of ``per_type`` [n_types, ...] of each token (``idx`` [N], the
    tokens in reading order) at its place under ``mask`` [B, T], zeros at padding.  Built in
    numpy (a one-sentence batch costs a few microseconds per array, not torch's per-op
    dispatch) and handed to torch without a copy."""
    if full:
        out = per_type[idx].reshape(*mask.shape, *per_type.shape[1:])
    else:
        out = np.zeros((*mask.shape, *per_type.shape[1:]), dtype=per_type.dtype)
        out[mask] = per_type[idx]
    return torch.from_numpy(out)


#: Tokens whose lookups :class:`TokenEncoder` keeps (cleared when full).
_TOKEN_CACHE_SIZE = 1 << 17


@dataclass
class EncodedBatch:
    """A padded batch of sentences.

    Attributes:
        word_ids: [B, T] long, word indices (0 = padding).
        char_ids: [B, T, C] long, character indices (0 = padding); C ≥ 1.  All padding
            (C = 1) when the batch was encoded with ``chars=False``.
        mask: [B, T] bool, True on real tokens, left-aligned.
        case_ids: [B, T] long case classes (0 = padding), or None.
        dense: a promise that every sentence fills T (``mask`` all True).  Networks then skip
            packing and the data-dependent indexing that drops padding, which keeps them usable
            under ``torch.func.vmap`` (instance-tailored inference networks, §4.2.1).  The
            results are the same; a wrong promise gives wrong outputs for the padded rows.
        words: the B token lists themselves, for feature networks that tokenise the text
            again (a transformer's subword pieces, :mod:`spacy_infnet.core.transformer`); None
            when the batch was built from tensors alone.
        piece_vectors: [B, T, D] bag-of-pieces word vectors that a piece-embedding inference
            network reads instead of computing them (instance-tailored decoding); normally None.
        pretrained: [B, T, D] float, the pretrained vector of each token that is outside the
            training vocabulary but in the encoder's vector table (zeros elsewhere), or None
            when no token of the batch is such a word.
        pretrained_mask: [B, T] bool, True where ``pretrained`` holds a token's vector (None
            together with ``pretrained``).
        type_chars: [K + 1, C] long, the character indices of each distinct token string of
            the batch (row 0: all padding), or None.  With :attr:`type_ids` it lets a character
            CNN outside training convolve each distinct token once without searching
            ``char_ids`` for repeated rows.
        type_ids: [B, T] long, the row of :attr:`type_chars` of each token (0 at padding), or
            None (together with ``type_chars``).
    """

    word_ids: torch.Tensor
    char_ids: torch.Tensor
    mask: torch.Tensor
    case_ids: torch.Tensor | None = None
    dense: bool = False
    words: Sequence[Sequence[str]] | None = None
    piece_vectors: torch.Tensor | None = None
    pretrained: torch.Tensor | None = None
    pretrained_mask: torch.Tensor | None = None
    type_chars: torch.Tensor | None = None
    type_ids: torch.Tensor | None = None

    def embed(self, embedding: torch.nn.Module, word_ids: torch.Tensor) -> torch.Tensor:
        """``embedding(word_ids)`` [B, T, D] with the pretrained vector of every token that has
        one in :attr:`pretrained` (those tokens' word id is the unknown word's)."""
        x = embedding(word_ids)
        if self.pretrained is None:
            return x
        pretrained = self.pretrained.to(x.dtype)
        return torch.where(self.pretrained_mask.unsqueeze(-1), pretrained, x)

    @property
    def char_types(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(type_chars, type_ids)``, as :class:`~spacy_infnet.core.features.CharCNN` takes
        them."""
        return self.type_chars, self.type_ids

    @property
    def lengths(self) -> torch.Tensor:
        """[B] long: the number of real tokens per sentence."""
        return self.mask.sum(dim=1)

    def select(self, rows: torch.Tensor) -> EncodedBatch:
        """The sub-batch of sentences ``rows`` ([K] long, in that order), cut to the longest of
        them (every tensor keeps its device; ``words`` follows)."""
        T = max(int(self.mask[rows].sum(dim=1).max()) if len(rows) else 0, 1)

        def cut(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[rows, :T]

        words = None if self.words is None else [self.words[int(i)] for i in rows]
        return EncodedBatch(
            cut(self.word_ids),
            cut(self.char_ids),
            cut(self.mask),
            cut(self.case_ids),
            self.dense and bool(self.mask[rows, :T].all()),
            words,
            cut(self.piece_vectors),
            cut(self.pretrained),
            cut(self.pretrained_mask),
            self.type_chars,
            cut(self.type_ids),
        )

    def to(self, device: torch.device | str) -> EncodedBatch:
        """The batch with every tensor on ``device`` (itself when they are there already)."""
        if self.word_ids.device == torch.device(device):
            return self
        return EncodedBatch(
            self.word_ids.to(device),
            self.char_ids.to(device),
            self.mask.to(device),
            None if self.case_ids is None else self.case_ids.to(device),
            self.dense,
            self.words,
            None if self.piece_vectors is None else self.piece_vectors.to(device),
            None if self.pretrained is None else self.pretrained.to(device),
            None if self.pretrained_mask is None else self.pretrained_mask.to(device),
            None if self.type_chars is None else self.type_chars.to(device),
            None if self.type_ids is None else self.type_ids.to(device),
        )


@dataclass(frozen=True, kw_only=True)
class VocabularySettings:
    """How tokens become word and character indices; every energy architecture has these
    settings (the energy's config dataclasses inherit them).

    Attributes:
        lowercase: lowercase words before the word lookup (characters keep their case).
        normalize_digits: map every digit to ``0`` before the word lookup.
        min_freq: training words seen fewer times are left out of the vocabulary (they read as
            the unknown word).
        max_word_length: characters kept per token for the character CNN (longer tokens are
            cut).
    """

    lowercase: bool = True
    normalize_digits: bool = True
    min_freq: int = 1
    max_word_length: int = 25

    def __post_init__(self) -> None:
        if self.max_word_length < 1:
            raise ValueError(f"max_word_length must be ≥ 1, got {self.max_word_length}")

    @classmethod
    def of(cls, config: object) -> VocabularySettings:
        """The vocabulary settings of a config that has them (e.g. an energy's)."""
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})


class TokenEncoder:
    """Word and character vocabularies for the energy's input layer.

    Args:
        words: the word vocabulary (normalised forms), without the padding/unknown entries.
        chars: the character vocabulary, without the padding/unknown entries.
        settings: normalisation and character limits (:class:`VocabularySettings`).
    """

    def __init__(
        self,
        words: Sequence[str] = (),
        chars: Sequence[str] = (),
        settings: VocabularySettings = VocabularySettings(),
    ) -> None:
        self.settings = settings
        self.lowercase = settings.lowercase
        self.normalize_digits = settings.normalize_digits
        self.max_word_length = settings.max_word_length
        self.words: list[str] = ["<pad>", "<unk>"]
        self.chars: list[str] = ["<pad>", "<unk>"]
        self.word_index: dict[str, int] = {}
        self.char_index: dict[str, int] = {}
        self.vectors: np.ndarray | None = None
        self.vector_index: dict[str, int] = {}
        # raw token -> its lookups (:meth:`_lookup`); emptied whenever a vocabulary or the
        # vector table changes
        self._lookups: dict[str, tuple[int, int, int, tuple[int, ...]]] = {}
        self.add_words(words)
        self.add_chars(chars)

    # -- vocabulary -------------------------------------------------------------------------
    def normalize(self, word: str) -> str:
        """The form of ``word`` used for the word-embedding lookup."""
        if self.lowercase:
            word = word.lower()
        if self.normalize_digits:
            word = _DIGITS.sub("0", word)
        return word

    def add_words(self, words: Iterable[str]) -> None:
        """Add already-normalised word forms (duplicates are ignored)."""
        self._lookups.clear()
        for w in words:
            if w not in self.word_index and w not in ("<pad>", "<unk>"):
                self.word_index[w] = len(self.words)
                self.words.append(w)

    def add_chars(self, chars: Iterable[str]) -> None:
        """Add characters to the character vocabulary (duplicates are ignored)."""
        self._lookups.clear()
        for c in chars:
            if c not in self.char_index:
                self.char_index[c] = len(self.chars)
                self.chars.append(c)

    def set_vectors(
        self,
        words: Sequence[str],
        vectors: np.ndarray | None,
        rows: Sequence[int] | None = None,
    ) -> None:
        """Attach a pretrained vector table ``vectors`` [R, D] (float; kept by reference, not
        copied): ``words[i]`` has row ``rows[i]`` (default: row i, so R = len(words)).  Words
        are normalised like the vocabulary (:meth:`normalize`); of several words with one
        normal form the first wins (a frequency-ordered table such as GloVe keeps the most
        frequent).  ``vectors=None`` detaches the table.

        Raises:
            ValueError: ``vectors`` is not 2-D, or a row outside it.
        """
        self._lookups.clear()
        if vectors is None:
            self.vectors, self.vector_index = None, {}
            return
        rows = range(len(words)) if rows is None else rows
        if vectors.ndim != 2 or len(rows) != len(words):
            raise ValueError(
                f"a vector table needs shape [R, D] and one row per word, got "
                f"{tuple(vectors.shape)} for {len(words)} words and {len(rows)} rows"
            )
        if len(rows) and (min(rows) < 0 or max(rows) >= vectors.shape[0]):
            raise ValueError(f"vector rows outside the table of {vectors.shape[0]} rows")
        index: dict[str, int] = {}
        for row, word in zip(rows, words):
            index.setdefault(self.normalize(word), int(row))
        self.vectors, self.vector_index = vectors, index

    @classmethod
    def from_corpus(
        cls,
        sentences: Iterable[Sequence[str]],
        settings: VocabularySettings = VocabularySettings(),
    ) -> TokenEncoder:
        """Build the vocabularies from training sentences (and nothing else: never from dev or
        test data; a pretrained vector table is attached separately, :meth:`set_vectors`).

        Words occurring at least ``settings.min_freq`` times (after normalisation) are kept.
        Every character of the corpus is kept.
        """
        enc = cls(settings=settings)
        min_freq = settings.min_freq
        word_counts: Counter[str] = Counter()
        char_counts: Counter[str] = Counter()
        for sent in sentences:
            for tok in sent:
                word_counts[enc.normalize(tok)] += 1
                char_counts.update(tok[: enc.max_word_length])
        enc.add_words(w for w, c in word_counts.most_common() if c >= min_freq)
        enc.add_chars(c for c, _ in char_counts.most_common())
        return enc

    @property
    def n_words(self) -> int:
        return len(self.words)

    @property
    def n_chars(self) -> int:
        return len(self.chars)

    # -- encoding ---------------------------------------------------------------------------
    def _lookup(self, token: str) -> tuple[int, int, int, tuple[int, ...]]:
        """A raw token's word index, case class, vector-table row (−1 unless the word is
        outside the vocabulary and in the table) and character indices (cut to
        ``max_word_length``)."""
        norm = self.normalize(token)
        word = self.word_index.get(norm, UNK)
        row = self.vector_index.get(norm, -1) if word == UNK else -1
        ci = self.char_index
        return (
            word,
            case_class(token),
            row,
            tuple(ci.get(c, UNK) for c in token[: self.max_word_length]),
        )

    def encode(self, sentences: Sequence[Sequence[str]], chars: bool = True) -> EncodedBatch:
        """Encode a batch of token lists (empty sentences allowed) into padded tensors.

        Each distinct token string is looked up once per batch (and its lookups kept for the
        next batches).  With ``chars=False`` the character indices are left empty
        ([B, T, 1] padding), for networks without a character CNN.
        """
        B = len(sentences)
        lens = [len(s) for s in sentences]
        T = max(max(lens) if B else 0, 1)
        # every sentence fills T (one sentence, or equal lengths): plain reshapes replace the
        # masked scatters
        full = B > 0 and min(lens) == T
        if full:
            mask = np.ones((B, T), dtype=bool)
        else:
            mask = np.arange(T) < np.array(lens, dtype=np.int64)[:, None]
        type_of: dict[str, int] = {}
        flat = [type_of.setdefault(tok, len(type_of)) for sent in sentences for tok in sent]
        cache = self._lookups
        if len(cache) > _TOKEN_CACHE_SIZE:
            cache.clear()
        looked_up = []
        for token in type_of:
            hit = cache.get(token)
            if hit is None:
                hit = cache[token] = self._lookup(token)
            looked_up.append(hit)
        n = len(looked_up)
        idx = np.array(flat, dtype=np.int64)
        type_words = np.fromiter((h[0] for h in looked_up), dtype=np.int64, count=n)
        type_case = np.fromiter((h[1] for h in looked_up), dtype=np.int64, count=n)
        word_ids = _spread(type_words, idx, mask, full)
        case_ids = _spread(type_case, idx, mask, full)
        type_chars = type_ids = None
        if chars and flat:
            char_lens = np.fromiter((len(h[3]) for h in looked_up), dtype=np.int64, count=n)
            C = max(1, int(char_lens.max()))
            table = np.zeros((n + 1, C), dtype=np.int64)  # row 0: padding
            table[1:][np.arange(C) < char_lens[:, None]] = np.fromiter(
                (c for h in looked_up for c in h[3]), dtype=np.int64, count=int(char_lens.sum())
            )
            char_ids = _spread(table[1:], idx, mask, full)
            type_chars = torch.from_numpy(table)
            type_ids = _spread(np.arange(1, n + 1, dtype=np.int64), idx, mask, full)
        else:
            char_ids = torch.zeros((B, T, 1), dtype=torch.long)
        pretrained, pretrained_mask = self._pretrained(looked_up, idx, mask, full)
        return EncodedBatch(
            word_ids,
            char_ids,
            torch.from_numpy(mask),
            case_ids,
            words=sentences,
            pretrained=pretrained,
            pretrained_mask=pretrained_mask,
            type_chars=type_chars,
            type_ids=type_ids,
        )

    def _pretrained(
        self, looked_up: list[tuple], idx: np.ndarray, mask: np.ndarray, full: bool
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """[B, T, D] vectors and [B, T] mask of the tokens outside the vocabulary that the
        vector table has (None, None when there are none)."""
        if self.vectors is None:
            return None, None
        found = [k for k, h in enumerate(looked_up) if h[2] >= 0]
        if not found:
            return None, None
        table_rows = np.fromiter((looked_up[k][2] for k in found), dtype=np.int64, count=len(found))
        type_vectors = np.zeros((len(looked_up), self.vectors.shape[1]), dtype=np.float32)
        type_vectors[found] = self.vectors[table_rows]
        type_has = np.zeros(len(looked_up), dtype=bool)
        type_has[found] = True
        return _spread(type_vectors, idx, mask, full), _spread(type_has, idx, mask, full)

    # -- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-serialisable state: the vocabularies and the settings that shape them."""
        return {"words": self.words[2:], "chars": self.chars[2:], **asdict(self.settings)}

    @classmethod
    def from_dict(cls, data: dict) -> TokenEncoder:
        """Inverse of :meth:`to_dict` (settings missing from older files take their defaults).

        Raises:
            KeyError: naming a missing field.
        """
        for key in ("words", "chars"):
            if key not in data:
                raise KeyError(f"token encoder state lacks the field {key!r}")
        names = {f.name for f in fields(VocabularySettings)}
        settings = VocabularySettings(**{k: v for k, v in data.items() if k in names})
        return cls(data["words"], data["chars"], settings)

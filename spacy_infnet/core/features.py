"""Feature networks f(x, t) for the BLSTM-CRF energy (Tu & Gimpel 2019, §2 and §2.1).

BLSTM-CRF: f(x, t) is the hidden vector at position t of a bidirectional LSTM over word
embeddings (fixed, pretrained when available).

BLSTM-CRF+ (§2.1, following Ma & Hovy 2016): each word is represented by its (fine-tuned) word
embedding concatenated with a character-based representation: 30-d character embeddings, a
convolution of width 3 over the characters of the word, max pooling over character positions.
Dropout (0.5) is applied in three places: the character embeddings before the CNN, the word
representation before the BLSTM, and the BLSTM output before the emission layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .encoding import UNK, EncodedBatch, VocabularySettings


@dataclass(frozen=True, kw_only=True)
class CharSettings:
    """Sizes of a character CNN (§2.1, after Ma & Hovy 2016): ``char_dim``-d character
    embeddings, ``char_filters`` filters of width ``char_window``, max pooling over the word.
    Every architecture that can read characters (energies and inference networks) has these
    settings; whether it does is its own ``char_cnn``."""

    char_dim: int = 30
    char_filters: int = 30
    char_window: int = 3


def word_embedding(n_words: int, dim: int, trainable: bool = True) -> nn.Embedding:
    """A word-embedding table [n_words, dim] drawn from U(−√(3/dim), √(3/dim)) with row 0
    (padding) zero and kept out of the gradient's effect (``padding_idx``); ``trainable``
    False freezes it (fixed embeddings, as in the paper's BLSTM-CRF)."""
    embed = nn.Embedding(n_words, dim, padding_idx=0)
    bound = math.sqrt(3.0 / dim)
    nn.init.uniform_(embed.weight, -bound, bound)
    with torch.no_grad():
        embed.weight[0].zero_()
    embed.weight.requires_grad_(trainable)
    return embed


def copy_rows(embed: nn.Embedding, rows: torch.Tensor, vectors: torch.Tensor, setting: str) -> None:
    """Copy pretrained ``vectors`` [K, dim] into the rows ``rows`` [K] of ``embed``.

    Raises:
        ValueError: ``vectors`` of another width (the message names the config ``setting``
            to change).
    """
    dim = embed.embedding_dim
    if vectors.shape[1] != dim:
        raise ValueError(
            f"pretrained vectors have dimension {vectors.shape[1]}, the word embedding has "
            f"{dim}: set {setting} = {vectors.shape[1]}"
        )
    with torch.no_grad():
        embed.weight[rows] = vectors.to(embed.weight)


def drop_words(word_ids: torch.Tensor, mask: torch.Tensor, p: float) -> torch.Tensor:
    """Word dropout: each real word index of ``word_ids`` [B, T] (``mask`` [B, T] True) becomes
    the unknown word with probability ``p``, so that the network learns to read unknown words
    from their other features.  Call it in training only."""
    if p <= 0:
        return word_ids
    drop = torch.rand(word_ids.shape, device=word_ids.device) < p
    return word_ids.masked_fill(drop & mask, UNK)


class CharCNN(nn.Module):
    """Character CNN word representation (§2.1).

    Args:
        n_chars: size of the character vocabulary (index 0 = padding).
        char_dim: character embedding size (paper: 30; :class:`CharSettings`).
        n_filters: number of convolution filters = output size.
        window: convolution width in characters (paper: 3).
        dropout: dropout on character embeddings before the convolution.

    Shapes: ``forward(char_ids [B, T, C]) -> [B, T, n_filters]``.
    """

    def __init__(
        self, n_chars: int, char_dim: int, n_filters: int, window: int, dropout: float
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_chars, char_dim, padding_idx=0)
        bound = math.sqrt(3.0 / char_dim)
        nn.init.uniform_(self.embed.weight, -bound, bound)
        with torch.no_grad():
            self.embed.weight[0].zero_()
        self.conv = nn.Conv1d(char_dim, n_filters, kernel_size=window, padding=window // 2)
        self.dropout = nn.Dropout(dropout)
        self.n_filters = n_filters

    def forward(
        self,
        char_ids: torch.Tensor,
        dense: bool = False,
        types: tuple[torch.Tensor | None, torch.Tensor | None] | None = None,
    ) -> torch.Tensor:
        """``dense``: every token is real (see :attr:`EncodedBatch.dense`); no filtering.
        ``types``: the batch's ``(type_chars [K + 1, C], type_ids [B, T])``
        (:attr:`EncodedBatch.char_types`), which spare the search for repeated rows outside
        training; ignored when either is None."""
        B, T, C = char_ids.shape
        flat = char_ids.reshape(B * T, C)
        known = types is not None and types[0] is not None
        if dense and (self.training or not known):
            return self._encode(flat).reshape(B, T, self.n_filters)
        if self.training:
            return self._distinct(flat).reshape(B, T, self.n_filters)
        # outside training, each distinct token string once (tokens repeat a lot in a batch)
        if known:
            type_chars, type_ids = types
            used, inverse = torch.unique(type_ids.reshape(-1), return_inverse=True)
            rows = type_chars[used]
        else:
            rows, inverse = torch.unique(flat, dim=0, return_inverse=True)
        return self._distinct(rows)[inverse].reshape(B, T, self.n_filters)

    def _distinct(self, rows: torch.Tensor) -> torch.Tensor:
        """[N, C] character ids → [N, n_filters]: the real rows convolved, cut to the longest
        of them; 0 for all-padding rows (padding tokens)."""
        real = (rows != 0).any(dim=1)
        out = rows.new_zeros((rows.shape[0], self.n_filters), dtype=self.embed.weight.dtype)
        if bool(real.any()):
            kept = rows[real]
            out[real] = self._encode(kept[:, : int((kept != 0).sum(dim=1).max())])
        return out

    def _encode(self, rows: torch.Tensor) -> torch.Tensor:
        """[N, C] character ids of real tokens → [N, n_filters] (max over real positions)."""
        x = self.dropout(self.embed(rows)).transpose(1, 2)  # [N, D, C]
        h = self.conv(x)  # [N, F, C]
        h = h.masked_fill((rows == 0).unsqueeze(1), float("-inf")).amax(dim=2)
        return h


def unrolled_lstm(lstm: nn.LSTM, x: torch.Tensor) -> torch.Tensor:
    """A batch-first ``nn.LSTM`` (1 or 2 directions, any depth) computed step by step from its
    parameters: [B, T, D] → [B, T, directions·H], equal to ``lstm(x)[0]`` up to rounding.

    Built from matrix products only, so ``torch.func.vmap`` batches it over per-sentence
    parameter copies (PyTorch has no batching rule for the fused LSTM kernel).
    """
    directions = ("", "_reverse") if lstm.bidirectional else ("",)
    out = x
    for layer in range(lstm.num_layers):
        if layer and lstm.training and lstm.dropout:
            out = nn.functional.dropout(out, lstm.dropout)
        states = []
        for suffix in directions:
            w_ih = getattr(lstm, f"weight_ih_l{layer}{suffix}")
            w_hh = getattr(lstm, f"weight_hh_l{layer}{suffix}")
            inputs = out @ w_ih.t()
            if lstm.bias:
                inputs = inputs + getattr(lstm, f"bias_ih_l{layer}{suffix}")
                inputs = inputs + getattr(lstm, f"bias_hh_l{layer}{suffix}")
            h = inputs.new_zeros(x.shape[0], lstm.hidden_size)
            c = h
            steps = range(x.shape[1] - 1, -1, -1) if suffix else range(x.shape[1])
            hs = [h] * x.shape[1]
            for t in steps:
                i, f, g, o = (inputs[:, t] + h @ w_hh.t()).chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                hs[t] = h
            states.append(torch.stack(hs, dim=1))
        out = torch.cat(states, dim=-1)
    return out


def unrolled_lstm_cell(
    cell: nn.LSTMCell, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of an ``nn.LSTMCell`` from its parameters (vmap-friendly, see
    :func:`unrolled_lstm`): x [B, D], state ([B, H], [B, H]) → (h, c)."""
    h, c = state
    gates = x @ cell.weight_ih.t() + h @ cell.weight_hh.t()
    if cell.bias:
        gates = gates + cell.bias_ih + cell.bias_hh
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def run_blstm(
    lstm: nn.LSTM, x: torch.Tensor, mask: torch.Tensor, dense: bool = False
) -> torch.Tensor:
    """Run a batch-first (B)LSTM over the real positions of ``x`` [B, T, D] → [B, T, out].

    ``dense``: every row fills T (see :attr:`EncodedBatch.dense`); runs without packing, with
    :func:`unrolled_lstm`, which ``torch.func.vmap`` can batch.
    """
    if dense:
        return unrolled_lstm(lstm, x)
    lengths = mask.sum(dim=1).clamp(min=1).cpu()
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, _ = lstm(packed)
    h, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return h


@dataclass(frozen=True)
class BLSTMCRFConfig(VocabularySettings, CharSettings):
    """Hyper-parameters of the BLSTM-CRF(+) energy (``spacy_infnet.BLSTMCRF.v1``); the
    JSON-serialisable architecture.

    The defaults are BLSTM-CRF+ (§2.1): character CNN (:class:`~.features.CharSettings`),
    fine-tuned embeddings, dropout 0.5.  Plain BLSTM-CRF: ``char_cnn=False,
    fine_tune_embeddings=False, dropout=0.0``.  The vocabulary settings are
    :class:`~.encoding.VocabularySettings`.  The CRF on top has no settings of its own
    (:mod:`.energy`).
    """

    word_dim: int = 100
    hidden_size: int = 100
    n_layers: int = 1
    char_cnn: bool = True
    dropout: float = 0.5
    fine_tune_embeddings: bool = True
    word_dropout: float = 0.0

    @property
    def reads_vectors(self) -> bool:
        """A BLSTM-CRF energy always can read a pretrained word-vector table."""
        return True


class BLSTMFeatures(nn.Module):
    """Word (+ character) representations read by a BLSTM: the energy's f(x, t).

    Args:
        config: the energy's settings (:class:`BLSTMCRFConfig`):
            ``word_dim``; ``hidden_size`` per direction and ``n_layers`` of the BLSTM; the
            character CNN (``char_cnn`` and :class:`CharSettings`); ``dropout`` (the three
            §2.1 dropouts, 0 for plain BLSTM-CRF); ``fine_tune_embeddings``; ``word_dropout``
            (probability, in training only, of replacing a word index by the unknown index;
            Lample et al. 2016).
        n_words: word vocabulary size (index 0 = padding, 1 = unknown).
        n_chars: character vocabulary size; ``0`` (or ``config.char_cnn`` false) disables the
            character CNN.

    Shapes: ``forward(batch) -> [B, T, 2 * hidden_size]``.
    """

    def __init__(self, config: BLSTMCRFConfig, n_words: int, n_chars: int = 0) -> None:
        super().__init__()
        word_dim, dropout = config.word_dim, config.dropout
        self.embed = word_embedding(n_words, word_dim, config.fine_tune_embeddings)
        self.char_cnn = (
            CharCNN(n_chars, config.char_dim, config.char_filters, config.char_window, dropout)
            if config.char_cnn and n_chars > 0
            else None
        )
        in_dim = word_dim + (config.char_filters if self.char_cnn is not None else 0)
        self.input_dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(
            in_dim,
            config.hidden_size,
            num_layers=config.n_layers,
            bidirectional=True,
            batch_first=True,
        )
        self.output_dropout = nn.Dropout(dropout)
        self.word_dropout = config.word_dropout
        self.output_size = 2 * config.hidden_size

    #: Inference networks distilled from this energy read the same word-vector table.
    infnet_reads_vectors = True

    @property
    def word_dim(self) -> int:
        """Word embedding size."""
        return self.embed.embedding_dim

    @property
    def vector_dim(self) -> int:
        """Width of the pretrained word-vector table this energy reads (its ``word_dim``)."""
        return self.embed.embedding_dim

    def word_embeddings(self, vocabulary=None) -> torch.Tensor:
        """The word-embedding table [n_words, word_dim] (detached); inference networks start
        from it.  ``vocabulary`` is unused (the table is already indexed by it)."""
        return self.embed.weight.detach()

    def piece_bags(self) -> None:
        """A word-level energy has no subword pieces (see ``TransformerFeatures.piece_bags``)."""

    def load_pretrained(self, rows: torch.Tensor, vectors: torch.Tensor) -> None:
        """Copy pretrained vectors into the embedding rows ``rows`` ([K] long, [K, word_dim])."""
        copy_rows(self.embed, rows, vectors, "word_dim")

    def forward(self, batch: EncodedBatch) -> torch.Tensor:
        word_ids = batch.word_ids
        if self.training:
            word_ids = drop_words(word_ids, batch.mask, self.word_dropout)
        x = batch.embed(self.embed, word_ids)
        if self.char_cnn is not None:
            x = torch.cat([x, self.char_cnn(batch.char_ids, batch.dense, batch.char_types)], dim=-1)
        h = run_blstm(self.lstm, self.input_dropout(x), batch.mask, batch.dense)
        return self.output_dropout(h)

"""Inference networks A_Ψ(x) (Tu & Gimpel 2019, §4; Tu & Gimpel 2018).

An inference network maps an input sentence x to per-position label distributions

    A_Ψ(x) ∈ [B, T, L],   A_Ψ(x)_t = softmax(logits_t),

trained with the energy Θ frozen to minimise (§4)

    E_Θ(x, A_Ψ(x)) + λ · ℓ_token(y*, A_Ψ(x)),

where ℓ_token is the token-level cross entropy against the gold labels.  A *local baseline*
is the same architecture trained with ℓ_token only.  At test time the prediction is the
per-position argmax of A_Ψ(x) (the "discretized output").

Every architecture reads the same inputs as the energy (word indices and, for the "+"
variants of §2.1, characters) through :class:`InputEmbedding`, and returns logits [B, T, L];
positions where ``mask`` is False are padding and their values are meaningless.
"""

from __future__ import annotations

import abc
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..encoding import N_CASE_CLASSES, EncodedBatch
from ..features import CharCNN, CharSettings, drop_words, word_embedding

ARCHITECTURES = ("cnn", "blstm", "seq2seq")


@dataclass(frozen=True)
class InfnetConfig(CharSettings):
    """Settings of an inference network (§4.1, §2.1); the registered architectures
    (``spacy_infnet.CNNInferenceNetwork.v1`` …) take these fields, less ``architecture``,
    ``word_dim`` and ``n_pieces``, which the component sets.

    Attributes:
        architecture: "cnn", "blstm" or "seq2seq".
        hidden_size: H, filters per feature map (CNN) or LSTM units per direction.
        windows: CNN window widths 2n+1, one feature map per width; (1, 3) is the paper's
            n ∈ {0, 1} ({1,3}-gram), (1, 5) is n ∈ {0, 2}.
        dilations: CNN only, not in the paper: residual layers of width-3 convolutions with
            these dilations stacked on the window feature maps (as the iterated dilated CNN of
            Strubell et al. 2017), widening the context each label reads to
            ±(max window half-width + Σ dilations) words at a cost linear in them; () (the
            default) is the paper's one-layer CNN.
        n_layers: stacked BLSTM layers (BLSTM tagger, seq2seq encoder).
        label_dim: size of the label embedding fed to the seq2seq decoder.
        word_dim: word embedding size (must match the energy's to copy its embeddings).
        char_cnn: a character CNN ("+", §2.1; its sizes are
            :class:`~spacy_infnet.core.features.CharSettings`).
        case_dim: size of a case-class embedding (lowercase / Titlecase / UPPERCASE / ...)
            concatenated to the word embedding; 0 disables it.  A cheap stand-in for the
            character CNN's capitalisation signal when speed matters.
        dropout: dropout on the input representation and the last hidden layer ("+").
        fine_tune_embeddings: whether word embeddings are updated during distillation.
        piece_embeddings: also read each word as the mean of its subword-piece embeddings
            (:class:`~spacy_infnet.core.pieces.WordPieceBags`; the table starts from a
            transformer energy's input embeddings), so that words unseen in training get
            their own vectors.  Needs a transformer energy.
        n_pieces: rows of the piece table (set by :func:`build_infnet` from the tokenizer).
        piece_combine: how the piece vector joins the word row: "concat" (the input grows by
            word_dim) or "sum" (fastText-style: word row + piece mean, the input keeps its size).
        word_dropout: probability of replacing a word index by the unknown word in training.
    """

    architecture: str = "cnn"
    hidden_size: int = 100
    windows: tuple[int, ...] = (1, 3)
    dilations: tuple[int, ...] = ()
    n_layers: int = 1
    label_dim: int = 50
    word_dim: int = 100
    char_cnn: bool = False
    case_dim: int = 0
    dropout: float = 0.0
    fine_tune_embeddings: bool = True
    piece_embeddings: bool = False
    n_pieces: int = 0
    piece_combine: str = "concat"
    word_dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"unknown inference network architecture {self.architecture!r}; "
                f"expected one of {ARCHITECTURES}"
            )
        object.__setattr__(self, "windows", tuple(int(w) for w in self.windows))
        object.__setattr__(self, "dilations", tuple(int(d) for d in self.dilations))
        if any(d < 1 for d in self.dilations):
            raise ValueError(f"CNN dilations must be positive integers, got {self.dilations}")
        if self.architecture == "cnn" and (
            not self.windows or any(w < 1 or w % 2 == 0 for w in self.windows)
        ):
            raise ValueError(
                f"CNN windows must be odd positive widths 2n+1 (e.g. [1, 3]), got {self.windows}"
            )
        if self.piece_combine not in ("concat", "sum"):
            raise ValueError(f"piece_combine must be 'concat' or 'sum', got {self.piece_combine!r}")
        if not 0.0 <= self.word_dropout < 1.0:
            raise ValueError(f"word_dropout must be in [0, 1), got {self.word_dropout!r}")
        if self.hidden_size < 1 or self.n_layers < 1:
            raise ValueError(
                f"hidden_size and n_layers must be ≥ 1, got {self.hidden_size}, {self.n_layers}"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["windows"] = list(self.windows)
        d["dilations"] = list(self.dilations)
        return d


class InputEmbedding(nn.Module):
    """Word embeddings, optionally concatenated with a bag-of-pieces word vector, a character
    CNN (§2.1) and a case-class embedding, then dropout.

    With ``config.piece_embeddings`` each word also gets the mean of its subword pieces' rows
    in a second table ``piece_embed`` [config.n_pieces, word_dim]; :attr:`pieces` (a
    :class:`~spacy_infnet.core.pieces.WordPieceBags`) must be set before use.  With
    ``config.word_dropout`` p, training replaces each word index by the unknown word with
    probability p, so the network learns to read unknown words from their pieces and characters.

    Shapes: ``forward(batch) -> [B, T, output_size]``; padding positions are zero vectors
    (before dropout), so zero-padded convolutions see padding exactly as sentence ends.
    """

    def __init__(self, config: InfnetConfig, n_words: int, n_chars: int) -> None:
        super().__init__()
        self.embed = word_embedding(n_words, config.word_dim, config.fine_tune_embeddings)
        bound = math.sqrt(3.0 / config.word_dim)
        self.word_dropout = config.word_dropout
        #: read the encoder's pretrained vectors for words outside the vocabulary
        #: (:meth:`.encoding.EncodedBatch.embed`); False when the word rows live in another
        #: space than the table (distilled from a transformer energy: set by the model).
        self.reads_vectors = True
        self.pieces = None  # WordPieceBags, set by build_infnet in piece mode
        self.piece_embed = None
        if config.piece_embeddings:
            if config.n_pieces < 1:
                raise ValueError(
                    f"piece_embeddings needs n_pieces ≥ 1 (the tokenizer's size), "
                    f"got {config.n_pieces}"
                )
            self.piece_embed = nn.Embedding(config.n_pieces, config.word_dim)
            nn.init.uniform_(self.piece_embed.weight, -bound, bound)
            self.piece_embed.weight.requires_grad_(config.fine_tune_embeddings)
        use_chars = config.char_cnn and n_chars > 0
        self.char_cnn = (
            CharCNN(
                n_chars, config.char_dim, config.char_filters, config.char_window, config.dropout
            )
            if use_chars
            else None
        )
        self.case_embed = (
            nn.Embedding(N_CASE_CLASSES, config.case_dim, padding_idx=0)
            if config.case_dim > 0
            else None
        )
        self.dropout = nn.Dropout(config.dropout)
        self.piece_sum = config.piece_embeddings and config.piece_combine == "sum"
        concat = config.piece_embeddings and not self.piece_sum
        self.output_size = (
            config.word_dim * (2 if concat else 1)
            + (config.char_filters if use_chars else 0)
            + config.case_dim
        )

    @property
    def piece_mode(self) -> bool:
        """Whether words are also read as bags of subword pieces."""
        return self.piece_embed is not None

    def piece_vectors(self, batch: EncodedBatch) -> torch.Tensor:
        """[B, T, word_dim]: each token's mean piece embedding (0 at padding).

        Raises:
            ValueError: not in piece mode, no :attr:`pieces`, or a batch without ``words``.
        """
        if self.piece_embed is None or self.pieces is None or batch.words is None:
            raise ValueError(
                "piece vectors need piece_embeddings = true, the tokenizer of a transformer "
                "energy, and a batch encoded from words"
            )
        flat, offsets, index = self.pieces.bags(
            batch.words, batch.word_ids.shape[1], self.piece_embed.weight.device
        )
        types = nn.functional.embedding_bag(flat, self.piece_embed.weight, offsets, mode="mean")
        return types[index]

    def forward(self, batch: EncodedBatch) -> torch.Tensor:
        word_ids = batch.word_ids
        if self.training:
            word_ids = drop_words(word_ids, batch.mask, self.word_dropout)
        parts = [batch.embed(self.embed, word_ids) if self.reads_vectors else self.embed(word_ids)]
        if self.piece_mode:
            pv = batch.piece_vectors
            pv = self.piece_vectors(batch) if pv is None else pv
            if self.piece_sum:
                parts[0] = parts[0] + pv
            else:
                parts.append(pv)
        if self.char_cnn is not None:
            parts.append(self.char_cnn(batch.char_ids, batch.dense, batch.char_types))
        if self.case_embed is not None:
            if batch.case_ids is None:
                raise ValueError("this inference network reads case classes: encode with case_ids")
            parts.append(self.case_embed(batch.case_ids))
        x = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
        x = x * batch.mask.unsqueeze(-1).to(x.dtype)
        return self.dropout(x)


class InferenceNetwork(nn.Module, abc.ABC):
    """Base class of A_Ψ: ``forward(batch) -> logits [B, T, L]``.

    Subclasses implement :meth:`logits`.  Helpers give the relaxed output (softmax) and the
    discretized output (argmax), both with padding handled.
    """

    def __init__(self, config: InfnetConfig, n_labels: int, n_words: int, n_chars: int) -> None:
        super().__init__()
        self.config = config
        self.n_labels = n_labels
        self.inputs = InputEmbedding(config, n_words, n_chars)

    @abc.abstractmethod
    def logits(self, batch: EncodedBatch) -> torch.Tensor:
        """Unnormalised scores [B, T, n_labels] of ``batch``."""

    def forward(self, batch: EncodedBatch) -> torch.Tensor:
        return self.logits(batch)

    def load_word_embeddings(self, weight: torch.Tensor) -> None:
        """Copy a word-embedding table [n_words, word_dim] (e.g. the energy's) into Ψ.

        Raises:
            ValueError: the table's shape differs from this network's embedding.
        """
        own = self.inputs.embed.weight
        if tuple(weight.shape) != tuple(own.shape):
            raise ValueError(
                f"cannot copy word embeddings of shape {tuple(weight.shape)} into an inference "
                f"network embedding of shape {tuple(own.shape)}: set word_dim to "
                f"{weight.shape[1]}"
            )
        with torch.no_grad():
            own.copy_(weight.to(own))

    def load_piece_embeddings(self, weight: torch.Tensor) -> None:
        """Copy a piece-embedding table [n_pieces, word_dim] (a transformer's input embeddings)
        into Ψ's piece table.

        Raises:
            ValueError: this network has no piece table, or its shape differs.
        """
        own = None if self.inputs.piece_embed is None else self.inputs.piece_embed.weight
        if own is None or tuple(weight.shape) != tuple(own.shape):
            raise ValueError(
                f"cannot copy a piece-embedding table of shape {tuple(weight.shape)} into "
                f"{'no piece table' if own is None else tuple(own.shape)} "
                "(piece_embeddings = true and the energy's transformer give the shape)"
            )
        with torch.no_grad():
            own.copy_(weight.to(own))

    def load_energy_network(self, energy: nn.Module) -> None:
        """Start Ψ from the energy's feature network and emission layer (BLSTM only).

        Raises:
            ValueError: this architecture has no counterpart of the energy's network.
        """
        raise ValueError(
            f"infnet_init = 'energy' needs a BLSTM inference network; this one is "
            f"{self.config.architecture!r}: use infnet_init = 'embeddings'"
        )

    @staticmethod
    def relaxed(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """A_Ψ(x) = softmax(logits) [B, T, L], zero at padding positions."""
        return torch.softmax(logits, dim=-1) * mask.unsqueeze(-1).to(logits.dtype)

    @staticmethod
    def discretize(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-position argmax [B, T] long (0 at padding): the "discretized output"."""
        return logits.argmax(dim=-1).masked_fill(~mask, 0)


def token_cross_entropy(
    logits: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """ℓ_token: per-sentence sum of token cross entropies −log A_Ψ(x)_{t, y*_t}.

    Args:
        logits: [B, T, L].
        tags: [B, T] long gold labels (padding ignored).
        mask: [B, T] bool.

    Returns:
        [B] nats per sentence.
    """
    logp = torch.log_softmax(logits, dim=-1)
    nll = -logp.gather(-1, tags.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (nll * mask.to(nll.dtype)).sum(dim=1)

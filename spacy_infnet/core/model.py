"""One torch model for the whole method of Tu & Gimpel (2019): the energy E_Θ (§2), the
inference network A_Ψ (§4, optional) and the vocabularies both read.

An ``infnet_tagger`` component owns one :class:`InfnetModel`.  Training fits Θ by conditional
log-likelihood (stage 1), then Ψ on E_Θ(x, A_Ψ(x)) + λ·ℓ_token with Θ frozen (stage 2:
:meth:`InfnetModel.start_stage2`); any decoder predicts with it (:meth:`InfnetModel.predict`).
It is saved as one ``state_dict`` (keys ``energy.*`` and ``infnet.*``; safetensors) and one
JSON-serialisable :meth:`InfnetModel.config` (labels, architectures, vocabularies, stage), and
rebuilt by :meth:`InfnetModel.from_config`.  Torch only: no spaCy, no ``datasets``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from .decoders import Decoded, Decoder, ViterbiDecoder
from .encoding import EncodedBatch, TokenEncoder, VocabularySettings
from .energy import (
    BLSTMCRFEnergy,
    EnergyConfig,
    energy_config_from_dict,
    energy_config_to_dict,
)
from .infnets import InferenceNetwork, InfnetConfig, build_infnet

#: "energy": Ψ is untrained (stage 1, or no inference network); "infnet": Ψ has been trained.
STAGES = ("energy", "infnet")
#: How Ψ starts in stage 2: from the energy's word embeddings, or (a BLSTM of the energy's
#: shape) from its whole feature network and emission layer.
INFNET_INITS = ("embeddings", "energy")
_SAVED = object()


def _single_threaded_torch_after_fork() -> None:
    # Workers forked to predict (`nlp.pipe(n_process=k)`) cannot reuse the parent's OpenMP
    # thread pool: torch's first parallel op there hangs forever. One intra-op thread per
    # worker avoids the pool (and k workers already use the cores).
    torch.set_num_threads(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_single_threaded_torch_after_fork)


class InfnetModel(nn.Module):
    """The energy Θ, the inference network Ψ and their token encoder.

    Args:
        energy: the energy network.
        infnet: the inference network, or None for an energy-only model.
        encoder: the word and character vocabularies both networks read.
        stage: "infnet" once Ψ has been trained (:data:`STAGES`).

    Raises:
        ValueError: an unknown ``stage``.
    """

    def __init__(
        self,
        energy: BLSTMCRFEnergy,
        infnet: InferenceNetwork | None = None,
        encoder: TokenEncoder | None = None,
        stage: str = "energy",
    ) -> None:
        super().__init__()
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
        self.energy = energy
        self.infnet = infnet
        self.encoder = encoder
        self.stage = stage
        #: Ψ exported and run outside torch (``backend = "onnx"`` of the infnet decoder): an
        #: object with ``logits(batch) -> ndarray [B, T, L]``, set by
        #: :func:`spacy_infnet.serving.attach_onnx` (None: not exported).
        self.onnx_runner: Any = None

    @classmethod
    def build(
        cls,
        energy_config: EnergyConfig,
        labels: Sequence[str],
        encoder: TokenEncoder,
        infnet_config: InfnetConfig | None = None,
        scheme: str = "none",
        pretrained: bool = True,
    ) -> InfnetModel:
        """Build untrained networks for ``labels`` (L) and ``encoder``'s vocabularies.

        Ψ's word embeddings take the energy's size (a transformer energy: its input embedding
        size), so that stage 2 can start from the energy's.  ``scheme``: the tag scheme whose
        forbidden transitions are part of the energy ("bioes", "iob2" or "none").
        ``pretrained``: load a transformer energy's pretrained weights.

        Raises:
            ValueError: a label that does not fit ``scheme`` or appears twice; inconsistent
                settings.
        """
        repeated = sorted({x for x in labels if list(labels).count(x) > 1})
        if repeated:
            raise ValueError(f"labels must be distinct; {repeated} appear more than once")
        energy = BLSTMCRFEnergy(
            energy_config, labels, encoder.n_words, encoder.n_chars, scheme, pretrained
        )
        infnet = None
        if infnet_config is not None:
            infnet_config = replace(infnet_config, word_dim=energy.features.word_dim)
            pieces = energy.features.piece_bags() if infnet_config.piece_embeddings else None
            n = len(energy.labels)
            infnet = build_infnet(infnet_config, n, encoder.n_words, encoder.n_chars, pieces)
            infnet.inputs.reads_vectors = energy.features.infnet_reads_vectors
        return cls(energy, infnet, encoder)

    @classmethod
    def for_corpus(
        cls,
        energy_config: EnergyConfig,
        labels: Sequence[str],
        sentences: Iterable[Sequence[str]],
        infnet_config: InfnetConfig | None = None,
        scheme: str = "none",
        vectors: tuple[Sequence[str], np.ndarray]
        | tuple[Sequence[str], np.ndarray, Sequence[int]]
        | None = None,
    ) -> InfnetModel:
        """:meth:`build` with vocabularies read from the training ``sentences`` only (the
        energy's :class:`~.encoding.VocabularySettings`).  With ``vectors`` = (words, table
        [R, word_dim][, the row of each word]), the pretrained table initialises the training
        words' embedding rows (:meth:`load_vectors`) and gives every other word it has its
        pretrained vector (:meth:`set_vectors`).

        Raises:
            ValueError: vectors whose dimension is not the energy's ``word_dim``.
        """
        encoder = TokenEncoder.from_corpus(sentences, VocabularySettings.of(energy_config))
        model = cls.build(energy_config, labels, encoder, infnet_config, scheme)
        if vectors is not None:
            model.set_vectors(*vectors)
            model.load_vectors()
        return model

    # -- what it is ---------------------------------------------------------------------------
    @property
    def labels(self) -> tuple[str, ...]:
        """The label set, in tensor order."""
        return self.energy.labels

    @property
    def device(self) -> torch.device:
        """Where the networks live (moving the model with ``.to(...)`` moves prediction)."""
        return next(self.energy.parameters()).device

    def config(self) -> dict[str, Any]:
        """JSON-serialisable settings: everything :meth:`from_config` needs but the weights."""
        return {
            "labels": list(self.labels),
            "constraint_scheme": self.energy.scheme,
            "energy": energy_config_to_dict(self.energy.config),
            "infnet": None if self.infnet is None else self.infnet.config.to_dict(),
            "stage": self.stage,
            "encoder": self.encoder.to_dict(),
            "vectors_shape": self.vectors_shape,
        }

    @classmethod
    def from_config(
        cls, config: dict[str, Any], *, infnet: Any = _SAVED, pretrained: bool = False
    ) -> InfnetModel:
        """Rebuild the (untrained) networks that :meth:`config` describes.

        Args:
            config: a :meth:`config` dict (``cfg.json`` of a saved component).
            infnet: an :class:`InfnetConfig` (or None) to build instead of the saved one, as
                when a trained energy is reused for a new inference network (stage 2 alone).
            pretrained: load a transformer energy's pretrained weights (a saved model loads
                its own).

        Raises:
            ValueError: a missing or invalid setting (the message names it).
        """
        try:
            scheme = config.get("constraint_scheme")
            if scheme is None:  # files written before the model object: the component's keys
                scheme = config.get("scheme", "none") if config.get("constraints") else "none"
            saved = config.get("infnet")
            if infnet is _SAVED:
                infnet = InfnetConfig(**saved) if saved else None
            model = cls.build(
                energy_config_from_dict(config["energy"]),
                config["labels"],
                TokenEncoder.from_dict(config["encoder"]),
                infnet,
                scheme,
                pretrained,
            )
        except (TypeError, KeyError) as err:
            raise ValueError(f"invalid model settings: {err!r}") from err
        trained = saved is not None and infnet is not None and config.get("stage") == "infnet"
        model.stage = "infnet" if trained else "energy"
        return model

    # -- weights ------------------------------------------------------------------------------
    def weights(self) -> dict[str, torch.Tensor]:
        """The ``state_dict`` as contiguous CPU tensors (what a component saves)."""
        return {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}

    def load_weights(
        self, weights: dict[str, torch.Tensor], parts: Sequence[str] = ("energy", "infnet")
    ) -> None:
        """Load saved weights into ``parts`` of the model (strictly: every tensor, same shapes).

        Weights written before inference networks existed hold energy tensors without the
        ``energy.`` prefix.

        Raises:
            ValueError: a part without weights, or weights that do not fit the architecture.
        """
        if not any(k.startswith(("energy.", "infnet.")) for k in weights):
            weights = {f"energy.{k}": v for k, v in weights.items()}
        split: dict[str, dict[str, torch.Tensor]] = {}
        for key, value in weights.items():
            part, _, name = key.partition(".")
            split.setdefault(part, {})[name] = value
        for part in parts:
            net = getattr(self, part)
            if net is None:
                continue
            if part not in split:
                raise ValueError(f"the weights hold no {part} parameters")
            try:
                net.load_state_dict(split[part], strict=True)
            except RuntimeError as err:
                raise ValueError(
                    f"{part} weights do not fit the saved architecture: {err}"
                ) from err

    @property
    def vectors_shape(self) -> list[int] | None:
        """[V, D] of the attached pretrained vector table (None: no table)."""
        table = self.encoder.vectors if self.encoder is not None else None
        return None if table is None else [int(n) for n in table.shape]

    def set_vectors(
        self, words: Sequence[str], vectors: np.ndarray | None, rows: Sequence[int] | None = None
    ) -> None:
        """:meth:`.encoding.TokenEncoder.set_vectors` after checking the table's width: the
        table gives words outside the training vocabulary their vector at prediction time; it
        is not part of :meth:`weights` (a spaCy pipeline keeps it in ``nlp.vocab.vectors``).

        Raises:
            ValueError: the table's dimension is not the energy's (``word_dim``, or a
                transformer's ``vectors_dim``), or the energy reads no word vectors.
        """
        if vectors is not None:
            dim = self.energy.features.vector_dim
            if not dim:
                raise ValueError(
                    "this energy reads no word vectors (a transformer energy with vectors_dim = 0)"
                )
            if vectors.ndim != 2 or vectors.shape[1] != dim:
                name = "word_dim" if hasattr(self.energy.config, "word_dim") else "vectors_dim"
                raise ValueError(
                    f"pretrained vectors have shape {tuple(vectors.shape)}, the energy's word "
                    f"vectors have dimension {dim}: set {name} = {vectors.shape[-1]}"
                )
        self.encoder.set_vectors(words, vectors, rows)

    def load_vectors(self) -> int:
        """Copy the attached table's vectors (:meth:`set_vectors`) into the energy's word
        embedding rows of the vocabulary words it has (the other rows keep their random
        initialisation).

        Returns:
            The number of rows set.

        Raises:
            ValueError: no table is attached.
        """
        table = self.encoder.vectors
        if table is None:
            raise ValueError("no pretrained vectors attached: call set_vectors first")
        index = self.encoder.vector_index
        pairs = [(row, index[w]) for w, row in self.encoder.word_index.items() if w in index]
        if not pairs:
            return 0
        idx = torch.tensor([p[0] for p in pairs], dtype=torch.long, device=self.device)
        vec = torch.as_tensor(np.asarray(table[[p[1] for p in pairs]]), dtype=torch.float32)
        self.energy.features.load_pretrained(idx, vec)
        return len(pairs)

    # -- prediction ---------------------------------------------------------------------------
    def active_decoder(self, decoder: Decoder) -> Decoder:
        """``decoder``, or Viterbi while the inference network it needs is untrained."""
        if decoder.needs_infnet and self.infnet is not None and self.stage == "energy":
            return _VITERBI
        return decoder

    def encode(self, words: Sequence[Sequence[str]], chars: bool = True) -> EncodedBatch:
        """Encode token lists (``chars``: with character indices) on the model's device."""
        return self.encoder.encode(words, chars=chars).to(self.device)

    def reads_chars(self, decoder: Decoder) -> bool:
        """Whether decoding with ``decoder`` reads characters (a character CNN it runs)."""
        energy = decoder.uses_energy and self.energy.config.char_cnn
        infnet = decoder.needs_infnet and self.infnet is not None and self.infnet.config.char_cnn
        return bool(energy or infnet)

    def decode_words(
        self, words: Sequence[Sequence[str]], decoder: Decoder
    ) -> tuple[list[int], EncodedBatch | None, Decoded | None]:
        """Encode the non-empty sentences of ``words`` and decode them with ``decoder``
        (:meth:`active_decoder`), the networks in eval mode: (their indices in ``words``, the
        batch, the decoder's output), or ``([], None, None)`` when every sentence is empty."""
        rows = [i for i, w in enumerate(words) if len(w)]
        if not rows:
            return rows, None, None
        decoder = self.active_decoder(decoder)
        batch = self.encode([words[i] for i in rows], chars=self.reads_chars(decoder))
        # eval() walks every submodule: on one sentence that cost more than a CNN Ψ itself
        # (onnx-speed), so only when a network is in training mode (the schedule sets them)
        if any(net is not None and net.training for net in (self, self.energy, self.infnet)):
            self.eval()
        with torch.no_grad():
            return rows, batch, decoder.decode(self, batch)

    def predict(self, words: Sequence[Sequence[str]], decoder: Decoder) -> list[list[int]]:
        """Label indices per sentence (each as long as its sentence; [] for an empty one)
        under ``decoder`` (:meth:`active_decoder`), with the networks in eval mode."""
        out: list[list[int]] = [[] for _ in words]
        rows, _, decoded = self.decode_words(words, decoder)
        if decoded is not None:
            for i, row in zip(rows, decoded.tags.cpu().tolist()):
                out[i] = row[: len(words[i])]
        return out

    @torch.no_grad()
    def energies(
        self, words: Sequence[Sequence[str]], tags: Sequence[Sequence[int]], batch_size: int = 256
    ) -> list[float]:
        """E_Θ(x, y) per sentence (nats), the energy's hard constraints included."""
        self.energy.eval()
        out: list[float] = []
        for i in range(0, len(words), batch_size):
            batch = self.encode(words[i : i + batch_size])
            padded = pad_tags(tags[i : i + batch_size], batch.mask.shape).to(self.device)
            out += self.energy.potentials(batch).tag_energy(padded).tolist()
        return out

    # -- stage 2 ------------------------------------------------------------------------------
    def start_stage2(
        self, init: str = "embeddings", restore: dict[str, torch.Tensor] | None = None
    ) -> None:
        """Freeze the energy (optionally restored to ``restore``, its best stage-1 state) and
        start Ψ from it: its word embeddings (``init = "embeddings"``; with piece embeddings,
        also the transformer's piece table) or, for a BLSTM of the energy's shape, its whole
        feature network and emission layer (``"energy"``).

        Raises:
            ValueError: no inference network; an unknown ``init``; shapes that do not fit.
        """
        if self.infnet is None:
            raise ValueError("stage 2 needs an inference network: the model has none")
        if init not in INFNET_INITS:
            raise ValueError(f"unknown infnet_init {init!r}; expected one of {INFNET_INITS}")
        if restore is not None:
            self.energy.load_state_dict(restore)
        self.energy.eval()
        for p in self.energy.parameters():
            p.requires_grad_(False)
            p.grad = None  # spaCy's optimizer skips parameters without a gradient
        features = self.energy.features
        if init == "energy":
            self.infnet.load_energy_network(self.energy)
        else:
            table = features.word_embeddings(self.encoder.words)
            self.infnet.load_word_embeddings(table.to(self.device))
            if self.infnet.config.piece_embeddings:
                self.infnet.load_piece_embeddings(features.piece_embeddings())
        self.stage = "infnet"


def pad_tags(tags: Sequence[Sequence[int]], shape: tuple[int, int]) -> torch.Tensor:
    """Label index lists as a [B, T] long tensor of ``shape``, 0 on padding."""
    out = torch.zeros(shape, dtype=torch.long)
    for b, row in enumerate(tags):
        out[b, : len(row)] = torch.as_tensor(list(row), dtype=torch.long)
    return out


_VITERBI = ViterbiDecoder()

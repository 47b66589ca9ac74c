"""The ``infnet_tagger`` spaCy component: a BLSTM-CRF(+) energy with a config-selected decoder.

``task = "ner"`` learns from and writes ``doc.ents`` (internally a BIOES label sequence, Tu &
Gimpel 2019 §5); ``task = "tag"`` learns from and writes ``token.tag_`` (POS tags, supertags,
morphological tags).  Training (``spacy train``) minimises the energy's negative conditional
log-likelihood (stage 1, §2); prediction runs the configured decoder (``@decoders``).

Weights are stored as safetensors and settings as JSON, and only those formats are read back.
"""

# No `from __future__ import annotations`: spaCy validates factory and initialize signatures
# with pydantic at runtime.
import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import srsly
import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import load_file, save_file
from safetensors.torch import save as save_safetensors_bytes
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples
from spacy.vocab import Vocab
from thinc.api import Optimizer, PyTorchWrapper_v2, get_current_ops

from .. import __version__
from ..core.decoders import Decoder
from ..core.encoding import TokenEncoder
from ..core.energy import BLSTMCRFConfig, BLSTMCRFEnergy
from ..data.schemes import convert_scheme, labels_for_scheme, tags_to_spans
from ..data.vectors import load_word_vectors
from ..training.objectives import energy_nll_loss
from . import registry as _registry  # noqa: F401  (creates the @decoders registry)
from .scorers import score_infnet

TASKS = ("ner", "tag")
WEIGHTS_FILE = "model.safetensors"
CFG_FILE = "cfg.json"


def _single_threaded_torch_after_fork() -> None:
    # `nlp.pipe(n_process=k)` forks workers. A forked child cannot reuse the parent's OpenMP
    # thread pool: torch's first parallel op there hangs forever. One intra-op thread per
    # worker avoids the pool (and k workers already use the cores).
    torch.set_num_threads(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_single_threaded_torch_after_fork)

DEFAULT_CONFIG = {
    "task": "ner",
    "scheme": "bioes",
    "constraints": True,
    "energy": {"@architectures": "spacy_infnet.BLSTMCRF.v1"},
    "decoder": {"@decoders": "spacy_infnet.Viterbi.v1"},
    "scorer": {"@scorers": "spacy_infnet.scorer.v1"},
}


@Language.factory(
    "infnet_tagger",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "token.tag"],
    default_config=DEFAULT_CONFIG,
    # Only the keys of the configured task are produced, so either weighting ranks models by
    # the task's metric (spaCy treats missing scores as 0).
    default_score_weights={
        "ents_f": 0.5,
        "tag_acc": 0.5,
        "ents_p": 0.0,
        "ents_r": 0.0,
        "ents_per_type": None,
    },
)
def make_infnet_tagger(
    nlp: Language,
    name: str,
    task: str,
    scheme: str,
    constraints: bool,
    energy: BLSTMCRFConfig,
    decoder: Decoder,
    scorer: Callable | None,
) -> "InfnetTagger":
    """Create an :class:`InfnetTagger` (see the module docstring for the settings)."""
    return InfnetTagger(
        nlp.vocab,
        name,
        task=task,
        scheme=scheme,
        constraints=constraints,
        energy_config=energy,
        decoder=decoder,
        scorer=scorer,
    )


class InfnetTagger(TrainablePipe):
    """Sequence labeller whose prediction is ŷ ≈ argmin_y E_Θ(x, y) under a chosen decoder.

    Args:
        vocab: the pipeline's vocab.
        name: component name.
        task: "ner" (``doc.ents``) or "tag" (``token.tag_``).
        scheme: NER label scheme of the CRF, "bioes" (paper) or "iob2". Ignored for "tag".
        constraints: add the scheme's forbidden-transition penalties to the energy (NER only).
        energy_config: energy architecture (``@architectures = "spacy_infnet.BLSTMCRF.v1"``).
        decoder: decoding method (``@decoders``).
        scorer: scoring function; receives ``task`` from the component.

    Raises:
        ValueError: unknown ``task`` or ``scheme``.
    """

    def __init__(
        self,
        vocab: Vocab,
        name: str = "infnet_tagger",
        *,
        task: str = "ner",
        scheme: str = "bioes",
        constraints: bool = True,
        energy_config: BLSTMCRFConfig | None = None,
        decoder: Decoder,
        scorer: Callable | None = score_infnet,
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"infnet_tagger: unknown task {task!r}; expected one of {TASKS}")
        if task == "ner" and scheme not in ("bioes", "iob2"):
            raise ValueError(f"infnet_tagger: unknown NER scheme {scheme!r}: use 'bioes' or 'iob2'")
        self.vocab = vocab
        self.name = name
        self.task = task
        self.scheme = scheme if task == "ner" else "none"
        self.constraints = bool(constraints) and task == "ner"
        self.energy_config = energy_config or BLSTMCRFConfig()
        self.decoder = decoder
        self.scorer = scorer
        self.cfg: dict[str, Any] = {"task": task, "labels": []}
        self.encoder: TokenEncoder | None = None
        self.energy: BLSTMCRFEnergy | None = None
        self.model = None  # a thinc wrapper around self.energy, for spaCy's optimizer
        self._label_index: dict[str, int] = {}

    # -- labels -------------------------------------------------------------------------------
    @property
    def labels(self) -> tuple[str, ...]:
        """The CRF's label set in tensor order (BIOES/IOB2 labels for NER, tags otherwise)."""
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> list[str]:
        return list(self.labels)

    def _set_labels(self, labels: Sequence[str]) -> None:
        self.cfg["labels"] = list(labels)
        self._label_index = {label: i for i, label in enumerate(labels)}

    def _gold_labels(self, eg: Example) -> list[str] | None:
        """Gold labels aligned to the predicted tokens; None if any is missing."""
        if self.task == "tag":
            tags = eg.get_aligned("TAG", as_string=True)
            return None if any(not t for t in tags) else list(tags)
        biluo = eg.get_aligned_ner()
        if any(t in (None, "-", "") for t in biluo):
            return None
        bioes = [
            ("S" + t[1:]) if t[0] == "U" else ("E" + t[1:]) if t[0] == "L" else t for t in biluo
        ]
        return bioes if self.scheme == "bioes" else convert_scheme(bioes, "bioes", self.scheme)

    # -- set-up -------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        gpu = get_current_ops().device_type == "gpu" and torch.cuda.is_available()
        return torch.device("cuda") if gpu else torch.device("cpu")

    def _build(self, encoder: TokenEncoder, labels: Sequence[str]) -> None:
        self._set_labels(labels)
        self.encoder = encoder
        self.energy = BLSTMCRFEnergy(
            self.energy_config,
            self.labels,
            encoder.n_words,
            encoder.n_chars,
            scheme=self.scheme if self.constraints else "none",
        ).to(self.device)
        self.model = PyTorchWrapper_v2(self.energy)

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Language | None = None,
        labels: Sequence[str] | None = None,
        vectors: str | None = None,
    ) -> None:
        """Build vocabularies, label set and network from the training examples.

        Args:
            get_examples: returns the training examples.
            labels: optional label set: entity types (NER) or tags (tag task); read from the
                examples when omitted.
            vectors: optional path of pretrained word vectors (GloVe / word2vec text format)
                used to initialise the word embeddings (and to extend the vocabulary).

        Raises:
            ValueError: no training examples, or vectors of the wrong dimension.
        """
        examples = list(get_examples())
        validate_examples(examples, "InfnetTagger.initialize")
        if not examples:
            raise ValueError("infnet_tagger.initialize: no training examples")
        if labels is None:
            found: set[str] = set()
            for eg in examples:
                if self.task == "tag":
                    found.update(t.tag_ for t in eg.reference if t.tag_)
                else:
                    found.update(e.label_ for e in eg.reference.ents)
            labels = sorted(found)
        label_set = labels_for_scheme(labels, self.scheme) if self.task == "ner" else list(labels)
        cfg = self.energy_config
        pretrained = load_word_vectors(vectors) if vectors else None
        encoder = TokenEncoder.from_corpus(
            ([t.text for t in eg.reference] for eg in examples),
            min_freq=cfg.min_freq,
            extra_words=pretrained.words if pretrained else (),
            lowercase=cfg.lowercase,
            normalize_digits=cfg.normalize_digits,
            max_word_length=cfg.max_word_length,
        )
        self._build(encoder, label_set)
        if pretrained is not None:
            # Word-embedding row -> first pretrained vector whose normalised form it is.
            rows: dict[int, int] = {}
            for i, w in enumerate(pretrained.words):
                rows.setdefault(encoder.word_index[encoder.normalize(w)], i)
            idx = torch.tensor(list(rows), dtype=torch.long)
            vec = torch.from_numpy(pretrained.vectors[list(rows.values())])
            self.energy.features.load_pretrained(idx.to(self.device), vec)
        self.cfg["vectors"] = str(vectors) if vectors else None

    def _require_model(self) -> None:
        if self.energy is None or self.encoder is None:
            raise ValueError(
                f"infnet_tagger {self.name!r} is not initialised: run nlp.initialize() or load "
                "a trained pipeline"
            )

    # -- prediction ---------------------------------------------------------------------------
    def predict(self, docs: Iterable[Doc]) -> list[list[int]]:
        """Decode ``docs``; returns one list of label indices per doc (empty docs → [])."""
        docs = list(docs)
        self._require_model()
        out: list[list[int]] = [[] for _ in docs]
        idx = [i for i, d in enumerate(docs) if len(d)]
        if not idx:
            return out
        batch = self.encoder.encode([[t.text for t in docs[i]] for i in idx]).to(self.device)
        self.energy.eval()
        with torch.no_grad():
            decoded = self.decoder.decode(self.energy, batch)
        tags = decoded.tags.cpu().tolist()
        for row, i in zip(tags, idx):
            out[i] = row[: len(docs[i])]
        return out

    def set_annotations(self, docs: Iterable[Doc], predictions: list[list[int]]) -> None:
        labels = self.labels
        for doc, pred in zip(docs, predictions):
            if not len(doc):
                continue
            names = [labels[i] for i in pred]
            if self.task == "tag":
                for token, tag in zip(doc, names):
                    token.tag_ = tag
            else:
                # tags_to_spans repairs invalid sequences instead of dropping the sentence.
                spans = [
                    Span(doc, s, e, label=lab)
                    for s, e, lab in tags_to_spans(names, scheme=self.scheme)
                ]
                doc.set_ents(spans, default="outside")

    # -- training -----------------------------------------------------------------------------
    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optimizer | None = None,
        losses: dict[str, float] | None = None,
    ) -> dict[str, float]:
        """One gradient step of stage 1: negative conditional log-likelihood (§2).

        Sentences with missing or misaligned gold labels are left out of the loss. The
        network's own dropout (``energy.dropout``) applies; spaCy's ``drop`` is not used.
        """
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "InfnetTagger.update")
        self._require_model()
        words, gold = [], []
        for eg in examples:
            labels = self._gold_labels(eg)
            if not labels:
                continue
            try:
                gold.append([self._label_index[t] for t in labels])
            except KeyError as err:
                raise ValueError(
                    f"infnet_tagger: gold label {err.args[0]!r} is not in the label set "
                    f"({len(self.labels)} labels) of this component"
                ) from None
            words.append([t.text for t in eg.predicted])
        if not words:
            return losses
        batch = self.encoder.encode(words).to(self.device)
        tags = torch.zeros(batch.mask.shape, dtype=torch.long)
        for b, row in enumerate(gold):
            tags[b, : len(row)] = torch.tensor(row)
        self.energy.train()
        loss = energy_nll_loss(self.energy, batch, tags.to(self.device))
        loss.backward()
        if sgd not in (None, False):
            self.finish_update(sgd)
        losses[self.name] += float(loss.detach())
        return losses

    def finish_update(self, sgd: Optimizer) -> None:
        """Apply spaCy's optimizer (``[training.optimizer]``) to the accumulated gradients."""
        self._require_model()
        self.model.finish_update(sgd)

    # -- serialisation (JSON + safetensors only) ----------------------------------------------
    def _state(self) -> dict:
        self._require_model()
        return {
            "spacy_infnet_version": __version__,
            "task": self.task,
            "scheme": self.scheme,
            "constraints": self.constraints,
            "labels": list(self.labels),
            "energy": self.energy_config.to_dict(),
            "encoder": self.encoder.to_dict(),
            "vectors": self.cfg.get("vectors"),
        }

    def _weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.energy.state_dict().items()}

    def _restore(self, state: dict, weights: dict[str, torch.Tensor], where: str) -> None:
        if state.get("task") != self.task:
            raise ValueError(
                f"{where}: saved task {state.get('task')!r} differs from the configured task "
                f"{self.task!r}"
            )
        self.energy_config = BLSTMCRFConfig(**state["energy"])
        self.scheme = state.get("scheme", self.scheme)
        self.constraints = state.get("constraints", self.constraints)
        self._build(TokenEncoder.from_dict(state["encoder"]), state["labels"])
        self.cfg["vectors"] = state.get("vectors")
        try:
            self.energy.load_state_dict(weights, strict=True)
        except RuntimeError as err:
            raise ValueError(f"{where}: weights do not fit the saved architecture: {err}") from err
        self.energy.to(self.device)

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / CFG_FILE).write_text(json.dumps(self._state(), indent=2, ensure_ascii=False))
        save_file(self._weights(), str(path / WEIGHTS_FILE), metadata={"format": "pt"})

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> "InfnetTagger":
        path = Path(path)
        cfg_path, weights_path = path / CFG_FILE, path / WEIGHTS_FILE
        for p in (cfg_path, weights_path):
            if not p.exists():
                raise FileNotFoundError(f"infnet_tagger: missing file {p}")
        try:
            state = json.loads(cfg_path.read_text(encoding="utf8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"infnet_tagger: {cfg_path} is not valid JSON: {err}") from err
        try:
            weights = load_file(str(weights_path))
        except Exception as err:  # safetensors raises its own error types
            raise ValueError(f"infnet_tagger: cannot read weights {weights_path}: {err}") from err
        self._restore(state, weights, str(path))
        return self

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        return srsly.msgpack_dumps(
            {"cfg": json.dumps(self._state()), "weights": save_safetensors_bytes(self._weights())}
        )

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = ()) -> "InfnetTagger":
        msg = srsly.msgpack_loads(bytes_data)
        self._restore(json.loads(msg["cfg"]), load_safetensors_bytes(msg["weights"]), self.name)
        return self

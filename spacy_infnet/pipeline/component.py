"""The ``infnet_tagger`` spaCy component: a BLSTM-CRF(+) energy, an optional inference network,
and a config-selected decoder.

``task = "ner"`` learns from and writes ``doc.ents`` (internally a BIOES label sequence, Tu &
Gimpel 2019 §5); ``task = "tag"`` learns from and writes ``token.tag_`` (POS tags, supertags,
morphological tags).

Training inside one ``spacy train`` run has two stages (:mod:`spacy_infnet.training.stages`):
stage 1 minimises the energy's negative conditional log-likelihood (§2); when the config has an
``infnet`` block, stage 2 then freezes the best stage-1 energy and trains the inference network
on E_Θ(x, A_Ψ(x)) + λ·ℓ_token (§4), or on ℓ_token alone for a local baseline.  The component
drives the switch itself from the updates and dev scores spaCy's loop gives it, and reports a
``distilled`` score (0 in stage 1, 1 in stage 2) so that spaCy's best-checkpoint selection
ranks every stage-2 checkpoint above every stage-1 one.  With ``energy_source`` set at
initialise, stage 1 is skipped and the energy is read from a trained pipeline.

Prediction runs the configured decoder (``@decoders``); an inference-network decoder never runs
the energy's feature network.

Weights are stored as safetensors and settings as JSON, and only those formats are read back.
"""

# No `from __future__ import annotations`: spaCy validates factory and initialize signatures
# with pydantic at runtime.
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
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
from torch import nn

from .. import __version__
from ..core.decoders import Decoder, ViterbiDecoder
from ..core.encoding import EncodedBatch, TokenEncoder
from ..core.energy import BLSTMCRFConfig, BLSTMCRFEnergy, Potentials
from ..core.infnets import InferenceNetwork, InfnetConfig, build_infnet
from ..data.schemes import convert_scheme, labels_for_scheme, tags_to_spans
from ..data.vectors import load_word_vectors
from ..training.allocator import fix_mmap_threshold
from ..training.objectives import energy_nll_loss, infnet_loss
from ..training.stages import StageTracker, TwoStageSettings
from ..training.transformer_optimizer import TransformerOptimizer
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
    "infnet": None,
    "stages": {"@misc": "spacy_infnet.TwoStage.v1"},
    "decoder": {"@decoders": "spacy_infnet.Viterbi.v1"},
    "scorer": {"@scorers": "spacy_infnet.scorer.v1"},
}


@Language.factory(
    "infnet_tagger",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "token.tag"],
    default_config=DEFAULT_CONFIG,
    # Only the keys of the configured task are produced, so either weighting ranks models by
    # the task's metric (spaCy treats missing scores as 0).  "distilled" (0 or 1, only with an
    # inference network) outweighs the metric, so stage-2 checkpoints rank above stage-1 ones.
    default_score_weights={
        "ents_f": 0.5,
        "tag_acc": 0.5,
        "distilled": 1.0,
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
    infnet: InfnetConfig | None,
    stages: TwoStageSettings,
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
        infnet_config=infnet,
        stages=stages,
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
        infnet_config: inference network architecture (``@architectures =
            "spacy_infnet.CNNInferenceNetwork.v1"`` etc.), or None for an energy-only pipeline.
        stages: two-stage training settings (``@misc = "spacy_infnet.TwoStage.v1"``).
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
        infnet_config: InfnetConfig | None = None,
        stages: TwoStageSettings | None = None,
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
        self.infnet_config = infnet_config
        self.stages = stages or TwoStageSettings()
        self.decoder = decoder
        self.scorer = scorer
        self.cfg: dict[str, Any] = {"task": task, "labels": [], "stage": "energy"}
        self.encoder: TokenEncoder | None = None
        self.energy: BLSTMCRFEnergy | None = None
        self.infnet: InferenceNetwork | None = None
        self.model = None  # a thinc wrapper around energy + infnet, for spaCy's optimizer
        self._transformer_optimizer = None
        self._label_index: dict[str, int] = {}
        self._tracker: StageTracker | None = None  # set by initialize: training only
        self._schedule_epochs: float | None = None  # linear transformer schedule: its length
        self._emission_cache: dict[tuple[str, ...], torch.Tensor] = {}

    @property
    def stage(self) -> str:
        """ "energy" until the inference network is being (or has been) trained, then "infnet"."""
        return self.cfg.get("stage", "energy")

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
        """Where the networks live: the energy's device once built (so moving the energy and
        infnet with ``.to(...)`` moves prediction too), else thinc's current ops."""
        if self.energy is not None:
            return next(self.energy.parameters()).device
        gpu = get_current_ops().device_type == "gpu" and torch.cuda.is_available()
        return torch.device("cuda") if gpu else torch.device("cpu")

    def _build(self, encoder: TokenEncoder, labels: Sequence[str], pretrained: bool = True) -> None:
        """Build the networks; ``pretrained`` loads a transformer's pretrained weights (at
        initialisation; a restored pipeline loads its own)."""
        self._set_labels(labels)
        self.encoder = encoder
        self.energy = BLSTMCRFEnergy(
            self.energy_config,
            self.labels,
            encoder.n_words,
            encoder.n_chars,
            scheme=self.scheme if self.constraints else "none",
            pretrained=pretrained,
        ).to(self.device)
        self._transformer_optimizer = None
        self.infnet = None
        if self.infnet_config is not None:
            # Ψ reads the energy's vocabularies and starts from its word embeddings (a
            # transformer energy: static vectors from its input embeddings).
            word_dim = self.energy.features.word_dim
            self.infnet_config = replace(self.infnet_config, word_dim=word_dim)
            pieces = (
                self.energy.features.piece_bags() if self.infnet_config.piece_embeddings else None
            )
            self.infnet = build_infnet(
                self.infnet_config, len(self.labels), encoder.n_words, encoder.n_chars, pieces
            ).to(self.device)
        modules = {"energy": self.energy}
        if self.infnet is not None:
            modules["infnet"] = self.infnet
        self.model = PyTorchWrapper_v2(nn.ModuleDict(modules))
        self._emission_cache = {}

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Language | None = None,
        labels: Sequence[str] | None = None,
        vectors: str | None = None,
        energy_source: str | None = None,
    ) -> None:
        """Build vocabularies, label set and networks from the training examples.

        Args:
            get_examples: returns the training examples.
            labels: optional label set: entity types (NER) or tags (tag task); read from the
                examples when omitted.
            vectors: optional path of pretrained word vectors (GloVe / word2vec text format)
                used to initialise the word embeddings (and to extend the vocabulary).
            energy_source: optional trained pipeline (or component) directory whose energy is
                reused frozen: stage 1 is skipped and training starts with the inference
                network (vocabularies and labels come from that energy).

        Raises:
            ValueError: no training examples, vectors of the wrong dimension, an
                ``energy_source`` without a usable component, or stage limits that leave the
                outer training loop no room for stage 2.
        """
        examples = list(get_examples())
        validate_examples(examples, "InfnetTagger.initialize")
        if not examples:
            raise ValueError("infnet_tagger.initialize: no training examples")
        if energy_source:
            self._initialize_from_energy(energy_source, len(examples))
            return
        if nlp is not None:
            self._check_stage_limits(nlp)
        self._schedule_epochs = self._transformer_schedule_epochs(nlp)
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
        self.cfg["stage"] = "energy"
        self._tracker = StageTracker(self.stages, len(examples), stage="energy")

    def _transformer_schedule_epochs(self, nlp: Language | None) -> float | None:
        """Epochs over which a linear transformer learning-rate schedule decays (None: no decay).

        Stage 1 ends after ``stages.energy_max_epochs``; an energy without an inference
        network trains for ``[training] max_epochs``.

        Raises:
            ValueError: ``learning_rate_schedule = "linear"`` with neither limit set.
        """
        cfg = self.energy_config
        if not cfg.transformer or not cfg.fine_tune_transformer:
            return None
        if cfg.transformer_schedule != "linear":
            return None
        if self.infnet_config is not None:
            epochs = float(self.stages.energy_max_epochs or 0)
            where = "stages.energy_max_epochs"
        else:
            training = nlp.config.get("training", {}) if nlp is not None else {}
            epochs = float(training.get("max_epochs") or 0)
            where = "[training] max_epochs"
        if epochs <= 0:
            raise ValueError(
                'infnet_tagger: the energy\'s learning_rate_schedule = "linear" decays the '
                f"transformer's learning rate to 0 at the end of stage 1, so {where} must be "
                'set (> 0); or use learning_rate_schedule = "constant"'
            )
        return epochs

    def _check_stage_limits(self, nlp: Language) -> None:
        """Refuse stage-1 limits under which spaCy's loop would stop before stage 2."""
        if self.infnet_config is None:
            return
        training = nlp.config.get("training", {})
        patience = int(training.get("patience") or 0)
        max_epochs = int(training.get("max_epochs") or 0)
        s = self.stages
        if patience and s.energy_patience >= patience:
            raise ValueError(
                f"infnet_tagger: stages.energy_patience = {s.energy_patience} must be below "
                f"[training] patience = {patience}, or spaCy stops training before stage 2 "
                "(the inference network) begins"
            )
        if patience and not s.energy_patience and not s.energy_max_epochs:
            raise ValueError(
                "infnet_tagger: set stages.energy_patience or stages.energy_max_epochs, so that "
                "stage 1 ends before spaCy's [training] patience stops the run"
            )
        if max_epochs > 0 and s.energy_max_epochs and s.energy_max_epochs >= max_epochs:
            raise ValueError(
                f"infnet_tagger: stages.energy_max_epochs = {s.energy_max_epochs} leaves no "
                f"epoch of [training] max_epochs = {max_epochs} for stage 2"
            )

    def _initialize_from_energy(self, source: str | Path, n_train: int) -> None:
        """Load a trained energy (stage 1 done) from a pipeline or component directory."""
        if self.infnet_config is None:
            raise ValueError(
                "infnet_tagger: energy_source is set but the config has no [infnet] block: "
                "there is nothing to train"
            )
        comp_dir = _find_component_dir(Path(source))
        state, weights = _read_component(comp_dir)
        energy_weights = {"energy": _split_weights(weights)["energy"]}
        self._restore(state, energy_weights, str(comp_dir), infnet_from_state=False)
        self.cfg["energy_source"] = str(source)
        self._tracker = StageTracker(self.stages, n_train, stage="infnet")
        self._start_stage2(restore=None)

    def _start_stage2(self, restore: dict[str, torch.Tensor] | None) -> None:
        """Freeze the (best) energy and start training the inference network."""
        if restore is not None:
            self.energy.load_state_dict(restore)
        self.energy.eval()
        for p in self.energy.parameters():
            p.requires_grad_(False)
            p.grad = None  # spaCy's optimizer skips parameters without a gradient
        if self.stages.infnet_init == "energy":
            self.infnet.load_energy_network(self.energy)
        else:
            table = self.energy.features.word_embeddings(self.encoder.words)
            self.infnet.load_word_embeddings(table.to(self.device))
            if self.infnet_config.piece_embeddings:
                self.infnet.load_piece_embeddings(self.energy.features.piece_embeddings())
        self.cfg["stage"] = "infnet"
        self._emission_cache = {}
        print(
            f"infnet_tagger: stage 2 begins ({self.stages.objective} objective, "
            f"{self.infnet_config.architecture} inference network); the energy is frozen",
            file=sys.stderr,
        )

    def _require_model(self) -> None:
        if self.energy is None or self.encoder is None:
            raise ValueError(
                f"infnet_tagger {self.name!r} is not initialised: run nlp.initialize() or load "
                "a trained pipeline"
            )

    # -- prediction ---------------------------------------------------------------------------
    def _active_decoder(self) -> Decoder:
        """The configured decoder; Viterbi while the inference network is untrained (stage 1)."""
        if self.decoder.needs_infnet and self.infnet is not None and self.stage == "energy":
            return self._viterbi
        return self.decoder

    _viterbi = ViterbiDecoder()

    def predict(self, docs: Iterable[Doc]) -> list[list[int]]:
        """Decode ``docs``; returns one list of label indices per doc (empty docs → [])."""
        docs = list(docs)
        self._require_model()
        out: list[list[int]] = [[] for _ in docs]
        idx = [i for i, d in enumerate(docs) if len(d)]
        if not idx:
            return out
        decoder = self._active_decoder()
        chars = (decoder.uses_energy and self.energy_config.char_cnn) or (
            decoder.needs_infnet and self.infnet_config is not None and self.infnet_config.char_cnn
        )
        words = [[t.text for t in docs[i]] for i in idx]
        batch = self.encoder.encode(words, chars=chars).to(self.device)
        self.energy.eval()
        if self.infnet is not None:
            self.infnet.eval()
        with torch.no_grad():
            decoded = decoder.decode(self.energy, batch, self.infnet)
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
        """One gradient step of the current stage.

        Stage 1: negative conditional log-likelihood of the energy (§2).  Stage 2: the
        inference-network loss E_Θ(x, A_Ψ(x)) + λ·ℓ_token with Θ frozen, or ℓ_token for a local
        baseline (§4).  The switch happens here, at the first update after stage 1's limit.

        Sentences with missing or misaligned gold labels are left out of the loss.  The
        networks' own dropout applies; spaCy's ``drop`` is not used.
        """
        fix_mmap_threshold()  # else glibc's heap grows without bound (training/allocator.py)
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "InfnetTagger.update")
        self._require_model()
        if self._tracker is not None and self.infnet is not None and self._tracker.should_switch():
            self._start_stage2(restore=self._tracker.switch())
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
        if self._tracker is not None:
            self._tracker.record_update(len(examples))
        if not words:
            return losses
        chars = self.energy_config.char_cnn
        if self.stage == "infnet" and self.infnet is not None:
            chars = self.infnet_config.char_cnn  # the energy's inputs are encoded when cached
        batch = self.encoder.encode(words, chars=chars).to(self.device)
        tags = torch.zeros(batch.mask.shape, dtype=torch.long)
        for b, row in enumerate(gold):
            tags[b, : len(row)] = torch.tensor(row)
        tags = tags.to(self.device)
        if self.stage == "energy" or self.infnet is None:
            self.energy.train()
            loss = energy_nll_loss(self.energy, batch, tags)
        else:
            self.energy.eval()
            self.infnet.train()
            potentials = None
            if self.stages.objective == "energy":
                potentials = self._frozen_potentials(words, batch)
            lam = self._tracker.token_weight() if self._tracker else self.stages.token_weight
            loss, _ = infnet_loss(self.infnet, batch, tags, potentials, lam)
        loss.backward()
        if sgd not in (None, False):
            self.finish_update(sgd)
        losses[self.name] += float(loss.detach())
        return losses

    def _frozen_potentials(self, words: list[list[str]], batch: EncodedBatch) -> Potentials:
        """Potentials of the frozen energy, each sentence's emissions computed once per run.

        In stage 2 the energy is fixed (eval mode, no dropout), so a sentence's emissions never
        change: caching them makes every epoch after the first as cheap as the infnet alone.
        """
        keys = [tuple(w) for w in words]
        missing = [i for i, k in enumerate(keys) if k not in self._emission_cache]
        with torch.no_grad():
            if missing:
                sub = self.encoder.encode([words[i] for i in missing]).to(self.device)
                emissions = self.energy.potentials(sub).emissions
                for row, i in enumerate(missing):
                    self._emission_cache[keys[i]] = emissions[row, : len(words[i])].clone()
            B, T = batch.mask.shape
            em = torch.zeros(B, T, len(self.labels), device=self.device)
            for b, k in enumerate(keys):
                em[b, : len(k)] = self._emission_cache[k]
            return self.energy.potentials_from_emissions(
                em, batch.mask, self.stages.constraint_penalty
            )

    def finish_update(self, sgd: Optimizer) -> None:
        """Apply spaCy's optimizer (``[training.optimizer]``) to the accumulated gradients.

        A fine-tuned transformer in the energy is stepped first by its own optimizer
        (:class:`~spacy_infnet.training.transformer_optimizer.TransformerOptimizer`), which
        clears its gradients so that spaCy's optimizer leaves it alone.
        """
        self._require_model()
        features = self.energy.features
        if self.stage == "energy" and getattr(features, "fine_tune", False):
            if self._transformer_optimizer is None:
                self._transformer_optimizer = TransformerOptimizer(
                    features.transformer_parameters(),
                    self.energy_config.transformer_learning_rate,
                    schedule=self.energy_config.transformer_schedule,
                )
            self._transformer_optimizer.step(self._schedule_progress())
        self.model.finish_update(sgd)

    def _schedule_progress(self) -> float | None:
        """Fraction of stage 1 done, for a linear transformer schedule (None: constant).

        Raises:
            ValueError: a linear schedule on a component that was not initialized.
        """
        if self.energy_config.transformer_schedule != "linear":
            return None
        if not self._schedule_epochs or self._tracker is None:
            raise ValueError(
                'infnet_tagger: learning_rate_schedule = "linear" needs the length of stage 1, '
                "which initialize() sets: initialize the component before training its energy"
            )
        return self._tracker.epoch / self._schedule_epochs

    def score(self, examples: Iterable[Example], **kwargs: Any) -> dict[str, Any]:
        """Score predictions with the configured scorer.

        With an inference network, also reports ``distilled`` (0.0 in stage 1, 1.0 in stage 2),
        and during stage 1 of training records the dev score to keep the best energy.
        """
        examples = list(examples)
        scores = dict(self.scorer(examples, task=self.task, **kwargs)) if self.scorer else {}
        if self.infnet is not None:
            if self._tracker is not None and self.stage == "energy":
                metric = scores.get("ents_f" if self.task == "ner" else "tag_acc")
                if metric is not None:
                    self._tracker.record_score(float(metric), self.energy.state_dict)
            scores["distilled"] = float(self.stage == "infnet")
        return scores

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
            "infnet": self.infnet_config.to_dict() if self.infnet is not None else None,
            "stage": self.stage,
            "encoder": self.encoder.to_dict(),
            "vectors": self.cfg.get("vectors"),
            "energy_source": self.cfg.get("energy_source"),
        }

    def _weights(self) -> dict[str, torch.Tensor]:
        out = {}
        for prefix, net in (("energy", self.energy), ("infnet", self.infnet)):
            if net is None:
                continue
            for k, v in net.state_dict().items():
                out[f"{prefix}.{k}"] = v.detach().cpu().contiguous()
        return out

    def _restore(
        self,
        state: dict,
        weights: dict[str, dict[str, torch.Tensor]],
        where: str,
        infnet_from_state: bool = True,
    ) -> None:
        """Rebuild the networks from a saved ``state`` (cfg.json) and load ``weights``.

        With ``infnet_from_state`` False (an ``energy_source``), the configured inference
        network is built fresh instead of the saved one, and only the energy is loaded.
        """
        if state.get("task") != self.task:
            raise ValueError(
                f"{where}: saved task {state.get('task')!r} differs from the configured task "
                f"{self.task!r}"
            )
        try:
            self.energy_config = BLSTMCRFConfig(**state["energy"])
            if infnet_from_state:
                saved_infnet = state.get("infnet")
                if saved_infnet is not None:
                    saved_infnet = dict(saved_infnet, windows=tuple(saved_infnet["windows"]))
                self.infnet_config = InfnetConfig(**saved_infnet) if saved_infnet else None
        except (TypeError, KeyError, ValueError) as err:
            raise ValueError(f"{where}: invalid architecture settings in cfg.json: {err}") from err
        self.scheme = state.get("scheme", self.scheme)
        self.constraints = state.get("constraints", self.constraints)
        self._build(TokenEncoder.from_dict(state["encoder"]), state["labels"], pretrained=False)
        self.cfg["vectors"] = state.get("vectors")
        self.cfg["energy_source"] = state.get("energy_source")
        self.cfg["stage"] = state.get("stage", "energy") if self.infnet is not None else "energy"
        parts = (("energy", self.energy), ("infnet", self.infnet if infnet_from_state else None))
        for part, net in parts:
            if net is None:
                continue
            if part not in weights:
                raise ValueError(f"{where}: the weights hold no {part} parameters")
            try:
                net.load_state_dict(weights[part], strict=True)
            except RuntimeError as err:
                raise ValueError(
                    f"{where}: {part} weights do not fit the saved architecture: {err}"
                ) from err
        untrained = infnet_from_state and self.infnet is not None and self.stage == "energy"
        if untrained and self.decoder.needs_infnet:
            warnings.warn(
                f"{where}: the inference network of this pipeline was never trained (training "
                "stopped in stage 1); it decodes with Viterbi instead",
                stacklevel=2,
            )
        self.energy.to(self.device)

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / CFG_FILE).write_text(json.dumps(self._state(), indent=2, ensure_ascii=False))
        save_file(self._weights(), str(path / WEIGHTS_FILE), metadata={"format": "pt"})

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> "InfnetTagger":
        path = Path(path)
        state, weights = _read_component(path)
        self._restore(state, _split_weights(weights), str(path))
        return self

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        return srsly.msgpack_dumps(
            {"cfg": json.dumps(self._state()), "weights": save_safetensors_bytes(self._weights())}
        )

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = ()) -> "InfnetTagger":
        msg = srsly.msgpack_loads(bytes_data)
        weights = _split_weights(load_safetensors_bytes(msg["weights"]))
        self._restore(json.loads(msg["cfg"]), weights, self.name)
        return self


def _split_weights(flat: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """{"energy.x": t, "infnet.y": u} → {"energy": {"x": t}, "infnet": {"y": u}}.

    Files written before inference networks existed hold energy weights without a prefix.
    """
    if not any(k.startswith(("energy.", "infnet.")) for k in flat):
        return {"energy": dict(flat)}
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        part, _, name = key.partition(".")
        out.setdefault(part, {})[name] = value
    return out


def _read_component(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read ``cfg.json`` and ``model.safetensors`` of a component directory (JSON and safetensors only)."""
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
    return state, weights


def _find_component_dir(path: Path) -> Path:
    """The infnet_tagger directory inside a pipeline directory (or ``path`` itself).

    Raises:
        FileNotFoundError: no such directory, or no infnet_tagger component in it.
        ValueError: several infnet_tagger components (name one directly).
    """
    if not path.exists():
        raise FileNotFoundError(f"infnet_tagger: energy_source {path} does not exist")
    if (path / CFG_FILE).exists():
        return path
    found = [
        d
        for d in sorted(path.iterdir())
        if d.is_dir() and (d / CFG_FILE).exists() and (d / WEIGHTS_FILE).exists()
    ]
    if not found:
        raise FileNotFoundError(
            f"infnet_tagger: energy_source {path} holds no infnet_tagger component "
            f"({CFG_FILE} + {WEIGHTS_FILE}); pass a trained pipeline directory such as "
            "runs/ner/model-best"
        )
    if len(found) > 1:
        raise ValueError(
            f"infnet_tagger: energy_source {path} holds several components "
            f"({', '.join(d.name for d in found)}); pass the component directory itself"
        )
    return found[0]

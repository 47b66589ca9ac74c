"""The ``infnet_tagger`` spaCy component: a thin ``TrainablePipe`` adapter around the torch
model of :mod:`spacy_infnet.core.model` (energy E_Θ, inference network A_Ψ, vocabularies).

``task = "ner"`` learns from and writes ``doc.ents`` (BIOES labels inside, Tu & Gimpel 2019
§5); ``task = "tag"`` learns from and writes ``token.tag_`` (:mod:`.annotations`).  One
``spacy train`` run trains both stages: every update and dev score goes to a
:class:`~spacy_infnet.training.schedule.TwoStageSchedule`, which switches from the energy (§2)
to the inference network (§4) and whose ``distilled`` score makes ``model-best`` a stage-2
checkpoint.  ``energy_source`` (at initialise) skips stage 1, reading a trained energy;
``resume_from`` continues a killed run from its checkpoint (:mod:`.checkpoints`,
:mod:`spacy_infnet.training.progress`).

Serialisation, and reading a saved component back (``energy_source``, ``resume_from``), are
the :class:`.saved.SavedComponent` part of the class.
"""

# No `from __future__ import annotations`: spaCy validates initialize's signature at runtime.
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples
from spacy.vocab import Vocab
from thinc.api import Optimizer, PyTorchWrapper_v2, get_current_ops

from ..core.decoders import Decoder
from ..core.energy import EnergyConfig
from ..core.infnets import InfnetConfig
from ..core.model import InfnetModel
from ..core.prediction import Prediction, predict_details
from ..core.schemes import labels_for_scheme
from ..training.allocator import fix_mmap_threshold
from ..training.schedule import TwoStageSchedule, distilled_score
from ..training.stages import TwoStageSettings
from . import onnx_backend
from . import vectors as word_vectors
from .annotations import gold_batch, label_set, set_labels
from .outputs import register_extensions, write_details
from .saved import SavedComponent
from .scorers import score_infnet

TASKS = ("ner", "tag")
logger = logging.getLogger("spacy.infnet")


def _from_model(attr: str, default: Any, doc: str) -> property:
    """A read-only property: the torch model's ``attr``, or ``default`` before there is one."""

    def get(self: "InfnetTagger") -> Any:
        return default if self.torch_model is None else getattr(self.torch_model, attr)

    return property(get, doc=f"{doc} ({default!r} before the model is built or loaded.)")


class InfnetTagger(SavedComponent, TrainablePipe):
    """Sequence labeller whose prediction is ŷ ≈ argmin_y E_Θ(x, y) under a chosen decoder.

    Args: the factory's settings (README, "The component's settings"): ``task``, ``scheme``
    ("bioes"/"iob2", NER only), ``constraints``, ``energy_config``, ``infnet_config`` (None:
    energy only; both built into networks at ``initialize``), ``stages``, ``decoder``,
    ``scorer`` (called with ``task``), ``confidence`` and ``confidence_temperature`` (token and
    entity probabilities and their temperature scaling, :mod:`.outputs`).  ``torch_model`` is
    the :class:`~spacy_infnet.core.model.InfnetModel` (None until initialised or loaded);
    ``model`` is spaCy's thinc wrapper around it.

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
        energy_config: EnergyConfig,
        infnet_config: InfnetConfig | None = None,
        stages: TwoStageSettings = TwoStageSettings(),  # noqa: B008 (frozen)
        decoder: Decoder,
        scorer: Callable | None = score_infnet,
        confidence: bool = False,
        confidence_temperature: float = 1.0,
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"infnet_tagger: unknown task {task!r}; expected one of {TASKS}")
        if task == "ner" and scheme not in ("bioes", "iob2"):
            raise ValueError(f"infnet_tagger: unknown NER scheme {scheme!r}: use 'bioes' or 'iob2'")
        self.vocab, self.name, self.task = vocab, name, task
        self.scheme = scheme if task == "ner" else "none"
        self.constraints = bool(constraints) and task == "ner"
        self._energy_config, self._infnet_config = energy_config, infnet_config
        self.stages, self.decoder, self.scorer = stages, decoder, scorer
        self.confidence = bool(confidence)
        if not confidence_temperature > 0:
            raise ValueError(
                f"infnet_tagger: confidence_temperature must be > 0, got {confidence_temperature}"
            )
        self.confidence_temperature = float(confidence_temperature)
        self._onnx_file: Path | None = None  # a saved export of Ψ (files.ONNX_FILE)
        if self.confidence:
            register_extensions()
        self.cfg: dict[str, Any] = {"task": task, "vectors": None, "energy_source": None}
        self.torch_model: InfnetModel | None = None
        self.model = None  # thinc's wrapper of torch_model, for spaCy's optimizer
        self.schedule: TwoStageSchedule | None = None  # set by initialize: training only
        #: True while spacy_infnet.atomic_checkpoints.v1 saves a checkpoint (:mod:`.checkpoints`)
        self.saving_checkpoint = False

    # -- the model's parts, as the rest of the package reads them ------------------------------
    energy = _from_model("energy", None, "The energy network Θ.")
    infnet = _from_model("infnet", None, "The inference network Ψ (None: energy only).")
    encoder = _from_model("encoder", None, "The word and character vocabularies.")
    labels = _from_model("labels", (), "The label set, in tensor order (BIOES/IOB2 or tags).")
    stage = _from_model("stage", "energy", '"infnet" once Ψ is (being) trained, else "energy".')

    @property
    def infnet_config(self) -> InfnetConfig | None:
        """The inference network's settings (the trained model's once there is one)."""
        if self.torch_model is None:
            return self._infnet_config
        return None if self.infnet is None else self.infnet.config

    @property
    def label_data(self) -> list[str]:
        return list(self.labels)

    @property
    def device(self) -> torch.device:
        """Where the networks live, or where they will be built (thinc's current ops)."""
        if self.torch_model is not None:
            return self.torch_model.device
        gpu = get_current_ops().device_type == "gpu" and torch.cuda.is_available()
        return torch.device("cuda" if gpu else "cpu")

    def _set_model(self, model: InfnetModel) -> None:
        self.torch_model = model.to(self.device)
        self.model = PyTorchWrapper_v2(model)

    def _require_model(self) -> InfnetModel:
        if self.torch_model is None:
            raise ValueError(
                f"infnet_tagger {self.name!r} is not initialised: run nlp.initialize() or load "
                "a trained pipeline"
            )
        return self.torch_model

    # -- training -----------------------------------------------------------------------------
    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Language | None = None,
        labels: Sequence[str] | None = None,
        vectors: str | None = None,
        prune_vectors: int = 0,
        energy_source: str | None = None,
        resume_from: str | None = None,
    ) -> None:
        """Build vocabularies, label set and networks from the training examples.

        ``labels``: entity types (NER) or tags (default: the examples').  ``vectors``,
        ``prune_vectors``: the static vectors of ``nlp.vocab.vectors`` (a vectors package, a
        ``spacy init vectors`` folder or GloVe / word2vec text; None: the vocab's own;
        :func:`.vectors.training_table`).  ``energy_source``: a trained pipeline (or component)
        directory whose energy is reused frozen: stage 1 is skipped (vocabularies, labels and
        vectors are its own).  ``resume_from``: a checkpoint (``model-last`` of a killed run)
        to continue: its vocabularies, labels, vectors, weights and training progress, in
        the stage it was in (it overrides ``energy_source``; README, "Training that survives faults").

        Raises:
            ValueError: no training examples or only empty ones, unreadable vectors or vectors of the wrong
                dimension, an ``energy_source`` or ``resume_from`` without a usable component
                (an incomplete checkpoint: :class:`.checkpoints.IncompleteCheckpointError`),
                or stage limits that leave the outer training loop no room for stage 2.
            FileNotFoundError: no such ``energy_source`` / ``resume_from``, or one without
                its files.
        """
        examples = list(get_examples())
        validate_examples(examples, "InfnetTagger.initialize")
        if not examples:
            raise ValueError("infnet_tagger.initialize: no training examples")
        if not any(len(eg.reference) for eg in examples):
            raise ValueError(
                f"infnet_tagger.initialize: the {len(examples)} training examples are all "
                "empty documents (no tokens): check the train corpus ([corpora.train])"
            )
        reads = self._energy_config.reads_vectors
        training = nlp.config.get("training", {}) if nlp is not None else {}
        if resume_from:
            if energy_source:
                logger.info("infnet_tagger: resume_from is set, energy_source is not read")
            self._resume(resume_from, len(examples), training)
            return
        table = word_vectors.training_table(self.vocab, vectors, prune_vectors, reads)
        if energy_source:
            self._initialize_from_energy(energy_source, len(examples))
            return
        has_infnet = self._infnet_config is not None
        self.schedule = TwoStageSchedule.for_run(
            self.stages, len(examples), self._energy_config, has_infnet, training
        )
        if labels and self.task == "ner":
            labels = labels_for_scheme(labels, self.scheme)
        if table is not None:
            word_vectors.check_width(table[1], self._energy_config, vectors)
        model = InfnetModel.for_corpus(
            self._energy_config,
            labels or label_set(examples, self.task, self.scheme),
            ([t.text for t in eg.reference] for eg in examples),
            self._infnet_config,
            self.scheme if self.constraints else "none",
            table,
        )
        self._set_model(model)
        self.cfg.update(vectors=str(vectors) if vectors else None, energy_source=None)

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optimizer | None = None,
        losses: dict[str, float] | None = None,
    ) -> dict[str, float]:
        """One gradient step of the current stage (the schedule's loss).  Sentences with
        missing or misaligned gold labels are left out; spaCy's ``drop`` is not used (the
        networks have their own dropout)."""
        fix_mmap_threshold()  # else glibc's heap grows without bound (training/allocator.py)
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "InfnetTagger.update")
        model = self._require_model()
        model.onnx_runner = None  # an ONNX export of Ψ goes stale with this update
        if self.schedule is None:  # trained on after loading: no switch, no epochs
            self.schedule = TwoStageSchedule(self.stages, None, model.stage)
        self.schedule.before_update(model)
        words, gold = gold_batch(examples, self.labels, self.task, self.scheme)
        self.schedule.record_update(len(examples))
        if not words:
            return losses
        loss = self.schedule.loss(model, words, gold)
        loss.backward()
        if sgd not in (None, False):
            self.finish_update(sgd)
        losses[self.name] += float(loss.detach())
        return losses

    def finish_update(self, sgd: Optimizer) -> None:
        """spaCy's optimizer steps the gradients, after the schedule's transformer optimizer."""
        model = self._require_model()
        if self.schedule is not None:
            self.schedule.finish_update(model)
        self.model.finish_update(sgd)

    def score(self, examples: Iterable[Example], **kwargs: Any) -> dict[str, Any]:
        """The configured scorer's scores plus ``distilled`` (see the schedule); in stage 1 the
        dev score goes to the schedule too, which keeps the best energy."""
        examples = list(examples)
        scores = dict(self.scorer(examples, task=self.task, **kwargs)) if self.scorer else {}
        model = self._require_model()
        if self.schedule is not None:
            metric = scores.get("ents_f" if self.task == "ner" else "tag_acc")
            self.schedule.record_score(model, metric)
        return {**scores, **distilled_score(model)}

    # -- prediction ---------------------------------------------------------------------------
    def predict(self, docs: Iterable[Doc]) -> list[list[int]] | list[Prediction]:
        """Decode ``docs``: one list of label indices per doc (empty docs → []), or, with
        ``confidence`` on or a k-best decoder, one :class:`~spacy_infnet.core.prediction.
        Prediction` per doc (:mod:`.outputs` says what is written)."""
        words = [[t.text for t in doc] for doc in docs]
        model = self._require_model()
        if onnx_backend.uses_onnx(self.decoder):
            onnx_backend.ensure_runner(model, self._onnx_file)
        if not self.confidence and getattr(self.decoder, "k", 1) == 1:
            return model.predict(words, self.decoder)
        scheme = self.scheme if self.task == "ner" else None
        return predict_details(
            model, words, self.decoder, self.confidence, scheme, self.confidence_temperature
        )

    def set_annotations(
        self, docs: Iterable[Doc], predictions: list[list[int]] | list[Prediction]
    ) -> None:
        labels = self.labels
        for doc, pred in zip(docs, predictions):
            tags = pred.tags if isinstance(pred, Prediction) else pred
            if tags:
                set_labels(doc, [labels[i] for i in tags], self.task, self.scheme)
            if isinstance(pred, Prediction):
                write_details(doc, pred, labels)

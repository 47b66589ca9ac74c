"""The two-stage schedule of one training run (Tu & Gimpel 2019: §2, then §4), as one object
that the ``infnet_tagger`` component calls from spaCy's training loop.

* :meth:`TwoStageSchedule.loss` gives the current stage's loss on a batch: stage 1, the
  energy's negative conditional log-likelihood; stage 2, E_Θ(x, A_Ψ(x)) + λ·ℓ_token with Θ
  frozen (ℓ_token alone for a local baseline), the frozen energy's emissions of each training
  sentence computed once and cached.
* :meth:`TwoStageSchedule.before_update` switches to stage 2 when stage 1 is over (its epoch
  limit or patience, :class:`~.stages.StageTracker`), restoring the best stage-1 energy.
* :meth:`TwoStageSchedule.record_score` keeps that best energy from the dev scores spaCy's loop
  computes; :meth:`TwoStageSchedule.finish_update` steps a fine-tuned transformer's own
  optimizer (:mod:`.transformer_optimizer`).

**Model selection across the two stages.** spaCy keeps one best checkpoint (``model-best``)
by the weighted sum of the dev scores.  The component reports ``distilled`` (0 while Ψ is
untrained, 1 once stage 2 has begun) with weight 1.0 in ``[training.score_weights]``, above the
task metric's (≤ 1), so every stage-2 checkpoint outranks every stage-1 one and ``model-best``
is the best inference network on dev, with its frozen best energy.  (The task metric of a
stage-1 checkpoint is Viterbi's; of a stage-2 checkpoint, the inference network's.)

Knows nothing of spaCy: the component passes the numbers of ``[training]`` it needs.
"""

from __future__ import annotations

import logging

import torch

from ..core.encoding import EncodedBatch
from ..core.energy import EnergyConfig, Potentials
from ..core.model import InfnetModel, pad_tags
from ..core.transformer import TransformerCRFConfig
from .objectives import energy_nll_loss, infnet_loss
from .stages import StageTracker, TwoStageSettings
from .transformer_optimizer import TransformerOptimizer

logger = logging.getLogger("spacy.infnet")

#: What the columns of spaCy's training table mean once stage 2 begins (logged at the switch).
STAGE2_COLUMNS = (
    "From here the LOSS column is the stage-2 loss E(x, A(x)) + λ·token cross entropy (energies "
    "are negative scores, so it can drop far below 0; a local baseline logs the cross entropy "
    "alone), the task columns score the inference network instead of Viterbi, and SCORE adds "
    "distilled = 1.0, so every stage-2 checkpoint ranks above every stage-1 one as model-best."
)


class TwoStageSchedule:
    """The state of one training run across the two stages.

    Args:
        settings: the stage settings (``[components.<name>.stages]``).
        n_train: training sentences per epoch; None for a model trained on without
            ``initialize`` (no stage switch, no epoch count).
        stage: the stage the run starts in ("infnet" when the energy comes trained).
        transformer_epochs: epochs over which a linear transformer learning-rate schedule
            decays (:func:`transformer_schedule_epochs`), or None.
    """

    def __init__(
        self,
        settings: TwoStageSettings,
        n_train: int | None,
        stage: str = "energy",
        transformer_epochs: float | None = None,
    ) -> None:
        self.settings = settings
        self.tracker = StageTracker(settings, n_train or 1, stage=stage)
        self.switches = n_train is not None
        self.transformer_epochs = transformer_epochs
        self.transformer_optimizer: TransformerOptimizer | None = None
        self._emissions: dict[tuple[str, ...], torch.Tensor] = {}

    @classmethod
    def for_run(
        cls,
        settings: TwoStageSettings,
        n_train: int,
        energy: EnergyConfig,
        has_infnet: bool,
        training: dict | None = None,
    ) -> TwoStageSchedule:
        """The schedule of a ``spacy train`` run, checked against its ``[training]`` block
        (``patience``, ``max_epochs``; unset or 0: no limit) by :func:`check_stage_limits` when
        there is a stage 2.

        Raises:
            ValueError: limits that leave no room for stage 2, or a linear transformer
                schedule without a stage-1 length (:func:`transformer_schedule_epochs`).
        """
        patience = int((training or {}).get("patience") or 0)
        max_epochs = int((training or {}).get("max_epochs") or 0)
        if has_infnet:
            check_stage_limits(settings, patience, max_epochs)
        epochs = transformer_schedule_epochs(energy, settings, has_infnet, max_epochs)
        return cls(settings, n_train, "energy", epochs)

    @property
    def stage(self) -> str:
        """ "energy" (stage 1) or "infnet" (stage 2)."""
        return self.tracker.stage

    # -- the switch ---------------------------------------------------------------------------
    def before_update(self, model: InfnetModel) -> None:
        """Enter stage 2 if stage 1 is over (and the model has an inference network)."""
        if self.switches and model.infnet is not None and self.tracker.should_switch():
            best = self.tracker.best_score
            restore = self.tracker.switch()
            self._enter_stage2(model, restore)
            if best is not None:
                logger.info(
                    "the energy of update %d (best dev score %.4f) is restored and frozen",
                    self.tracker.best_update,
                    best,
                )

    def start_stage2(self, model: InfnetModel) -> None:
        """Begin with stage 2 (the energy comes trained, e.g. from ``energy_source``)."""
        self.tracker.switch()
        self._enter_stage2(model, None)

    def resume(
        self,
        model: InfnetModel,
        progress: dict | None,
        weights: dict[str, torch.Tensor],
        best_energy: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """Continue a run from a checkpoint (``resume_from``) whose ``weights`` are loaded in
        ``model``: the tracker takes the saved ``progress`` (:mod:`.progress`; None: counters
        from 0, the model's stage) and, in stage 1, the best energy so far.  In stage 2 the
        energy is frozen again and Ψ continues from its saved (partly trained) weights.

        Raises:
            ValueError: invalid progress, or weights without Ψ's tensors.
        """
        if progress is not None:
            self.tracker.restore(progress, best_energy)
        elif model.stage == "infnet":
            self.tracker.switch()
        if self.stage == "infnet" and model.infnet is not None:
            model.start_stage2(self.settings.infnet_init)  # freezes Θ, re-initialises Ψ ...
            model.load_weights(weights, ("infnet",))  # ... which continues as saved
        self._emissions = {}

    def _enter_stage2(self, model: InfnetModel, restore: dict[str, torch.Tensor] | None) -> None:
        model.start_stage2(self.settings.infnet_init, restore)
        self._emissions = {}
        logger.info(
            "infnet_tagger: stage 2 begins at epoch %.2f (%s objective, %s inference network); "
            "the energy is frozen. %s",
            self.tracker.epoch,
            self.settings.objective,
            model.infnet.config.architecture,
            STAGE2_COLUMNS,
        )

    # -- updates ------------------------------------------------------------------------------
    def loss(
        self, model: InfnetModel, words: list[list[str]], tags: list[list[int]]
    ) -> torch.Tensor:
        """The current stage's loss (a scalar, nats per sentence) on a batch.

        Args:
            words: the batch's token lists.
            tags: their gold label indices (same lengths).
        """
        stage2 = self.stage == "infnet" and model.infnet is not None
        # in stage 2 the energy's inputs are encoded when its emissions are cached
        chars = (model.infnet if stage2 else model.energy).config.char_cnn
        batch = model.encode(words, chars=chars)
        gold = pad_tags(tags, batch.mask.shape).to(model.device)
        if not stage2:
            model.energy.train()
            return energy_nll_loss(model.energy, batch, gold)
        model.energy.eval()
        model.infnet.train()
        potentials = None
        if self.settings.objective == "energy":
            potentials = self._frozen_potentials(model, words, batch)
        lam = self.tracker.token_weight() if self.switches else self.settings.token_weight
        loss, _ = infnet_loss(model.infnet, batch, gold, potentials, lam)
        return loss

    def record_update(self, n_sentences: int) -> None:
        """Count one update of ``n_sentences`` sentences (epochs are counted in sentences)."""
        self.tracker.record_update(n_sentences)

    def _frozen_potentials(
        self, model: InfnetModel, words: list[list[str]], batch: EncodedBatch
    ) -> Potentials:
        """Potentials of the frozen energy, each sentence's emissions computed once per run.

        In stage 2 the energy is fixed (eval mode, no dropout), so a sentence's emissions never
        change: caching them makes every epoch after the first as cheap as the infnet alone.
        """
        keys = [tuple(w) for w in words]
        missing = [i for i, k in enumerate(keys) if k not in self._emissions]
        with torch.no_grad():
            if missing:
                sub = model.encode([words[i] for i in missing])
                emissions = model.energy.potentials(sub).emissions
                for row, i in enumerate(missing):
                    self._emissions[keys[i]] = emissions[row, : len(words[i])].clone()
            B, T = batch.mask.shape
            em = torch.zeros(B, T, len(model.labels), device=model.device)
            for b, k in enumerate(keys):
                em[b, : len(k)] = self._emissions[k]
            return model.energy.potentials_from_emissions(
                em, batch.mask, self.settings.constraint_penalty
            )

    def finish_update(self, model: InfnetModel) -> None:
        """Step a fine-tuned transformer in the energy with its own optimizer (stage 1 only),
        which clears its gradients so that spaCy's optimizer leaves it alone.

        Raises:
            ValueError: a linear transformer schedule without the length of stage 1.
        """
        config = model.energy.config
        if self.stage != "energy" or not isinstance(config, TransformerCRFConfig):
            return
        if not config.fine_tune:
            return
        if self.transformer_optimizer is None:
            self.transformer_optimizer = TransformerOptimizer(
                model.energy.features.transformer_parameters(),
                config.learning_rate,
                schedule=config.learning_rate_schedule,
            )
        progress = None
        if config.learning_rate_schedule == "linear":
            if not self.transformer_epochs or not self.switches:
                raise ValueError(
                    'infnet_tagger: learning_rate_schedule = "linear" needs the length of stage '
                    "1, which initialize() sets: initialize the component before training its "
                    "energy"
                )
            progress = self.tracker.epoch / self.transformer_epochs
        self.transformer_optimizer.step(progress)

    # -- model selection ----------------------------------------------------------------------
    def record_score(self, model: InfnetModel, score: float | None) -> None:
        """Record a stage-1 dev score (the task metric); on a new best, keep the energy."""
        if score is not None and self.stage == "energy" and model.infnet is not None:
            self.tracker.record_score(float(score), model.energy.state_dict)


def distilled_score(model: InfnetModel) -> dict[str, float]:
    """The ``distilled`` score that ranks stage-2 checkpoints above stage-1 ones (see the
    module docstring): ``{"distilled": 1.0}`` once Ψ is (being) trained, 0.0 before, and
    nothing for a model without an inference network."""
    if model.infnet is None:
        return {}
    return {"distilled": float(model.stage == "infnet")}


def check_stage_limits(settings: TwoStageSettings, patience: int, max_epochs: int) -> None:
    """Refuse stage-1 limits under which spaCy's loop (``[training] patience`` updates
    without a better score, ``max_epochs``; 0 = no limit) would stop before stage 2.

    Raises:
        ValueError: naming the settings to change.
    """
    if patience and settings.energy_patience >= patience:
        raise ValueError(
            f"infnet_tagger: stages.energy_patience = {settings.energy_patience} must be below "
            f"[training] patience = {patience}, or spaCy stops training before stage 2 "
            "(the inference network) begins"
        )
    if patience and not settings.energy_patience and not settings.energy_max_epochs:
        raise ValueError(
            "infnet_tagger: set stages.energy_patience or stages.energy_max_epochs, so that "
            "stage 1 ends before spaCy's [training] patience stops the run"
        )
    if max_epochs > 0 and settings.energy_max_epochs and settings.energy_max_epochs >= max_epochs:
        raise ValueError(
            f"infnet_tagger: stages.energy_max_epochs = {settings.energy_max_epochs} leaves no "
            f"epoch of [training] max_epochs = {max_epochs} for stage 2"
        )


def transformer_schedule_epochs(
    config: EnergyConfig, settings: TwoStageSettings, has_infnet: bool, max_epochs: int
) -> float | None:
    """Epochs over which a linear transformer learning-rate schedule decays (None: no decay).

    Stage 1 ends after ``settings.energy_max_epochs``; an energy without an inference network
    trains for ``[training] max_epochs``.

    Raises:
        ValueError: ``learning_rate_schedule = "linear"`` with neither limit set.
    """
    if not isinstance(config, TransformerCRFConfig) or not config.fine_tune:
        return None
    if config.learning_rate_schedule != "linear":
        return None
    if has_infnet:
        epochs, where = float(settings.energy_max_epochs or 0), "stages.energy_max_epochs"
    else:
        epochs, where = float(max_epochs or 0), "[training] max_epochs"
    if epochs <= 0:
        raise ValueError(
            'infnet_tagger: the energy\'s learning_rate_schedule = "linear" decays the '
            f"transformer's learning rate to 0 at the end of stage 1, so {where} must be "
            'set (> 0); or use learning_rate_schedule = "constant"'
        )
    return epochs

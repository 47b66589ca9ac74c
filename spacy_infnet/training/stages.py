"""The two training stages of Tu & Gimpel (2019) and the switch between them.

Stage 1 (§2) trains the energy Θ by conditional log-likelihood.  Stage 2 (§4) freezes Θ and
trains the inference network Ψ on E_Θ(x, A_Ψ(x)) + λ·ℓ_token (or ℓ_token alone for a local
baseline).  Each stage selects its model on the dev set, as the paper does with early stopping:

* stage 1 ends after ``energy_patience`` updates without a better dev score, or after
  ``energy_max_epochs`` epochs; the energy is then restored to its best dev checkpoint;
* stage 2 runs until the outer training loop stops (spaCy's ``[training]`` ``patience``,
  ``max_epochs`` or ``max_steps``); the outer loop keeps the best dev checkpoint (``model-best``).

:class:`StageTracker` holds this state machine; it knows nothing of spaCy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..core.energy import SOFT_CONSTRAINT_PENALTY
from ..core.model import INFNET_INITS, STAGES

OBJECTIVES = ("energy", "local")


@dataclass(frozen=True)
class TwoStageSettings:
    """How the two stages run.

    Attributes:
        objective: stage-2 loss: "energy" (inference network, E_Θ(x, A_Ψ(x)) + λ·ℓ_token) or
            "local" (local baseline, ℓ_token only).
        token_weight: λ, the weight of the token cross entropy in the "energy" objective.
        token_weight_decay: r in λ_k = λ·e^(−r·k) for stage-2 epoch k (§7 uses r = 0.01 for
            the 2-layer BLSTM); 0 keeps λ constant.
        energy_max_epochs: stage 1 ends after this many epochs (0: no limit).
        energy_patience: stage 1 ends after this many updates without a better dev score
            (0: never by patience).
        constraint_penalty: in the stage-2 loss only, the energy a forbidden label bigram
            (first, last label) of the tag scheme costs in E_Θ(x, A_Ψ(x)); None keeps the
            energy's hard −1e4.  Decoding, reported energies and search errors always use
            the hard constraints.  See :meth:`BLSTMCRFEnergy.potentials_from_emissions`.
        infnet_init: how Ψ starts: "embeddings" copies the energy's word embeddings;
            "energy" copies the energy's whole feature network and emission layer (a BLSTM
            inference network of the same shape, without case embedding), so that A_Ψ starts
            as softmax of the energy's emissions.
    """

    objective: str = "energy"
    token_weight: float = 1.0
    token_weight_decay: float = 0.0
    energy_max_epochs: float = 0
    energy_patience: int = 0
    constraint_penalty: float | None = SOFT_CONSTRAINT_PENALTY
    infnet_init: str = "embeddings"

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"unknown stage-2 objective {self.objective!r}; expected one of {OBJECTIVES}"
            )
        for name in ("token_weight", "token_weight_decay", "energy_max_epochs", "energy_patience"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        if self.constraint_penalty is not None and self.constraint_penalty < 0:
            raise ValueError(
                f"constraint_penalty must be ≥ 0 or None, got {self.constraint_penalty}"
            )
        if self.infnet_init not in INFNET_INITS:
            raise ValueError(
                f"unknown infnet_init {self.infnet_init!r}; expected one of {INFNET_INITS}"
            )
        if self.objective == "local" and self.token_weight == 0:
            raise ValueError("the local objective needs token_weight > 0")


class StageTracker:
    """Counts updates and sentences, keeps the best stage-1 energy, decides the switch.

    Args:
        settings: the stage settings.
        n_train: number of training sentences (an epoch), ≥ 1.
        stage: starting stage, "energy" or "infnet" (when the energy comes trained).
    """

    def __init__(self, settings: TwoStageSettings, n_train: int, stage: str = "energy") -> None:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
        self.settings = settings
        self.n_train = max(int(n_train), 1)
        self.stage = stage
        self.updates = 0
        self.sentences = 0
        self.switch_sentences = 0
        self.best_score: float | None = None
        self.best_update = 0
        self.best_state: dict[str, torch.Tensor] | None = None

    @property
    def epoch(self) -> float:
        """Epochs completed since training began (fractional)."""
        return self.sentences / self.n_train

    @property
    def stage2_epoch(self) -> float:
        """Epochs completed since stage 2 began (fractional; 0 in stage 1)."""
        if self.stage != "infnet":
            return 0.0
        return (self.sentences - self.switch_sentences) / self.n_train

    def record_update(self, n_sentences: int) -> None:
        self.updates += 1
        self.sentences += int(n_sentences)

    def record_score(self, score: float, state: Callable[[], dict[str, torch.Tensor]]) -> bool:
        """Record a stage-1 dev score; on a new best, keep a CPU copy of ``state()``."""
        if self.stage != "energy":
            return False
        if self.best_score is not None and score <= self.best_score:
            return False
        self.best_score = float(score)
        self.best_update = self.updates
        self.best_state = {k: v.detach().cpu().clone() for k, v in state().items()}
        return True

    def should_switch(self) -> bool:
        """True when stage 1 is over (patience or epoch limit reached)."""
        if self.stage != "energy":
            return False
        s = self.settings
        if s.energy_max_epochs and self.epoch >= s.energy_max_epochs:
            return True
        return bool(
            s.energy_patience
            and self.best_score is not None
            and self.updates - self.best_update >= s.energy_patience
        )

    def switch(self) -> dict[str, torch.Tensor] | None:
        """Enter stage 2; returns the best stage-1 energy state (None if never scored)."""
        self.stage = "infnet"
        self.switch_sentences = self.sentences
        state, self.best_state = self.best_state, None
        return state

    def progress(self) -> dict[str, Any]:
        """The counters and the best stage-1 score as JSON (``progress.json`` of a training
        checkpoint, :mod:`.progress`); the best energy's tensors are saved beside it.

        ``updates`` counts updates, ``sentences`` training sentences (an epoch is ``n_train``
        of them), ``switch_sentences`` the sentences seen when stage 2 began."""
        return {
            "stage": self.stage,
            "updates": self.updates,
            "sentences": self.sentences,
            "switch_sentences": self.switch_sentences,
            "n_train": self.n_train,
            "epoch": self.epoch,
            "best_score": self.best_score,
            "best_update": self.best_update,
        }

    def restore(
        self, progress: dict[str, Any], best_state: dict[str, torch.Tensor] | None = None
    ) -> None:
        """Continue from a saved :meth:`progress` (a resumed run) and, in stage 1, its best
        energy ``best_state``.  This run's ``n_train`` is kept, so the epoch count continues
        in sentences.

        Raises:
            ValueError: an unknown stage or a missing or invalid counter (naming it).
        """
        try:
            stage = progress["stage"]
            counts = {k: int(progress[k]) for k in ("updates", "sentences", "best_update")}
            switch = int(progress.get("switch_sentences") or 0)
            best = progress.get("best_score")
            best = None if best is None else float(best)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"invalid training progress: {err!r}") from err
        if stage not in STAGES:
            raise ValueError(f"invalid training progress: unknown stage {stage!r}")
        self.stage, self.switch_sentences, self.best_score = stage, switch, best
        self.updates, self.sentences = counts["updates"], counts["sentences"]
        self.best_update = counts["best_update"]
        self.best_state = best_state if stage == "energy" else None

    def token_weight(self) -> float:
        """λ for the current stage-2 epoch: λ·e^(−r·k), k = completed stage-2 epochs."""
        s = self.settings
        return s.token_weight * math.exp(-s.token_weight_decay * math.floor(self.stage2_epoch))

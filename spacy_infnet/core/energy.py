"""The BLSTM-CRF energy E_Θ(x, y) (Tu & Gimpel 2019, §2).

    E_Θ(x, y) = −( Σ_t Σ_i y_{t,i} · u_iᵀ f(x, t)  +  Σ_t y_{t−1}ᵀ W y_t  +  s·y_1  +  e·y_T )

with f(x, t) the feature network (:mod:`spacy_infnet.core.features`), u_i the label-specific
emission vectors, W [L, L] the transition matrix (W[i, j] scores label i followed by label j),
and s, e start/end transition vectors.  y is one-hot (a label sequence) or relaxed (a
distribution over labels per position); the same function serves Viterbi, gradient descent and
inference networks.

Optional tag-scheme constraints (BIOES, IOB2) are a fixed, non-learned penalty (−1e4) added to
W, s and e.  They are part of the energy, so every decoder minimises the same function and
Viterbi remains its exact minimiser.

Stage 1 of training minimises the negative conditional log-likelihood
``log Z(x) − score(x, y*)`` computed with the forward algorithm (§2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from .constraints import constraint_penalties, transition_constraints
from .crf import crf_energy, crf_nll, viterbi
from .encoding import EncodedBatch
from .features import BLSTMCRFConfig, BLSTMFeatures
from .transformer import TransformerCRFConfig, TransformerFeatures


@dataclass(frozen=True)
class Potentials:
    """CRF potentials of a batch (score = −energy).

    Attributes:
        emissions: [B, T, L] unary potentials u_iᵀ f(x, t).
        transitions: [L, L] pairwise potentials W (constraint penalties included).
        start_transitions: [L].
        end_transitions: [L].
        mask: [B, T] bool.
    """

    emissions: torch.Tensor
    transitions: torch.Tensor
    start_transitions: torch.Tensor
    end_transitions: torch.Tensor
    mask: torch.Tensor

    def energy(self, y: torch.Tensor) -> torch.Tensor:
        """E(x, y) for one-hot or relaxed y [B, T, L] → [B]."""
        return crf_energy(
            self.emissions,
            self.transitions,
            y,
            self.mask,
            self.start_transitions,
            self.end_transitions,
        )

    def tag_energy(self, tags: torch.Tensor) -> torch.Tensor:
        """E(x, y) for label indices [B, T] → [B]."""
        y = nn.functional.one_hot(tags, self.emissions.shape[-1]).to(self.emissions.dtype)
        return self.energy(y)

    def viterbi(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact argmin of the energy: (best_score [B], tags [B, T])."""
        return viterbi(
            self.emissions,
            self.transitions,
            self.mask,
            self.start_transitions,
            self.end_transitions,
        )

    def nll(self, tags: torch.Tensor) -> torch.Tensor:
        """Negative conditional log-likelihood of gold tags [B, T] → [B] (forward algorithm)."""
        return crf_nll(
            self.emissions,
            self.transitions,
            tags,
            self.mask,
            self.start_transitions,
            self.end_transitions,
        )


#: What a forbidden label bigram (first, last label) of the tag scheme costs in the energies
#: that relaxed outputs minimise (stage 2, gradient descent, tailoring): the default
#: ``constraint_penalty`` of :meth:`BLSTMCRFEnergy.potentials_from_emissions`' callers.  The
#: hard −1e4 of :mod:`.constraints` swamps the learned potentials of relaxed outputs
#: (results/README.md, "Inference networks"); decoding and reported energies keep it.
SOFT_CONSTRAINT_PENALTY = 10.0

#: An energy's settings: word-level BLSTM features, or a transformer's.
EnergyConfig = BLSTMCRFConfig | TransformerCRFConfig
_ENERGY_CONFIGS = {"blstm_crf": BLSTMCRFConfig, "transformer_crf": TransformerCRFConfig}
#: Names of the transformer settings in files written before the two configs were split.
_LEGACY_TRANSFORMER_NAMES = {
    "transformer": "model",
    "fine_tune_transformer": "fine_tune",
    "transformer_learning_rate": "learning_rate",
    "transformer_schedule": "learning_rate_schedule",
}


def energy_config_to_dict(config: EnergyConfig) -> dict:
    """JSON form of an energy's settings: ``{"architecture": "blstm_crf" | "transformer_crf",
    ...fields}``."""
    kind = next(k for k, cls in _ENERGY_CONFIGS.items() if isinstance(config, cls))
    return {"architecture": kind, **asdict(config)}


def energy_config_from_dict(data: dict) -> EnergyConfig:
    """Inverse of :func:`energy_config_to_dict`; also reads the single-config layout of
    earlier versions (a ``transformer`` field, None for BLSTM-CRF).

    Raises:
        ValueError: an unknown architecture or setting (the message names it).
    """
    data = dict(data)
    kind = data.pop("architecture", None)
    legacy = kind is None
    if legacy:  # one dataclass held the settings of both energies
        kind = "transformer_crf" if data.get("transformer") else "blstm_crf"
        data = {_LEGACY_TRANSFORMER_NAMES.get(k, k): v for k, v in data.items()}
    if kind not in _ENERGY_CONFIGS:
        raise ValueError(
            f"unknown energy architecture {kind!r}; expected one of {sorted(_ENERGY_CONFIGS)}"
        )
    cls = _ENERGY_CONFIGS[kind]
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown and not legacy:
        raise ValueError(f"unknown {kind} energy settings {unknown}")
    return cls(**{k: v for k, v in data.items() if k in names})


class BLSTMCRFEnergy(nn.Module):
    """BLSTM-CRF(+) energy network Θ, or a CRF over transformer features.

    Args:
        config: architecture hyper-parameters: :class:`BLSTMCRFConfig` (§2) or
            :class:`~.transformer.TransformerCRFConfig`.
        labels: the label names, index order = tensor order (L labels).
        n_words, n_chars: vocabulary sizes of the :class:`~.encoding.TokenEncoder`.
        scheme: tag scheme whose transitions are constrained ("bioes", "iob2") or "none".
        pretrained: load a transformer's pretrained weights (False: its architecture only, for
            weights restored from a saved pipeline).

    Raises:
        ValueError: if a label does not fit ``scheme``.
    """

    def __init__(
        self,
        config: EnergyConfig,
        labels: Sequence[str],
        n_words: int,
        n_chars: int,
        scheme: str = "none",
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        self.config = config
        self.labels = tuple(labels)
        self.scheme = scheme
        L = len(self.labels)
        if isinstance(config, TransformerCRFConfig):
            self.features = TransformerFeatures(config, n_chars, pretrained, n_words)
        else:
            self.features = BLSTMFeatures(config, n_words, n_chars)
        self.emission = nn.Linear(self.features.output_size, L)
        self.transitions = nn.Parameter(torch.zeros(L, L))
        self.start_transitions = nn.Parameter(torch.zeros(L))
        self.end_transitions = nn.Parameter(torch.zeros(L))
        nn.init.uniform_(self.transitions, -0.1, 0.1)
        pen_t, pen_s, pen_e = constraint_penalties(transition_constraints(self.labels, scheme))
        self.register_buffer("transition_penalty", pen_t, persistent=False)
        self.register_buffer("start_penalty", pen_s, persistent=False)
        self.register_buffer("end_penalty", pen_e, persistent=False)

    @property
    def n_labels(self) -> int:
        return len(self.labels)

    def potentials(
        self, batch: EncodedBatch, constraint_penalty: float | None = None
    ) -> Potentials:
        """Run the feature network and return the CRF potentials of ``batch``.

        ``constraint_penalty`` as in :meth:`potentials_from_emissions`.
        """
        return self.potentials_from_emissions(
            self.emission(self.features(batch)), batch.mask, constraint_penalty
        )

    def potentials_from_emissions(
        self,
        emissions: torch.Tensor,
        mask: torch.Tensor,
        constraint_penalty: float | None = None,
    ) -> Potentials:
        """Potentials from already computed emissions [B, T, L] (e.g. cached) and mask [B, T].

        Args:
            emissions: [B, T, L] unary potentials.
            mask: [B, T] bool.
            constraint_penalty: None keeps the scheme's hard constraints (a −1e4 score for a
                forbidden label bigram, first or last label), so Viterbi stays exact under
                them.  A value c ≥ 0 makes each forbidden entry cost c instead (score −c;
                0 leaves only the learned transitions).  Relaxed outputs need this: with
                −1e4, a product of two 1% probabilities on a forbidden bigram already costs 1
                nat of energy, which swamps the learned potentials (measured in the README,
                "Inference networks").

        Raises:
            ValueError: ``constraint_penalty`` is negative.
        """
        pen_t, pen_s, pen_e = self.transition_penalty, self.start_penalty, self.end_penalty
        if constraint_penalty is not None:
            if constraint_penalty < 0:
                raise ValueError(f"constraint_penalty must be ≥ 0, got {constraint_penalty}")
            pen_t, pen_s, pen_e = (
                (p < 0).to(emissions.dtype) * -float(constraint_penalty)
                for p in (pen_t, pen_s, pen_e)
            )
        return Potentials(
            emissions=emissions,
            transitions=self.transitions + pen_t,
            start_transitions=self.start_transitions + pen_s,
            end_transitions=self.end_transitions + pen_e,
            mask=mask,
        )

    def forward(self, batch: EncodedBatch, y: torch.Tensor) -> torch.Tensor:
        """E_Θ(x, y) [B] for one-hot or relaxed y [B, T, L]."""
        return self.potentials(batch).energy(y)

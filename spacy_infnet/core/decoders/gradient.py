"""Gradient-descent inference (Tu & Gimpel 2019, §3, eq. 1) and its warm start (§4.2.2).

The output is relaxed to per-position distributions y_t = softmax(z_t) and the energy is
minimised over the logits z ∈ R^{B×T×L} by gradient descent with momentum (PyTorch's SGD
convention):

    v ← μ·v + ∇_z E_Θ(x, softmax(z)),      z ← z − η·v,

for N steps; the prediction is the per-position argmax of z.  GD starts from seeded Gaussian
logits; warm-started GD (§4.2.2) starts from the inference network's logits.

Details that keep the paper's learning-rate grid (η up to 1e4) finite:

* the potentials are computed once, with the energy's parameters detached, so Θ never
  receives gradients and each step costs O(T·L²), not a feature-network pass;
* after each step every position's logits are shifted so that their maximum is 0 and clamped
  at −1e4 (below −104, float32 ``exp`` is already 0): softmax is unchanged, and z stays finite
  however large η·v grows;
* the objective may soften the tag-scheme constraints (``constraint_penalty``, as in stage 2:
  a −1e4 penalty on relaxed outputs swamps the learned potentials), while the energies
  reported in :class:`~.base.Decoded` are always those of the energy itself, constraints
  included, so that Viterbi's energy is a lower bound on every reported energy.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import fields

import torch

from ..encoding import EncodedBatch
from ..energy import SOFT_CONSTRAINT_PENALTY, BLSTMCRFEnergy, Potentials
from ..infnets import InferenceNetwork
from .base import Decoded, Decoder, DecodingModel, require_infnet

#: Floor of the re-centred logits (see the module docstring).
LOGIT_FLOOR = -1e4
#: μ of every momentum-SGD decoder (§3; the paper tunes η and N, not μ).
MOMENTUM = 0.9


def detach(potentials: Potentials) -> Potentials:
    """The same potentials, cut from the energy's graph (Θ receives no gradients)."""
    return Potentials(*(getattr(potentials, f.name).detach() for f in fields(potentials)))


def _check_settings(steps: int, learning_rate: float, momentum: float) -> None:
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if not learning_rate > 0 or learning_rate == float("inf"):
        raise ValueError(f"learning_rate must be a positive finite number, got {learning_rate!r}")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")


def descend(
    potentials: Potentials,
    z: torch.Tensor,
    steps: Sequence[int] | int,
    learning_rate: float,
    momentum: float,
) -> dict[int, torch.Tensor]:
    """Minimise E(x, softmax(z)) under ``potentials`` by momentum GD (§3, eq. 1).

    Args:
        potentials: the objective's potentials (detached: they receive no gradients).
        z: [B, T, L] starting logits (not modified).
        steps: the step counts N at which to return the logits (one run of ``max(steps)``
            steps serves every N), or a single N.
        learning_rate: η > 0.
        momentum: μ ∈ [0, 1).

    Returns:
        {N: logits [B, T, L] after N steps}, re-centred (max 0 per position).

    Raises:
        ValueError: a step count is negative, η ≤ 0 or infinite, or μ outside [0, 1).
    """
    wanted = sorted({int(steps)} if isinstance(steps, int) else {int(n) for n in steps})
    for n in wanted:
        _check_settings(n, learning_rate, momentum)
    mask = potentials.mask.unsqueeze(-1).to(z.dtype)
    detached = detach(potentials)

    def recentre(logits: torch.Tensor) -> torch.Tensor:
        logits = logits - logits.amax(dim=-1, keepdim=True)
        return logits.clamp(min=LOGIT_FLOOR)

    out: dict[int, torch.Tensor] = {}
    z = recentre(z.detach())
    velocity = torch.zeros_like(z)
    with torch.enable_grad():
        for step in range(wanted[-1] + 1 if wanted else 0):
            if step in wanted:
                out[step] = z.clone()
            if step == wanted[-1]:
                break
            z.requires_grad_(True)
            energy = detached.energy(torch.softmax(z, dim=-1) * mask).sum()
            (grad,) = torch.autograd.grad(energy, z)
            velocity = momentum * velocity + grad
            z = recentre(z.detach() - learning_rate * velocity)
    return out


def reported_and_objective(
    energy: BLSTMCRFEnergy, batch: EncodedBatch, constraint_penalty: float | None
) -> tuple[Potentials, Potentials]:
    """(potentials with the energy's hard constraints, for reported energies; detached
    potentials with forbidden bigrams costing ``constraint_penalty``, to minimise)."""
    reported = energy.potentials(batch)
    if constraint_penalty is None:
        return reported, detach(reported)
    objective = energy.potentials_from_emissions(reported.emissions, batch.mask, constraint_penalty)
    return reported, detach(objective)


def decoded_from_logits(batch: EncodedBatch, reported: Potentials, logits: torch.Tensor) -> Decoded:
    """Argmax tags of ``logits`` [B, T, L] with their energies under ``reported``."""
    tags = InferenceNetwork.discretize(logits, batch.mask)
    relaxed = InferenceNetwork.relaxed(logits, batch.mask)
    return Decoded(
        tags=tags,
        energy=reported.tag_energy(tags),
        extra={"relaxed_energy": reported.energy(relaxed)},
    )


class IterativeDecoder(Decoder):
    """What gradient descent, warm-started GD and instance tailoring share: N steps of
    momentum SGD at learning rate η on an energy objective, decoded after each N of a grid in
    one run.

    Args:
        steps: N, the number of gradient steps.
        learning_rate: η.
        momentum: μ.
        constraint_penalty: cost of a forbidden tag bigram in the objective (None: the
            energy's own −1e4 constraints).  Reported energies always use the energy's own.

    ``decode`` returns ``energy`` [B] = E_Θ(x, ŷ) and ``extra["relaxed_energy"]`` [B], the
    energy of the relaxed output after N steps.

    Raises:
        ValueError: invalid settings (negative steps, η ≤ 0 or infinite, μ ∉ [0, 1)).
    """

    def __init__(
        self, steps: int, learning_rate: float, momentum: float, constraint_penalty: float | None
    ) -> None:
        _check_settings(steps, learning_rate, momentum)
        self.steps = int(steps)
        self.learning_rate = float(learning_rate)
        self.momentum = float(momentum)
        self.constraint_penalty = constraint_penalty

    @torch.no_grad()
    def decode_steps(
        self,
        model: DecodingModel,
        batch: EncodedBatch,
        steps: Sequence[int] | None = None,
        learning_rate: float | None = None,
    ) -> dict[int, Decoded]:
        """Decode after each N in ``steps`` (default: this decoder's N) in one run.

        ``learning_rate`` overrides η for this call (tuning grids).  Returns {N: Decoded}.

        Raises:
            ValueError: a negative N or invalid η; no inference network where one is needed.
        """
        if self.needs_infnet:
            require_infnet(self, model)
        lr = self.learning_rate if learning_rate is None else float(learning_rate)
        wanted = sorted({self.steps} if steps is None else {int(n) for n in steps})
        for n in wanted:
            _check_settings(n, lr, self.momentum)
        reported, objective = reported_and_objective(model.energy, batch, self.constraint_penalty)
        logits = self.minimise(model, batch, objective, wanted, lr)
        return {n: decoded_from_logits(batch, reported, z) for n, z in logits.items()}

    @abstractmethod
    def minimise(
        self,
        model: DecodingModel,
        batch: EncodedBatch,
        objective: Potentials,
        steps: list[int],
        learning_rate: float,
    ) -> dict[int, torch.Tensor]:
        """The method itself: {N: logits [B, T, L] after N steps} for the sorted ``steps``,
        minimising the detached ``objective`` potentials."""

    def decode(self, model: DecodingModel, batch: EncodedBatch) -> Decoded:
        return self.decode_steps(model, batch)[self.steps]


class GradientDescentDecoder(IterativeDecoder):
    """GD on the relaxed output from a seeded random start (§3).

    Args:
        steps: N, the number of gradient steps.
        learning_rate: η (the paper's grid: 1 … 1e4).
        momentum: μ.
        seed: seed of the starting logits z ~ N(0, init_scale²) (one generator per
            :meth:`decode` call, so a batch decodes the same way every time).
        init_scale: standard deviation of the starting logits.
        constraint_penalty: cost of a forbidden tag bigram in the objective (None: the
            energy's own −1e4 constraints).  Reported energies always use the energy's own.

    ``decode`` returns ``energy`` [B] = E_Θ(x, ŷ) and ``extra["relaxed_energy"]`` [B] =
    E_Θ(x, softmax(z_N)).

    Raises:
        ValueError: invalid settings (negative steps, η ≤ 0, μ ∉ [0, 1), init_scale < 0).
    """

    name = "gd"

    def __init__(
        self,
        steps: int = 20,
        learning_rate: float = 1.0,
        momentum: float = MOMENTUM,
        seed: int = 0,
        init_scale: float = 0.01,
        constraint_penalty: float | None = SOFT_CONSTRAINT_PENALTY,
    ) -> None:
        super().__init__(steps, learning_rate, momentum, constraint_penalty)
        if init_scale < 0:
            raise ValueError(f"init_scale must be ≥ 0, got {init_scale!r}")
        self.seed = int(seed)
        self.init_scale = float(init_scale)

    def start(self, model: DecodingModel, batch: EncodedBatch) -> torch.Tensor:
        """Starting logits z_0 [B, T, L]."""
        B, T = batch.mask.shape
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        z = torch.randn(B, T, model.energy.n_labels, generator=gen) * self.init_scale
        return z.to(device=batch.mask.device)

    def minimise(self, model, batch, objective, steps, learning_rate):
        z0 = self.start(model, batch)
        return descend(objective, z0, steps, learning_rate, self.momentum)


class WarmStartGDDecoder(GradientDescentDecoder):
    """GD started from the inference network's logits (§4.2.2); same settings as GD except
    that there is no random start.

    Raises:
        ValueError: (at decode) the pipeline has no trained inference network.
    """

    name = "warm_gd"
    needs_infnet = True

    def __init__(
        self,
        steps: int = 5,
        learning_rate: float = 1.0,
        momentum: float = MOMENTUM,
        constraint_penalty: float | None = SOFT_CONSTRAINT_PENALTY,
    ) -> None:
        IterativeDecoder.__init__(self, steps, learning_rate, momentum, constraint_penalty)

    def start(self, model: DecodingModel, batch: EncodedBatch) -> torch.Tensor:
        return require_infnet(self, model)(batch).detach()

"""The optimizer of a fine-tuned transformer inside the energy.

spaCy's optimizer (``[training.optimizer]``, Adam at about 1e-3) suits the CRF layers, the
character CNN and the BLSTM, but would wreck pretrained transformer weights.  The transformer's
own parameters therefore get AdamW at ``transformer_learning_rate`` with a linear warm-up over
the first 100 updates and their gradient norm clipped at 1; once stepped, their gradients are
cleared, and spaCy's optimizer skips parameters without a gradient.

After the warm-up the learning rate stays at its peak (``schedule="constant"``) or falls
linearly to 0 at the end of training (``schedule="linear"``, the usual schedule for fine-tuning
BERT-style encoders): the caller passes the fraction of training done to :meth:`step`.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ..core.transformer import SCHEDULES


class TransformerOptimizer:
    """AdamW with linear warm-up and gradient clipping for a set of parameters.

    Args:
        params: the transformer's parameters.
        learning_rate: peak learning rate.
        warmup: updates over which the learning rate rises linearly to its peak.
        max_grad_norm: clip the gradient norm of the stepped parameters to this.
        schedule: "constant" (the peak after the warm-up) or "linear" (the peak times
            1 − progress, where progress ∈ [0, 1] is the fraction of training done).

    Raises:
        ValueError: an unknown ``schedule``.
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        learning_rate: float,
        warmup: int = 100,
        max_grad_norm: float = 1.0,
        schedule: str = "constant",
    ) -> None:
        if schedule not in SCHEDULES:
            raise ValueError(
                f"unknown learning-rate schedule {schedule!r}; expected one of {SCHEDULES}"
            )
        self.params = list(params)
        self.peak = float(learning_rate)
        self.optimizer = torch.optim.AdamW(self.params, lr=self.peak)
        self.warmup = max(int(warmup), 1)
        self.max_grad_norm = max_grad_norm
        self.schedule = schedule
        self.updates = 0

    def learning_rate(self, progress: float | None = None) -> float:
        """The learning rate of the next update, after ``progress`` ∈ [0, 1] of training.

        Raises:
            ValueError: ``schedule="linear"`` without a ``progress``.
        """
        lr = self.peak * min(1.0, (self.updates + 1) / self.warmup)
        if self.schedule == "linear":
            if progress is None:
                raise ValueError("the linear learning-rate schedule needs the training progress")
            lr *= max(0.0, 1.0 - float(progress))
        return lr

    def step(self, progress: float | None = None) -> bool:
        """Update the parameters that have a gradient and clear it; False if none had one.

        ``progress``: the fraction of training done, which the linear schedule decays with.
        """
        with_grad = [p for p in self.params if p.grad is not None]
        if not with_grad:
            return False
        lr = self.learning_rate(progress)
        torch.nn.utils.clip_grad_norm_(with_grad, self.max_grad_norm)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self.updates += 1
        for p in with_grad:
            p.grad = None
        return True

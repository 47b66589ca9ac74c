"""The optimizer of a fine-tuned transformer inside the energy.

spaCy's optimizer (``[training.optimizer]``, Adam at about 1e-3) suits the CRF layers, the
character CNN and the BLSTM, but would wreck pretrained transformer weights.  The transformer's
own parameters therefore get AdamW at ``transformer_learning_rate`` with a linear warm-up over
the first 100 updates and their gradient norm clipped at 1; once stepped, their gradients are
cleared, and spaCy's optimizer skips parameters without a gradient.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


class TransformerOptimizer:
    """AdamW with linear warm-up and gradient clipping for a set of parameters.

    Args:
        params: the transformer's parameters.
        learning_rate: peak learning rate.
        warmup: updates over which the learning rate rises linearly to its peak.
        max_grad_norm: clip the gradient norm of the stepped parameters to this.
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        learning_rate: float,
        warmup: int = 100,
        max_grad_norm: float = 1.0,
    ) -> None:
        self.params = list(params)
        self.optimizer = torch.optim.AdamW(self.params, lr=learning_rate)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: min(1.0, (step + 1) / warmup)
        )
        self.max_grad_norm = max_grad_norm

    def step(self) -> bool:
        """Update the parameters that have a gradient and clear it; False if none had one."""
        with_grad = [p for p in self.params if p.grad is not None]
        if not with_grad:
            return False
        torch.nn.utils.clip_grad_norm_(with_grad, self.max_grad_norm)
        self.optimizer.step()
        self.schedule.step()
        for p in with_grad:
            p.grad = None
        return True

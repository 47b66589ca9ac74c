"""Hard transition constraints for tagging schemes (BIOES / IOB2), as masks and penalties.

:func:`transition_constraints` says which label bigrams, first labels and last
labels a scheme allows; :func:`constraint_penalties` turns that into additive
potentials (0 where allowed, a large finite negative number where forbidden)
for :mod:`spacy_infnet.core.crf`.  A finite penalty, rather than ``-inf``,
keeps the CRF energy finite for relaxed (non-one-hot) label vectors and keeps
``logsumexp`` gradients free of NaNs; exact Viterbi then never returns a
forbidden path as long as an allowed path exists and the penalty dominates the
learned scores.

The scheme rules themselves (label format, which bigrams are allowed) are
:mod:`spacy_infnet.core.schemes`; this module only makes tensors of them.  Torch only; no
spaCy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from .schemes import allowed_structure

__all__ = ["TransitionConstraints", "constraint_penalties", "transition_constraints"]


class TransitionConstraints(NamedTuple):
    """Allowed structure of a tagging scheme, as bool tensors.

    Attributes:
        transitions: ``[L, L]``; ``transitions[i, j]`` is True when label ``i``
            may be followed by label ``j``.
        start: ``[L]``; True when a sequence may begin with the label.
        end: ``[L]``; True when a sequence may end with the label.
    """

    transitions: Tensor
    start: Tensor
    end: Tensor


def transition_constraints(labels: Sequence[str], scheme: str = "bioes") -> TransitionConstraints:
    """Allowed transitions / first labels / last labels of a tagging scheme, as tensors.

    The rules are :func:`spacy_infnet.core.schemes.allowed_structure`'s ("bioes"/"iobes",
    "iob2"/"bio", or "none" for no constraint).

    Args:
        labels: label strings in label-index order.
        scheme: the scheme's name (case-insensitive).

    Returns:
        :class:`TransitionConstraints` of bool tensors (CPU), shapes
        ``[L, L]``, ``[L]``, ``[L]``.

    Raises:
        ValueError: unknown scheme, or a label that does not fit the scheme
            (the message names the label).
    """
    trans, start, end = allowed_structure(labels, scheme)
    n = len(start)
    return TransitionConstraints(
        torch.tensor(trans, dtype=torch.bool).reshape(n, n),
        torch.tensor(start, dtype=torch.bool).reshape(n),
        torch.tensor(end, dtype=torch.bool).reshape(n),
    )


def constraint_penalties(
    constraints: TransitionConstraints,
    penalty: float = -1e4,
    dtype: torch.dtype | None = None,
    device: torch.device | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Additive potentials for a :class:`TransitionConstraints`.

    Args:
        constraints: the allowed-structure masks.
        penalty: value for forbidden entries (finite and negative; default
            ``-1e4``, representable in float16/bfloat16/float32).
        dtype: float dtype of the result (default: torch's default dtype).
        device: device of the result (default: that of ``constraints``).

    Returns:
        ``(transitions [L, L], start [L], end [L])`` float tensors with 0 where
        allowed and ``penalty`` where forbidden; add them to the learned
        transition / start / end potentials.
    """
    dtype = dtype or torch.get_default_dtype()

    def convert(mask: Tensor) -> Tensor:
        mask = mask.to(device=device if device is not None else mask.device)
        out = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
        return out.masked_fill_(~mask.bool(), penalty)

    return convert(constraints.transitions), convert(constraints.start), convert(constraints.end)

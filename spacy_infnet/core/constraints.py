"""Hard transition constraints for tagging schemes (BIOES / IOB2), as masks and penalties.

:func:`transition_constraints` says which label bigrams, first labels and last
labels a scheme allows; :func:`constraint_penalties` turns that into additive
potentials (0 where allowed, a large finite negative number where forbidden)
for :mod:`spacy_infnet.core.crf`.  A finite penalty, rather than ``-inf``,
keeps the CRF energy finite for relaxed (non-one-hot) label vectors and keeps
``logsumexp`` gradients free of NaNs; exact Viterbi then never returns a
forbidden path as long as an allowed path exists and the penalty dominates the
learned scores.

Label format: ``"O"`` or ``"<PREFIX>-<TYPE>"`` with prefix ``B``, ``I``, ``E``,
``S`` (BIOES) or ``B``, ``I`` (IOB2).  The type is everything after the first ``-``
(``B-WORK-OF-ART`` has type ``WORK-OF-ART``).  Torch only; no spaCy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["TransitionConstraints", "constraint_penalties", "transition_constraints"]

_SCHEME_ALIASES = {
    "bioes": "bioes",
    "iobes": "bioes",
    "iob2": "iob2",
    "bio": "iob2",
    "none": "none",
}


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


def _parse(label: str, scheme: str) -> tuple[str, str | None]:
    """Return ``(prefix, type)``; prefix ``"O"`` has type ``None``."""
    if not isinstance(label, str):
        raise ValueError(f"label {label!r} is not a string")  # noqa: TRY004
    if label == "O":
        return "O", None
    prefix, sep, typ = label.partition("-")
    allowed = {"B", "I"} if scheme == "iob2" else {"B", "I", "E", "S"}
    if not sep or not typ or prefix not in allowed:
        raise ValueError(
            f"label {label!r} is not a valid {scheme.upper()} label "
            f"(expected 'O' or one of {sorted(allowed)} followed by '-<TYPE>')"
        )
    return prefix, typ


def _allowed_bioes(prev: tuple[str, str | None], nxt: tuple[str, str | None]) -> bool:
    p_pre, p_typ = prev
    n_pre, n_typ = nxt
    if p_pre in ("O", "E", "S"):
        return n_pre in ("O", "B", "S")
    # inside an entity (B-X or I-X): must continue with I-X or close with E-X
    return n_pre in ("I", "E") and n_typ == p_typ


def _allowed_iob2(prev: tuple[str, str | None], nxt: tuple[str, str | None]) -> bool:
    p_pre, p_typ = prev
    n_pre, n_typ = nxt
    if n_pre == "I":
        return p_pre in ("B", "I") and p_typ == n_typ
    return True


def transition_constraints(labels: Sequence[str], scheme: str = "bioes") -> TransitionConstraints:
    """Allowed transitions / first labels / last labels of a tagging scheme.

    Schemes (case-insensitive):

    * ``"bioes"`` (alias ``"iobes"``): a sequence may start with
      ``O``, ``B-*``, ``S-*`` and end with ``O``, ``E-*``, ``S-*``; after ``O``,
      ``E-X`` or ``S-X`` come ``O``, ``B-*`` or ``S-*``; after ``B-X`` or
      ``I-X`` only ``I-X`` or ``E-X`` (same type).
    * ``"iob2"`` (alias ``"bio"``): ``I-X`` may only follow ``B-X`` or ``I-X``
      and may not start a sequence; everything else is allowed.
    * ``"none"``: everything allowed (labels are not parsed).

    Args:
        labels: label strings in label-index order.
        scheme: one of the names above.

    Returns:
        :class:`TransitionConstraints` of bool tensors (CPU), shapes
        ``[L, L]``, ``[L]``, ``[L]``.

    Raises:
        ValueError: unknown scheme, or a label that does not fit the scheme
            (the message names the label).
    """
    key = _SCHEME_ALIASES.get(str(scheme).lower())
    if key is None:
        raise ValueError(
            f"unknown tagging scheme {scheme!r}; expected one of {sorted(_SCHEME_ALIASES)}"
        )
    labels = list(labels)
    n = len(labels)
    if key == "none":
        return TransitionConstraints(
            torch.ones(n, n, dtype=torch.bool),
            torch.ones(n, dtype=torch.bool),
            torch.ones(n, dtype=torch.bool),
        )
    parsed = [_parse(lab, key) for lab in labels]
    if key == "bioes":
        rule = _allowed_bioes
        start = [p in ("O", "B", "S") for p, _ in parsed]
        end = [p in ("O", "E", "S") for p, _ in parsed]
    else:
        rule = _allowed_iob2
        start = [p != "I" for p, _ in parsed]
        end = [True] * n
    trans = [[rule(a, b) for b in parsed] for a in parsed]
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

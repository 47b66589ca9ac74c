"""What the tagger writes on a ``Doc`` beyond labels: confidence and k-best lists.

Written only when asked (the component's ``confidence = true``; a Viterbi decoder with
``k > 1``), from a :class:`~spacy_infnet.core.prediction.Prediction`:

* ``token._.infnet_confidence`` — the probability of the token's label (float; None when not
  computed), read from ``doc._.infnet_token_confidence`` (a list, one float per token).
* NER: ``doc.spans["infnet_ents"]`` — the predicted entities (the same spans as ``doc.ents``),
  with their probabilities in ``doc.spans["infnet_ents"].attrs["scores"]`` (a float32 array,
  one per span, as spaCy's ``SpanCategorizer`` stores its scores).
* ``doc._.infnet_kbest`` — the k best analyses, lowest energy first: a list of
  ``{"labels": [label per token], "energy": nats}`` (NER labels in the component's scheme).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from spacy.tokens import Doc, Span, SpanGroup, Token

from ..core.prediction import Prediction

#: ``doc.spans`` key of the scored entities.
SPANS_KEY = "infnet_ents"


def _token_confidence(token: Token) -> float | None:
    values = token.doc._.infnet_token_confidence
    return None if values is None else values[token.i]


def register_extensions() -> None:
    """Register the ``Doc`` and ``Token`` extensions (idempotent)."""
    if not Doc.has_extension("infnet_token_confidence"):
        Doc.set_extension("infnet_token_confidence", default=None)
    if not Doc.has_extension("infnet_kbest"):
        Doc.set_extension("infnet_kbest", default=None)
    if not Token.has_extension("infnet_confidence"):
        Token.set_extension("infnet_confidence", getter=_token_confidence)


def write_details(doc: Doc, prediction: Prediction, labels: Sequence[str]) -> None:
    """Write ``prediction``'s confidence and k-best list (whatever it holds) on ``doc``."""
    register_extensions()
    if prediction.token_confidence is not None:
        doc._.infnet_token_confidence = [float(p) for p in prediction.token_confidence]
    if prediction.entities is not None:
        spans = [Span(doc, s, e, label=t) for s, e, t, _ in prediction.entities]
        scores = np.asarray([p for *_, p in prediction.entities], dtype=np.float32)
        doc.spans[SPANS_KEY] = SpanGroup(doc, name=SPANS_KEY, spans=spans, attrs={"scores": scores})
    if prediction.kbest is not None:
        doc._.infnet_kbest = [
            {"labels": [labels[i] for i in tags], "energy": float(energy)}
            for tags, energy in prediction.kbest
        ]

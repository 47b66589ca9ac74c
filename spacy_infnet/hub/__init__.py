"""Hugging Face Hub export and loading of trained ``infnet_tagger`` pipelines.

- :func:`save_pretrained` — write a Hub model repository: the spaCy pipeline (weights as
  safetensors), ``config.json`` (task, labels, decoder, architectures, versions, checksums) and
  a model card (``README.md``) with ``model-index`` metrics.
- :func:`push_to_hub` — the same, uploaded with ``huggingface_hub``.
- :func:`from_pretrained` — a ``spacy.Language`` from a local export or a Hub id (through the
  Hub cache, so ``HF_HUB_OFFLINE=1`` works), optionally with another decoder.
- :func:`build_wheel` — ``spacy package`` wheel of a pipeline.
"""

from .export import build_wheel, push_to_hub, save_pretrained
from .load import from_pretrained, resolve
from .manifest import ExportError

__all__ = [
    "ExportError",
    "build_wheel",
    "from_pretrained",
    "push_to_hub",
    "resolve",
    "save_pretrained",
]

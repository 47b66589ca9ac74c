"""Files of a saved ``infnet_tagger`` component: ``cfg.json`` (settings, JSON) and
``model.safetensors`` (weights), written atomically and read back as those formats only
(nothing is unpickled)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors

from ..fileio import atomic_write  # noqa: F401  (the package's writers import it from here)

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "model.safetensors"
#: the inference network exported for ``backend = "onnx"`` (:mod:`spacy_infnet.serving.onnx`)
ONNX_FILE = "infnet.onnx"


def state_bytes(state: dict) -> bytes:
    """``cfg.json``'s bytes."""
    return json.dumps(state, indent=2, ensure_ascii=False).encode("utf8")


def weight_bytes(weights: dict[str, torch.Tensor]) -> bytes:
    """``model.safetensors``'s bytes (the same for the same weights: checksums compare)."""
    return save_safetensors(weights, metadata={"format": "pt"})


def read_json(path: Path) -> dict:
    """A component's ``cfg.json``.

    Raises:
        FileNotFoundError: no such file (named).
        ValueError: not valid JSON (the file and the parser's message).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"infnet_tagger: missing file {path}")
    try:
        return json.loads(path.read_text(encoding="utf8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"infnet_tagger: {path} is not valid JSON: {err}") from err


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A component's ``model.safetensors``.

    Raises:
        FileNotFoundError: no such file (named).
        ValueError: not a readable safetensors file (the file and the reason).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"infnet_tagger: missing file {path}")
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"infnet_tagger: cannot read weights {path}: {err}") from err


def find_component_dir(path: Path) -> Path:
    """The infnet_tagger directory inside a pipeline directory (or ``path`` itself).

    Raises:
        FileNotFoundError: no such directory, or no infnet_tagger component in it.
        ValueError: several infnet_tagger components (name one directly).
    """
    if not path.exists():
        raise FileNotFoundError(f"infnet_tagger: energy_source {path} does not exist")
    if (path / CFG_FILE).exists():
        return path
    found = [
        d
        for d in sorted(path.iterdir())
        if d.is_dir() and (d / CFG_FILE).exists() and (d / WEIGHTS_FILE).exists()
    ]
    if not found:
        raise FileNotFoundError(
            f"infnet_tagger: energy_source {path} holds no infnet_tagger component "
            f"({CFG_FILE} + {WEIGHTS_FILE}); pass a trained pipeline directory such as "
            "runs/ner/model-best"
        )
    if len(found) > 1:
        raise ValueError(
            f"infnet_tagger: energy_source {path} holds several components "
            f"({', '.join(d.name for d in found)}); pass the component directory itself"
        )
    return found[0]

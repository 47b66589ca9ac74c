"""Files of a saved ``infnet_tagger`` component: ``cfg.json`` (settings, JSON) and
``model.safetensors`` (weights), written atomically and read back as those formats only
(nothing is unpickled)."""

from __future__ import annotations

import json
from collections.abc import Sequence
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


#: The tensor of ``model.safetensors`` that holds the label list the weights were trained with
#: (the UTF-8 bytes of its JSON, uint8): ``cfg.json`` is checked against it when loading, so a
#: settings file naming other or reordered labels is refused instead of silently relabelling.
#: (A tensor, not safetensors metadata: metadata of several keys is written in a random order,
#: and the file's bytes must be the same for the same weights.)
LABELS_KEY = "labels"


def weight_bytes(weights: dict[str, torch.Tensor], labels: Sequence[str] | None = None) -> bytes:
    """``model.safetensors``'s bytes (the same for the same weights: checksums compare), with
    the label list under :data:`LABELS_KEY` when ``labels`` is given."""
    if labels is not None:
        data = json.dumps(list(labels), ensure_ascii=False).encode("utf8")
        weights = {**weights, LABELS_KEY: torch.frombuffer(bytearray(data), dtype=torch.uint8)}
    return save_safetensors(weights, metadata={"format": "pt"})


def split_labels(
    weights: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], list[str] | None]:
    """The network tensors of a read ``model.safetensors`` and the label list stored with them
    (None: a file written before labels were stored).

    Raises:
        ValueError: a stored label list that is not a JSON list of strings.
    """
    if LABELS_KEY not in weights:
        return weights, None
    rest = {k: v for k, v in weights.items() if k != LABELS_KEY}
    try:
        labels = json.loads(bytes(weights[LABELS_KEY].tolist()).decode("utf8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"the label list stored with the weights is unreadable: {err}") from err
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ValueError("the label list stored with the weights is not a list of strings")
    return rest, labels


def missing(path: Path) -> FileNotFoundError:
    """The error for a component file that is not there: its directory is incomplete."""
    return FileNotFoundError(
        f"infnet_tagger: missing file {path}: {path.parent} is incomplete (a save or copy that "
        "was interrupted?); load model-last of the training run or save the pipeline again"
    )


def read_json(path: Path) -> dict:
    """A component's ``cfg.json``.

    Raises:
        FileNotFoundError: no such file (named: the directory is incomplete).
        ValueError: not valid JSON, or not a JSON object (the file and the reason).
    """
    path = Path(path)
    if not path.exists():
        raise missing(path)
    try:
        data = json.loads(path.read_text(encoding="utf8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"infnet_tagger: {path} is not valid JSON (incomplete?): {err}") from err
    if not isinstance(data, dict):  # a file's content, not an argument's type
        raise ValueError(  # noqa: TRY004
            f"infnet_tagger: {path} holds a JSON {type(data).__name__}, not the object of settings"
        )
    return data


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A component's ``model.safetensors``.

    Raises:
        FileNotFoundError: no such file (named: the directory is incomplete).
        ValueError: not a readable safetensors file (the file and the reason).
    """
    path = Path(path)
    if not path.exists():
        raise missing(path)
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"infnet_tagger: cannot read weights {path} (incomplete?): {err}") from err


def find_component_dir(path: Path, setting: str = "energy_source") -> Path:
    """The infnet_tagger directory inside a pipeline directory (or ``path`` itself);
    ``setting``: the initialize setting that names ``path``, for the messages.

    Raises:
        FileNotFoundError: no such directory, or no infnet_tagger component in it.
        ValueError: several infnet_tagger components (name one directly).
    """
    if not path.exists():
        raise FileNotFoundError(f"infnet_tagger: {setting} {path} does not exist")
    if (path / CFG_FILE).exists():
        return path
    found = [
        d
        for d in sorted(path.iterdir())
        if d.is_dir() and (d / CFG_FILE).exists() and (d / WEIGHTS_FILE).exists()
    ]
    if not found:
        raise FileNotFoundError(
            f"infnet_tagger: {setting} {path} holds no infnet_tagger component "
            f"({CFG_FILE} + {WEIGHTS_FILE}); pass a trained pipeline directory such as "
            "runs/ner/model-best"
        )
    if len(found) > 1:
        raise ValueError(
            f"infnet_tagger: {setting} {path} holds several components "
            f"({', '.join(d.name for d in found)}); pass the component directory itself"
        )
    return found[0]

"""The component's side of ``backend = "onnx"`` (the infnet decoder runs Ψ in onnxruntime,
:mod:`spacy_infnet.serving.onnx`): Ψ is exported on first use, or read from the
``infnet.onnx`` a saved pipeline carries (:data:`.files.ONNX_FILE`), and written beside the
weights when the pipeline is saved.  The ONNX packages (the ``[onnx]`` extra) are imported only
then."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..core.decoders import Decoder
from ..core.model import InfnetModel


def uses_onnx(decoder: Decoder) -> bool:
    """Whether ``decoder`` runs Ψ on the ONNX backend."""
    return getattr(decoder, "backend", "torch") == "onnx"


def ensure_runner(model: InfnetModel, saved: Path | None) -> None:
    """Give ``model`` its onnxruntime session unless it has one: from ``saved`` (checked against
    the weights) or a fresh export.

    Raises:
        ValueError: a stale or foreign ``saved`` file, or a network that cannot be exported.
        ImportError: onnx or onnxruntime is not installed.
    """
    if model.onnx_runner is None:
        from ..serving.onnx import attach_onnx

        attach_onnx(model, saved)


def writer(model: Callable[[], InfnetModel]) -> Callable[[Path], Path]:
    """A ``util.to_disk`` writer exporting the model ``model()`` returns to the given path."""

    def write(path: Path) -> Path:
        from ..serving.onnx import export_infnet

        return export_infnet(model(), path)

    return write

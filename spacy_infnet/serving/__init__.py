"""Serving a trained inference network outside PyTorch (:mod:`.onnx`: ONNX export and
onnxruntime inference).  The ONNX packages are imported only when a function needs them."""

from .onnx import (
    OnnxInfnet,
    attach_onnx,
    export_infnet,
    onnx_input_names,
    tags_from_logits,
    weights_digest,
)

__all__ = [
    "OnnxInfnet",
    "attach_onnx",
    "export_infnet",
    "onnx_input_names",
    "tags_from_logits",
    "weights_digest",
]

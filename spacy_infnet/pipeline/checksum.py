"""SHA-256 checksums of a pipeline's files.

Shared by the two top layers: the benchmark harness records the checksum of the
``infnet_tagger`` weights it measured (``"weights_sha256"`` of each pipeline entry), and the Hub
export lists every exported file's checksum in ``config.json`` and refuses benchmark results
whose recorded checksum is not that of the pipeline it exports.  The weights file is
``<pipeline dir>/<component name>/model.safetensors`` (:data:`.files.WEIGHTS_FILE`,
written by ``InfnetTagger.to_disk``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from .files import WEIGHTS_FILE


def sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 (64 characters) of a file's bytes, read in ``chunk``-byte blocks.

    Raises:
        OSError: the file cannot be read (FileNotFoundError when it does not exist).
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def weights_path(pipeline_dir: str | os.PathLike, component: str = "infnet_tagger") -> Path:
    """``<pipeline_dir>/<component>/model.safetensors``: where ``nlp.to_disk`` writes the
    energy and inference-network tensors of an ``infnet_tagger`` named ``component``."""
    return Path(pipeline_dir) / component / WEIGHTS_FILE


def weights_sha256(pipeline, component: str = "infnet_tagger") -> str:
    """Hex SHA-256 of the weights file of the ``infnet_tagger`` named ``component``.

    Args:
        pipeline: a pipeline directory (its file :func:`weights_path` is hashed), or an
            in-memory ``spacy.Language`` (the file its ``to_disk`` would write is hashed:
            the component is written to a temporary directory). Both give the same checksum
            for a pipeline loaded from a directory written by this package: the safetensors
            file of the same tensors is byte-identical.

    Raises:
        FileNotFoundError: ``pipeline`` is a directory without that weights file.
        KeyError: ``pipeline`` is a Language without a component named ``component``.
    """
    if isinstance(pipeline, (str, os.PathLike)):
        path = weights_path(pipeline, component)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist: {pipeline} is not a trained pipeline with an "
                f"infnet_tagger component named {component!r}"
            )
        return sha256(path)
    with tempfile.TemporaryDirectory(prefix="spacy-infnet-weights-") as tmp:
        pipeline.get_pipe(component).to_disk(tmp)
        return sha256(Path(tmp) / WEIGHTS_FILE)

"""Python entry point to the two-stage trainer: spaCy's own training loop (``spacy train``).

Both stages run inside one call: the ``infnet_tagger`` component switches from the energy
(stage 1) to the inference network (stage 2) itself; see
:mod:`spacy_infnet.pipeline.component`.  Recipes call :func:`train` with a modified
:class:`thinc.api.Config` (e.g. another inference-network architecture, or a local baseline)
and get the trained pipeline directory back.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

from spacy.training.initialize import init_nlp
from spacy.training.loop import train as spacy_train
from spacy.util import dot_to_dict, load_config
from thinc.api import Config

from ..fileio import atomic_write
from . import component as _component  # noqa: F401  (registers the factory)


def train(
    config: str | Path | Config,
    output_path: str | Path,
    *,
    overrides: dict[str, Any] | None = None,
    stdout: IO = sys.stdout,
    stderr: IO = sys.stderr,
) -> Path:
    """Run ``spacy train`` on ``config`` and return the ``model-best`` directory.

    Args:
        config: a config file path or a loaded :class:`Config` (e.g. ``configs/ner.cfg``).
        output_path: directory for ``config.cfg`` (written atomically), ``model-best`` and
            ``model-last`` (atomically through ``spacy_infnet.atomic_checkpoints.v1`` where
            the config's ``[training] before_to_disk`` names it).
        overrides: dotted config overrides, as on the command line
            (``{"paths.energy_source": "runs/ner/model-best"}``; a killed run restarts with
            ``{"paths.resume": "runs/ner/model-last"}`` into a new ``output_path``).

    Returns:
        ``output_path / "model-best"``.

    Raises:
        FileNotFoundError: the config file does not exist.
    """
    if not isinstance(config, Config):
        path = Path(config)
        if not path.exists():
            raise FileNotFoundError(f"config file {path} does not exist")
        config = load_config(path, overrides=overrides or {}, interpolate=False)
    elif overrides:
        config = config.merge(dot_to_dict(overrides))
    output = Path(output_path)
    output.mkdir(parents=True, exist_ok=True)
    atomic_write(output / "config.cfg", config.to_str().encode("utf8"), mode=0o644)
    nlp = init_nlp(config, use_gpu=-1)
    spacy_train(nlp, output, use_gpu=-1, stdout=stdout, stderr=stderr)
    return output / "model-best"

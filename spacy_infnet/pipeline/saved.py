"""Reading a saved ``infnet_tagger`` back: its ``cfg.json`` rebuilt into an
:class:`~spacy_infnet.core.model.InfnetModel` and its ``model.safetensors`` loaded into it,
each error naming the file at fault.

Used by the component's ``from_disk`` / ``from_bytes`` and by ``initialize`` when it reads a
trained energy (``energy_source``) or a checkpoint to continue (``resume_from``).  JSON and
safetensors only; nothing is unpickled.
"""

from __future__ import annotations

from pathlib import Path

import torch
from spacy.vocab import Vocab

from ..core.model import InfnetModel
from . import checkpoints, files
from . import vectors as word_vectors


def file_names(where: str | Path) -> tuple[str | Path, str | Path]:
    """How errors name ``cfg.json`` and ``model.safetensors``: the files in the component
    directory ``where`` (a Path), or, for bytes, ``"NAME (cfg)"`` and ``"NAME (model)"``."""
    if isinstance(where, Path):
        return where / files.CFG_FILE, where / files.WEIGHTS_FILE
    return f"{where} (cfg)", f"{where} (model)"


def read_saved(vocab: Vocab, source: str | Path, setting: str) -> tuple[Path, dict, dict]:
    """The component directory, ``cfg.json`` and weights of the saved pipeline (or component)
    ``source``, named by the initialize ``setting`` ("energy_source", "resume_from"); a
    checkpoint is checked against its manifest first, and its vectors table is loaded into
    ``vocab``.

    Raises:
        FileNotFoundError: no such directory, or one without the component's files.
        ValueError: unreadable files; an incomplete checkpoint
            (:class:`.checkpoints.IncompleteCheckpointError`).
    """
    where = files.find_component_dir(Path(source), setting)
    checkpoints.check_component_dir(where)
    state = files.read_json(where / files.CFG_FILE)
    weights = files.read_weights(where / files.WEIGHTS_FILE)
    word_vectors.load_saved_table(vocab, where, state.get("vectors_shape"))
    return where, state, weights


def build_model(state: dict, vocab: Vocab, task: str, at_cfg: str | Path, **infnet) -> InfnetModel:
    """The (untrained) model that ``cfg.json``'s ``state`` describes, its vectors table
    attached from ``vocab``; with ``infnet=``, that inference network instead of the saved one.

    Raises:
        ValueError: another task than ``task``, or invalid settings (naming ``at_cfg``).
    """
    try:
        if state.get("task") != task:
            raise ValueError(f"saved task {state.get('task')!r} is not {task!r}")
        model = InfnetModel.from_config(state, **infnet)
        word_vectors.attach(model, vocab, state.get("vectors_shape"))
        return model
    except ValueError as err:
        raise ValueError(f"{at_cfg}: {err}") from err


def load_weights(
    model: InfnetModel,
    weights: dict[str, torch.Tensor],
    at_cfg: str | Path,
    at_weights: str | Path,
    energy_only: bool = False,
) -> None:
    """Load ``model.safetensors``'s ``weights`` into ``model`` (only the energy with
    ``energy_only``), after checking that they were trained with the labels that ``cfg.json``
    names (:data:`.files.LABELS_KEY`; files written before labels were stored are not checked).

    Raises:
        ValueError: other labels, or weights that do not fit the model (naming ``at_weights``).
    """
    try:
        weights, trained_on = files.split_labels(weights)
        if trained_on is not None and list(trained_on) != list(model.labels):
            raise ValueError(
                f"these weights were trained with the labels {trained_on}, but {at_cfg} "
                f"names {list(model.labels)}: the two files come from different pipelines"
            )
        model.load_weights(weights, ("energy",) if energy_only else ("energy", "infnet"))
    except ValueError as err:
        raise ValueError(f"{at_weights}: {err}") from err

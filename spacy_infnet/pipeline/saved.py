"""Saving an ``infnet_tagger`` and reading it back: its ``cfg.json`` rebuilt into an
:class:`~spacy_infnet.core.model.InfnetModel` and its ``model.safetensors`` loaded into it,
each error naming the file at fault.

:class:`SavedComponent` is the serialisation part of the component: spaCy's ``util.to_disk``
/ ``to_bytes``, honouring ``exclude`` ("cfg", "vocab", "model"), ``cfg.json`` and
``model.safetensors`` written atomically (a training checkpoint adds its progress and is
checked against its manifest when loaded), and ``initialize``'s reading of a trained energy
(``energy_source``) or of a checkpoint to continue (``resume_from``).  JSON and safetensors
only; nothing is unpickled.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from spacy import util
from spacy.vocab import Vocab

from .. import __version__
from ..core.model import InfnetModel
from ..training import progress
from ..training.schedule import TwoStageSchedule
from . import checkpoints, files, onnx_backend
from . import vectors as word_vectors

logger = logging.getLogger("spacy.infnet")


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


class SavedComponent:
    """The serialisation part of :class:`~.component.InfnetTagger` (module docstring); it
    reads the component's ``task``, ``vocab``, ``name``, ``decoder``, ``labels``, ``stages``,
    ``cfg``, ``scheme``, ``constraints``, ``saving_checkpoint``, ``schedule`` and its model
    accessors."""

    def _initialize_from_energy(self, source: str | Path, n_train: int) -> None:
        """Load a trained energy (stage 1 done) from a pipeline or component directory."""
        if self._infnet_config is None:
            raise ValueError(
                "infnet_tagger: energy_source is set but the config has no [infnet] block: "
                "there is nothing to train"
            )
        where, state, weights = read_saved(self.vocab, source, "energy_source")
        self._restore(state, weights, where, infnet=self._infnet_config)
        self.cfg["energy_source"] = str(source)
        self.schedule = TwoStageSchedule(self.stages, n_train, "energy")
        self.schedule.start_stage2(self.torch_model)

    def _resume(self, source: str | Path, n_train: int, training: dict) -> None:
        """Continue a run from the checkpoint ``source`` (``resume_from``)."""
        where, state, weights = read_saved(self.vocab, source, "resume_from")
        self._restore(state, weights, where)
        counters, best_energy = progress.read_checkpoint(where)
        model = self._require_model()
        self.schedule = TwoStageSchedule.for_run(
            self.stages, n_train, self._energy_config, model.infnet is not None, training
        )
        try:
            self.schedule.resume(model, counters, files.split_labels(weights)[0], best_energy)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from err
        info = progress.describe(counters, training, n_train)
        if Path(source).name in ("model-last", "model-best"):  # spaCy's clean_output_dir
            info += "; spaCy deletes it when training starts if --output is its parent"
        logger.info("infnet_tagger: resumed from %s: %s", source, info)

    # -- serialisation (JSON + safetensors only) ----------------------------------------------
    def state(self) -> dict[str, Any]:
        """The JSON settings saved as ``cfg.json``: the component's and the model's."""
        model = self._require_model()
        return {
            "spacy_infnet_version": __version__,
            "task": self.task,
            "scheme": self.scheme,
            "constraints": self.constraints,
            "vectors": self.cfg.get("vectors"),
            "energy_source": self.cfg.get("energy_source"),
            **model.config(),
            **({"checkpoint": True} if self.saving_checkpoint else {}),
        }

    def _restore(
        self, state: dict | None, weights: dict | None, where: str | Path, **infnet
    ) -> None:
        """Rebuild the model from a saved ``state`` (cfg.json) and load ``weights``.  With
        ``infnet=`` (an ``energy_source``), that inference network is built fresh instead of
        the saved one, and only the energy's weights are loaded.  ``where``: the component
        directory (errors name its ``cfg.json`` or ``model.safetensors``) or, for bytes, the
        component's name.

        Raises:
            ValueError: another task, invalid settings, weights that do not fit them, or
                weights stored with other labels than ``cfg.json`` names (naming the file).
        """
        at_cfg, at_weights = file_names(where)
        if state is not None:
            self._set_model(build_model(state, self.vocab, self.task, at_cfg, **infnet))
            self.scheme = state.get("scheme", self.scheme)
            self.constraints = state.get("constraints", self.constraints)
            self.cfg.update(vectors=state.get("vectors"), energy_source=state.get("energy_source"))
        if weights is not None:
            model = self._require_model()
            load_weights(model, weights, at_cfg, at_weights, energy_only=bool(infnet))
        self._warn_untrained(where, infnet)

    def _warn_untrained(self, where: str | Path, infnet: dict) -> None:
        """Warn when a loaded pipeline's inference network was never trained."""
        model = self.torch_model
        if not infnet and model is not None and model.active_decoder(self.decoder) != self.decoder:
            warnings.warn(
                f"{where}: the inference network of this pipeline was never trained (training "
                "stopped in stage 1); it decodes with Viterbi instead",
                stacklevel=4,
            )

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        writers = {
            files.CFG_FILE: lambda p: files.atomic_write(p, files.state_bytes(self.state())),
            "vocab": lambda p: self.vocab.to_disk(p, exclude=exclude),
            files.WEIGHTS_FILE: lambda p: files.atomic_write(
                p, files.weight_bytes(self._require_model().weights(), self.labels)
            ),
        }
        if onnx_backend.uses_onnx(self.decoder):  # Ψ as ONNX beside its weights
            writers[files.ONNX_FILE] = onnx_backend.writer(self._require_model)
        if self.saving_checkpoint and self.schedule is not None:  # training progress
            for name, data in progress.checkpoint_files(self.schedule.tracker).items():
                writers[name] = lambda p, data=data: files.atomic_write(p, data)
        util.to_disk(path, writers, exclude)

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> SavedComponent:
        """Load the component saved in ``path``; a checkpoint is first checked against its
        pipeline's manifest.

        Raises:
            FileNotFoundError: a missing ``cfg.json`` or ``model.safetensors`` (named).
            ValueError: unreadable files, settings or weights; an incomplete checkpoint
                (:class:`.checkpoints.IncompleteCheckpointError`).
        """
        checkpoints.check_component_dir(path)
        read: dict[str, Any] = {}
        readers = {
            files.CFG_FILE: lambda p: read.__setitem__("state", files.read_json(p)),
            "vocab": lambda p: p.exists() and self.vocab.from_disk(p, exclude=exclude),
            files.WEIGHTS_FILE: lambda p: read.__setitem__("weights", files.read_weights(p)),
            files.ONNX_FILE: lambda p: setattr(self, "_onnx_file", p if p.is_file() else None),
        }
        util.from_disk(path, readers, exclude)
        self._restore(read.get("state"), read.get("weights"), Path(path))
        return self

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        writers = {
            "cfg": lambda: files.state_bytes(self.state()),
            "vocab": lambda: self.vocab.to_bytes(exclude=exclude),
            "model": lambda: files.weight_bytes(self._require_model().weights(), self.labels),
        }
        return util.to_bytes(writers, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = ()) -> SavedComponent:
        read: dict[str, Any] = {}
        readers = {
            "cfg": lambda b: read.__setitem__("state", json.loads(b)),
            "vocab": lambda b: self.vocab.from_bytes(b, exclude=exclude),
            "model": lambda b: read.__setitem__("weights", load_safetensors(b)),
        }
        util.from_bytes(bytes_data, readers, exclude)
        self._restore(read.get("state"), read.get("weights"), self.name)
        return self

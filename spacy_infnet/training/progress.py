"""What a training checkpoint holds beyond the model, so that a killed run can be resumed.

When spaCy's training loop saves a checkpoint through ``spacy_infnet.atomic_checkpoints.v1``
(:mod:`spacy_infnet.pipeline.checkpoints`), the ``infnet_tagger`` component writes beside its
``cfg.json`` and ``model.safetensors``:

* ``progress.json``: the stage tracker's counters (:meth:`.stages.StageTracker.progress`: stage,
  updates, sentences, epochs, the best stage-1 dev score and its update) and torch's CPU thread
  count (bitwise reproducibility needs the same count: README, "Training that survives faults");
* ``best_energy.safetensors`` (stage 1, once a dev score was recorded): the energy of the best
  dev score so far, which the switch to stage 2 restores.

``[initialize.components.infnet_tagger] resume_from`` reads them back (:func:`read_checkpoint`,
:meth:`.schedule.TwoStageSchedule.resume`).  No spaCy import; JSON and safetensors only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors

PROGRESS_FILE = "progress.json"
BEST_ENERGY_FILE = "best_energy.safetensors"
#: the layout of progress.json (raise it when a key changes meaning)
PROGRESS_FORMAT = 1


def checkpoint_files(tracker: Any) -> dict[str, bytes]:
    """The files a checkpoint adds to the component directory: ``{name: bytes}``.

    Args:
        tracker: the run's :class:`~.stages.StageTracker`.
    """
    best = tracker.best_state if tracker.stage == "energy" else None
    progress = {
        "format": PROGRESS_FORMAT,
        **tracker.progress(),
        "best_energy": best is not None,
        "torch_threads": torch.get_num_threads(),
    }
    out = {PROGRESS_FILE: json.dumps(progress, indent=2).encode("utf8")}
    if best is not None:
        tensors = {k: v.contiguous() for k, v in best.items()}
        out[BEST_ENERGY_FILE] = save_safetensors(tensors, metadata={"format": "pt"})
    return out


def read_checkpoint(
    component_dir: Path,
) -> tuple[dict[str, Any] | None, dict[str, torch.Tensor] | None]:
    """``(progress, best energy)`` of a saved component: ``(None, None)`` when it has no
    ``progress.json`` (saved by a plain ``nlp.to_disk``, or by a run without the
    ``spacy_infnet.atomic_checkpoints.v1`` callback); best energy None when none was kept.

    Raises:
        FileNotFoundError: ``progress.json`` names a best energy whose file is missing (the
            directory is incomplete).
        ValueError: an unreadable ``progress.json`` or best-energy file, or a newer format
            (naming the file).
    """
    path = Path(component_dir) / PROGRESS_FILE
    if not path.exists():
        return None, None
    try:
        progress = json.loads(path.read_text(encoding="utf8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"infnet_tagger: {path} is not valid JSON (incomplete?): {err}") from err
    if not isinstance(progress, dict) or progress.get("format", 0) > PROGRESS_FORMAT:
        raise ValueError(
            f"infnet_tagger: {path} is not a progress file this version reads (format "
            f"{progress.get('format') if isinstance(progress, dict) else '?'}): upgrade "
            "spacy-infnet"
        )
    if not progress.get("best_energy"):
        return progress, None
    best = path.parent / BEST_ENERGY_FILE
    if not best.exists():
        raise FileNotFoundError(
            f"infnet_tagger: {path.parent} is incomplete: {BEST_ENERGY_FILE} is missing; "
            "resume from a complete checkpoint (model-last of the run)"
        )
    try:
        return progress, load_file(str(best))
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"infnet_tagger: cannot read {best} (incomplete?): {err}") from err


def describe(progress: dict[str, Any] | None, training: dict[str, Any], n_train: int) -> str:
    """The log line of a resumed run: what was restored, and that spaCy's loop counts steps
    and epochs from 0 again (so ``[training]`` limits count from the restart: the original
    ones less the checkpoint's updates and whole epochs keep the run's total).

    Args:
        progress: the checkpoint's ``progress.json`` (None: weights only).
        training: the run's ``[training]`` block (``max_steps``, ``max_epochs``).
        n_train: this run's training sentences (an epoch).
    """
    if progress is None:
        return (
            "weights only: the checkpoint has no progress.json (it was not saved through "
            "spacy_infnet.atomic_checkpoints.v1), so the stage counters (epochs towards "
            "energy_max_epochs, updates, best stage-1 dev score) start from 0"
        )
    updates, epoch = int(progress["updates"]), float(progress["epoch"])
    best = progress.get("best_score")
    best_text = "none" if best is None else f"{best:.4f} at update {progress['best_update']}"
    other_data = ""
    if int(progress.get("n_train") or n_train) != n_train:
        other_data = (
            f" (in epochs of {progress['n_train']} sentences; this run's have {n_train}, so it "
            f"is at epoch {int(progress['sentences']) / n_train:.2f})"
        )
    max_steps, max_epochs = (int(training.get(k) or 0) for k in ("max_steps", "max_epochs"))
    return (
        f"stage {1 if progress['stage'] == 'energy' else 2} ({progress['stage']}) after "
        f"{updates} updates, epoch {epoch:.2f}{other_data}; best stage-1 dev score {best_text}. "
        "spaCy's loop counts steps and epochs from 0 again, so [training] max_steps = "
        f"{max_steps}, max_epochs = {max_epochs} (0: no limit) and patience count from this "
        f"restart: the first run's limits less {updates} (max_steps) and {int(epoch)} "
        "(max_epochs) keep its total"
    )

"""``config.json`` of an exported pipeline: what it is, what it needs, and a checksum of every
file of the spaCy pipeline, so that a load can tell a missing, truncated or modified file from a
good one before any weight is read.

Layout of an export (a Hugging Face Hub model repository)::

    README.md            model card (YAML metadata + usage), see :mod:`.card`
    config.json          this module: task, labels, decoder, architectures, versions, checksums
    config.cfg           ┐
    meta.json            │ the spaCy pipeline (``nlp.to_disk``), loadable by ``spacy.load``
    tokenizer, vocab/    │
    infnet_tagger/       ┘ cfg.json + model.safetensors (energy.* and infnet.* tensors)

Only JSON and safetensors are read back; nothing is unpickled.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path, PurePosixPath
from typing import Any

from .. import __version__
from ..pipeline.checksum import sha256  # also the benchmark's weights checksum

CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
#: Version of the export layout; a newer one than this package knows is refused.
FORMAT = "spacy-infnet"
FORMAT_VERSION = 1
#: Files beside the pipeline that are not checksummed (the card may be edited on the Hub; a
#: wheel built by ``spacy package`` and the Hub's own files may be added).
UNLISTED = (CONFIG_FILE, CARD_FILE, ".gitattributes")


class ExportError(ValueError):
    """An exported pipeline is incomplete, modified, or does not fit this installation."""


def file_manifest(root: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"sha256": hex, "bytes": size}}`` of every file under ``root`` except
    :data:`UNLISTED` and ``*.whl``; paths use ``/``."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if not p.is_file() or rel in UNLISTED or p.suffix == ".whl":
            continue
        out[rel] = {"sha256": sha256(p), "bytes": p.stat().st_size}
    return out


def build_config(nlp, component: str, root: Path) -> dict[str, Any]:
    """The ``config.json`` of a pipeline written to ``root`` by ``nlp.to_disk``.

    Args:
        nlp: the ``spacy.Language`` that was written.
        component: name of its ``infnet_tagger`` component.
        root: the directory it was written to (its files are checksummed).
    """
    import spacy
    import torch

    comp = nlp.get_pipe(component)
    state = comp.state()  # what cfg.json holds
    decoder = dict(nlp.config["components"][component]["decoder"])
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_name": "spacy",
        "component": component,
        "factory": "infnet_tagger",
        "task": state["task"],
        "scheme": state["scheme"] if state["task"] == "ner" else None,
        "labels": state["labels"],
        "n_labels": len(state["labels"]),
        "decoder": decoder,
        "decoder_name": comp.decoder.name,
        "stage": state["stage"],
        "energy": state["energy"],
        "infnet": state["infnet"],
        "lang": nlp.lang,
        "pipeline": list(nlp.pipe_names),
        "spacy_version": nlp.meta.get("spacy_version"),
        "versions": {
            "spacy_infnet": __version__,
            "spacy": spacy.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "files": file_manifest(root),
    }


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def read_config(root: Path) -> dict[str, Any]:
    """Read and check ``root/config.json`` (format and versions; no weights are read).

    Raises:
        FileNotFoundError: ``root`` has no config.json (not an export; name the fix).
        ExportError: invalid JSON, not a spacy-infnet export, a newer export format, written
            by a newer spacy-infnet or for a spaCy version this installation is not, or a
            missing or malformed field (``component``, ``task``, ``labels``, ``files``).
    """
    path = root / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{root} is not a spacy-infnet export: {CONFIG_FILE} is missing. Export a trained "
            "pipeline with spacy_infnet.save_pretrained(nlp, DIR) or `python -m spacy_infnet "
            "export PIPELINE_DIR DIR`; a plain spaCy pipeline directory loads with spacy.load"
        )
    try:
        config = json.loads(path.read_text(encoding="utf8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ExportError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ExportError(
            f"{path} does not describe a spacy-infnet export (format "
            f"{config.get('format') if isinstance(config, dict) else None!r}, expected {FORMAT!r})"
        )
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ExportError(
            f"{path}: export format version {version!r} is not supported by spacy-infnet "
            f"{__version__} (it reads version {FORMAT_VERSION}); upgrade with "
            "`pip install -U spacy-infnet`"
        )
    saved = (config.get("versions") or {}).get("spacy_infnet")
    if not isinstance(saved, str):
        raise ExportError(f"{path}: versions.spacy_infnet is missing")
    if _version_tuple(saved)[:2] > _version_tuple(__version__)[:2]:
        raise ExportError(
            f"{path}: exported by spacy-infnet {saved}, newer than the installed {__version__}; "
            f"upgrade with `pip install -U 'spacy-infnet>={saved}'`"
        )
    import spacy
    from spacy.util import is_compatible_version

    wanted = config.get("spacy_version")
    if wanted and is_compatible_version(spacy.__version__, wanted) is False:
        raise ExportError(
            f"{path}: the pipeline was trained for spaCy {wanted}, but spaCy {spacy.__version__} "
            f"is installed; install a matching version (`pip install 'spacy{wanted}'`)"
        )
    for key in ("component", "task", "labels", "files"):
        if key not in config:
            raise ExportError(f"{path}: the field {key!r} is missing")
    _check_fields(path, config)
    return config


def _check_fields(path: Path, config: dict[str, Any]) -> None:
    """The types of the fields a load reads: ``component`` a directory name, ``task`` a string,
    ``labels`` a list of strings, ``files`` relative paths inside the export with their
    ``{"sha256": hex, "bytes": size}``.

    Raises:
        ExportError: the first field that is not so (naming ``path`` and the field).
    """
    component = config["component"]
    if not isinstance(component, str) or component in ("", ".", "..") or "/" in component:
        raise ExportError(f"{path}: 'component' is not a component directory name: {component!r}")
    if not isinstance(config["task"], str):
        raise ExportError(f"{path}: 'task' is not a string: {config['task']!r}")
    labels = config["labels"]
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ExportError(f"{path}: 'labels' is not a list of strings")
    files = config["files"]
    if not isinstance(files, dict):
        raise ExportError(f"{path}: 'files' is not a mapping of file → checksum and size")
    for rel, entry in files.items():
        where = PurePosixPath(rel)
        if where.is_absolute() or ".." in where.parts or "\\" in rel:
            raise ExportError(f"{path}: 'files' lists {rel!r}, a path outside the export")
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("sha256"), str)
            and isinstance(entry.get("bytes"), int)
        ):
            raise ExportError(
                f"{path}: the 'files' entry of {rel!r} is not a checksum and size "
                f"(sha256, bytes): {entry!r}"
            )


def verify_files(root: Path, config: dict[str, Any]) -> None:
    """Check every file listed in ``config["files"]`` against its size and SHA-256.

    Raises:
        FileNotFoundError: a listed file is missing.
        ExportError: a listed file is truncated or extended (size differs) or modified
            (checksum differs).
    """
    for rel, entry in config["files"].items():
        path = root / rel
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: {CONFIG_FILE} lists it as part of the exported pipeline "
                "(an incomplete download or copy; download or export it again)"
            )
        size = path.stat().st_size
        if size != entry["bytes"]:
            what = "truncated" if size < entry["bytes"] else "longer than exported"
            raise ExportError(
                f"{path} is {what}: {size:,} bytes, {CONFIG_FILE} records {entry['bytes']:,} "
                "(an interrupted download or a damaged copy; download or export it again)"
            )
        digest = sha256(path)
        if digest != entry["sha256"]:
            raise ExportError(
                f"{path} was modified after export: its SHA-256 is {digest[:16]}…, "
                f"{CONFIG_FILE} records {entry['sha256'][:16]}… (corrupted or tampered with; "
                "download or export it again)"
            )


def check_labels(root: Path, config: dict[str, Any]) -> None:
    """The labels in config.json must be the component's (``COMPONENT/cfg.json``).

    Raises:
        ExportError: they differ (names the labels only on one side).
    """
    cfg_path = root / config["component"] / "cfg.json"
    try:
        saved = json.loads(cfg_path.read_text(encoding="utf8"))["labels"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ExportError(f"{cfg_path}: cannot read the component's labels: {err}") from err
    if list(saved) != list(config["labels"]):
        only_cfg = sorted(set(config["labels"]) - set(saved))
        only_comp = sorted(set(saved) - set(config["labels"]))
        detail = (
            f"only in {CONFIG_FILE}: {only_cfg}; only in the component: {only_comp}"
            if only_cfg or only_comp
            else "same labels in another order (tensor rows would be misread)"
        )
        raise ExportError(
            f"{root / CONFIG_FILE}: its label set does not match the weights' label set in "
            f"{cfg_path} ({detail})"
        )

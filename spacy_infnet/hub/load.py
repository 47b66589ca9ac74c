"""Load an exported pipeline from a local directory or a Hugging Face Hub repository.

A Hub id is resolved with ``huggingface_hub.snapshot_download``, so the Hub cache
(``HF_HOME`` / ``HF_HUB_CACHE``), ``HF_HUB_OFFLINE=1`` and tokens work as for any Hub model.
Before spaCy reads anything, ``config.json`` is checked (format, versions, labels) and every
pipeline file against its recorded size and SHA-256 (:mod:`.manifest`); weights are then read
as safetensors by the component.  Nothing is unpickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .manifest import check_labels, read_config, verify_files


def _looks_like_path(text: str) -> bool:
    return (
        text.startswith((".", "/", "~"))
        or "\\" in text
        or text.count("/") > 1
        or Path(text).expanduser().exists()
    )


def resolve(
    repo_id_or_path: str | Path,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    token: str | None = None,
    local_files_only: bool = False,
) -> Path:
    """The local directory of an export: ``repo_id_or_path`` itself when it is a directory,
    else the snapshot of the Hub repository ``repo_id_or_path`` (downloaded or from the cache).

    Raises:
        FileNotFoundError: a path-like argument that does not exist.
        OSError: the Hub id cannot be resolved (offline and not cached, no network, no such
            repository or revision, no access); the message names the local-path alternative.
    """
    if isinstance(repo_id_or_path, Path) or _looks_like_path(str(repo_id_or_path)):
        path = Path(repo_id_or_path).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(
                f"{path} is not a directory. Pass the directory written by "
                "spacy_infnet.save_pretrained / `python -m spacy_infnet export`, or a Hub id "
                "such as ORG/NAME"
            )
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo_id = str(repo_id_or_path)
    alternative = (
        "To load without the Hub, pass the path of a local export instead (a directory written "
        "by spacy_infnet.save_pretrained or `python -m spacy_infnet export`, or one downloaded "
        f"with `hf download {repo_id} --local-dir DIR` on a machine online)"
    )
    try:
        return Path(
            snapshot_download(
                repo_id,
                revision=revision,
                cache_dir=cache_dir,
                token=token,
                local_files_only=local_files_only,
            )
        )
    except LocalEntryNotFoundError as err:
        raise OSError(
            f"cannot load {repo_id!r}: it is not a local directory, and the Hub could not be "
            "reached (offline: HF_HUB_OFFLINE=1 or no network) with no copy in the Hub cache "
            f"({cache_dir or 'HF_HUB_CACHE'}). {alternative}. ({err.__class__.__name__})"
        ) from err
    except (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError) as err:
        raise OSError(
            f"cannot load {repo_id!r} (revision {revision or 'main'}): no such repository or "
            f"revision on the Hub, or no access (log in with `hf auth login` or pass token=). "
            f"{alternative}."
        ) from err
    except HFValidationError as err:
        raise OSError(
            f"{repo_id!r} is neither a local directory nor a valid Hub id ({err}). {alternative}."
        ) from err


def from_pretrained(
    repo_id_or_path: str | Path,
    decoder: str | dict[str, Any] | None = None,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    token: str | None = None,
    local_files_only: bool = False,
    config: dict[str, Any] | None = None,
):
    """Load an exported ``infnet_tagger`` pipeline as a ``spacy.Language``.

    Args:
        repo_id_or_path: a local export directory, or a Hub id (``ORG/NAME``).
        decoder: replaces the exported decoder: a short name (``"viterbi"``, ``"infnet"``,
            ``"gd"``, ``"tailored"``, ``"warm_gd"``: the registry defaults) or a config block
            such as ``{"@decoders": "spacy_infnet.GradientDescent.v1", "steps": 50}``.
        revision, cache_dir, token, local_files_only: passed to ``snapshot_download``.
        config: further ``spacy.load`` config overrides.

    Raises:
        FileNotFoundError: no such directory, no config.json, or a listed file is missing.
        OSError: a Hub id that cannot be resolved (see :func:`resolve`).
        spacy_infnet.hub.ExportError: a truncated or modified file, a label set that differs
            from the weights', or an export made for another spacy-infnet / spaCy version.
        ValueError: an unknown decoder name.
    """
    import spacy

    from ..pipeline.registry import decoder_block

    root = resolve(
        repo_id_or_path,
        revision=revision,
        cache_dir=cache_dir,
        token=token,
        local_files_only=local_files_only,
    )
    info = read_config(root)
    verify_files(root, info)
    check_labels(root, info)
    overrides: dict[str, Any] = dict(config or {})
    if decoder is not None:
        components = dict(overrides.get("components", {}))
        components[info["component"]] = {
            **components.get(info["component"], {}),
            "decoder": decoder_block(decoder),
        }
        overrides["components"] = components
    return spacy.load(root, config=overrides)

"""Export a trained pipeline as a Hugging Face Hub model repository and upload it.

:func:`save_pretrained` writes the layout described in :mod:`.manifest` (the spaCy pipeline,
``config.json`` with checksums, and a model card); :func:`push_to_hub` writes it to a temporary
directory and uploads it with ``huggingface_hub`` (``create_repo`` + ``upload_folder``);
:func:`build_wheel` runs ``spacy package`` to make an installable wheel of the pipeline.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..pipeline.checksum import weights_sha256
from ..pipeline.files import atomic_write
from .card import build_card, load_bench
from .manifest import CARD_FILE, CONFIG_FILE, FORMAT, build_config

logger = logging.getLogger("spacy.infnet")


def _as_language(nlp_or_path):
    """``(nlp, source directory or None)``."""
    if isinstance(nlp_or_path, (str, Path)):
        import spacy

        path = Path(nlp_or_path)
        if not path.is_dir():
            raise FileNotFoundError(
                f"pipeline directory {path} does not exist (pass a trained pipeline such as "
                "runs/ner/model-best, or a spacy.Language)"
            )
        return spacy.load(path), path
    return nlp_or_path, None


def _with_onnx_decoder(nlp, component: str):
    """``nlp`` reloaded with its tagger's decoder set to the inference network on the ONNX
    backend (so that the saved config says so and ``to_disk`` writes the ONNX file).

    Raises:
        ValueError: the tagger has no trained inference network.
    """
    import spacy

    tagger = nlp.get_pipe(component)
    if tagger.infnet is None or tagger.stage != "infnet":
        raise ValueError("onnx: this pipeline has no trained inference network to export")
    block = {
        "@decoders": "spacy_infnet.InferenceNetwork.v1",
        "rounding": getattr(tagger.decoder, "rounding", "argmax"),
        "backend": "onnx",
    }
    with tempfile.TemporaryDirectory(prefix="spacy-infnet-export-") as tmp:
        nlp.to_disk(tmp)
        return spacy.load(tmp, config={"components": {component: {"decoder": block}}})


def _tagger_name(nlp) -> str:
    names = [name for name, c in nlp.pipeline if c.__class__.__name__ == "InfnetTagger"]
    if len(names) != 1:
        raise ValueError(
            f"expected exactly one infnet_tagger component, found {len(names)} in {nlp.pipe_names}"
        )
    return names[0]


def _prepare_dir(out: Path) -> None:
    """Create ``out``, or empty a previous export there; refuse any other non-empty directory."""
    if not out.exists():
        out.mkdir(parents=True)
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    if not any(out.iterdir()):
        return
    try:
        previous = json.loads((out / CONFIG_FILE).read_text(encoding="utf8"))
        ours = previous.get("format") == FORMAT
    except (OSError, json.JSONDecodeError, AttributeError):
        ours = False
    if not ours:
        raise FileExistsError(
            f"{out} is not empty and holds no earlier spacy-infnet export; choose an empty or "
            "new directory (nothing was written)"
        )
    for rel in previous.get("files", {}):
        (out / rel).unlink(missing_ok=True)
    for name in (CONFIG_FILE, CARD_FILE):
        (out / name).unlink(missing_ok=True)
    for d in sorted((p for p in out.rglob("*") if p.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()


def save_pretrained(
    nlp,
    out_dir: str | Path,
    *,
    bench: str | Path | dict | None = None,
    model_name: str | None = None,
    repo_id: str | None = None,
    license: str | None = None,
    onnx: bool = False,
) -> Path:
    """Write a trained pipeline as a Hub model repository in ``out_dir``.

    Args:
        nlp: a ``spacy.Language`` with one ``infnet_tagger``, or the path of a trained pipeline.
        out_dir: new or empty directory (or an earlier export, which is replaced).
        bench: benchmark results for the card's ``model-index`` (the JSON of
            ``python -m spacy_infnet bench`` or its dict) of this pipeline: their recorded
            weights checksum must be that of the exported ``infnet_tagger`` weights file
            (:func:`.card.load_bench`); None uses meta.json's dev scores.
        model_name, repo_id, license: for the model card (:func:`.card.build_card`).
        onnx: serve the inference network with onnxruntime: the exported pipeline's decoder
            becomes ``spacy_infnet.InferenceNetwork.v1`` with ``backend = "onnx"`` (its
            rounding kept) and ``infnet_tagger/infnet.onnx`` is written beside the weights
            (needs the ``[onnx]`` extra).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        FileNotFoundError: ``nlp`` is a path that does not exist, or ``bench`` is missing.
        FileExistsError: ``out_dir`` is a non-empty directory that is not an earlier export.
        ValueError: no (or several) infnet_tagger components; unusable benchmark results,
            results of another pipeline (weights checksums differ) or results without a
            weights checksum (nothing is written then).
    """
    nlp, source = _as_language(nlp)
    component = _tagger_name(nlp)
    entry = None
    if bench is not None:
        # The source's weights file (``nlp.to_disk`` below re-writes it byte for byte), or for
        # an in-memory pipeline the file its to_disk writes.
        digest = weights_sha256(source if source is not None else nlp, component)
        entry = load_bench(bench, source, weights_sha256=digest)
    out = Path(out_dir)
    _prepare_dir(out)
    logger.info("exporting %s to %s", source or "the pipeline", out)
    if onnx:
        nlp = _with_onnx_decoder(nlp, component)
    nlp.to_disk(out)
    config = build_config(nlp, component, out)
    text = json.dumps(config, indent=2, ensure_ascii=False) + "\n"
    atomic_write(out / CONFIG_FILE, text.encode("utf8"))
    card = build_card(
        nlp, config, bench=entry, model_name=model_name, repo_id=repo_id, license=license
    )
    card.save(out / CARD_FILE)
    return out


def push_to_hub(
    nlp,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Upload spacy-infnet pipeline",
    create_pr: bool = False,
    bench: str | Path | dict | None = None,
    license: str | None = None,
    wheel: bool = False,
) -> Any:
    """Export ``nlp`` (:func:`save_pretrained`) and upload it to the Hub repository ``repo_id``.

    The repository is created if needed (``HfApi.create_repo(exist_ok=True)``), then the export
    is uploaded in one commit (``HfApi.upload_folder``).  With ``wheel=True`` the ``spacy
    package`` wheel (:func:`build_wheel`) is uploaded beside it.

    Returns:
        the ``CommitInfo`` of the upload (its ``commit_url``).

    Raises:
        OSError: huggingface_hub's errors as they are (authentication, no such repository,
            no network, ``HF_HUB_OFFLINE=1``: all OSError subclasses).
        plus those of :func:`save_pretrained` and, with ``wheel=True``, :func:`build_wheel`.
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="spacy-infnet-export-") as tmp:
        folder = save_pretrained(
            nlp, Path(tmp) / "repo", bench=bench, repo_id=repo_id, license=license
        )
        if wheel:
            build_wheel(folder, folder, name=repo_id.split("/")[-1])
        logger.info("creating (or reusing) the Hub repository %s", repo_id)
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        logger.info("uploading %s to %s", folder, repo_id)
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            repo_type="model",
            revision=revision,
            commit_message=commit_message,
            create_pr=create_pr,
        )


def build_wheel(
    pipeline: str | Path, out_dir: str | Path, *, name: str | None = None, version: str = "0.0.0"
) -> Path:
    """``spacy package`` a pipeline directory and copy its wheel to ``out_dir``.

    The package is named ``{lang}_{name}``; spaCy records spacy-infnet as a requirement (it
    provides the ``infnet_tagger`` factory), so ``pip install`` of the wheel pulls it in and
    ``spacy.load("{lang}_{name}")`` works.

    Raises:
        RuntimeError: ``spacy package`` failed (its output is in the message).
    """
    pipeline, out_dir = Path(pipeline), Path(out_dir)
    meta = json.loads((pipeline / "meta.json").read_text(encoding="utf8"))
    name = (name or meta.get("name") or "pipeline").replace("-", "_").replace(".", "_")
    with tempfile.TemporaryDirectory(prefix="spacy-package-") as tmp:
        src = Path(tmp) / "src"
        # spacy package copies the whole directory: leave the card, config.json and wheels out.
        shutil.copytree(
            pipeline, src, ignore=shutil.ignore_patterns(CONFIG_FILE, CARD_FILE, "*.whl")
        )
        cmd = [
            sys.executable,
            "-m",
            "spacy",
            "package",
            str(src),
            tmp,
            "--name",
            name,
            "--version",
            version,
            "--build",
            "wheel",
            "--force",
        ]
        logger.info("building the `spacy package` wheel of %s", pipeline)
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("*/dist/*.whl"))
        if proc.returncode != 0 or not wheels:
            raise RuntimeError(
                f"`spacy package` of {pipeline} failed (exit {proc.returncode}):\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / wheels[0].name
        shutil.copy2(wheels[0], target)
    return target

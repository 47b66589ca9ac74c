"""Training checkpoints that a killed run cannot leave half-written.

spaCy's training loop saves each checkpoint with ``before_to_disk(nlp).to_disk(model-last)``
(many files, written in place), then, for a new best, replaces ``model-best`` by a
``shutil.copytree`` of ``model-last``.  The ``[training] before_to_disk`` callback
``spacy_infnet.atomic_checkpoints.v1`` (in every shipped config) makes both safe:

* **model-last is swapped in whole.**  The callback gives the pipeline an instance-level
  ``to_disk`` (:func:`save_atomic`) that writes the whole pipeline into a temporary sibling
  directory (``.model-last.partial-*``), writes the manifest ``checkpoint.json`` last (every
  file's relative path, size in bytes and SHA-256), fsyncs every file and directory, and then
  exchanges the directory with ``model-last`` in one step (Linux ``renameat2(RENAME_EXCHANGE)``
  through ctypes; elsewhere, or where the file system refuses it, two renames: a kill between
  them leaves no ``model-last`` but the complete ``.model-last.partial-*``).  A run killed at
  any moment leaves the previous or the new ``model-last``, never a mix.
* **model-best is checked when loaded.**  The component's ``cfg.json`` of such a checkpoint says
  ``"checkpoint": true``; its ``from_disk`` (components load last) then checks the whole
  pipeline directory against the manifest (:func:`verify`), so a ``model-best`` that spaCy's
  ``copytree`` left half-copied (a file missing or truncated), or holding a file of another
  checkpoint, is refused with one line that says "incomplete" (or "does not match"), names the
  directory and the file and what to do.  A pipeline saved by a plain ``nlp.to_disk`` (no flag)
  loads as before.  ``meta.json`` is not in the manifest (spaCy rewrites it, e.g. in
  ``spacy package``; a missing one is harmless).  spaCy reads ``config.cfg``, ``meta.json``,
  ``vocab/`` and ``tokenizer`` before any component, so where one of those is missing or
  unreadable its own error comes first (also a refusal, naming the file).

Two runs saving into one ``--output`` would overwrite each other's checkpoints: the first save
of a process takes an exclusive lock (``flock``, released when the process ends or is killed)
on ``<output>/.spacy-infnet.lock``, and a second process is refused.

During that save the component also writes its training progress (:mod:`..training.progress`),
which ``resume_from`` reads back.  The callback changes nothing else: after training, the same
``nlp`` object keeps the atomic ``to_disk``.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import secrets
import shutil
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from spacy.language import Language
from spacy.util import registry

from ..fileio import atomic_write
from .checksum import sha256
from .files import CFG_FILE

try:
    import fcntl
except ImportError:  # not POSIX: no lock
    fcntl = None

#: the manifest at the root of a checkpoint directory
MANIFEST_FILE = "checkpoint.json"
MANIFEST_FORMAT = 1
#: files left out of the manifest: spaCy rewrites meta.json (e.g. spacy package)
UNCHECKED = ("meta.json",)
#: kinds of hidden siblings of a checkpoint: the new one being written, the old one replaced
PARTIAL, OLD = "partial", "old"
#: locked by the process that saves checkpoints into a directory
LOCK_FILE = ".spacy-infnet.lock"
_locks: dict[Path, int] = {}  # directory -> the open lock file of this process


class IncompleteCheckpointError(ValueError):
    """A checkpoint directory that is incomplete or does not match its manifest."""


@registry.callbacks("spacy_infnet.atomic_checkpoints.v1")
def make_atomic_checkpoints():
    """``[training] before_to_disk``: every checkpoint spaCy saves is written atomically with
    a manifest (module docstring).  Returns the callback, which returns the same ``nlp``."""
    return use_atomic_checkpoints


def use_atomic_checkpoints(nlp: Language) -> Language:
    """Give ``nlp`` an instance-level ``to_disk`` that saves through :func:`save_atomic`
    (idempotent); returns ``nlp``."""
    if getattr(nlp.to_disk, "func", None) is not save_atomic:
        nlp.to_disk = functools.partial(save_atomic, nlp)
    return nlp


def save_atomic(nlp: Language, path: str | os.PathLike, *, exclude: Iterable[str] = ()) -> None:
    """``nlp.to_disk(path)``, all or nothing: write into a temporary sibling, add the manifest
    (written last), fsync, and swap it in place of ``path`` (module docstring).  Temporary
    directories of an earlier killed save beside ``path`` are removed first.

    Raises:
        OSError: writing failed (``path`` is left as it was; the temporary directory is
            removed).
        RuntimeError: another process saves checkpoints into the same directory.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _lock(path.parent)
    for stale in _siblings(path):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = _sibling(path, PARTIAL)
    tmp.mkdir()
    try:
        with _checkpoint_mode(nlp):
            Language.to_disk(nlp, tmp, exclude=exclude)
        write_manifest(tmp)
        _fsync_tree(tmp)
        _swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def _checkpoint_mode(nlp: Language) -> Iterator[None]:
    """Components that know checkpoints (``saving_checkpoint``) write their extra files and
    the ``"checkpoint": true`` flag while the pipeline is saved."""
    pipes = [pipe for _, pipe in nlp.components if hasattr(pipe, "saving_checkpoint")]
    for pipe in pipes:
        pipe.saving_checkpoint = True
    try:
        yield
    finally:
        for pipe in pipes:
            pipe.saving_checkpoint = False


# -- the manifest ---------------------------------------------------------------------------
def _listed_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).as_posix() not in (MANIFEST_FILE, *UNCHECKED)
    )


def write_manifest(root: Path) -> None:
    """Write ``root/checkpoint.json`` (atomically): every file under ``root`` but itself and
    ``meta.json``, as ``{relative path: {"bytes": size, "sha256": hex digest}}``."""
    listed = {
        p.relative_to(root).as_posix(): {"bytes": p.stat().st_size, "sha256": sha256(p)}
        for p in _listed_files(root)
    }
    data = {"format": MANIFEST_FORMAT, "files": listed}
    atomic_write(root / MANIFEST_FILE, json.dumps(data, indent=1).encode("utf8"), mode=0o644)


def _refuse(root: Path, problem: str) -> IncompleteCheckpointError:
    return IncompleteCheckpointError(
        f"infnet_tagger: {root} {problem}: the checkpoint was not saved or copied whole (a "
        "killed or failed run?); load model-last of that run (saved atomically) or train again"
    )


def verify(root: str | os.PathLike) -> None:
    """Check the checkpoint directory ``root`` against its manifest: every listed file is
    there with its size in bytes and SHA-256.  Unlisted extra files are allowed.

    Raises:
        IncompleteCheckpointError (a ValueError): the manifest is missing or unreadable, or a
            file is missing, has another size ("incomplete") or other bytes ("does not
            match"); one line naming ``root`` and the file.
    """
    root = Path(root)
    manifest = root / MANIFEST_FILE
    if not manifest.is_file():
        raise _refuse(root, f"is incomplete: {MANIFEST_FILE} is missing")
    try:
        listed = json.loads(manifest.read_text(encoding="utf8"))["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise _refuse(root, f"is incomplete: {MANIFEST_FILE} is unreadable ({err})") from err
    for rel, entry in listed.items():
        path = root / rel
        if not path.is_file():
            raise _refuse(root, f"is incomplete: {rel} is missing")
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise _refuse(
                root, f"is incomplete: {rel} has {size} bytes, the manifest {entry['bytes']}"
            )
        if sha256(path) != entry["sha256"]:
            raise _refuse(root, f"does not match its manifest: {rel} has other bytes")


def check_component_dir(component_dir: str | os.PathLike) -> None:
    """Before a component is read from ``component_dir``: if its ``cfg.json`` comes from a
    checkpoint (``"checkpoint": true``), :func:`verify` the pipeline directory around it.  A
    missing or unreadable ``cfg.json`` is left to the component's own reader.

    Raises:
        IncompleteCheckpointError: see :func:`verify`.
    """
    cfg = Path(component_dir) / CFG_FILE
    try:
        flagged = json.loads(cfg.read_text(encoding="utf8")).get("checkpoint") is True
    except (OSError, ValueError, AttributeError):
        return
    if flagged:
        verify(Path(component_dir).parent)


# -- one writer per directory, and swapping a directory in -----------------------------------
def _lock(directory: Path) -> None:
    """Hold an exclusive lock on ``directory/.spacy-infnet.lock`` until this process ends (a
    no-op where ``flock`` is unavailable or unsupported by the file system).

    Raises:
        RuntimeError: another process holds it.
    """
    directory = directory.resolve()
    if fcntl is None or directory in _locks:
        return
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(
            f"infnet_tagger: another process saves checkpoints into {directory}; two runs with "
            "one --output overwrite each other's model-last and model-best: give each its own"
        ) from None
    except OSError:  # a file system without locks
        os.close(fd)
        return
    _locks[directory] = fd


def _sibling(path: Path, kind: str) -> Path:
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")


def _siblings(path: Path) -> list[Path]:
    return [p for kind in (PARTIAL, OLD) for p in path.parent.glob(f".{path.name}.{kind}-*")]


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    except OSError as err:  # some file systems cannot fsync a directory
        if not (directory and err.errno in (errno.EINVAL, errno.EBADF)):
            raise
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Flush every file, then every directory (deepest first) under ``root`` to disk."""
    paths = sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True)
    for p in paths:
        if p.is_file():
            _fsync(p)
    for p in [p for p in paths if p.is_dir()] + [root]:
        _fsync(p, directory=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange the directories ``a`` and ``b`` (Linux ``renameat2`` with
    ``RENAME_EXCHANGE``); False where that is unavailable (other systems, old C libraries,
    file systems that refuse it).

    Raises:
        OSError: the exchange failed for another reason.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, f"cannot exchange {a} and {b}: {os.strerror(err)}")


def _swap_in(new: Path, path: Path) -> None:
    """Put the complete directory ``new`` at ``path`` and remove what was there."""
    if not path.exists():
        os.rename(new, path)
    elif _exchange(new, path):
        shutil.rmtree(new)  # the previous checkpoint, now under the temporary name
    else:
        old = _sibling(path, OLD)
        os.rename(path, old)
        try:
            os.rename(new, path)  # a kill just before this leaves `new` complete beside `path`
        except BaseException:
            os.rename(old, path)
            raise
        shutil.rmtree(old)
    _fsync(path.parent, directory=True)

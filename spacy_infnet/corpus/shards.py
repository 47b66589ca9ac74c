"""The output directory of ``tag``: shards, their sidecars, the fingerprint, the lock.

Layout of ``OUTPUT_DIR``::

    fingerprint.json          what was tagged, with what (written first; see check_fingerprint)
    part-00000.meta.json      sidecar of shard 0: counts, bad records, the shard's size and sha256
    part-00000.jsonl          shard 0: records [0, S) (or part-00000.spacy, a DocBin)
    part-00001.meta.json
    part-00001.jsonl          records [S, 2S)
    ...
    .tag.lock                 locked (lockf) while a run writes

Every file is written atomically (:func:`spacy_infnet.fileio.atomic_write`: a temporary file
``.NAME.XXXX.tmp`` in the directory, then a rename), the sidecar before its shard.  A shard is
finished when its sidecar names it and its file has the size and SHA-256 the sidecar records
(:func:`finished_shard`); anything else (no shard, no sidecar, a file of another size or
checksum) is written again.  Temporary files left by a killed run are removed by the next run,
under the lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..fileio import atomic_write

FINGERPRINT = "fingerprint.json"
LOCK = ".tag.lock"
SUFFIX = {"jsonl": ".jsonl", "docbin": ".spacy"}
OUTPUT_FORMATS = tuple(SUFFIX)


def shard_name(k: int, output_format: str) -> str:
    """``part-00007.jsonl`` (or ``.spacy``)."""
    return f"part-{k:05d}{SUFFIX[output_format]}"


def sidecar_name(k: int) -> str:
    """``part-00007.meta.json``."""
    return f"part-{k:05d}.meta.json"


def write_json(path: Path, value: Any) -> None:
    """``value`` as indented UTF-8 JSON, atomically."""
    atomic_write(path, (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def read_json(path: Path) -> Any:
    """A JSON file, or None if it is missing or not valid JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_shard(output_dir: Path, k: int, output_format: str, data: bytes, meta: dict) -> None:
    """Write shard ``k``: first its sidecar (``meta`` plus the shard's file name, size and
    SHA-256), then the shard's bytes, each atomically."""
    name = shard_name(k, output_format)
    sidecar = {
        "shard": k,
        "file": name,
        **meta,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    write_json(output_dir / sidecar_name(k), sidecar)
    atomic_write(output_dir / name, data)


def finished_shard(output_dir: Path, k: int, output_format: str, records: int) -> dict | None:
    """The sidecar of shard ``k`` if the shard is finished: the sidecar is valid JSON naming the
    shard and ``records`` records, and the shard file has the recorded size and SHA-256; else
    None (the shard must be written again)."""
    meta = read_json(output_dir / sidecar_name(k))
    name = shard_name(k, output_format)
    if not isinstance(meta, dict) or meta.get("file") != name or meta.get("records") != records:
        return None
    path = output_dir / name
    try:
        if path.stat().st_size != meta.get("bytes"):
            return None
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    except OSError:
        return None
    return meta if digest.hexdigest() == meta.get("sha256") else None


def check_fingerprint(output_dir: Path, fingerprint: dict) -> bool:
    """Compare ``fingerprint`` with the one in ``output_dir``; True if the directory has none
    yet (write it then).

    Raises:
        ValueError: the directory holds the output of other settings (names what differs), or
            shards without a fingerprint (not written by ``tag``, or damaged).
    """
    path = output_dir / FINGERPRINT
    old = read_json(path)
    if old is None:
        if path.exists() or any(output_dir.glob("part-*")):
            raise ValueError(
                f"{output_dir} holds shards but no valid {FINGERPRINT}: it was not written by "
                "tag (or is damaged); write to an empty or new directory"
            )
        return True
    if old == fingerprint:
        return False
    keys = [k for k in sorted(set(old) | set(fingerprint)) if old.get(k) != fingerprint.get(k)]
    changes = "; ".join(f"{k}: {old.get(k)!r} then, {fingerprint.get(k)!r} now" for k in keys)
    raise ValueError(
        f"{output_dir} holds the output of other settings ({changes}): rerun with the same "
        "settings to resume, or write to another directory"
    )


@contextlib.contextmanager
def locked(output_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``output_dir`` while the block runs: a POSIX record lock
    (``lockf``) of :data:`LOCK`, which the system releases when the process ends, also by
    SIGKILL, and which worker processes do not inherit (those of ``tag -n N`` die with the
    main process; see :func:`.tag._init_worker`).  Where ``fcntl`` does not exist (Windows)
    nothing is locked.

    Raises:
        ValueError: another process holds the lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(output_dir / LOCK, "a+b") as fh:
        try:
            fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ValueError(f"another tag run is writing to {output_dir}") from None
        yield


def remove_stale_temporaries(output_dir: Path) -> int:
    """Remove the temporary files a killed run left (``.part-*.tmp``, ``.fingerprint.json.*``);
    call it under :func:`lock`.  Returns how many were removed."""
    n = 0
    for path in output_dir.iterdir():
        name = path.name
        if name.endswith(".tmp") and name.startswith((".part-", f".{FINGERPRINT}.")):
            path.unlink(missing_ok=True)
            n += 1
    return n


def shard_files(output_dir: str | os.PathLike, output_format: str = "jsonl") -> list[Path]:
    """The shard files of ``output_dir``, in order."""
    return sorted(Path(output_dir).glob(f"part-[0-9]*{SUFFIX[output_format]}"))


def iter_output(output_dir: str | os.PathLike) -> Iterator[dict]:
    """The JSON records of a JSONL output directory, in input order."""
    for path in shard_files(output_dir, "jsonl"):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                yield json.loads(line)


def bad_records(output_dir: str | os.PathLike) -> list[dict]:
    """The bad records listed by the sidecars of ``output_dir``
    (``{"id", "source", "reason"}``), in input order."""
    out = []
    for path in sorted(Path(output_dir).glob("part-[0-9]*.meta.json")):
        out.extend((read_json(path) or {}).get("bad", []))
    return out

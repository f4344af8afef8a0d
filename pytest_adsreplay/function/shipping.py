"""FMU and shared-library files of the function under test, shipped to workers.

The session describes its function file in every aeb job (``ctx["function_file"]``:
sha256, file name, size) and, with a real Redis, uploads the file once under a
content-addressed key with a TTL (files above :data:`MAX_BYTES` are not uploaded).

A worker runs only a file with the session's sha256. It looks, in order, at the
session's path, in the folders given by ``adsreplay worker --functions DIR`` and, only
with ``--trust-shipped-functions`` (running bytes that came through Redis is running
code delivered through Redis), in its store of fetched files and then in the broker:
the upload is verified against the sha256 before it is kept and run. Without a copy,
the recording errors saying which flag to use.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_adsreplay.errors import FunctionLoadError
from pytest_adsreplay.function.fingerprint import is_file_spec
from pytest_adsreplay.hashing import memo_sha256

#: Largest function file the session uploads to the broker.
MAX_BYTES = 256 * 1024**2
KEY_PREFIX = "adsreplay:function-file:"


@dataclass(frozen=True)
class WorkerFunctions:
    """Where this worker process may take function files from."""

    folders: tuple[str, ...] = ()  # --functions DIR (searched by sha256)
    trust_shipped: bool = False  # --trust-shipped-functions
    store: str | None = None  # where fetched files are kept (None: the user cache folder)

    def store_folder(self) -> Path:
        if self.store:
            return Path(self.store)
        if self.folders:
            return Path(self.folders[0]) / ".adsreplay-shipped"
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
        return Path(cache) / "adsreplay" / "functions"


WORKER = WorkerFunctions()


def configure(folders: Sequence[str] = (), *, trust_shipped: bool = False) -> None:
    """Set this worker process's sources of function files (``adsreplay worker``)."""
    global WORKER
    _FOUND.clear()
    WORKER = WorkerFunctions(
        folders=tuple(str(Path(f).resolve()) for f in folders), trust_shipped=trust_shipped
    )


def key(sha256: str) -> str:
    return KEY_PREFIX + sha256


def describe(spec: str | None) -> dict[str, Any] | None:
    """``{"sha256", "name", "size"}`` of a function file (None: not a file, or not here)."""
    if not spec or not is_file_spec(spec):
        return None
    path = Path(spec)
    try:
        return {"sha256": memo_sha256(path), "name": path.name, "size": path.stat().st_size}
    except OSError:
        return None


def upload(conn: Any, spec: str | None, ttl: int) -> dict[str, Any] | None:
    """Describe the function file and put it into the broker under its sha256 with a TTL
    of ``ttl`` s (``"key"`` in the result); a file above :data:`MAX_BYTES` is described
    with ``"too_large": True`` and not uploaded."""
    ref = describe(spec)
    if ref is None or spec is None:
        return ref
    if int(ref["size"]) > MAX_BYTES:
        return {**ref, "too_large": True}
    name = key(str(ref["sha256"]))
    # already there (another session): keep it; workers verify what they fetch anyway
    if conn.strlen(name) != int(ref["size"]) or not conn.expire(name, ttl):
        conn.set(name, Path(spec).read_bytes(), ex=ttl)
    return {**ref, "key": name}


def localize(ctx: Mapping[str, Any], conn: Any) -> Mapping[str, Any]:
    """``ctx`` with ``"function"`` pointing at a local file with the session's sha256.

    Unchanged when the session's path has that file, or when nothing is found while a
    file exists at that path (the build check then names the difference);
    FunctionLoadError when the file is nowhere here.
    """
    from pytest_adsreplay.queue.trust import may_load_path

    ref = ctx.get("function_file")
    spec = str(ctx.get("function") or "")
    if not is_file_spec(spec):
        return ctx
    if not isinstance(ref, Mapping):
        if may_load_path(spec, None):
            return ctx
        raise FunctionLoadError(
            f"the job names the function file {spec[:200]} without its sha256; this "
            "worker loads only the path it was started for",
            hint="start the worker with --function PATH for this file",
        )
    sha, name = str(ref["sha256"]), str(ref.get("name") or Path(spec).name)
    own_path = may_load_path(spec, sha)
    if own_path and _has(Path(spec), sha):
        return ctx
    found = _search(sha, name, int(ref.get("size") or -1))
    if found is None and WORKER.trust_shipped:
        found = _fetch(ref, conn, sha, name)
    if found is not None:
        return {**ctx, "function": str(found)}
    if own_path and Path(spec).exists():
        return ctx
    raise FunctionLoadError(_missing_text(spec, sha, name), hint=_missing_hint(ref))


def _has(path: Path, sha: str) -> bool:
    try:
        return path.is_file() and memo_sha256(path) == sha
    except OSError:
        return False


#: sha256 -> the file found for it last (checked again before each use)
_FOUND: dict[str, Path] = {}


def _search(sha: str, name: str, size: int) -> Path | None:
    """A file with ``sha`` in the --functions folders (or the store, when trusted)."""
    known = _FOUND.get(sha)
    if known is not None and _has(known, sha):
        return known
    found = _walk(sha, name, size)
    if found is not None:
        _FOUND[sha] = found
    return found


def _walk(sha: str, name: str, size: int) -> Path | None:
    suffix = Path(name).suffix.lower()
    folders = [Path(f) for f in WORKER.folders]
    if WORKER.trust_shipped:
        stored = WORKER.store_folder() / sha / name
        if _has(stored, sha):
            return stored
    for folder in folders:
        candidates = sorted(p for p in folder.rglob(f"*{suffix}") if p.is_file())
        for path in candidates:
            try:
                if size >= 0 and path.stat().st_size != size:
                    continue
            except OSError:
                continue
            if _has(path, sha):
                return path
    return None


def _fetch(ref: Mapping[str, Any], conn: Any, sha: str, name: str) -> Path:
    """The session's upload, verified and kept in the store."""
    if ref.get("too_large"):
        raise FunctionLoadError(
            f"{name} (sha256 {sha[:12]}) is {_mb(int(ref['size']))}, more than the "
            f"{_mb(MAX_BYTES)} the session ships through the broker, and this worker has no "
            "copy",
            hint="put a copy on the worker's host and start it with --functions DIR",
        )
    data = conn.get(str(ref["key"])) if ref.get("key") else None
    if data is None:
        raise FunctionLoadError(
            f"{name} (sha256 {sha[:12]}) is not in the broker (its upload expired, or the "
            "session runs embedded) and this worker has no copy",
            hint="start the session again (it uploads the file), or start the worker with "
            "--functions DIR holding a copy",
        )
    got = hashlib.sha256(data).hexdigest()
    if got != sha:
        raise FunctionLoadError(
            f"the copy of {name} fetched from the broker has sha256 {got[:12]}, not the "
            f"session's {sha[:12]}: it was tampered with or corrupted, and is not run",
            hint="check who can write to this Redis; start the session again to upload the "
            "file again",
        )
    return _keep(WORKER.store_folder() / sha, name, data)


def _keep(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = folder / name
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".fetch-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _missing_text(spec: str, sha: str, name: str) -> str:
    where = f"not at {spec}"
    if WORKER.folders:
        where += f" nor in --functions {', '.join(WORKER.folders)}"
    return f"the function file {name} (sha256 {sha[:12]}) is {where} on this worker"


def _missing_hint(ref: Mapping[str, Any]) -> str:
    if WORKER.trust_shipped or ref.get("too_large"):
        return "start the worker with --functions DIR (a folder holding a copy of the file)"
    return (
        "start the worker with --functions DIR (a folder holding a copy of the file), or "
        "with --trust-shipped-functions to fetch the file the session uploads to the broker"
    )


def _mb(n: int) -> str:
    return f"{n / 1024**2:.0f} MB"

"""The local download cache of recordings in object storage, shared by the workers of
one host.

An entry is the object's bytes in one file named by a digest of (endpoint, bucket, key,
ETag, size): an ETag is an opaque version token, so a replaced object is a new entry
and an object without an ETag is never cached. A download goes to a temporary file in
the cache folder and is renamed into place only when complete and checked, so a reader
never sees a partial entry; a per-entry lock file (``flock``) makes concurrent workers
of one host download an object once. Using an entry touches it; after each download the
oldest entries are evicted until the folder holds at most ``cache_max`` bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pytest_adsreplay.storage import client
from pytest_adsreplay.storage.objects import RemoteObject, split_url

LOG = logging.getLogger("pytest_adsreplay.storage")
_LOCKS = ".locks"
_STALE = 3600.0  # s: a temporary file this old was left by a killed download


@dataclass(frozen=True)
class Fetched:
    """A local copy of an object: its path, the bytes downloaded for it now (0 on a
    cache hit) and whether it is a temporary file the caller deletes."""

    path: Path
    downloaded: int
    temporary: bool


def entry_name(obj: RemoteObject) -> str:
    """The cache file name of ``obj`` (its suffix kept, so readers see ``.mf4``)."""
    protocol, bucket, key = split_url(obj.url)
    ident = [obj.store.endpoint or "", protocol, bucket, key, obj.etag, obj.size]
    digest = hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:40]
    return digest + Path(key).suffix.lower()


def fetch(obj: RemoteObject) -> Fetched:
    """A local copy of ``obj``: the cache entry (downloaded first if missing), or a
    temporary file when the object has no ETag or no cache folder is set."""
    if not obj.etag or not obj.store.cache_dir:
        return _temporary(obj)
    root = Path(obj.store.cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    entry = root / entry_name(obj)
    if _usable(entry, obj.size):
        return Fetched(entry, 0, False)
    with _locked(root, entry.name):
        if _usable(entry, obj.size):  # another worker of this host downloaded it
            return Fetched(entry, 0, False)
        n = _download_into(obj, root, entry)
    evict(root, obj.store.cache_max, keep=entry)
    return Fetched(entry, n, False)


def _usable(entry: Path, size: int) -> bool:
    try:
        if entry.stat().st_size != size:
            return False
        os.utime(entry)
    except OSError:
        return False
    return True


def _download_into(obj: RemoteObject, root: Path, entry: Path) -> int:
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".tmp-", suffix=entry.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            n = client.download(obj.url, obj.etag, obj.size, obj.store, fh)
        os.replace(tmp, entry)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    LOG.info("adsreplay: downloaded %s (%d bytes) into %s", client.mask(obj.url), n, entry)
    return n


def _temporary(obj: RemoteObject) -> Fetched:
    suffix = Path(split_url(obj.url)[2]).suffix.lower()
    fd, tmp = tempfile.mkstemp(prefix="adsreplay-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            n = client.download(obj.url, obj.etag, obj.size, obj.store, fh)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    LOG.info("adsreplay: downloaded %s (%d bytes, not cached)", client.mask(obj.url), n)
    return Fetched(Path(tmp), n, True)


@contextlib.contextmanager
def _locked(root: Path, name: str) -> Iterator[None]:
    """Hold this host's lock of one entry (no lock where ``fcntl`` is missing: two
    workers may then both download, and the rename keeps one whole copy)."""
    locks = root / _LOCKS
    locks.mkdir(exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(locks / name, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def entries(root: Path) -> list[tuple[float, int, Path]]:
    """(last use, bytes, path) of every complete entry, oldest first."""
    out = []
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith(".") or not p.is_file():
                continue
            with contextlib.suppress(OSError):
                st = p.stat()
                out.append((st.st_mtime, st.st_size, p))
    return sorted(out)


def evict(root: Path, max_bytes: int, keep: Path | None = None) -> int:
    """Delete the oldest entries (never ``keep``) until at most ``max_bytes`` remain, and
    temporary files older than an hour; returns the bytes removed."""
    stale = time.time() - _STALE
    for p in root.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if p.stat().st_mtime < stale:
                p.unlink()
    found = entries(root)
    total = sum(size for _, size, _ in found)
    removed = 0
    for _, size, path in found:
        if total <= max_bytes:
            break
        if path == keep:
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            with contextlib.suppress(OSError):
                (root / _LOCKS / path.name).unlink()
            total -= size
            removed += size
    return removed


def usage(root: Path) -> tuple[int, int]:
    """(entries, bytes) of the download cache at ``root`` (0, 0 when there is none)."""
    found = entries(root)
    return len(found), sum(size for _, size, _ in found)


def clear(root: Path) -> tuple[int, int]:
    """Delete every entry, lock file and temporary file; returns what the entries held."""
    held = usage(root)
    if root.is_dir():
        for p in [*root.iterdir(), *(root / _LOCKS).glob("*")]:
            if p.is_file():
                with contextlib.suppress(OSError):
                    p.unlink()
        with contextlib.suppress(OSError):
            (root / _LOCKS).rmdir()
    return held


def prune(root: Path, max_bytes: int) -> tuple[int, int]:
    """Evict the oldest entries until at most ``max_bytes`` remain (and temporary files
    of killed downloads); returns (entries, bytes) removed."""
    if not root.is_dir():
        return 0, 0
    before = len(entries(root))
    removed = evict(root, max_bytes)
    return before - len(entries(root)), removed

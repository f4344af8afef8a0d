"""The decoded-signal cache: canonical signals of a read stage, kept on local disk.

Reading an MF4 file, resampling and the data-quality gate give the same signals as long
as nothing they depend on changes. An entry is keyed by all of it:

- the recording's content hash (sha256 of the file, computed by the session),
- the channel map's fingerprint (normalized map plus the contents of its DBC files),
- the cycle time of the grid,
- the data-quality gate's settings (``max_gap``, the sidecar's ``nominal_speed`` and
  target expectation): only recordings that *passed* the gate are stored, so a hit
  skips the gate too (an invalid recording is read and judged again on every run),
- :data:`FORMAT` and the plugin version (a new release never reads an older entry).

An entry is one uncompressed ``.npz`` file (``t`` and one array per signal, float64,
plus a small JSON document) written to a temporary file and renamed into place, so
workers on one host can share a directory and write concurrently. It is loaded with
``allow_pickle=False``; an entry that is unreadable, truncated or for another key is a
miss, deleted and written again. Nothing is ever evicted by the plugin: see
``adsreplay cache info|clear|prune``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Bump when the entry layout or the meaning of the cached signals changes.
FORMAT = 1
DEFAULT_DIR = ".adsreplay/cache"
SUFFIX = ".npz"
_META = "__meta__"
_PREFIX = "v."


def key(
    *,
    sha256: str,
    channel_map: str,
    cycle_time: float,
    max_gap: float,
    nominal_speed: float | None,
    expect_target: str | None,
) -> str:
    """Hex key of one read result (see the module docstring for what goes in)."""
    from . import __version__

    parts = {
        "format": FORMAT,
        "plugin": __version__,
        "sha256": sha256,
        "channel_map": channel_map,
        "cycle_time": float(cycle_time).hex(),
        "max_gap": float(max_gap).hex(),
        "nominal_speed": None if nominal_speed is None else float(nominal_speed).hex(),
        "expect_target": expect_target,
    }
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def entry_path(cache_dir: str | Path, entry_key: str) -> Path:
    """Where the entry of ``entry_key`` lives: ``<dir>/<2 hex>/<key>.npz``."""
    return Path(cache_dir) / entry_key[:2] / f"{entry_key}{SUFFIX}"


@dataclass
class Entry:
    """The cached part of a read: the grid, the signals on it and where each came from."""

    t: np.ndarray
    values: dict[str, np.ndarray]
    sources: dict[str, str]


def load(cache_dir: str | Path, entry_key: str) -> Entry | None:
    """The entry of ``entry_key``, or None (missing, or corrupt: then it is deleted)."""
    path = entry_path(cache_dir, entry_key)
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            meta = json.loads(bytes(npz[_META]).decode("utf-8"))
            if meta.get("key") != entry_key or meta.get("format") != FORMAT:
                raise ValueError("entry of another key")
            t = _float_vector(npz["t"])
            values = {}
            for name in meta["names"]:
                arr = _float_vector(npz[_PREFIX + name])
                if arr.shape != t.shape:
                    raise ValueError(f"{name} has {arr.size} samples, t has {t.size}")
                values[name] = arr
            sources = {str(k): str(v) for k, v in dict(meta["sources"]).items()}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # last use, for ``adsreplay cache prune``
    return Entry(t, values, sources)


def _float_vector(arr: np.ndarray) -> np.ndarray:
    if arr.dtype != np.float64 or arr.ndim != 1:
        raise ValueError(f"expected a float64 vector, got {arr.dtype} {arr.shape}")
    return arr


def store(
    cache_dir: str | Path,
    entry_key: str,
    t: np.ndarray,
    values: Mapping[str, np.ndarray],
    sources: Mapping[str, str],
) -> bool:
    """Write an entry atomically (temporary file + rename); False when the directory is
    not writable or full (the cache is an optimization, a failed write is no error)."""
    path = entry_path(cache_dir, entry_key)
    meta = {"key": entry_key, "format": FORMAT, "names": list(values),
            "sources": dict(sources)}  # fmt: skip
    arrays = {_PREFIX + k: np.ascontiguousarray(v, dtype=np.float64) for k, v in values.items()}
    arrays["t"] = np.ascontiguousarray(t, dtype=np.float64)
    arrays[_META] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=SUFFIX)
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, path)
        tmp = None
        return True
    except OSError:
        return False
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


# --------------------------------------------------------------------- maintenance


@dataclass(frozen=True)
class Stats:
    """What a cache directory holds."""

    path: Path
    entries: int
    size: int  # bytes

    def text(self) -> str:
        return f"{self.path}: {self.entries} entries, {self.size / 1e6:.1f} MB"


def _entries(cache_dir: Path) -> Iterator[Path]:
    if not cache_dir.is_dir():
        return
    for sub in sorted(cache_dir.iterdir()):
        if sub.is_dir() and len(sub.name) == 2:
            yield from sorted(p for p in sub.iterdir() if p.name.endswith(SUFFIX))


def stats(cache_dir: str | Path) -> Stats:
    cache_dir = Path(cache_dir)
    entries = size = 0
    for p in _entries(cache_dir):
        with contextlib.suppress(OSError):
            size += p.stat().st_size
            entries += 1
    return Stats(cache_dir, entries, size)


def clear(cache_dir: str | Path) -> Stats:
    """Delete every entry (and stale temporary files); returns what was removed."""
    cache_dir = Path(cache_dir)
    removed = stats(cache_dir)
    if not cache_dir.is_dir():
        return removed
    for sub in cache_dir.iterdir():
        if not (sub.is_dir() and len(sub.name) == 2):
            continue
        for p in sub.iterdir():
            if p.name.endswith(SUFFIX):
                with contextlib.suppress(OSError):
                    p.unlink()
        with contextlib.suppress(OSError):
            sub.rmdir()
    return removed


def prune(cache_dir: str | Path, max_bytes: int) -> Stats:
    """Delete the least recently used entries until at most ``max_bytes`` remain; also
    temporary files older than an hour (left by killed writers). Returns what went."""
    cache_dir = Path(cache_dir)
    found: list[tuple[float, int, Path]] = []
    stale = time.time() - 3600
    for sub in cache_dir.iterdir() if cache_dir.is_dir() else ():
        if not (sub.is_dir() and len(sub.name) == 2):
            continue
        for p in sub.iterdir():
            with contextlib.suppress(OSError):
                st = p.stat()
                if p.name.startswith(".tmp-"):
                    if st.st_mtime < stale:
                        p.unlink()
                elif p.name.endswith(SUFFIX):
                    found.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in found)
    entries = size_removed = 0
    for _, size, p in sorted(found):
        if total <= max_bytes:
            break
        with contextlib.suppress(OSError):
            p.unlink()
            total -= size
            entries += 1
            size_removed += size
    return Stats(cache_dir, entries, size_removed)


def parse_size(text: str) -> int:
    """Bytes of ``500MB``, ``2GB``, ``1.5G``, ``0`` … (decimal units); ValueError if bad."""
    units = {"": 1, "B": 1, "K": 10**3, "KB": 10**3, "M": 10**6, "MB": 10**6,
             "G": 10**9, "GB": 10**9, "T": 10**12, "TB": 10**12}  # fmt: skip
    s = text.strip().upper()
    num = s.rstrip("KMGTB")
    unit = s[len(num) :]
    if unit not in units:
        raise ValueError(f"unknown size unit in {text!r} (use KB, MB, GB)")
    try:
        value = float(num)
    except ValueError:
        raise ValueError(f"{text!r} is not a size like 500MB or 2GB") from None
    if not value >= 0:
        raise ValueError(f"{text!r} must be >= 0")
    return int(value * units[unit])

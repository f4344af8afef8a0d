"""The decoded-signal cache: canonical signals of a read stage, kept on local disk.

Reading an MF4 file, resampling and the data-quality gate give the same signals as long
as nothing they depend on changes. An entry is keyed by all of it:

- the recording's content hash (sha256 of the file; :func:`content_hash` remembers it
  per file path and ``stat`` signature, so a warm run does not read the file at all),
- the channel map's fingerprint (normalized map plus the contents of its DBC files),
- the cycle time of the grid,
- the data-quality gate's settings (``max_gap``, the sidecar's ``nominal_speed`` and
  target expectation): only recordings that *passed* the gate are stored, so a hit
  skips the gate too (an invalid recording is read and judged again on every run),
- :data:`FORMAT` and the plugin version (a new release never reads an older entry).

An entry is two files named by the key: ``<key>.npy``, one float64 array of ``t`` and
then each signal as rows (a plain ``.npy``: loaded with ``allow_pickle=False``, one read,
no copies), and ``<key>.json`` with the row names, the sources and the CRC-32 of the
data (a flipped or overwritten byte is caught when the entry is loaded: a damaged entry
never hands a stage wrong signals). Each is written to a temporary file and renamed
into place, the ``.npy`` first, so workers on one host can share a directory and write
concurrently (a key's content is fully determined by the key, so two writers write the
same bytes). An entry that is incomplete, unreadable, truncated, damaged or for another
key is a miss, deleted and written again. The plugin never
evicts: see ``adsreplay cache info|clear|prune``.

Hash memos live in ``<dir>/hashes/``: one small JSON file per recording path holding the
file's device, inode, size, mtime and ctime (ns) and its sha256. Any write to a file
changes its ctime on POSIX file systems (no user-space call can set it back), and a copy
or a checkout is a new inode, so a changed file never reuses an old hash. As in git's
"racy clean" rule a hash is only remembered when the file was last changed more than
:data:`_RACY` seconds before it was read, and when its ``stat`` did not change while it
was being hashed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from pytest_adsreplay import hashing

#: Bump when the entry layout or the meaning of the cached signals changes.
FORMAT = 3
DEFAULT_DIR = ".adsreplay/cache"
DATA, META = ".npy", ".json"
_DTYPE = np.dtype("<f8")
_STALE = 3600.0  # s: a temporary or half-written file this old was left by a killed writer
HASHES = "hashes"
_RACY = 3.0  # s: a file changed this recently is hashed again next time (> FAT's 2 s)


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
    from pytest_adsreplay import __version__

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


def content_hash(path: str | Path, cache_dir: str | Path | None) -> str:
    """sha256 of the file at ``path``, remembered in ``cache_dir`` by its ``stat``
    signature (see the module docstring); OSError when the file cannot be read.

    The signature is taken with ``fstat`` on the opened file: opening revalidates a
    network file system's cached attributes (NFS close-to-open), where a plain ``stat``
    may answer from a cache for up to a minute.
    """

    path = os.path.abspath(path)
    memo = (
        Path(cache_dir) / HASHES / (hashlib.sha256(path.encode("utf-8")).hexdigest() + META)
        if cache_dir
        else None
    )
    with open(path, "rb") as fh:
        before = _signature(os.fstat(fh.fileno()))
        if memo is not None:
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                known = json.loads(memo.read_text(encoding="utf-8"))
                if known["path"] == path and known["stat"] == before:
                    return str(known["sha256"])
        digest = hashing.stream_sha256(fh)
        # remembered only if the file had settled before and did not change while hashed
        remember = (
            memo is not None
            and time.time_ns() - max(before[3], before[4]) > _RACY * 1e9
            and _signature(os.fstat(fh.fileno())) == before
        )
    if memo is not None and remember:
        record = {"path": path, "stat": before, "sha256": digest}
        with contextlib.suppress(OSError):
            memo.parent.mkdir(parents=True, exist_ok=True)
            _atomic(memo, lambda out: out.write(json.dumps(record).encode("utf-8")))
    return digest


def _signature(st: os.stat_result) -> list[int]:
    """``hashing.signature`` as the JSON list the memo files hold."""
    return list(hashing.signature(st))


def is_key(text: object) -> bool:
    """True for a well-formed entry key (64 lowercase hex digits): keys read back from
    Redis name files, so nothing else may reach :func:`entry_path`."""
    return isinstance(text, str) and len(text) == 64 and all(c in _HEX for c in text)


_HEX = frozenset("0123456789abcdef")


def entry_path(cache_dir: str | Path, entry_key: str) -> Path:
    """The entry's data file ``<dir>/<2 hex>/<key>.npy`` (its metadata: ``.json``)."""
    return Path(cache_dir) / entry_key[:2] / f"{entry_key}{DATA}"


@dataclass
class Entry:
    """The cached part of a read: the grid, the signals on it and where each came from."""

    t: np.ndarray
    values: dict[str, np.ndarray]
    sources: dict[str, str]


def load(cache_dir: str | Path, entry_key: str) -> Entry | None:
    """The entry of ``entry_key``, or None (missing, or broken: then it is deleted)."""
    data = entry_path(cache_dir, entry_key)
    meta_path = data.with_suffix(META)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        names = [str(n) for n in meta["names"]]
        if meta.get("key") != entry_key or meta.get("format") != FORMAT:
            raise ValueError("entry of another key")
        table = np.load(data, allow_pickle=False)
        if table.dtype != _DTYPE or table.shape != (len(names) + 1, int(meta["samples"])):
            raise ValueError(f"unexpected {table.dtype} {table.shape}")
        sources = {str(k): str(v) for k, v in dict(meta["sources"]).items()}
        if _crc(table) != meta["crc32"]:
            raise ValueError("data does not match its checksum")
    except FileNotFoundError:  # no entry, or half of one (``prune`` removes those)
        return None
    except (OSError, ValueError, KeyError, TypeError, EOFError):
        _delete(data)
        return None
    with contextlib.suppress(OSError):
        os.utime(meta_path)  # last use, for ``adsreplay cache prune``
    return Entry(table[0], dict(zip(names, table[1:], strict=True)), sources)


def check(cache_dir: str | Path, entry_key: str) -> dict[str, Any] | None:
    """The metadata of a complete entry (``names``, ``sources``, ``samples``) without
    loading its data, or None (missing, or broken: then it is deleted). The data file
    must have exactly the size its metadata implies; :func:`load` checks the rest."""
    data = entry_path(cache_dir, entry_key)
    try:
        meta = json.loads(data.with_suffix(META).read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise TypeError("metadata is not an object")
        if meta.get("key") != entry_key or meta.get("format") != FORMAT:
            raise ValueError("entry of another key")
        rows, samples = len(meta["names"]) + 1, int(meta["samples"])
        if data.stat().st_size != _header_size(rows, samples) + _DTYPE.itemsize * rows * samples:
            raise ValueError("data file of another size")
        meta["sources"] = {str(k): str(v) for k, v in dict(meta["sources"]).items()}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        _delete(data)
        return None
    return dict(meta)


def _header_size(rows: int, samples: int) -> int:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, _header(rows, samples))
    return buf.tell()


def _header(rows: int, samples: int) -> dict[str, Any]:
    return {
        "descr": np.lib.format.dtype_to_descr(_DTYPE),
        "fortran_order": False,
        "shape": (rows, samples),
    }


def _delete(data: Path) -> None:
    for p in (data, data.with_suffix(META)):
        with contextlib.suppress(OSError):
            p.unlink()


def store(
    cache_dir: str | Path,
    entry_key: str,
    t: np.ndarray,
    values: Mapping[str, np.ndarray],
    sources: Mapping[str, str],
) -> bool:
    """Write an entry atomically (temporary files + rename); False when the directory is
    not writable or full (the cache is an optimization, a failed write is no error).

    The rows go to the file one by one, so a long recording is never copied into one
    block in memory.
    """
    data = entry_path(cache_dir, entry_key)
    rows: list[Any] = [np.ascontiguousarray(t, dtype=_DTYPE).reshape(-1)]
    rows += [np.ascontiguousarray(v, dtype=_DTYPE).reshape(-1) for v in values.values()]
    if any(r.shape != rows[0].shape for r in rows):
        raise ValueError("every signal must have one sample per grid point")
    crc = 0
    for row in rows:
        crc = _crc(row, crc)
    meta = {
        "key": entry_key,
        "format": FORMAT,
        "names": list(values),
        "sources": dict(sources),
        "samples": int(rows[0].size),
        "crc32": crc,
    }
    header = _header(len(rows), rows[0].size)
    try:
        data.parent.mkdir(parents=True, exist_ok=True)

        def write_data(fh: IO[bytes]) -> None:
            np.lib.format.write_array_header_1_0(fh, header)
            for row in rows:
                fh.write(memoryview(row).cast("B"))

        _atomic(data, write_data)
        _atomic(data.with_suffix(META), lambda fh: fh.write(json.dumps(meta).encode("utf-8")))
        return True
    except OSError:
        return False


def _crc(data: np.ndarray, start: int = 0) -> int:
    """CRC-32 of a C-contiguous array's bytes (about 2 ms for a 10-minute entry)."""
    contiguous: Any = np.ascontiguousarray(data)
    return zlib.crc32(memoryview(contiguous).cast("B"), start)


def _atomic(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------- maintenance


@dataclass(frozen=True)
class Stats:
    """What a cache directory holds (or what an operation removed)."""

    path: Path
    entries: int
    size: int  # bytes

    def text(self) -> str:
        return f"{self.path}: {self.entries} entries, {self.size / 1e6:.1f} MB"


def _buckets(cache_dir: Path) -> Iterator[Path]:
    if cache_dir.is_dir():
        for sub in sorted(cache_dir.iterdir()):
            if sub.is_dir() and len(sub.name) == 2:
                yield sub


def _scan(cache_dir: Path) -> list[tuple[float, int, Path]]:
    """(last use, bytes, data path) of every complete entry."""
    out = []
    for sub in _buckets(cache_dir):
        for meta in sub.glob(f"*{META}"):
            data = meta.with_suffix(DATA)
            with contextlib.suppress(OSError):
                out.append((meta.stat().st_mtime, meta.stat().st_size + data.stat().st_size, data))
    return sorted(out)


def stats(cache_dir: str | Path) -> Stats:
    found = _scan(Path(cache_dir))
    return Stats(Path(cache_dir), len(found), sum(size for _, size, _ in found))


def clear(cache_dir: str | Path) -> Stats:
    """Delete every entry, every remembered file hash and every leftover file; returns
    what the entries held."""
    cache_dir = Path(cache_dir)
    removed = stats(cache_dir)
    hashes = cache_dir / HASHES
    if hashes.is_dir():
        for p in hashes.iterdir():
            with contextlib.suppress(OSError):
                p.unlink()
        with contextlib.suppress(OSError):
            hashes.rmdir()
    for sub in _buckets(cache_dir):
        for p in sub.iterdir():
            if p.name.endswith((DATA, META)):
                with contextlib.suppress(OSError):
                    p.unlink()
        with contextlib.suppress(OSError):
            sub.rmdir()
    return removed


def prune(cache_dir: str | Path, max_bytes: int) -> Stats:
    """Delete the least recently used entries until at most ``max_bytes`` remain, the
    files killed writers left (older than an hour) and the remembered hashes of files
    that no longer exist. Returns what went (entries)."""
    cache_dir = Path(cache_dir)
    stale = time.time() - _STALE
    hashes = cache_dir / HASHES
    for p in hashes.iterdir() if hashes.is_dir() else ():
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            if p.name.startswith(".tmp-"):
                if p.stat().st_mtime < stale:
                    p.unlink()
            elif not os.path.exists(json.loads(p.read_text(encoding="utf-8"))["path"]):
                p.unlink()
    for sub in _buckets(cache_dir):
        for p in sub.iterdir():
            with contextlib.suppress(OSError):
                orphan = p.suffix == DATA and not p.with_suffix(META).exists()
                if (p.name.startswith(".tmp-") or orphan) and p.stat().st_mtime < stale:
                    p.unlink()
    found = _scan(cache_dir)
    total = sum(size for _, size, _ in found)
    entries = size_removed = 0
    for _, size, data in found:
        if total <= max_bytes:
            break
        _delete(data)
        total -= size
        entries += 1
        size_removed += size
    return Stats(cache_dir, entries, size_removed)


#: The download cache of recordings in object storage, inside the cache folder.
OBJECTS = "objects"
#: Channel maps and DBC files the session shipped through the broker, kept by sha256.
CHANNEL_MAPS = "channel-maps"


def object_stats(cache_dir: str | Path) -> Stats:
    """What the object download cache (``<cache_dir>/objects``) holds."""
    from pytest_adsreplay.storage import cache as downloads

    root = Path(cache_dir) / OBJECTS
    return Stats(root, *downloads.usage(root))


def object_clear(cache_dir: str | Path) -> Stats:
    """Empty the object download cache and the shipped channel maps; returns what the
    downloaded objects held."""
    import shutil

    from pytest_adsreplay.storage import cache as downloads

    root = Path(cache_dir) / OBJECTS
    shutil.rmtree(Path(cache_dir) / CHANNEL_MAPS, ignore_errors=True)
    return Stats(root, *downloads.clear(root))


def object_prune(cache_dir: str | Path, max_bytes: int) -> Stats:
    """Evict the least recently used downloaded objects until at most ``max_bytes``
    remain; returns what went."""
    from pytest_adsreplay.storage import cache as downloads

    root = Path(cache_dir) / OBJECTS
    return Stats(root, *downloads.prune(root, max_bytes))


def parse_size(text: str) -> int:
    """Bytes of ``500MB``, ``2GB``, ``1.5G``, ``0`` … (decimal units); ValueError if bad."""
    units = {
        "": 1,
        "B": 1,
        "K": 10**3,
        "KB": 10**3,
        "M": 10**6,
        "MB": 10**6,
        "G": 10**9,
        "GB": 10**9,
        "T": 10**12,
        "TB": 10**12,
    }
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

"""The session's channel map (and the DBC files it names) carried through the broker.

With a real Redis the session stores the map's TOML text and each DBC file's bytes
under keys named by their sha256, with the session's TTL (:func:`upload`); every job
carries the reference (``ctx["channel_map_ref"]``). A worker that has no usable copy
at the session's path (missing, unreadable, or a different fingerprint) fetches the
blobs, checks each against its sha256, and keeps them in a local content-addressed
folder (:func:`materialize`); the map is then loaded from there with its DBC entries
pointing at the local copies. A channel map is data, not code: no opt-in is needed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_adsreplay.errors import ChannelMapError

#: Largest single blob (the map's text or one DBC file) the session puts into Redis.
MAX_BYTES = 32 * 1024**2
KEY_PREFIX = "adsreplay:channel-map:"


def key(sha256: str) -> str:
    return KEY_PREFIX + sha256


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def describe(path: str | Path) -> tuple[dict[str, Any], list[bytes]]:
    """The reference of the map at ``path`` (sha256, name, key of the text and of each
    DBC file, in the map's order) and the blobs themselves (text first)."""
    from pytest_adsreplay.signals import ChannelMap

    cmap = ChannelMap.load(path)
    blobs = [Path(path).read_bytes()]
    dbc = []
    for d in cmap.dbc:
        try:
            data = d.path.read_bytes()
        except OSError as exc:
            raise ChannelMapError(
                f"channel map {path}: DBC file {d.path} cannot be read: {exc}",
                hint="check the file",
            ) from None
        blobs.append(data)
        dbc.append({"sha256": _sha(data), "name": d.path.name, "key": key(_sha(data))})
    ref = {
        "sha256": _sha(blobs[0]),
        "name": Path(path).name,
        "key": key(_sha(blobs[0])),
        "dbc": dbc,
    }
    return ref, blobs


def upload(conn: Any, path: str | Path | None, ttl: int) -> dict[str, Any] | None:
    """Put the map and its DBC files into the broker (TTL ``ttl`` s) and return the
    reference jobs carry; a blob above :data:`MAX_BYTES` makes the reference
    ``"too_large"`` and nothing is uploaded (workers then need their own copy)."""
    if path is None:
        return None
    ref, blobs = describe(path)
    if any(len(b) > MAX_BYTES for b in blobs):
        return {**ref, "too_large": True}
    for data in blobs:
        name = key(_sha(data))
        # already there (this or another session): refresh its TTL; workers verify anyway
        if conn.strlen(name) != len(data) or not conn.expire(name, ttl):
            conn.set(name, data, ex=ttl)
    return ref


def default_folder(cache_dir: str | None) -> Path:
    """Where materialized maps are kept: ``<cache_dir>/channel-maps`` with the decoded
    signal cache, else the user cache folder."""
    if cache_dir:
        return Path(cache_dir) / "channel-maps"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(cache) / "adsreplay" / "channel-maps"


def materialize(conn: Any, ref: Mapping[str, Any], folder: Path, *, source: str) -> Any:
    """The session's map from ``ref``, loaded from local verified copies in ``folder``
    (fetched from the broker when not there yet). ``source`` names it in messages."""
    from pytest_adsreplay.signals import ChannelMap

    if ref.get("too_large"):
        raise ChannelMapError(
            f"channel map {source} is not on this worker and was too large to travel "
            f"through the broker (a file above {MAX_BYTES // 1024**2} MiB)",
            hint="deploy the same channel map (and DBC files) to every worker at that path",
        )
    text = _local(conn, ref, folder, source)
    locals_ = [_local(conn, d, folder, source) for d in ref.get("dbc") or ()]
    try:
        data = tomllib.loads(text.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ChannelMapError(f"channel map {source} (from the session): {exc}") from None
    return ChannelMap.from_dict(_with_dbc(data, locals_), source=source, base=text.parent)


def _with_dbc(data: dict[str, Any], files: list[Path]) -> dict[str, Any]:
    """``data`` with its ``[can] dbc`` entries pointing at ``files`` (same order)."""
    can = data.get("can")
    if not files or not isinstance(can, Mapping):
        return data
    entries = can.get("dbc")
    entries = [entries] if isinstance(entries, str | Mapping) else list(entries or [])
    if len(entries) != len(files):
        raise ChannelMapError("the session's channel map and its DBC list do not match")
    new = [
        {**e, "file": str(f)} if isinstance(e, Mapping) else str(f)
        for e, f in zip(entries, files, strict=True)
    ]
    return {**data, "can": {**can, "dbc": new}}


def _local(conn: Any, blob: Mapping[str, Any], folder: Path, source: str) -> Path:
    """The local copy of one blob, ``folder/<sha256>/<name>``, fetched and verified
    when absent or different."""
    sha, name = str(blob["sha256"]), Path(str(blob.get("name") or "blob")).name
    path = folder / sha / name
    try:
        if path.is_file() and _sha(path.read_bytes()) == sha:
            return path
    except OSError:
        pass
    data = conn.get(str(blob.get("key") or key(sha)))
    if data is None:
        raise ChannelMapError(
            f"channel map {source}: {name} is not on this worker and no longer in the "
            "broker (the session's TTL expired, or Redis was flushed)",
            hint="run the session again, or deploy the channel map to every worker",
        )
    if _sha(bytes(data)) != sha:
        raise ChannelMapError(
            f"channel map {source}: the copy of {name} in the broker does not have the "
            f"session's sha256 {sha[:12]}; it was not used",
            hint="something other than pytest-adsreplay changed the key in Redis; "
            "run the session again",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(bytes(data))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

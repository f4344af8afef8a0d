"""Recordings at fsspec URLs (``s3://bucket/prefix/``): listed like a directory.

A prefix is listed recursively, a glob (``s3://b/p/**/*.mf4``) matches below its fixed
prefix, a URL of one object names that recording. Sidecars are the ``NAME.toml``
objects beside ``NAME.mf4``; ids are POSIX paths relative to the prefix. Each
Recording keeps the object's URL, ETag and size (``Recording.remote``); nothing is
downloaded here but the small sidecars.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path, PurePosixPath

from pytest_adsreplay.errors import SidecarError
from pytest_adsreplay.recordings.recording import Recording
from pytest_adsreplay.recordings.sidecar import load_recording
from pytest_adsreplay.storage import Listed, RemoteObject, StoreSettings, list_prefix, read_bytes

SUFFIXES = (".mf4", ".mdf", ".dat")


def _root(url: str, listed: list[Listed]) -> str:
    """The prefix the ids are relative to (ends with ``/``)."""
    head = url
    for i, c in enumerate(url):
        if c in "*?[":
            head = url[:i]
            break
    if head != url or head.endswith("/"):
        return head.rsplit("/", 1)[0] + "/"
    if len(listed) == 1 and listed[0].url == url:  # one object
        return url.rsplit("/", 1)[0] + "/"
    return url + "/"


def discover_remote(url: str, store: StoreSettings) -> list[Recording]:
    """The recordings at ``url``, sorted by id (StorageError when it cannot be listed)."""
    listed = list_prefix(url, store)
    root = _root(url, listed)
    beside = {
        o.url: o
        for o in (listed if root.rstrip("/") == url.rstrip("/") else list_prefix(root, store))
    }
    recs = []
    for obj in listed:
        if PurePosixPath(obj.url).suffix.lower() not in SUFFIXES:
            continue
        remote = RemoteObject(obj.url, obj.etag, obj.size, store)
        rid = obj.url[len(root) :] if obj.url.startswith(root) else obj.url
        side = beside.get(obj.url.rsplit(".", 1)[0] + ".toml")
        recs.append(_with_sidecar(remote, rid, root, side))
    return sorted(recs, key=lambda r: r.id)


def _with_sidecar(remote: RemoteObject, rid: str, root: str, side: Listed | None) -> Recording:
    """The Recording of one object, its sidecar (when there is one) parsed like a local
    one; a broken sidecar only flags its recording, naming the sidecar's URL."""
    base = Recording(path=Path(remote.url), id=rid, root=Path(root), remote=remote)
    if side is None:
        return base
    name = PurePosixPath(remote.url).name
    with tempfile.TemporaryDirectory(prefix="adsreplay-sidecar-") as tmp:
        local = Path(tmp) / name
        local_side = local.with_suffix(".toml")
        try:
            local_side.write_bytes(read_bytes(side.url, remote.store))
            parsed = load_recording(local, Path(tmp))
        except SidecarError as exc:
            problem = str(exc).replace(str(local_side), side.url)
            return dataclasses.replace(base, sidecar=Path(side.url), problem=problem)
        except Exception as exc:  # a sidecar must never end the session
            problem = f"sidecar {side.url} cannot be used ({type(exc).__name__}: {exc})"
            problem = problem.replace(str(local_side), side.url)
            return dataclasses.replace(base, sidecar=Path(side.url), problem=problem)
    return dataclasses.replace(
        parsed, path=base.path, id=rid, root=base.root, sidecar=Path(side.url), remote=remote
    )

"""Recordings in object storage: listing URL prefixes and reading objects locally.

The only package that imports fsspec and s3fs (lazily). ``--recordings s3://bucket/pre/``
is listed here; a job of a URL recording carries the object's URL, endpoint, ETag and
size (:class:`RemoteObject`), and the worker turns it into a local file through the
host's download cache (:func:`local_copy`) before the read stage reads it as usual.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pytest_adsreplay.storage.cache import Fetched, fetch
from pytest_adsreplay.storage.client import Listed, list_prefix, mask, read_bytes
from pytest_adsreplay.storage.objects import (
    DEFAULT_CACHE_MAX,
    RemoteObject,
    StoreSettings,
    as_url,
    normalize_etag,
    split_url,
)


@contextlib.contextmanager
def local_copy(obj: RemoteObject | Mapping[str, Any]) -> Iterator[Path]:
    """The path of a local copy of ``obj`` (a RemoteObject or its JSON) while the block
    runs; a temporary copy (no ETag, no cache folder) is deleted afterwards. Raises
    StorageError naming the URL."""
    remote = obj if isinstance(obj, RemoteObject) else RemoteObject.from_json(obj)
    got = fetch(remote)
    try:
        yield got.path
    finally:
        if got.temporary:
            with contextlib.suppress(OSError):
                got.path.unlink()


__all__ = [
    "DEFAULT_CACHE_MAX",
    "Fetched",
    "Listed",
    "RemoteObject",
    "StoreSettings",
    "as_url",
    "fetch",
    "list_prefix",
    "local_copy",
    "mask",
    "normalize_etag",
    "read_bytes",
    "split_url",
]

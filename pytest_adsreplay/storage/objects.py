"""What the session knows about a recording in object storage, as small JSON-able records.

No fsspec or s3fs here: these records travel in every job of a URL recording, so a
worker learns the object's URL, the endpoint, its ETag and size, never a credential.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

#: 20 GiB: the default bound of the local download cache (ini ``adsreplay_cache_max``).
DEFAULT_CACHE_MAX = 20 * 1024**3
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+)://(?P<rest>.*)", re.DOTALL)
# ``Path("s3://b/k")`` prints as ``s3:/b/k``: a scheme of two or more letters, one slash
_COLLAPSED = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):/(?P<rest>[^/].*)", re.DOTALL)


def as_url(text: str) -> str | None:
    """``text`` as an fsspec URL (``s3://bucket/prefix/``), or None for a local path.

    A URL that went through ``pathlib.Path`` (``s3:/bucket/prefix``) is recognized and
    given its two slashes back; a Windows drive (``C:/x``) is a path.
    """
    if os.path.exists(text):
        return None
    if _URL.fullmatch(text):
        return text
    m = _COLLAPSED.fullmatch(text)
    if m and not text.startswith("/"):
        return f"{m['scheme']}://{m['rest']}"
    return None


def split_url(url: str) -> tuple[str, str, str]:
    """(protocol, bucket, key) of ``s3://bucket/a/b.mf4``."""
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc, parts.path.lstrip("/")


@dataclass(frozen=True)
class StoreSettings:
    """How this session reaches its object store and keeps downloads (no secrets)."""

    #: Endpoint URL passed to s3fs explicitly (ini ``adsreplay_s3_endpoint``, else
    #: ``AWS_ENDPOINT_URL``); None: the SDK's default endpoint (the public cloud).
    endpoint: str | None = None
    #: Path-style addressing (``http://host/bucket/key``), as most local stores need.
    path_style: bool = False
    #: Folder of the local download cache; None: objects are downloaded to a
    #: temporary file that is deleted after the read.
    cache_dir: str | None = None
    #: Bytes the download cache may hold; the oldest entries are evicted beyond it.
    cache_max: int = DEFAULT_CACHE_MAX

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "path_style": self.path_style,
            "cache_dir": self.cache_dir,
            "cache_max": self.cache_max,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StoreSettings:
        return cls(
            endpoint=data.get("endpoint") or None,
            path_style=bool(data.get("path_style")),
            cache_dir=data.get("cache_dir") or None,
            cache_max=int(data.get("cache_max", DEFAULT_CACHE_MAX)),
        )

    @classmethod
    def from_settings(
        cls, settings: Any, environ: Mapping[str, str] | None = None
    ) -> StoreSettings:
        """From the plugin's ``Settings``: the endpoint of ``adsreplay_s3_endpoint``, else
        ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``; downloads kept under the
        decoded-signal cache folder's ``objects/``."""
        env = os.environ if environ is None else environ
        endpoint = (
            getattr(settings, "s3_endpoint", None)
            or env.get("AWS_ENDPOINT_URL_S3", "").strip()
            or env.get("AWS_ENDPOINT_URL", "").strip()
            or None
        )
        if endpoint and "@" in endpoint.split("://", 1)[-1].split("/", 1)[0]:
            from pytest_adsreplay.errors import UsageError
            from pytest_adsreplay.urls import mask_url

            raise UsageError(
                f"the S3 endpoint {mask_url(endpoint)} holds a user or password; it travels "
                "in every job, so it must not",
                hint="give the endpoint as http(s)://host:port and the credentials as "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE",
            )
        cache_dir = getattr(settings, "cache_dir", None)
        return cls(
            endpoint=endpoint,
            path_style=bool(getattr(settings, "s3_path_style", False)),
            cache_dir=str(os.path.join(os.path.abspath(cache_dir), "objects"))
            if cache_dir
            else None,
            cache_max=int(getattr(settings, "cache_max", DEFAULT_CACHE_MAX)),
        )


@dataclass(frozen=True)
class RemoteObject:
    """One object as the session listed it: its URL, ETag (None: the store gave none,
    then it is never cached) and size, and how to reach the store."""

    url: str
    etag: str | None
    size: int
    store: StoreSettings = StoreSettings()

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "etag": self.etag, "size": self.size, **self.store.to_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RemoteObject:
        return cls(
            url=str(data["url"]),
            etag=data.get("etag") or None,
            size=int(data["size"]),
            store=StoreSettings.from_json(data),
        )


def normalize_etag(value: Any) -> str | None:
    """An ETag without the quotes some APIs keep (``"abc"`` and ``abc`` are one ETag)."""
    if value is None:
        return None
    text = str(value).strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    return text or None

"""The only importer of fsspec and s3fs: listing a URL prefix, object metadata, reads.

Every failure of the store becomes a :class:`~pytest_adsreplay.errors.StorageError` that
names the URL and the endpoint with every secret masked, and says what to do next.
Credentials are never passed in: s3fs (botocore) takes them from the worker's own
standard environment and configuration (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, ``~/.aws``). The endpoint is always passed explicitly, since an older
botocore ignores ``AWS_ENDPOINT_URL`` and would silently go to the public cloud.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from pytest_adsreplay.errors import StorageError, UsageError
from pytest_adsreplay.storage.objects import (
    StoreSettings,
    normalize_etag,
    split_url,
)
from pytest_adsreplay.urls import MASK, mask_text, mask_url

CHUNK = 1 << 20
_S3 = ("s3", "s3a")
#: Environment variables whose values are secrets: never shown in a message.
SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


@dataclass(frozen=True)
class Listed:
    """One object of a listing: its URL, ETag (or None) and size in bytes."""

    url: str
    etag: str | None
    size: int


def mask(text: str) -> str:
    """``text`` with URLs' passwords and the values of secret AWS variables masked."""
    text = mask_text(text)
    for name in SECRET_ENV:
        secret = os.environ.get(name, "")
        if len(secret) > 3:
            text = text.replace(secret, MASK)
    return text


def where(store: StoreSettings) -> str:
    return f"endpoint {mask_url(store.endpoint)}" if store.endpoint else "the default endpoint"


#: This process's filesystems (a new S3 client costs ~0.3 s, a request ~10 ms), keyed by
#: process, protocol, endpoint, addressing and a digest of the credential variables, so
#: changed credentials get a new client; the oldest is closed beyond MAX_CLIENTS.
_CLIENTS: dict[tuple[Any, ...], Any] = {}
MAX_CLIENTS = 4
CREDENTIAL_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


def filesystem(protocol: str, store: StoreSettings) -> Any:
    """This process's fsspec filesystem for ``protocol`` and ``store`` with the
    credentials of the environment right now."""
    import hashlib

    creds = hashlib.sha256(repr([os.environ.get(n) for n in CREDENTIAL_ENV]).encode()).digest()
    key = (os.getpid(), protocol, store.endpoint, store.path_style, creds)
    fs = _CLIENTS.get(key)
    if fs is None:
        fs = _CLIENTS[key] = _new_filesystem(protocol, store)
        while len(_CLIENTS) > MAX_CLIENTS:
            close(_CLIENTS.pop(next(iter(_CLIENTS))))
    return fs


def _new_filesystem(protocol: str, store: StoreSettings) -> Any:
    import fsspec

    if protocol in _S3:
        try:
            import s3fs
        except ImportError:
            raise UsageError(
                f"recordings at {protocol}:// URLs need s3fs, which is not installed",
                hint="pip install 'pytest-adsreplay[s3]'",
            ) from None
        config: dict[str, Any] = {"retries": {"max_attempts": 2, "mode": "standard"}}
        config["connect_timeout"] = 10
        config["read_timeout"] = 60
        if store.path_style:
            config["s3"] = {"addressing_style": "path"}
        kwargs: dict[str, Any] = {"config_kwargs": config, "skip_instance_cache": True}
        if store.endpoint:
            kwargs["endpoint_url"] = store.endpoint
        fs = s3fs.S3FileSystem(**kwargs)
        fs.retries = 2  # s3fs's own retries (5, with back-off) on top of botocore's
        return fs
    try:
        return fsspec.filesystem(protocol, skip_instance_cache=True)
    except (ImportError, ValueError) as exc:
        raise UsageError(
            f"recordings at {protocol}:// URLs cannot be read: {mask(str(exc))}",
            hint="install the fsspec implementation of that protocol, or use s3://",
        ) from None


def close(fs: Any) -> None:
    """Close an s3fs client's connections now (not at garbage collection, where an
    unclosed aiohttp session would warn)."""
    s3 = getattr(fs, "_s3", None)
    if s3 is None:
        return
    from fsspec.asyn import sync

    try:
        sync(fs.loop, s3.__aexit__, None, None, None, timeout=5)
    except Exception:  # closing is best effort: the answer is already in hand
        return
    fs._s3 = None


def _path(url: str) -> str:
    _, bucket, key = split_url(url)
    return f"{bucket}/{key}".rstrip("/") if key else bucket


def describe(exc: BaseException, url: str, store: StoreSettings, *, listing: bool) -> StorageError:
    """The StorageError for a failure of the store while listing or reading ``url``."""
    name = type(exc).__name__
    text = mask(str(exc))
    shown = mask_url(url)
    at = where(store)
    bucket = split_url(url)[1]
    if isinstance(exc, FileNotFoundError):
        if "bucket" in text.lower():
            return StorageError(
                f"bucket {bucket!r} of {shown} does not exist at {at}",
                hint="check the bucket name and the endpoint (adsreplay_s3_endpoint or "
                "AWS_ENDPOINT_URL)",
            )
        if listing:
            return StorageError(f"{shown} does not exist at {at}", hint="check the prefix")
        return StorageError(
            f"{shown} was deleted since the session listed it ({at})",
            hint="run the session again so it lists the objects that are there now",
        )
    if isinstance(exc, PermissionError) or name in (
        "NoCredentialsError",
        "PartialCredentialsError",
    ):
        why = "no credentials were found" if "Credentials" in name else text
        return StorageError(
            f"access to {shown} at {at} was refused: {why}",
            hint="give this process read access: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or AWS_PROFILE / ~/.aws/credentials, for the store at that endpoint",
        )
    if _truncated(exc):
        return StorageError(
            f"the download of {shown} from {at} was cut off ({name}: {text})",
            hint="the connection dropped mid-transfer; run again (nothing partial is cached)",
        )
    return StorageError(
        f"the object store at {at} is unreachable or failed while "
        f"{'listing' if listing else 'reading'} {shown} ({name}: {text})",
        hint="check that the endpoint is up and reachable from this host, then run again",
    )


def _truncated(exc: BaseException) -> bool:
    names = {type(e).__name__ for e in _chain(exc)}
    return bool(names & {"ClientPayloadError", "IncompleteRead", "ContentLengthError"}) or (
        "payload is not completed" in str(exc).lower()
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def list_prefix(url: str, store: StoreSettings) -> list[Listed]:
    """Every object under the prefix ``url`` (recursively, like a directory), or the one
    object ``url`` names; sorted by URL. Raises StorageError (missing bucket, refused
    access, unreachable store)."""
    protocol, bucket, _ = split_url(url)
    fs = filesystem(protocol, store)
    path = _path(url)
    scheme = f"{protocol}://" if bucket else f"{protocol}:///"  # file:///abs/path
    fs.invalidate_cache()  # a listing is always asked of the store, never remembered
    try:
        if _magic(path):
            found = fs.glob(path, detail=True)
        else:
            found = fs.find(path, detail=True)
            if not found and not url.endswith("/"):
                info = fs.info(path)
                found = {path: info} if info.get("type") != "directory" else {}
        if not found and protocol in _S3:
            fs.info(path.split("/", 1)[0])  # a missing bucket lists as empty
    except Exception as exc:
        raise describe(exc, url, store, listing=True) from None
    out = [
        Listed(scheme + name.lstrip("/"), _etag(info), int(info.get("size") or 0))
        for name, info in found.items()
        if info.get("type", "file") != "directory"
    ]
    return sorted(out, key=lambda o: o.url)


def _magic(path: str) -> bool:
    return any(c in path for c in "*?[")


def _etag(info: dict[str, Any]) -> str | None:
    return normalize_etag(info.get("ETag") or info.get("etag"))


def read_bytes(url: str, store: StoreSettings, limit: int = 1 << 20) -> bytes:
    """A small object (a sidecar) whole; StorageError when it cannot be read."""
    protocol, _, _ = split_url(url)
    fs = filesystem(protocol, store)
    try:
        data: bytes = fs.cat_file(_path(url), start=0, end=limit)
    except Exception as exc:
        raise describe(exc, url, store, listing=False) from None
    return data


def download(url: str, etag: str | None, size: int, store: StoreSettings, out: IO[bytes]) -> int:
    """Write the object ``url`` into ``out``; returns the bytes written.

    S3 is read with ``If-Match: <etag>``, and the ETag the store answers with is
    compared too (a store that ignores the header still cannot hand over another
    version); other protocols compare the object's ETag before reading. An object
    replaced since the listing, or a body shorter or longer than the listed size, is a
    StorageError.
    """
    protocol, bucket, key = split_url(url)
    fs = filesystem(protocol, store)
    try:
        if protocol in _S3:
            from fsspec.asyn import sync

            got, n = sync(fs.loop, _s3_get, fs, bucket, key, etag, out)
        else:
            fs.invalidate_cache()
            got = _etag(fs.info(_path(url)))
            n = _copy(fs, _path(url), out)
    except StorageError:
        raise
    except Exception as exc:
        if "PreconditionFailed" in str(exc) or "412" in str(exc):
            raise changed(url, etag, None, store) from None
        raise describe(exc, url, store, listing=False) from None
    if etag and got and got != etag:
        raise changed(url, etag, got, store)
    n = int(n)
    if n != size:
        raise StorageError(
            f"the download of {mask_url(url)} from {where(store)} was cut off: {n} of {size} bytes",
            hint="the connection dropped mid-transfer or the object changed; run again "
            "(nothing partial is cached)",
        )
    return n


def changed(url: str, etag: str | None, now: str | None, store: StoreSettings) -> StorageError:
    seen = f" (ETag {etag} when listed, {now} now)" if now else f" (ETag {etag} when listed)"
    return StorageError(
        f"{mask_url(url)} changed since the session listed it{seen}; it is not read, so "
        "no run mixes two versions of a recording",
        hint=f"run the session again to replay the new version ({where(store)})",
    )


async def _s3_get(
    fs: Any, bucket: str, key: str, etag: str | None, out: IO[bytes]
) -> tuple[str | None, int]:
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if etag:
        kwargs["IfMatch"] = f'"{etag}"'
    resp = await fs._call_s3("get_object", **kwargs)
    body = resp["Body"]
    n = 0
    try:
        while chunk := await body.read(CHUNK):
            out.write(chunk)
            n += len(chunk)
    finally:
        body.close()
    return normalize_etag(resp.get("ETag")), n


def _copy(fs: Any, path: str, out: IO[bytes]) -> int:
    n = 0
    with fs.open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            out.write(chunk)
            n += len(chunk)
    return n

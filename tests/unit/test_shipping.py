"""Function files shipped to workers (``function.shipping``) on fakeredis: upload by
sha256 with a TTL and a size limit, and where a worker finds the file."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_adsreplay.errors import FunctionLoadError
from pytest_adsreplay.function import shipping


@pytest.fixture
def conn() -> Any:
    import fakeredis

    return fakeredis.FakeRedis()


@pytest.fixture(autouse=True)
def worker_defaults() -> Iterator[None]:
    yield
    shipping.configure()


@pytest.fixture
def library(tmp_path: Path) -> Path:
    path = tmp_path / "session" / "libaeb.so"
    path.parent.mkdir()
    path.write_bytes(b"\x7fELF pretend library " * 100)
    return path


def ctx_for(ref: dict[str, Any], spec: str) -> dict[str, Any]:
    return {"function": spec, "function_file": ref, "rec": "r.mf4"}


def test_upload_is_content_addressed_with_a_ttl(conn: Any, library: Path) -> None:
    ref = shipping.upload(conn, str(library), 120)
    assert ref is not None
    sha = hashlib.sha256(library.read_bytes()).hexdigest()
    assert ref["sha256"] == sha and ref["key"] == shipping.key(sha)
    assert conn.get(ref["key"]) == library.read_bytes() and 0 < conn.ttl(ref["key"]) <= 120
    assert shipping.upload(conn, "pkg.mod:Fn", 120) is None


def test_a_file_above_the_limit_is_not_uploaded_and_says_so(
    conn: Any, library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shipping, "MAX_BYTES", 100)
    ref = shipping.upload(conn, str(library), 120)
    assert ref is not None and ref["too_large"] and "key" not in ref
    assert conn.keys("*") == []
    shipping.configure(trust_shipped=True)
    with pytest.raises(FunctionLoadError, match="more than the 0 MB the session ships"):
        shipping.localize(ctx_for(ref, str(tmp_path / "gone.so")), conn)


def test_the_sessions_path_is_used_when_it_has_the_file(conn: Any, library: Path) -> None:
    ref = shipping.upload(conn, str(library), 120)
    assert ref is not None
    ctx = ctx_for(ref, str(library))
    assert shipping.localize(ctx, conn) is ctx


def test_without_a_copy_or_trust_the_error_names_both_flags(
    conn: Any, library: Path, tmp_path: Path
) -> None:
    ref = shipping.upload(conn, str(library), 120)
    assert ref is not None
    with pytest.raises(FunctionLoadError) as err:
        shipping.localize(ctx_for(ref, str(tmp_path / "elsewhere.so")), conn)
    assert "libaeb.so (sha256 " in err.value.message and "is not at" in err.value.message
    assert "--functions DIR" in str(err.value.hint)
    assert "--trust-shipped-functions" in str(err.value.hint)


def test_functions_folder_is_searched_by_sha256(conn: Any, library: Path, tmp_path: Path) -> None:
    ref = shipping.upload(conn, str(library), 120)
    assert ref is not None
    folder = tmp_path / "copies" / "v1"
    folder.mkdir(parents=True)
    (folder / "a.so").write_bytes(b"x" * library.stat().st_size)  # same size, other bytes
    (folder / "b.so").write_bytes(library.read_bytes())
    shipping.configure([str(tmp_path / "copies")])
    got = shipping.localize(ctx_for(ref, str(tmp_path / "elsewhere.so")), conn)
    assert got["function"] == str(folder / "b.so")


def test_trusted_fetch_verifies_and_keeps_the_file(
    conn: Any, library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ref = shipping.upload(conn, str(library), 120)
    assert ref is not None
    shipping.configure(trust_shipped=True)
    got = shipping.localize(ctx_for(ref, str(tmp_path / "elsewhere.so")), conn)
    kept = Path(got["function"])
    assert kept.read_bytes() == library.read_bytes() and kept.parent.name == ref["sha256"]
    conn.set(ref["key"], b"tampered")
    kept.unlink()
    with pytest.raises(FunctionLoadError, match="tampered with or corrupted, and is not run"):
        shipping.localize(ctx_for(ref, str(tmp_path / "elsewhere.so")), conn)
    assert not kept.exists()
    conn.delete(ref["key"])
    with pytest.raises(FunctionLoadError, match="is not in the broker"):
        shipping.localize(ctx_for(ref, str(tmp_path / "elsewhere.so")), conn)

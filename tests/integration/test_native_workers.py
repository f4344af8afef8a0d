"""Native functions with real Redis: a crash on one recording with two local workers,
and FMU / library files shipped to external workers.

An external ``adsreplay worker`` runs the session's shared library only when it has a
copy with the same sha256 (``--functions DIR``) or trusts the copy the session uploads to
the broker (``--trust-shipped-functions``, verified against the sha256); with neither,
each recording errors saying which flag to use. To look like a worker on another
machine, the library is moved away from the session's path once the session has
uploaded it, before the workers start.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from adsreplay_testkit import write_approach
from integration_kit import (
    PATIENCE,
    PYTHON,
    collect,
    run_id_of,
    run_pytest,
    spawn_pytest,
    stop,
    subprocess_env,
)
from native_build import build_fmu, build_library

pytestmark = pytest.mark.timeout(120)

CRASH_C = Path(__file__).resolve().parents[1] / "native" / "crash_aeb.c"

TEST_MODULE = """
def test_runs(replay):
    assert replay.kpis is not None
"""


@pytest.fixture(scope="session")
def crash_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_library(tmp_path_factory.mktemp("native-workers") / "libcrash.so", [CRASH_C])


def write_session(root: Path, library: Path, crash: int, name: str = "libaeb.so") -> Path:
    """A project with three recordings (only c60 reaches the crash speed) and the
    library copied into ``root/lib``."""
    recs = root / "recs"
    write_approach(recs / "a40.mf4", ego_kph=40, pre=1.0)
    write_approach(recs / "b50.mf4", ego_kph=50, pre=1.0)
    write_approach(recs / "c60.mf4", ego_kph=60, pre=1.0)
    (root / "lib").mkdir()
    shutil.copy(library, root / "lib" / name)
    (root / "test_native.py").write_text(TEST_MODULE)
    (root / "pytest.ini").write_text(
        f"[pytest]\nadsreplay_function = lib/{name}\nadsreplay_recordings = recs\n"
        f"adsreplay_db = results.sqlite\nadsreplay_function_params = {{crash = {crash}}}\n"
    )
    return root


def result_rows(root: Path, run_id: str) -> dict[str, Any]:
    """recording id -> results row of ``run_id`` in ``root/results.sqlite``."""
    from pytest_adsreplay.results.store import open_store

    rows = open_store(str(root / "results.sqlite")).results(run_id)
    return {r.recording_id: r for r in rows}


@pytest.mark.parametrize(
    ("crash", "how"),
    [(1, "crashed (SIGSEGV)"), (3, "exited with status 0")],
    ids=["segfault", "exit0"],
)
def test_crash_with_two_local_workers_errors_only_its_recording(
    real_redis: str, crash_library: Path, tmp_path: Path, crash: int, how: str
) -> None:
    root = write_session(tmp_path / "proj", crash_library, crash)
    result = run_pytest(root, "--redis-url", real_redis, "--adsreplay-workers", "2")
    text = result.stdout.str()
    assert result.ret == 1, text
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 2, text
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 1, text
    assert f"the function under test {how} at or after t = 1.000 s" in text, text
    rows = result_rows(root, run_id_of(result))
    assert {k: r.status for k, r in rows.items()} == {
        "a40.mf4": "ok",
        "b50.mf4": "ok",
        "c60.mf4": "error",
    }


# -- shipped function files -----------------------------------------------------------


def start_worker(url: str, cwd: Path, cache: Path, *flags: str) -> subprocess.Popen[str]:
    """An external ``adsreplay worker`` in ``cwd`` whose store of fetched files is under
    ``cache``."""
    cmd = [PYTHON, "-m", "pytest_adsreplay.cli", "worker", "--redis-url", url, *flags]
    return subprocess.Popen(
        cmd,
        cwd=cwd,
        env=subprocess_env(XDG_CACHE_HOME=str(cache)),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_elsewhere(
    url: str,
    root: Path,
    tmp_path: Path,
    *flags: str,
    before: str | None = None,
    name: str = "libaeb.so",
) -> tuple[pytest.RunResult, list[str], Path]:
    """Run the session on the fleet queues; when it has uploaded the library, move the
    library away and start two workers with ``flags`` in an empty folder. ``before``:
    bytes put under the upload's key before the session starts (a tampered upload).
    The result, the workers' logs and their cache folder."""
    import redis

    from pytest_adsreplay.function.shipping import key

    upload = key(sha256(root / "lib" / name))
    conn = redis.Redis.from_url(url)
    conn.delete(upload)
    if before is not None:
        conn.set(upload, before.encode("latin-1"), ex=600)
    empty, cache = tmp_path / "worker-host", tmp_path / "worker-cache"
    empty.mkdir()
    # the workers run this library only (they have no path of it: named by its sha256)
    flags = (*flags, "--function", f"sha256:{sha256(root / 'lib' / name)}")
    started = time.monotonic()
    session = spawn_pytest(root, "--redis-url", url, "--adsreplay-workers", "0")
    workers: list[subprocess.Popen[str]] = []
    try:
        wait_for_key(conn, upload, session)
        shutil.move(root / "lib", tmp_path / "moved-away")
        workers = [start_worker(url, empty, cache, *flags) for _ in range(2)]
        result = collect(session, started)
    finally:
        if session.poll() is None:
            session.kill()
        logs = [stop(w) for w in workers]
    assert sorted(p.name for p in empty.iterdir()) == []
    return result, logs, cache


def wait_for_key(conn: object, name: str, session: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60 * PATIENCE
    # the session's upload (or refresh) gives the key the session's TTL (a day)
    while conn.ttl(name) <= 600:  # type: ignore[attr-defined]
        assert session.poll() is None, "the session ended before it uploaded the library"
        assert time.monotonic() < deadline, "the session never uploaded the library"
        time.sleep(0.05)


@pytest.fixture
def shipped_project(tmp_path: Path, crash_library: Path) -> Iterator[Path]:
    yield write_session(tmp_path / "proj", crash_library, 0)


@pytest.mark.parametrize("form", ["library", "fmu"])
def test_trusting_worker_fetches_verifies_and_runs_the_file(
    fleet_redis: str, crash_library: Path, tmp_path: Path, form: str
) -> None:
    name = "libaeb.so"
    function = crash_library
    if form == "fmu":
        name = "aeb.fmu"
        function = build_fmu(tmp_path / name, [CRASH_C], crash_library, model="crash2")
    root = write_session(tmp_path / "proj", function, 0, name)
    sha = sha256(root / "lib" / name)
    result, logs, cache = run_elsewhere(
        fleet_redis, root, tmp_path, "--trust-shipped-functions", name=name
    )
    assert result.ret == 0, result.stdout.str() + "\n".join(logs)
    result.assert_outcomes(passed=3)
    kept = cache / "adsreplay" / "functions" / sha / name
    assert kept.is_file() and sha256(kept) == sha


def test_worker_with_a_local_copy_runs_it(
    fleet_redis: str, shipped_project: Path, tmp_path: Path
) -> None:
    copies = tmp_path / "copies"
    (copies / "release").mkdir(parents=True)
    shutil.copy(shipped_project / "lib" / "libaeb.so", copies / "release" / "aeb-1.2.so")
    (copies / "other.so").write_bytes(b"not the library")
    result, logs, cache = run_elsewhere(
        fleet_redis, shipped_project, tmp_path, "--functions", str(copies)
    )
    assert result.ret == 0, result.stdout.str() + "\n".join(logs)
    result.assert_outcomes(passed=3)
    assert not cache.exists()  # nothing fetched


def test_worker_without_a_copy_or_trust_errors_naming_the_flags(
    fleet_redis: str, shipped_project: Path, tmp_path: Path
) -> None:
    result, _logs, cache = run_elsewhere(fleet_redis, shipped_project, tmp_path)
    text = result.stdout.str()
    assert result.ret == 1, text
    rows = result_rows(shipped_project, run_id_of(result))
    assert len(rows) == 3 and {r.status for r in rows.values()} == {"error"}
    assert "the function file libaeb.so (sha256 " in text
    assert "--functions DIR" in text and "--trust-shipped-functions" in text
    assert not cache.exists()


def test_tampered_upload_is_refused(
    fleet_redis: str, shipped_project: Path, tmp_path: Path
) -> None:
    """Bytes of the right size but not the library's under its key: the session keeps
    them (same size), the trusting workers refuse them and run nothing."""
    lib = shipped_project / "lib" / "libaeb.so"
    size = lib.stat().st_size
    result, _logs, cache = run_elsewhere(
        fleet_redis, shipped_project, tmp_path, "--trust-shipped-functions", before="x" * size
    )
    text = result.stdout.str()
    assert result.ret == 1, text
    rows = result_rows(shipped_project, run_id_of(result))
    assert len(rows) == 3 and {r.status for r in rows.values()} == {"error"}
    assert "fetched from the broker has sha256" in text and "is not run" in text
    assert not list(cache.rglob("libaeb.so"))

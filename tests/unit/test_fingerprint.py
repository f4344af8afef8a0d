"""The function fingerprint, the worker's build check, and the runs' build columns."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_adsreplay.function import fingerprint
from pytest_adsreplay.function.fingerprint import of_function
from pytest_adsreplay.queue import stages
from pytest_adsreplay.results.store import open_store

SOURCE = "class Ttc:\n    def step(self, frame):\n        return {'aeb_decel': 0.0}\n"


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    path = folder / "fpmod_single.py"
    path.write_text(SOURCE)
    monkeypatch.syspath_prepend(str(folder))
    return path


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "pkgsite" / "fppkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "aeb.py").write_text(SOURCE)
    (root / "helpers.py").write_text("BRAKE_TTC = 1.6\n")
    monkeypatch.syspath_prepend(str(root.parent))
    return root


def test_a_module_outside_a_package_is_its_file(module: Path) -> None:
    first = of_function("fpmod_single:Ttc")
    assert first == of_function("fpmod_single:Ttc")  # stable
    assert "module fpmod_single" in first.source and "1 files" in first.source
    module.write_text(SOURCE.replace("0.0", "6.0"))
    assert of_function("fpmod_single:Ttc").digest != first.digest


def test_a_package_counts_every_module_not_only_the_defining_one(package: Path) -> None:
    first = of_function("fppkg.sub.aeb:Ttc")
    assert "package fppkg" in first.source
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "helpers.cpython-311.pyc").write_bytes(b"x")
    (package / "README.txt").write_text("docs are not code")
    assert of_function("fppkg.sub.aeb:Ttc").digest == first.digest
    (package / "helpers.py").write_text("BRAKE_TTC = 1.9\n")  # a helper the function uses
    assert of_function("fppkg.sub.aeb:Ttc").digest != first.digest


def test_the_same_sources_elsewhere_are_the_same_build(
    package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = of_function("fppkg.sub.aeb:Ttc")
    import shutil

    copy = tmp_path / "deployed" / "fppkg"
    shutil.copytree(package, copy)
    monkeypatch.syspath_prepend(str(copy.parent))
    there = of_function("fppkg.sub.aeb:Ttc")
    assert str(copy) in there.source
    assert there.digest == here.digest


def test_installed_distribution_versions_count() -> None:
    build = of_function("numpy:zeros")
    import numpy

    assert f"numpy {numpy.__version__}" in build.source


def test_a_missing_module_has_a_fingerprint_saying_so() -> None:
    build = of_function("no_such_module_here.sub:X")
    assert "not importable here" in build.source and not build.found
    assert fingerprint.digest_of("no_such_module_here.sub:X") is None
    assert build.digest != of_function("another_missing_module:X").digest


def test_a_file_spec_is_the_file_plus_its_binding(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    lib = tmp_path / "libaeb.so"
    lib.write_bytes(b"\x7fELF v1")
    first = of_function("libaeb.so")
    assert first == of_function("libaeb.so")
    bound = of_function("libaeb.so", {"inputs": {"VehSpd": "ego_speed"}})
    assert bound.digest != first.digest
    assert (
        bound.digest != of_function("libaeb.so", {"inputs": {"VehSpd": "target_distance"}}).digest
    )
    lib.write_bytes(b"\x7fELF v2")
    assert of_function("libaeb.so").digest != first.digest
    assert "not readable here" in of_function("missing.fmu").source


def _ctx(spec: str, digest: str) -> dict[str, Any]:
    return {
        "function": spec,
        "function_fingerprint": digest,
        "function_build": "module fpmod_single at /session/host",
        "rec": "ccrs/a.mf4",
    }


def test_a_worker_with_another_build_errors_the_recording(module: Path) -> None:
    session = of_function("fpmod_single:Ttc")
    module.write_text(SOURCE.replace("0.0", "6.0"))  # this "worker" has other code
    failure = stages.check_build(_ctx("fpmod_single:Ttc", session.digest))
    assert failure is not None
    assert failure["ok"] is False and failure["stage"] == "aeb" and failure["outcome"] == "error"
    text = failure["error"]
    assert "ccrs/a.mf4: worker pid " in text and " on host " in text
    assert "has a different build of fpmod_single:Ttc (module fpmod_single at " in text
    assert (
        f"than the session (module fpmod_single at /session/host, fingerprint {session.short})"
        in text
    )
    assert "deploy the session's code" in text


def test_a_redeployed_worker_restarts_its_function_hosts(
    module: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files on disk match the session but not what this process ran last: the hosts
    (which hold the old module) are stopped, so the next recording loads the new code."""
    from pytest_adsreplay.function import host

    stopped: list[bool] = []
    monkeypatch.setattr(host, "shutdown", lambda: stopped.append(True))
    monkeypatch.setattr(fingerprint, "TRACKER", fingerprint.BuildTracker())
    old = of_function("fpmod_single:Ttc")
    assert stages.check_build(_ctx("fpmod_single:Ttc", old.digest)) is None
    assert stages.check_build(_ctx("fpmod_single:Ttc", old.digest)) is None
    assert stopped == []
    module.write_text(SOURCE.replace("0.0", "6.0"))
    new = of_function("fpmod_single:Ttc")
    assert stages.check_build(_ctx("fpmod_single:Ttc", new.digest)) is None
    assert stopped == [True]


def test_a_job_without_fingerprint_is_refused_never_run_unchecked() -> None:
    failure = stages.check_build({"function": "x:y", "rec": "r"})
    assert failure is not None and failure["ok"] is False
    assert "carries no fingerprint" in failure["error"]


# -- git working tree --------------------------------------------------------------------
def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_git_dirty(tmp_path: Path) -> None:
    assert fingerprint.git_dirty(tmp_path) is None  # not a repository
    _git(tmp_path, "init", "-q")
    (tmp_path / "aeb.py").write_text(SOURCE)
    _git(tmp_path, "add", "aeb.py")
    _git(tmp_path, "commit", "-q", "-m", "x")
    assert fingerprint.git_dirty(tmp_path) is False
    (tmp_path / "untracked.txt").write_text("not part of the build")
    assert fingerprint.git_dirty(tmp_path) is False
    (tmp_path / "aeb.py").write_text(SOURCE + "# edited\n")
    assert fingerprint.git_dirty(tmp_path) is True


# -- results database ----------------------------------------------------------------------
def test_runs_keep_the_dirty_flag_and_the_fingerprint(store_url: str) -> None:
    store = open_store(store_url)
    store.start_run("r1", git_commit="a" * 40, git_dirty=True, function_fingerprint="f" * 64)
    store.start_run("r2", git_commit="a" * 40, git_dirty=False)
    runs = {r["run_id"]: r for r in store.runs()}
    assert runs["r1"]["git_dirty"] is True and runs["r1"]["function_fingerprint"] == "f" * 64
    assert runs["r2"]["git_dirty"] is False and runs["r2"]["function_fingerprint"] is None


def test_runs_broker_is_masked_whatever_the_caller_passes(store_url: str) -> None:
    store = open_store(store_url)
    store.start_run("r1", broker="redis redis://:Pa55#w0rd@h:6391/0")
    (run,) = store.runs()
    assert run["broker"] == "redis redis://:***@h:6391/0"


OLD_RUNS = """CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, started_at REAL NOT NULL, finished_at REAL, function TEXT,
    params TEXT, channel_map TEXT, git_commit TEXT, plugin_version TEXT, host TEXT,
    recordings_root TEXT, broker TEXT, settings TEXT, exit_status INTEGER)"""


def test_an_older_sqlite_database_gets_the_new_columns(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as con:
        con.execute(OLD_RUNS)
        con.execute("INSERT INTO runs (run_id, started_at, git_commit) VALUES ('old', 1, 'c')")
    store = open_store(str(db))
    store.start_run("new", git_dirty=True, function_fingerprint="ab" * 32)
    runs = {r["run_id"]: r for r in store.runs()}
    assert runs["old"]["git_dirty"] is None and runs["old"]["function_fingerprint"] is None
    assert runs["new"]["git_dirty"] is True
    open_store(str(db))  # opening again is a no-op


def test_an_older_postgres_database_gets_the_new_columns(postgres_url: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url) as con:
        con.execute(OLD_RUNS.replace("REAL", "DOUBLE PRECISION"))
        con.execute("INSERT INTO runs (run_id, started_at, git_commit) VALUES ('old', 1, 'c')")
    store = open_store(postgres_url)
    store.start_run("new", git_dirty=False, function_fingerprint="ab" * 32)
    runs = {r["run_id"]: r for r in store.runs()}
    assert runs["old"]["git_dirty"] is None
    assert runs["new"]["git_dirty"] is False and runs["new"]["function_fingerprint"] == "ab" * 32

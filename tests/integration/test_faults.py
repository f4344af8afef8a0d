"""Faults on real Redis: hanging functions, killed workers, a dying Redis, no workers left.

Each test bounds its inner session (pytest-timeout) and checks that it ends with errors
instead of waiting, with exactly one results row per recording. The destructive ones use
a private redis-server, so other sessions on the shared one are not disturbed.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest
import redis
from integration_kit import (
    assert_within,
    collect,
    params,
    processes_with,
    result_rows,
    run_id_of,
    run_keys,
    run_pytest,
    spawn_pytest,
    start_worker,
    stop,
    wait_for,
    write_project,
)

from pytest_adsreplay.queue.broker import delete_run, make_queues
from pytest_adsreplay.queue.worker import HUNG_GRACE, LIVENESS_TTL, NO_WORKER_GRACE


def _markers(folder: Path, kph: int | None = None) -> list[Path]:
    return sorted(folder.glob(f"*-{kph}kph" if kph else "*"), key=lambda p: p.stat().st_mtime)


def _pid(marker: Path) -> int:
    return int(marker.name.split("-", 1)[0])


def _job_state(conn, pattern: str) -> tuple[str, str]:
    """(status, worker_name) of the one job whose key matches ``pattern``."""
    keys = [
        k
        for k in conn.scan_iter(match=pattern)
        if not k.endswith(b"dependents") and not k.endswith(b"dependencies")
    ]
    assert len(keys) == 1, keys
    status, worker = conn.hmget(keys[0], "status", "worker_name")
    return (status or b"").decode(), (worker or b"").decode()


@pytest.mark.timeout(90)
def test_hanging_function_times_out(real_redis: str, tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj", extra={"hang_33kph": 33})
    started = time.monotonic()
    result = run_pytest(
        project.root,
        "--redis-url",
        real_redis,
        "--adsreplay-workers",
        "2",
        "--adsreplay-timeout",
        "3",
        *params(hang_kph=33),
    )
    result.assert_outcomes(passed=6, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_extra[[]hang_33kph.mf4[]]*",
            "hang_33kph.mf4: *aeb stage*",
            "*aeb stage exceeded the per-stage timeout of 3.0 s (--adsreplay-timeout)*",
        ]
    )
    rows = result_rows(project, run_id_of(result))
    assert rows["hang_33kph.mf4"].status == "error"
    assert "per-stage timeout of 3.0 s" in rows["hang_33kph.mf4"].error
    assert {r.status for k, r in rows.items() if k != "hang_33kph.mf4"} == {"ok"}
    assert_within(time.monotonic() - started, fixed=3, steps=35, what="the session")


@pytest.mark.timeout(90)
def test_uninterruptible_hang_kills_the_worker(real_redis: str, tmp_path: Path) -> None:
    """A job stuck in C code ignores its timeout; the session fails it as a timeout
    ``HUNG_GRACE`` s later and kills that local worker; the other one does the rest."""
    project = write_project(tmp_path / "proj", extra={"stuck_33kph": 33})
    started = time.monotonic()
    result = run_pytest(
        project.root,
        "--redis-url",
        real_redis,
        "--adsreplay-workers",
        "2",
        "--adsreplay-timeout",
        "3",
        *params(c_hang_kph=33),
    )
    result.assert_outcomes(passed=6, errors=1)
    result.stdout.fnmatch_lines(["*aeb stage exceeded the per-stage timeout of 3.0 s*"])
    rows = result_rows(project, run_id_of(result))
    assert rows["stuck_33kph.mf4"].status == "error"
    assert_within(time.monotonic() - started, fixed=3 + HUNG_GRACE, steps=25, what="the session")
    assert processes_with(str(project.root)) == []


@pytest.mark.timeout(90)
@pytest.mark.parametrize("workers", ["local", "external"])
def test_sigkill_mid_job_is_retried_on_another_worker(
    workers: str, private_redis, tmp_path: Path
) -> None:
    """Local: the session sees the process exit. External: the worker's heartbeat
    process deletes its registration as soon as the worker is gone."""
    project = write_project(tmp_path / "proj", extra={"slow_45kph": 45})
    marks = tmp_path / "started"
    marks.mkdir()
    fleet = []
    if workers == "external":
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        fleet = [start_worker(private_redis.url, elsewhere, project.root) for _ in range(2)]
    try:
        proc = spawn_pytest(
            project.root,
            "--redis-url",
            private_redis.url,
            "--adsreplay-workers",
            "2" if workers == "local" else "0",
            "--adsreplay-timeout",
            "20",
            *params(delay=2.5, delay_kph=45, started_dir=str(marks)),
        )
        t0 = time.monotonic()
        first = wait_for(lambda: _markers(marks, 45), 30)[0]
        conn = private_redis.connection()
        status, victim = _job_state(conn, "rq:job:*-aeb-slow_45kph*")
        assert status == "started"
        os.kill(_pid(first), signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: _job_state(conn, "rq:job:*-aeb-slow_45kph*") != (status, victim), 15, 0.01)
        requeued = time.monotonic() - killed  # queued again, or already started elsewhere
        second = wait_for(lambda: [m for m in _markers(marks, 45) if m != first], 15, 0.01)[0]
        rerun = time.monotonic() - killed
        assert _pid(second) != _pid(first)
        assert _job_state(conn, "rq:job:*-aeb-slow_45kph*")[1] not in ("", victim)
        result = collect(proc, t0)
    finally:
        for w in fleet:
            stop(w)
    result.assert_outcomes(passed=7)
    rows = result_rows(project, run_id_of(result))
    assert len(rows) == 4 and {r.status for r in rows.values()} == {"ok"}
    assert_within(requeued, fixed=0, steps=3, what="noticing the killed worker")
    print(f"\n{workers} worker: SIGKILL -> requeued {requeued:.2f} s, running again {rerun:.2f} s")


@pytest.mark.timeout(90)
def test_sigkill_twice_ends_as_error(private_redis, tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj", extra={"slow_45kph": 45})
    marks = tmp_path / "started"
    marks.mkdir()
    proc = spawn_pytest(
        project.root,
        "--redis-url",
        private_redis.url,
        "--adsreplay-workers",
        "3",
        "--adsreplay-timeout",
        "20",
        *params(delay=2.5, delay_kph=45, started_dir=str(marks)),
    )
    t0 = time.monotonic()
    first = wait_for(lambda: _markers(marks, 45), 30)[0]
    os.kill(_pid(first), signal.SIGKILL)
    second = wait_for(lambda: [m for m in _markers(marks, 45) if m != first], 15, 0.01)[0]
    os.kill(_pid(second), signal.SIGKILL)
    killed = time.monotonic()
    result = collect(proc, t0)
    result.assert_outcomes(passed=6, errors=1)
    result.stdout.fnmatch_lines(
        [
            "slow_45kph.mf4: *aeb stage*",
            "*aeb stage: the worker process died while running it*",
            "*was killed by signal 9*retried once already*",
        ]
    )
    rows = result_rows(project, run_id_of(result))
    assert rows["slow_45kph.mf4"].status == "error"
    assert "retried once already" in rows["slow_45kph.mf4"].error
    assert_within(time.monotonic() - killed, fixed=0, steps=20, what="ending after the 2nd kill")


#: What the session says when Redis goes away mid-run. A restart shows as the server
#: failing when the session calls it while it is down (likely on a busy machine), else
#: as the run's keys gone; a flush always shows as the keys gone.
LOST = {
    "killed": ("failed during the run",),
    "restarted": ("failed during the run", "vanished from Redis"),
    "flushed": ("vanished from Redis",),
}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("fault", sorted(LOST))
def test_redis_lost_mid_run(fault: str, tmp_path: Path, redis_factory) -> None:
    server = redis_factory(password="Sup3r-s3cret")
    project = write_project(tmp_path / "proj", closing=(40, 45, 50), free=(60,))
    marks = tmp_path / "started"
    marks.mkdir()
    proc = spawn_pytest(
        project.root,
        "--redis-url",
        server.url,
        "--adsreplay-workers",
        "2",
        "--adsreplay-timeout",
        "10",
        *params(delay=1.5, started_dir=str(marks)),
    )
    t0 = time.monotonic()
    wait_for(lambda: _markers(marks), 30)
    if fault == "killed":
        server.kill()
    elif fault == "restarted":
        server.restart()
    else:
        with server.connection() as conn:
            conn.flushall()
    lost = time.monotonic()
    result = collect(proc, t0, timeout=60)
    ended = time.monotonic() - lost
    assert result.ret == 1
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) >= 1 and outcomes.get("passed", 0) < 8
    masked = f"redis://:***@127.0.0.1:{server.port}/0"
    out = result.stdout.str()
    assert any(why in out for why in LOST[fault]), out
    assert masked in out
    assert "Sup3r-s3cret" not in result.stdout.str()
    assert_within(ended, fixed=0, steps=25, what=f"ending the session after Redis was {fault}")
    rows = result_rows(project, run_id_of(result))
    assert len(rows) == 4
    assert processes_with(str(project.root)) == []


@pytest.mark.timeout(90)
def test_all_local_workers_dead(private_redis, tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj")
    marks = tmp_path / "started"
    marks.mkdir()
    proc = spawn_pytest(
        project.root,
        "--redis-url",
        private_redis.url,
        "--adsreplay-workers",
        "2",
        *params(delay=3.0, started_dir=str(marks)),
    )
    t0 = time.monotonic()
    busy = wait_for(lambda: m if len(m := _markers(marks)) >= 2 else None, 30)
    for marker in busy:
        os.kill(_pid(marker), signal.SIGKILL)
    killed = time.monotonic()
    result = collect(proc, t0, timeout=60)
    assert result.ret == 1
    assert result.parseoutcomes().get("errors", 0) >= 3
    result.stdout.fnmatch_lines(["*every local worker process is gone*killed by signal 9*"])
    assert_within(time.monotonic() - killed, fixed=0, steps=15, what="ending without workers")
    rows = result_rows(project, run_id_of(result))
    assert {r.status for r in rows.values()} == {"error"}


@pytest.mark.timeout(120)
def test_all_external_workers_dead(private_redis, tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj")
    marks = tmp_path / "started"
    marks.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    workers = [start_worker(private_redis.url, elsewhere, project.root) for _ in range(2)]
    try:
        proc = spawn_pytest(
            project.root,
            "--redis-url",
            private_redis.url,
            "--adsreplay-workers",
            "0",
            *params(delay=3.0, started_dir=str(marks)),
        )
        t0 = time.monotonic()
        wait_for(lambda: len(_markers(marks)) >= 2, 30)
        for w in workers:
            os.killpg(w.pid, signal.SIGKILL)
        killed = time.monotonic()
        result = collect(proc, t0, timeout=90)
    finally:
        for w in workers:
            stop(w)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*no live worker has listened on adsreplay-*"])
    grace = LIVENESS_TTL + NO_WORKER_GRACE
    assert_within(time.monotonic() - killed, fixed=grace, steps=10, what="ending without workers")
    rows = result_rows(project, run_id_of(result))
    assert {r.status for r in rows.values()} == {"error"}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["ctrl-c", "sigkill"])
def test_no_orphan_workers(how: str, real_redis: str, tmp_path: Path) -> None:
    """Ctrl-C stops the local workers at once; a SIGKILLed session's workers exit alone."""
    project = write_project(tmp_path / "proj")
    marks = tmp_path / "started"
    marks.mkdir()
    proc = spawn_pytest(
        project.root,
        "--redis-url",
        real_redis,
        "--adsreplay-workers",
        "2",
        *params(delay=5.0, started_dir=str(marks)),
    )
    t0 = time.monotonic()
    wait_for(lambda: _markers(marks), 30)
    workers = [
        p
        for p in processes_with(str(project.root))
        if p != proc.pid and b"function.host" not in Path(f"/proc/{p}/cmdline").read_bytes()
    ]
    assert len(workers) == 4  # 2 workers, each with its heartbeat process (hosts aside)
    proc.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
    result = collect(proc, t0, timeout=30)
    conn = redis.Redis.from_url(real_redis)
    run_id = run_id_of(result)
    if how == "ctrl-c":
        assert result.ret == 2
        result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
        assert processes_with(str(project.root)) == []
        assert run_keys(conn, run_id) == []
    else:
        wait_for(lambda: processes_with(str(project.root)) == [], 5)
        # nobody cleaned up: the run's data keys expire on their own
        keys = list(conn.scan_iter(match=f"adsreplay:{run_id}:*"))
        assert keys and all(0 < conn.ttl(k) <= 24 * 3600 for k in keys)
        delete_run(conn, run_id, make_queues(conn, f"adsreplay-{run_id}"))
        for logs in Path(tempfile.gettempdir()).glob("adsreplay-workers-*"):
            if any(run_id in f.name for f in logs.iterdir()):
                shutil.rmtree(logs)  # the workers' log folder is all that stays behind

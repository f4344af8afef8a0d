"""The queue's trust boundary: a worker runs only the plugin's stage functions, only for
a live session on that session's queues, and only the session's build of the function.

Jobs are planted straight into Redis the way anyone with write access could: JSON jobs
calling ``os.system`` on a fleet queue and on a live session's queue, stage jobs of a run
that is not a live session, and stage jobs of a live run on another namespace's queue.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from integration_kit import (
    enqueue_chains,
    result_rows,
    run_id_of,
    run_pytest,
    start_worker,
    stop,
    subprocess_env,
    unique,
    wait_for,
    write_project,
)

from pytest_adsreplay.queue import broker, trust


def _plain_queue(conn: Any, name: str) -> Any:
    """An attacker's rq queue: stock Job class, JSON serializer (no pickles needed)."""
    from rq import Queue
    from rq.serializers import JSONSerializer

    return Queue(name, connection=conn, serializer=JSONSerializer)


def _burst_worker(url: str, namespace: str, cwd: Path, pythonpath: Path) -> str:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_adsreplay.cli",
            "worker",
            "--redis-url",
            url,
            "--namespace",
            namespace,
            "--burst",
        ],
        cwd=cwd,
        env=subprocess_env(PYTHONPATH=str(pythonpath)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def _failure_text(conn: Any, job_id: str) -> str:
    job = broker.fetch_job(conn, job_id)
    assert job.get_status().value == "failed", job.get_status()
    result = job.latest_result()
    return str(result.exc_string if result is not None else "")


def test_the_payload_is_live(real_redis: str, tmp_path: Path) -> None:
    """Control: a stock rq worker does run the planted job (the marker appears)."""
    import redis
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    conn = redis.Redis.from_url(real_redis)
    name = unique("adsreplay-ctl")
    marker = tmp_path / "control"
    queue = _plain_queue(conn, f"{name}-read")
    job = queue.enqueue("os.system", f"touch {marker}")
    try:
        SimpleWorker([queue], connection=conn, serializer=JSONSerializer).work(burst=True)
        assert marker.exists()
    finally:
        job.delete()
        queue.delete(delete_jobs=True)


@pytest.mark.timeout(180)
def test_planted_code_jobs_are_refused(real_redis: str, tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj", closing=(40,), free=(60,))
    recs = sorted(project.recordings.glob("*.mf4"))
    fleet = unique("adsreplay-fleet")
    session = enqueue_chains(real_redis, fleet, recs, "aebfn:Ttc", str(tmp_path / "r.db"))
    conn, run = session.conn, session.cfg.run_id
    other = unique("adsreplay-other")
    markers = {k: tmp_path / f"pwned-{k}" for k in ("fleet", "session", "stage", "foreign")}
    planted: dict[str, Any] = {}
    try:
        # 1. os.system on the fleet queue and on the live session's own queue
        planted["fleet"] = _plain_queue(conn, f"{fleet}-read").enqueue(
            "os.system", f"touch {markers['fleet']}"
        )
        planted["session"] = _plain_queue(conn, f"{fleet}-aeb").enqueue(
            "os.system",
            f"touch {markers['session']}",
            job_id=f"{run}-aeb-planted",
        )
        # 2. a stage function for a run that is no live session
        ctx = {"run": "19700101T000000-dead00", "key": "k", "path": str(markers["stage"])}
        planted["stage"] = _plain_queue(conn, f"{fleet}-read").enqueue(
            "pytest_adsreplay.queue.stages.read_stage",
            ctx,
            job_id="19700101T000000-dead00-read-k",
        )
        # 3. a live run's stage job on a queue of another namespace
        ctx = {"run": run, "key": "k2", "path": str(markers["foreign"])}
        planted["foreign"] = _plain_queue(conn, f"{other}-read").enqueue(
            "pytest_adsreplay.queue.stages.read_stage", ctx, job_id=f"{run}-read-k2"
        )
        out = _burst_worker(real_redis, fleet, tmp_path, project.root)
        out += _burst_worker(real_redis, other, tmp_path, project.root)
        outcomes = {c.recording.id: session.outcome(c) for c in session.unfinished()}
        errors = {k: _failure_text(conn, job.id) for k, job in planted.items()}
    finally:
        session.cleanup()
        for job in planted.values():
            with contextlib.suppress(Exception):  # the session's cleanup took some
                job.delete()
        for ns in (fleet, other):
            for q in broker.make_queues(conn, ns).values():
                q.delete(delete_jobs=True)
    assert not [m.name for m in markers.values() if m.exists()], "a planted job ran"
    for key, text in errors.items():
        assert "SecurityError" in text and "nothing ran" in text, (key, text)
    assert "is not one of the plugin's stage functions" in errors["fleet"]
    assert "is not one of the plugin's stage functions" in errors["session"]
    assert "is not a live session" in errors["stage"]
    assert "does not belong to run" in errors["foreign"]
    assert "refused job" in out
    # the real session's recordings ran as usual beside the refused jobs
    assert {o.status for o in outcomes.values()} == {"ok"}, outcomes


def test_jobs_of_a_session_that_ended_are_refused(real_redis: str, tmp_path: Path) -> None:
    """A job left in Redis after its session ended (registration gone) never runs."""
    project = write_project(tmp_path / "proj", closing=(40,), free=())
    ns = unique("adsreplay-gone")
    session = enqueue_chains(
        real_redis, ns, list(project.recordings.glob("*.mf4")), "aebfn:Ttc", str(tmp_path / "r.db")
    )
    conn = session.conn
    try:
        session.registration.stop(remove=True)
        assert conn.get(trust.session_key(session.cfg.run_id)) is None
        _burst_worker(real_redis, ns, tmp_path, project.root)
        (chain,) = session.unfinished()
        read = broker.fetch_job(conn, f"{session.cfg.run_id}-read-{chain.key}")
        assert read.get_status().value == "failed"
        result = read.latest_result()
        assert result is not None and "is not a live session" in str(result.exc_string)
    finally:
        session.cleanup()
    assert not (tmp_path / "r.db").exists() or not result_rows_of(tmp_path / "r.db")


def result_rows_of(db: Path) -> list[Any]:
    from pytest_adsreplay.results.store import open_store

    store = open_store(str(db))
    return [r for run in store.runs() for r in store.results(str(run["run_id"]))]


__all__ = ["result_rows", "run_id_of", "run_pytest", "start_worker", "stop", "time", "wait_for"]

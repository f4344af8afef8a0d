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
from pathlib import Path
from typing import Any

import pytest
from integration_kit import (
    enqueue_chains,
    fleet_lease,
    result_rows,
    run_id_of,
    run_pytest,
    start_worker,
    stop,
    subprocess_env,
    unique,
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
            "--function",
            "aebfn:Ttc",
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
    assert {o.status for o in outcomes.values()} == {"ok"}, [o.error for o in outcomes.values()]


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
    assert not (tmp_path / "r.db").exists() or not _all_rows(tmp_path / "r.db")


def _all_rows(db: Path) -> list[Any]:
    from pytest_adsreplay.results.store import open_store

    store = open_store(str(db))
    return [r for run in store.runs() for r in store.results(str(run["run_id"]))]


def result_rows_of(db: Path) -> list[Any]:
    from pytest_adsreplay.results.store import open_store

    store = open_store(str(db))
    return [r for run in store.runs() for r in store.results(str(run["run_id"]))]


# -- the session's build or nothing ------------------------------------------------------
LATE = ("fcw_ttc=2.6, brake_ttc=1.6", "fcw_ttc=2.6, brake_ttc=0.5")  # brakes far too late


@pytest.mark.timeout(400)
def test_long_lived_workers_never_pass_with_stale_code(real_redis: str, tmp_path: Path) -> None:
    """Two ``adsreplay worker`` processes outlive the sessions. The function file is edited
    between two sessions: the second session runs the new code (the workers' hosts are
    restarted) and fails. A session whose code the workers do not have errors every
    recording with "has a different build", never a result from the workers' code."""
    import shutil

    project = write_project(tmp_path / "proj", closing=(40, 50), free=(60,))
    pristine = tmp_path / "pristine"
    shutil.copytree(project.root, pristine)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    args = ("--redis-url", real_redis, "--adsreplay-workers", "0", "-p", "no:randomly")
    with fleet_lease(real_redis):
        workers = [start_worker(real_redis, elsewhere, project.root) for _ in range(2)]
        try:
            first = run_pytest(project.root, *args, timeout=180)
            assert first.ret == 0, first.stdout.str()
            fn = project.root / "aebfn.py"
            source = fn.read_text()
            assert LATE[0] in source
            fn.write_text(source.replace(*LATE))
            second = run_pytest(project.root, *args, timeout=180)
            # the pristine copy: the session has the old code, the workers the edited one
            third = run_pytest(pristine, *args, timeout=180)
        finally:
            logs = "\n".join(stop(w) for w in workers)
    assert second.ret == 1 and second.parseoutcomes().get("failed", 0) >= 2, second.stdout.str()
    before = result_rows(project, run_id_of(first))
    rows = result_rows(project, run_id_of(second))
    for name in project.closing:  # the new code ran: no braking at TTC 1.6 s any more
        assert before[name].kpis["ttc_at_brake"] > 1.0
        row = rows[name]
        late = row.kpis["ttc_at_brake"]
        assert row.status == "ok" and (late is None or late < 0.8), (row, logs)
    from pytest_adsreplay.results.store import open_store

    runs = open_store(str(project.root / "results.sqlite"))
    builds = [runs.run(run_id_of(r)) for r in (first, second)]
    assert all(b and len(str(b["function_fingerprint"])) == 64 for b in builds), builds
    assert builds[0]["function_fingerprint"] != builds[1]["function_fingerprint"]  # type: ignore[index]
    bad = result_rows(project.__class__(pristine, pristine / "recs", [], []), run_id_of(third))
    assert {r.status for r in bad.values()} == {"error"}, bad
    for row in bad.values():
        assert "has a different build of aebfn:Ttc" in (row.error or ""), row.error
        assert "worker adsreplay-" in (row.error or "") and " on host " in (row.error or "")
    third.stdout.fnmatch_lines(["*has a different build of aebfn:Ttc*than the session*"])
    assert third.ret != 0


def test_the_embedded_worker_refuses_planted_jobs_too(tmp_path: Path) -> None:
    """No real Redis needed: the in-process worker of the embedded mode has the same
    check (its private fakeredis is reachable only from the session, but a bug or a
    hostile recording must not turn into code execution either)."""
    from pytest_adsreplay.queue.pipeline import Chain, ReplaySession, SessionConfig, new_run_id
    from pytest_adsreplay.recordings import discover

    project = write_project(tmp_path / "proj", closing=(40,), free=())
    cfg = SessionConfig(
        run_id=new_run_id(),
        function="aebfn:Ttc",
        params={},
        channel_map=None,
        cycle_time=0.01,
        db=str(tmp_path / "r.db"),
        timeout=60,
        namespace="adsreplay-embedded",
        settings={"brake_threshold": 1.0, "actuator_delay": 0.2, "brake_jerk": 40.0},
    )
    session = ReplaySession(cfg, broker.connect(None), embedded=True)
    session.enqueue([Chain(recording=r, params={}) for r in discover([project.recordings])])
    marker = tmp_path / "pwned"
    job = _plain_queue(session.conn, "adsreplay-embedded-read").enqueue(
        "os.system", f"touch {marker}", at_front=True
    )
    try:
        worker = broker.in_process_worker(session.conn, broker.worker_order(session.queues))
        worker.run(max_jobs=1)
        worker.close()
        assert "is not one of the plugin's stage functions" in _failure_text(session.conn, job.id)
    finally:
        session.cleanup()
    assert not marker.exists()

"""External workers: ``adsreplay worker`` (and the plain ``rq worker`` equivalent) in
another working directory serve a session that runs with ``--adsreplay-workers 0``.

They all listen on the fleet queues, so each test gets a Redis of its own (``fleet_redis``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from integration_kit import (
    Project,
    assert_within,
    result_rows,
    run_id_of,
    run_keys,
    run_pytest,
    start_worker,
    stop,
    subprocess_env,
    unique,
    write_function_module,
)

pytestmark = pytest.mark.timeout(120)

#: The README's plain rq command line for a fleet worker (what ``adsreplay worker`` runs).
RQ_WORKER = [
    "-m",
    "rq.cli",
    "worker",
    "--serializer",
    "rq.serializers.JSONSerializer",
    "-w",
    "rq.worker.SimpleWorker",
    "-j",
    "pytest_adsreplay.queue.trust.TrustedJob",
    "adsreplay-db",
    "adsreplay-aeb",
    "adsreplay-read",
]


def _elsewhere(tmp_path: Path) -> tuple[Path, Path]:
    """(cwd, PYTHONPATH) of external workers: a fresh folder and a copy of the function
    module in another one, as on a worker host where it is installed separately."""
    cwd, lib = tmp_path / "worker-host", tmp_path / "worker-lib"
    cwd.mkdir()
    write_function_module(lib)
    return cwd, lib


def test_two_adsreplay_workers_serve_a_session(
    fleet_redis: str, project: Project, tmp_path: Path
) -> None:
    cwd, lib = _elsewhere(tmp_path)
    workers = [start_worker(fleet_redis, cwd, lib) for _ in range(2)]
    try:
        result = run_pytest(project.root, "--redis-url", fleet_redis, "--adsreplay-workers", "0")
    finally:
        logs = [stop(w) for w in workers]
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(
        ["*workers external only (queues adsreplay-read, adsreplay-aeb, adsreplay-db)*"]
    )
    run_id = run_id_of(result)
    assert {r.status for r in result_rows(project, run_id).values()} == {"ok"}
    import redis

    assert run_keys(redis.Redis.from_url(fleet_redis), run_id) == []
    for log in logs:  # one start-up line each, then WARNING level: nothing per job
        lines = log.strip().splitlines()
        assert lines[0].startswith("adsreplay worker ") and "queues adsreplay-db, " in lines[0]
        assert not any(run_id in line for line in lines), log


def test_plain_rq_worker_command(fleet_redis: str, project: Project, tmp_path: Path) -> None:
    """The documented ``rq worker`` line works too (no preloading, no fast liveness)."""
    cwd, lib = _elsewhere(tmp_path)
    worker = subprocess.Popen(
        [sys.executable, *RQ_WORKER, "--url", fleet_redis],
        cwd=cwd,
        env=subprocess_env(PYTHONPATH=str(lib), ADSREPLAY_WORKER_FUNCTIONS="aebfn:Ttc"),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        result = run_pytest(project.root, "--redis-url", fleet_redis, "--adsreplay-workers", "0")
    finally:
        log = stop(worker)
    result.assert_outcomes(passed=6)
    assert "Job OK" in log


def test_burst_worker_exits_when_the_queues_are_empty(real_redis: str, tmp_path: Path) -> None:
    cwd, lib = _elsewhere(tmp_path)
    started = time.monotonic()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_adsreplay.cli",
            "worker",
            "--redis-url",
            real_redis,
            "--burst",
            "--namespace",
            unique("adsreplay-empty"),
        ],
        cwd=cwd,
        env=subprocess_env(PYTHONPATH=str(lib)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "burst" in out.stderr
    assert_within(
        time.monotonic() - started, fixed=0, steps=15, what="a burst worker on empty queues"
    )


def test_session_without_workers_gives_up(private_redis, project: Project) -> None:
    """``--adsreplay-workers 0`` and nobody listening: errors after the grace period."""
    from pytest_adsreplay.queue.worker import NO_WORKER_GRACE

    started = time.monotonic()
    result = run_pytest(
        project.root,
        "--redis-url",
        private_redis.url,
        "--adsreplay-workers",
        "0",
        "--adsreplay-timeout",
        "5",
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            f"*no live worker has listened on adsreplay-*for {NO_WORKER_GRACE:.0f} s*",
            "*adsreplay worker --redis-url*",
        ]
    )
    elapsed = time.monotonic() - started
    assert_within(elapsed, fixed=NO_WORKER_GRACE, steps=15, what="a session without workers")
    assert run_keys(private_redis.connection(), run_id_of(result)) == []

"""Two sessions on the same Redis at the same time never see each other's jobs, data or
results, and each deletes its keys at the end."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from integration_kit import (
    collect,
    result_rows,
    run_id_of,
    run_keys,
    spawn_pytest,
    start_worker,
    stop,
    write_function_module,
    write_project,
)

pytestmark = pytest.mark.timeout(150)


@pytest.mark.parametrize("workers", ["local", "external"])
def test_concurrent_sessions_are_isolated(
    workers: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Same recordings, different functions (Ttc brakes at TTC 1.6 s, Cautious at 2.0 s).

    With external workers both sessions share the fleet queues: only the run ids in job
    ids and data keys keep them apart.
    """
    import redis

    a = write_project(tmp_path / "a", closing=(40, 45, 50, 55))
    b = write_project(tmp_path / "b", closing=(40, 45, 50, 55))
    fleet = []
    if workers == "external":  # the fleet queues: on a Redis no other test uses
        url = request.getfixturevalue("fleet_redis")
        lib = tmp_path / "lib"
        write_function_module(lib)
        host = tmp_path / "host"
        host.mkdir()
        fleet = [
            start_worker(url, host, lib, functions=["aebfn:Ttc", "aebfn:Cautious"])
            for _ in range(2)
        ]
        args = ["--redis-url", url, "--adsreplay-workers", "0"]
    else:
        url = request.getfixturevalue("real_redis")
        args = ["--redis-url", url, "--adsreplay-workers", "1"]
    try:
        started = time.monotonic()
        pa = spawn_pytest(a.root, *args)
        pb = spawn_pytest(b.root, *args, "--aeb-function", "aebfn:Cautious")
        ra, rb = collect(pa, started), collect(pb, started)
    finally:
        logs = [stop(w) for w in fleet]
    for result in (ra, rb):  # on a mismatch: the session's and the workers' output
        outcomes = result.parseoutcomes()
        assert (outcomes.get("passed"), outcomes.get("errors", 0)) == (10, 0), "\n".join(
            [result.stdout.str(), *logs]
        )
    run_a, run_b = run_id_of(ra), run_id_of(rb)
    assert run_a != run_b
    rows_a, rows_b = result_rows(a, run_a), result_rows(b, run_b)
    assert sorted(rows_a) == sorted(rows_b) and len(rows_a) == 5
    for rec in a.closing:
        assert abs(rows_a[rec].kpis["ttc_at_brake"] - 1.6) < 0.02, rec
        assert abs(rows_b[rec].kpis["ttc_at_brake"] - 2.0) < 0.02, rec
    conn = redis.Redis.from_url(url)
    assert run_keys(conn, run_a) == [] and run_keys(conn, run_b) == []
    for run in (run_a, run_b):
        assert list(conn.scan_iter(match=f"*{run}*", count=1000)) == []

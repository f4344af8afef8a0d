"""One suite, four modes: the same small project passes (and fails) the same way with
fakeredis, real Redis with 1 and with 2 local workers, and external workers."""

from __future__ import annotations

import pytest
from integration_kit import (
    Mode,
    Project,
    processes_with,
    result_rows,
    run_id_of,
    run_keys,
    run_pytest,
)

pytestmark = pytest.mark.timeout(120)


def _no_traces(url: str | None, run_id: str) -> None:
    """Nothing of the run is left: no keys in the Redis at ``url``, no worker processes."""
    import redis

    if url is not None:
        conn = redis.Redis.from_url(url)
        assert run_keys(conn, run_id) == []
        assert list(conn.scan_iter(match=f"*{run_id}*", count=1000)) == []
    assert processes_with(run_id) == []


def test_suite_passes(mode: Mode, project: Project) -> None:
    result = run_pytest(project.root, *mode.args)
    result.assert_outcomes(passed=6)
    run_id = run_id_of(result)
    rows = result_rows(project, run_id)
    assert sorted(rows) == sorted(project.closing + project.free)
    assert {r.status for r in rows.values()} == {"ok"}
    assert 1.55 <= rows["closing_50kph.mf4"].kpis["ttc_at_brake"] <= 1.65
    workers = {
        "fakeredis": "in-process",
        "redis-1": "1 local process",
        "redis-N": "2 local processes",
        "external": "external only*",
    }
    result.stdout.fnmatch_lines([f"*workers {workers[mode.name]}*run {run_id}*"])
    _no_traces(mode.url, run_id)


def test_suite_fails_alike(mode: Mode, project: Project) -> None:
    """A late-braking calibration fails the same tests with the same message everywhere."""
    result = run_pytest(project.root, *mode.args, "-o", "adsreplay_function_params={brake_ttc=0.6}")
    outcomes = result.parseoutcomes()
    got = {k: outcomes.get(k, 0) for k in ("passed", "failed", "errors")}
    assert got == {"passed": 2, "failed": 4, "errors": 0}, result.stdout.str()[-6000:]
    result.stdout.fnmatch_lines(
        [
            "closing_50kph.mf4: 3 expectation(s) of *closing_50kph.toml violated:",
            "  - brake = False, expected == True",
            "*FAILED test_aeb.py::test_brakes_in_time[[]closing_40kph.mf4[]] - AssertionError*",
        ]
    )
    rows = result_rows(project, run_id_of(result))
    assert rows["closing_50kph.mf4"].kpis["collision"] is True
    assert rows["closing_50kph.mf4"].kpis["brake_time"] is None
    assert rows["closing_50kph.mf4"].status == "ok"  # the function ran; the test judged it
    _no_traces(mode.url, run_id_of(result))


@pytest.mark.parametrize("broker", ["fakeredis", "redis"])
def test_xdist_two_processes(broker: str, request: pytest.FixtureRequest, project: Project) -> None:
    """``pytest -n 2``: on real Redis both xdist workers share the run's queues and
    enqueue each chain once; each starts max(1, N // 2) local workers."""
    args, url = ["-n", "2"], None
    if broker == "redis":
        url = request.getfixturevalue("real_redis")
        args += ["--redis-url", url, "--adsreplay-workers", "2"]
    result = run_pytest(project.root, *args)
    result.assert_outcomes(passed=6)
    run_id = run_id_of(result)
    assert {r.status for r in result_rows(project, run_id).values()} == {"ok"}
    _no_traces(url, run_id)

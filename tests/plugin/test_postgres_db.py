"""``--adsreplay-db postgresql://…``: a whole session stores its rows in PostgreSQL."""

from __future__ import annotations

import pytest
from store_backends import postgres_url

from pytest_adsreplay import cli
from pytest_adsreplay.results.store import PostgresStore, open_store

__all__ = ["postgres_url"]


def test_session_writes_runs_and_results_to_postgres(
    project: pytest.Pytester, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project.makepyfile(test_r="def test_r(replay):\n    assert replay.brake_time\n")
    result = project.runpytest("--recordings=recs", f"--adsreplay-db={postgres_url}")
    result.assert_outcomes(passed=4)
    store = open_store(postgres_url)
    assert isinstance(store, PostgresStore)
    (run,) = store.runs()
    assert run["exit_status"] == 0 and run["function"] == "aebfn:Ttc"
    rows = store.results(run["run_id"])
    assert [r.recording_id for r in rows] == ["ccrm/c50.mf4", "ccrs/a40.mf4", "ccrs/b60.mf4"]
    assert all(r.status == "ok" for r in rows)
    assert rows[1].kpis["brake_time"] == 4.5 and rows[1].kpis["collision"] is False
    assert len(rows[1].recording_sha256 or "") == 64

    assert cli.main(["history", "ccrs/a40.mf4", "--db", postgres_url]) == 0
    assert run["run_id"] in capsys.readouterr().out


def test_unreachable_postgres_is_a_usage_error(project: pytest.Pytester) -> None:
    pytest.importorskip("psycopg")
    url = "postgresql://ci:hunter2@127.0.0.1:1/results"
    result = project.runpytest("--recordings=recs", f"--adsreplay-db={url}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*results database postgresql://ci:***@127.0.0.1:1/results: cannot connect to PostgreSQL*"]
    )
    assert "hunter2" not in result.stderr.str() + result.stdout.str()

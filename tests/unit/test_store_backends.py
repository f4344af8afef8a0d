"""The results store behaves the same on SQLite and PostgreSQL (same schema, same API)."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from pytest_adsreplay import cli
from pytest_adsreplay.errors import UsageError
from pytest_adsreplay.results.store import PostgresStore, ResultsStore, open_store

KPIS = {
    "fcw_time": 3.5,
    "brake_time": 4.5,
    "ttc_at_fcw": 2.5,
    "ttc_at_brake": 1.4999999999999991,
    "fcw_lead_time": 1.0,
    "min_ttc": 0.65,
    "max_decel": 9.0,
    "activations": [{"start": 4.5, "end": 5.39, "peak_decel": 9.0, "ttc_at_start": 1.5}],
    "collision": False,
    "impact_speed": 0.0,
    "min_distance": 6.354718257030129,
    "recorded_brake_time": None,
    "target_id_at_brake": None,
    "reacted_to_at_brake": None,
    "braked_for_out_of_path": None,
}


def test_open_store_picks_the_backend(store_url: str) -> None:
    store = open_store(store_url)
    assert isinstance(store, PostgresStore if store_url.startswith("postgresql") else ResultsStore)
    open_store(store_url)  # the schema is created once, opening again is harmless


def test_runs_and_results_round_trip(store_url: str) -> None:
    store = open_store(store_url)
    store.start_run("r1", function="m:F", params={"late": 0.3}, settings={"cycle_time": 0.01})
    store.start_run("r1", function="ignored: the first row stays")
    store.write_result("r1", "b.mf4", status="ok", kpis=KPIS, sha256="ab" * 32)
    store.write_result("r1", "a.mf4", status="failed", stage="aeb", error="boom")
    store.write_result("r1", "a.mf4", status="ok", variant="p1", kpis={**KPIS, "min_ttc": math.inf})
    store.finish_run("r1", 1)
    run = store.run("r1")
    assert run is not None
    assert run["function"] == "m:F" and run["params"] == '{"late": 0.3}'
    assert run["exit_status"] == 1 and run["finished_at"] >= run["started_at"]
    rows = store.results("r1")
    assert [(r.recording_id, r.variant, r.status) for r in rows] == [
        ("a.mf4", "", "failed"),
        ("a.mf4", "p1", "ok"),
        ("b.mf4", "", "ok"),
    ]
    b = rows[2]
    assert b.kpis == KPIS  # full double precision, bool back as bool, activations as list
    assert b.recording_sha256 == "ab" * 32
    assert rows[1].kpis["min_ttc"] == math.inf
    assert rows[0].error == "boom" and rows[0].stage == "aeb" and rows[0].kpis["brake_time"] is None
    assert store.has_result("r1", "a.mf4", "p1") and not store.has_result("r1", "c.mf4")


def test_write_result_replaces_the_row(store_url: str) -> None:
    store = open_store(store_url)
    store.start_run("r1")
    store.write_result("r1", "a.mf4", status="error", stage="wait", error="late")
    store.write_result("r1", "a.mf4", status="ok", kpis=KPIS)
    (row,) = store.results("r1")
    assert row.status == "ok" and row.error is None and row.kpis["brake_time"] == 4.5
    with pytest.raises(ValueError, match="status 'bogus'"):
        store.write_result("r1", "a.mf4", status="bogus")


def test_history_and_counts(store_url: str) -> None:
    store = open_store(store_url)
    for i, run in enumerate(("r1", "r2", "r3")):
        store.start_run(run, function="m:F")
        store.write_result(run, "a.mf4", status="ok", kpis={**KPIS, "brake_time": 4.5 + i / 10})
        store.write_result(run, "b.mf4", status="ok", kpis={**KPIS, "collision": i == 2})
    store.write_result("r3", "c.mf4", status="invalid", error="gap")
    hist = store.history("a.mf4")
    assert [run["run_id"] for run, _ in hist] == ["r3", "r2", "r1"]  # newest first
    assert [row.kpis["brake_time"] for _, row in hist] == pytest.approx([4.7, 4.6, 4.5])
    assert [run["run_id"] for run, _ in store.history("a.mf4", limit=1)] == ["r3"]
    assert store.recording_ids() == ["a.mf4", "b.mf4", "c.mf4"]
    counts = store.status_counts()
    assert counts["r3"] == {"ok": 2, "invalid": 1, "collisions": 1}
    assert counts["r1"] == {"ok": 2, "collisions": 0}


def test_sqlite_schema_is_unchanged(tmp_path: Path) -> None:
    open_store(str(tmp_path / "r.sqlite"))
    con = sqlite3.connect(tmp_path / "r.sqlite")
    cols = {row[1]: row[2] for row in con.execute("PRAGMA table_info(results)")}
    assert cols["brake_time"] == "REAL" and cols["collision"] == "INTEGER"
    assert cols["activations"] == "TEXT"


def test_postgres_uses_double_precision(postgres_url: str) -> None:
    import psycopg

    open_store(postgres_url)
    with psycopg.connect(postgres_url) as con:
        kinds: dict[str, str] = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'results'"
            ).fetchall()
        )
    assert kinds["brake_time"] == "double precision"
    assert kinds["collision"] == "integer"


def test_unreachable_postgres_is_a_usage_error_with_the_password_masked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("psycopg")
    url = "postgresql://me:s3cret@127.0.0.1:1/nodb"
    with pytest.raises(UsageError) as info:
        open_store(url)
    text = str(info.value)
    assert text.startswith("cannot connect to PostgreSQL: connection failed")
    assert "s3cret" not in text
    assert cli.main(["history", "--db", url]) == 2
    err = capsys.readouterr().err
    assert "error: results database postgresql://me:***@127.0.0.1:1/nodb: cannot connect" in err
    assert "s3cret" not in err

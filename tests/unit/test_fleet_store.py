"""Fleet statistics stored with the run (SQLite and PostgreSQL) and ``history --stats``."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from pytest_adsreplay import cli
from pytest_adsreplay.fleet import Event, RecordingFacts, fleet_stats, stats_lines
from pytest_adsreplay.fleet.stats import GroupStats
from pytest_adsreplay.results.store import open_store


def _facts() -> list[RecordingFacts]:
    fa = Event("fleet/0001_highway.mf4", 312.4, 9.0, 7)
    return [
        RecordingFacts(
            "fleet/0001_highway.mf4",
            scenario="fleet",
            tags=("fleet", "false-activation", "highway"),
            expect_brake=False,
            expect_fcw=False,
            distance_m=12_500.0,
            duration_s=400.0,
            activations=(fa,),
            warnings=(Event("fleet/0001_highway.mf4", 311.9),),
        ),
        RecordingFacts(
            "fleet/0002_curves.mf4",
            scenario="fleet",
            tags=("fleet", "false-activation", "curves"),
            distance_m=4000.0,
            duration_s=200.0,
        ),
        RecordingFacts(
            "ncap/CCRs_40kph.mf4",
            scenario="CCRs",
            tags=("ncap",),
            status="failed",
            passed=False,
            expect_brake=True,
            distance_m=80.0,
            duration_s=8.0,
            activations=(Event("ncap/CCRs_40kph.mf4", 4.5, 9.0),),
        ),
        RecordingFacts("ncap/bad.mf4", scenario="CCRs", status="invalid", passed=False),
    ]


def test_group_stats_survive_json() -> None:
    for g in fleet_stats(_facts()):
        back = GroupStats.from_json(g.to_json())
        assert back == g
    assert stats_lines([GroupStats.from_json(g.to_json()) for g in fleet_stats(_facts())]) == (
        stats_lines(fleet_stats(_facts()))
    )


def test_stats_round_trip_per_run(store_url: str) -> None:
    store = open_store(store_url)
    store.start_run("r1")
    groups = fleet_stats(_facts())
    store.write_stats("r1", groups)
    back = store.read_stats("r1")
    assert [g.name for g in back] == [g.name for g in groups]  # the order written
    assert back == groups
    overall = back[0]
    assert overall.false_activations.count == 1
    assert overall.false_activations.events[0].target_id == 7
    assert overall.km == pytest.approx(16.58)
    assert store.read_stats("other") == []
    # written again (a rerun of the session's end) replaces, never adds
    store.write_stats("r1", groups[:2])
    assert [g.name for g in store.read_stats("r1")] == [g.name for g in groups[:2]]


def test_stats_are_columns_for_plain_sql(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    store = open_store(str(db))
    store.write_stats("r1", fleet_stats(_facts()))
    con = sqlite3.connect(db)
    row = con.execute(
        "SELECT km, hours, false_activations, passed, judged FROM run_stats "
        "WHERE run_id = 'r1' AND group_name = 'all'"
    ).fetchone()
    assert row[0] == pytest.approx(16.58) and row[1] == pytest.approx(608 / 3600)
    assert row[2:] == (1, 2, 3)


def test_an_older_database_gets_the_table_on_open(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, started_at REAL NOT NULL)")
    con.execute("INSERT INTO runs VALUES ('old', 1.0)")
    con.commit()
    con.close()
    store = open_store(str(db))
    assert store.read_stats("old") == []
    store.write_stats("old", fleet_stats(_facts())[:1])
    assert [g.name for g in store.read_stats("old")] == ["all"]


def test_history_stats_prints_the_latest_run_or_the_one_named(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(store_url)
    store.start_run("20250101T100000-aaaaaa", function="aebfn:Ttc")
    time.sleep(0.01)
    store.start_run("20250102T100000-bbbbbb", function="aebfn:Ttc")
    store.write_stats("20250101T100000-aaaaaa", fleet_stats(_facts()[1:2]))
    store.write_stats("20250102T100000-bbbbbb", fleet_stats(_facts()))

    assert cli.main(["history", "--db", store_url, "--stats"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("run 20250102T100000-bbbbbb (") and "function aebfn:Ttc" in out[0]
    assert out[1:] == [
        *stats_lines(fleet_stats(_facts())),
        "false activations (all, 1):",
        "  - fleet/0001_highway.mf4 t=312.40 s, peak 9.0 m/s², target id 7",
        "false warnings (all, 1):",
        "  - fleet/0001_highway.mf4 t=311.90 s",
    ]
    assert cli.main(["history", "--db", store_url, "--stats", "20250101"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("run 20250101T100000-aaaaaa")
    assert out[1:] == stats_lines(fleet_stats(_facts()[1:2]))


def test_history_stats_of_a_run_without_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "r.sqlite")
    open_store(db).start_run("20250101T100000-aaaaaa")
    assert cli.main(["history", "--db", db, "--stats"]) == 0
    out = capsys.readouterr().out
    assert "20250101T100000-aaaaaa" in out and "no fleet statistics stored" in out
    assert cli.main(["history", "--db", db, "--stats", "nope"]) == 2
    assert "no run 'nope'" in capsys.readouterr().err
    assert cli.main(["history", "a.mf4", "--db", db, "--stats"]) == 2
    assert "--stats shows a run, not recording 'a.mf4'" in capsys.readouterr().err

"""``adsreplay history`` and ``adsreplay compare`` on a results database with three runs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pytest_adsreplay import cli
from pytest_adsreplay.errors import UsageError
from pytest_adsreplay.results.history import compare_lines, recording_lines, resolve_run, runs_lines
from pytest_adsreplay.results.store import ResultsStore, open_store

BASE = {
    "fcw_time": 3.5,
    "brake_time": 4.5,
    "ttc_at_fcw": 2.5,
    "ttc_at_brake": 1.5,
    "fcw_lead_time": 1.0,
    "min_ttc": 0.65,
    "max_decel": 9.0,
    "activations": [{"start": 4.5, "end": 5.4, "peak_decel": 9.0, "ttc_at_start": 1.5}],
    "collision": False,
    "impact_speed": 0.0,
    "min_distance": 6.35,
    "recorded_brake_time": None,
}
RUNS = ("20250101T100000-aaaaaa", "20250102T100000-bbbbbb", "20250103T100000-cccccc")


def _three_runs(url: str) -> ResultsStore:
    """run 1: all fine; run 2: b60 brakes 0.3 s late and collides, c50 fails in the
    function; run 3: b60 fixed, c50 still failing, a40 slightly earlier, d70 new."""
    store = open_store(url)
    for i, run in enumerate(RUNS):
        store.start_run(
            run,
            function="aebfn:Ttc",
            git_commit=f"{i + 1}" * 40,
            git_dirty=i == 2,  # run 3 from an edited working tree
            function_fingerprint=("f1" if i < 2 else "f2") * 32,
        )
        time.sleep(0.01)  # started_at orders the runs
    late = {
        **BASE,
        "brake_time": 4.8,
        "ttc_at_brake": 1.2,
        "fcw_lead_time": 1.3,
        "min_distance": 0.0,
        "collision": True,
        "impact_speed": 13.559 / 3.6,
    }
    rows: dict[str, dict[str, dict[str, object] | None]] = {
        RUNS[0]: {"ccrs/a40.mf4": BASE, "ccrs/b60.mf4": BASE, "ccrm/c50.mf4": BASE},
        RUNS[1]: {"ccrs/a40.mf4": BASE, "ccrs/b60.mf4": late, "ccrm/c50.mf4": None},
        RUNS[2]: {
            "ccrs/a40.mf4": {**BASE, "brake_time": 4.4},
            "ccrs/b60.mf4": BASE,
            "ccrm/c50.mf4": None,
            "ccrs/d70.mf4": BASE,
        },
    }
    for run, recs in rows.items():
        for rid, kpis in recs.items():
            if kpis is None:
                store.write_result(
                    run,
                    rid,
                    status="failed",
                    stage="aeb",
                    error="ccrm/c50.mf4: ZeroDivisionError at t=3.000 s\ntrace",
                )
            else:
                store.write_result(run, rid, status="ok", kpis=kpis, sha256="ab" * 32)
        store.finish_run(run, 0 if run == RUNS[0] else 1)
    return store


@pytest.fixture
def db(store_url: str) -> ResultsStore:
    return _three_runs(store_url)


def test_runs_newest_first_with_counts(db: ResultsStore) -> None:
    lines = runs_lines(db)
    assert lines[0].split() == [
        "run",
        "started",
        "commit",
        "function",
        "build",
        "recordings",
        "ok",
        "collisions",
        "failed",
        "error",
        "invalid",
        "exit",
    ]
    body = [line.split() for line in lines[2:]]
    assert [row[0] for row in body] == list(reversed(RUNS))
    # run, date, time, commit, function, build, recordings, ok, collisions, failed, error,
    # invalid, exit
    f1, f2 = "f1" * 6, "f2" * 6
    assert body[0][3:] == ["3333333333+dirty", "aebfn:Ttc", f2, "4", "3", "0", "1", "0", "0", "1"]
    assert body[1][3:] == ["2222222222", "aebfn:Ttc", f1, "3", "2", "1", "1", "0", "0", "1"]
    assert body[2][3:] == ["1111111111", "aebfn:Ttc", f1, "3", "3", "0", "0", "0", "0", "0"]
    assert len(runs_lines(db, limit=1)) == 3


def test_recording_trend_newest_first(db: ResultsStore) -> None:
    lines = recording_lines(db, "ccrs/b60.mf4")
    assert lines[0] == "ccrs/b60.mf4: 3 result(s), newest first"
    assert lines[1].split()[:6] == ["run", "started", "commit", "build", "status", "fcw"]
    body = [line.split() for line in lines[3:]]
    assert [row[0] for row in body] == list(reversed(RUNS))
    # status, fcw, brake, TTC@brake, FCW lead, min dist, collision, impact [km/h]
    assert body[0][3:5] == ["3333333333+dirty", "f2" * 6]
    assert body[0][5:] == ["ok", "3.500", "4.500", "1.500", "1.000", "6.350", "no", "0.0"]
    assert body[1][5:] == ["ok", "3.500", "4.800", "1.200", "1.300", "0.000", "yes", "13.6"]
    failed = recording_lines(db, "ccrm/c50.mf4", kpis=("brake_time", "activations"))
    assert failed[3].split()[5:] == ["failed", "-", "0"]


def test_unknown_recording_suggests_close_ids(db: ResultsStore) -> None:
    with pytest.raises(UsageError, match=r"no results for recording 'ccrs/b6.mf4'") as info:
        recording_lines(db, "ccrs/b6.mf4")
    assert "did you mean ccrs/b60.mf4" in str(info.value)


def test_compare_shows_deltas_new_and_fixed_failures(db: ResultsStore) -> None:
    text = "\n".join(compare_lines(db, RUNS[0], RUNS[1]))
    assert f"A = run {RUNS[0]}" in text and f"B = run {RUNS[1]}" in text
    row = next(line for line in text.splitlines() if line.startswith("ccrs/b60.mf4"))
    assert "ok -> collision" in row
    assert "4.800 (+0.300)" in row and "1.200 (-0.300)" in row and "13.6 (+13.6)" in row
    assert "no -> yes" in row
    c50 = next(line for line in text.splitlines() if line.startswith("ccrm/c50.mf4"))
    assert c50.split()[1:4] == ["ok", "->", "failed"] and set(c50.split()[4:]) == {"-"}
    assert "(1 recording(s) unchanged; --all lists them too)" in text  # a40
    assert "new failures (2):" in text
    assert "  ccrm/c50.mf4: ok -> failed (ccrm/c50.mf4: ZeroDivisionError at t=3.000 s)" in text
    assert "  ccrs/b60.mf4: ok -> collision" in text
    assert "fixed failures: none" in text

    text = "\n".join(compare_lines(db, RUNS[1], RUNS[2]))
    assert "new failures: none" in text
    assert "fixed failures (1):\n  ccrs/b60.mf4: collision -> ok" in text
    assert "only in B (1): ccrs/d70.mf4" in text
    a40 = next(line for line in text.splitlines() if line.startswith("ccrs/a40.mf4"))
    assert "4.400 (-0.100)" in a40
    assert "ccrm/c50.mf4" not in text.split("fixed failures")[0]  # failed -> failed: no change


def test_compare_all_lists_unchanged_recordings(db: ResultsStore) -> None:
    text = "\n".join(compare_lines(db, RUNS[0], RUNS[1], show_all=True))
    assert any(line.startswith("ccrs/a40.mf4  ok ") for line in text.splitlines())
    assert "unchanged" not in text


def test_run_references(db: ResultsStore) -> None:
    assert resolve_run(db, "latest") == RUNS[2]
    assert resolve_run(db, "previous") == RUNS[1]
    assert resolve_run(db, "20250101") == RUNS[0]
    with pytest.raises(UsageError, match="is ambiguous"):
        resolve_run(db, "2025")
    with pytest.raises(UsageError, match="no run '20240101'"):
        resolve_run(db, "20240101")


def test_cli_history_and_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "results.sqlite")
    _three_runs(url)
    assert cli.main(["history", "--db", url]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[2].startswith(RUNS[2])
    assert cli.main(["history", "ccrs/a40.mf4", "--db", url, "--kpi", "brake_time"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["run", "started", "commit", "build", "status", "brake", "[s]"]
    assert lines[3].split()[-1] == "4.400"
    assert cli.main(["compare", "previous", "latest", "--db", url]) == 0
    out_text = capsys.readouterr().out
    assert "fixed failures (1):" in out_text
    assert "commit 3333333333+dirty, function build " + "f2" * 6 in out_text
    assert "note: run B was made from a working tree with uncommitted changes" in out_text
    assert "the two runs tested different builds of the function under test" in out_text
    assert cli.main(["compare", "nope", "latest", "--db", url]) == 2
    assert "adsreplay compare: error: no run 'nope'" in capsys.readouterr().err


def test_cli_missing_database_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ADSREPLAY_DB", raising=False)
    assert cli.main(["history"]) == 2
    err = capsys.readouterr().err
    assert "no results database at .adsreplay/results.sqlite" in err
    assert not (tmp_path / ".adsreplay").exists()  # nothing created
    monkeypatch.setenv("ADSREPLAY_DB", str(tmp_path / "x.sqlite"))
    _three_runs(str(tmp_path / "x.sqlite"))
    assert cli.main(["history"]) == 0


def test_cli_rejects_unknown_kpi(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["history", "a.mf4", "--kpi", "brake"])
    assert "unknown KPI 'brake'" in capsys.readouterr().err

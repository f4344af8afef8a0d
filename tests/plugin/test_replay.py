"""Parametrization, fixtures, expectation items, failures, summary, JUnit and the DB."""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET

import pytest

from pytest_adsreplay.results.store import open_store


def _only_run(db: object) -> str:
    runs = open_store(str(db)).runs()
    assert len(runs) == 1, runs
    return str(runs[0]["run_id"])


def test_ids_are_sorted_posix_paths(project: pytest.Pytester) -> None:
    project.makepyfile(test_r="def test_r(recording):\n    pass\n")
    result = project.runpytest("--recordings=recs", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "test_r.py::test_r[ccrm/c50.mf4]",
            "test_r.py::test_r[ccrs/a40.mf4]",
            "test_r.py::test_r[ccrs/b60.mf4]",
            "recs/ccrs/a40.mf4::expect",
        ]
    )


def test_marker_narrows_by_pattern_tags_and_scenario(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_m="""
        import pytest

        @pytest.mark.recordings(pattern="ccrs/*")
        def test_pattern(recording):
            assert recording.id.startswith("ccrs/")

        @pytest.mark.recordings(tags=["ncap", "ccrs"])
        def test_tags(recording):
            assert "ccrs" in recording.tags

        @pytest.mark.recordings(scenario="CCRm")
        def test_scenario(recording):
            assert recording.scenario == "CCRm"

        @pytest.mark.recordings(scenario="CCRs")
        @pytest.mark.recordings(pattern="*b60*")
        def test_both(recording):
            assert recording.id == "ccrs/b60.mf4"
        """
    )
    result = project.runpytest("--recordings=recs", "-k", "not expect", "-v")
    result.assert_outcomes(passed=2 + 2 + 1 + 1)


def test_replay_fixture_exposes_kpis_signals_and_outputs(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_k="""
        import numpy as np
        import pytest

        @pytest.mark.recordings(pattern="ccrs/a40.mf4")
        def test_kpis(replay, recording):
            assert replay.recording == recording.id
            assert replay.brake_time == pytest.approx(replay.t[np.argmax(replay.outputs["aeb_decel"] >= 1)])
            assert 1.4 <= replay.ttc_at_brake <= 1.6
            assert replay.fcw_lead_time == pytest.approx(1.0, abs=0.02)
            assert replay.collision is False and replay.impact_speed == 0
            assert set(replay.signals) >= {"t", "ego_speed", "target_distance", "target_rel_speed"}
            assert replay.signals["ego_speed"] == pytest.approx(40 / 3.6)
            assert set(replay.outputs) == {"fcw", "aeb_decel", "ttc"}
            assert len(replay.outputs["aeb_decel"]) == len(replay.t)
            assert replay.kpis["activations"][0]["peak_decel"] == 9.0
        """
    )
    result = project.runpytest("--recordings=recs", "-k", "test_kpis")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("cache", ["--adsreplay-no-cache", "--adsreplay-cache-dir=cache"])
def test_a_replay_kept_past_the_session_keeps_its_arrays(
    project: pytest.Pytester, cache: str
) -> None:
    """The fixture's arrays load on first use; a result a conftest keeps (and one it
    pickles) still has them after the session deleted its Redis keys."""
    project.makeconftest(
        """
        import pickle
        KEPT = []

        def pytest_terminal_summary(terminalreporter):
            kept, copy = KEPT[0], pickle.loads(KEPT[1])
            for r in (kept, copy):
                terminalreporter.write_line(
                    f"LATE {len(r.t)} {sorted(r.outputs)} {r.signals['ego_speed'][0]:.3f}")
        """
    )
    project.makepyfile(
        test_keep="""
        import pickle
        import pytest
        from conftest import KEPT

        @pytest.mark.recordings(pattern="ccrs/a40.mf4")
        def test_keep(replay):
            KEPT.append(replay)  # arrays not touched during the test

        @pytest.mark.recordings(pattern="ccrs/a40.mf4")
        def test_pickle(replay):
            KEPT.append(pickle.dumps(replay))  # a pickle carries the arrays, not a loader
        """
    )
    result = project.runpytest("--recordings=recs", "-k", "keep or pickle", cache)
    result.assert_outcomes(passed=2)
    late = [line for line in result.stdout.lines if line.startswith("LATE ")]
    assert late == ["LATE 540 ['aeb_decel', 'fcw', 'ttc'] 11.111"] * 2, late


def test_expectation_items_report_every_violated_bound(project: pytest.Pytester) -> None:
    (project.path / "recs/ccrs/b60.toml").write_text(
        'scenario = "CCRs"\n[expect]\nbrake = true\nttc_at_brake = [2.0, 3.0]\n'
        "fcw_lead_time = {min = 1.5}\nmax_decel = {max = 5}\ncollision = false\n"
    )
    result = project.runpytest("--recordings=recs")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*b60.mf4: 3 expectation(s) of *b60.toml violated:",
            "*ttc_at_brake = 1.[45]* s, expected in [[]2, 3[]] s (off by -0.5* s)",
            "*fcw_lead_time = 1.0* s, expected >= 1.5 s (off by -0.[45]* s)",
            "*max_decel = 9.000 m/s², expected <= 5 m/s² (off by +4.000 m/s²)",
            "*-> replay it alone with pytest_adsreplay.replay_file()*",
        ]
    )


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        (
            "ttc_at_brak = [1, 2]",
            ["*: [[]expect[]] bounds unknown KPI 'ttc_at_brak'", "*did you mean ttc_at_brake*"],
        ),
        ("ttc_at_brake = [2, 1]", ["*: [[]expect[]] ttc_at_brake has min 2.0 > max 1.0"]),
        (
            "ttc_at_brake = {lo = 1}",
            ["*: [[]expect[]] ttc_at_brake takes {min = …} and/or {max = …}*"],
        ),
        ("brake = 1", ["*: [[]expect[]] brake must be true or false*"]),
        ("ttc_at_brake = = 1", ["* is not valid TOML*line 2*"]),
        (  # too deep for the parser: a RecursionError, still only this recording's error
            "x = " + "{ a = " * 500 + "1" + " }" * 500,
            ["* nests tables or arrays too deeply to be parsed*"],
        ),
    ],
    ids=["unknown", "min-max", "keys", "bool", "syntax", "deep"],
)
def test_malformed_sidecar_is_an_error_naming_the_file(
    project: pytest.Pytester, expect: str, message: list[str]
) -> None:
    (project.path / "recs/ccrs/b60.toml").write_text(f"[expect]\n{expect}\n")
    project.makepyfile(test_f="def test_f(replay):\n    pass\n")
    result = project.runpytest("--recordings=recs")
    # only b60's own test and its expectation item error; the others still pass
    result.assert_outcomes(passed=3, errors=2)
    first, *rest = message
    result.stdout.fnmatch_lines([f"ccrs/b60.mf4: sidecar *b60.toml{first.lstrip('*')}", *rest])
    result.stdout.fnmatch_lines(["ccrs/b60.mf4 *error*"])  # still a row in the summary


def test_function_exception_fails_with_its_traceback_and_t(project: pytest.Pytester) -> None:
    project.makepyfile(test_f="def test_f(replay):\n    assert replay.brake_time\n")
    result = project.runpytest("--recordings=recs", "--aeb-function=aebfn:Raises", "-k", "test_f")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "*ccrs/a40.mf4: the function under test failed in the aeb stage*",
            "*raised ZeroDivisionError: boom in the function at t = 3.000 s (cycle 300)*",
            "*Function traceback (most recent call last):*",
            '*aebfn.py", line *, in step*',
            "*ZeroDivisionError: boom in the function*",
        ]
    )
    # the traceback's header is printed once
    assert "Function traceback (most recent call last):\nTraceback" not in result.stdout.str()


def test_missing_aeb_decel_fails_with_a_clear_message(project: pytest.Pytester) -> None:
    project.makepyfile(test_f="def test_f(replay):\n    pass\n")
    result = project.runpytest("--recordings=recs", "--aeb-function=aebfn:NoDecel", "-k", "test_f")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*step() returned no 'aeb_decel' at t = 0.000 s (cycle 0)*"])


def test_unreadable_recording_errors_and_others_pass(project: pytest.Pytester) -> None:
    (project.path / "recs/ccrs/zz_broken.mf4").write_bytes(b"this is not an MDF file" * 10)
    project.makepyfile(test_f="def test_f(replay):\n    assert replay.brake_time is not None\n")
    result = project.runpytest("--recordings=recs", "-k", "test_f")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        ["*ccrs/zz_broken.mf4: the replay could not run in the read stage*"]
    )


def test_results_db_has_one_row_per_recording(project: pytest.Pytester) -> None:
    (project.path / "recs/ccrs/zz_broken.mf4").write_bytes(b"garbage")
    project.makepyfile(
        test_f="""
        def test_f(replay):
            pass

        def test_g(replay):
            pass

        def test_db(adsreplay_results):
            assert adsreplay_results.run_id
        """
    )
    result = project.runpytest("--recordings=recs")
    result.assert_outcomes(passed=8, errors=2)
    db = project.path / "results.sqlite"
    run_id = _only_run(db)
    rows = open_store(str(db)).results(run_id)
    assert [r.recording_id for r in rows] == [
        "ccrm/c50.mf4",
        "ccrs/a40.mf4",
        "ccrs/b60.mf4",
        "ccrs/zz_broken.mf4",
    ]
    by_id = {r.recording_id: r for r in rows}
    assert by_id["ccrs/a40.mf4"].status == "ok"
    assert by_id["ccrs/a40.mf4"].kpis["ttc_at_brake"] == pytest.approx(1.5, abs=0.02)
    assert by_id["ccrs/a40.mf4"].kpis["collision"] is False
    assert len(by_id["ccrs/a40.mf4"].recording_sha256 or "") == 64
    assert by_id["ccrs/zz_broken.mf4"].status == "error"
    assert by_id["ccrs/zz_broken.mf4"].stage == "read"
    assert "zz_broken.mf4" in (by_id["ccrs/zz_broken.mf4"].error or "")
    run = open_store(str(db)).run(run_id)
    assert run is not None
    assert run["function"] == "aebfn:Ttc" and run["finished_at"] and run["exit_status"] == 1
    assert run["plugin_version"] and run["host"]
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 4


def test_summary_table_header_line_and_junit_properties(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ADSREPLAY_REDIS_URL", raising=False)  # the embedded mode's header
    project.makepyfile(test_f="def test_f(replay):\n    assert not replay.collision\n")
    result = project.runpytest("--recordings=recs", "--junitxml=out.xml", "-W", "error")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "adsreplay: 3 recordings under recs, function aebfn:Ttc, params {}, channel map "
            "built-in, cycle time *, broker fakeredis*, workers in-process*, run *",
            "adsreplay: reproduce with pytest --recordings=recs --aeb-function=aebfn:Ttc *",
            "*adsreplay KPI summary*",
            "recording *scenario *fcw [[]s[]] *brake [[]s[]] *TTC@brake [[]s[]]*outcome*",
            "ccrm/c50.mf4 *CCRm *passed*",
            "ccrs/a40.mf4 *CCRs *3.500 *4.500 *1.500 *1.000 *no *0.0 *passed*",
            "ccrs/b60.mf4 *CCRs *passed*",
            "results: *results.sqlite (run *)",
        ]
    )
    tree = ET.parse(project.path / "out.xml")
    case = next(c for c in tree.iter("testcase") if "a40" in c.get("name", ""))
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["adsreplay.recording"] == "ccrs/a40.mf4"
    assert props["adsreplay.status"] == "ok"
    assert float(props["adsreplay.ttc_at_brake"] or "nan") == pytest.approx(1.5, abs=0.02)
    assert props["adsreplay.collision"] == "False"


def test_summary_marks_failures(project: pytest.Pytester) -> None:
    project.makepyfile(test_f="def test_f(replay):\n    assert replay.ttc_at_brake > 1.55\n")
    result = project.runpytest("--recordings=recs", "-k", "test_f")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["ccrs/a40.mf4 *failed*"])


def test_calibration_variants_via_marker(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_v="""
        import pytest

        @pytest.mark.recordings(pattern="ccrs/a40.mf4")
        @pytest.mark.parametrize("brake_ttc", [
            pytest.param(1.2, marks=pytest.mark.adsreplay_params(brake_ttc=1.2)),
            pytest.param(1.8, marks=pytest.mark.adsreplay_params(brake_ttc=1.8)),
        ])
        def test_variant(replay, brake_ttc):
            assert replay.ttc_at_brake == pytest.approx(brake_ttc, abs=0.02)

        @pytest.mark.recordings(pattern="ccrs/a40.mf4")
        def test_default(replay):
            assert replay.ttc_at_brake == pytest.approx(1.5, abs=0.02)
        """
    )
    result = project.runpytest("--recordings=recs", "-k", "test_variant or test_default")
    result.assert_outcomes(passed=3)
    rows = open_store(str(project.path / "results.sqlite")).results(
        _only_run(project.path / "results.sqlite")
    )
    assert sorted((r.recording_id, bool(r.variant)) for r in rows) == [
        ("ccrs/a40.mf4", False),
        ("ccrs/a40.mf4", True),
        ("ccrs/a40.mf4", True),
    ]


def test_late_braking_function_fails_timing_with_values(project: pytest.Pytester) -> None:
    project.makeini(
        "[pytest]\nadsreplay_function = aebfn:Ttc\nadsreplay_function_params = { late = 0.3 }\n"
    )
    result = project.runpytest("--recordings=recs")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*ccrs/a40.mf4*", "*ttc_at_brake = 1.200 s, expected in [[]1.4, 1.6[]] s*"]
    )


def test_xdist_two_workers(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_x="""
        def test_a(replay):
            assert replay.brake_time is not None

        def test_b(replay):
            assert not replay.collision
        """
    )
    result = project.runpytest_subprocess("--recordings=recs", "-n", "2", "-p", "xdist")
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(["*adsreplay KPI summary*", "ccrs/a40.mf4 *CCRs *passed*"])
    db = project.path / "results.sqlite"
    rows = open_store(str(db)).results(_only_run(db))
    assert sorted(r.recording_id for r in rows) == ["ccrm/c50.mf4", "ccrs/a40.mf4", "ccrs/b60.mf4"]


@pytest.mark.parametrize("read_ahead", ["0", "1"])
def test_exitfirst_still_leaves_one_row_per_recording(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, read_ahead: str
) -> None:
    # embedded mode, one host: without read-ahead one chain runs at a time, so -x leaves
    # exactly one replayed row; with it the next recording may have been replayed too
    monkeypatch.delenv("ADSREPLAY_REDIS_URL", raising=False)
    project.makepyfile(test_f="def test_f(replay):\n    assert False\n")
    result = project.runpytest(
        "--recordings=recs",
        "-x",
        "-k",
        "test_f",
        "--adsreplay-workers=1",
        f"--adsreplay-read-ahead={read_ahead}",
    )
    result.assert_outcomes(failed=1)
    db = project.path / "results.sqlite"
    rows = open_store(str(db)).results(_only_run(db))
    assert len(rows) == 3
    statuses = sorted(r.status for r in rows)
    if read_ahead == "0":
        assert statuses.count("ok") == 1
    else:  # the others ran in the background until the session stopped them
        assert statuses.count("ok") >= 1
    assert all(
        r.error == "the session ended before this recording was replayed"
        for r in rows
        if r.status == "error"
    )

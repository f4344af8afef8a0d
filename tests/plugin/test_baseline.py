"""KPI baselines end to end: writing, regressions, tolerances, new/stale/changed, xdist."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from adsreplay_testkit import write_approach

BASELINE = "--adsreplay-baseline=baseline.json"
UPDATE = "--adsreplay-update-baseline"
LATE = "adsreplay_function_params={ late = 0.3 }"


def _entries(project: pytest.Pytester) -> dict[str, dict]:
    return json.loads((project.path / "baseline.json").read_text())["recordings"]


def _accept(project: pytest.Pytester, *args: str) -> None:
    """Write the baseline of the current function (the run fails: entries were added)."""
    result = project.runpytest("--recordings=recs", BASELINE, UPDATE, *args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert (project.path / "baseline.json").exists()


def test_first_update_writes_the_file_and_fails_then_the_next_run_passes(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest("--recordings=recs", BASELINE, UPDATE)
    result.assert_outcomes(passed=1, failed=3)  # a40's expect item passes
    result.stdout.fnmatch_lines(
        [
            "*_ baseline[[]ccrm/c50.mf4[]] _*",
            "ccrm/c50.mf4: not in the baseline yet; added it to baseline.json (review and commit"
            " the file; the next run compares against it)",
            "*adsreplay baseline*",
            "baseline baseline.json: 3 checked, 0 passed, 0 regressed, 3 new, 0 changed*",
            "  rewritten: 3 entries in baseline.json; review and commit the diff",
            "FAILED recs/ccrm/c50.mf4::baseline - *",
        ]
    )
    text = (project.path / "baseline.json").read_text()
    assert text.endswith("}\n")
    entries = json.loads(text)["recordings"]
    assert sorted(entries) == ["ccrm/c50.mf4", "ccrs/a40.mf4", "ccrs/b60.mf4"]
    a40 = entries["ccrs/a40.mf4"]
    sha = hashlib.sha256((project.path / "recs/ccrs/a40.mf4").read_bytes()).hexdigest()
    assert a40["sha256"] == sha
    assert a40["kpis"]["brake_time"] == 4.5 and a40["kpis"]["ttc_at_brake"] == 1.5
    assert a40["kpis"]["collision"] is False and a40["kpis"]["activations"] == 1

    result = project.runpytest("--recordings=recs", BASELINE)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["baseline baseline.json: 3 checked, 3 passed, 0 regressed*"])
    assert (project.path / "baseline.json").read_text() == text  # never written without the flag


def test_braking_later_fails_with_the_delta_table(project: pytest.Pytester) -> None:
    _accept(project)
    result = project.runpytest("--recordings=recs", BASELINE, "-o", LATE)
    result.assert_outcomes(failed=4)  # three baseline items, and a40's ttc_at_brake bound
    result.stdout.fnmatch_lines(
        [
            "*_ baseline[[]ccrs/a40.mf4[]] _*",
            "ccrs/a40.mf4: 3 KPI(s) regressed, 1 improved against the baseline baseline.json:",
            "  KPI * baseline * now * delta * tolerance",
            "  fcw_time [[]s[]] * 3.500 * 3.500 * +0.000 * 0.010",
            "  brake_time [[]s[]] * 4.500 * 4.800 * +0.300 * 0.010 * << regressed",
            "  ttc_at_brake [[]s[]] * 1.500 * 1.200 * -0.300 * 0.050 * << regressed",
            "  fcw_lead_time [[]s[]] * 1.000 * 1.300 * +0.300 * 0.010 * improved",
            "  collision * no * no * = * exact",
            "  min_distance [[]m[]] * 6.355 * 3.021 * -3.333 * 0.100 * << regressed",
            "  -> if the change is intended, run with --adsreplay-update-baseline and review the"
            " diff of baseline.json; otherwise fix the function*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "  collision * no * yes * changed * exact * << regressed",
            "  impact_speed [[]km/h[]] * 0.000 * 13.559 * +13.559 * 0.500 * << regressed",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "baseline baseline.json: 3 checked, 0 passed, 3 regressed, 0 new, 0 changed*",
            "  regressed: ccrm/c50.mf4, ccrs/a40.mf4, ccrs/b60.mf4",
            "  -> run with --adsreplay-update-baseline and review the diff of baseline.json if*",
        ]
    )


def test_update_rewrites_regressed_entries_and_still_fails(project: pytest.Pytester) -> None:
    _accept(project)
    result = project.runpytest("--recordings=recs", BASELINE, UPDATE, "-o", LATE)
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(
        [
            "ccrs/a40.mf4: 3 KPI(s) regressed, 1 improved against the baseline baseline.json:",
            "  -> the baseline entry was rewritten in baseline.json: review and commit the diff;*",
            "  rewritten: 3 entries in baseline.json; review and commit the diff",
        ]
    )
    assert _entries(project)["ccrs/a40.mf4"]["kpis"]["brake_time"] == 4.8
    result = project.runpytest("--recordings=recs", BASELINE, "-o", LATE)
    result.assert_outcomes(passed=3, failed=1)  # only a40's sidecar bound still fails


def test_tolerances_are_honoured(project: pytest.Pytester) -> None:
    _accept(project)
    slightly_late = "adsreplay_function_params={ late = 0.03 }"
    result = project.runpytest("--recordings=recs", BASELINE, "-o", slightly_late)
    result.assert_outcomes(passed=1, failed=3)  # default: one cycle (0.01 s) on brake_time
    result.stdout.fnmatch_lines(["  brake_time [[]s[]] * 4.500 * 4.530 * +0.030 * 0.010 * << re*"])
    # ttc_at_brake moved by 0.03 s, within its default 0.05 s: not flagged
    result.stdout.fnmatch_lines(["  ttc_at_brake [[]s[]] * 1.500 * 1.470 * -0.030 * 0.050"])

    # min_distance moved by 0.33 m (a40), 0.5 m (b60) and 0.25 m (c50): a 0.4 m tolerance
    # lets a40 and c50 pass and fails b60 on that KPI alone
    tolerances = 'adsreplay_baseline_tolerances={ brake_time = 0.05, fcw_lead_time = "50 ms", min_distance = 0.4 }'
    result = project.runpytest("--recordings=recs", BASELINE, "-o", slightly_late, "-o", tolerances)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "ccrs/b60.mf4: 1 KPI(s) regressed against the baseline baseline.json:",
            "  brake_time [[]s[]] * 4.510 * 4.540 * +0.030 * 0.050",
            "  min_distance [[]m[]] * 4.212 * 3.712 * -0.500 * 0.400 * << regressed",
            "FAILED recs/ccrs/b60.mf4::baseline - *",
        ]
    )


def test_new_stale_and_changed_recordings_are_reported(project: pytest.Pytester) -> None:
    _accept(project)
    recs = project.path / "recs"
    (recs / "ccrm/c50.mf4").unlink()
    (recs / "ccrm/c50.toml").unlink()
    write_approach(recs / "ccrs/d70.mf4", ego_kph=70)
    before = hashlib.sha256((recs / "ccrs/a40.mf4").read_bytes()).hexdigest()
    write_approach(recs / "ccrs/a40.mf4", ego_kph=40)  # same drive, a new file
    assert hashlib.sha256((recs / "ccrs/a40.mf4").read_bytes()).hexdigest() != before

    result = project.runpytest("--recordings=recs", BASELINE, "-rA")
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines(
        [
            f"ccrs/a40.mf4: the recording changed since the baseline was written (sha256 {before[:12]}…"
            " in baseline.json, now *…)",
            "  its KPIs are within tolerance:",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "ccrs/d70.mf4: no entry in the baseline baseline.json (a new recording?)",
            "  -> to accept its KPIs, run with --adsreplay-update-baseline and review the diff*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "1 baseline entry of baseline.json name recordings that no longer exist:",
            "  - ccrm/c50.mf4",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "baseline baseline.json: 3 checked, 1 passed, 0 regressed, 1 new, 1 changed"
            " recording(s), 1 stale entry",
            "  new (not in the baseline): ccrs/d70.mf4",
            "  changed (sha256 differs): ccrs/a40.mf4",
            "  stale (recording gone): ccrm/c50.mf4",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "FAILED recs/ccrs/a40.mf4::baseline - *",
            "FAILED recs/ccrs/d70.mf4::baseline - *",
            "FAILED baseline.json::stale - 1 baseline entry*",
        ]
    )

    result = project.runpytest("--recordings=recs", BASELINE, UPDATE)
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines(["  -> removed from baseline.json: review and commit the diff"])
    result.stdout.fnmatch_lines(["  removed stale: ccrm/c50.mf4"])
    entries = _entries(project)
    assert sorted(entries) == ["ccrs/a40.mf4", "ccrs/b60.mf4", "ccrs/d70.mf4"]
    assert entries["ccrs/a40.mf4"]["sha256"] != before
    project.runpytest("--recordings=recs", BASELINE).assert_outcomes(passed=4)


def test_deselected_recordings_are_neither_checked_nor_stale(project: pytest.Pytester) -> None:
    _accept(project)
    result = project.runpytest("--recordings=recs", BASELINE, UPDATE, "-k", "a40", "-o", LATE)
    result.assert_outcomes(failed=2)
    entries = _entries(project)
    assert entries["ccrs/a40.mf4"]["kpis"]["brake_time"] == 4.8
    assert entries["ccrs/b60.mf4"]["kpis"]["brake_time"] == 4.51  # kept as it was


def test_calibration_variants_get_their_own_entries(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_v="""
        import pytest

        @pytest.mark.recordings(pattern="ccrs/a40.mf4")
        @pytest.mark.adsreplay_params(late=0.3)
        def test_late(replay):
            assert replay.brake_time == pytest.approx(4.8)
        """
    )
    result = project.runpytest("--recordings=recs", BASELINE, UPDATE, "--junitxml=j.xml")
    result.assert_outcomes(passed=2, failed=4)
    result.stdout.fnmatch_lines(
        ["FAILED recs/ccrs/a40.mf4::baseline[[]p*[]] - ccrs/a40.mf4 [[]p*[]]: *"]
    )
    entries = _entries(project)
    (variant,) = [k for k in entries if k.startswith("ccrs/a40.mf4 [")]
    assert entries[variant]["params"] == {"late": 0.3}
    assert entries[variant]["kpis"]["brake_time"] == 4.8
    props = {p.get("name") for p in ET.parse(project.path / "j.xml").iter("property")}
    assert {"adsreplay.baseline", "adsreplay.baseline_key", "adsreplay.baseline_entry"} <= props
    project.runpytest("--recordings=recs", BASELINE).assert_outcomes(passed=6)


def test_ini_baseline_path_is_relative_to_the_ini_file(project: pytest.Pytester) -> None:
    ini = project.path / "tox.ini"  # the project fixture's makeini
    ini.write_text(ini.read_text() + "\nadsreplay_baseline = ci/baseline.json\n")
    sub = project.mkdir("sub")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(sub)
        result = project.runpytest("--recordings=../recs", UPDATE)
    result.assert_outcomes(passed=1, failed=3)
    assert (project.path / "ci/baseline.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [UPDATE],
            "*--adsreplay-update-baseline needs a baseline file: pass --adsreplay-baseline FILE*",
        ),
        (
            [BASELINE, "-o", "adsreplay_baseline_tolerances={ brake = 1 }"],
            "*adsreplay_baseline_tolerances: brake = 1 (from *): unknown KPI; did you mean brake_time?",
        ),
    ],
)
def test_usage_errors(project: pytest.Pytester, args: list[str], message: str) -> None:
    result = project.runpytest("--recordings=recs", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_malformed_baseline_is_a_usage_error(project: pytest.Pytester) -> None:
    (project.path / "baseline.json").write_text('{"format": 1,\n "recordings": {\n')
    result = project.runpytest("--recordings=recs", BASELINE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*baseline *baseline.json is not valid JSON (line 3*"])


def test_xdist_controller_writes_the_file_once(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("--recordings=recs", BASELINE, UPDATE, "-n", "2")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(
        ["  rewritten: 3 entries in baseline.json; review and commit the diff"]
    )
    assert sorted(_entries(project)) == ["ccrm/c50.mf4", "ccrs/a40.mf4", "ccrs/b60.mf4"]
    assert sorted(p.name for p in Path(project.path).glob("*baseline*")) == ["baseline.json"]
    result = project.runpytest_subprocess("--recordings=recs", BASELINE, "-n", "2", "-o", LATE)
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(["baseline baseline.json: 3 checked, 0 passed, 3 regressed*"])
    project.runpytest_subprocess("--recordings=recs", BASELINE, "-n", "2").assert_outcomes(passed=4)


ROOT = "adsreplay_recordings_root=recs"


def test_a_narrowed_run_under_the_recordings_root_keeps_ids_and_the_baseline(
    project: pytest.Pytester,
) -> None:
    _accept(project)
    text = (project.path / "baseline.json").read_text()
    result = project.runpytest("--recordings=recs/ccrs", BASELINE, "-o", ROOT, "-rA")
    result.assert_outcomes(passed=3)  # a40's expect item and two baseline items
    result.stdout.fnmatch_lines(
        [
            "baseline baseline.json: 2 checked, 2 passed, 0 regressed, 0 new, 0 changed"
            " recording(s), 0 stale entries",
            "PASSED recs/ccrs/a40.mf4::baseline",
        ]
    )
    result.stdout.no_fnmatch_line("*::stale*")
    result.stdout.no_fnmatch_line("*--adsreplay-update-baseline*")

    result = project.runpytest("--recordings=recs/ccrs", BASELINE, "-o", ROOT, UPDATE, "-o", LATE)
    result.assert_outcomes(failed=3)  # rewritten entries still fail, and a40's bound
    result.stdout.fnmatch_lines(["baseline baseline.json: 2 checked, * 0 stale entries"])
    result.stdout.no_fnmatch_line("*removed stale*")
    entries = _entries(project)
    assert sorted(entries) == ["ccrm/c50.mf4", "ccrs/a40.mf4", "ccrs/b60.mf4"]
    assert entries["ccrs/a40.mf4"]["kpis"]["brake_time"] == 4.8
    assert entries["ccrm/c50.mf4"] == json.loads(text)["recordings"]["ccrm/c50.mf4"]


def test_a_gone_recording_inside_the_narrowed_selection_is_still_stale(
    project: pytest.Pytester,
) -> None:
    _accept(project)
    (project.path / "recs/ccrs/b60.mf4").unlink()
    result = project.runpytest("--recordings=recs/ccrs", BASELINE, "-o", ROOT)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["  stale (recording gone): ccrs/b60.mf4"])
    result = project.runpytest("--recordings=recs/ccrs", BASELINE, "-o", ROOT, UPDATE)
    result.stdout.fnmatch_lines(["  removed stale: ccrs/b60.mf4"])
    assert sorted(_entries(project)) == ["ccrm/c50.mf4", "ccrs/a40.mf4"]


def test_a_narrowed_run_without_the_root_never_drops_entries_outside_it(
    project: pytest.Pytester,
) -> None:
    _accept(project)
    result = project.runpytest("--recordings=recs/ccrs", BASELINE)
    result.stdout.fnmatch_lines(["baseline baseline.json: 2 checked, *, 2 new, * 0 stale entries"])
    result.stdout.no_fnmatch_line("*::stale*")
    result.stdout.no_fnmatch_line("*drops stale entries*")
    project.runpytest("--recordings=recs/ccrs", BASELINE, UPDATE)
    assert {"ccrm/c50.mf4", "ccrs/a40.mf4", "ccrs/b60.mf4"} <= set(_entries(project))


def test_a_recording_outside_the_recordings_root_is_a_usage_error(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest("--recordings=recs", "-o", "adsreplay_recordings_root=recs/ccrs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*recording */recs/ccrm/c50.mf4 (from *) is outside adsreplay_recordings_root */recs/ccrs*"
        ]
    )

"""Fleet gates that must not pass by accident: selections that replay nothing, calibration
variants, collection only."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pytest
from adsreplay_testkit import write_approach

GATES = (
    "{ false_activations_per_1000km = { max = 0.0 }, "
    'all_pass = { metric = "pass_rate", min = 0.5 } }'
)


@pytest.fixture
def fleet(project: pytest.Pytester) -> pytest.Pytester:
    write_approach(
        project.path / "recs" / "fa" / "x.mf4",
        ego_kph=50,
        sidecar='scenario = "fleet"\ntags = ["false-activation"]\n',
    )
    project.makeini(
        f"""
        [pytest]
        adsreplay_function = aebfn:Ttc
        adsreplay_db = results.sqlite
        adsreplay_gates = {GATES}
        """
    )
    return project


def test_a_selection_that_replays_nothing_keeps_the_gates_failing(
    fleet: pytest.Pytester,
) -> None:
    fleet.makepyfile(
        test_all="def test_replayed(replay):\n    pass\n\ndef test_unrelated():\n    pass\n"
    )
    result = fleet.runpytest("--recordings=recs", "-v", "-k", "unrelated", "--junitxml=o.xml")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*adsreplay::gate?false_activations_per_1000km? FAILED*",
            "*adsreplay::gate?all_pass? FAILED*",
            "*no judged recordings*[[]narrowed: 0 of 4 recordings selected]*",
        ]
    )
    names = {c.get("name") for c in ET.parse(fleet.path / "o.xml").iter("testcase")}
    assert {"gate[false_activations_per_1000km]", "gate[all_pass]"} <= names


def test_a_selection_of_nothing_fails_on_the_gates(fleet: pytest.Pytester) -> None:
    fleet.makepyfile(test_all="def test_replayed(replay):\n    pass\n")
    result = fleet.runpytest("--recordings=recs", "-k", "no_such_test")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*FAILED adsreplay::gate?all_pass?*"])


def test_collect_only_reports_no_gate(fleet: pytest.Pytester) -> None:
    fleet.makepyfile(test_all="def test_replayed(replay):\n    pass\n")
    result = fleet.runpytest("--recordings=recs", "--collect-only")
    assert result.ret == 0
    result.stdout.no_fnmatch_line("*adsreplay::gate*")


def test_calibration_variants_do_not_count_a_recording_twice(fleet: pytest.Pytester) -> None:
    """The variant never brakes on fa/x.mf4; counting its km too would halve the false
    activation rate of the session's own parameters."""
    fleet.makepyfile(
        test_all="""
        import pytest

        def test_base(replay):
            pass

        @pytest.mark.adsreplay_params(brake_ttc=0.0)
        def test_variant(replay):
            pass
        """
    )
    result = fleet.runpytest("--recordings=recs", "-v")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*gate false_activations_per_1000km: * (upper 95 %: *; 1 events in *",
            "*  - fa/x.mf4 t=*",
            "*gate all_pass: pass rate 1.000 (*; 4 of 4 recordings in all recordings)*",
        ]
    )
    result.stdout.no_fnmatch_line("*fa/x.mf4 ?p*?*t=*")
    result.stdout.no_fnmatch_line("*narrowed*")


def test_a_results_database_failing_at_the_end_still_writes_the_summary(
    fleet: pytest.Pytester,
) -> None:
    fleet.makepyfile(test_all="def test_replayed(replay):\n    pass\n")
    fleet.makeconftest(
        """
        import sqlite3

        import pytest

        @pytest.hookimpl(tryfirst=True)
        def pytest_sessionfinish(session):
            from pytest_adsreplay.plugin.items import run_of

            def broken(*args, **kwargs):
                raise sqlite3.OperationalError("disk I/O error")

            run_of(session.config).store.results = broken
        """
    )
    fleet.makeini(
        """
        [pytest]
        adsreplay_function = aebfn:Ttc
        adsreplay_db = results.sqlite
        adsreplay_gates = { false_activations_per_hour = { max = 100000 } }
        """
    )
    result = fleet.runpytest_subprocess("--recordings=recs", "--adsreplay-summary-md=s.md")
    assert result.ret == 1
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    result.stdout.fnmatch_lines(
        ["adsreplay: the results database *results.sqlite could not be finished*"]
    )
    text = (fleet.path / "s.md").read_text()
    assert "KPI comparison not made" in text and "disk I/O error" in text


def test_an_expected_failure_does_not_count_as_a_passed_recording(
    fleet: pytest.Pytester,
) -> None:
    fleet.makepyfile(
        test_all="""
        import pytest

        @pytest.mark.xfail(reason="known to brake late")
        def test_replayed(replay):
            assert "x.mf4" not in replay.recording
        """
    )
    result = fleet.runpytest("--recordings=recs", "-v", "-k", "x.mf4")
    result.stdout.fnmatch_lines(
        ["*gate all_pass: pass rate 0.000 (*; 0 of 1 recordings in all recordings)*"]
    )
    assert result.ret == 1


def test_a_rejected_recording_counts_against_the_pass_rate(fleet: pytest.Pytester) -> None:
    """A file rejected at discovery (a FIFO: never opened) errors its tests and is a run
    that did not pass; a file the read stage rejects is one too."""
    os.mkfifo(fleet.path / "recs" / "ccrs" / "pipe.mf4")
    (fleet.path / "recs" / "ccrs" / "broken.mf4").write_bytes(b"not an mdf file")
    fleet.makepyfile(test_all="def test_replayed(replay):\n    pass\n")
    result = fleet.runpytest("--recordings=recs", "-v", "-k", "not x.mf4")
    result.stdout.fnmatch_lines(
        ["*gate all_pass: pass rate 0.600 (*; 3 of 5 recordings in all recordings)*"]
    )
    assert result.ret == 1


def test_gates_without_recordings_fail_instead_of_vanishing(fleet: pytest.Pytester) -> None:
    """CI with ``ADSREPLAY_RECORDINGS`` unset: the other tests pass, the gates must not."""
    fleet.makepyfile(test_other="def test_x():\n    pass\n")
    result = fleet.runpytest("-v", "--adsreplay-summary-md=s.md")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*adsreplay::gate?false_activations_per_1000km? FAILED*",
            "*adsreplay::gate?all_pass? FAILED*",
            "*[[]narrowed: no recordings are configured (--recordings*",
        ]
    )
    assert not (fleet.path / "results.sqlite").exists()
    assert "all_pass" in (fleet.path / "s.md").read_text()


def test_the_summary_never_says_passed_when_pytest_fails(fleet: pytest.Pytester) -> None:
    """A collection error stops the session before any test ran: exit 2, and the
    merge-request summary must not read as passed."""
    fleet.makepyfile(test_all="def test_replayed(replay):\n    pass\n", test_bad="import nope\n")
    result = fleet.runpytest("--recordings=recs", "--adsreplay-summary-md=s.md")
    assert result.ret == 2
    text = (fleet.path / "s.md").read_text()
    assert text.startswith("## AEB replay: FAILED")
    assert "**pytest exit status:** 2" in text

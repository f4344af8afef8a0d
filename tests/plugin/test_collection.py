"""Collection: counts that match what runs, generated items under ids pytest accepts
back, empty marker selections, and recordings that are not regular files."""

from __future__ import annotations

import os
import re

import pytest

from pytest_adsreplay.results.store import open_store


def _only_run(project: pytest.Pytester) -> str:
    runs = open_store(str(project.path / "results.sqlite")).runs()
    assert len(runs) == 1, runs
    return str(runs[0]["run_id"])


def test_collected_count_matches_what_runs(project: pytest.Pytester) -> None:
    project.makepyfile(test_f="def test_f(replay):\n    assert replay.brake_time\n")
    result = project.runpytest("--recordings=recs")
    result.stdout.fnmatch_lines(["collected 4 items"])  # 3 parametrized + 1 ::expect
    result.assert_outcomes(passed=4)


def test_only_generated_items_are_counted_too(project: pytest.Pytester) -> None:
    project.mkdir("tests_none")
    result = project.runpytest("--recordings=recs", "tests_none")
    result.stdout.fnmatch_lines(["collected 1 item"])
    result.assert_outcomes(passed=1)


def test_a_shown_generated_id_runs_that_item_again(project: pytest.Pytester) -> None:
    project.makepyfile(test_f="def test_f(replay):\n    pass\n")
    shown = project.runpytest("--recordings=recs", "--collect-only", "-q")
    ids = [line for line in shown.stdout.lines if line.endswith("::expect")]
    assert ids == ["recs/ccrs/a40.mf4::expect"]
    assert os.path.isfile(project.path / ids[0].split("::")[0])  # a path that exists
    again = project.runpytest("--recordings=recs", ids[0], "-v")
    again.stdout.fnmatch_lines(["*collected 1 item", "recs/ccrs/a40.mf4::expect PASSED*"])
    again.assert_outcomes(passed=1)
    # the shown id of a parametrized test runs that one test, nothing generated
    one = project.runpytest("--recordings=recs", "test_f.py::test_f[ccrs/b60.mf4]")
    one.assert_outcomes(passed=1)


def test_a_marker_that_selects_nothing_says_which(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_m="""
        import pytest

        @pytest.mark.recordings(pattern="nothing/*")
        def test_none(recording):
            pass
        """
    )
    result = project.runpytest("--recordings=recs", "-rs", "-k", "test_none")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED*@pytest.mark.recordings(pattern='nothing/*') matches none of the 3 "
            "recordings under *recs*"
        ]
    )
    assert "empty parameter set" not in result.stdout.str()
    strict = project.runpytest(
        "--recordings=recs", "-k", "test_none", "-o", "empty_parameter_set_mark=fail_at_collect"
    )
    assert strict.ret == pytest.ExitCode.INTERRUPTED  # a collection error
    strict.stdout.fnmatch_lines(["*@pytest.mark.recordings(pattern='nothing/*') matches none*"])


@pytest.mark.parametrize("extra", [[], ["-x"]], ids=["plain", "exitfirst"])
def test_a_fifo_named_like_a_recording_errors_without_hanging(
    project: pytest.Pytester, extra: list[str]
) -> None:
    os.mkfifo(project.path / "recs/ccrs/pipe.mf4")
    project.makepyfile(
        test_f="""
        import pytest

        def test_f(replay):
            assert replay.brake_time

        @pytest.mark.recordings(metadata={"vehicle": "*"})
        def test_meta(recording):
            pass
        """
    )
    result = project.runpytest("--recordings=recs", "-p", "no:randomly", *extra)
    out = result.stdout.str()
    assert re.search(r"ccrs/pipe\.mf4: .*pipe\.mf4 is a named pipe \(FIFO\), not a regular", out)
    assert "re-export it from the logger" not in out
    if not extra:
        # test_f x3 pass, its FIFO param and the FIFO's ::expect item error
        result.assert_outcomes(passed=4, errors=2, skipped=1)
        rows = {
            r.recording_id: r
            for r in open_store(str(project.path / "results.sqlite")).results(_only_run(project))
        }
        assert set(rows) == {"ccrm/c50.mf4", "ccrs/a40.mf4", "ccrs/b60.mf4", "ccrs/pipe.mf4"}
        assert rows["ccrs/pipe.mf4"].status == "error"
        assert "named pipe" in (rows["ccrs/pipe.mf4"].error or "")
    else:
        assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize("listing", ["--collect-only", "--fixtures", "--fixtures-per-test"])
def test_a_listing_session_replays_nothing(project: pytest.Pytester, listing: str) -> None:
    """Listing tests or fixtures replays no recording and writes no run, row, report or
    baseline (``--fixtures`` used to replay every recording and record a run)."""
    project.makepyfile(test_f="def test_f(replay):\n    assert replay.brake_time\n")
    (project.path / "recs" / "broken.mf4").write_bytes(b"not an MF4 file")  # rejected
    result = project.runpytest(
        "--recordings=recs",
        listing,
        "--adsreplay-report=report",
        "--adsreplay-baseline=baseline.json",
        "--adsreplay-update-baseline",
    )
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert not (project.path / "results.sqlite").exists()
    assert not (project.path / "report").exists()
    assert not (project.path / "baseline.json").exists()

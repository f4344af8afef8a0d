"""A function that exits, crashes, leaks, floods its output or hangs in native code ends
its own recording with an explicit error; the session still exits non-zero with JUnit XML
and one results row per recording (embedded mode, run in a subprocess: on a function
that takes its process down the session must survive it)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from pytest_adsreplay.results.store import ResultRow, open_store

#: Functions that misbehave on the 60 km/h recording (ccrs/b60.mf4) from t = 1 s.
BAD_FUNCTIONS = """
import ctypes, os
from aebfn import Ttc

def on_b60(f):
    return f["ego_speed"] > 15 and f["t"] >= 1.0

class Exits(Ttc):
    def step(self, f):
        if on_b60(f):
            os._exit(0)
        return super().step(f)

class Segfaults(Ttc):
    def step(self, f):
        if on_b60(f):
            ctypes.string_at(0)
        return super().step(f)

class Leaks(Ttc):
    kept = []
    def step(self, f):
        if on_b60(f):
            self.kept.append(bytearray(16 * 1024 * 1024))
        return super().step(f)

class Chatty(Ttc):
    def step(self, f):
        if on_b60(f):
            print("chatter " * 200)
            raise RuntimeError("talked too much")
        return super().step(f)

class HangsInC(Ttc):
    def step(self, f):
        if on_b60(f):
            ctypes.CDLL(None).sleep(1000)
        return super().step(f)
"""


def _run(project: pytest.Pytester, function: str, *args: str) -> pytest.RunResult:
    project.makepyfile(
        badfn=BAD_FUNCTIONS, test_f="def test_f(replay):\n    assert replay.kpis is not None\n"
    )
    return project.runpytest_subprocess(
        "--recordings=recs",
        "--junitxml=out.xml",
        "-p",
        "no:randomly",
        "-o",
        f"adsreplay_function=badfn:{function}",
        *args,
    )


def _rows(project: pytest.Pytester) -> dict[str, ResultRow]:
    store = open_store(str(project.path / "results.sqlite"))
    runs = store.runs()
    assert len(runs) == 1, runs
    rows = store.results(str(runs[0]["run_id"]))
    assert len(rows) == 3, rows  # one per recording
    return {r.recording_id: r for r in rows}


def _b60_failed_others_passed(
    project: pytest.Pytester, result: pytest.RunResult, status: str = "error"
) -> str:
    """b60's test errors (its function's process died) or fails (the function raised);
    the other recordings pass; exit 1, JUnit XML, one row per recording."""
    assert result.ret == 1, result.stdout.str()
    # test_f x3 and ccrs/a40.mf4::expect
    if status == "error":
        result.assert_outcomes(passed=3, errors=1)
    else:
        result.assert_outcomes(passed=3, failed=1)
    assert (project.path / "out.xml").is_file()
    ET.parse(project.path / "out.xml")  # complete, parseable XML
    rows = _rows(project)
    for rec in ("ccrs/a40.mf4", "ccrm/c50.mf4"):
        assert rows[rec].status == "ok"
    bad = rows["ccrs/b60.mf4"]
    assert (bad.stage, bad.status) == ("aeb", status)
    error = str(bad.error)
    first = error.splitlines()[0].removeprefix("ccrs/b60.mf4: ")
    assert first in result.stdout.str()  # the failing test shows it too
    return error


def test_os_exit_0_fails_that_recording_and_the_session(project: pytest.Pytester) -> None:
    result = _run(project, "Exits")
    error = _b60_failed_others_passed(project, result)
    assert "the function under test exited with status 0 at or after t = 1.000 s" in error
    run = open_store(str(project.path / "results.sqlite")).runs()[0]
    assert run["exit_status"] == 1


def test_segfault_fails_that_recording_and_the_session(project: pytest.Pytester) -> None:
    result = _run(project, "Segfaults")
    error = _b60_failed_others_passed(project, result)
    assert "the function under test crashed (SIGSEGV) at or after t = 1.000 s" in error
    assert "Fatal Python error: Segmentation fault" in error  # the captured stderr


def test_leak_stopped_at_the_memory_limit(project: pytest.Pytester) -> None:
    result = _run(project, "Leaks", "-o", "adsreplay_function_memory=700MB")
    error = _b60_failed_others_passed(project, result)
    assert "hit its memory limit of 700 MB (adsreplay_function_memory) at t = 1." in error
    assert "adsreplay_function_memory = 8GB" in error


def test_output_capped_in_the_error(project: pytest.Pytester) -> None:
    result = _run(project, "Chatty", "-o", "adsreplay_function_output=1kB")
    error = _b60_failed_others_passed(project, result, status="failed")
    assert "raised RuntimeError: talked too much at t = 1.000 s" in error
    assert "Output of the function under test (last 1 kB; 577 B more not shown)" in error


def test_native_hang_killed_at_the_timeout(project: pytest.Pytester) -> None:
    result = _run(project, "HangsInC", "--adsreplay-timeout=4")
    error = _b60_failed_others_passed(project, result)
    assert "killed (SIGKILL) at or after t = 1.000 s" in error
    assert "adsreplay_timeout" in error


def test_replay_file_host_option(project: pytest.Pytester) -> None:
    project.makepyfile(
        badfn=BAD_FUNCTIONS,
        test_inline="""
        import pytest
        from pytest_adsreplay import replay_file
        from pytest_adsreplay.errors import FunctionError

        def test_host():
            with pytest.raises(FunctionError, match="exited with status 0 at or after t = 1.000 s"):
                replay_file("recs/ccrs/b60.mf4", "badfn:Exits", host=True)
            inline = replay_file("recs/ccrs/a40.mf4", "aebfn:Ttc")
            hosted = replay_file("recs/ccrs/a40.mf4", "aebfn:Ttc", host=True)
            assert hosted.kpis == inline.kpis
        """,
    )
    project.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)


def test_bad_size_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile(test_f="def test_f(replay):\n    pass\n")
    result = project.runpytest("--recordings=recs", "-o", "adsreplay_function_memory=lots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*adsreplay_function_memory = 'lots'*is not a size like*"])


def test_module_not_found_says_what_to_add(pytester: pytest.Pytester) -> None:
    """The module sits in the rootdir, the tests in tests/: pytest does not put the
    rootdir on sys.path, and the hint says exactly what to add."""
    from adsreplay_testkit import write_approach

    pytester.makepyfile(
        mine="class Aeb:\n    def step(self, f):\n        return {'aeb_decel': 0}\n"
    )
    pytester.makeini("[pytest]\nadsreplay_function = mine:Aeb\n")
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_f.py").write_text("def test_f(replay):\n    pass\n")
    write_approach(pytester.path / "recs" / "a.mf4", ego_kph=40)
    result = pytester.runpytest("--recordings=recs", "-p", "no:randomly", "tests")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = result.stdout.str() + result.stderr.str()
    assert "cannot import module 'mine'" in out
    assert "add `pythonpath = .` to the [pytest] section of pytest.ini" in out
    assert "rootdir/conftest" not in out

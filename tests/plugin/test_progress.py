"""Progress while recordings replay: shown on a TTY, quiet in CI and when piped."""

from __future__ import annotations

import pytest

TESTS = """
def test_r(replay, recording):
    assert recording.id != "ccrs/a40.mf4"
"""
#: The inner run's terminal claims to be a TTY (as an interactive terminal would).
FAKE_TTY = """
def pytest_sessionstart(session):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    reporter.isatty = lambda: True
"""


@pytest.fixture
def tty_project(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("ADSREPLAY_PROGRESS", raising=False)
    monkeypatch.setenv("COLUMNS", "120")
    project.makepyfile(test_r=TESTS)
    project.makeconftest(FAKE_TTY)
    return project


def test_tty_shows_done_total_and_failures(tty_project: pytest.Pytester) -> None:
    result = tty_project.runpytest("--recordings=recs", "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=1)
    out = result.stdout.str()
    first = " [adsreplay 0/3 replayed; replaying ccrm/c50.mf4]"
    assert first in out
    assert "[adsreplay 1/3 replayed; replaying ccrs/a40.mf4]" in out
    assert "[adsreplay 2/3 replayed, 1 failure so far; replaying ccrs/b60.mf4]" in out
    # each status is erased again: backspaces, blanks, backspaces
    n = len(first)
    assert first + "\b" * n + " " * n + "\b" * n in out
    assert out.count("[adsreplay ") == 3  # only while a replay is awaited, not on a cache hit


def test_ci_stays_quiet_even_on_a_tty(
    tty_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    result = tty_project.runpytest("--recordings=recs")
    result.assert_outcomes(passed=3, failed=1)
    assert "[adsreplay" not in result.stdout.str()
    assert "\b" not in result.stdout.str()


def test_piped_output_is_quiet(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADSREPLAY_PROGRESS", raising=False)
    project.makepyfile(test_r=TESTS)
    result = project.runpytest("--recordings=recs")
    result.assert_outcomes(passed=3, failed=1)
    assert "[adsreplay" not in result.stdout.str()


def test_xdist_workers_never_draw(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADSREPLAY_PROGRESS", "1")
    project.makepyfile(test_r=TESTS)
    result = project.runpytest_subprocess("--recordings=recs", "-n", "2")
    result.assert_outcomes(passed=3, failed=1)
    assert "[adsreplay" not in result.stdout.str()

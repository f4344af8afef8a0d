"""The decoded-signal cache seen from pytest: on by default, options, no stale hits."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SPEEDS = """
import json

def test_speed(replay, recording):
    print("SPEED", json.dumps([recording.id, replay.signals["ego_speed"][0]]))
"""


def _entries(root: Path) -> list[Path]:
    return sorted(root.glob("*/*.npy"))


def _speeds(result: pytest.RunResult) -> dict[str, float]:
    out = {}
    for line in result.outlines:
        if "SPEED " in line:
            rid, speed = json.loads(line.split("SPEED ", 1)[1])
            out[rid] = speed
    return out


def _doctor(entry: Path, speed: float) -> None:
    """Rewrite a cache entry with another ego_speed (same key, its checksum updated, so
    the entry stays valid): only a hit can show it."""
    meta = json.loads(entry.with_suffix(".json").read_text())
    table = np.load(entry)
    table[1 + meta["names"].index("ego_speed")] = speed
    np.save(entry, table)
    meta["crc32"] = zlib.crc32(table.tobytes())
    entry.with_suffix(".json").write_text(json.dumps(meta))


def _run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    if not (project.path / "test_s.py").exists():
        project.makepyfile(test_s=SPEEDS)
    result = project.runpytest("--recordings=recs", "-k", "not expect", "-s", *args)
    result.assert_outcomes(passed=3)
    return result


def test_on_by_default_and_a_second_run_reads_the_cache(project: pytest.Pytester) -> None:
    first = _speeds(_run(project))
    cache = project.path / ".adsreplay" / "cache"
    assert len(_entries(cache)) == 3
    for entry in _entries(cache):
        _doctor(entry, 123.0)
    second = _speeds(_run(project))
    assert set(second) == set(first) and set(second.values()) == {123.0}


def test_a_changed_recording_is_read_again(project: pytest.Pytester, approach: Any) -> None:
    _run(project)
    cache = project.path / ".adsreplay" / "cache"
    for entry in _entries(cache):
        _doctor(entry, 123.0)
    approach(project.path / "recs" / "ccrs" / "a40.mf4", ego_kph=45)  # same sidecar
    speeds = _speeds(_run(project))
    assert speeds["ccrs/a40.mf4"] == pytest.approx(45 / 3.6)
    assert speeds["ccrs/b60.mf4"] == 123.0  # unchanged files still hit
    assert len(_entries(cache)) == 4


def test_a_changed_channel_map_is_read_again(project: pytest.Pytester) -> None:
    cmap = project.path / "map.toml"
    cmap.write_text('[signals.ego_speed]\nchannels = ["VehSpd"]\nunit = "km/h"\n')
    _run(project, f"--channel-map={cmap}")
    for entry in _entries(project.path / ".adsreplay" / "cache"):
        _doctor(entry, 123.0)
    cmap.write_text('[signals.ego_speed]\nchannels = ["VehSpd"]\nscale = 0.5\n')
    speeds = _speeds(_run(project, f"--channel-map={cmap}"))
    assert speeds["ccrs/a40.mf4"] == 20.0


def test_a_changed_cycle_time_is_read_again(project: pytest.Pytester) -> None:
    _run(project)
    for entry in _entries(project.path / ".adsreplay" / "cache"):
        _doctor(entry, 123.0)
    speeds = _speeds(_run(project, "-o", "adsreplay_cycle_time=0.02"))
    assert speeds["ccrs/a40.mf4"] == pytest.approx(40 / 3.6)


@pytest.mark.parametrize(
    "how",
    [["--adsreplay-no-cache"], ["-o", "adsreplay_cache=false"], ["-o", "adsreplay_cache=0"]],
)
def test_the_cache_can_be_turned_off(project: pytest.Pytester, how: list[str]) -> None:
    _run(project, *how)
    assert not (project.path / ".adsreplay" / "cache").exists()


def test_turned_off_from_the_environment(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADSREPLAY_CACHE", "off")
    _run(project)
    assert not (project.path / ".adsreplay" / "cache").exists()


def test_cache_dir_option_and_ini_relative_to_the_ini_file(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(project, "--adsreplay-cache-dir=elsewhere")
    assert len(_entries(project.path / "elsewhere")) == 3
    project.makeini(
        """
        [pytest]
        adsreplay_function = aebfn:Ttc
        adsreplay_db = results.sqlite
        adsreplay_cache_dir = ci-cache
        """
    )
    sub = project.path / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)
    result = project.runpytest(
        "-c",
        "../tox.ini",
        "--rootdir=..",
        "--recordings=../recs",
        "-k",
        "not expect",
        "../test_s.py",
    )
    result.assert_outcomes(passed=3)
    assert len(_entries(project.path / "ci-cache")) == 3
    assert not (sub / "ci-cache").exists()


def test_a_bad_cache_value_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest("--recordings=recs", "-o", "adsreplay_cache=maybe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*adsreplay_cache = 'maybe' (from *) must be true or false*"])

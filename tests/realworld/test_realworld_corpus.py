"""``adsreplay inspect`` and ``replay_file`` over the logger corpus (``realworld_corpus``).

Every file is read the way a new user would: inspect (exit code and report) and a replay
through the reference AEB function with the file's channel map. A valid file must warn
and brake before the stationary car; an invalid one must say why.
"""

from __future__ import annotations

import math

import pytest
from realworld_corpus import Case, write_corpus

from pytest_adsreplay.cli.inspect import inspect
from pytest_adsreplay.errors import InvalidRecordingError
from pytest_adsreplay.replay import replay_file
from pytest_adsreplay.signals import load_channel_map

REFERENCE = "pytest_adsreplay.reference:TtcAeb"
NAMES = [
    "canedge",
    "canedge-unfinalized",
    "canape",
    "canape-array-element",
    "vector-decoded",
    "vector-raw-bus2",
    "vector-mdf3",
    "ods-nanoseconds",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    cases = write_corpus(tmp_path_factory.mktemp("realworld"))
    assert [c.name for c in cases] == NAMES  # a new shape is listed here too
    return {c.name: c for c in cases}


@pytest.mark.parametrize("name", NAMES)
def test_inspect(corpus: dict[str, Case], name: str) -> None:
    case = corpus[name]
    cmap = load_channel_map(case.channel_map) if case.channel_map else None
    report = inspect(case.path, cmap)
    assert report.readable, report.text
    assert report.exit_code == (0 if case.outcome == "valid" else 1), report.text
    assert ("verdict: valid" in report.text) is (case.outcome == "valid"), report.text
    for fragment in case.inspect_says:
        assert fragment in report.text, report.text
    assert "NO TIME CHANNEL" not in report.text
    assert " 1 channels" not in report.text


@pytest.mark.parametrize("name", NAMES)
def test_replay(corpus: dict[str, Case], name: str) -> None:
    case = corpus[name]
    if case.outcome == "invalid":
        with pytest.raises(InvalidRecordingError, match=case.message):
            replay_file(case.path, REFERENCE, channel_map=case.channel_map, recording_id=name)
        return
    result = replay_file(case.path, REFERENCE, channel_map=case.channel_map, recording_id=name)
    assert result.fcw_time is not None and result.brake_time is not None, result
    assert result.fcw_time <= result.brake_time < 4.0
    assert result.ttc_at_brake is not None and 0.5 < result.ttc_at_brake < 3.0
    assert not result.collision
    assert result.min_distance is not None and math.isfinite(result.min_distance)

"""Recording ids relative to adsreplay_recordings_root, and which baseline ids a narrowed
selection must leave alone (outside_selection)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_adsreplay.errors import UsageError
from pytest_adsreplay.recordings import discover
from pytest_adsreplay.recordings.discovery import outside_selection


@pytest.fixture
def recs(tmp_path: Path) -> Path:
    for rel in ("ncap/a.mf4", "ncap/b.mf4", "city/c.mf4"):
        (tmp_path / "recs" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "recs" / rel).write_bytes(b"")
    return tmp_path / "recs"


def test_ids_are_relative_to_the_root_whatever_is_selected(recs: Path) -> None:
    assert [r.id for r in discover([recs / "ncap"])] == ["a.mf4", "b.mf4"]
    narrowed = discover([recs / "ncap"], id_root=recs)
    assert [r.id for r in narrowed] == ["ncap/a.mf4", "ncap/b.mf4"]
    assert [r.id for r in discover([recs / "ncap/a.mf4"], id_root=recs)] == ["ncap/a.mf4"]


def test_a_recording_outside_the_root_is_a_usage_error(recs: Path) -> None:
    with pytest.raises(UsageError) as err:
        discover([recs], id_root=recs / "ncap")
    assert f"{recs / 'city/c.mf4'}" in str(err.value)
    assert f"outside adsreplay_recordings_root {recs / 'ncap'}" in str(err.value)


def test_with_a_root_only_gone_recordings_inside_the_selection_are_not_outside(
    recs: Path,
) -> None:
    specs = [str(recs / "ncap")]
    assert outside_selection("city/c.mf4", specs, recs / "ncap", recs)  # exists, not selected
    assert outside_selection("city/gone.mf4", specs, recs / "ncap", recs)  # not selected
    assert not outside_selection("ncap/gone.mf4", specs, recs / "ncap", recs)  # stale
    glob = [str(recs / "ncap" / "a*.mf4")]
    assert outside_selection("ncap/b.mf4", glob, recs / "ncap", recs)  # the glob skips it
    assert not outside_selection("ncap/a_gone.mf4", glob, recs / "ncap", recs)
    assert outside_selection("ncap/b_gone.mf4", glob, recs / "ncap", recs)


def test_without_a_root_an_id_of_a_wider_folder_that_exists_is_outside(recs: Path) -> None:
    specs = [str(recs / "ncap")]
    assert outside_selection("city/c.mf4", specs, recs / "ncap", None)  # recs/city/c.mf4
    assert outside_selection("ncap/a.mf4", specs, recs / "ncap", None)  # recs/ncap/a.mf4
    assert not outside_selection("gone.mf4", specs, recs / "ncap", None)
    assert not outside_selection("x.mf4", ["s3://bucket/p/"], Path("s3:/bucket/p"), None)

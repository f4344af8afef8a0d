"""A recording with an object list read without an [objects] table: the error says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_adsreplay.errors import MissingChannelError
from pytest_adsreplay.signals.channel_map import load_channel_map
from pytest_adsreplay.signals.read import read_signals

OBJECTS = Path(__file__).resolve().parents[2] / "recordings" / "objects"


def test_missing_target_on_an_object_list_points_to_the_objects_table() -> None:
    with pytest.raises(MissingChannelError) as err:
        read_signals(OBJECTS / "cut_in.mf4", load_channel_map(None))
    hint = err.value.hint or ""
    assert "Radar.Obj{i:02d}.DistX x 32" in hint
    assert "[objects] table" in hint and "--suite objects" in hint
    assert "target_distance" in str(err.value)


def test_a_single_target_file_without_its_channels_keeps_the_plain_hint(tmp_path: Path) -> None:
    import numpy as np

    from pytest_adsreplay.mdf.writer import ChannelData, GroupData, write_recording

    t = np.arange(100) * 0.01
    path = tmp_path / "speed_only.mf4"
    speed = ChannelData("VehSpd", np.full(100, 10.0), unit="m/s")
    write_recording(path, [GroupData("ego", t, [speed])])
    with pytest.raises(MissingChannelError) as err:
        read_signals(path, load_channel_map(None))
    assert "[objects]" not in (err.value.hint or "")
    assert "channels = [...]" in (err.value.hint or "")

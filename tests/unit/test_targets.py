"""Target signals through radar dropouts, object switches and track id changes.

Each test writes a 10 Hz radar and a 100 Hz vehicle group and compares the resampled
target signals with a grid computed by hand: linear only between two valid samples of
one object, the earlier sample held otherwise, NaN where the radar says "no object".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pytest_adsreplay.mdf import ChannelData, GroupData, write_recording
from pytest_adsreplay.signals import ChannelMap, read_signals
from pytest_adsreplay.signals.resample import resample_objects
from pytest_adsreplay.signals.targets import jumps, mask_invalid, object_segments

RADAR_T = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
GRID = np.arange(41) * 0.01


def recording(
    path: Path,
    dist: list[float],
    lat: list[float],
    valid: list[int],
    track: tuple[str, list[int]] | None = None,
) -> Path:
    chans = [
        ChannelData("Radar.Obj0.DistX", np.array(dist), unit="m"),
        ChannelData("Radar.Obj0.VrelX", np.full(len(dist), -10.0), unit="m/s"),
        ChannelData("Radar.Obj0.DistY", np.array(lat), unit="m"),
        ChannelData("Radar.Obj0.Valid", np.array(valid, dtype=np.uint8)),
    ]
    if track is not None:
        chans.append(ChannelData(track[0], np.array(track[1], dtype=np.uint16)))
    vehicle = GroupData("Vehicle", GRID.copy(), [ChannelData("VehSpd", np.full(41, 20.0), "m/s")])
    return write_recording(path, [vehicle, GroupData("Radar", RADAR_T.copy(), chans)])


def piecewise(*pieces: tuple[float, float, object]) -> np.ndarray:
    """Expected grid: ``(t_from, t_to, value or f(t))`` on [t_from, t_to) (last closed)."""
    t = GRID.copy()
    out = np.full(t.shape, -999.0)
    for a, b, v in pieces:
        last = b >= t[-1]
        sel = (t >= a - 1e-9) & ((t < b - 1e-9) | (last & (t <= b + 1e-9)))
        out[sel] = v(t[sel]) if callable(v) else v
    assert not (out == -999.0).any(), "the expected grid must cover every cycle"
    return out


def check(actual: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(actual, expected, atol=1e-9, equal_nan=True)


def test_dropout_placeholder_never_enters_the_grid(tmp_path: Path) -> None:
    path = recording(
        tmp_path / "dropout.mf4",
        dist=[20.0, 19.0, 0.0, 17.0, 16.0],
        lat=[-3.5, -3.5, 0.0, -3.5, -3.5],
        valid=[1, 1, 0, 1, 1],
    )
    sig = read_signals(path, ChannelMap.default())
    v = sig.values
    check(
        v["target_distance"],
        piecewise(
            (0.0, 0.1, lambda t: 20 - 10 * t),
            (0.1, 0.2, 19.0),  # held up to the invalid sample, not slid towards 0
            (0.2, 0.3, np.nan),
            (0.3, 0.4, lambda t: 17 - 10 * (t - 0.3)),
        ),
    )
    check(v["target_lateral"], piecewise((0.0, 0.2, -3.5), (0.2, 0.3, np.nan), (0.3, 0.4, -3.5)))
    check(v["target_valid"], piecewise((0.0, 0.2, 1.0), (0.2, 0.3, 0.0), (0.3, 0.4, 1.0)))
    # no cycle says "valid" with a lateral offset between the lane and the placeholder
    assert not np.any((v["target_valid"] == 1) & (np.abs(v["target_lateral"]) < 3.4))


def test_object_switch_without_track_id_holds_the_earlier_object(tmp_path: Path) -> None:
    path = recording(
        tmp_path / "switch.mf4",
        dist=[30.0, 29.0, 12.0, 11.5, 11.0],
        lat=[2.0, 2.0, -1.7, -1.7, -1.7],
        valid=[1, 1, 1, 1, 1],
    )
    v = read_signals(path, ChannelMap.default()).values
    check(
        v["target_distance"],
        piecewise(
            (0.0, 0.1, lambda t: 30 - 10 * t),
            (0.1, 0.2, 29.0),
            (0.2, 0.4, lambda t: 12 - 5 * (t - 0.2)),
        ),
    )
    check(v["target_lateral"], piecewise((0.0, 0.2, 2.0), (0.2, 0.4, -1.7)))
    # the relative speed did not jump, but it belongs to the same radar object: held too
    check(v["target_rel_speed"], np.full(GRID.shape, -10.0))
    assert np.all(v["target_valid"] == 1)


@pytest.mark.parametrize("id_channel", ["Radar.Obj0.ID", "Other.Counter"])
def test_track_id_change_is_an_object_switch(tmp_path: Path, id_channel: str) -> None:
    """Small, plausible steps: only the mapped track id tells that the object changed."""
    path = recording(
        tmp_path / "track.mf4",
        dist=[20.0, 19.0, 18.5, 18.0, 17.5],
        lat=[0.2, 0.2, 0.4, 0.4, 0.4],
        valid=[1, 1, 1, 1, 1],
        track=(id_channel, [7, 7, 9, 9, 9]),
    )
    v = read_signals(path, ChannelMap.default()).values
    if id_channel == "Radar.Obj0.ID":  # a built-in candidate for target_id
        dist = piecewise(
            (0.0, 0.1, lambda t: 20 - 10 * t),
            (0.1, 0.2, 19.0),
            (0.2, 0.4, lambda t: 18.5 - 5 * (t - 0.2)),
        )
        lat = piecewise((0.0, 0.2, 0.2), (0.2, 0.4, 0.4))
    else:  # not mapped: one object moving plausibly, interpolated
        dist = piecewise(
            (0.0, 0.1, lambda t: 20 - 10 * t),
            (0.1, 0.4, lambda t: 19 - 5 * (t - 0.1)),
        )
        lat = piecewise((0.0, 0.1, 0.2), (0.1, 0.2, lambda t: 0.2 + 2 * (t - 0.1)), (0.2, 0.4, 0.4))
    check(v["target_distance"], dist)
    check(v["target_lateral"], lat)
    assert "target_id" not in v  # steers resampling only, not a function input


def test_track_id_mapped_in_a_channel_map(tmp_path: Path) -> None:
    path = recording(
        tmp_path / "m.mf4",
        dist=[20.0, 19.0, 18.5, 18.0, 17.5],
        lat=[0.0] * 5,
        valid=[1] * 5,
        track=("ObjTrk", [1, 1, 1, 2, 2]),
    )
    cmap = ChannelMap.from_dict({"signals": {"target_id": {"channels": ["ObjTrk"]}}})
    v = read_signals(path, cmap).values
    check(
        v["target_distance"],
        piecewise(
            (0.0, 0.1, lambda t: 20 - 10 * t),
            (0.1, 0.2, lambda t: 19 - 5 * (t - 0.1)),
            (0.2, 0.3, 18.5),
            (0.3, 0.4, lambda t: 18 - 5 * (t - 0.3)),
        ),
    )


def test_resample_objects_rules() -> None:
    ts = np.array([0.0, 1.0, 2.0, 3.0])
    vs = np.array([0.0, 10.0, np.nan, 30.0])
    grid = np.arange(7) * 0.5
    same = resample_objects(ts, vs, grid)
    check(same, np.array([0.0, 5.0, 10.0, 10.0, np.nan, np.nan, 30.0]))
    seg = np.array([0.0, 1.0, 1.0, 1.0])
    check(
        resample_objects(ts, vs, grid, segments=seg),
        np.array([0.0, 0.0, 10.0, 10.0, np.nan, np.nan, 30.0]),
    )
    with pytest.raises(ValueError, match="equal 1-D shapes"):
        resample_objects(ts, vs, grid, segments=seg[:2])


def test_masking_jumps_and_segments() -> None:
    ts = np.array([0.0, 0.05, 0.1, 0.15])
    masked = mask_invalid(
        np.array([5.0, 0.0, 4.0, 3.9]), ts, (np.array([0.0, 0.05, 0.1]), np.array([1.0, 0.0, 1.0]))
    )
    check(masked, np.array([5.0, np.nan, 4.0, 3.9]))
    lat = np.array([2.0, 2.0, -1.7, -1.7])
    assert jumps("target_lateral", ts, lat).tolist() == [False, True, False]
    assert jumps("ego_speed", ts, lat).tolist() == [False, False, False]
    track = (np.array([0.0, 0.1]), np.array([3.0, 4.0]))
    seg = object_segments(ts, np.array([False, False, False]), track)
    assert seg.tolist() == [0.0, 0.0, 1.0, 1.0]

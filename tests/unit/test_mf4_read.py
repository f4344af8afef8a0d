"""read_signals on real MF4 files written with mf4.write_recording."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_adsreplay import mdf as mf4
from pytest_adsreplay.errors import (
    AmbiguousChannelError,
    InvalidRecordingError,
    MissingChannelError,
    RecordingError,
    UnitError,
)
from pytest_adsreplay.mdf import ChannelData, GroupData, write_recording
from pytest_adsreplay.signals import ChannelMap, read_signals, resolve_channels

DEFAULT = ChannelMap.default()
VALUE_TO_TEXT = {
    "val_0": 0,
    "text_0": b"NoObject",
    "val_1": 1,
    "text_1": b"Object",
    "default": b"?",
}


def cmap(**signals: dict[str, Any]) -> ChannelMap:
    return ChannelMap.from_dict({"signals": signals}, source="test-map.toml")


def scenario(
    path: Path,
    *,
    duration: float = 4.0,
    radar_t: np.ndarray | None = None,
    vehicle_t: np.ndarray | None = None,
    extra_groups: Sequence[GroupData] = (),
) -> Path:
    """A recording shaped like the bundled generator's (vehicle 100 Hz, radar 20 Hz)."""
    tv = np.arange(0, round(duration / 0.01)) * 0.01 if vehicle_t is None else vehicle_t
    tr = np.arange(0, round(duration / 0.05)) * 0.05 if radar_t is None else radar_t
    speed_kmh = 36.0 - 3.6 * tv  # 10 m/s falling by 1 m/s²
    valid = (tr < duration - 1.0).astype(np.uint8)
    groups = [
        GroupData(
            "Vehicle",
            tv,
            [
                ChannelData("VehSpd", speed_kmh, unit="km/h"),
                ChannelData("VehAccX", np.full(tv.size, -1.0), unit="m/s^2"),
                ChannelData("DrvBrkPdl", (tv >= 2.0).astype(np.uint8)),
            ],
        ),
        GroupData(
            "Radar",
            tr,
            [
                ChannelData("Radar.Obj0.DistX", 50.0 - 2.0 * tr, unit="m"),
                ChannelData("Radar.Obj0.VrelX", np.full(tr.size, -2.0), unit="m/s"),
                ChannelData("Radar.Obj0.DistY", np.full(tr.size, 0.25), unit="m"),
                ChannelData("Radar.Obj0.Valid", valid),
            ],
        ),
        *extra_groups,
    ]
    return write_recording(path, groups)


def simple(path: Path, groups: Sequence[tuple[str, np.ndarray, Sequence[ChannelData]]]) -> Path:
    return write_recording(path, [GroupData(n, t, list(chs)) for n, t, chs in groups])


def minimal_required(t: np.ndarray) -> list[ChannelData]:
    return [
        ChannelData("ObjDist", np.full(t.size, 40.0), unit="m"),
        ChannelData("ObjRelSpd", np.full(t.size, -1.0), unit="m/s"),
    ]


# --------------------------------------------------------------------- happy path


def test_generator_names_with_default_map(tmp_path: Path) -> None:
    sig = read_signals(scenario(tmp_path / "ccrs.mf4"), DEFAULT)
    assert sig.cycle_time == 0.01
    assert sig.t.dtype == np.float64
    assert np.array_equal(sig.t, np.arange(sig.t.size) * 0.01)  # exact k * 0.01
    assert sig.t[0] == 0.0 and sig.t[-1] == 399 * 0.01
    assert set(sig.values) == {
        "ego_speed",
        "ego_accel",
        "target_distance",
        "target_rel_speed",
        "target_lateral",
        "target_valid",
        "driver_brake",
    }
    for arr in sig.values.values():
        assert arr.dtype == np.float64 and arr.shape == sig.t.shape
    # km/h converted to m/s
    assert sig.values["ego_speed"][0] == pytest.approx(10.0)
    assert sig.values["ego_speed"][100] == pytest.approx(9.0)
    assert sig.sources["ego_speed"].startswith("VehSpd@0/")
    assert "km/h -> m/s" in sig.sources["ego_speed"]
    # 20 Hz distance linearly interpolated at 100 Hz: 50 - 2 t
    assert sig.values["target_distance"][13] == pytest.approx(50.0 - 2.0 * 0.13)
    # radar ends at 3.95 s: no extrapolation to 3.99
    assert np.isnan(sig.values["target_rel_speed"][-1])
    assert sig.values["driver_brake"][199] == 0.0 and sig.values["driver_brake"][200] == 1.0


def test_flag_at_20hz_on_100hz_grid_is_never_half(tmp_path: Path) -> None:
    tr = np.arange(0, 80) * 0.05
    toggling = (np.arange(tr.size) % 2).astype(np.uint8)
    path = simple(
        tmp_path / "f.mf4",
        [
            (
                "Radar",
                tr,
                [
                    *minimal_required(tr),
                    ChannelData("ObjValid", toggling),
                    ChannelData("VehSpd", np.full(tr.size, 10.0), unit="m/s"),
                ],
            ),
        ],
    )
    sig = read_signals(path, DEFAULT)
    valid = sig.values["target_valid"]
    assert set(np.unique(valid[~np.isnan(valid)])) == {0.0, 1.0}
    assert valid[5] == 1.0 and valid[9] == 1.0 and valid[10] == 0.0  # held between samples
    # the distance is NaN exactly where valid is 0
    assert np.array_equal(np.isnan(sig.values["target_distance"]), valid == 0)


def test_integer_channel_is_held_scaled_channel_is_interpolated(tmp_path: Path) -> None:
    tr = np.arange(0, 21) * 0.05
    path = simple(
        tmp_path / "i.mf4",
        [
            (
                "G",
                tr,
                [
                    ChannelData("VehSpd", (np.arange(tr.size) * 10).astype(np.int16), unit="m/s"),
                    ChannelData(
                        "ObjDist",
                        (np.arange(tr.size) * 100).astype(np.int16),
                        unit="m",
                        conversion={"a": 0.01, "b": 0.0},
                    ),
                    ChannelData("ObjRelSpd", np.zeros(tr.size), unit="m/s"),
                ],
            ),
        ],
    )
    sig = read_signals(path, DEFAULT)
    assert sig.values["ego_speed"][2] == 0.0 and sig.values["ego_speed"][5] == 10.0  # hold
    assert sig.values["target_distance"][2] == pytest.approx(0.02 * 100 * 0.01 * 20)  # linear
    assert "hold" in sig.sources["ego_speed"] and "linear" in sig.sources["target_distance"]


def test_multi_rate_span_union_and_nan_outside(tmp_path: Path) -> None:
    tv = np.arange(100, 300) * 0.01  # 1.00 .. 2.99 s at 100 Hz
    tr = np.arange(0, 40) * 0.05 + 0.5  # 0.50 .. 2.45 s at 20 Hz
    path = simple(
        tmp_path / "m.mf4",
        [
            ("Vehicle", tv, [ChannelData("VehSpd", np.full(tv.size, 36.0), unit="km/h")]),
            ("Radar", tr, minimal_required(tr)),
        ],
    )
    sig = read_signals(path, DEFAULT)
    assert sig.t[0] == 50 * 0.01 and sig.t[-1] == 299 * 0.01
    speed = sig.values["ego_speed"]
    assert np.isnan(speed[sig.t < 0.995]).all()
    assert np.allclose(speed[sig.t > 1.005], 10.0)
    assert np.isnan(sig.values["target_distance"][sig.t > 2.455]).all()
    assert "ego_accel" not in sig.values and "driver_brake" not in sig.values  # optional, absent


def test_jittered_timestamps(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    tv = np.cumsum(rng.uniform(0.007, 0.013, 400))
    tr = np.cumsum(rng.uniform(0.04, 0.06, 80))
    path = scenario(tmp_path / "j.mf4", vehicle_t=tv, radar_t=tr)
    sig = read_signals(path, DEFAULT)
    assert np.array_equal(
        sig.t, np.arange(round(sig.t[0] / 0.01), round(sig.t[0] / 0.01) + sig.t.size) * 0.01
    )
    inside = (sig.t >= tv[0]) & (sig.t <= tv[-1])
    assert np.allclose(sig.values["ego_speed"][inside], 10.0 - sig.t[inside], atol=1e-9)
    last_valid = tr[tr < 3.0][-1]
    radar = (sig.t >= tr[0]) & (sig.t <= last_valid)
    assert np.allclose(sig.values["target_distance"][radar], 50 - 2 * sig.t[radar], atol=1e-9)
    # after the last valid sample the object is held until the radar says "invalid"
    held = (sig.t > last_valid) & (sig.values["target_valid"] == 1)
    assert held.any()
    assert np.all(sig.values["target_distance"][held] == 50 - 2 * last_valid)


def test_grid_includes_the_last_sample_despite_rounding(tmp_path: Path) -> None:
    tr = np.arange(0, 7) * 0.1  # 0.6000000000000001 at the end
    path = simple(
        tmp_path / "r.mf4",
        [
            ("G", tr, [*minimal_required(tr), ChannelData("VehSpd", tr, unit="m/s")]),
        ],
    )
    sig = read_signals(path, DEFAULT)
    assert sig.t.size == 61 and sig.t[-1] == 60 * 0.01
    assert not np.isnan(sig.values["ego_speed"][-1])


def test_custom_cycle_time(tmp_path: Path) -> None:
    sig = read_signals(scenario(tmp_path / "c.mf4"), DEFAULT, cycle_time=0.02)
    assert sig.cycle_time == 0.02
    assert np.array_equal(sig.t, np.arange(sig.t.size) * 0.02)


def test_value_to_text_channel_read_as_raw_number(tmp_path: Path) -> None:
    t = np.arange(0, 50) * 0.02
    states = (t >= 0.5).astype(np.uint8)
    path = simple(
        tmp_path / "v.mf4",
        [
            (
                "G",
                t,
                [
                    *minimal_required(t),
                    ChannelData("VehSpd", np.full(t.size, 5.0), unit="m/s"),
                    ChannelData("ObjState", states, conversion=VALUE_TO_TEXT),
                ],
            ),
        ],
    )
    sig = read_signals(path, cmap(target_valid={"channels": ["ObjState"]}))
    valid = sig.values["target_valid"]
    assert valid.dtype == np.float64
    assert valid[0] == 0.0 and valid[-1] == 1.0
    assert np.isnan(sig.values["target_distance"][:50]).all()
    assert sig.values["target_distance"][50] == 40.0


def test_target_valid_derived_when_unmapped(tmp_path: Path) -> None:
    t = np.arange(0, 50) * 0.02
    dist = np.where(t < 0.5, np.nan, 30.0)
    path = simple(
        tmp_path / "d.mf4",
        [
            (
                "G",
                t,
                [
                    ChannelData("ObjDist", dist, unit="m"),
                    ChannelData("ObjRelSpd", np.zeros(t.size), unit="m/s"),
                    ChannelData("VehSpd", np.full(t.size, 5.0), unit="m/s"),
                ],
            ),
        ],
    )
    sig = read_signals(path, DEFAULT)
    assert sig.sources["target_valid"] == "derived: isfinite(target_distance)"
    assert np.array_equal(
        sig.values["target_valid"], np.isfinite(sig.values["target_distance"]).astype(float)
    )
    assert sig.values["target_valid"][0] == 0.0 and sig.values["target_valid"][-1] == 1.0


def test_only_mapped_channels_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from asammdf import MDF

    t = np.arange(0, 100) * 0.01
    big = GroupData("Unrelated", t, [ChannelData(f"Other{i}", t) for i in range(5)])
    path = scenario(tmp_path / "o.mf4", extra_groups=[big])
    selected: list[Any] = []
    original = MDF.select

    def spy(self: Any, channels: Any, *args: Any, **kwargs: Any) -> Any:
        selected.extend(channels)
        return original(self, channels, *args, **kwargs)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("to_dataframe must not be used")

    monkeypatch.setattr(MDF, "select", spy)
    monkeypatch.setattr(MDF, "to_dataframe", forbidden)
    read_signals(path, DEFAULT)
    names = {item[0] for item in selected}
    assert names == {
        "VehSpd",
        "VehAccX",
        "DrvBrkPdl",
        "Radar.Obj0.DistX",
        "Radar.Obj0.VrelX",
        "Radar.Obj0.DistY",
        "Radar.Obj0.Valid",
    }


# ------------------------------------------------------------- duplicates / names


def duplicated(tmp_path: Path) -> Path:
    t = np.arange(0, 100) * 0.01
    t2 = np.arange(0, 20) * 0.05
    return simple(
        tmp_path / "dup.mf4",
        [
            (
                "Vehicle",
                t,
                [ChannelData("VehSpd", np.full(t.size, 36.0), unit="km/h"), *minimal_required(t)],
            ),
            ("Display", t2, [ChannelData("VehSpd", np.full(t2.size, 99.0), unit="km/h")]),
        ],
    )


def test_bare_duplicate_name_is_ambiguous(tmp_path: Path) -> None:
    path = duplicated(tmp_path)
    with pytest.raises(AmbiguousChannelError) as info:
        read_signals(path, DEFAULT, recording_id="ncap/dup.mf4")
    msg = str(info.value)
    assert msg.startswith("ncap/dup.mf4: ")
    assert "VehSpd@0/1" in msg and "VehSpd@1/1" in msg
    assert "'Vehicle'" in msg and "'Display'" in msg
    assert "Name@group" in msg


@pytest.mark.parametrize(("ref", "expected"), [("VehSpd@0", 10.0), ("VehSpd@1/1", 27.5)])
def test_name_at_group_picks_one(tmp_path: Path, ref: str, expected: float) -> None:
    sig = read_signals(duplicated(tmp_path), cmap(ego_speed={"channels": [ref]}))
    assert sig.values["ego_speed"][50] == pytest.approx(expected)
    assert sig.sources["ego_speed"].startswith(ref if "/" in ref else f"{ref}/")


def test_name_at_wrong_group_falls_through_to_next_candidate(tmp_path: Path) -> None:
    sig = read_signals(duplicated(tmp_path), cmap(ego_speed={"channels": ["VehSpd@7", "VehSpd@1"]}))
    assert sig.values["ego_speed"][0] == pytest.approx(27.5)


def test_missing_required_lists_candidates_and_close_matches(tmp_path: Path) -> None:
    t = np.arange(0, 100) * 0.01
    path = simple(
        tmp_path / "miss.mf4",
        [
            (
                "G",
                t,
                [
                    ChannelData("VehSpdX", t),
                    ChannelData("ObjDistance", t),
                    ChannelData("ObjRelSpd", t),
                ],
            ),
        ],
    )
    with pytest.raises(MissingChannelError) as info:
        read_signals(path, DEFAULT, recording_id="miss")
    msg = str(info.value)
    assert msg.startswith("miss: required signal(s) not found")
    assert "ego_speed: tried VehSpd, VehicleSpeed" in msg
    assert "close matches in the file: VehSpdX" in msg
    assert "target_distance: tried" in msg and "ObjDistance" in msg
    assert "target_rel_speed:" not in msg
    assert "adsreplay inspect" in msg


# ------------------------------------------------------------------------ units


def one_speed(tmp_path: Path, unit: str) -> Path:
    t = np.arange(0, 100) * 0.01
    return simple(
        tmp_path / "u.mf4",
        [
            ("G", t, [ChannelData("Spd", np.full(t.size, 36.0), unit=unit), *minimal_required(t)]),
        ],
    )


def test_unit_contradiction_hours_vs_km_h(tmp_path: Path) -> None:
    path = one_speed(tmp_path, "hours")
    with pytest.raises(UnitError) as info:
        read_signals(
            path, cmap(ego_speed={"channels": ["Spd"], "unit": "km/h"}), recording_id="rec-7"
        )
    msg = str(info.value)
    assert msg.startswith("rec-7: ")
    assert "'hours'" in msg and "'km/h'" in msg and "Spd@0/1" in msg
    assert "test-map.toml" in msg


def test_unit_contradiction_m_s_vs_km_h(tmp_path: Path) -> None:
    with pytest.raises(UnitError, match=r"says 'm/s' in the file.*says 'km/h'"):
        read_signals(
            one_speed(tmp_path, "m/s"), cmap(ego_speed={"channels": ["Spd"], "unit": "km/h"})
        )


@pytest.mark.parametrize(
    ("file_unit", "spec", "expected"),
    [
        ("", {"unit": "km/h"}, 10.0),  # file silent: trust the map
        ("kph", {"unit": "km/h"}, 10.0),  # same unit, other spelling
        ("km/h", {}, 10.0),  # no map unit: use the file's
        ("mph", {}, 36.0 * 0.44704),
        ("", {}, 36.0),  # no unit anywhere: SI
        ("furlongs", {}, 36.0),  # unknown file unit, no map unit: SI
        ("hours", {"scale": 0.5, "offset": 1.0}, 19.0),  # scale overrides the file
    ],
)
def test_unit_conversions(
    tmp_path: Path, file_unit: str, spec: dict[str, Any], expected: float
) -> None:
    sig = read_signals(
        one_speed(tmp_path, file_unit), cmap(ego_speed={"channels": ["Spd"], **spec})
    )
    assert sig.values["ego_speed"][10] == pytest.approx(expected)


def test_file_unit_of_the_wrong_dimension(tmp_path: Path) -> None:
    with pytest.raises(UnitError, match=r"has unit 'm' \(length\), but ego_speed is a speed"):
        read_signals(one_speed(tmp_path, "m"), cmap(ego_speed={"channels": ["Spd"]}))


# ---------------------------------------------------------------- bad recordings


def test_decreasing_timestamps(tmp_path: Path) -> None:
    t = np.arange(0, 100) * 0.01
    t[40] = 0.2
    path = simple(
        tmp_path / "dec.mf4",
        [
            ("G", t, [ChannelData("VehSpd", t, unit="m/s"), *minimal_required(t)]),
        ],
    )
    with pytest.raises(InvalidRecordingError) as info:
        read_signals(path, DEFAULT, recording_id="dec")
    msg = str(info.value)
    assert "VehSpd@0/1" in msg and "time goes backwards at sample 40" in msg
    assert "t=0.2 s after t=0.39 s" in msg
    assert info.value.outcome == "invalid"


def test_nan_timestamps(tmp_path: Path) -> None:
    t = np.arange(0, 100) * 0.01
    t[7] = np.nan
    path = simple(
        tmp_path / "nan.mf4",
        [
            ("G", t, [ChannelData("VehSpd", t, unit="m/s"), *minimal_required(t)]),
        ],
    )
    # (asammdf's writer may move the NaN row; the message must name where it is)
    with pytest.raises(
        InvalidRecordingError,
        match=r"VehSpd@0/1 \(ego_speed\): timestamp is "
        r"nan at sample \d+ \(after t=0.\d+ s\)",
    ):
        read_signals(path, DEFAULT)


def test_shorter_than_one_cycle(tmp_path: Path) -> None:
    t = np.array([1.0, 1.004])
    path = simple(
        tmp_path / "short.mf4",
        [
            ("G", t, [ChannelData("VehSpd", t, unit="m/s"), *minimal_required(t)]),
        ],
    )
    with pytest.raises(InvalidRecordingError, match=r"shorter than one cycle of 0\.01 s"):
        read_signals(path, DEFAULT)


def test_required_channel_without_samples(tmp_path: Path) -> None:
    t = np.arange(0, 100) * 0.01
    path = simple(
        tmp_path / "zero.mf4",
        [
            ("G", t, [ChannelData("VehSpd", t, unit="m/s"), ChannelData("ObjRelSpd", t)]),
            ("Radar", np.zeros(0), [ChannelData("ObjDist", np.zeros(0), unit="m")]),
        ],
    )
    with pytest.raises(
        InvalidRecordingError,
        match=r"ObjDist@1/1 \(target_distance\) has no "
        "samples",
    ):
        read_signals(path, DEFAULT)


def test_gap_in_a_continuous_signal_is_nan(tmp_path: Path) -> None:
    t = np.r_[np.arange(0, 100), np.arange(150, 250)] * 0.01
    path = simple(
        tmp_path / "gap.mf4",
        [
            (
                "G",
                t,
                [ChannelData("VehSpd", np.full(t.size, 5.0), unit="m/s"), *minimal_required(t)],
            ),
        ],
    )
    sig = read_signals(path, DEFAULT)
    speed = sig.values["ego_speed"]
    assert np.isnan(speed[100:150]).all()
    assert not np.isnan(speed[:100]).any() and not np.isnan(speed[150:]).any()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "is empty (0 bytes)"),
        (b"hello world, this is not a measurement\n" * 20, "is not an MF4/MDF file"),
        (b"MDF     5.00    " + b"\0" * 400, "is MDF version '5.00', which cannot be read"),
        (
            b"MDF     4.10    " + b"\0" * 100,
            "is truncated (116 bytes, the header block is incomplete)",
        ),
        (b"MDF     3.30    " + b"\0" * 400, "cannot be read ("),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "bad.mf4"
    path.write_bytes(content)
    with pytest.raises(RecordingError) as info:
        read_signals(path, DEFAULT, recording_id="bad.mf4")
    assert type(info.value) is RecordingError
    msg = str(info.value)
    assert msg.startswith("bad.mf4: ") and fragment in msg and "->" in msg


def test_truncated_file(tmp_path: Path) -> None:
    good = scenario(tmp_path / "good.mf4")
    data = good.read_bytes()
    bad = tmp_path / "trunc.mf4"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(RecordingError) as info:
        read_signals(bad, DEFAULT)
    msg = str(info.value)
    assert str(bad) in msg
    assert "truncated or corrupt" in msg or "cannot read" in msg
    assert "re-export it from the logger" in msg


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="does not exist"):
        read_signals(tmp_path / "nope.mf4", DEFAULT)
    with pytest.raises(RecordingError, match="is a directory"):
        read_signals(tmp_path, DEFAULT)


# ------------------------------------------------------------------- reader API


def test_reader_info_lists_groups_and_channels(tmp_path: Path) -> None:
    t = np.arange(0, 10) * 0.1
    path = simple(
        tmp_path / "info.mf4",
        [
            (
                "Vehicle",
                t,
                [
                    ChannelData("VehSpd", t, unit="km/h"),
                    ChannelData("State", (t > 0.5).astype(np.uint8), conversion=VALUE_TO_TEXT),
                    ChannelData("Raw", (t * 10).astype(np.int16), conversion={"a": 0.5, "b": 0.0}),
                ],
            ),
        ],
    )
    with mf4.open_recording(path) as reader:
        info = reader.info
        assert info.version.startswith("4.")
        assert [g.name for g in info.groups] == ["Vehicle"]
        assert info.groups[0].samples == 10
        by_name = {c.name: c for c in info.channels()}
        assert by_name["VehSpd"].unit == "km/h" and by_name["VehSpd"].dtype == "float64"
        assert by_name["State"].conversion == "value-to-text" and by_name["State"].discrete
        assert by_name["Raw"].conversion == "linear" and not by_name["Raw"].discrete
        assert np.array_equal(reader.master(0), t)
        (state,) = reader.read([by_name["State"]])
        assert state.samples.tolist() == [0.0] * 6 + [1.0] * 4


def test_string_channel_cannot_be_mapped() -> None:
    # write_recording cannot write strings; resolution only needs the metadata
    chans = (
        mf4.ChannelInfo("VehSpd", 0, 1, "", "string", "none"),
        mf4.ChannelInfo("ObjDist", 0, 2, "m", "float64", "none"),
    )
    info = mf4.RecordingInfo("s.mf4", 1000, "4.10", "", (mf4.GroupInfo(0, "G", 10, chans),))
    res = resolve_channels(DEFAULT, info, recording="s")
    assert not res["ego_speed"].found
    assert "VehSpd@0/1 for ego_speed holds string data" in str(res["ego_speed"].error)
    assert res["target_distance"].found and res["target_distance"].source == (
        "ObjDist@0/2 [m, linear]"
    )


def test_bad_cycle_time(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cycle_time must be a positive number"):
        read_signals(scenario(tmp_path / "c.mf4"), DEFAULT, cycle_time=0.0)


# ------------------------------------------------------------- real logger shapes

HEADER = (
    '<HDcomment xmlns="http://www.asam.net/mdf/v4"><TX>track day, run 7</TX>'
    '<common_properties><e name="vehicle">ID.4 prototype</e><e name="driver">anna</e>'
    '<tree name="site"><e name="name">Papenburg</e><e name="lane">2</e></tree>'
    "</common_properties></HDcomment>"
)
META = {
    "description": "track day, run 7",
    "vehicle": "ID.4 prototype",
    "driver": "anna",
    "site": {"name": "Papenburg", "lane": "2"},
}


@pytest.mark.parametrize(
    ("suffix", "version"), [(".mdf", "3.30"), (".dat", "3.00"), (".mdf", "2.14")]
)
def test_mdf3_files_read_like_mf4(tmp_path: Path, suffix: str, version: str) -> None:
    tv = np.arange(0, 300) * 0.01
    tr = np.arange(0, 60) * 0.05
    path = write_recording(
        tmp_path / f"old{suffix}",
        [
            GroupData(
                "Vehicle",
                tv,
                [
                    ChannelData("VehSpd", np.full(tv.size, 36.0), unit="km/h"),
                    ChannelData("DrvBrkPdl", (tv > 1.5).astype(np.uint8), conversion=VALUE_TO_TEXT),
                ],
            ),
            GroupData(
                "Radar",
                tr,
                [
                    ChannelData(
                        "ObjDist",
                        (4000 - 100 * tr).astype(np.int16),
                        "m",
                        conversion={"a": 0.01, "b": 0.0},
                    ),
                    ChannelData("ObjRelSpd", np.full(tr.size, -1.0), unit="m/s"),
                ],
            ),
        ],
        version=version,
    )
    with mf4.open_recording(path) as reader:
        assert reader.info.version == version
        assert [g.name for g in reader.info.groups] == ["Vehicle", "Radar"]
        by_name = {c.name: c for c in reader.info.channels()}
        assert by_name["VehSpd"].unit == "km/h" and by_name["VehSpd"].dtype == "float64"
        assert by_name["DrvBrkPdl"].discrete and by_name["ObjDist"].conversion == "linear"
    sig = read_signals(path, DEFAULT)
    assert sig.values["ego_speed"] == pytest.approx(10.0)
    assert sig.values["driver_brake"][149] == 0.0 and sig.values["driver_brake"][151] == 1.0
    assert sig.values["target_distance"][100] == pytest.approx(40.0 - 1.0, abs=0.011)


def test_header_metadata_of_mf4(tmp_path: Path) -> None:
    t = np.arange(0, 50) * 0.01
    path = write_recording(
        tmp_path / "m.mf4", [GroupData("G", t, minimal_required(t))], header_comment=HEADER
    )
    assert mf4.read_metadata(path) == META
    with mf4.open_recording(path) as reader:
        assert reader.info.metadata == META


def test_header_metadata_of_mdf3_includes_its_header_fields(tmp_path: Path) -> None:
    t = np.arange(0, 50) * 0.01
    path = write_recording(
        tmp_path / "m.dat",
        [GroupData("G", t, minimal_required(t))],
        header_comment=HEADER,
        version="3.30",
    )
    meta = mf4.read_metadata(path)
    assert {k: meta[k] for k in META if k in meta} == META  # + author from the header fields
    assert "updated by asammdf" not in str(meta)


@pytest.mark.parametrize(
    ("text", "meta"),
    [
        ("", {}),
        ("plain logger note\nline 2", {"description": "plain logger note\nline 2"}),
        ("<HDcomment><TX>cut off", {"description": "<HDcomment><TX>cut off"}),
        ("<HDcomment><TX/><common_properties><e name='x'/></common_properties></HDcomment>", {}),
        (
            "<HDcomment><common_properties><elist name='s'><eli>a</eli><eli>b</eli></elist><list "
            "name='l'><li><e name='k'>v</e></li></list></common_properties></HDcomment>",
            {"s": ["a", "b"], "l": [{"k": "v"}]},
        ),
        (
            "<HDcomment><TX>a\nWed Nov 22 10:00:00 2026: updated by asammdf 8.8.28</TX></HDcomment>",
            {"description": "a"},
        ),
    ],
)
def test_parse_header_comment(text: str, meta: dict[str, Any]) -> None:
    assert mf4.parse_header_comment(text) == meta


def test_metadata_of_unreadable_files_is_empty(tmp_path: Path) -> None:
    (tmp_path / "z.mf4").write_bytes(b"")
    (tmp_path / "r.mf4").write_bytes(b"MDF     4.10    " + b"\xff" * 200)
    assert mf4.read_metadata(tmp_path / "z.mf4") == {}
    assert mf4.read_metadata(tmp_path / "r.mf4") == {}
    assert mf4.read_metadata(tmp_path / "missing.mf4") == {}
    assert mf4.read_metadata(tmp_path) == {}


def test_recording_metadata_selects_like_tags(tmp_path: Path) -> None:
    from pytest_adsreplay.recordings import discover

    t = np.arange(0, 50) * 0.01
    write_recording(
        tmp_path / "a.mf4", [GroupData("G", t, minimal_required(t))], header_comment=HEADER
    )
    write_recording(
        tmp_path / "b.mdf",
        [GroupData("G", t, minimal_required(t))],
        header_comment="<HDcomment><TX>b</TX><common_properties><e name='driver'>"
        "bob</e></common_properties></HDcomment>",
        version="3.30",
    )
    a, b = discover([tmp_path])
    assert (a.id, b.id) == ("a.mf4", "b.mdf")
    assert a.metadata == META and b.metadata["driver"] == "bob"
    sel = {"driver": "anna"}
    assert a.matches(metadata=sel) and not b.matches(metadata=sel)
    assert a.matches(metadata={"driver": ["bob", "anna"]}) and b.matches(metadata={"driver": "b*"})
    assert a.matches(metadata={"site.name": "Papenburg", "vehicle": "ID.*"})
    assert not a.matches(metadata={"site.lane": "3"})
    assert a.matches(metadata={"vehicle": True}) and not b.matches(metadata={"vehicle": True})
    assert a.matches(pattern="a.*", metadata=sel) and not a.matches(pattern="b*", metadata=sel)


def test_array_and_structure_channels_are_listed_but_never_read(tmp_path: Path) -> None:
    from asammdf import MDF, Signal

    t = np.arange(0, 100) * 0.01
    arr = np.zeros(t.size, dtype=[("ObjDistArr", "<f8", (4,))])
    arr["ObjDistArr"] = [30.0, 40.0, 50.0, 60.0]
    struct = np.zeros(t.size, dtype=[("Obj.Dist", "<f8"), ("Obj.Id", "u1")])
    mdf = MDF(version="4.10")
    mdf.append(
        [
            Signal(arr, t, name="ObjDistArr"),
            Signal(np.full(t.size, 10.0), t, name="VehSpd", unit="m/s"),
            Signal(np.full(t.size, -1.0), t, name="ObjRelSpd", unit="m/s"),
        ],
        acq_name="Sensors",
    )
    mdf.append([Signal(struct, t, name="Obj")], acq_name="Structs")
    path = tmp_path / "arr.mf4"
    mdf.save(path, overwrite=True)
    mdf.close()
    with mf4.open_recording(path) as reader:
        kinds = {c.name: c.kind for c in reader.info.channels()}
    assert kinds["ObjDistArr"] == "array" and kinds["Obj"] == "structure"
    assert kinds["ObjDistArr[1]"] == "scalar" and kinds["Obj.Dist"] == "scalar"
    # an element of the array can be mapped; the array itself cannot
    elem = cmap(target_distance={"channels": ["ObjDistArr[1]"], "unit": "m"})
    assert read_signals(path, elem).values["target_distance"] == pytest.approx(40.0)
    whole = cmap(target_distance={"channels": ["ObjDistArr"], "unit": "m"})
    with pytest.raises(
        RecordingError,
        match=r"ObjDistArr@0/1 for target_distance holds "
        r"float64\[?.*data, not numbers|array channel",
    ):
        read_signals(path, whole)
    from pytest_adsreplay.cli.inspect import inspect_recording

    text = inspect_recording(path, elem)
    assert "ObjDistArr@0/1" in text and "(array channel, not mappable)" in text
    assert "Obj@1/1" in text and "(structure channel, not mappable)" in text
    assert "verdict: valid" in text


def _without_time_master(path: Path) -> Path:
    from asammdf import MDF, Signal

    t = np.arange(0, 100) * 0.01
    mdf = MDF(version="4.10")
    mdf.append(
        [
            Signal(np.full(t.size, 10.0), t, name="VehSpd", unit="m/s"),
            *[Signal(t, t, name=n) for n in ("ObjDist", "ObjRelSpd")],
        ],
        acq_name="Vehicle",
    )
    mdf.groups[0].channels[0].channel_type = 0  # demote the master to a value channel
    mdf.groups[0].channels[0].name = "t_raw"
    mdf.save(path, overwrite=True)
    mdf.close()
    return path


def test_group_without_time_channel_is_invalid(tmp_path: Path) -> None:
    path = _without_time_master(tmp_path / "notime.mf4")
    with mf4.open_recording(path) as reader:
        (group,) = reader.info.groups
        assert not group.time and group.master == ""
        assert reader.master(0).size == 0
    with pytest.raises(InvalidRecordingError) as info:
        read_signals(path, DEFAULT, recording_id="notime.mf4")
    assert str(info.value) == (
        "notime.mf4: group 0 (Vehicle) has no time channel (no master channel); its 100 "
        "samples cannot be placed in time\n  -> re-export the recording with the logger's "
        "timestamps (a time master channel per group)"
    )
    from pytest_adsreplay.cli.inspect import inspect_recording

    text = inspect_recording(path)
    assert "[0] Vehicle: 100 samples, NO TIME CHANNEL (no master channel)" in text
    assert "group 0 (Vehicle) has no time channel: its channels cannot be replayed" in text


def test_permission_denied(tmp_path: Path) -> None:
    import os

    path = tmp_path / "locked.mf4"
    if os.geteuid() == 0:  # root reads despite chmod; a write-only procfs file refuses it
        target = Path("/proc/sys/vm/compact_memory")
        try:
            target.open("rb").close()
        except PermissionError:
            path.symlink_to(target)
        except OSError as exc:
            pytest.skip(f"running as root and no write-only procfs file to test with ({exc})")
        else:
            pytest.skip("running as root, and /proc/sys/vm/compact_memory is readable")
    else:
        scenario(path)
        path.chmod(0)
    with pytest.raises(RecordingError) as info:
        read_signals(path, DEFAULT, recording_id="locked.mf4")
    assert str(info.value) == (
        f"locked.mf4: {path} cannot be opened: permission denied\n  -> make the file readable "
        "for the user running pytest and the workers (e.g. chmod a+r), or remove it from the "
        "recordings"
    )


def _patch(path: Path, offset: int, fmt: str, value: int) -> None:
    import struct

    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, value)
    path.write_bytes(bytes(data))


def _addresses(path: Path) -> tuple[int, int]:
    """(CN block address of VehSpd, CG block address of its group)."""
    from asammdf import MDF

    with MDF(path) as mdf:
        grp = mdf.groups[0]
        return grp.channels[1].address, grp.channel_group.address


def test_corrupt_record_offset_is_caught_before_asammdf_reads(tmp_path: Path) -> None:
    """A byte offset outside the record made asammdf's C code corrupt the heap (segfault)."""
    path = scenario(tmp_path / "c.mf4")
    cn, _ = _addresses(path)
    _patch(path, cn + 24 + 8 * 8 + 4, "<I", 262152)  # cn_byte_offset
    with pytest.raises(RecordingError) as info:
        read_signals(path, DEFAULT, recording_id="c.mf4")
    assert (
        "is corrupt: channel VehSpd@0/1 lies at bytes 262152..262160 outside its group's "
        "25-byte record; it is probably truncated or damaged"
    ) in str(info.value)


@pytest.mark.parametrize(
    ("cycles", "fragment"),
    [
        (
            401,
            "group 0 declares 401 samples (10025 bytes) but its data blocks hold only 10000 bytes",
        ),
        (2**40, "group 0 declares 1099511627776 samples"),
    ],
)
def test_inflated_sample_count_is_caught(tmp_path: Path, cycles: int, fragment: str) -> None:
    path = scenario(tmp_path / "c.mf4")
    _, cg = _addresses(path)
    _patch(path, cg + 24 + 6 * 8 + 8, "<Q", cycles)  # cg_cycle_count
    with pytest.raises(RecordingError, match="is corrupt: ") as info:
        read_signals(path, DEFAULT)
    assert fragment in str(info.value)


def test_unfinalized_file_header(tmp_path: Path) -> None:
    """A logger that lost power leaves "UnFinMF "; asammdf reads what is there, or we say so."""
    path = scenario(tmp_path / "u.mf4")
    data = bytearray(path.read_bytes())
    data[:8] = b"UnFinMF "
    path.write_bytes(bytes(data))
    assert read_signals(path, DEFAULT).t.size == 400
    path.write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(RecordingError, match=r"UnFinMF: power loss or a crash while recording"):
        read_signals(path, DEFAULT)


def test_max_gap_and_raw_traces(tmp_path: Path) -> None:
    t = np.r_[np.arange(0, 100), np.arange(130, 250)] * 0.01  # a 0.31 s gap
    path = simple(
        tmp_path / "gap.mf4",
        [
            (
                "G",
                t,
                [ChannelData("VehSpd", np.full(t.size, 18.0), unit="km/h"), *minimal_required(t)],
            ),
        ],
    )
    assert np.isnan(read_signals(path, DEFAULT).values["ego_speed"][110])
    sig = read_signals(path, DEFAULT, max_gap=0.5)
    assert sig.values["ego_speed"][110] == pytest.approx(5.0)
    trace = sig.traces["ego_speed"]
    assert trace.channel == "VehSpd@0/1" and np.array_equal(trace.timestamps, t)
    assert trace.values == pytest.approx(5.0)  # SI, on the channel's own timestamps
    assert set(sig.traces) == {"ego_speed", "target_distance", "target_rel_speed"}
    with pytest.raises(ValueError, match="max_gap must be a positive number"):
        read_signals(path, DEFAULT, max_gap=0.0)


# ------------------------------------------------------------- real logger files


def approach_groups(
    tv: np.ndarray, tr: np.ndarray, radar_extra: Sequence[ChannelData] = ()
) -> list[GroupData]:
    return [
        GroupData("Vehicle", tv, [ChannelData("VehSpd", np.full(tv.size, 36.0), "km/h")]),
        GroupData(
            "Radar",
            tr,
            [
                ChannelData("ObjDist", 60.0 - 2.0 * (tr - tr[0]), "m"),
                ChannelData("ObjRelSpd", np.full(tr.size, -2.0), "m/s"),
                *radar_extra,
            ],
        ),
    ]


@pytest.mark.parametrize("scale", [1e9, 1e6, 1e3])
def test_time_axis_in_the_wrong_unit_is_an_invalid_recording(tmp_path: Path, scale: float) -> None:
    """Nanoseconds (or µs, ms) labelled "s": a bounded grid, never a terabyte allocation,
    and a message that suggests the time unit."""
    from pytest_adsreplay.cli.inspect import inspect
    from pytest_adsreplay.signals.quality import gate

    t = np.arange(0, 1000) * 0.01 * scale
    path = write_recording(tmp_path / "ns.mf4", approach_groups(t, t))
    with pytest.raises(InvalidRecordingError) as info:
        gate(read_signals(path, DEFAULT))
    msg = str(info.value)
    assert "probably not in seconds (" in msg
    if scale > 1e3:  # refused before a grid is built
        assert "data-quality check 'time' failed" in msg
        assert "re-export the recording with its time channel in seconds" in msg
    report = inspect(path)
    assert report.exit_code == 1 and "probably not in seconds" in report.text


def test_jittered_10hz_bus_with_one_dropped_frame_is_valid(tmp_path: Path) -> None:
    """J1939-like: median interval 0.1001 s (9.99 Hz) and one frame lost (0.2 s + jitter)."""
    from pytest_adsreplay.signals.quality import gate

    rng = np.random.default_rng(3)
    dt = 0.1001 + rng.uniform(-0.002, 0.002, 120)
    dt[60] = 0.2015  # one dropped frame
    t = np.cumsum(dt)
    sig = read_signals(write_recording(tmp_path / "j1939.mf4", approach_groups(t, t)), DEFAULT)
    assert not [f for f in gate(sig) if f.fatal]
    assert np.isfinite(sig.values["ego_speed"]).all()  # the dropped frame is no gap
    slow = np.cumsum(np.full(120, 0.106))  # 9.4 Hz: beyond the 5 % allowance
    bad = read_signals(write_recording(tmp_path / "slow.mf4", approach_groups(slow, slow)), DEFAULT)
    with pytest.raises(InvalidRecordingError, match="below the minimum of 10 Hz"):
        gate(bad)


def test_mapping_a_whole_array_channel_suggests_an_element(tmp_path: Path) -> None:
    from asammdf import MDF, Signal

    t = np.arange(0, 200) * 0.01
    arr = np.zeros(t.size, dtype=[("ObjDistArr", "<f8", (2, 3))])
    arr["ObjDistArr"][:, 0, 0] = 50.0 - t
    path = tmp_path / "array.mf4"
    mdf = MDF(version="4.10")
    mdf.append([Signal(np.full(t.size, 10.0), t, name="VehSpd", unit="m/s")], acq_name="V")
    mdf.append(
        [
            Signal(arr, t, name="ObjDistArr", unit="m"),
            Signal(np.full(t.size, -1.0), t, name="ObjRelSpd", unit="m/s"),
        ],
        acq_name="Radar",
    )
    mdf.save(path, overwrite=True)
    mdf.close()
    whole = cmap(target_distance={"channels": ["ObjDistArr"]})
    with pytest.raises(RecordingError) as info:
        read_signals(path, whole)
    msg = str(info.value)
    assert "is an array channel (6 elements: ObjDistArr[0][0], ObjDistArr[0][1]" in msg
    assert 'channels = ["ObjDistArr[0][0]"]' in msg and "not numbers" not in msg
    element = read_signals(path, cmap(target_distance={"channels": ["ObjDistArr[0][0]"]}))
    assert element.values["target_distance"][100] == pytest.approx(49.0)


def test_value_to_text_with_a_numeric_default_is_interpolated(tmp_path: Path) -> None:
    """A speed whose value-to-text conversion only names 0xFFFF falls back to 0.01 * raw."""
    t = np.arange(0, 21) * 0.05
    raw = np.round(np.linspace(1000, 2000, t.size)).astype(np.uint16)
    conv = {"val_0": 0xFFFF, "text_0": b"invalid", "default_addr": {"a": 0.01, "b": 0.0}}
    path = write_recording(
        tmp_path / "v2t.mf4",
        [
            GroupData("Vehicle", t, [ChannelData("VehSpd", raw, "km/h", conversion=conv)]),
            *approach_groups(t, t)[1:],
        ],
    )
    with mf4.open_recording(path) as reader:
        (speed,) = reader.info.occurrences("VehSpd")
    assert speed.conversion == "value-to-text, numeric default" and not speed.discrete
    sig = read_signals(path, DEFAULT)
    assert "linear" in sig.sources["ego_speed"]
    i = int(np.flatnonzero(np.isclose(sig.t, 0.52))[0])  # between two samples
    assert sig.values["ego_speed"][i] == pytest.approx(
        (raw[10] + 0.4 * (raw[11] - raw[10])) * 0.01 / 3.6
    )


def test_decoded_bus_prefix_is_optional_in_the_map(tmp_path: Path) -> None:
    """``gnss_imu.AccelerationX`` (raw CAN + DBC spelling) finds ``CAN2.gnss_imu.AccelerationX``."""
    t = np.arange(0, 200) * 0.01
    path = write_recording(
        tmp_path / "decoded.mf4",
        [
            *approach_groups(t, t),
            GroupData("CAN2", t, [ChannelData("CAN2.gnss_imu.AccelerationX", -t, "m/s^2")]),
        ],
    )
    for name in ("gnss_imu.AccelerationX", "CAN2.gnss_imu.AccelerationX"):
        sig = read_signals(path, cmap(ego_accel={"channels": [name]}))
        assert sig.sources["ego_accel"].startswith("CAN2.gnss_imu.AccelerationX@2/1")

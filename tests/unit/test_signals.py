"""Channel map parsing, the unit table and resampling (no MF4 files needed)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_adsreplay.errors import ChannelMapError
from pytest_adsreplay.signals import (
    CANONICAL_SIGNALS,
    FLAG_SIGNALS,
    REQUIRED_SIGNALS,
    ChannelMap,
    ChannelRef,
    find_gaps,
    load_channel_map,
    make_grid,
    resample,
    to_si,
)


def write_map(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "map.toml"
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------- constants


def test_contract_constants() -> None:
    assert CANONICAL_SIGNALS[:3] == ("ego_speed", "ego_accel", "target_distance")
    assert set(REQUIRED_SIGNALS) <= set(CANONICAL_SIGNALS)
    assert frozenset({"target_valid", "driver_brake"}) == FLAG_SIGNALS


# ----------------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("unit", "scale"),
    [
        ("m/s", 1.0),
        ("km/h", 1 / 3.6),
        ("kph", 1 / 3.6),
        ("KPH", 1 / 3.6),
        ("kmh", 1 / 3.6),
        ("km h-1", 1 / 3.6),
        ("km/hr", 1 / 3.6),
        ("[km/h]", 1 / 3.6),
        ("mph", 0.44704),
        ("m", 1.0),
        ("km", 1000.0),
        ("m/s²", 1.0),
        ("m/s^2", 1.0),
        ("m/s2", 1.0),
        ("m s-2", 1.0),
        ("m s^-2", 1.0),
        ("mps2", 1.0),
        ("g", 9.80665),
        ("s", 1.0),
        ("ms", 0.001),
        ("", 1.0),
        ("-", 1.0),
        ("1", 1.0),
        ("bool", 1.0),
        ("flag", 1.0),
        ("0/1", 1.0),
    ],
)
def test_to_si_known_units(unit: str, scale: float) -> None:
    got_scale, offset = to_si(unit)
    assert math.isclose(got_scale, scale, rel_tol=1e-12)
    assert offset == 0.0


@pytest.mark.parametrize("unit", ["furlong/fortnight", "bar", "psi", "km/s/s/s"])
def test_to_si_unknown_unit_raises(unit: str) -> None:
    with pytest.raises(ValueError, match="unknown unit"):
        to_si(unit)


def test_km_h_conversion_value() -> None:
    scale, offset = to_si("km/h")
    assert 36.0 * scale + offset == pytest.approx(10.0)


# ------------------------------------------------------------------- channel refs


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("VehSpd", ChannelRef("VehSpd")),
        ("VehSpd@2", ChannelRef("VehSpd", 2)),
        ("VehSpd@2/5", ChannelRef("VehSpd", 2, 5)),
        ("Radar.Obj0.DistX@1", ChannelRef("Radar.Obj0.DistX", 1)),
    ],
)
def test_channel_ref_parse_and_str(text: str, ref: ChannelRef) -> None:
    assert ChannelRef.parse(text) == ref
    assert str(ref) == text


@pytest.mark.parametrize("text", ["VehSpd@x", "VehSpd@", "@2", "VehSpd@1/", " "])
def test_channel_ref_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        ChannelRef.parse(text)


# ------------------------------------------------------------------- channel map


def test_default_map_resolves_generator_names() -> None:
    cmap = ChannelMap.default()
    assert cmap.source == "built-in"
    expected = {
        "ego_speed": "VehSpd",
        "ego_accel": "VehAccX",
        "driver_brake": "DrvBrkPdl",
        "target_distance": "Radar.Obj0.DistX",
        "target_rel_speed": "Radar.Obj0.VrelX",
        "target_lateral": "Radar.Obj0.DistY",
        "target_valid": "Radar.Obj0.Valid",
    }
    for signal, name in expected.items():
        assert ChannelRef(name) in cmap.signals[signal].channels
    assert ChannelRef("VehicleSpeed") in cmap.signals["ego_speed"].channels
    assert ChannelRef("ObjDist") in cmap.signals["target_distance"].channels
    assert load_channel_map(None) == cmap


def test_load_good_map(tmp_path: Path) -> None:
    path = write_map(
        tmp_path,
        """
[signals.ego_speed]
channels = ["Speed_kmh", "VehSpd@1", "VehSpd@1/3"]
unit = "km/h"
[signals.target_distance]
channels = ["Gap"]
scale = 0.1
offset = -2
""",
    )
    cmap = ChannelMap.load(path)
    assert cmap.source == str(path)
    ego = cmap.signals["ego_speed"]
    assert ego.channels == (
        ChannelRef("Speed_kmh"),
        ChannelRef("VehSpd", 1),
        ChannelRef("VehSpd", 1, 3),
    )
    assert ego.unit == "km/h" and ego.scale is None
    dist = cmap.signals["target_distance"]
    assert (dist.scale, dist.offset) == (0.1, -2.0)
    # signals the file does not mention keep the built-in candidates
    assert cmap.signals["target_rel_speed"] == ChannelMap.default().signals["target_rel_speed"]
    assert list(cmap.signals) == [*CANONICAL_SIGNALS, "target_id"]


def test_use_builtin_false_keeps_only_the_file(tmp_path: Path) -> None:
    path = write_map(tmp_path, 'use_builtin = false\n[signals.ego_speed]\nchannels = ["V"]\n')
    assert list(ChannelMap.load(path).signals) == ["ego_speed"]


def test_fingerprint_normalized(tmp_path: Path) -> None:
    a = ChannelMap.load(write_map(tmp_path, '[signals.ego_speed]\nchannels=["V"]\nunit="kph"\n'))
    other = tmp_path / "other"
    other.mkdir()
    b = ChannelMap.load(write_map(other, '[signals.ego_speed]\nchannels = ["V"]\nunit = "km/h"\n'))
    c = ChannelMap.load(write_map(other, '[signals.ego_speed]\nchannels = ["V"]\nunit = "m/s"\n'))
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != c.fingerprint()
    assert a.fingerprint() != ChannelMap.default().fingerprint()
    assert len(a.fingerprint()) == 64
    int(a.fingerprint(), 16)


def test_to_dict_round_trip(tmp_path: Path) -> None:
    cmap = ChannelMap.load(
        write_map(
            tmp_path, '[signals.ego_speed]\nchannels = ["V@1/2"]\nscale = 2.0\noffset = 1.0\n'
        )
    )
    again = ChannelMap.from_dict(cmap.to_dict(), source="copy")
    assert again.signals == cmap.signals
    assert again.fingerprint() == cmap.fingerprint()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            '[signals.ego_sped]\nchannels = ["V"]\n',
            "unknown signal [signals.ego_sped] (did you mean 'ego_speed'?)",
        ),
        ('[signals.t]\nchannels = ["time"]\n', "'t' is built by resampling"),
        ('[signals.ego_speed]\nchannels = ["V"]\nunit = "furlong"\n', "unknown unit 'furlong'"),
        (
            '[signals.ego_speed]\nchannels = ["V"]\nunit = "m"\n',
            "unit 'm' is a length unit but ego_speed is a speed",
        ),
        (
            '[signals.ego_speed]\nchannels = ["V"]\nunit = "km/h"\nscale = 0.27\n',
            "either unit or scale",
        ),
        ("[signals.ego_speed]\nchannels = []\n", "channels is empty"),
        ('[signals.ego_speed]\nunit = "km/h"\n', "has no channels"),
        ('[signals.ego_speed]\nchannels = "VehSpd"\n', "channels must be a list of strings"),
        ("[signals.ego_speed]\nchannels = [1, 2]\n", "channels must be a list of strings"),
        ('[signals.ego_speed]\nchannels = ["V"]\nunit = 3.6\n', "unit must be a string"),
        (
            '[signals.ego_speed]\nchannels = ["V"]\nscale = "fast"\n',
            "scale must be a finite number",
        ),
        ('[signals.ego_speed]\nchannels = ["V"]\nscale = true\n', "scale must be a finite number"),
        ('[signals.ego_speed]\nchannels = ["V"]\nscale = 0\n', "scale must not be 0"),
        ('[signals.ego_speed]\nchannels = ["V"]\noffset = 1.0\n', "offset needs a scale"),
        ('[signals.ego_speed]\nchannels = ["V"]\nchanels = ["W"]\n', "unknown key(s) chanels"),
        ('[signals.ego_speed]\nchannels = ["V@x"]\n', "bad channel reference 'V@x'"),
        ("signals = 3\n", "no [signals.<name>] tables"),
        ('[sigs.ego_speed]\nchannels = ["V"]\n', "unknown top-level key(s) sigs"),
        ("signals.ego_speed = 5\n", "[signals.ego_speed] must be a table"),
        ('use_builtin = "no"\n[signals.ego_speed]\nchannels = ["V"]\n', "use_builtin must be"),
    ],
)
def test_bad_maps(tmp_path: Path, text: str, fragment: str) -> None:
    path = write_map(tmp_path, text)
    with pytest.raises(ChannelMapError) as info:
        ChannelMap.load(path)
    message = str(info.value)
    assert fragment in message
    assert str(path) in message
    assert "->" in message  # a hint saying what to do


def test_toml_syntax_error_names_line(tmp_path: Path) -> None:
    path = write_map(tmp_path, '[signals.ego_speed]\nchannels = ["V"]\nunit = km/h\n')
    with pytest.raises(ChannelMapError, match=r"TOML syntax error: .*line 3") as info:
        ChannelMap.load(path)
    assert str(path) in str(info.value)


def test_missing_map_file(tmp_path: Path) -> None:
    with pytest.raises(ChannelMapError, match="does not exist"):
        load_channel_map(tmp_path / "nope.toml")


# ---------------------------------------------------------------------- grid


def test_grid_is_exact_multiples() -> None:
    grid = make_grid(0.0, 100.0, 0.01)
    k = np.arange(grid.size)
    assert grid.size == 10001
    assert np.array_equal(grid, k * 0.01)
    assert grid[-1] == 10000 * 0.01


def test_grid_tolerates_rounding_at_the_edges() -> None:
    # 0.1 * 3 = 0.30000000000000004 must still include k = 30 at 0.01 s
    grid = make_grid(0.1, 0.1 * 3, 0.01)
    assert grid[0] == 10 * 0.01 and grid[-1] == 30 * 0.01 and grid.size == 21


def test_grid_starts_at_ceil_of_offset_start() -> None:
    grid = make_grid(0.123, 0.2, 0.01)
    assert grid[0] == 13 * 0.01 and grid[-1] == 20 * 0.01


# ------------------------------------------------------------------- resampling


def test_flag_hold_never_interpolates() -> None:
    ts = np.arange(0, 2.0, 0.05)  # 20 Hz
    flag = (np.arange(ts.size) % 3 == 0).astype(float)
    grid = make_grid(0.0, ts[-1], 0.01)
    out = resample(ts, flag, grid, hold=True)
    assert set(np.unique(out)) == {0.0, 1.0}
    # the value at 0.06 s is the 20 Hz sample at 0.05 s, not a blend with 0.10 s
    assert out[6] == flag[1]
    assert out[10] == flag[2]


def test_linear_interpolation_midpoint() -> None:
    ts = np.array([0.0, 0.1])
    out = resample(ts, np.array([0.0, 10.0]), make_grid(0.0, 0.1, 0.01), hold=False)
    assert out[5] == pytest.approx(5.0)


def test_nan_outside_span_no_extrapolation() -> None:
    ts = np.array([0.5, 0.6, 0.7])
    grid = make_grid(0.0, 1.0, 0.1)
    for hold in (True, False):
        out = resample(ts, np.array([1.0, 2.0, 3.0]), grid, hold=hold)
        assert np.isnan(out[:5]).all() and np.isnan(out[8:]).all()
        assert not np.isnan(out[5:8]).any()


def test_duplicate_timestamps_keep_last() -> None:
    ts = np.array([0.0, 0.1, 0.1, 0.2])
    vs = np.array([0.0, 5.0, 7.0, 7.0])
    grid = np.array([0.1, 0.15])
    assert resample(ts, vs, grid, hold=False).tolist() == [7.0, 7.0]
    assert resample(ts, vs, grid, hold=True).tolist() == [7.0, 7.0]


def test_gap_masking_only_with_max_gap() -> None:
    ts = np.r_[np.arange(0, 1.0, 0.01), np.arange(2.0, 3.0, 0.01)]
    grid = make_grid(0.0, ts[-1], 0.01)
    plain = resample(ts, ts, grid, hold=False)
    masked = resample(ts, ts, grid, hold=False, max_gap=0.2)
    assert not np.isnan(plain).any()
    inside_gap = (grid > 0.995) & (grid < 1.995)  # between the samples at 0.99 and 2.0
    assert np.isnan(masked[inside_gap]).all()
    assert not np.isnan(masked[~inside_gap]).any()
    assert find_gaps(ts).tolist() == [99]


def test_find_gaps_ignores_slow_regular_channels() -> None:
    assert find_gaps(np.arange(0, 10, 0.5)).size == 0


def test_resample_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="equal 1-D shapes"):
        resample(np.zeros(3), np.zeros(4), np.zeros(2), hold=False)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(0.001, 0.05), min_size=2, max_size=60),
    st.floats(-5, 5),
    st.floats(-5, 5),
)
def test_linear_resampling_of_a_line_is_exact_on_jittered_timestamps(
    steps: list[float], a: float, b: float
) -> None:
    ts = np.cumsum(np.r_[0.003, steps])
    grid = make_grid(ts[0], ts[-1], 0.01)
    out = resample(ts, a * ts + b, grid, hold=False)
    inside = (grid >= ts[0]) & (grid <= ts[-1])
    assert np.allclose(out[inside], a * grid[inside] + b, atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from([0.0, 1.0]), min_size=2, max_size=80))
def test_hold_output_values_come_from_the_input(values: list[float]) -> None:
    ts = np.arange(len(values)) * 0.05 + 0.013
    out = resample(ts, np.array(values), make_grid(0.0, ts[-1] + 0.1, 0.01), hold=True)
    finite = out[~np.isnan(out)]
    assert finite.size > 0 and set(np.unique(finite)) <= set(values)

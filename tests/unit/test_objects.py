"""Object lists: the [objects] table, slot patterns (0- and 1-based), array channels,
hold vs interpolation per field, a track appearing mid-recording, the columns that travel
between stages (and through the signal cache), and the frames a Python function sees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_adsreplay.errors import ChannelMapError, RecordingError
from pytest_adsreplay.function.stepping import run_function
from pytest_adsreplay.mdf import ChannelData, GroupData, write_recording
from pytest_adsreplay.queue import cache
from pytest_adsreplay.signals import ChannelMap, read_signals
from pytest_adsreplay.signals.objects import ObjectList, split_objects

COUNT = 4
RATE = 0.1  # s, the radar's 10 Hz


def ego_group(duration: float = 2.0) -> GroupData:
    ts = np.arange(0.0, duration + 1e-9, 0.01)
    return GroupData(
        "ego",
        ts,
        [
            ChannelData("VehSpd", np.full(ts.size, 72.0), unit="km/h"),
            ChannelData("YawRate", np.full(ts.size, 5.0), unit="deg/s"),
            ChannelData("TurnIndicator", np.where(ts < 1.0, 0.0, 1.0)),
        ],
    )


def radar_rows(duration: float = 2.0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Slot 0: track 7 closing from 50 m; slot 1: track 9 from t = 1.0 s on (empty and
    placeholder zeros before); slot 2: track 3 then track 4 at t = 1.0 s (a new object
    at another distance); slot 3 always empty."""
    ts = np.round(np.arange(0.0, duration + 1e-9, RATE), 9)
    n = ts.size
    dx, dy, vx = (np.zeros((n, COUNT)) for _ in range(3))
    valid, ids, cls = (np.zeros((n, COUNT)) for _ in range(3))
    dx[:, 0], vx[:, 0], valid[:, 0], ids[:, 0], cls[:, 0] = 50.0 - 5.0 * ts, -5.0, 1, 7, 1
    later = ts >= 1.0
    dx[later, 1], dy[later, 1], valid[later, 1], ids[later, 1], cls[later, 1] = 30.0, 3.5, 1, 9, 2
    dx[:, 2] = np.where(later, 80.0, 20.0)
    valid[:, 2], ids[:, 2], cls[:, 2] = 1, np.where(later, 4, 3), 5
    return ts, {
        "DistX": dx,
        "DistY": dy,
        "VrelX": vx,
        "Valid": valid,
        "ID": ids,
        "Class": cls,
    }


def write_slots(path: Path, *, base: int = 0, duration: float = 2.0) -> Path:
    ts, rows = radar_rows(duration)
    chans = [
        ChannelData(f"Radar.Obj{j + base:02d}.{name}", rows[name][:, j], unit=_unit(name))
        for name in rows
        for j in range(COUNT)
    ]
    return write_recording(path, [ego_group(duration), GroupData("radar", ts, chans)])


def write_array(path: Path) -> Path:
    ts, rows = radar_rows()
    chans = [ChannelData(f"ObjList.{name}", rows[name], unit=_unit(name)) for name in rows]
    return write_recording(path, [ego_group(), GroupData("radar", ts, chans)])


def _unit(name: str) -> str:
    return {"DistX": "m", "DistY": "m", "VrelX": "m/s"}.get(name, "")


def objects_map(pattern: str, *, base: int = 0, valid: bool = True, ids: bool = True) -> ChannelMap:
    fields: dict[str, Any] = {
        "obj_dx": {"channels": [pattern.format(f="DistX")], "unit": "m"},
        "obj_dy": {"channels": [pattern.format(f="DistY")]},
        "obj_vx": {"channels": [pattern.format(f="VrelX")]},
        "obj_class": {"channels": [pattern.format(f="Class")]},
    }
    if valid:
        fields["obj_valid"] = {"channels": [pattern.format(f="Valid")]}
    if ids:
        fields["obj_id"] = {"channels": [pattern.format(f="ID")]}
    return ChannelMap.from_dict({"objects": {"count": COUNT, "index_base": base, **fields}})


SLOTS = "Radar.Obj{{i:02d}}.{f}"


def at(t: np.ndarray, time: float) -> int:
    return int(np.argmin(np.abs(t - time)))


@pytest.mark.parametrize("base", [0, 1])
def test_slot_patterns_zero_and_one_based(tmp_path: Path, base: int) -> None:
    path = write_slots(tmp_path / "r.mf4", base=base)
    sig = read_signals(path, objects_map(SLOTS, base=base))
    assert sig.object_count == COUNT
    dx = sig.objects["obj_dx"]
    assert dx.shape == (sig.t.size, COUNT)
    k = at(sig.t, 0.55)
    assert dx[k, 0] == pytest.approx(50.0 - 5.0 * 0.55)  # interpolated within one track
    assert sig.objects["obj_id"][k, 0] == 7
    assert np.isnan(dx[:, 3]).all() and (sig.objects["obj_valid"][:, 3] == 0).all()
    assert "target_distance" not in sig.values  # the KPI target is derived later
    assert sig.values["ego_yaw_rate"][k] == pytest.approx(np.deg2rad(5.0))


def test_array_channels_read_like_slots(tmp_path: Path) -> None:
    a = read_signals(write_slots(tmp_path / "s.mf4"), objects_map(SLOTS))
    b = read_signals(write_array(tmp_path / "a.mf4"), objects_map("ObjList.{f}"))
    for field in ("obj_dx", "obj_dy", "obj_vx", "obj_valid", "obj_id", "obj_class"):
        np.testing.assert_array_equal(a.objects[field], b.objects[field])
    assert "array channel" in b.sources["obj_dx"]


def test_array_channel_with_wrong_count_names_the_fix(tmp_path: Path) -> None:
    path = write_array(tmp_path / "a.mf4")
    cmap = ChannelMap.from_dict(
        {"objects": {"count": 8, "obj_dx": {"channels": ["ObjList.DistX"]}}}
    )
    with pytest.raises(RecordingError, match="4 elements") as info:
        read_signals(path, cmap)
    assert "count = 4" in (info.value.hint or "")


def test_pattern_with_wrong_index_base_names_missing_slots(tmp_path: Path) -> None:
    path = write_slots(tmp_path / "r.mf4", base=0)
    with pytest.raises(RecordingError, match=r"3 of 4 slots; no channel for slot\(s\) 4"):
        read_signals(path, objects_map(SLOTS, base=1))


def test_track_appearing_mid_recording_is_nan_before(tmp_path: Path) -> None:
    sig = read_signals(write_slots(tmp_path / "r.mf4"), objects_map(SLOTS))
    dx, valid = sig.objects["obj_dx"][:, 1], sig.objects["obj_valid"][:, 1]
    before = sig.t < 1.0 - 1e-9
    assert np.isnan(dx[before]).all()  # placeholder zeros never enter the grid
    assert (valid[before] == 0).all() and (valid[~before] == 1).all()
    assert (dx[~before] == 30.0).all()


def test_track_change_in_a_slot_holds_never_blends(tmp_path: Path) -> None:
    sig = read_signals(write_slots(tmp_path / "r.mf4"), objects_map(SLOTS))
    dx = sig.objects["obj_dx"][:, 2]
    between = (sig.t > 0.9 + 1e-9) & (sig.t < 1.0 - 1e-9)
    assert (dx[between] == 20.0).all()  # held, no phantom object at 50 m
    assert set(np.unique(dx)) == {20.0, 80.0}


def test_held_fields_and_turn_indicator_never_interpolate(tmp_path: Path) -> None:
    sig = read_signals(write_slots(tmp_path / "r.mf4"), objects_map(SLOTS))
    assert set(np.unique(sig.objects["obj_id"][:, 2])) == {3.0, 4.0}
    assert set(np.unique(sig.values["turn_indicator"])) == {0.0, 1.0}


def test_valid_derived_from_finite_dx_when_unmapped(tmp_path: Path) -> None:
    sig = read_signals(write_slots(tmp_path / "r.mf4"), objects_map(SLOTS, valid=False))
    assert sig.sources["obj_valid"].startswith("derived")
    # without the flag the placeholder zeros are objects at 0 m: finite, so valid
    assert (sig.objects["obj_valid"][:, 1] == 1).all()


def test_bad_objects_tables_are_channel_map_errors() -> None:
    with pytest.raises(ChannelMapError, match="count"):
        ChannelMap.from_dict({"objects": {"count": 0, "obj_dx": {"channels": ["X{i}"]}}})
    with pytest.raises(ChannelMapError, match="bad slot pattern"):
        ChannelMap.from_dict({"objects": {"count": 2, "obj_dx": {"channels": ["X{j}"]}}})
    with pytest.raises(ChannelMapError, match="did you mean 'obj_dx'"):
        ChannelMap.from_dict({"objects": {"count": 2, "obj_dxx": {"channels": ["X{i}"]}}})
    with pytest.raises(ChannelMapError, match="unit"):
        ChannelMap.from_dict(
            {"objects": {"count": 2, "obj_dx": {"channels": ["X{i}"], "unit": "m/s"}}}
        )


def test_fingerprint_changes_with_the_objects_table() -> None:
    a = objects_map(SLOTS).fingerprint()
    assert a != objects_map(SLOTS, base=1).fingerprint()
    assert a != ChannelMap.default().fingerprint()
    assert ChannelMap.from_dict(objects_map(SLOTS).to_dict()).fingerprint() == a


def test_columns_round_trip_through_the_cache(tmp_path: Path) -> None:
    sig = read_signals(write_slots(tmp_path / "r.mf4"), objects_map(SLOTS))
    key = "a" * 64
    assert cache.store(tmp_path / "cache", key, sig.t, sig.values, sig.sources)
    entry = cache.load(tmp_path / "cache", key)
    assert entry is not None
    _, frames = split_objects(entry.values)
    assert frames is not None and frames.count == COUNT
    for field, mat in sig.objects.items():
        np.testing.assert_array_equal(frames.rows[ObjectList.FIELDS.index(field)].T, mat)


class Recorder:
    """Keeps every frame's object list and checks it is read-only."""

    def __init__(self) -> None:
        self.frames: list[Any] = []

    def step(self, frame: Any) -> dict[str, float]:
        objects = frame["objects"]
        self.frames.append(objects)
        with pytest.raises(ValueError, match="read-only"):
            objects.obj_dx[0] = 1.0
        valid = objects.obj_valid == 1
        near = float(np.nanmin(objects.obj_dx[valid])) if valid.any() else np.inf
        return {"aeb_decel": 0.0, "nearest": near}


def test_frames_are_read_only_views_of_one_matrix(tmp_path: Path) -> None:
    sig = read_signals(write_slots(tmp_path / "r.mf4"), objects_map(SLOTS))
    fn = Recorder()
    out = run_function(fn, sig.t, sig.values, recording="r")
    first, last = fn.frames[0], fn.frames[-1]
    assert isinstance(first, ObjectList) and first.slots == COUNT
    assert first.obj_dx.base is not None and first.obj_dx.base is last.obj_dx.base  # views
    assert np.isnan(first.obj_ax).all() and first.obj_ax is last.obj_ax  # unmapped: shared
    k = at(sig.t, 0.5)
    assert fn.frames[k].obj_dx[0] == pytest.approx(47.5)
    assert fn.frames[k]["obj_id"][0] == 7 and "2 of 4 slots valid" in repr(fn.frames[k])
    assert out["nearest"][at(sig.t, 0.2)] == pytest.approx(20.0)
    assert out["nearest"][at(sig.t, 1.5)] == pytest.approx(30.0)


def test_frames_without_an_object_list_have_no_objects_key(tmp_path: Path) -> None:
    seen: list[bool] = []

    class Fn:
        def step(self, frame: Any) -> dict[str, float]:
            seen.append("objects" in frame)
            return {"aeb_decel": 0.0}

    t = np.arange(5) * 0.01
    run_function(Fn(), t, {"ego_speed": np.ones(5)})
    assert seen == [False] * 5


def test_inspect_shows_how_the_slots_resolve(tmp_path: Path) -> None:
    from pytest_adsreplay.cli.inspect import inspect

    path = write_slots(tmp_path / "r.mf4", base=1)
    report = inspect(path, objects_map(SLOTS, base=1))
    text = report.text
    assert "Object list: 4 slots, numbered from 1 in the file" in text
    assert (
        "obj_dx    <- Radar.Obj{i:02d}.DistX (slots): Radar.Obj01.DistX@1/1 … Radar.Obj04" in text
    )
    assert "obj_ax    <- not mapped (NaN)" in text
    assert "slot 0 (file 1): obj_dx=Radar.Obj01.DistX@1/1" in text
    assert "required signal target_distance" not in text and report.valid is not False
    bad = inspect(path, objects_map(SLOTS, base=0)).text
    assert "obj_dx    <- ERROR:" in bad and "no channel for slot(s) 0" in bad


def test_gate_finds_the_expected_target_in_the_object_list(tmp_path: Path) -> None:
    from pytest_adsreplay.signals import GateSettings, assess

    sig = read_signals(write_slots(tmp_path / "r.mf4"), objects_map(SLOTS))
    expecting = GateSettings(expect_target="scenario 'CCRs'")
    assert not [f for f in assess(sig, expecting) if f.check == "target"]
    for field in sig.objects:  # an empty list: the expected target is missing
        sig.objects[field][:] = 0.0 if field == "obj_valid" else np.nan
    assert [f.check for f in assess(sig, expecting)] == ["target"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_indexed_resampling_equals_resample_and_resample_objects(seed: int) -> None:
    from pytest_adsreplay.signals.resample import (
        grid_index,
        make_grid,
        resample,
        resample_indexed,
        resample_objects,
    )

    rng = np.random.default_rng(seed)
    ts = np.cumsum(rng.choice([0.0, 0.05, 0.05, 0.05, 0.5], size=200)) + 0.013
    vs = rng.normal(size=ts.size)
    vs[rng.random(ts.size) < 0.1] = np.nan
    seg = np.cumsum(rng.random(ts.size) < 0.05).astype(float)
    grid = make_grid(0.0, float(ts[-1]) + 0.3, 0.01)
    index = grid_index(ts, grid, 0.2)
    np.testing.assert_allclose(
        resample_indexed(index, vs, hold=False, segments=seg),
        resample_objects(ts, vs, grid, segments=seg, max_gap=0.2),
        rtol=1e-12,
        atol=1e-12,
    )
    np.testing.assert_array_equal(
        resample_indexed(index, vs, hold=True), resample(ts, vs, grid, hold=True)
    )


def test_columns_round_trip_through_the_queue_and_reach_the_frames(tmp_path: Path) -> None:
    import fakeredis

    from pytest_adsreplay.queue.stages import load_arrays, save_arrays

    sig = read_signals(write_slots(tmp_path / "r.mf4"), objects_map(SLOTS))
    conn = fakeredis.FakeStrictRedis()
    save_arrays(conn, "adsreplay:test:signals", {"t": sig.t, **sig.values}, 60)
    back = load_arrays(conn, "adsreplay:test:signals")
    t = back.pop("t")
    fn = Recorder()
    run_function(fn, t, back, recording="r")
    k = at(t, 1.5)
    for field, mat in sig.objects.items():
        np.testing.assert_array_equal(getattr(fn.frames[k], field), mat[k])


def test_unit_contradiction_in_a_slot_names_the_objects_table(tmp_path: Path) -> None:
    path = write_slots(tmp_path / "r.mf4")
    cmap = ChannelMap.from_dict(
        {"objects": {"count": COUNT, "obj_dx": {"channels": [SLOTS.format(f="VrelX")]}}}
    )
    with pytest.raises(RecordingError, match=r"obj_dx\[0\]") as info:
        read_signals(path, cmap)
    assert "[objects.obj_dx]" in (info.value.hint or "")

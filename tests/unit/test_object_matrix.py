"""The object list's matrix resampling equals the slot-by-slot rule bit for bit: every
field of the slots that share time axes is resampled as one (slots x samples) matrix
(:func:`resample_rows`), slots on other axes form batches of their own (one slot each
when every slot has its own message), and the result is the same as resampling each
slot on its own with :func:`prepare_targets` and :func:`resample_indexed` (the rule
written out below as the oracle)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pytest

from pytest_adsreplay.mdf.reader import ChannelInfo, ChannelSamples
from pytest_adsreplay.signals.channel_map import HELD_OBJECT_FIELDS, OBJECT_FIELDS, SignalSpec
from pytest_adsreplay.signals.objects import (
    FieldResolution,
    ObjectResolution,
    _fresh_matrix,
    assemble_objects,
)
from pytest_adsreplay.signals.resample import (
    GridIndex,
    grid_index,
    make_grid,
    resample_indexed,
    resample_rows,
)
from pytest_adsreplay.signals.resolve import Resolution
from pytest_adsreplay.signals.targets import Series, prepare_targets

MAX_GAP = 0.2
_AS_TARGET = {"obj_dx": "target_distance", "obj_vx": "target_rel_speed", "obj_dy": "target_lateral"}


# --------------------------------------------------------------------------- the oracle


def slot_by_slot(
    res: ObjectResolution, data: Mapping[tuple[int, int], ChannelSamples], grid: np.ndarray
) -> dict[str, np.ndarray]:
    """Each slot on its own: the rule of the single target per slot (the object list's
    resampling before the matrices)."""
    found = {f: r for f, r in res.fields.items() if r.found}
    n = grid.size
    rows = {f: np.empty((res.count, n)) for f in OBJECT_FIELDS if f in found or f == "obj_valid"}
    indexes: dict[int, GridIndex] = {}

    def index_of(ts: np.ndarray) -> GridIndex:
        if id(ts) not in indexes:
            indexes[id(ts)] = grid_index(ts, grid, MAX_GAP)
        return indexes[id(ts)]

    for j in range(res.count):
        series = {}
        for f, r in found.items():
            sr = r.slots[j]
            assert sr.channel is not None
            cs = data[(sr.channel.group, sr.channel.index)]
            series[f] = (cs.timestamps, cs.samples * sr.scale + sr.offset)
        one_slot(series, index_of, {f: m[j] for f, m in rows.items()}, found)
    return {f: m.T for f, m in rows.items()}


def one_slot(
    series: Mapping[str, Series],
    index_of: Callable[[np.ndarray], GridIndex],
    out: Mapping[str, np.ndarray],
    found: Mapping[str, FieldResolution],
) -> None:
    valid = series.get("obj_valid")
    if valid is not None:
        ts, vs = valid
        flag = (vs != 0).astype(np.float64)
        flag[np.isnan(vs)] = np.nan
        valid = (ts, flag)
    continuous = {_AS_TARGET.get(f, f): s for f, s in series.items() if f not in HELD_OBJECT_FIELDS}
    prepared = prepare_targets(continuous, valid, series.get("obj_id"))
    for f, (ts, vs) in series.items():
        if f in HELD_OBJECT_FIELDS:
            src = valid[1] if f == "obj_valid" and valid is not None else vs
            resample_indexed(index_of(ts), src, hold=True, out=out[f])
        else:
            masked, segments = prepared[_AS_TARGET.get(f, f)]
            hold = found[f].slots[0].hold
            resample_indexed(index_of(ts), masked, hold=hold, segments=segments, out=out[f])
    flag = out["obj_valid"]
    if "obj_valid" in series:
        np.copyto(flag, flag == 1, casting="unsafe")
    else:
        np.copyto(flag, np.isfinite(out["obj_dx"]), casting="unsafe")
    empty = flag == 0
    for f, row in out.items():
        if f != "obj_valid":
            row[empty] = np.nan


# --------------------------------------------------------------------------- recordings


def axis(rng: np.random.Generator, start: float, rate: float, duration: float) -> np.ndarray:
    """Timestamps with jitter, a repeated timestamp and a gap."""
    ts = np.arange(start, start + duration, rate) + rng.uniform(0, rate / 10, 1)
    ts = np.sort(ts + rng.normal(0, rate / 50, ts.size))
    if ts.size > 20:
        ts[7] = ts[6]  # a repeated timestamp: the last sample wins
        ts[15:] += 0.5  # a gap
    return ts


def field_values(rng: np.random.Generator, field: str, n: int) -> np.ndarray:
    if field == "obj_valid":
        v = (rng.random(n) < 0.8).astype(float)
        v[rng.random(n) < 0.03] = np.nan
        v[rng.random(n) < 0.05] = 2.0  # any non-zero value is valid
        return v
    if field == "obj_id":
        return np.repeat(rng.integers(1, 5, n // 6 + 1), 6)[:n].astype(float)
    if field == "obj_class":
        return rng.integers(0, 4, n).astype(float)
    v = np.cumsum(rng.normal(0, 0.5, n)) + 20.0
    v[rng.random(n) < 0.05] += 80.0  # a jump: another object
    v[rng.random(n) < 0.05] = np.nan
    v[rng.random(n) < 0.03] = -0.0
    v[rng.random(n) < 0.03] = 0.0
    return v


def recording(
    rng: np.random.Generator,
    count: int,
    axis_of: Callable[[str, int], int],
    axes: list[np.ndarray],
    fields: tuple[str, ...] = OBJECT_FIELDS,
    hold: frozenset[str] = frozenset(),
    copies: bool = False,
) -> tuple[ObjectResolution, dict[tuple[int, int], ChannelSamples]]:
    """An object list whose field ``f`` of slot ``j`` lies on ``axes[axis_of(f, j)]`` (a
    copy of it in a group of its own with ``copies``), scale and offset per slot."""
    data: dict[tuple[int, int], ChannelSamples] = {}
    resolved = {}
    for fi, f in enumerate(fields):
        slots = []
        for j in range(count):
            k = axis_of(f, j)
            group, index = (100 + fi * count + j, 1) if copies else (k, fi * count + j + 1)
            ts = axes[k].copy() if copies else axes[k]
            info = ChannelInfo(f"{f}{j}", group, index, "", "float64", "none")
            data[(group, index)] = ChannelSamples(info, ts, field_values(rng, f, ts.size))
            scale, offset = (1.0, 0.0) if f in HELD_OBJECT_FIELDS else (1.0 + j / 10, j / 3)
            spec = SignalSpec(f, ())
            slots.append(
                Resolution(f, spec, info, scale, offset, hold=f in HELD_OBJECT_FIELDS or f in hold)
            )
        resolved[f] = FieldResolution(f, f"{f}{{i}}", False, tuple(slots))
    return ObjectResolution(count, 0, resolved), data


def assert_same(
    res: ObjectResolution, data: Mapping[tuple[int, int], ChannelSamples], grid: np.ndarray
) -> None:
    got, sources = assemble_objects(res, data, grid, MAX_GAP)
    want = slot_by_slot(res, data, grid)
    assert sorted(got) == sorted(want)
    for f in want:
        assert got[f].shape == want[f].shape
        assert got[f].tobytes() == want[f].tobytes(), f  # bit for bit, NaN and -0.0 too
    assert set(sources) == set(want)


# --------------------------------------------------------------------------- assembly


@pytest.mark.parametrize("seed", [1, 2])
def test_slots_sharing_one_axis_equal_the_slot_by_slot_rule(seed: int) -> None:
    rng = np.random.default_rng(seed)
    axes = [axis(rng, 0.02, 0.05, 6.0)]
    res, data = recording(rng, 6, lambda f, j: 0, axes)
    assert_same(res, data, make_grid(0.0, 6.7, 0.01))


def test_every_slot_on_its_own_axis_equals_the_slot_by_slot_rule() -> None:
    rng = np.random.default_rng(3)
    axes = [axis(rng, 0.01 * j, 0.04 + 0.01 * j, 5.0) for j in range(5)]
    res, data = recording(rng, 5, lambda f, j: j, axes)
    assert_same(res, data, make_grid(0.0, 5.8, 0.01))


def test_slots_alternating_between_two_messages_equal_the_slot_by_slot_rule() -> None:
    rng = np.random.default_rng(4)
    axes = [axis(rng, 0.0, 0.05, 4.0), axis(rng, 0.03, 0.1, 4.0)]
    res, data = recording(rng, 6, lambda f, j: j % 2, axes)  # slots 0, 2, 4 and 1, 3, 5
    assert_same(res, data, make_grid(0.0, 4.8, 0.01))


def test_fields_on_different_axes_within_a_slot_equal_the_slot_by_slot_rule() -> None:
    rng = np.random.default_rng(5)
    axes = [axis(rng, 0.0, 0.05, 4.0), axis(rng, 0.01, 0.02, 4.0), axis(rng, 0.3, 0.1, 3.0)]
    where = {"obj_valid": 1, "obj_id": 2, "obj_vy": 2, "obj_class": 1}
    res, data = recording(rng, 4, lambda f, j: where.get(f, 0), axes)
    assert_same(res, data, make_grid(0.0, 4.8, 0.01))


def test_equal_timestamps_in_other_groups_are_one_axis() -> None:
    rng = np.random.default_rng(6)
    axes = [axis(rng, 0.0, 0.05, 3.0)]
    res, data = recording(rng, 4, lambda f, j: 0, axes, copies=True)
    assert_same(res, data, make_grid(0.0, 3.6, 0.01))


@pytest.mark.parametrize(
    "fields",
    [
        ("obj_dx", "obj_dy", "obj_vx"),  # no flag (derived from obj_dx), no track ids
        ("obj_dx", "obj_valid", "obj_class"),  # no track ids
        ("obj_dx", "obj_vx", "obj_id"),  # no flag
    ],
)
def test_lists_without_some_fields_equal_the_slot_by_slot_rule(fields: tuple[str, ...]) -> None:
    rng = np.random.default_rng(7)
    axes = [axis(rng, 0.0, 0.05, 3.0), axis(rng, 0.02, 0.1, 3.0)]
    res, data = recording(rng, 5, lambda f, j: int(j == 3), axes, fields=fields)
    assert_same(res, data, make_grid(0.0, 3.6, 0.01))


def test_a_continuous_field_mapped_as_held_equals_the_slot_by_slot_rule() -> None:
    rng = np.random.default_rng(8)
    axes = [axis(rng, 0.0, 0.05, 3.0)]
    res, data = recording(rng, 3, lambda f, j: 0, axes, hold=frozenset({"obj_vx", "obj_ax"}))
    assert_same(res, data, make_grid(0.0, 3.6, 0.01))


def test_short_and_empty_channels_equal_the_slot_by_slot_rule() -> None:
    rng = np.random.default_rng(9)
    axes = [axis(rng, 0.0, 0.05, 2.0), np.array([0.7]), np.zeros(0), np.array([0.5, 0.5, 0.9])]
    res, data = recording(rng, 4, lambda f, j: j, axes)
    assert_same(res, data, make_grid(0.0, 2.5, 0.01))


def test_a_grid_starting_at_negative_zero_equals_the_slot_by_slot_rule() -> None:
    rng = np.random.default_rng(10)
    ts = axis(rng, 0.0, 0.05, 2.0)
    ts[0] = 0.0
    res, data = recording(rng, 3, lambda f, j: 0, [ts])
    grid = make_grid(0.0, 2.6, 0.01)
    grid[0] = -0.0  # time since the first sample: -0.0
    assert_same(res, data, grid)


def test_list_matrices_are_plain_writable_arrays_and_the_huge_page_advice_is_restored() -> None:
    from pytest_adsreplay.signals import objects

    switch = objects._SET_MADVISE_HUGEPAGE
    before = None if switch is None else switch(True)
    try:
        m = _fresh_matrix(64, 20_000)  # 10 MB: numpy would advise huge pages
        assert m.shape == (64, 20_000) and m.dtype == np.float64
        assert m.flags.writeable and m.flags.c_contiguous and m.flags.owndata
        m[:] = 1.5
        assert float(m.T[:, 3].sum()) == 1.5 * 20_000
        assert _fresh_matrix(2, 3).shape == (2, 3)
        assert _fresh_matrix(0, 10).shape == (0, 10)
        if switch is not None:
            assert switch(True) is True  # switched back on after each allocation
    finally:
        if switch is not None and before is not None:
            switch(before)


# --------------------------------------------------------------------------- resample_rows


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("hold", [False, True])
def test_resample_rows_equals_resample_indexed_row_by_row(seed: int, hold: bool) -> None:
    rng = np.random.default_rng(seed)
    ts = np.cumsum(rng.choice([0.0, 0.05, 0.05, 0.05, 0.5], size=300)) + 0.013
    vs = rng.normal(size=(5, ts.size))
    vs[rng.random(vs.shape) < 0.1] = np.nan
    vs[rng.random(vs.shape) < 0.05] = -0.0
    vs[2] = np.inf  # no finite pair: held throughout
    seg = np.cumsum(rng.random(vs.shape) < 0.05, axis=1)
    for grid in (
        make_grid(0.0, float(ts[-1]) + 0.3, 0.01),
        make_grid(0.5, float(ts[-1]) - 0.5, 0.01),  # inside the span throughout
        make_grid(float(ts[-1]) + 1.0, float(ts[-1]) + 2.0, 0.01),  # after it
        make_grid(0.0, float(ts[-1]), 0.01)[::-1].copy(),  # not increasing
    ):
        index = grid_index(ts, grid, MAX_GAP)
        for segments in (None, seg):
            got = resample_rows(index, vs, hold=hold, segments=segments)
            for r in range(vs.shape[0]):
                want = resample_indexed(
                    index, vs[r], hold=hold, segments=None if segments is None else segments[r]
                )
                assert got[r].tobytes() == want.tobytes()


def test_resample_rows_writes_into_rows_of_a_larger_matrix() -> None:
    ts = np.array([0.0, 0.1, 0.2, 0.3])
    vs = np.array([[0.0, 1.0, 2.0, 3.0], [5.0, np.nan, 7.0, 8.0]])
    grid = make_grid(0.0, 0.3, 0.05)
    out = np.full((4, grid.size), 99.0)
    resample_rows(grid_index(ts, grid, MAX_GAP), vs, hold=False, out=out[1:3])
    np.testing.assert_allclose(out[1], [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    np.testing.assert_array_equal(out[2], [5.0, 5.0, np.nan, np.nan, 7.0, 7.5, 8.0])
    assert (out[0] == 99.0).all() and (out[3] == 99.0).all()


def test_resample_rows_on_an_empty_axis_is_nan() -> None:
    grid = make_grid(0.0, 1.0, 0.1)
    got = resample_rows(grid_index(np.zeros(0), grid, MAX_GAP), np.zeros((3, 0)), hold=False)
    assert got.shape == (3, grid.size) and np.isnan(got).all()


def test_resample_rows_keeps_held_values_where_the_time_since_a_sample_is_negative_zero() -> None:
    # grid_index clips the time since a sample at 0.0; should a platform's clip keep -0.0,
    # a held -0.0 must stay -0.0 (and an interpolated value be slope * -0.0 + value)
    import dataclasses

    ts = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
    vs = np.array([[-0.0, 1.0, np.nan, 3.0, -0.0], [0.0, -0.0, -0.0, 2.0, 4.0]])
    grid = make_grid(0.0, 0.4, 0.05)
    index = grid_index(ts, grid, MAX_GAP)
    dt = index.dt.copy()
    dt[index.dt == 0.0] = -0.0
    index = dataclasses.replace(index, dt=dt)
    got = resample_rows(index, vs, hold=False)
    for r in range(vs.shape[0]):
        assert got[r].tobytes() == resample_indexed(index, vs[r], hold=False).tobytes()
    assert np.signbit(got[0, 0]) and np.signbit(got[0, -1])

"""Object lists: ``count`` slots of a radar/camera list, resolved, resampled and framed.

A field of the list (``obj_dx`` …) is found through the ``[objects]`` table of the channel
map: a candidate with ``{i}`` names one channel per slot (``"Radar.Obj{i:02d}.DistX"``,
``i`` counted from ``index_base``), one without names an MF4 array channel of ``count``
elements. Each slot resamples on its own, with the rule of the single target: invalid
samples are masked before resampling, and a field is interpolated only between two
valid samples of one track (the slot's ``obj_id`` when mapped), otherwise held.

The read result carries each field as a (cycles x count) float64 matrix
(:attr:`Signals.objects <pytest_adsreplay.signals.resample.Signals>`); between the stages
and in the signal cache the slots travel as 1-D columns named ``obj_dx[0]`` …
``obj_dx[count-1]`` (:func:`object_column`), and :func:`split_objects` turns them back
into matrices for the frames of a Python function (:class:`ObjectList`).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_adsreplay.errors import RecordingError
from pytest_adsreplay.signals.channel_map import (
    HELD_OBJECT_FIELDS,
    OBJECT_FIELDS,
    ChannelRef,
    ObjectSpec,
    SignalSpec,
)
from pytest_adsreplay.signals.resample import TIME_TOL, GridIndex, grid_index, resample_rows
from pytest_adsreplay.signals.resolve import Resolution, resolve_spec
from pytest_adsreplay.signals.targets import MAX_CHANGE

if TYPE_CHECKING:
    from pytest_adsreplay.mdf.reader import ChannelInfo, ChannelSamples, RecordingInfo

#: Object fields checked for jumps like the single target's signals (a jump further than
#: one object can move means the slot now holds another object).
_AS_TARGET = {"obj_dx": "target_distance", "obj_vx": "target_rel_speed", "obj_dy": "target_lateral"}
_COLUMN = re.compile(r"(obj_[a-z]+)\[(\d+)\]")


def object_column(field: str, slot: int) -> str:
    """The name one slot of a field travels under between stages: ``obj_dx[3]``."""
    return f"{field}[{slot}]"


# --------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class FieldResolution:
    """How one field resolved: the candidate that matched and one Resolution per slot
    (empty when no candidate matched; ``error`` says why a match cannot be used)."""

    field: str
    candidate: str = ""
    array: bool = False
    slots: tuple[Resolution, ...] = ()
    error: RecordingError | None = None
    tried: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        return bool(self.slots) and self.error is None

    @property
    def source(self) -> str:
        """Human text, e.g. ``Radar.Obj{i:02d}.DistX: Radar.Obj00.DistX … Radar.Obj31.DistX
        [m, linear]``."""
        if not self.found:
            return "not found"
        first, last = self.slots[0], self.slots[-1]
        assert first.channel is not None and last.channel is not None
        how = "array channel" if self.array else "slots"
        span = (
            first.channel.ref
            if len(self.slots) == 1
            else (f"{first.channel.ref} … {last.channel.ref}")
        )
        return f"{self.candidate} ({how}): {span} [{first.conversion}, " + (
            "hold]" if first.hold else "linear]"
        )


@dataclass(frozen=True)
class ObjectResolution:
    """How the ``[objects]`` table resolved in one recording."""

    count: int
    index_base: int
    fields: Mapping[str, FieldResolution]

    @property
    def found(self) -> bool:
        """The list is present: its ``obj_dx`` resolved."""
        dx = self.fields.get("obj_dx")
        return dx is not None and dx.found

    def errors(self) -> list[RecordingError]:
        return [f.error for f in self.fields.values() if f.error is not None]

    def channels(self) -> list[ChannelInfo]:
        """Every channel the found fields read."""
        out: list[ChannelInfo] = []
        for f in self.fields.values():
            if f.found:
                out.extend(r.channel for r in f.slots if r.channel is not None)
        return out


def resolve_objects(
    spec: ObjectSpec, info: RecordingInfo, *, recording: str, source: str
) -> ObjectResolution:
    """Resolve each field of the list against a file's channels (no data is read)."""
    names = info.channel_names()
    fields = {
        name: _resolve_field(name, fs, spec, info, names, recording, source)
        for name, fs in spec.fields.items()
    }
    return ObjectResolution(spec.count, spec.index_base, fields)


def _resolve_field(
    field: str,
    fs: SignalSpec,
    spec: ObjectSpec,
    info: RecordingInfo,
    names: Sequence[str],
    rec: str,
    source: str,
) -> FieldResolution:
    tried: list[str] = []
    for ref in fs.channels:
        tried.append(str(ref))
        if "{" in ref.name:
            slot_refs = [
                ChannelRef(ref.name.format(i=spec.index_base + j), ref.group, ref.index)
                for j in range(spec.count)
            ]
            if not any(_occurs(info, r) for r in slot_refs):
                continue
            array = False
        else:
            occ = [c for c in info.occurrences(ref.name) if _matches(c, ref)]
            if not occ:
                continue
            found = _array_slots(field, ref, occ, spec.count, info, rec, source)
            if isinstance(found, RecordingError):
                return FieldResolution(field, str(ref), True, error=found, tried=tuple(tried))
            slot_refs, array = found, True
        slots = tuple(
            resolve_spec(
                object_column(field, j),
                SignalSpec(field, (r,), fs.unit, fs.scale, fs.offset),
                info,
                names,
                rec,
                source,
                kind=field,
                hold=field in HELD_OBJECT_FIELDS,
            )
            for j, r in enumerate(slot_refs)
        )
        error = _slot_error(field, str(ref), slots, spec, rec, source)
        return FieldResolution(field, str(ref), array, slots, error, tuple(tried))
    return FieldResolution(field, tried=tuple(tried))


def _matches(c: ChannelInfo, ref: ChannelRef) -> bool:
    return (ref.group is None or c.group == ref.group) and (
        ref.index is None or c.index == ref.index
    )


def _occurs(info: RecordingInfo, ref: ChannelRef) -> bool:
    return any(_matches(c, ref) for c in info.occurrences(ref.name))


def _array_slots(
    field: str,
    ref: ChannelRef,
    occ: Sequence[ChannelInfo],
    count: int,
    info: RecordingInfo,
    rec: str,
    source: str,
) -> list[ChannelRef] | RecordingError:
    """The element channels ``Name[0]`` … of the array channel ``ref`` (or why not)."""
    arrays = [c for c in occ if c.kind == "array"]
    hint = (
        f"in [objects.{field}] of the channel map ({source}) write a slot pattern such as "
        f'"{ref.name}{{i}}" for one channel per slot, or name an array channel of {count} '
        "elements (`adsreplay inspect` lists the file's channels)"
    )
    if not arrays:
        return RecordingError(
            f"channel {occ[0].ref} for {field} is not an array channel and its name has no "
            "{i} slot pattern",
            recording=rec,
            hint=hint,
        )
    if len(arrays) > 1:
        where = ", ".join(c.ref for c in arrays)
        return RecordingError(
            f"array channel {ref.name!r} for {field} occurs {len(arrays)} times: {where}",
            recording=rec,
            hint=f'say which one in [objects.{field}] ({source}): channels = ["{arrays[0].ref}"]',
        )
    arr = arrays[0]
    elements = [
        c
        for c in info.groups[arr.group].channels
        if c.name.startswith(f"{arr.name}[") and c.kind == "scalar"
    ]
    if len(elements) != count:
        return RecordingError(
            f"array channel {arr.ref} for {field} has {len(elements)} elements per sample, "
            f"the channel map's [objects] count is {count}",
            recording=rec,
            hint=f"set [objects] count = {len(elements)} in the channel map ({source})"
            if elements
            else hint,
        )
    return [ChannelRef(f"{arr.name}[{j}]", arr.group) for j in range(count)]


def _slot_error(
    field: str,
    candidate: str,
    slots: Sequence[Resolution],
    spec: ObjectSpec,
    rec: str,
    source: str,
) -> RecordingError | None:
    for r in slots:
        if r.error is not None:
            return r.error
    missing = [spec.index_base + j for j, r in enumerate(slots) if r.channel is None]
    if not missing:
        return None
    shown = ", ".join(str(i) for i in missing[:8]) + (" …" if len(missing) > 8 else "")
    example = candidate.split("@")[0].format(i=missing[0])
    return RecordingError(
        f"{field}: {candidate!r} matches {len(slots) - len(missing)} of {spec.count} slots; "
        f"no channel for slot(s) {shown} (e.g. {example!r})",
        recording=rec,
        hint=f"check [objects] count = {spec.count} and index_base = {spec.index_base} in "
        f"the channel map ({source}) against the file (`adsreplay inspect` shows the slots)",
    )


# --------------------------------------------------------------------------- resampling


def assemble_objects(
    res: ObjectResolution,
    data: Mapping[tuple[int, int], ChannelSamples],
    grid: np.ndarray,
    max_gap: float,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``({field: (cycles x count) matrix}, {field: source text})`` for the found fields
    and ``obj_valid`` (mapped, or derived from a finite ``obj_dx``).

    Each matrix is the transpose of a C-ordered (count x cycles) array, so the column of
    one slot is contiguous (it travels without a copy). Every field is NaN where the
    slot is empty (``obj_valid`` 0).

    Every slot follows the rule of the single target on its own, but the slots whose
    fields lie on the same time axes (in the usual layout all of them: one radar
    message) are worked out together, each field as one (slots x samples) matrix
    resampled in one go (:func:`resample_rows`); slots on other axes form batches of
    their own. The result is the same, bit for bit, as slot by slot.
    """
    found = {f: r for f, r in res.fields.items() if r.found}
    count, n = res.count, grid.size
    rows = {f: _fresh_matrix(count, n) for f in OBJECT_FIELDS if f in found or f == "obj_valid"}
    axes = _Axes(grid, max_gap)
    batches: dict[tuple[int, ...], list[int]] = {}
    for j in range(count):
        key = tuple(axes.number(_channel(data, r.slots[j]).timestamps) for r in found.values())
        batches.setdefault(key, []).append(j)
    for key, slots in batches.items():
        _batch(slots, dict(zip(found, key, strict=True)), found, data, axes, rows)
    flag = rows["obj_valid"]
    if "obj_valid" in found:
        np.copyto(flag, flag == 1, casting="unsafe")  # NaN (outside the span) -> 0
    else:
        np.copyto(flag, np.isfinite(rows["obj_dx"]), casting="unsafe")
    empty = flag == 0
    for f, m in rows.items():
        if f != "obj_valid":
            np.copyto(m, np.nan, where=empty)
    del empty
    sources = {f: r.source for f, r in found.items()}
    if "obj_valid" not in found:
        sources["obj_valid"] = "derived: isfinite(obj_dx)"
    return {f: m.T for f, m in rows.items()}, sources


#: numpy's switch for its huge-page advice on large arrays (private, present since numpy
#: 1.20; None when absent): see :func:`_fresh_matrix`.
_SET_MADVISE_HUGEPAGE: Callable[[bool], bool] | None = getattr(
    getattr(getattr(np, "_core", None), "multiarray", None), "_set_madvise_hugepage", None
)
_MADVISE_LOCK = threading.Lock()


def _fresh_matrix(rows: int, columns: int) -> np.ndarray:
    """An uninitialised (rows x columns) float64 matrix, allocated without numpy's
    huge-page advice.

    numpy advises huge pages (``MADV_HUGEPAGE``) for the arrays of 4 MB and more it
    allocates; where the kernel's ``transparent_hugepage/defrag`` is ``madvise`` (a
    common default) the first write to fresh memory so advised can stall until the
    kernel finds or makes a huge page, and a list's matrices (8 x 15 MB for 32 slots of
    a 10-minute recording) are written once, right after they are made (on a 2-core VM:
    25-40 ms per 15 MB against 6 ms with ordinary pages). Memory the allocator hands
    out again (a worker reading one recording after another) is fast either way. The
    advice is switched off only around this allocation.
    """
    switch = _SET_MADVISE_HUGEPAGE
    if switch is None:
        return np.empty((rows, columns))
    with _MADVISE_LOCK:
        was = switch(False)
        try:
            return np.empty((rows, columns))
        finally:
            switch(was)


class _Axes:
    """The distinct time axes of the list's channels (equal timestamps are one axis,
    as in :func:`prepare_targets`), each with its grid index, made once."""

    def __init__(self, grid: np.ndarray, max_gap: float):
        self.grid, self.max_gap = grid, max_gap
        self.ts: list[np.ndarray] = []
        self._numbers: dict[int, tuple[np.ndarray, int]] = {}  # id(timestamps) -> axis
        self._indexes: dict[int, GridIndex] = {}
        self._held: dict[tuple[int, int], np.ndarray] = {}

    def number(self, ts: np.ndarray) -> int:
        known = self._numbers.get(id(ts))
        if known is not None and known[0] is ts:
            return known[1]
        same = (
            k
            for k, axis in enumerate(self.ts)
            if axis.shape == ts.shape and np.array_equal(axis, ts)
        )
        k = next(same, len(self.ts))
        if k == len(self.ts):
            self.ts.append(ts)
        self._numbers[id(ts)] = (ts, k)
        return k

    def index(self, k: int) -> GridIndex:
        gi = self._indexes.get(k)
        if gi is None:
            gi = self._indexes[k] = grid_index(self.ts[k], self.grid, self.max_gap)
        return gi

    def held_at(self, source: tuple[int, np.ndarray], k: int) -> np.ndarray:
        """:func:`hold_at` of a (slots x samples) matrix on axis ``source[0]`` at the
        timestamps of axis ``k``: each row's last sample at or before them (else NaN)."""
        src, values = source
        idx = self._held.get((src, k))
        if idx is None:
            src_ts, ts = self.ts[src], self.ts[k]
            if src_ts.size == 0:
                idx = np.full(ts.shape, -1, dtype=np.intp)
            else:
                idx = np.searchsorted(src_ts, ts + TIME_TOL, side="right") - 1
            self._held[(src, k)] = idx
        out = np.full((values.shape[0], idx.size), np.nan)
        ok = idx >= 0
        if ok.all():
            np.take(values, idx, axis=1, out=out, mode="clip")
        elif ok.any():
            out[:, ok] = values[:, idx[ok]]
        return out


def _channel(data: Mapping[tuple[int, int], ChannelSamples], r: Resolution) -> ChannelSamples:
    assert r.channel is not None
    return data[(r.channel.group, r.channel.index)]


def _batch(
    slots: Sequence[int],
    axis_of: Mapping[str, int],
    found: Mapping[str, FieldResolution],
    data: Mapping[tuple[int, int], ChannelSamples],
    axes: _Axes,
    rows: Mapping[str, np.ndarray],
) -> None:
    """Resample the fields of the slots ``slots`` (whose field ``f`` lies on the axis
    ``axis_of[f]`` in every one of them) into their rows of ``rows``: the rule of
    :func:`prepare_targets` and :func:`resample_indexed` per slot, as matrices (each
    made when it is needed and let go once it is on the grid)."""

    def scaled(f: str) -> np.ndarray:
        """The SI samples of field ``f``: one row per slot."""
        m = np.empty((len(slots), axes.ts[axis_of[f]].size))
        for i, j in enumerate(slots):
            sr = found[f].slots[j]
            np.multiply(_channel(data, sr).samples, sr.scale, out=m[i])
            m[i] += sr.offset
        return m

    valid: tuple[int, np.ndarray] | None = None
    if "obj_valid" in found:
        vs = scaled("obj_valid")
        flag = (vs != 0).astype(np.float64)
        flag[np.isnan(vs)] = np.nan
        valid = (axis_of["obj_valid"], flag)
        del vs
    track = (axis_of["obj_id"], scaled("obj_id")) if "obj_id" in found else None

    def masked(f: str) -> np.ndarray:
        """Field ``f`` with NaN where the slot's flag says no object (at the sample)."""
        m = scaled(f)
        if valid is not None:
            m[axes.held_at(valid, axis_of[f]) == 0] = np.nan
        return m

    continuous = [f for f in found if f not in HELD_OBJECT_FIELDS]
    jumping = {f: masked(f) for f in continuous if _AS_TARGET.get(f, f) in MAX_CHANGE}
    segments: dict[int, np.ndarray] = {}
    for k in dict.fromkeys(axis_of[f] for f in continuous):
        ts = axes.ts[k]
        cut = np.zeros((len(slots), max(ts.size - 1, 0)), dtype=bool)
        for f, m in jumping.items():
            if axis_of[f] == k:
                cut |= _jumps(_AS_TARGET[f], ts, m)
        if track is not None and ts.size >= 2:
            ids = axes.held_at(track, k)
            with np.errstate(invalid="ignore"):
                known = np.isfinite(ids[:, :-1]) & np.isfinite(ids[:, 1:])
                cut |= known & (ids[:, :-1] != ids[:, 1:])
            del ids, known
        seg = np.zeros((len(slots), ts.size), dtype=np.int64)
        np.cumsum(cut, axis=1, out=seg[:, 1:])
        segments[k] = seg
    first, last = slots[0], slots[-1]
    whole = last - first + 1 == len(slots)  # consecutive slots: rows written in place
    held = [f for f in found if f in HELD_OBJECT_FIELDS]
    for f in continuous + held:  # the flag and the ids last: masks and runs need them
        index = axes.index(axis_of[f])
        out = rows[f][first : last + 1] if whole else None
        if f in HELD_OBJECT_FIELDS:
            if f == "obj_valid" and valid is not None:
                src = valid[1]
            elif f == "obj_id" and track is not None:
                src = track[1]
            else:
                src = scaled(f)
            got = resample_rows(index, src, hold=True, out=out)
        else:
            src = jumping.pop(f) if f in jumping else masked(f)
            hold = found[f].slots[0].hold
            got = resample_rows(index, src, hold=hold, segments=segments[axis_of[f]], out=out)
        del src
        if not whole:
            rows[f][list(slots)] = got
        del got


def _jumps(name: str, ts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """:func:`jumps` of each row of a (slots x samples) matrix on the time axis ``ts``."""
    if ts.size < 2 or name not in MAX_CHANGE:
        return np.zeros((values.shape[0], max(ts.size - 1, 0)), dtype=bool)
    rate, slack = MAX_CHANGE[name]
    with np.errstate(invalid="ignore"):
        change = np.abs(np.diff(values, axis=1))
        jump: np.ndarray = change > rate * np.diff(ts) + slack
    return jump


# --------------------------------------------------------------------------- frames


def _field(i: int, name: str) -> property:
    def get(self: ObjectList) -> np.ndarray:
        rows = self._rows[i]
        return rows if rows.ndim == 1 else rows[:, self._k]

    return property(get, doc=f"``{name}`` of every slot at this cycle (read-only, length count)")


class ObjectList:
    """One cycle's object list as a Python function sees it (``frame["objects"]``).

    One read-only float64 array per field (``objects.obj_dx`` …), length ``count``, NaN
    where a slot is empty or the field is not mapped. Each is a view into the
    recording's resampled (count x cycles) matrix of that field, made when the attribute
    is read: a frame costs one small object per cycle, never a copy of the list.
    """

    __slots__ = ("_ahead", "_k", "_rows")  # _ahead: the chunk's shared selections
    FIELDS = OBJECT_FIELDS

    def __init__(self, rows: tuple[np.ndarray, ...], k: int, ahead: _InPath | None = None):
        self._rows = rows
        self._k = k
        self._ahead = ahead

    obj_dx = _field(0, "obj_dx")
    obj_dy = _field(1, "obj_dy")
    obj_vx = _field(2, "obj_vx")
    obj_vy = _field(3, "obj_vy")
    obj_ax = _field(4, "obj_ax")
    obj_valid = _field(5, "obj_valid")
    obj_id = _field(6, "obj_id")
    obj_class = _field(7, "obj_class")

    @property
    def slots(self) -> int:
        """The list's ``count`` (slots per field)."""
        return int(self._rows[0].shape[0])

    def any_valid(self) -> bool:
        """Whether some slot holds a valid object: ``obj_valid`` not 0 (NaN counts as
        valid) and a numeric ``obj_dx`` (in a replay worked out for a chunk at a time)."""
        chunk = self._ahead
        if chunk is not None:
            return chunk.any_valid(self._k)
        dx = self.obj_dx.tolist()
        valid = self.obj_valid.tolist()
        return any(v != 0.0 and d == d for v, d in zip(valid, dx, strict=True))

    def nearest_in_path(
        self, kappa: float, half_width: float, axle_to_front: float = 0.0
    ) -> tuple[int, float, float, float, float] | None:
        """The nearest valid object ahead within ``± half_width`` of the path:
        ``(slot, obj_dx, obj_vx, offset, obj_id)`` (what a target selection goes on with),
        or None when no valid object ahead is in the path.

        The rule of the KPI target with the curvature ``kappa`` (1/m, positive left) of
        the path through the rear axle: valid objects (``obj_valid`` not 0; NaN counts as
        valid) with ``obj_dx > 0``, the object at x = ``obj_dx + axle_to_front``,
        y = ``obj_dy`` (0 when NaN), its offset
        ``(2y - kappa (x² + y²)) / (1 + sqrt((kappa x)² + (1 - kappa y)²))``; the smallest
        ``obj_dx`` wins, the lower slot at equal distances.

        In a replay, where ``kappa`` is the cycle's ``ego_yaw_rate / ego_speed`` (0 when
        the yaw rate is NaN or the ego is slower than 2 m/s), the choice is worked out
        for a chunk of cycles at a time in numpy with the same float operations; any
        other ``kappa`` is worked out for this cycle alone. The result is the same.
        """
        chunk = self._ahead
        if chunk is not None:
            if chunk.key != (half_width, axle_to_front):
                chunk.work_out(half_width, axle_to_front)
            i = self._k - chunk.first
            if kappa == chunk.kappa[i]:  # the replay's path (else: this cycle alone)
                j = chunk.slot[i]
                if j < 0:
                    return None
                return j, chunk.dx[i], chunk.vx[i], chunk.offset[i], chunk.id[i]
        return _nearest_in_path(self, kappa, half_width, axle_to_front)

    def __getitem__(self, field: str) -> np.ndarray:
        """``objects["obj_dx"]``, the same as ``objects.obj_dx``."""
        if field not in OBJECT_FIELDS:
            raise KeyError(f"{field!r} is not an object field; fields: {', '.join(OBJECT_FIELDS)}")
        value: np.ndarray = getattr(self, field)
        return value

    def __repr__(self) -> str:
        valid = int(np.nansum(self.obj_valid))
        return f"<ObjectList cycle {self._k}: {valid} of {self.slots} slots valid>"


class ObjectFrames:
    """The ``objects`` column of a Python function's frames: ``frames[a:b].tolist()`` is
    one :class:`ObjectList` per cycle of that range. ``rows`` holds one read-only
    (count x cycles) matrix per field (an unmapped field: one read-only NaN row)."""

    def __init__(
        self,
        rows: Mapping[str, np.ndarray],
        count: int,
        ego: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
    ):
        nan = np.full(count, np.nan)
        nan.flags.writeable = False
        self.count = count
        self.ego = ego  # ego_speed, ego_yaw_rate: the path of nearest_in_path
        self._curvature: np.ndarray | None = None
        for m in rows.values():
            m.flags.writeable = False
        self.rows: tuple[np.ndarray, ...] = tuple(rows.get(f, nan) for f in OBJECT_FIELDS)

    def __getitem__(self, cycles: slice) -> _Chunk:
        return _Chunk(self, cycles)

    def curvature(self, n: int) -> np.ndarray:
        """The path curvature of each cycle: ``ego_yaw_rate / ego_speed``, 0 where the yaw
        rate is NaN or absent or the ego is slower than 2 m/s (or its speed absent)."""
        if self._curvature is None:
            from pytest_adsreplay.kpi.target import path_curvature

            speed, yaw = self.ego
            self._curvature = path_curvature(np.full(n, np.nan) if speed is None else speed, yaw)
        return self._curvature


class _Chunk:
    def __init__(self, frames: ObjectFrames, cycles: slice):
        self.frames, self.cycles = frames, cycles

    def tolist(self) -> list[ObjectList]:
        rows = self.frames.rows
        n = next((r.shape[1] for r in rows if r.ndim == 2), 0)
        first, stop, step = self.cycles.indices(n)
        if step != 1 or rows[0].ndim != 2:
            return [ObjectList(rows, k) for k in range(first, stop, step)]
        shared = _InPath(self.frames, first, stop)  # worked out on first use
        return [ObjectList(rows, k, shared) for k in range(first, stop)]


class _InPath:
    """:meth:`ObjectList.nearest_in_path` for the cycles ``first`` … ``stop - 1`` of a
    replay, with the replay's curvature: worked out for all of them on the first call
    (and again when ``half_width`` or ``axle_to_front`` change), in numpy with the float
    operations of :func:`_nearest_in_path`, one cycle at a time."""

    __slots__ = (
        "dx",
        "first",
        "frames",
        "id",
        "kappa",
        "key",
        "listed",
        "offset",
        "slot",
        "stop",
        "vx",
    )

    def __init__(self, frames: ObjectFrames, first: int, stop: int):
        self.frames, self.first, self.stop = frames, first, stop
        self.key: tuple[float, float] | None = None
        # per cycle: the replay's curvature and the choice (slot -1: no object in the path)
        self.kappa: list[float] = []
        self.slot: list[int] = []
        self.dx: list[float] = []
        self.offset: list[float] = []
        self.vx: list[float] = []
        self.id: list[float] = []
        self.listed: list[bool] | None = None

    def any_valid(self, k: int) -> bool:
        listed = self.listed
        if listed is None:
            rows, m = self.frames.rows, self.stop - self.first
            dx, valid = (_span(rows[f], self.first, m) for f in (0, 5))
            listed = self.listed = ((valid != 0.0) & (dx == dx)).any(axis=0).tolist()
        return listed[k - self.first]

    def work_out(self, limit: float, front: float) -> None:
        rows, first, m = self.frames.rows, self.first, self.stop - self.first
        dx, dy, vx, valid, ids = (_span(rows[f], first, m) for f in (0, 1, 2, 5, 6))
        n = rows[0].shape[1]
        kappa = self.frames.curvature(n)[first : self.stop]
        with np.errstate(invalid="ignore", over="ignore"):
            # (2y - kappa (x x + y y)) / (1 + sqrt(kx kx + ky ky)), kx = kappa x,
            # ky = 1 - kappa y: the same roundings as the cycle's floats (a product or a
            # sum does not depend on the order of its two terms), in place
            x = dx + front
            y = np.where(dy == dy, dy, 0.0)
            kx = kappa * x
            ky = kappa * y
            np.subtract(1.0, ky, out=ky)
            r2 = x * x
            r2 += y * y
            r2 *= kappa
            offset = y * 2.0
            offset -= r2
            kx *= kx
            ky *= ky
            kx += ky
            np.sqrt(kx, out=kx)
            kx += 1.0
            offset /= kx
            ok = dx > 0.0
            ok &= valid != 0.0
            ok &= -limit <= offset
            ok &= offset <= limit
        gap = np.where(ok, dx, np.inf)
        slot = np.argmin(gap, axis=0)  # the first of equal distances: the lower slot
        cycles = np.arange(m)
        has = ok[slot, cycles]
        self.slot = np.where(has, slot, -1).tolist()
        self.dx = dx[slot, cycles].tolist()
        self.offset = offset[slot, cycles].tolist()
        self.vx = vx[slot, cycles].tolist()
        self.id = ids[slot, cycles].tolist()
        self.kappa = kappa.tolist()
        self.key = (limit, front)


def _span(rows: np.ndarray, first: int, m: int) -> np.ndarray:
    """The (count x m) values of a field's rows at the cycles ``first`` … (an unmapped
    field's single NaN row stands for every cycle)."""
    if rows.ndim == 2:
        return rows[:, first : first + m]
    return np.broadcast_to(rows[:, None], (rows.shape[0], m))


def _nearest_in_path(
    objects: ObjectList, kappa: float, limit: float, front: float
) -> tuple[int, float, float, float, float] | None:
    """:meth:`ObjectList.nearest_in_path` for one cycle: the valid objects ahead are
    tried nearest first until one is in the path, in plain float arithmetic."""
    dx = objects.obj_dx.tolist()  # one slot of each field is strided: lists, not ufuncs
    valid = objects.obj_valid.tolist()
    near = [j for j, d in enumerate(dx) if d > 0.0 and valid[j] != 0.0]
    if len(near) > 1:
        near.sort(key=dx.__getitem__)  # stable: equal distances keep the slot order
    dy = objects.obj_dy.tolist()
    for j in near:
        x = dx[j] + front
        y = dy[j] if dy[j] == dy[j] else 0.0
        kx = kappa * x
        ky = 1.0 - kappa * y
        offset = (2.0 * y - kappa * (x * x + y * y)) / (1.0 + math.sqrt(kx * kx + ky * ky))
        if -limit <= offset <= limit:
            return j, dx[j], float(objects.obj_vx[j]), offset, float(objects.obj_id[j])
    return None


def split_objects(
    signals: Mapping[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], ObjectFrames | None]:
    """``(the other signals, the object list's frames or None)`` from signals that may
    carry object columns ``obj_dx[0]`` …: the columns of each field are stacked into one
    (count x cycles) read-only matrix (one copy per replay, none per cycle)."""
    plain = {k: v for k, v in signals.items() if not is_object_column(k)}
    rows = object_rows(signals)
    if not rows:
        return plain, None
    ego = (plain.get("ego_speed"), plain.get("ego_yaw_rate"))
    return plain, ObjectFrames(rows, rows["obj_dx"].shape[0], ego)


def is_object_column(name: str) -> bool:
    """``obj_dx[3]`` and the like."""
    m = _COLUMN.fullmatch(name)
    return m is not None and m.group(1) in OBJECT_FIELDS


def object_rows(signals: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """``{field: (count x cycles) C-ordered matrix}`` from signals carrying object columns
    (empty without an object list); slots a field lacks are NaN."""
    columns: dict[str, dict[int, np.ndarray]] = {}
    for name, arr in signals.items():
        m = _COLUMN.fullmatch(name)
        if m is not None and m.group(1) in OBJECT_FIELDS:
            columns.setdefault(m.group(1), {})[int(m.group(2))] = arr
    if not columns.get("obj_dx"):
        return {}
    count = max(columns["obj_dx"]) + 1
    n = np.asarray(next(iter(columns["obj_dx"].values()))).reshape(-1).shape[0]
    out = {}
    for field, cols in columns.items():
        rows = _rows_in_place(cols, count, n)
        if rows is not None:
            out[field] = rows
            continue
        mat = np.empty((count, n))
        for j in range(count):
            col = cols.get(j)
            if col is None:
                mat[j] = np.nan
            else:
                mat[j] = np.asarray(col, dtype=np.float64).reshape(-1)
        out[field] = mat
    return out


def _rows_in_place(cols: Mapping[int, Any], count: int, n: int) -> np.ndarray | None:
    """A read-only (count x n) view of columns that already are consecutive rows of one
    float64 block (the read's own matrix, a cache entry's table), else None."""
    first = cols.get(0)
    if not isinstance(first, np.ndarray) or first.base is None:
        return None
    start = first.__array_interface__["data"][0]
    for j in range(count):
        c = cols.get(j)
        if (
            not isinstance(c, np.ndarray)
            or c.base is not first.base
            or c.dtype != np.float64
            or c.shape != (n,)
            or not c.flags.c_contiguous
            or c.__array_interface__["data"][0] != start + j * n * 8
        ):
            return None
    rows: np.ndarray = np.lib.stride_tricks.as_strided(
        first, shape=(count, n), strides=(n * 8, 8), writeable=False
    )
    return rows


def object_matrices(signals: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """``{field: (cycles x count) matrix}`` (transposed views of :func:`object_rows`)."""
    return {f: m.T for f, m in object_rows(signals).items()}

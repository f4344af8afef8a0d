"""``read_signals``: the mapped channels of a recording, converted to SI and resampled."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pytest_adsreplay.errors import ChannelMapError, InvalidRecordingError, MissingChannelError
from pytest_adsreplay.mdf import reader as mf4
from pytest_adsreplay.mdf.reader import ChannelInfo, ChannelSamples, RecordingInfo
from pytest_adsreplay.signals.channel_map import (
    CANONICAL_SIGNALS,
    FLAG_SIGNALS,
    REQUIRED_SIGNALS,
    TARGET_SIGNALS,
    ChannelMap,
)
from pytest_adsreplay.signals.objects import (
    ObjectResolution,
    assemble_objects,
    object_column,
    resolve_objects,
)
from pytest_adsreplay.signals.quality import (
    invalid_error,
    presence_findings,
    time_findings,
    trace_findings,
)
from pytest_adsreplay.signals.resample import (
    DEFAULT_CYCLE_TIME,
    GAP_THRESHOLD,
    Signals,
    Trace,
    make_grid,
    resample,
    resample_objects,
)
from pytest_adsreplay.signals.resolve import Resolution, resolve_channels
from pytest_adsreplay.signals.targets import Series, prepare_targets

#: A cycle grid may have this many points per sample of the mapped channel with the most
#: samples (a 10 Hz channel on a 1 ms grid needs 100): a longer grid means a time axis in
#: the wrong unit, which would otherwise allocate terabytes.
GRID_PER_SAMPLE = 100
#: ...but short recordings may always have this many cycles.
MIN_GRID_LIMIT = 1 << 20


def plural(n: int, noun: str) -> str:
    """``"1 channel"``, ``"2 channels"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _to_si(samples: np.ndarray, scale: float, offset: float, *, in_place: bool) -> np.ndarray:
    """``samples * scale + offset`` (the same float operations), in place when the caller
    owns ``samples`` and nothing else reads them."""
    out: np.ndarray = np.multiply(samples, scale, out=samples if in_place else None)
    out += offset
    return out


def check_timestamps(ts: np.ndarray, where: str, *, recording: str) -> None:
    """Raise InvalidRecordingError for NaN/inf or decreasing timestamps of a channel/group.

    Equal consecutive timestamps are tolerated (resampling keeps the last sample).
    """
    findings = time_findings(where, ts)
    if findings:
        raise invalid_error(findings, recording)


def read_signals(
    path: str | Path,
    channel_map: ChannelMap,
    cycle_time: float = DEFAULT_CYCLE_TIME,
    *,
    recording_id: str | None = None,
    max_gap: float = GAP_THRESHOLD,
    lean: bool = False,
) -> Signals:
    """Read the mapped channels of ``path`` and resample them onto the cycle grid.

    Only the channels the map resolves are read. The grid spans from the earliest start
    to the latest end of those channels; a signal is NaN outside its channel's span and,
    for continuous signals, inside gaps longer than ``max_gap`` (see :func:`find_gaps`).
    Flags are 0/1 (any non-zero value is 1) and held; where ``target_valid`` is 0 the
    target signals are NaN. The data-quality gate is *not* applied here (see
    :func:`pytest_adsreplay.signals.quality.gate`), except for what resampling cannot do without:
    finite, non-decreasing timestamps and a time channel.

    ``lean`` (the read stage): the gate's checks of the raw traces are made while
    reading (:attr:`Signals.early_findings`, the same findings) and each channel's
    samples are released once its signal is on the grid, so the raw channels and the
    grid signals of a long recording are never all in memory at once; ``traces`` then
    hold empty arrays. Maps with an object list read as usual.
    """
    if not (cycle_time > 0 and math.isfinite(cycle_time)):
        raise ValueError(f"cycle_time must be a positive number of seconds, got {cycle_time!r}")
    if not (max_gap > 0 and math.isfinite(max_gap)):
        raise ValueError(f"max_gap must be a positive number of seconds, got {max_gap!r}")
    rec = recording_id or str(path)
    with mf4.open_recording(path, recording=rec, dbc=channel_map.dbc_pairs()) as reader:
        info = reader.info
        if info.can is not None and info.can.error:
            raise ChannelMapError(
                f"decoding raw CAN with {', '.join(info.can.dbc)} failed: {info.can.error}",
                recording=rec,
                hint=f"check the [can] DBC files of the channel map ({channel_map.source})",
            )
        objects = _resolve_objects(channel_map, info, rec)
        required = [n for n in REQUIRED_SIGNALS if objects is None or n not in TARGET_SIGNALS]
        resolved = resolve_channels(channel_map, info, recording=rec, suggest=required)
        for res in resolved.values():
            if res.error is not None:
                raise res.error
        _raise_missing(resolved, info, rec, channel_map.source, objects)
        usable = {n: r for n, r in resolved.items() if r.found}
        wanted: list[ChannelInfo] = []
        seen: set[tuple[int, int]] = set()
        for ch in [r.channel for r in usable.values()] + (objects.channels() if objects else []):
            assert ch is not None
            if (ch.group, ch.index) not in seen:
                seen.add((ch.group, ch.index))
                wanted.append(ch)
        data = {(c.channel.group, c.channel.index): c for c in reader.read(wanted)}
    signals = _assemble(
        usable,
        data,
        cycle_time,
        rec,
        max_gap,
        derive_valid=objects is None,
        lean=lean and objects is None,
    )
    if objects is not None:
        _add_objects(signals, objects, data, max_gap)
    return signals


def _resolve_objects(
    channel_map: ChannelMap, info: RecordingInfo, rec: str
) -> ObjectResolution | None:
    """The object list's resolution when the map has one and the file holds its
    ``obj_dx`` (None otherwise); a field that matches but cannot be used is an error."""
    if channel_map.objects is None:
        return None
    res = resolve_objects(channel_map.objects, info, recording=rec, source=channel_map.source)
    errors = res.errors()
    if errors:
        raise errors[0]
    return res if res.found else None


def _add_objects(
    signals: Signals,
    objects: ObjectResolution,
    data: Mapping[tuple[int, int], ChannelSamples],
    max_gap: float,
) -> None:
    """The object list's matrices on the signals' grid, and their columns in ``values``."""
    matrices, sources = assemble_objects(objects, data, signals.t, max_gap)
    signals.objects = matrices
    for field, mat in matrices.items():
        for j in range(mat.shape[1]):
            signals.values[object_column(field, j)] = mat[:, j]
    signals.sources.update(sources)


def can_notes(info: RecordingInfo, source: str) -> list[str]:
    """What raw CAN bus logging in a file means for the channel map (for messages)."""
    raw = info.raw_bus_groups()
    if not raw:
        return []
    groups = ", ".join(f"group {g.index} ({g.name}, {g.samples} frames)" for g in raw)
    can = info.can
    if can is None:
        return [
            f"the file holds raw CAN bus logging in {groups}; add [can] dbc = "
            f'["….dbc"] to the channel map ({source}) to decode it'
        ]
    notes = []
    if can.found:
        msgs = ", ".join(f"{m} (0x{i:X})" for i, m in can.found)
        notes.append(
            f"decoded CAN messages with {', '.join(Path(d).name for d in can.dbc)}: {msgs}"
        )
    else:
        notes.append(f"no CAN frame matched the DBC file(s) {', '.join(can.dbc)}")
    if can.unknown:
        notes.append(f"CAN IDs not in the DBC: {can.unknown_text()}")
    return notes


def _raise_missing(
    resolved: Mapping[str, Resolution],
    info: RecordingInfo,
    rec: str,
    source: str,
    objects: ObjectResolution | None = None,
) -> None:
    """Raise MissingChannelError for required signals not found (with an object list,
    the target signals are not required: the KPI target is derived from the list)."""
    required = [n for n in REQUIRED_SIGNALS if objects is None or n not in TARGET_SIGNALS]
    missing = [n for n in required if n not in resolved or not resolved[n].found]
    if not missing:
        return
    lines = []
    for n in missing:
        res = resolved.get(n)
        if res is None:
            lines.append(f"{n}: the channel map has no [signals.{n}] entry")
            continue
        tried = ", ".join(str(c) for c in res.spec.channels)
        close = ", ".join(res.close_matches) if res.close_matches else "none"
        lines.append(f"{n}: tried {tried}; close matches in the file: {close}")
    lines += can_notes(info, source)
    hint = (
        f"add the file's channel name to channels = [...] of the signal in the channel map"
        f" ({source}); `adsreplay inspect {info.path}` lists every channel"
    )
    looks = _object_list_patterns(info) if objects is None else []
    if looks and any(n in TARGET_SIGNALS for n in missing):
        hint = (
            f"the file looks like it carries an object list ({', '.join(looks)}): map it in"
            f" an [objects] table of the channel map ({source}) and the KPI target is derived"
            " from the list, no target channels needed (README 'Object lists'; `adsreplay generate"
            " DIR --suite objects` writes an example channel_map.toml); or " + hint
        )
    raise MissingChannelError(
        f"required signal(s) not found in the recording ({plural(len(info.channels()), 'channel')}"
        "):\n    " + "\n    ".join(lines),
        recording=rec,
        hint=hint,
    )


#: Slots a run of numbered channels needs before it looks like an object list.
_MIN_SLOTS = 4
_NUMBER = re.compile(r"\d+")


def _object_list_patterns(info: RecordingInfo, show: int = 2) -> list[str]:
    """Up to ``show`` channel-name patterns that repeat with a slot number (``Radar.Obj{i}.DistX
    x 32``) or array channels: the signs of an object list the channel map does not map."""
    runs: dict[str, set[str]] = {}
    arrays = []
    for c in info.channels():
        if c.kind == "array":
            arrays.append(f"{c.name} (array channel)")
        for m in _NUMBER.finditer(c.name):
            digits = m.group()
            slot = f"{{i:0{len(digits)}d}}" if len(digits) > 1 else "{i}"
            key = c.name[: m.start()] + slot + c.name[m.end() :]
            runs.setdefault(key, set()).add(m.group())
    numbered = sorted(
        (k for k, v in runs.items() if len(v) >= _MIN_SLOTS), key=lambda k: -len(runs[k])
    )
    found = [f"{k} x {len(runs[k])}" for k in numbered] + arrays
    return found[:show]


def _assemble(
    usable: Mapping[str, Resolution],
    data: Mapping[tuple[int, int], ChannelSamples],
    cycle_time: float,
    rec: str,
    max_gap: float = GAP_THRESHOLD,
    *,
    derive_valid: bool = True,
    lean: bool = False,
) -> Signals:
    """The canonical signals on the grid; ``lean``: see :func:`read_signals` (``data``
    entries are then removed as their channels are done with)."""
    chans = _non_empty_channels(usable, data, rec)
    grid = _grid(chans, cycle_time, rec)
    si, traces = _in_si(usable, chans)
    objects = prepare_targets(
        {n: si[n] for n in TARGET_SIGNALS if n in si},
        _flag_series(si.get("target_valid")),
        si.get("target_id"),
    )
    early: dict[str, list[Any]] | None = None
    keys = {n: (r.channel.group, r.channel.index) for n, r in usable.items() if r.channel}
    users = Counter(keys[n] for n in si)
    pool: dict[tuple[int, int], ChannelSamples] = data if isinstance(data, dict) else {}
    if lean:
        early = {"traces": trace_findings(traces, max_gap), "presence": []}
        chans.clear()
    values: dict[str, np.ndarray] = {}
    sources = {n: usable[n].source for n in usable if n in si}
    order = list(si)
    if lean:  # the longest channels first: a group's samples go before most signals exist
        order.sort(key=lambda n: -si[n][0].size)
        for name in [n for n in order if n not in CANONICAL_SIGNALS]:
            _release(name, si, traces, pool, keys, users, None, grid, {}, cycle_time, max_gap)
        order = [n for n in order if n in si]
    for name in order:
        ts, raw = si[name]
        if name not in CANONICAL_SIGNALS:
            continue
        vals = _on_grid(name, ts, raw, objects, usable[name].hold, grid, max_gap)
        if name in FLAG_SIGNALS:  # 0/1, NaN kept (in place: the grid arrays are large)
            nan = np.isnan(vals)
            np.copyto(vals, vals != 0, casting="unsafe")
            vals[nan] = np.nan
            del nan
        values[name] = vals
        if early is not None:
            del ts, raw, vals
            _release(name, si, traces, pool, keys, users, early, grid, values, cycle_time, max_gap)
    if early is not None and "ego_speed" not in values:
        early["presence"] = presence_findings(Signals(grid, values, cycle_time), max_gap)
    if derive_valid or "target_distance" in values:
        _apply_target_valid(values, sources, grid)
    ordered = {n: values[n] for n in CANONICAL_SIGNALS if n in values}
    return Signals(
        t=grid,
        values=ordered,
        cycle_time=cycle_time,
        sources={n: sources[n] for n in ordered},
        traces=traces,
        early_findings=early,
    )


def _in_si(
    usable: Mapping[str, Resolution], chans: Mapping[str, ChannelSamples]
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, Trace]]:
    """(timestamps, SI values) of every mapped channel, and the traces of the canonical
    signals (the same arrays); a channel's samples are converted in place when only one
    signal maps it."""
    uses = Counter(id(cs.samples) for cs in chans.values())
    si: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    traces: dict[str, Trace] = {}
    for name, cs in chans.items():
        res = usable[name]
        assert res.channel is not None
        raw = _to_si(cs.samples, res.scale, res.offset, in_place=uses[id(cs.samples)] == 1)
        si[name] = (cs.timestamps, raw)
        if name in CANONICAL_SIGNALS:
            traces[name] = Trace(res.channel.ref, cs.timestamps, raw)
    return si, traces


def _on_grid(
    name: str,
    ts: np.ndarray,
    raw: np.ndarray,
    objects: Mapping[str, Any],
    hold: bool,
    grid: np.ndarray,
    max_gap: float,
) -> np.ndarray:
    """One mapped signal resampled onto the grid (target signals: the masked samples,
    interpolated within one object)."""
    if name in objects and not hold:
        masked, segments = objects[name]
        return resample_objects(ts, masked, grid, segments=segments, max_gap=max_gap)
    src = objects[name][0] if name in objects else raw
    return resample(ts, src, grid, hold=hold, max_gap=None if hold else max_gap)


_EMPTY = np.zeros(0)


def _release(
    name: str,
    si: dict[str, tuple[np.ndarray, np.ndarray]],
    traces: dict[str, Trace],
    data: dict[tuple[int, int], ChannelSamples],
    keys: Mapping[str, tuple[int, int]],
    users: Counter[tuple[int, int]],
    early: dict[str, list[Any]] | None,
    grid: np.ndarray,
    values: Mapping[str, np.ndarray],
    cycle_time: float,
    max_gap: float,
) -> None:
    """Lean read: ``name`` is on the grid; drop every reference to its raw samples (its
    channel's ``data`` entry once no other signal maps that channel). The presence check
    of ego_speed, which reads its trace, is made first."""
    if name == "ego_speed" and early is not None:
        only = Signals(grid, {"ego_speed": values["ego_speed"]}, cycle_time, traces=traces)
        early["presence"] = presence_findings(only, max_gap)
    si.pop(name, None)
    trace = traces.get(name)
    if trace is not None:
        traces[name] = Trace(trace.channel, _EMPTY, _EMPTY)
    key = keys.get(name)
    if key is not None:
        users[key] -= 1
        if users[key] <= 0:
            data.pop(key, None)


def _non_empty_channels(
    usable: Mapping[str, Resolution], data: Mapping[tuple[int, int], ChannelSamples], rec: str
) -> dict[str, ChannelSamples]:
    """The mapped channels with samples (a required one without is an invalid recording)."""
    chans: dict[str, ChannelSamples] = {}
    for name, res in usable.items():
        assert res.channel is not None
        cs = data[(res.channel.group, res.channel.index)]
        check_timestamps(cs.timestamps, f"channel {res.channel.ref} ({name})", recording=rec)
        if cs.timestamps.size == 0:
            if name in REQUIRED_SIGNALS:
                raise InvalidRecordingError(
                    f"channel {res.channel.ref} ({name}) has no samples",
                    recording=rec,
                    hint="check that the logger recorded this bus/sensor; re-record or "
                    "map another channel",
                )
            continue
        chans[name] = cs
    return chans


def _grid(chans: Mapping[str, ChannelSamples], cycle_time: float, rec: str) -> np.ndarray:
    t_min = min(float(c.timestamps[0]) for c in chans.values())
    t_max = max(float(c.timestamps[-1]) for c in chans.values())
    most = max(c.timestamps.size for c in chans.values())
    cycles = (t_max - t_min) / cycle_time
    if cycles > max(MIN_GRID_LIMIT, GRID_PER_SAMPLE * most):
        slowest = max(chans.items(), key=lambda kv: kv[1].timestamps.size)
        raise InvalidRecordingError(
            f"data-quality check 'time' failed: the mapped channels span {t_max - t_min:.6g} s "
            f"({t_min:.6g} .. {t_max:.6g} s) but hold at most {most} samples "
            f"({slowest[0]}: one per {(t_max - t_min) / max(most - 1, 1):.3g} s); a "
            f"{cycle_time:g} s grid would need {cycles:.3g} cycles. The time channel is "
            "probably not in seconds (nanoseconds, microseconds or milliseconds labelled 's'?)",
            recording=rec,
            hint="re-export the recording with its time channel in seconds, or fix the time "
            "channel's unit/conversion; `adsreplay inspect` shows each group's rate and span",
        )
    grid = make_grid(t_min, t_max, cycle_time)
    if grid.size < 2:
        raise InvalidRecordingError(
            f"data-quality check 'duration' failed: the recording spans {t_max - t_min:.6g} s "
            f"({t_min:.6g} .. {t_max:.6g} s), shorter than one cycle of {cycle_time:g} s",
            recording=rec,
            hint="check that the file is complete; a replay needs at least two cycles",
        )
    return grid


def _flag_series(series: tuple[np.ndarray, np.ndarray] | None) -> Series | None:
    """A flag's samples as 0/1 (NaN kept)."""
    if series is None:
        return None
    ts, vs = series
    flag = (vs != 0).astype(np.float64)
    flag[np.isnan(vs)] = np.nan
    return ts, flag


def _apply_target_valid(
    values: dict[str, np.ndarray], sources: dict[str, str], grid: np.ndarray
) -> None:
    """NaN target signals where ``target_valid`` is 0, or derive it from the distance."""
    if "target_valid" in values:
        invalid = values["target_valid"] == 0
        for name in TARGET_SIGNALS:
            if name in values:
                values[name][invalid] = np.nan
    else:
        dist = values.get("target_distance", np.full(grid.shape, np.nan))
        values["target_valid"] = np.isfinite(dist).astype(np.float64)
        sources["target_valid"] = "derived: isfinite(target_distance)"

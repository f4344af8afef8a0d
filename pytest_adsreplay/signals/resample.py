"""Resampling onto the uniform cycle grid ``t_k = k * cycle_time`` and the
:class:`Signals` record that carries the result (plus each signal's raw trace)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_CYCLE_TIME = 0.01

#: A sampling interval longer than this (and than twice the channel's median interval)
#: is a gap: continuous signals are NaN inside it and ``adsreplay inspect`` reports it.
GAP_THRESHOLD = 0.2

#: Signals that the target_valid flag masks with NaN where it says "no object".
TIME_TOL = 1e-9
#: Relative allowance on the gap limit for logger jitter: an interval is a gap only when
#: it is more than 10 % longer than the limit (a 10 Hz frame dropped once: 0.2 s ± jitter).
GAP_TOLERANCE = 0.1
#: Version of the resampling rules; part of a channel map's fingerprint, so signals cached
#: under older rules are not reused. 2: target signals never blend two objects.
#: 3: object lists.
RESAMPLING_RULES = 3


def make_grid(t_min: float, t_max: float, cycle_time: float) -> np.ndarray:
    """Exact grid ``k * cycle_time`` for every k with t_min <= k*cycle_time <= t_max."""
    k0 = math.ceil(t_min / cycle_time - TIME_TOL)
    k1 = math.floor(t_max / cycle_time + TIME_TOL)
    return np.arange(k0, k1 + 1, dtype=np.int64) * cycle_time


def find_gaps(timestamps: np.ndarray, threshold: float = GAP_THRESHOLD) -> np.ndarray:
    """Indexes i where ``timestamps[i+1] - timestamps[i]`` is a gap.

    A gap is longer than ``threshold`` and than twice the median sampling interval (so a
    slow but regular channel is not one long series of gaps), plus ``GAP_TOLERANCE``
    for the jitter of a logger (one dropped frame of a 10 Hz bus is not a gap).
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    if ts.size < 2:
        return np.zeros(0, dtype=np.int64)
    return gaps_and_median(np.diff(ts), threshold)[0]


def gaps_and_median(dt: np.ndarray, threshold: float) -> tuple[np.ndarray, float | None]:
    """``(i where dt[i] > max(threshold, 2 * median) * (1 + GAP_TOLERANCE), median)`` of
    sampling intervals
    ``dt``, the median taken over the finite positive ones (None if there is none).

    ``dt`` is consumed (reordered in place): a long recording's interval array is not
    copied again for the median. The candidates above ``threshold`` are kept first.
    """
    over = np.flatnonzero(dt > threshold)
    over_dt = dt[over]
    usable = np.isfinite(dt) & (dt > 0)
    pos = dt if usable.all() else dt[usable]
    del usable
    med = float(np.median(pos, overwrite_input=True)) if pos.size else None
    limit = max(threshold, 2.0 * (med or 0.0)) * (1.0 + GAP_TOLERANCE)
    return over[over_dt > limit], med


#: Grid points resampled per step: bounds the temporary arrays of a long recording.
RESAMPLE_CHUNK = 1 << 20


def resample(
    timestamps: np.ndarray,
    samples: np.ndarray,
    grid: np.ndarray,
    *,
    hold: bool,
    max_gap: float | None = None,
) -> np.ndarray:
    """Samples on ``grid``: previous-value hold (``hold``) or linear interpolation.

    Timestamps must be finite and non-decreasing; for equal timestamps the last sample
    wins. Grid points outside the channel's own span are NaN (no extrapolation); with
    ``max_gap``, so are grid points strictly inside a gap found by :func:`find_gaps`.
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    vs = np.asarray(samples, dtype=np.float64)
    grid = np.asarray(grid, dtype=np.float64)
    if ts.shape != vs.shape or ts.ndim != 1:
        raise ValueError(f"timestamps {ts.shape} and samples {vs.shape} must be equal 1-D shapes")
    out = np.full(grid.shape, np.nan)
    if ts.size == 0:
        return out
    first, last = ts[0] - TIME_TOL, ts[-1] + TIME_TOL
    if not hold:
        keep = np.r_[ts[1:] != ts[:-1], True]
        if not keep.all():
            ts, vs = ts[keep], vs[keep]
        del keep
    flat_grid, flat_out = grid.reshape(-1), out.reshape(-1)
    for a in range(0, flat_grid.size, RESAMPLE_CHUNK):
        g = flat_grid[a : a + RESAMPLE_CHUNK]
        inside = (g >= first) & (g <= last)
        g = g[inside]
        if hold:
            idx = np.searchsorted(ts, g + TIME_TOL, side="right") - 1
            flat_out[a : a + RESAMPLE_CHUNK][inside] = vs[np.clip(idx, 0, None)]
        else:
            flat_out[a : a + RESAMPLE_CHUNK][inside] = np.interp(np.clip(g, ts[0], ts[-1]), ts, vs)
    if max_gap is not None:
        for i in find_gaps(ts, max_gap):
            out[(grid > ts[i] + TIME_TOL) & (grid < ts[i + 1] - TIME_TOL)] = np.nan
    return out


def resample_objects(
    timestamps: np.ndarray,
    samples: np.ndarray,
    grid: np.ndarray,
    *,
    segments: np.ndarray | None = None,
    max_gap: float | None = None,
) -> np.ndarray:
    """Samples of one object's signal on ``grid``, never blending two objects.

    Between two source samples the value is interpolated linearly only when both are
    finite (valid) and belong to the same ``segments`` value (one object, see
    :func:`pytest_adsreplay.signals.targets.object_segments`); otherwise the earlier
    sample is held until the next one (a NaN sample holds NaN). Span, equal timestamps
    and ``max_gap`` behave as in :func:`resample`.
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    vs = np.asarray(samples, dtype=np.float64)
    grid = np.asarray(grid, dtype=np.float64)
    seg = np.zeros(ts.shape) if segments is None else np.asarray(segments, dtype=np.float64)
    if ts.shape != vs.shape or ts.shape != seg.shape or ts.ndim != 1:
        raise ValueError(
            f"timestamps {ts.shape}, samples {vs.shape} and segments {seg.shape} must be "
            "equal 1-D shapes"
        )
    out = np.full(grid.shape, np.nan)
    if ts.size == 0:
        return out
    first, last = ts[0] - TIME_TOL, ts[-1] + TIME_TOL
    keep = np.r_[ts[1:] != ts[:-1], True]
    if not keep.all():
        ts, vs, seg = ts[keep], vs[keep], seg[keep]
    finite = np.isfinite(vs)
    linear = finite[:-1] & finite[1:] & (seg[:-1] == seg[1:])
    linear = np.r_[linear, False]  # the last sample starts no interval
    flat_grid, flat_out = grid.reshape(-1), out.reshape(-1)
    for a in range(0, flat_grid.size, RESAMPLE_CHUNK):
        g = flat_grid[a : a + RESAMPLE_CHUNK]
        inside = (g >= first) & (g <= last)
        g = g[inside]
        idx = np.clip(np.searchsorted(ts, g + TIME_TOL, side="right") - 1, 0, None)
        vals = np.interp(np.clip(g, ts[idx], ts[-1]), ts, vs)
        held = ~linear[idx]
        vals[held] = vs[idx[held]]
        flat_out[a : a + RESAMPLE_CHUNK][inside] = vals
    if max_gap is not None:
        for i in find_gaps(ts, max_gap):
            out[(grid > ts[i] + TIME_TOL) & (grid < ts[i + 1] - TIME_TOL)] = np.nan
    return out


@dataclass
class GridIndex:
    """Where the grid points fall among one time axis's samples, computed once and shared
    by every channel on that axis (the fields of all slots of one radar message).

    ``keep`` drops all but the last of equal timestamps; ``inside`` marks the grid points
    within the axis's span; for those, ``idx`` is the sample at or before the point and
    ``dt`` the time since it; ``gap`` marks (over ``inside``) points inside a gap.
    """

    ts: np.ndarray
    keep: np.ndarray | None
    inside: np.ndarray
    idx: np.ndarray
    dt: np.ndarray
    step: np.ndarray
    gap: np.ndarray | None
    size: int


def grid_index(timestamps: np.ndarray, grid: np.ndarray, max_gap: float | None) -> GridIndex:
    """The :class:`GridIndex` of one time axis on ``grid`` (see :func:`resample_indexed`)."""
    ts = np.asarray(timestamps, dtype=np.float64)
    keep: np.ndarray | None = None
    if ts.size:
        keep = np.r_[ts[1:] != ts[:-1], True]
        if keep.all():
            keep = None
        else:
            ts = ts[keep]
    if ts.size == 0:
        inside = np.zeros(grid.shape, dtype=bool)
    else:
        inside = (grid >= ts[0] - TIME_TOL) & (grid <= ts[-1] + TIME_TOL)
    g = grid[inside]
    idx = np.clip(np.searchsorted(ts, g + TIME_TOL, side="right") - 1, 0, None)
    nxt = np.minimum(idx + 1, max(ts.size - 1, 0))
    step = ts[nxt] - ts[idx] if ts.size else np.zeros(0)
    dt = np.clip(g - ts[idx], 0.0, None) if ts.size else np.zeros(0)
    gap: np.ndarray | None = None
    if max_gap is not None and ts.size >= 2:
        gaps = find_gaps(ts, max_gap)
        if gaps.size:
            gap = np.zeros(g.shape, dtype=bool)
            for i in gaps:
                gap |= (g > ts[i] + TIME_TOL) & (g < ts[i + 1] - TIME_TOL)
    return GridIndex(ts, keep, inside, idx, dt, step, gap, int(grid.size))


def resample_indexed(
    index: GridIndex,
    samples: np.ndarray,
    *,
    hold: bool,
    segments: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`resample` (``hold``) or :func:`resample_objects` (linear within one object
    ``segments`` run) of samples on an indexed time axis, written into ``out``.

    The gap of the index applies to linear signals only, as in the read of a recording.
    """
    vs = np.asarray(samples, dtype=np.float64)
    seg = segments
    if index.keep is not None:
        vs = vs[index.keep]
        seg = None if seg is None else np.asarray(seg)[index.keep]
    if out is None:
        out = np.empty(index.size)
    out.fill(np.nan)
    if index.ts.size == 0:
        return out
    idx = index.idx
    vals = vs[idx]
    if not hold and index.ts.size >= 2:
        finite = np.isfinite(vs)
        linear = finite[:-1] & finite[1:]
        if seg is not None:
            linear &= seg[:-1] == seg[1:]
        linear = np.r_[linear, False]
        lin = linear[idx]
        j = idx[lin]
        slope = (vs[j + 1] - vs[j]) / index.step[lin]
        vals[lin] = slope * index.dt[lin] + vs[j]
        if index.gap is not None:
            vals[index.gap] = np.nan
    out[index.inside] = vals
    return out


def resample_rows(
    index: GridIndex,
    samples: np.ndarray,
    *,
    hold: bool,
    segments: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`resample_indexed` of several channels on one indexed time axis at once:
    ``samples`` (and ``segments``) are (rows x samples) matrices, one row per channel;
    the result, row by row the same floats as :func:`resample_indexed` gives each row, is
    written into the (rows x grid) matrix ``out``.

    The grid points inside the axis's span are one run of the (increasing) grid, so each
    row is one gather of the samples at the index and, for linear signals, one gather of
    the slopes of the intervals times the time since the sample.
    """
    vs = np.asarray(samples, dtype=np.float64)
    if vs.ndim != 2:
        raise ValueError(f"samples must be a (rows x samples) matrix, got shape {vs.shape}")
    seg = segments
    if index.keep is not None:
        vs = vs[:, index.keep]
        seg = None if seg is None else np.asarray(seg)[:, index.keep]
    rows = vs.shape[0]
    if out is None:
        out = np.empty((rows, index.size))
    if index.ts.size == 0 or rows == 0:
        out.fill(np.nan)
        return out
    run = _run(index.inside)
    if run is None:  # a grid that is not increasing: the mask, row by row
        for r in range(rows):
            resample_indexed(
                index, vs[r], hold=hold, segments=None if seg is None else seg[r], out=out[r]
            )
        return out
    a, b = run
    out[:, :a] = np.nan
    out[:, b:] = np.nan
    idx = index.idx
    for r in range(rows):
        np.take(vs[r], idx, out=out[r, a:b], mode="clip")
    if hold or index.ts.size < 2:
        return out
    finite = np.isfinite(vs)
    linear = finite[:, :-1] & finite[:, 1:]
    del finite
    if seg is not None:
        linear &= seg[:, :-1] == seg[:, 1:]
    dt = index.dt
    if linear.any():
        # the slope of each linear interval, -0.0 elsewhere: value + (-0.0) * dt is the
        # value itself, bit for bit (dt >= 0), value + slope * dt the interpolation
        slope = np.empty(vs.shape)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            np.subtract(vs[:, 1:], vs[:, :-1], out=slope[:, :-1])
            slope[:, :-1] /= np.diff(index.ts)
        np.copyto(slope[:, :-1], -0.0, where=~linear)
        slope[:, -1] = -0.0
        exact = not np.signbit(dt).any()  # -0.0 * -0.0 would be +0.0
        step = np.empty(idx.size)
        for r in range(rows):
            np.take(slope[r], idx, out=step, mode="clip")
            if not exact:
                held = ~np.take(linear[r], np.minimum(idx, linear.shape[1] - 1))
                held |= idx >= linear.shape[1]
            np.multiply(step, dt, out=step)
            if not exact:
                step[held] = -0.0
            row = out[r, a:b]
            np.add(row, step, out=row)
    if index.gap is not None:
        out[:, a:b][:, index.gap] = np.nan
    return out


def _run(inside: np.ndarray) -> tuple[int, int] | None:
    """``(a, b)`` when the True values of ``inside`` are exactly ``a`` … ``b - 1``."""
    hits = np.flatnonzero(inside)
    if hits.size == 0:
        return 0, 0
    a, b = int(hits[0]), int(hits[-1]) + 1
    return (a, b) if hits.size == b - a else None


@dataclass
class Trace:
    """The samples behind one canonical signal: SI values on the channel's own timestamps.

    Kept next to the resampled signals so the data-quality gate (:mod:`.quality`) can judge
    the logger's real sampling (rates, gaps, non-finite values), not the grid's.
    """

    channel: str
    timestamps: np.ndarray
    values: np.ndarray


@dataclass
class Signals:
    """Canonical signals of one recording on the uniform cycle grid ``t``.

    ``traces`` holds the raw samples of each mapped signal (see :class:`Trace`).
    ``objects`` holds the object list, one (cycles x count) matrix per field (empty
    without a list); ``values`` carries the same data as columns ``obj_dx[0]`` … (views,
    no copy), the form in which signals travel between stages and sit in the cache.
    """

    t: np.ndarray
    values: dict[str, np.ndarray]
    cycle_time: float
    sources: dict[str, str] = field(default_factory=dict)
    traces: dict[str, Trace] = field(default_factory=dict)
    objects: dict[str, np.ndarray] = field(default_factory=dict)
    #: A lean read (``read_signals(lean=True)``) judged the raw traces while reading and
    #: released their samples: the gate's findings of those checks ("traces") and of the
    #: ego_speed presence check ("presence"), which :func:`.quality.assess` uses instead.
    early_findings: dict[str, list[Any]] | None = None

    @property
    def object_count(self) -> int:
        """Slots of the object list (0 without one)."""
        dx = self.objects.get("obj_dx")
        return 0 if dx is None else int(dx.shape[1])

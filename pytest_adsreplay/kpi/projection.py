"""Kinematic projection of the outcome of braking (collision, impact speed, minimum gap).

Pure numpy, no I/O.

Open loop cannot show what the function's braking would have achieved, so the outcome
(collision, impact speed, minimum gap) is *projected*: from the brake time the ego is
re-propagated piecewise-analytically (constant-jerk / constant-deceleration pieces) against
the recorded lead trajectory, sampled on a fine grid, and the contact time is refined by
bisection on the exact gap.

Past the end of the recording both vehicles are continued from their last state, each with
its own last deceleration (never an acceleration) until it stops:

* **The lead keeps braking.** Holding only its last speed would be optimistic: open-loop
  CCRb recordings end (at about a 1 m recorded gap) while the lead is still braking at 2 or
  6 m/s², and the closed-form braking-target kinematics then give a collision (CCRb 6 m/s²
  / 12 m: about 3 m/s) where a lead held at its last speed gives "avoided, 0.8 m"
  instead. So the lead keeps its last speed *and its last deceleration* until it stops,
  then stays put. The deceleration is the least-squares slope of the recorded lead speed
  (ego_speed + target_rel_speed) over the last `LEAD_DECEL_WINDOW` s of valid samples; below
  `LEAD_DECEL_MIN` it is sensor noise and taken as 0, and an accelerating lead only keeps
  its last speed (never extrapolate an acceleration: that would be optimistic).
* A target lost only in the last `TARGET_END_TOLERANCE` s of the recording (a radar group
  that ends a few samples before the bus group, a dropped last frame) is continued from its
  last valid sample as above; a target gone for longer is no target, and the projection
  stops at the end of the recording.
* The ego, **with a braking request held at the end** (the last request > 0), keeps it until
  standstill, through the actuator model, with no time bound but
  `MAX_EXTRAPOLATION`.
* The ego **without a braking request** (the function never braked, `brake_time` is None)
  is the recorded one: it keeps its last speed *and its last deceleration* until it stops,
  the deceleration estimated from the recorded `ego_speed` exactly like the lead's (same
  window, same threshold, decelerations only). Holding only its speed while the lead keeps
  braking is pessimistic: a driver braking behind a braking car when the recording ends
  mid-stop (both at -2 m/s², 20 m apart, 10 m/s) would show a collision at 8.9 m/s instead
  of a 20 m gap. The recorded driver's braking counts only here: from `brake_time` on the
  re-propagated ego decelerates by the function's request alone.
* The ego **whose request was released before the end** obeys the same rule: it keeps its
  own last deceleration, which for the re-propagated ego is the actuator's, known exactly
  (the release goes through dead time and jerk limit, then 0): it coasts at its projected
  speed. The recorded ego's deceleration is not mixed in, as in the recorded part after
  `brake_time`.
* Without a braking request held at the end (none at all, or released) the ego is followed
  for at most `COAST_HORIZON` s past the end of the recording, decelerating or not: a
  recording that ends while following a slightly slower car must not turn into a
  "collision" a minute later, and a driver's braking is no promise to stop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "COAST_HORIZON",
    "LEAD_DECEL_MIN",
    "LEAD_DECEL_WINDOW",
    "MAX_EXTRAPOLATION",
    "TARGET_END_TOLERANCE",
    "KpiSettings",
    "Projection",
    "as_float",
    "clean_request",
    "project",
]

#: Past the end of the recording an ego without a braking request held at the end (the
#: function never braked, or released its request) is extrapolated for at most this long (s),
#: coasting or decelerating: a recording that ends while following a slightly slower car must
#: not turn into a "collision" a minute later.
COAST_HORIZON = 5.0
#: Hard bound on any extrapolation past the end of the recording (s), so projection terminates.
MAX_EXTRAPOLATION = 120.0
#: A target whose last valid sample is at most this long (s) before the end of the recording
#: is continued past the end from that sample; lost for longer, it is no target. A bit more
#: than the default data-quality max gap (0.2 s), so one dropped frame or a radar group
#: ending a few samples early does not turn a near miss into "nothing ahead".
TARGET_END_TOLERANCE = 0.25
#: The lead's deceleration past the end (and the recorded ego's, when the function never
#: braked) is the least-squares slope of its recorded speed over this long (s) before its last
#: valid sample (needs samples spanning half of it, else 0) ...
LEAD_DECEL_WINDOW = 0.5
#: ... and is 0 below this (m/s²): speed noise, not braking.
LEAD_DECEL_MIN = 0.3
#: Fine-grid step of the projection as a fraction of the cycle time, and a cap on grid points
#: for long recordings (contact time is refined exactly, so a coarser grid loses nothing).
_SUBSTEPS = 10
_MAX_POINTS = 200_000
#: A lead recorded moving backwards faster than this (m/s) after the ego came to a stop keeps
#: the projection going to the end of the recording; slower is sensor noise.
_APPROACH_TOL = 0.5


@dataclass(frozen=True)
class KpiSettings:
    """Thresholds and actuator model of the KPIs (ini `adsreplay_brake_threshold`, ...)."""

    brake_threshold: float = 1.0  # m/s², aeb_decel >= this counts as braking
    actuator_delay: float = 0.2  # s dead time request -> decel onset
    brake_jerk: float = 40.0  # m/s³ rate limit of the actuated decel; math.inf = ideal step
    lateral_overlap: float = 1.8  # m; contact only while |target_lateral| < this
    path_half_width: float = 1.0  # m; an object-list target is within ± this of the path
    axle_to_front: float = 0.0  # m; rear axle to front bumper (object positions)

    def __post_init__(self) -> None:
        checks = {
            "brake_threshold": 0.0 < self.brake_threshold < math.inf,
            "actuator_delay": 0.0 <= self.actuator_delay < math.inf,
            "brake_jerk": self.brake_jerk > 0.0,
            "lateral_overlap": self.lateral_overlap > 0.0,
            "path_half_width": 0.0 < self.path_half_width < math.inf,
            "axle_to_front": 0.0 <= self.axle_to_front < math.inf,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name} = {getattr(self, name)!r} is out of range")


@dataclass
class Projection:
    """Outcome of re-propagating the ego from the brake time against the recorded lead.

    The arrays are the projected part (from `brake_time`, or from the end of the recording
    when there is no braking) on a fine grid, for plots; empty when contact happened in the
    recorded part already. `gap` is NaN where there is no target, `decel` is the actual
    deceleration of the ego (0 once stopped).
    """

    collision: bool
    impact_speed: float
    min_distance: float
    contact_time: float | None
    t: np.ndarray
    gap: np.ndarray
    ego_speed: np.ndarray
    decel: np.ndarray


# --------------------------------------------------------------------------- recording prep


@dataclass
class _Track:
    """The recorded scene in positions: ego path, lead path, in-path flags, the lead's state
    past the end of the recording (`end_target`; from sample `last` on) and the recorded
    ego's deceleration at the end."""

    t: np.ndarray
    ego_v: np.ndarray
    ego_x: np.ndarray
    gap: np.ndarray  # NaN = no target
    lead_x: np.ndarray
    lead_v: np.ndarray
    lateral: np.ndarray  # NaN = unknown = in path
    overlap: float
    last: int = -1  # last valid target sample, -1 = none
    lead_v_end: float = 0.0  # speed the lead keeps past `last`, never reversing
    lead_decel_end: float = 0.0  # deceleration (>= 0) it keeps until it stops
    ego_decel_end: float = 0.0  # recorded ego's deceleration (>= 0) at the end, same estimate

    def in_path(self, lateral: np.ndarray) -> np.ndarray:
        return np.asarray(~(np.abs(lateral) >= self.overlap))

    @property
    def end_target(self) -> bool:
        """Is the lead continued past the end (valid until at most TARGET_END_TOLERANCE)?"""
        if self.last < 0:
            return False
        lost_for = float(self.t[-1] - self.t[self.last])
        return lost_for <= TARGET_END_TOLERANCE + 1e-9 * max(1.0, float(self.t[-1]))

    @property
    def t_last(self) -> float:
        """Time from which the lead is extrapolated (its last valid sample)."""
        return float(self.t[self.last])

    def lead_after(self, tq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Extrapolated lead position and speed at `tq` >= t_last: last speed and last
        deceleration until standstill, then stationary."""
        tau = np.maximum(tq - self.t_last, 0.0)
        v0, a = self.lead_v_end, self.lead_decel_end
        if a > 0.0:
            tau = np.minimum(tau, v0 / a)
        return self.lead_x[self.last] + v0 * tau - a * tau**2 / 2, v0 - a * tau


def _end_decel(t: np.ndarray, speed: np.ndarray, last: int) -> float:
    """Deceleration (>= 0) of a vehicle (lead or recorded ego) at sample `last`: least-squares
    slope of its finite speed samples over LEAD_DECEL_WINDOW; 0 for noise (< LEAD_DECEL_MIN),
    an accelerating vehicle, or too short a span of samples."""
    window = slice(int(np.searchsorted(t, t[last] - LEAD_DECEL_WINDOW - 1e-9)), last + 1)
    tw, vw = t[window], speed[window]
    ok = np.isfinite(vw)
    tw, vw = tw[ok], vw[ok]
    if tw.size < 3 or tw[-1] - tw[0] < LEAD_DECEL_WINDOW / 2:
        return 0.0
    tc = tw - tw.mean()
    decel = -float(np.dot(tc, vw - vw.mean()) / np.dot(tc, tc))
    return decel if decel >= LEAD_DECEL_MIN else 0.0


def as_float(a: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=float).reshape(-1)
    if arr.shape != (n,):
        raise ValueError(f"{name} has {arr.size} samples, t has {n}")
    return arr


def _fill_nan(t: np.ndarray, x: np.ndarray, name: str) -> np.ndarray:
    ok = np.isfinite(x)
    if ok.all():
        return x
    if not ok.any():
        raise ValueError(f"{name} has no finite sample")
    return np.asarray(np.interp(t, t[ok], x[ok]), dtype=float)


def _track(t: np.ndarray, signals: Mapping[str, np.ndarray], overlap: float) -> _Track:
    n = t.size
    raw_v = as_float(signals["ego_speed"], n, "ego_speed")
    v = _fill_nan(t, raw_v, "ego_speed")
    gap = as_float(signals["target_distance"], n, "target_distance").copy()
    valid = signals.get("target_valid")
    if valid is not None:
        gap[as_float(valid, n, "target_valid") == 0] = np.nan
    rel = as_float(signals["target_rel_speed"], n, "target_rel_speed")
    lat = signals.get("target_lateral")
    lateral = np.full(n, np.nan) if lat is None else as_float(lat, n, "target_lateral")
    x = np.concatenate([[0.0], np.cumsum(0.5 * (v[1:] + v[:-1]) * np.diff(t))])
    lead_x = x + gap
    lead_v = v + rel
    with np.errstate(invalid="ignore"):
        slope = np.gradient(lead_x, t) if n > 1 else np.full(n, np.nan)
    lead_v = np.where(np.isfinite(lead_v), lead_v, slope)
    lead_v[~np.isfinite(gap)] = np.nan
    track = _Track(t, v, x, gap, lead_x, lead_v, lateral, overlap)
    if v[-1] > 0.0:
        track.ego_decel_end = _end_decel(t, raw_v, int(np.flatnonzero(np.isfinite(raw_v))[-1]))
    finite = np.flatnonzero(np.isfinite(gap) & np.isfinite(lead_v))
    if finite.size:
        track.last = last = int(finite[-1])
        track.lead_v_end = max(float(lead_v[last]), 0.0)
        track.lead_decel_end = _end_decel(t, lead_v, last) if track.lead_v_end > 0 else 0.0
        if track.end_target and last < n - 1:  # lost in the last cycles: continue it already
            tail = slice(last + 1, n)
            track.lead_x[tail], track.lead_v[tail] = track.lead_after(t[tail])
            track.gap[tail] = track.lead_x[tail] - x[tail]
            track.lateral = lateral.copy()
            track.lateral[tail] = lateral[last]
    return track


def _interp(t: np.ndarray, y: np.ndarray, tq: np.ndarray) -> np.ndarray:
    """Linear interpolation that propagates NaN from either neighbour (np.interp does not)."""
    i = np.clip(np.searchsorted(t, tq, side="right") - 1, 0, t.size - 2)
    frac = np.clip((tq - t[i]) / (t[i + 1] - t[i]), 0.0, 1.0)
    lo, hi = y[i], y[i + 1]
    with np.errstate(invalid="ignore"):
        mid = lo + frac * (hi - lo)
    return np.where(frac == 0.0, lo, np.where(frac == 1.0, hi, mid))


# --------------------------------------------------------------------------- ego model


@dataclass
class _Pieces:
    """Ego trajectory as constant-jerk pieces: x = x0 + v0 τ - a0 τ²/2 - j τ³/6 (a = decel)."""

    start: np.ndarray
    x0: np.ndarray
    v0: np.ndarray
    a0: np.ndarray
    jerk: np.ndarray
    t_stop: float
    x_stop: float

    @classmethod
    def constant(cls, t0: float, x0: float, v0: float, decel: float) -> _Pieces:
        """One piece from t0: speed v0, constant deceleration `decel` (>= 0) until it stops."""
        v0 = max(v0, 0.0)
        t_stop = t0 + _stop_after(v0, decel, 0.0)
        one = np.ones(1)
        pieces = cls(t0 * one, x0 * one, v0 * one, decel * one, 0.0 * one, t_stop, math.nan)
        pieces._locate_stop()
        return pieces

    def _locate_stop(self) -> None:
        if math.isfinite(self.t_stop):
            self.x_stop = float(self.polynomial(np.array([self.t_stop]))[0][0])

    def polynomial(self, tq: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Position, speed and deceleration of the pieces at `tq`, ignoring the stop."""
        i = np.clip(np.searchsorted(self.start, tq, side="right") - 1, 0, None)
        tau = tq - self.start[i]
        a0, j, v0 = self.a0[i], self.jerk[i], self.v0[i]
        x = self.x0[i] + v0 * tau - a0 * tau**2 / 2 - j * tau**3 / 6
        return x, v0 - a0 * tau - j * tau**2 / 2, a0 + j * tau

    def at(self, tq: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Position, speed and deceleration at times `tq`; the ego stays put once stopped."""
        x, v, a = self.polynomial(tq)
        stopped = tq >= self.t_stop
        return (
            np.where(stopped, self.x_stop, x),
            np.where(stopped, 0.0, np.maximum(v, 0.0)),
            np.where(stopped, 0.0, a),
        )


def _stop_after(v0: float, a0: float, j: float) -> float:
    """First τ > 0 with v0 - a0 τ - j τ²/2 = 0 (decel a0 + j τ >= 0 on the piece), or inf."""
    if v0 <= 0.0:
        return 0.0
    disc = a0 * a0 + 2.0 * j * v0
    if disc < 0.0:
        return math.inf
    den = a0 + math.sqrt(disc)  # rationalised root, also valid for j == 0
    return 2.0 * v0 / den if den > 0.0 else math.inf


def _ego_pieces(
    t: np.ndarray, request: np.ndarray, ib: int, x0: float, v0: float, settings: KpiSettings
) -> _Pieces:
    """Propagate the ego from sample `ib` under the delayed, jerk-limited request series."""
    jerk = float(settings.brake_jerk)
    req = request[ib:]
    change = np.flatnonzero(np.diff(req) != 0.0) + 1
    first = np.concatenate([[0], change])
    seg_t = [float(t[ib]), *(t[ib + first] + settings.actuator_delay).tolist()]
    seg_a = [0.0, *req[first].tolist()]
    seg_end = [*seg_t[1:], math.inf]

    rows: list[tuple[float, float, float, float, float]] = []
    now, x, v, a = float(t[ib]), x0, max(v0, 0.0), 0.0

    def piece(j: float, dur: float) -> float | None:
        """Append a piece; advance the state; return the stop time if the ego stops in it."""
        nonlocal now, x, v, a
        if not (j == 0.0 and rows and rows[-1][4] == 0.0 and rows[-1][3] == a):
            rows.append((now, x, v, a, j))  # else: the previous constant piece just goes on
        tau = _stop_after(v, a, j)
        if math.isfinite(tau) and tau <= dur:
            return now + tau
        x += v * dur - a * dur**2 / 2 - j * dur**3 / 6
        v = max(v - a * dur - j * dur**2 / 2, 0.0)
        a += j * dur
        now += dur
        return now if v == 0.0 else None

    t_stop = math.inf
    for start, end, target in zip(seg_t, seg_end, seg_a, strict=True):
        if end <= now:
            continue
        remaining = end - max(start, now)
        if a != target:
            if math.isinf(jerk):
                a = target
            else:
                ramp = abs(target - a) / jerk
                dur = min(ramp, remaining)
                stop = piece(math.copysign(jerk, target - a), dur)
                if stop is not None:
                    t_stop = stop
                    break
                if dur == ramp:
                    a = target
                remaining -= dur
        if remaining > 0.0:
            stop = piece(0.0, remaining)
            if stop is not None:
                t_stop = stop
                break
            if math.isinf(remaining):
                break
    arr = np.array(rows, dtype=float).reshape(-1, 5)
    start, xs, vs, decels, jerks = arr.T
    pieces = _Pieces(start, xs, vs, decels, jerks, t_stop=t_stop, x_stop=math.nan)
    pieces._locate_stop()
    return pieces


# --------------------------------------------------------------------------- projection


def clean_request(aeb_decel: np.ndarray, n: int) -> np.ndarray:
    """Request magnitudes as the actuator sees them: NaN -> 0, never negative."""
    req = as_float(aeb_decel, n, "aeb_decel")
    return np.asarray(np.clip(np.nan_to_num(req, nan=0.0, posinf=0.0, neginf=0.0), 0.0, None))


def _recorded_contact(track: _Track, last: int) -> tuple[float, float] | None:
    """First in-path recorded gap <= 0 among samples 0..last: (time, impact speed)."""
    gap = track.gap[: last + 1]
    hit_mask = np.isfinite(gap) & track.in_path(track.lateral[: last + 1]) & (gap <= 0.0)
    hits = np.flatnonzero(hit_mask)
    if not hits.size:
        return None
    k = int(hits[0])
    t, closing = float(track.t[k]), track.ego_v[k] - track.lead_v[k]
    if k > 0 and np.isfinite(track.gap[k - 1]) and track.gap[k - 1] > 0.0:
        frac = track.gap[k - 1] / (track.gap[k - 1] - track.gap[k])
        t = float(track.t[k - 1] + frac * (track.t[k] - track.t[k - 1]))
        before = track.ego_v[k - 1] - track.lead_v[k - 1]
        closing = before + frac * (closing - before)
        if not np.isfinite(closing):
            closing = (track.gap[k - 1] - track.gap[k]) / (track.t[k] - track.t[k - 1])
    return t, max(float(np.nan_to_num(closing, nan=0.0)), 0.0)


def _end_time(track: _Track, pieces: _Pieces, start: float, horizon: float) -> float:
    """When the projection may stop: standstill, nothing left to hit, the ego's extrapolation
    bound `horizon` (inf while a braking request is held), or a hard bound."""
    t_end = float(track.t[-1])
    end = max(start, t_end) + MAX_EXTRAPOLATION
    if not track.end_target:
        end = min(end, max(start, t_end))
    stop = pieces.t_stop
    if stop <= t_end:
        later = track.lead_v[track.t >= stop - (track.t[1] - track.t[0])]
        reversing = bool(np.any(later < -_APPROACH_TOL))  # NaN compares False
        end = min(end, t_end if reversing else stop)
    else:
        end = min(end, stop)
    return max(min(end, horizon), start)


def _lead_on(track: _Track, tq: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lead position (NaN = no target), speed and in-path flag at `tq`."""
    t_end = float(track.t[-1])
    tin = np.minimum(tq, t_end)
    x = _interp(track.t, track.lead_x, tin)
    v = _interp(track.t, track.lead_v, tin)
    lat = _interp(track.t, track.lateral, tin)
    if track.end_target:
        after = tq > track.t_last
        x_after, v_after = track.lead_after(tq)
        x = np.where(after, x_after, x)
        v = np.where(after, v_after, v)
        lat = np.where(after, track.lateral[track.last], lat)
    else:
        x = np.where(tq <= t_end, x, np.nan)
    return x, v, track.in_path(lat)


def _bisect_contact(track: _Track, pieces: _Pieces, lo: float, hi: float) -> float:
    """Time in [lo, hi] where the exact projected gap reaches 0 (gap(lo) > 0 >= gap(hi))."""
    for _ in range(40):
        mid = np.array([(lo + hi) / 2])
        if _lead_on(track, mid)[0][0] - pieces.at(mid)[0][0] > 0.0:
            lo = float(mid[0])
        else:
            hi = float(mid[0])
    return hi


def project(
    t: np.ndarray,
    signals: Mapping[str, np.ndarray],
    aeb_decel: np.ndarray,
    brake_time: float | None,
    settings: KpiSettings = KpiSettings(),
) -> Projection:
    """Project collision / impact speed / minimum gap of braking from `brake_time`.

    Before `brake_time` (everywhere when it is None) the ego follows the recording; from it
    the ego starts from its recorded state and decelerates only by the requested deceleration,
    delayed by `actuator_delay` and rate-limited by `brake_jerk`. Past the end of the
    recording each vehicle keeps its own last deceleration up to standstill: the lead and,
    without a braking request, the recorded ego the one estimated from their recorded speed
    (see the module docstring: holding only the last speed would be optimistic), the
    re-propagated ego its last request (0 once released). Without a braking request held at
    the end the ego is followed for at most COAST_HORIZON past the end.
    """
    t = np.asarray(t, dtype=float).reshape(-1)
    n = t.size
    if n < 2:
        raise ValueError(f"projection needs at least two samples, got {n}")
    if not np.all(np.diff(t) > 0):
        raise ValueError("t must be strictly increasing")
    track = _track(t, signals, settings.lateral_overlap)
    request = clean_request(aeb_decel, n)
    if brake_time is None:
        ib, last_recorded = n - 1, n - 1
        request = np.zeros(n)
    else:
        ib = int(np.clip(np.searchsorted(t, brake_time - 1e-9 * (t[1] - t[0])), 0, n - 1))
        last_recorded = ib
    empty = np.empty(0)

    hit = _recorded_contact(track, last_recorded)
    if hit is not None:
        return Projection(True, hit[1], 0.0, hit[0], empty, empty, empty, empty)

    before = track.gap[:ib] if brake_time is not None else track.gap
    in_path_before = np.isfinite(before) & track.in_path(track.lateral[: before.size])
    min_recorded = float(before[in_path_before].min()) if in_path_before.any() else math.inf

    start = float(t[ib])
    x0, v0 = float(track.ego_x[ib]), float(track.ego_v[ib])
    if brake_time is None:  # the recorded ego, past the end: its own last deceleration
        pieces = _Pieces.constant(start, x0, v0, track.ego_decel_end)
    else:
        pieces = _ego_pieces(t, request, ib, x0, v0, settings)
    held = brake_time is not None and request[-1] > 0.0
    horizon = math.inf if held else float(t[-1]) + COAST_HORIZON
    end = _end_time(track, pieces, start, horizon)
    step = max((t[1] - t[0]) / _SUBSTEPS, (end - start) / _MAX_POINTS)
    tq = start + step * np.arange(math.floor((end - start) / step) + 1)
    if tq[-1] < end:
        tq = np.append(tq, end)
    ego_x, ego_v, decel = pieces.at(tq)
    lead_x, lead_v, in_path = _lead_on(track, tq)
    gap = lead_x - ego_x
    usable = np.isfinite(gap) & in_path

    if track.end_target:  # past the end, once the ego is no faster than the lead and brakes
        # at least as hard as the lead for good (its last piece), the gap only grows
        opening = (tq > max(track.t_last, float(t[-1]))) & (ego_v <= lead_v)
        if track.lead_decel_end > 0.0:
            opening &= (tq >= pieces.start[-1]) & (decel >= track.lead_decel_end)
        opening = np.flatnonzero(opening)
        if opening.size:
            keep = int(opening[0]) + 1
            tq, gap, ego_v, decel, usable = (a[:keep] for a in (tq, gap, ego_v, decel, usable))

    contacts = np.flatnonzero(usable & (gap <= 0.0))
    if contacts.size:
        k = int(contacts[0])
        tc = float(tq[k])
        if k > 0 and usable[k - 1]:
            tc = _bisect_contact(track, pieces, float(tq[k - 1]), tc)
        tq, gap, ego_v, decel = (a[: k + 1].copy() for a in (tq, gap, ego_v, decel))
        at_contact = np.array([tc])
        v_e = float(pieces.at(at_contact)[1][0])
        v_l = float(_lead_on(track, at_contact)[1][0])
        tq[k], gap[k], ego_v[k] = tc, 0.0, v_e
        impact = max(float(np.nan_to_num(v_e - v_l, nan=0.0)), 0.0)
        return Projection(True, impact, 0.0, tc, tq, gap, ego_v, decel)

    min_projected = float(gap[usable].min()) if usable.any() else math.inf
    min_distance = max(min(min_recorded, min_projected), 0.0)
    return Projection(False, 0.0, min_distance, None, tq, gap, ego_v, decel)

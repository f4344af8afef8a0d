"""The data-quality gate (SPEC §8): is a recording good enough to judge the function on?

It runs in the read stage, after the canonical signals are read and before the function
under test is stepped. A recording that fails a check is an *invalid recording* (outcome
``invalid``: its own status in the summary, the JUnit XML and the results database),
never a function failure. The checks, in the order they are reported:

``time``
    Every mapped channel's timestamps are finite and never decrease, and its group has a
    time master channel. Checked while reading (nothing can be resampled otherwise): a
    NaN timestamp is never dropped or bridged, it makes the recording invalid.
``duration``
    The recording spans at least two cycles of the grid.
``rate``
    Every mapped channel is sampled at ``MIN_RATE_HZ`` or faster (median interval, up to
    ``RATE_TOLERANCE`` = 5 % longer for logger jitter).
    Euro NCAP asks for ≥ 100 Hz from a track measurement system; series sensors deliver
    object lists at 10-25 Hz, so the floor is 10 Hz: slower data cannot place a brake
    decision within the 0.1 s the KPIs are judged on.
``gap``
    No mapped channel has an interval between samples longer than ``max_gap`` (ini
    ``adsreplay_max_gap``, default 0.2 s) — or than twice its own median interval when
    that is longer, so a regular 10 Hz channel under a smaller ``max_gap`` is not one long
    series of gaps — by more than ``GAP_TOLERANCE`` (10 %), so one dropped frame of a
    jittering 10 Hz bus (0.2 s plus jitter) is not a gap.
``finite``
    No mapped channel has ±inf samples (NaN is "no value", see below).
``presence``
    ``ego_speed`` is never NaN for longer than ``max_gap`` on the cycle grid, whatever
    the cause: a gap, invalid samples, or a channel that starts late or ends early.
``target``
    For the target signals NaN simply means "no object", so a missing target is not a
    finding by itself. Invalid are: a recording that *expects* a target (see
    :func:`expects_target`) whose ``target_distance`` is NaN over the whole recording; a
    present target (finite distance) whose ``target_rel_speed`` is missing for longer
    than ``max_gap``; and a mapped ``target_valid`` that says "present" while the distance
    is missing for longer than ``max_gap``.
``nominal_speed``
    With a sidecar ``nominal_speed`` (km/h), the Euro NCAP validity band for the ego
    speed, ``NOMINAL_BAND_KPH`` (test speed +0 … +1 km/h), widened by
    ``SPEED_TOLERANCE_KPH`` for logger noise and applied to the speed smoothed over 0.1 s,
    from T0 (the first cycle whose recorded TTC is ≤ 4 s) up to the recording's own first
    braking (driver brake pedal, or the deceleration onset: -1 m/s² traced back to
    -0.3 m/s², from ``ego_accel`` or the speed's slope). The first warning or brake *of
    the function under test* is not known before it runs, and the band is a property of
    the recording, so the recorded braking ends the window. Without a T0 (no closing
    target, e.g. a false-activation drive) the band is not checked: it is defined only
    for the NCAP test window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_adsreplay.errors import InvalidRecordingError
from pytest_adsreplay.kpi.registry import TARGET_KPIS as TARGET_KPIS  # needs_target KPIs
from pytest_adsreplay.signals.resample import (
    Signals,
    Trace,
    find_gaps,
    gaps_and_median,
)

DEFAULT_MAX_GAP = 0.2
#: Slowest acceptable sampling rate of any mapped channel (median interval), Hz.
MIN_RATE_HZ = 10.0
#: Sensor noise allowed below 0 m on target_distance before it is a finding.
NEGATIVE_DISTANCE_TOLERANCE = 0.5
#: Logger jitter allowed on the rate: the median interval may be this much longer than
#: ``1 / MIN_RATE_HZ`` (a J1939 message every 0.1001 s is a 10 Hz message).
RATE_TOLERANCE = 0.05
#: Euro NCAP AEB C2C: VUT speed = test speed + 0 … +1.0 km/h from T0 to the first warning/brake.
NOMINAL_BAND_KPH = (0.0, 1.0)
#: Allowance on both sides of the band for speed-signal noise and quantization of a logger.
SPEED_TOLERANCE_KPH = 0.2
#: T0 of the NCAP test window: the recorded TTC reaches this.
T0_TTC = 4.0
#: Recorded braking onset: smoothed ego deceleration crosses BRAKE_DETECT, traced back to
#: BRAKE_TRACE (the Euro NCAP method of SPEC §4's recorded_brake_time).
BRAKE_DETECT = -1.0
BRAKE_TRACE = -0.3
SMOOTHING = 0.1  # s, moving-average window for speed and acceleration

CHECKS = ("time", "duration", "rate", "gap", "finite", "presence", "target", "nominal_speed")
#: Scenario names (Euro NCAP car-to-car rear) that always have a lead object.
TARGET_SCENARIOS = ("CCR",)
_TOL = 1e-9
_MAX_ALSO = 4
_TIME_UNIT_NOTE = (
    "; the time channel is probably not in seconds (milliseconds, microseconds or "
    "nanoseconds labelled 's'?)"
)

_HINTS = {
    "time": "re-export the recording from the logger; the time channel is corrupt",
    "duration": "check that the file is complete; a replay needs at least two cycles",
    "rate": "log this channel at 10 Hz or faster, or map a faster channel in the channel map",
    "gap": "re-record, cut the recording before the gap, or raise adsreplay_max_gap if "
    "such gaps are acceptable for this data (an interval up to 10 % longer than the "
    "limit, or than twice the channel's median interval, passes as logger jitter)",
    "finite": "the logger wrote infinite values; re-export the recording or map another channel",
    "presence": "ego_speed must cover the whole recording: map a channel that does, or cut "
    "the recording to the span where it is present",
    "target": "check the radar/object channels and the channel map (`adsreplay inspect` "
    "shows how they resolve); for a drive without a target, remove the target expectation "
    "from the sidecar (or set target = false)",
    "nominal_speed": "the run was not driven at the sidecar's nominal_speed: fix "
    "nominal_speed in the sidecar, or leave this run out of the NCAP suite",
}


@dataclass(frozen=True)
class Finding:
    """One result of the gate: a failed check (``fatal``) or a note for ``adsreplay inspect``."""

    check: str
    message: str
    t: float | None = None
    fatal: bool = True
    hint: str = ""

    def text(self) -> str:
        where = f" at t = {self.t:.3f} s" if self.t is not None else ""
        return f"{self.check}{where}: {self.message}"


@dataclass(frozen=True)
class GateSettings:
    """What the gate needs besides the signals.

    ``expect_target`` is the reason a target object is expected (e.g. "scenario 'CCRs'"),
    or None when the recording may have none (see :func:`expects_target`).
    """

    max_gap: float = DEFAULT_MAX_GAP
    nominal_speed: float | None = None
    expect_target: str | None = None


def expects_target(
    scenario: str | None, expect: Iterable[Any] = (), meta: Mapping[str, Any] | None = None
) -> str | None:
    """Why a recording must contain a target object, or None if it may have none.

    An explicit sidecar ``target = true|false`` wins; otherwise a Euro NCAP car-to-car rear
    scenario (``CCRs``, ``CCRm``, ``CCRb``), an ``[expect]`` that requires a warning or a
    braking (``fcw``/``brake``/``collision = true``) or bounds a TTC/gap KPI.
    """
    explicit = (meta or {}).get("target")
    if isinstance(explicit, bool):
        return "the sidecar says target = true" if explicit else None
    if scenario and scenario.upper().startswith(TARGET_SCENARIOS):
        return f"scenario {scenario!r}"
    for bound in expect:
        name = getattr(bound, "name", None)
        exact = getattr(bound, "exact", None)
        if name in ("fcw", "brake", "collision") and exact is True:
            return f"[expect] {name} = true"
        if name in TARGET_KPIS:
            return f"[expect] bounds {name}"
    return None


# -------------------------------------------------------------------------- helpers


def nan_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` index ranges (stop exclusive) where ``mask`` is True."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return []
    edges = np.diff(np.r_[0, m.astype(np.int8), 0])
    return list(
        zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True)
    )


def _long_runs(mask: np.ndarray, cycle: float, limit: float) -> list[tuple[int, int]]:
    return [(a, b) for a, b in nan_runs(mask) if (b - a) * cycle > limit + _TOL]


def smooth(x: np.ndarray, n: int) -> np.ndarray:
    """Centred moving average over ``n`` samples that skips NaN (NaN where all are NaN)."""
    x = np.asarray(x, dtype=np.float64)
    if n <= 1 or x.size == 0:
        return x.copy()
    ok = np.isfinite(x)
    csum = np.r_[0.0, np.cumsum(np.where(ok, x, 0.0))]
    ccnt = np.r_[0, np.cumsum(ok)]
    half = n // 2
    lo = np.clip(np.arange(x.size) - half, 0, x.size)
    hi = np.clip(np.arange(x.size) + (n - half), 0, x.size)
    cnt = ccnt[hi] - ccnt[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = (csum[hi] - csum[lo]) / cnt
    out[cnt == 0] = np.nan
    return out


def time_findings(where: str, ts: np.ndarray) -> list[Finding]:
    """The ``time`` check of one time axis: non-finite and decreasing timestamps."""
    ts = np.asarray(ts, dtype=np.float64)
    out: list[Finding] = []
    bad = np.flatnonzero(~np.isfinite(ts))
    if bad.size:
        i = int(bad[0])
        prev = ts[:i][np.isfinite(ts[:i])]
        after = f" (after t={prev[-1]:.6g} s)" if prev.size else ""
        out.append(
            Finding(
                "time",
                f"{where}: timestamp is {ts[i]} at sample {i}{after}; {bad.size} of {ts.size} "
                "timestamps are not finite",
                t=float(prev[-1]) if prev.size else None,
                hint=_HINTS["time"],
            )
        )
    finite = ts[np.isfinite(ts)] if bad.size else ts
    dec = np.flatnonzero(finite[1:] < finite[:-1])  # no difference array: ts may be long
    if dec.size:
        i = int(dec[0]) + 1
        out.append(
            Finding(
                "time",
                f"{where}: time goes backwards at sample {i} (t={finite[i]:.6g} s after "
                f"t={finite[i - 1]:.6g} s); {dec.size} decreasing step(s) in total",
                t=float(finite[i - 1]),
                hint="re-export the recording sorted by time, or cut the recording at the "
                "logger restart",
            )
        )
    return out


def invalid_error(findings: Sequence[Finding], recording: str | None) -> InvalidRecordingError:
    """One InvalidRecordingError for the fatal findings: the first in full, then the rest."""
    fatal = [f for f in findings if f.fatal]
    first = fatal[0]
    where = f" at t = {first.t:.3f} s" if first.t is not None else ""
    text = f"data-quality check '{first.check}' failed{where}: {first.message}"
    for f in fatal[1 : 1 + _MAX_ALSO]:
        text += f"\n    also {f.text()}"
    if len(fatal) > 1 + _MAX_ALSO:
        text += f"\n    (+{len(fatal) - 1 - _MAX_ALSO} more findings)"
    return InvalidRecordingError(text, recording=recording, hint=first.hint or None)


# ---------------------------------------------------------------------------- checks


def assess(signals: Signals, settings: GateSettings | None = None) -> list[Finding]:
    """Every finding of the gate for read signals (fatal ones first, in ``CHECKS`` order)."""
    settings = settings or GateSettings()
    early = signals.early_findings
    out: list[Finding] = []
    if early is None:
        out += trace_findings(signals.traces, settings.max_gap)
    else:
        out += early["traces"]
    if signals.t.size < 2:
        out.append(
            Finding(
                "duration",
                f"the recording has {signals.t.size} cycle(s); at least two are needed",
                hint=_HINTS["duration"],
            )
        )
    out += early["presence"] if early is not None else _presence(signals, settings.max_gap)
    out += _target(signals, settings)
    out += _nominal_speed(signals, settings)
    order = {c: i for i, c in enumerate(CHECKS)}
    return sorted(out, key=lambda f: (not f.fatal, order.get(f.check, len(order))))


def trace_findings(traces: Mapping[str, Trace], max_gap: float) -> list[Finding]:
    """The checks of the logger's own samples (time axis, rate, gaps, non-finite values),
    in the gate's order: everything the gate needs the raw traces for, bar the detail of
    a presence failure (:func:`presence_findings`)."""
    out: list[Finding] = []
    for trace_name, trace in traces.items():
        out += time_findings(f"channel {trace.channel} ({trace_name})", trace.timestamps)
    out += _rate_and_gaps(traces, max_gap)
    out += _finite(traces)
    return out


def presence_findings(signals: Signals, max_gap: float) -> list[Finding]:
    """The presence check of ego_speed (it names the channel's gap from its trace)."""
    return _presence(signals, max_gap)


def gate(
    signals: Signals, settings: GateSettings | None = None, *, recording: str | None = None
) -> list[Finding]:
    """Raise InvalidRecordingError if a check fails; return the non-fatal notes otherwise."""
    findings = assess(signals, settings)
    if any(f.fatal for f in findings):
        raise invalid_error(findings, recording)
    return findings


_Sampling = tuple[np.ndarray, float | None, np.ndarray]


def _sampling(timestamps: np.ndarray, max_gap: float) -> _Sampling:
    """(finite timestamps, median positive interval or None, ``find_gaps(ts, max_gap)``).

    One interval array, reordered in place for the median: the channels of a group
    share their time array, which may hold millions of samples.
    """
    finite = np.isfinite(timestamps)
    ts = timestamps if finite.all() else timestamps[finite]
    del finite
    dt = np.diff(ts)
    if not (dt > 0).any():
        return ts, None, find_gaps(ts, max_gap)
    if np.isinf(dt).any():  # the rate counts infinite intervals, find_gaps does not
        return ts, float(np.median(dt[dt > 0])), find_gaps(ts, max_gap)
    gaps, median = gaps_and_median(dt, max_gap)
    return ts, median, gaps


def _rate_and_gaps(traces: Mapping[str, Trace], max_gap: float) -> list[Finding]:
    out: list[Finding] = []
    done: dict[int, _Sampling] = {}
    for name, trace in traces.items():
        key = id(trace.timestamps)
        if key not in done:
            done[key] = _sampling(trace.timestamps, max_gap)
        ts, med, gaps = done[key]
        where = f"channel {trace.channel} ({name})"
        if med is None:
            out.append(
                Finding(
                    "rate",
                    f"{where} has {ts.size} sample(s) at one instant; no sampling rate",
                    t=float(ts[0]) if ts.size else None,
                    hint=_HINTS["rate"],
                )
            )
            continue
        rate = 1.0 / med
        if med > (1.0 + RATE_TOLERANCE) / MIN_RATE_HZ + _TOL:
            out.append(
                Finding(
                    "rate",
                    f"{where} is sampled at {rate:.3g} Hz (median interval {med:.4g} s), below "
                    f"the minimum of {MIN_RATE_HZ:g} Hz (intervals up to "
                    f"{RATE_TOLERANCE:.0%} longer are accepted for logger jitter)"
                    + (_TIME_UNIT_NOTE if rate < MIN_RATE_HZ / 50 else ""),
                    t=float(ts[0]),
                    hint=_HINTS["rate"],
                )
            )
        if gaps.size:
            i = int(gaps[0])
            more = f" ({gaps.size} gaps in total)" if gaps.size > 1 else ""
            out.append(
                Finding(
                    "gap",
                    f"{where} has no samples for {ts[i + 1] - ts[i]:.3f} s (t = {ts[i]:.3f} .. "
                    f"{ts[i + 1]:.3f} s); the longest allowed gap is {max_gap:g} s "
                    f"(adsreplay_max_gap){more}",
                    t=float(ts[i]),
                    hint=_HINTS["gap"],
                )
            )
    return out


def _finite(traces: Mapping[str, Trace]) -> list[Finding]:
    out = []
    for name, trace in traces.items():
        inf = np.flatnonzero(np.isinf(trace.values))
        if inf.size:
            i = int(inf[0])
            out.append(
                Finding(
                    "finite",
                    f"channel {trace.channel} ({name}) has {inf.size} "
                    f"infinite sample(s), the first is {trace.values[i]}",
                    t=float(trace.timestamps[i]),
                    hint=_HINTS["finite"],
                )
            )
    return out


def _why_missing(signals: Signals, name: str, t0: float, t1: float) -> str:
    trace = signals.traces.get(name)
    if trace is None or trace.timestamps.size == 0:
        return "it has no samples"
    first, last = float(trace.timestamps[0]), float(trace.timestamps[-1])
    if t0 > last:
        return f"channel {trace.channel} ends at t = {last:.3f} s"
    if t1 < first:
        return f"channel {trace.channel} starts only at t = {first:.3f} s"
    inside = (trace.timestamps >= t0 - 0.5) & (trace.timestamps <= t1 + 0.5)
    if np.isnan(trace.values[inside]).any():
        return f"channel {trace.channel} has invalid (NaN) samples there"
    return f"channel {trace.channel} has a gap there"


def _presence(signals: Signals, max_gap: float) -> list[Finding]:
    v = signals.values.get("ego_speed")
    if v is None:
        return [Finding("presence", "ego_speed is not in the recording", hint=_HINTS["presence"])]
    runs = _long_runs(np.isnan(v), signals.cycle_time, max_gap)
    if not runs:
        return []
    a, b = runs[0]
    t0, t1 = float(signals.t[a]), float(signals.t[b - 1])
    more = f" ({len(runs)} such spans)" if len(runs) > 1 else ""
    return [
        Finding(
            "presence",
            f"ego_speed is missing (NaN) for {(b - a) * signals.cycle_time:.3f} s, t = {t0:.3f} "
            f".. {t1:.3f} s: {_why_missing(signals, 'ego_speed', t0, t1)}; the longest allowed "
            f"span is {max_gap:g} s{more}",
            t=t0,
            hint=_HINTS["presence"],
        )
    ]


def _with_target(signals: Signals) -> Mapping[str, np.ndarray]:
    """The signals' values with the KPI target derived from the object list (default
    path settings) when no target channel is mapped."""
    if "target_distance" in signals.values or not signals.objects:
        return signals.values
    from pytest_adsreplay.kpi.target import derive_target

    return {**signals.values, **derive_target(signals.values, signals.objects)}


def _target(signals: Signals, settings: GateSettings) -> list[Finding]:
    out: list[Finding] = []
    n = signals.t.size
    values = _with_target(signals)
    dist = values.get("target_distance", np.full(n, np.nan))
    rel = values.get("target_rel_speed", np.full(n, np.nan))
    present = np.isfinite(dist)
    if settings.expect_target and n and not present.any():
        src = signals.sources.get("target_distance", "not mapped")
        out.append(
            Finding(
                "target",
                f"target_distance ({src}) is NaN over the whole recording (no target object), "
                f"but a target is expected ({settings.expect_target})",
                hint=_HINTS["target"],
            )
        )
    for a, b in _long_runs(present & np.isnan(rel), signals.cycle_time, settings.max_gap)[:1]:
        out.append(
            Finding(
                "target",
                f"target_rel_speed is missing (NaN) for {(b - a) * signals.cycle_time:.3f} s while "
                f"target_distance shows a target (t = {signals.t[a]:.3f} .. {signals.t[b - 1]:.3f} "
                f"s); the longest allowed span is {settings.max_gap:g} s",
                t=float(signals.t[a]),
                hint=_HINTS["target"],
            )
        )
    out += _negative_distance(signals.t, dist)
    valid = signals.values.get("target_valid")
    if valid is not None and "target_valid" in signals.traces:
        said = (valid == 1) & ~present
        for a, b in _long_runs(said, signals.cycle_time, settings.max_gap)[:1]:
            out.append(
                Finding(
                    "target",
                    f"target_valid says a target is present but target_distance is missing for "
                    f"{(b - a) * signals.cycle_time:.3f} s (t = {signals.t[a]:.3f} .. "
                    f"{signals.t[b - 1]:.3f} s)",
                    t=float(signals.t[a]),
                    hint=_HINTS["target"],
                )
            )
    return out


def _negative_distance(t: np.ndarray, dist: np.ndarray) -> list[Finding]:
    """A gap below ``-NEGATIVE_DISTANCE_TOLERANCE`` is no physical gap: wrong sign/offset."""
    with np.errstate(invalid="ignore"):
        neg = np.flatnonzero(dist < -NEGATIVE_DISTANCE_TOLERANCE)
    if not neg.size:
        return []
    i = int(neg[np.argmin(dist[neg])])
    return [
        Finding(
            "target",
            f"target_distance is negative ({neg.size} cycle(s), down to {dist[i]:.3f} m at "
            f"t = {t[i]:.3f} s); a gap to the lead object is never below 0 (a collision "
            "is 0 m)",
            t=float(t[int(neg[0])]),
            hint="check the sign and offset of the distance channel: map it with scale = "
            "-1.0 or the right offset in the channel map, or map another channel",
        )
    ]


def braking_onset(signals: Signals) -> tuple[float | None, str]:
    """The recording's own first braking: (time, what showed it) or (None, "")."""
    t, ct = signals.t, signals.cycle_time
    found: list[tuple[float, str]] = []
    pedal = signals.values.get("driver_brake")
    if pedal is not None:
        on = np.flatnonzero(pedal == 1)
        if on.size:
            found.append((float(t[on[0]]), "driver brake pedal"))
    n = max(1, round(SMOOTHING / ct))
    accel = signals.values.get("ego_accel")
    what = "in ego_accel"
    if accel is None or not np.isfinite(accel).any():
        v = signals.values.get("ego_speed")
        if v is not None and v.size > 2 * n:
            vs = smooth(v, n)
            accel = np.full(v.size, np.nan)
            accel[n:-n] = (vs[2 * n :] - vs[: -2 * n]) / (2 * n * ct)
            what = "in the ego_speed slope"
        else:
            accel = None
    if accel is not None:
        a = smooth(accel, n)
        hit = np.flatnonzero(a <= BRAKE_DETECT)
        if hit.size:
            k = int(hit[0])
            above = np.flatnonzero(~(a[:k] <= BRAKE_TRACE))
            start = int(above[-1]) + 1 if above.size else 0
            found.append((float(t[start]), f"deceleration onset {what}"))
    if not found:
        return None, ""
    return min(found)


def _nominal_speed(signals: Signals, settings: GateSettings) -> list[Finding]:
    nominal = settings.nominal_speed
    v = signals.values.get("ego_speed")
    if nominal is None or v is None or signals.t.size < 2:
        return []
    t = signals.t
    values = _with_target(signals)
    d = values.get("target_distance", np.full(t.size, np.nan))
    rv = values.get("target_rel_speed", np.full(t.size, np.nan))
    closing = np.isfinite(d) & np.isfinite(rv) & (rv < 0)
    ttc = np.full(t.size, np.inf)
    ttc[closing] = np.maximum(d[closing], 0.0) / -rv[closing]
    t0_idx = np.flatnonzero(ttc <= T0_TTC + _TOL)
    if not t0_idx.size:
        return [
            Finding(
                "nominal_speed",
                f"nominal_speed = {nominal:g} km/h not checked: the "
                f"recorded TTC never falls to {T0_TTC:g} s, so there is no T0",
                fatal=False,
            )
        ]
    i0 = int(t0_idx[0])
    t_brake, what = braking_onset(signals)
    t_end = t_brake if t_brake is not None else float(t[-1]) + signals.cycle_time
    end_text = (
        f"{t_end:.3f} s (first recorded braking: {what})"
        if t_brake is not None
        else "the end of the recording"
    )
    n = max(1, round(SMOOTHING / signals.cycle_time))
    kph = smooth(v, n) * 3.6
    lo = nominal + NOMINAL_BAND_KPH[0] - SPEED_TOLERANCE_KPH
    hi = nominal + NOMINAL_BAND_KPH[1] + SPEED_TOLERANCE_KPH
    window = (np.arange(t.size) >= i0) & (t < t_end - _TOL) & np.isfinite(kph)
    outside = np.flatnonzero(window & ((kph < lo - _TOL) | (kph > hi + _TOL)))
    if not outside.size:
        return []
    k = int(outside[0])
    return [
        Finding(
            "nominal_speed",
            f"ego speed {kph[k]:.3f} km/h is outside the Euro NCAP band {nominal:g} +0 … +1 km/h "
            f"(± {SPEED_TOLERANCE_KPH:g} km/h logger tolerance: {lo:.2f} … {hi:.2f} km/h) of the "
            f"sidecar's nominal_speed = {nominal:g} km/h; checked from T0 = {t[i0]:.3f} s (TTC "
            f"{T0_TTC:g} s) to {end_text}",
            t=float(t[k]),
            hint=_HINTS["nominal_speed"],
        )
    ]


def describe_settings(settings: GateSettings) -> str:
    """One line for reports: the gate's thresholds for this recording."""
    parts = [f"max_gap {settings.max_gap:g} s", f"min rate {MIN_RATE_HZ:g} Hz"]
    if settings.nominal_speed is not None:
        parts.append(f"nominal_speed {settings.nominal_speed:g} km/h")
    parts.append(f"target expected: {settings.expect_target or 'no'}")
    return ", ".join(parts)

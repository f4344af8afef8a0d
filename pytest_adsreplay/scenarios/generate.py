"""Scenario synthesis: Euro NCAP car-to-car rear and false-activation drives as MF4 files.

``generate(out_dir, suite)`` writes each scenario as ``ncap/<name>.mf4`` or
``false-activation/<name>.mf4`` (laid out like a logger's file, not with canonical
names) plus a ``<name>.toml`` sidecar whose
``[expect]`` bounds come from the closed forms of ``AEB_REFERENCE.md`` applied to the
reference function (:class:`~pytest_adsreplay.function.reference.TtcAeb`) with its defaults.

Vehicles follow piecewise-linear acceleration profiles evaluated exactly (cubic
position), so the kinematics in the file and in the expectations are the same closed
forms. The recorded ego never brakes for the target: the function decides on the
unperturbed approach, the recording stops before contact (gap ``END_GAP``) and the KPI
projection continues from there. Noise and timestamp jitter come from a generator seeded
by the scenario name, and the MF4 header times are pinned, so reruns are byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from pytest_adsreplay.errors import UsageError
from pytest_adsreplay.function.reference import TtcAeb
from pytest_adsreplay.mdf import ChannelData, GroupData, write_recording

__all__ = ["SCENARIOS", "SUITES", "Motion", "Scenario", "generate", "scenario"]

#: KPI projection defaults of SPEC §4 the expectations are derived for.
ACTUATOR_DELAY = 0.2  # s
BRAKE_JERK = 40.0  # m/s³
CYCLE = 0.01  # s, the reference function's cycle

#: Logger layout: bus group at 100 Hz, radar object list at 20 Hz.
BUS_PERIOD = 0.01
RADAR_PERIOD = 0.05
RADAR_OFFSET = 0.003  # s, radar's first sample after the bus's
BUS_JITTER = 2e-5  # s, uniform ±
RADAR_JITTER = 1e-3  # s, uniform ±
#: Measurement noise (1 sigma).
SPEED_NOISE_KPH = 0.05
ACCEL_NOISE = 0.05
DIST_NOISE = 0.05
VREL_NOISE = 0.05
LAT_NOISE = 0.02
#: Radar: Obj0 is the nearest object ahead with MIN_DX < DistX <= MAX_RANGE.
MIN_DX = 0.5
MAX_RANGE = 160.0

#: Steady approach before T0 (R152 asks >= 2 s), and the gap where a recording on a
#: collision course stops (no contact is ever recorded).
PRE_ROLL = 2.5
END_GAP = 1.0
#: NCAP scenarios start (T0) at this TTC on the closing speed.
TTC_T0 = 4.0
#: MF4 header/file-history time of every generated file (reproducible bytes).
RECORDING_EPOCH_NS = 1_735_689_600 * 10**9  # 2025-01-01T00:00:00Z

#: UN R152 (M1, stationary target): ego km/h -> max relative impact speed km/h.
R152_IMPACT_KPH = (
    (40.0, 0.0),
    (42.0, 10.0),
    (45.0, 15.0),
    (50.0, 25.0),
    (55.0, 30.0),
    (60.0, 35.0),
)


#: (time s, value) points, linearly interpolated and held outside (like ``np.interp``).
Knots = tuple[tuple[float, float], ...]


def kph(v: float) -> float:
    """km/h to m/s."""
    return v / 3.6


# ---------------------------------------------------------------------------- kinematics


@dataclass(frozen=True)
class Motion:
    """Longitudinal motion from t = 0 with a piecewise-linear acceleration profile.

    ``knots`` are (time, accel) points, linearly interpolated, constant outside (like
    ``np.interp``). A vehicle that brakes to a standstill stays there.
    """

    x0: float
    v0: float
    knots: Knots = ()

    def _segments(self) -> tuple[list[tuple[float, float, float, float, float]], float, float]:
        """(start, x, v, a, jerk) per segment, plus the stop time and position (inf if none)."""
        kt = [k[0] for k in self.knots] or [0.0]
        ka = [k[1] for k in self.knots] or [0.0]
        starts = [0.0, *sorted({t for t in kt if t > 0.0})]
        x, v = self.x0, self.v0
        segs: list[tuple[float, float, float, float, float]] = []
        if v <= 0.0 and float(np.interp(0.0, kt, ka)) <= 0.0 and max(ka) <= 0.0:
            return [(0.0, x, 0.0, 0.0, 0.0)], 0.0, x
        for i, ts in enumerate(starts):
            te = starts[i + 1] if i + 1 < len(starts) else math.inf
            a = float(np.interp(ts, kt, ka))
            j = (float(np.interp(te, kt, ka)) - a) / (te - ts) if math.isfinite(te) else 0.0
            segs.append((ts, x, v, a, j))
            tau = _first_stop(v, a, j, te - ts)
            if tau is not None:
                return segs, ts + tau, x + v * tau + a * tau**2 / 2 + j * tau**3 / 6
            dt = te - ts
            x, v = x + v * dt + a * dt**2 / 2 + j * dt**3 / 6, v + a * dt + j * dt**2 / 2
        return segs, math.inf, math.nan

    def at(self, t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Position, speed and acceleration at ``t`` (exact)."""
        t = np.asarray(t, dtype=np.float64)
        segs, t_stop, x_stop = self._segments()
        starts = np.array([s[0] for s in segs])
        idx = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(segs) - 1)
        ts, x, v, a, j = (np.array([s[k] for s in segs])[idx] for k in range(5))
        tau = t - ts
        pos = x + v * tau + a * tau**2 / 2 + j * tau**3 / 6
        vel = v + a * tau + j * tau**2 / 2
        acc = a + j * tau
        stopped = t >= t_stop
        pos = np.where(stopped, x_stop, pos)
        vel = np.where(stopped, 0.0, vel)
        acc = np.where(stopped, 0.0, acc)
        return pos, vel, acc

    def stop_time(self) -> float:
        """When the vehicle comes to a standstill (inf if it never does)."""
        return self._segments()[1]


def _first_stop(v: float, a: float, j: float, length: float) -> float | None:
    """Smallest tau in (0, length] where v + a·tau + j·tau²/2 reaches 0 from above."""
    if v <= 0.0:
        return 0.0 if a <= 0.0 and j <= 0.0 else None
    roots: list[float] = []
    if j == 0.0:
        if a < 0.0:
            roots = [-v / a]
    else:
        disc = a * a - 2.0 * j * v
        if disc >= 0.0:
            r = math.sqrt(disc)
            roots = sorted(((-a - r) / j, (-a + r) / j))
    for tau in roots:
        if 0.0 < tau <= length:
            return tau
    return None


@dataclass(frozen=True)
class Target:
    """An object the radar may report: its motion and lateral offset knots (m, + = left)."""

    motion: Motion
    lateral: Knots = ((0.0, 0.0),)

    def lat(self, t: np.ndarray) -> np.ndarray:
        return np.interp(t, [k[0] for k in self.lateral], [k[1] for k in self.lateral])


# ----------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    """One drive: what happens, how long it is recorded and what the reference must do."""

    name: str  # POSIX path below OUT_DIR without suffix, e.g. "ncap/CCRs_40kph"
    kind: str  # sidecar `scenario`
    tags: tuple[str, ...]
    description: str
    ego: Motion
    targets: tuple[Target, ...]
    duration: float
    nominal_speed: float | None = None  # km/h
    t0: float | None = None  # functional start (NCAP T0)
    params: dict[str, float] = field(default_factory=dict)
    expect: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        """Noise seed from the name (stable across runs and machines, unlike ``hash``)."""
        digest = hashlib.sha256(self.name.encode()).digest()
        return int.from_bytes(digest[:8], "little") >> 1  # fits a TOML (signed 64-bit) int


def _end_of_approach(ego: Motion, lead: Motion, t_from: float, t_max: float) -> float:
    """Last time (1 ms grid) before the true gap falls below ``END_GAP``."""
    t = np.arange(math.floor(t_from * 1000), math.ceil(t_max * 1000) + 1) / 1000.0
    gap = lead.at(t)[0] - ego.at(t)[0]
    below = np.flatnonzero(gap < END_GAP)
    if not len(below):
        return float(t[-1])
    return float(t[max(below[0] - 1, 0)])


def ccrs(v_kph: float) -> Scenario:
    """CCRs: ego at ``v_kph`` towards a stationary target, TTC 4 s at T0."""
    v0 = kph(v_kph)
    ego = Motion(0.0, v0)
    lead = Motion((TTC_T0 + PRE_ROLL) * v0, 0.0)
    end = _end_of_approach(ego, lead, PRE_ROLL, PRE_ROLL + TTC_T0)
    return Scenario(
        name=f"ncap/CCRs_{v_kph:g}kph",
        kind="CCRs",
        tags=("ncap", "ccrs"),
        description=(
            f"Euro NCAP CCRs: ego {v_kph:g} km/h towards a stationary target, 100 % overlap; "
            f"T0 = {PRE_ROLL:g} s at TTC {TTC_T0:g} s (gap {TTC_T0 * v0:.1f} m), recording "
            f"ends at a {END_GAP:g} m gap"
        ),
        ego=ego,
        targets=(Target(lead),),
        duration=end,
        nominal_speed=float(v_kph),
        t0=PRE_ROLL,
        params={"ego_speed": float(v_kph), "target_speed": 0.0, "gap_t0": TTC_T0 * v0},
    )


def ccrm(v_kph: float, target_kph: float = 20.0) -> Scenario:
    """CCRm: ego at ``v_kph`` behind a target at constant ``target_kph``, TTC 4 s at T0."""
    v0, vt = kph(v_kph), kph(target_kph)
    ego = Motion(0.0, v0)
    lead = Motion((TTC_T0 + PRE_ROLL) * (v0 - vt), vt)
    end = _end_of_approach(ego, lead, PRE_ROLL, PRE_ROLL + TTC_T0)
    return Scenario(
        name=f"ncap/CCRm_{v_kph:g}kph",
        kind="CCRm",
        tags=("ncap", "ccrm"),
        description=(
            f"Euro NCAP CCRm: ego {v_kph:g} km/h behind a target at {target_kph:g} km/h; "
            f"T0 = {PRE_ROLL:g} s at TTC {TTC_T0:g} s on the closing speed (gap "
            f"{TTC_T0 * (v0 - vt):.1f} m), recording ends at a {END_GAP:g} m gap"
        ),
        ego=ego,
        targets=(Target(lead),),
        duration=end,
        nominal_speed=float(v_kph),
        t0=PRE_ROLL,
        params={
            "ego_speed": float(v_kph),
            "target_speed": float(target_kph),
            "gap_t0": TTC_T0 * (v0 - vt),
        },
    )


#: Target deceleration ramp of CCRb (Euro NCAP: full deceleration within 1 s).
CCRB_RAMP = 0.5


def ccrb(decel: float, gap: float, v_kph: float = 50.0) -> Scenario:
    """CCRb: both at ``v_kph``, ``gap`` m apart; the target brakes at ``decel`` m/s² at T0."""
    v0 = kph(v_kph)
    ego = Motion(0.0, v0)
    knots = ((PRE_ROLL, 0.0), (PRE_ROLL + CCRB_RAMP, -decel))
    lead = Motion(gap, v0, knots)
    end = _end_of_approach(ego, lead, PRE_ROLL, PRE_ROLL + 30.0)
    return Scenario(
        name=f"ncap/CCRb_d{decel:g}_g{gap:g}m",
        kind="CCRb",
        tags=("ncap", "ccrb"),
        description=(
            f"Euro NCAP CCRb: ego and target at {v_kph:g} km/h, {gap:g} m apart; at T0 = "
            f"{PRE_ROLL:g} s the target brakes, reaching -{decel:g} m/s^2 within "
            f"{CCRB_RAMP:g} s; recording ends at a {END_GAP:g} m gap"
        ),
        ego=ego,
        targets=(Target(lead),),
        duration=end,
        nominal_speed=float(v_kph),
        t0=PRE_ROLL,
        params={
            "ego_speed": float(v_kph),
            "target_speed": float(v_kph),
            "gap_t0": gap,
            "target_decel": decel,
        },
    )


def _accel_to(t_start: float, accel: float, dv: float, ramp: float = 0.5) -> Knots:
    """Knots that change speed by ``dv`` with ``accel`` (ramped in and out over ``ramp``)."""
    hold = abs(dv) / abs(accel) - ramp
    return (
        (t_start, 0.0),
        (t_start + ramp, accel),
        (t_start + ramp + hold, accel),
        (t_start + 2 * ramp + hold, 0.0),
    )


def _false_activation(
    name: str,
    tag: str,
    description: str,
    ego: Motion,
    targets: Sequence[Target],
    duration: float,
    v_kph: float,
) -> Scenario:
    return Scenario(
        name=f"false-activation/{name}",
        kind="false-activation",
        tags=("false-activation", tag),
        description=description,
        ego=ego,
        targets=tuple(targets),
        duration=duration,
        nominal_speed=v_kph,
    )


def fa_no_target() -> Scenario:
    """Free road, gentle speed changes, the radar reports no object."""
    knots = (*_accel_to(5.0, 0.3, 1.0), *_accel_to(12.0, -0.3, 1.0))
    return _false_activation(
        "no_target",
        "no-target",
        "ego around 60 km/h on a free road with gentle speed changes; no radar object",
        Motion(0.0, kph(60.0), knots),
        (),
        20.0,
        60.0,
    )


def fa_lead_accelerating() -> Scenario:
    """A slightly slower lead accelerates away and leaves the radar's range."""
    lead = Motion(30.0, kph(45.0), _accel_to(3.0, 1.5, kph(45.0)))
    return _false_activation(
        "lead_accelerating_away",
        "lead-accelerating",
        "ego 50 km/h, lead 30 m ahead at 45 km/h accelerates at 1.5 m/s^2 to 90 km/h "
        "and pulls away",
        Motion(0.0, kph(50.0)),
        (Target(lead),),
        20.0,
        50.0,
    )


def fa_adjacent_lane() -> Scenario:
    """Overtaking a slower car in the adjacent lane, 3.5 m to the right."""
    other = Target(Motion(70.0, kph(50.0)), ((0.0, -3.5),))
    return _false_activation(
        "adjacent_lane_slower_car",
        "adjacent-lane",
        "ego 80 km/h passes a car at 50 km/h in the adjacent lane, 3.5 m to the right; "
        "the radar loses it once alongside",
        Motion(0.0, kph(80.0)),
        (other,),
        15.0,
        80.0,
    )


def fa_following() -> Scenario:
    """Steady following at a 2 s time gap; both vary their speed a little, the ego later."""
    v0 = kph(70.0)
    lead_knots = (*_accel_to(4.0, 0.4, 0.8, 1.0), *_accel_to(14.0, -0.4, 0.8, 1.0))
    ego_knots = tuple((t + 1.0, a) for t, a in lead_knots)
    lead = Motion(2.0 * v0, v0, lead_knots)
    return _false_activation(
        "steady_following_2s",
        "following",
        "ego follows a lead at 70 km/h with a 2 s time gap; both change speed gently",
        Motion(0.0, v0, ego_knots),
        (Target(lead),),
        30.0,
        70.0,
    )


def fa_parked_cars() -> Scenario:
    """Driving between two parked cars 2 m left and 2 m right of the path."""
    left = Target(Motion(80.0, 0.0), ((0.0, 2.0),))
    right = Target(Motion(90.0, 0.0), ((0.0, -2.0),))
    return _false_activation(
        "parked_cars_passing",
        "parked-cars",
        "ego 50 km/h passes between two parked cars at +2 m (80 m ahead) and -2 m (90 m "
        "ahead); Obj0 is the nearest of them until it is alongside",
        Motion(0.0, kph(50.0)),
        (left, right),
        10.0,
        50.0,
    )


def _gentle_stop_knots(t_start: float, decel: float, ramp: float = 1.0) -> Knots:
    return ((t_start, 0.0), (t_start + ramp, -decel))


def fa_lead_stops() -> Scenario:
    """The lead brakes gently to a stop; the ego driver follows suit and stops 15 m behind."""
    v0, gap0, final_gap = kph(50.0), 35.0, 15.0
    lead = Motion(gap0, v0, _gentle_stop_knots(3.0, 1.5))
    lead_stop_x = lead.at(lead.stop_time() + 1.0)[0].item()

    def stop_x(decel: float) -> float:
        ego = Motion(0.0, v0, _gentle_stop_knots(5.0, decel))
        return float(ego.at(ego.stop_time() + 1.0)[0])

    lo, hi = 0.3, 5.0  # bisection on the ego's deceleration (stop point falls with it)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if stop_x(mid) > lead_stop_x - final_gap else (lo, mid)
    decel = round(hi, 4)
    ego = Motion(0.0, v0, _gentle_stop_knots(5.0, decel))
    duration = math.ceil(max(ego.stop_time(), lead.stop_time())) + 5.0
    return _false_activation(
        "lead_stops_gently",
        "lead-stops",
        f"ego and lead at 50 km/h, {gap0:g} m apart; the lead brakes gently (1.5 m/s^2) "
        f"to a stop, the ego driver brakes ({decel:.2f} m/s^2) and stops about "
        f"{final_gap:g} m behind it; both then stand",
        ego,
        (Target(lead),),
        duration,
        50.0,
    )


def fa_cut_in() -> Scenario:
    """A faster car overtakes and cuts in 8 m ahead, then pulls away."""
    v_ego, v_other = kph(50.0), kph(65.0)
    t_cut = (20.0 + 8.0) / (v_other - v_ego)
    other = Target(Motion(-20.0, v_other), ((t_cut, 3.5), (t_cut + 3.0, 0.0)))
    return _false_activation(
        "faster_car_cuts_in",
        "cut-in",
        "ego 50 km/h is overtaken by a car at 65 km/h that cuts in 8 m ahead from the "
        "left lane and pulls away",
        Motion(0.0, v_ego),
        (other,),
        20.0,
        50.0,
    )


CCRS_SPEEDS = tuple(range(10, 85, 5))
CCRM_SPEEDS = tuple(range(30, 85, 5))
CCRB_CASES = ((2.0, 12.0), (2.0, 40.0), (6.0, 12.0), (6.0, 40.0))

_BUILDERS: dict[str, Callable[[], Scenario]] = {}
for _v in CCRS_SPEEDS:
    _BUILDERS[f"ncap/CCRs_{_v}kph"] = partial(ccrs, _v)
for _v in CCRM_SPEEDS:
    _BUILDERS[f"ncap/CCRm_{_v}kph"] = partial(ccrm, _v)
for _d, _g in CCRB_CASES:
    _BUILDERS[f"ncap/CCRb_d{_d:g}_g{_g:g}m"] = partial(ccrb, _d, _g)
_BUILDERS.update(
    {
        "false-activation/no_target": fa_no_target,
        "false-activation/lead_accelerating_away": fa_lead_accelerating,
        "false-activation/adjacent_lane_slower_car": fa_adjacent_lane,
        "false-activation/steady_following_2s": fa_following,
        "false-activation/parked_cars_passing": fa_parked_cars,
        "false-activation/lead_stops_gently": fa_lead_stops,
        "false-activation/faster_car_cuts_in": fa_cut_in,
    }
)

#: Every scenario name (``<folder>/<file stem>``), sorted.
SCENARIOS: tuple[str, ...] = tuple(sorted(_BUILDERS))

#: Suites for ``adsreplay generate --suite``; ``bundled`` is what ``recordings/`` holds.
SUITES: dict[str, tuple[str, ...]] = {
    "ncap": tuple(n for n in SCENARIOS if n.startswith("ncap/")),
    "false-activation": tuple(n for n in SCENARIOS if n.startswith("false-activation/")),
    "all": SCENARIOS,
    "bundled": tuple(
        sorted(
            (
                *(f"ncap/CCRs_{v}kph" for v in (20, 40, 50, 60, 80)),
                *(f"ncap/CCRm_{v}kph" for v in (50, 70)),
                "ncap/CCRb_d6_g12m",
                "ncap/CCRb_d2_g40m",
                *(n for n in SCENARIOS if n.startswith("false-activation/")),
            )
        )
    ),
}


def scenario(name: str) -> Scenario:
    """The scenario called ``name`` (e.g. ``"ncap/CCRs_40kph"``) with its expectations."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise UsageError(
            f"unknown scenario {name!r}", hint=f"known: {', '.join(SCENARIOS)}"
        ) from None
    sc = builder()
    if sc.name != name:
        raise RuntimeError(f"scenario builder for {name!r} made {sc.name!r}")
    expect = expectations(sc)
    tags = sc.tags
    if sc.kind != "false-activation":
        tags = (*tags, "avoidance" if expect.get("collision") is False else "mitigation")
    return replace(sc, tags=tags, expect=expect)


# -------------------------------------------------------------------------- expectations


def _truth(sc: Scenario, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free gap and closing speed (ego minus lead) of the first target at ``t``."""
    xe, ve, _ = sc.ego.at(t)
    xl, vl, _ = sc.targets[0].motion.at(t)
    return xl - xe, ve - vl


def _ttc(sc: Scenario, t: np.ndarray) -> np.ndarray:
    gap, closing = _truth(sc, t)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(closing > 0, gap / closing, np.inf)


def _crossing(sc: Scenario, threshold: float) -> float:
    """First time the true TTC reaches ``threshold`` (1 ms scan, then bisection)."""
    t = np.arange(0, math.ceil(sc.duration * 1000) + 1) / 1000.0
    hit = np.flatnonzero(_ttc(sc, t) <= threshold)
    if not len(hit):
        return math.inf
    lo, hi = float(t[max(hit[0] - 1, 0)]), float(t[hit[0]])
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if _ttc(sc, np.array([mid]))[0] <= threshold else (mid, hi)
    return hi


def _ttc_sigma(sc: Scenario, t: float) -> tuple[float, float]:
    """1-sigma TTC noise from distance and rel-speed noise, and |dTTC/dt|, at ``t``."""
    gap, closing = (float(x[0]) for x in _truth(sc, np.array([t])))
    ttc = gap / closing
    sigma = ttc * math.hypot(DIST_NOISE / gap, VREL_NOISE / closing)
    rate = abs(float(np.diff(_ttc(sc, np.array([t - 0.005, t + 0.005])))[0]) / 0.01)
    return sigma, rate


def _outcome(sc: Scenario, t_request: float, decel: float) -> tuple[float, float]:
    """(impact speed, min gap) if the ego requests ``decel`` alone from ``t_request``.

    Dead time and jerk-limited ramp as in the KPI projection; the lead follows its own
    (true, continued) motion. Ignoring the partial stage makes this conservative.
    """
    onset = t_request + ACTUATOR_DELAY
    ramp = decel / BRAKE_JERK
    x_req, v_req, _ = (float(a) for a in sc.ego.at(t_request))
    ego = Motion(x_req, v_req, ((onset - t_request, 0.0), (onset - t_request + ramp, -decel)))
    horizon = ego.stop_time() + 1.0
    tau = np.arange(0, math.ceil(horizon * 10_000) + 1) / 10_000.0
    xe, ve, _ = ego.at(tau)
    xl, vl, _ = sc.targets[0].motion.at(tau + t_request)
    gap = xl - xe
    contact = np.flatnonzero(gap <= 0.0)
    if len(contact):
        i = contact[0]
        return float(ve[i] - vl[i]), 0.0
    return 0.0, float(gap.min())


def _r152_limit(v_kph: float) -> float | None:
    """R152 max relative impact speed (km/h) for a stationary target, None above 60 km/h."""
    if v_kph > R152_IMPACT_KPH[-1][0]:
        return None
    for speed, limit in R152_IMPACT_KPH:
        if v_kph <= speed:
            return limit
    return None  # pragma: no cover


def _floor(x: float, step: float = 0.01) -> float:
    return round(math.floor(x / step + 1e-9) * step, 3)


def _ceil(x: float, step: float = 0.01) -> float:
    return round(math.ceil(x / step - 1e-9) * step, 3)


def expectations(sc: Scenario, fn: TtcAeb | None = None) -> dict[str, Any]:
    """``[expect]`` bounds for ``sc`` and the reference function (defaults), from closed forms.

    * TTC windows: the true TTC(t) of the scenario's kinematics gives the nominal time
      each threshold is crossed; the warning comes ``confirm_time`` later, braking at
      the partial threshold (or at the warning, whichever is later). The window is the
      nominal TTC, minus one cycle of TTC drop and 4 sigma of TTC noise (distance and
      rel-speed noise), plus a 0.01 s float margin.
    * Outcome: the full stage alone (partial stage ignored: conservative), requested one
      cycle and 3 sigma late, with 0.2 s dead time and a 40 m/s³ ramp, against the lead's
      true trajectory: ``collision = false`` when that avoids, else an impact-speed bound;
      R152's table caps the CCRs impact speed up to 60 km/h.
    """
    if sc.kind == "false-activation":
        return {"fcw": False, "brake": False}
    fn = fn or TtcAeb()
    t_fcw_cross = _crossing(sc, fn.fcw_ttc)
    t_fcw = t_fcw_cross + fn.confirm_time
    t_brake = max(_crossing(sc, fn.partial_ttc), t_fcw)
    t_full = max(_crossing(sc, fn.full_ttc), t_fcw)

    def window(t: float, threshold: float | None) -> list[float]:
        nominal = float(_ttc(sc, np.array([t]))[0])
        sigma, rate = _ttc_sigma(sc, t)
        lo = nominal - rate * CYCLE - 4 * sigma - 0.01
        hi = (threshold if threshold is not None else nominal + 4 * sigma) + 0.01
        return [_floor(lo), _ceil(hi)]

    crossed_partial = t_brake > t_fcw
    expect: dict[str, Any] = {
        "fcw": True,
        "brake": True,
        "ttc_at_fcw": window(t_fcw, None),
        "ttc_at_brake": window(t_brake, fn.partial_ttc if crossed_partial else None),
    }
    lead_time = t_brake - t_fcw
    target_brakes = any(a < 0 for _, a in sc.targets[0].motion.knots)
    if not target_brakes:
        expect["fcw_lead_time"] = {"min": 0.8}
    elif lead_time > 0.2:
        expect["fcw_lead_time"] = {"min": _floor(lead_time - 0.15, 0.05)}
    expect["max_decel"] = {"min": 5.0}

    sigma_full, rate_full = _ttc_sigma(sc, t_full)
    late = CYCLE + (3 * sigma_full / rate_full if rate_full > 0 else 0.0)
    impact, min_gap = _outcome(sc, t_full + late, fn.full_decel)
    if impact == 0.0:
        expect["collision"] = False
        if min_gap >= 0.2:
            expect["min_distance"] = {"min": _floor(min_gap - 0.1, 0.1)}
    caps = [impact + 0.1] if impact > 0.0 else []
    limit = _r152_limit(sc.nominal_speed or 0.0) if sc.kind == "CCRs" else None
    if limit is not None:
        caps.append(kph(limit))
    if caps:
        expect["impact_speed"] = {"max": _ceil(min(caps), 0.1)}
    return expect


# ------------------------------------------------------------------------------ writing


def synthesize(sc: Scenario) -> list[GroupData]:
    """The logger groups of ``sc``: "Vehicle" at 100 Hz and "Radar" (Obj0) at 20 Hz."""
    rng = np.random.default_rng(sc.seed)
    n_radar = math.floor((sc.duration - RADAR_OFFSET) / RADAR_PERIOD + 1e-9) + 1
    t_radar = RADAR_OFFSET + np.arange(n_radar) * RADAR_PERIOD
    t_radar = t_radar + rng.uniform(-RADAR_JITTER, RADAR_JITTER, n_radar)
    t_radar = t_radar[t_radar <= sc.duration]
    # The bus stops with the radar: no cycle at the end without a target measurement.
    n_bus = math.floor(sc.duration / BUS_PERIOD + 1e-9) + 1
    t_bus = np.arange(n_bus) * BUS_PERIOD + rng.uniform(-BUS_JITTER, BUS_JITTER, n_bus)
    t_bus[0] = 0.0
    t_bus = t_bus[t_bus <= t_radar[-1]]

    _, v_ego, a_ego = sc.ego.at(t_bus)
    speed = v_ego * 3.6 + rng.normal(0.0, SPEED_NOISE_KPH, len(t_bus))
    speed = np.maximum(speed, 0.0) * (v_ego > 0)
    accel = a_ego + rng.normal(0.0, ACCEL_NOISE, len(t_bus))
    pedal = ((a_ego <= -0.5) | (v_ego <= 0.0)).astype(np.uint8)

    x_ego, v_ego_r, _ = sc.ego.at(t_radar)
    dist = np.zeros(len(t_radar))
    vrel = np.zeros(len(t_radar))
    lat = np.zeros(len(t_radar))
    valid = np.zeros(len(t_radar), dtype=np.uint8)
    best = np.full(len(t_radar), np.inf)
    for target in sc.targets:
        x, v, _ = target.motion.at(t_radar)
        dx = x - x_ego
        take = (dx > MIN_DX) & (dx <= MAX_RANGE) & (dx < best)
        best = np.where(take, dx, best)
        dist = np.where(take, dx, dist)
        vrel = np.where(take, v - v_ego_r, vrel)
        lat = np.where(take, target.lat(t_radar), lat)
        valid |= take.astype(np.uint8)
    m = valid.astype(bool)
    n_r = len(t_radar)
    dist = np.where(m, dist + rng.normal(0.0, DIST_NOISE, n_r), 0.0)
    vrel = np.where(m, vrel + rng.normal(0.0, VREL_NOISE, n_r), 0.0)
    lat = np.where(m, lat + rng.normal(0.0, LAT_NOISE, n_r), 0.0)

    return [
        GroupData(
            "Vehicle",
            t_bus,
            [
                ChannelData("VehSpd", speed, "km/h", "ego vehicle speed"),
                ChannelData("VehAccX", accel, "m/s^2", "ego longitudinal acceleration"),
                ChannelData("DrvBrkPdl", pedal, "", "driver brake pedal pressed (0/1)"),
            ],
        ),
        GroupData(
            "Radar",
            t_radar,
            [
                ChannelData("Radar.Obj0.DistX", dist, "m", "longitudinal distance to object 0"),
                ChannelData(
                    "Radar.Obj0.VrelX",
                    vrel,
                    "m/s",
                    "relative longitudinal speed of object 0 (object minus ego)",
                ),
                ChannelData("Radar.Obj0.DistY", lat, "m", "lateral offset of object 0 (left +)"),
                ChannelData("Radar.Obj0.Valid", valid, "", "object 0 present (0/1)"),
            ],
        ),
    ]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(round(value, 3))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=True)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def sidecar_text(sc: Scenario) -> str:
    """The sidecar TOML of ``sc`` (SPEC §5), written by hand in a fixed key order."""
    lines = [
        "# Generated by `adsreplay generate`; bounds are for pytest_adsreplay.reference:TtcAeb",
        "# with its default parameters and the default KPI settings (0.2 s, 40 m/s^3).",
        f"scenario = {_toml_value(sc.kind)}",
        f"tags = {_toml_value(list(sc.tags))}",
        f"description = {_toml_value(sc.description)}",
    ]
    if sc.nominal_speed is not None:
        lines.append(f"nominal_speed = {_toml_value(sc.nominal_speed)}")
    lines += ["", "[generator]", f"seed = {sc.seed}"]
    if sc.t0 is not None:
        lines.append(f"t0 = {_toml_value(sc.t0)}")
    lines += [f"{k} = {_toml_value(v)}" for k, v in sc.params.items()]
    lines += ["", "[expect]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in sc.expect.items()]
    return "\n".join(lines) + "\n"


def _pin_header_times(path: Path) -> None:
    """Overwrite the MF4 header and file-history times with ``RECORDING_EPOCH_NS`` (UTC).

    asammdf stamps both with the wall clock; pinning them makes reruns byte-identical.
    Layout per ASAM MDF 4.1: HD at 64 (time at +72 after 6 links), FH time at +40.
    """
    data = bytearray(path.read_bytes())

    def pin(offset: int) -> None:
        struct.pack_into("<Q2hB", data, offset, RECORDING_EPOCH_NS, 0, 0, 2)  # offsets valid

    if data[64:68] != b"##HD" or struct.unpack_from("<Q", data, 80)[0] != 6:
        raise RuntimeError(f"{path}: unexpected MF4 header layout, cannot pin its time")
    pin(64 + 24 + 6 * 8)
    fh = struct.unpack_from("<Q", data, 64 + 24 + 8)[0]
    while fh:
        if data[fh : fh + 4] != b"##FH":
            raise RuntimeError(f"{path}: unexpected MF4 file-history block at {fh:#x}")
        pin(fh + 40)
        fh = struct.unpack_from("<Q", data, fh + 24)[0]
    path.write_bytes(bytes(data))


def write_scenario(sc: Scenario, out_dir: Path) -> Path:
    """Write ``sc`` as ``OUT_DIR/<name>.mf4`` plus its sidecar; return the MF4 path."""
    path = Path(out_dir) / f"{sc.name}.mf4"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_recording(
        path, synthesize(sc), header_comment=f"adsreplay generate: {sc.name}. {sc.description}"
    )
    _pin_header_times(path)
    path.with_suffix(".toml").write_text(sidecar_text(sc), encoding="utf-8", newline="\n")
    return path


def generate(out_dir: str | Path, suite: str = "all") -> list[Path]:
    """Write the scenarios of ``suite`` (see ``SUITES``) below ``out_dir``; MF4 paths, sorted."""
    try:
        names = SUITES[suite]
    except KeyError:
        raise UsageError(
            f"unknown suite {suite!r}", hint=f"choose one of: {', '.join(SUITES)}"
        ) from None
    out = Path(out_dir)
    return sorted(write_scenario(scenario(name), out) for name in names)

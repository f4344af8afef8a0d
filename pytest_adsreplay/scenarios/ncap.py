"""Euro NCAP car-to-car rear scenarios (CCRs, CCRm, CCRb) and the reference's bounds on them.

Each NCAP drive has a steady approach of ``PRE_ROLL`` seconds before T0 and stops
recording at a true gap of ``END_GAP`` (no contact is ever recorded): the recorded ego
never brakes, the function decides on the unperturbed approach and the KPI projection
works out the outcome. :func:`expectations` derives the ``[expect]`` bounds for the
reference function (:class:`~pytest_adsreplay.function.reference.TtcAeb`) from the
closed forms written up in ``docs/physics.md``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pytest_adsreplay.errors import UsageError
from pytest_adsreplay.function.reference import TtcAeb
from pytest_adsreplay.scenarios.synthesis import (
    DIST_NOISE,
    LAT_NOISE,
    VREL_NOISE,
    Motion,
    Scenario,
    Target,
    kph,
)

__all__ = ["ccrb", "ccrm", "ccrs", "expectations"]

#: KPI projection defaults (actuator dead time, jerk limit) the expectations are derived for.
ACTUATOR_DELAY = 0.2  # s
BRAKE_JERK = 40.0  # m/s³
CYCLE = 0.01  # s, the reference function's cycle

#: Steady approach before T0 (R152 asks >= 2 s), and the gap where a recording on a
#: collision course stops (no contact is ever recorded).
PRE_ROLL = 2.5
END_GAP = 1.0
#: NCAP scenarios start (T0) at this TTC on the closing speed.
TTC_T0 = 4.0
#: Target deceleration ramp of CCRb (Euro NCAP: full deceleration within 1 s).
CCRB_RAMP = 0.5
#: CCRm's target speed (km/h), and the least closing speed it is generated for: slower,
#: the recording reaches its end gap before the TTC falls to a braking threshold.
CCRM_TARGET_KPH = 20.0
CCRM_MIN_CLOSING_KPH = 5.0
#: Vehicle width for the overlap: at P % overlap the target's centre line is
#: (1 - |P|/100) * WIDTH off the ego's (to the right for P > 0, to the left for P < 0).
WIDTH = 1.8

#: UN R152 (M1, stationary target): ego km/h -> max relative impact speed km/h.
R152_IMPACT_KPH = (
    (40.0, 0.0),
    (42.0, 10.0),
    (45.0, 15.0),
    (50.0, 25.0),
    (55.0, 30.0),
    (60.0, 35.0),
)


def lateral_offset(overlap: float) -> float:
    """Target lateral position (m, left +) at ``overlap`` percent (100 = centred)."""
    offset = (1.0 - abs(overlap) / 100.0) * WIDTH
    return -offset if overlap > 0 else offset


def _suffix(overlap: float) -> str:
    return "" if overlap == 100.0 else f"_o{overlap:g}"


def _overlap_text(overlap: float) -> str:
    return f", {overlap:g} % overlap (target {lateral_offset(overlap):+.2f} m lateral)"


def _target(motion: Motion, overlap: float) -> Target:
    if overlap == 100.0:
        return Target(motion)
    return Target(motion, ((0.0, lateral_offset(overlap)),))


def _with_overlap(params: dict[str, float], overlap: float) -> dict[str, float]:
    return params if overlap == 100.0 else {**params, "overlap": float(overlap)}


def _end_of_approach(ego: Motion, lead: Motion, t_from: float, t_max: float) -> float:
    """Last time (1 ms grid) before the true gap falls below ``END_GAP``."""
    t = np.arange(math.floor(t_from * 1000), math.ceil(t_max * 1000) + 1) / 1000.0
    gap = lead.at(t)[0] - ego.at(t)[0]
    below = np.flatnonzero(gap < END_GAP)
    if not len(below):
        return float(t[-1])
    return float(t[max(below[0] - 1, 0)])


def ccrs(v_kph: float, overlap: float = 100.0) -> Scenario:
    """CCRs: ego at ``v_kph`` towards a stationary target, TTC 4 s at T0."""
    v0 = kph(v_kph)
    ego = Motion(0.0, v0)
    lead = Motion((TTC_T0 + PRE_ROLL) * v0, 0.0)
    end = _end_of_approach(ego, lead, PRE_ROLL, PRE_ROLL + TTC_T0)
    where = " 100 % overlap" if overlap == 100.0 else _overlap_text(overlap)[1:]
    return Scenario(
        name=f"ncap/CCRs_{v_kph:g}kph{_suffix(overlap)}",
        kind="CCRs",
        tags=("ncap", "ccrs"),
        description=(
            f"Euro NCAP CCRs: ego {v_kph:g} km/h towards a stationary target,{where}; "
            f"T0 = {PRE_ROLL:g} s at TTC {TTC_T0:g} s (gap {TTC_T0 * v0:.1f} m), recording "
            f"ends at a {END_GAP:g} m gap"
        ),
        ego=ego,
        targets=(_target(lead, overlap),),
        duration=end,
        nominal_speed=float(v_kph),
        t0=PRE_ROLL,
        params=_with_overlap(
            {"ego_speed": float(v_kph), "target_speed": 0.0, "gap_t0": TTC_T0 * v0}, overlap
        ),
    )


def ccrm(v_kph: float, target_kph: float = CCRM_TARGET_KPH, overlap: float = 100.0) -> Scenario:
    """CCRm: ego at ``v_kph`` behind a target at constant ``target_kph``, TTC 4 s at T0."""
    v0, vt = kph(v_kph), kph(target_kph)
    ego = Motion(0.0, v0)
    lead = Motion((TTC_T0 + PRE_ROLL) * (v0 - vt), vt)
    end = _end_of_approach(ego, lead, PRE_ROLL, PRE_ROLL + TTC_T0)
    where = "" if overlap == 100.0 else _overlap_text(overlap)
    return Scenario(
        name=f"ncap/CCRm_{v_kph:g}kph{_suffix(overlap)}",
        kind="CCRm",
        tags=("ncap", "ccrm"),
        description=(
            f"Euro NCAP CCRm: ego {v_kph:g} km/h behind a target at {target_kph:g} km/h{where}; "
            f"T0 = {PRE_ROLL:g} s at TTC {TTC_T0:g} s on the closing speed (gap "
            f"{TTC_T0 * (v0 - vt):.1f} m), recording ends at a {END_GAP:g} m gap"
        ),
        ego=ego,
        targets=(_target(lead, overlap),),
        duration=end,
        nominal_speed=float(v_kph),
        t0=PRE_ROLL,
        params=_with_overlap(
            {
                "ego_speed": float(v_kph),
                "target_speed": float(target_kph),
                "gap_t0": TTC_T0 * (v0 - vt),
            },
            overlap,
        ),
    )


def ccrb(decel: float, gap: float, v_kph: float = 50.0, overlap: float = 100.0) -> Scenario:
    """CCRb: both at ``v_kph``, ``gap`` m apart; the target brakes at ``decel`` m/s² at T0."""
    v0 = kph(v_kph)
    ego = Motion(0.0, v0)
    knots = ((PRE_ROLL, 0.0), (PRE_ROLL + CCRB_RAMP, -decel))
    lead = Motion(gap, v0, knots)
    end = _end_of_approach(ego, lead, PRE_ROLL, PRE_ROLL + 30.0)
    where = "" if overlap == 100.0 else _overlap_text(overlap)
    return Scenario(
        name=f"ncap/CCRb_d{decel:g}_g{gap:g}m{_suffix(overlap)}",
        kind="CCRb",
        tags=("ncap", "ccrb"),
        description=(
            f"Euro NCAP CCRb: ego and target at {v_kph:g} km/h, {gap:g} m apart{where}; at "
            f"T0 = {PRE_ROLL:g} s the target brakes, reaching -{decel:g} m/s^2 within "
            f"{CCRB_RAMP:g} s; recording ends at a {END_GAP:g} m gap"
        ),
        ego=ego,
        targets=(_target(lead, overlap),),
        duration=end,
        nominal_speed=float(v_kph),
        t0=PRE_ROLL,
        params=_with_overlap(
            {
                "ego_speed": float(v_kph),
                "target_speed": float(v_kph),
                "gap_t0": gap,
                "target_decel": decel,
            },
            overlap,
        ),
    )


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


def sees_target(sc: Scenario, fn: TtcAeb) -> bool | None:
    """Whether ``fn``'s lateral gate keeps the target in path despite 4 sigma of lateral
    noise: True, False (never in path), or None (too close to the gate to tell)."""
    offset = abs(float(sc.targets[0].lat(np.array([0.0]))[0]))
    if offset + 4 * LAT_NOISE <= fn.max_lateral:
        return True
    if offset - 4 * LAT_NOISE > fn.max_lateral:
        return False
    return None


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
    * A target the reference's lateral gate does not (reliably) keep in path gets no
      bounds: the reference would not brake for it, and that is no behaviour to require.
    """
    if sc.kind == "false-activation":
        return {"fcw": False, "brake": False}
    fn = fn or TtcAeb()
    if not sees_target(sc, fn):
        return {}
    t_fcw_cross = _crossing(sc, fn.fcw_ttc)
    t_fcw = t_fcw_cross + fn.confirm_time
    t_brake = max(_crossing(sc, fn.partial_ttc), t_fcw)
    t_full = max(_crossing(sc, fn.full_ttc), t_fcw)
    if not math.isfinite(t_full):
        raise UsageError(
            f"scenario {sc.name}: the TTC never reaches {fn.full_ttc:g} s before the "
            f"recording ends (at a {END_GAP:g} m gap), so there is no braking to bound",
            hint="choose other scenario parameters, or pass --no-expect",
        )

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
    expect.update(_outcome_bounds(sc, fn, t_full))
    return expect


def _outcome_bounds(sc: Scenario, fn: TtcAeb, t_full: float) -> dict[str, Any]:
    """``collision``/``min_distance`` or ``impact_speed`` from the conservative closed form."""
    out: dict[str, Any] = {}
    sigma_full, rate_full = _ttc_sigma(sc, t_full)
    late = CYCLE + (3 * sigma_full / rate_full if rate_full > 0 else 0.0)
    impact, min_gap = _outcome(sc, t_full + late, fn.full_decel)
    if impact == 0.0:
        out["collision"] = False
        if min_gap >= 0.2:
            out["min_distance"] = {"min": _floor(min_gap - 0.1, 0.1)}
    caps = [impact + 0.1] if impact > 0.0 else []
    limit = _r152_limit(sc.nominal_speed or 0.0) if sc.kind == "CCRs" else None
    if limit is not None:
        caps.append(kph(limit))
    if caps:
        out["impact_speed"] = {"max": _ceil(min(caps), 0.1)}
    return out

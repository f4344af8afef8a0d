"""The projection and brake-onset KPIs against closed-form kinematics (docs/physics.md).

Synthetic recordings on a 100 Hz grid: the recorded ego drives at constant speed (it never
brakes), the function's request is a step to `a` at one cycle. The oracle is exact
piecewise-constant-acceleration kinematics (quadratic gap per phase), cross-checked against
the reference's own formulas; the implementation must agree within one cycle in time and
0.5 km/h in impact speed.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pytest_adsreplay.kpi.compute import (
    COAST_HORIZON,
    TARGET_END_TOLERANCE,
    KpiSettings,
    project,
    recorded_brake_time,
)

DT = 0.01
KMH = 1 / 3.6
IMPACT_TOL = 0.5 * KMH
GAP_TOL = 0.02  # m; the fine grid and linear lead interpolation are far better than this
NO_RAMP = math.inf


# --------------------------------------------------------------------------- oracle


@dataclass(frozen=True)
class Outcome:
    collision: bool
    contact_time: float | None
    impact_speed: float
    min_gap: float


def oracle(
    gap0: float, v_ego: float, v_lead: float, a_lead: float, t_on: float, a_ego: float
) -> Outcome:
    """Exact outcome: lead brakes at a_lead from t=0 to standstill, ego at v_ego brakes at
    a_ego from t_on to standstill. Within each phase both accelerations are constant, so the
    gap is a quadratic whose first root and minimum are solved in closed form.
    """
    t_lead_stop = v_lead / a_lead if a_lead > 0 else math.inf
    t_ego_stop = t_on + v_ego / a_ego
    cuts = sorted({0.0, t_on, t_lead_stop, t_ego_stop, math.inf})
    gap, ve, vl, min_gap = gap0, v_ego, v_lead, gap0
    for start, end in itertools.pairwise(cuts):
        ve = 0.0 if start >= t_ego_stop else ve  # exact standstill, no rounding residue
        vl = 0.0 if start >= t_lead_stop else vl
        ae = -a_ego if t_on <= start < t_ego_stop else 0.0
        al = -a_lead if start < t_lead_stop else 0.0
        dv, da, span = vl - ve, al - ae, end - start
        roots = sorted(np.roots([da / 2, dv, gap]).real) if (da or dv) else []
        hits = [
            r for r in roots if -1e-12 <= r <= span and abs(np.polyval([da / 2, dv, gap], r)) < 1e-6
        ]
        if gap <= 0:
            hits = [0.0]
        if hits:
            tau = hits[0]
            return Outcome(True, start + tau, (ve + ae * tau) - (vl + al * tau), 0.0)
        if da > 0 and 0 < -dv / da < span:  # vertex of the gap parabola inside the phase
            tau = -dv / da
            min_gap = min(min_gap, gap + dv * tau + da * tau**2 / 2)
        if math.isinf(span):
            break
        gap += dv * span + da * span**2 / 2
        ve, vl = ve + ae * span, vl + al * span
        min_gap = min(min_gap, gap)
    return Outcome(False, None, 0.0, min_gap)


def reference_constant_lead(d0: float, dv: float, t_l: float, a: float) -> tuple[bool, float]:
    """Stationary/CCRm no-ramp closed forms (docs/physics.md): (avoided, min gap or impact speed)."""
    d_b = d0 - dv * t_l
    if d_b <= 0:
        return False, dv
    if d_b >= dv**2 / (2 * a):
        return True, d_b - dv**2 / (2 * a)
    return False, math.sqrt(dv**2 - 2 * a * d_b)


# --------------------------------------------------------------------------- recordings


def constant_ego_recording(
    duration: float, v_ego: float, gap0: float, v_lead: float, a_lead: float = 0.0
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Recorded ego at constant speed; lead from gap0 at v_lead braking a_lead to a stop."""
    t = np.round(np.arange(0.0, duration + DT / 2, DT), 10)
    lead_v = np.maximum(v_lead - a_lead * t, 0.0)
    t_stop = v_lead / a_lead if a_lead > 0 else math.inf
    tm = np.minimum(t, t_stop)
    lead_x = gap0 + v_lead * tm - a_lead * tm**2 / 2
    ego_v = np.full(t.size, v_ego)
    return t, {
        "ego_speed": ego_v,
        "target_distance": lead_x - v_ego * t,
        "target_rel_speed": lead_v - ego_v,
        "target_valid": np.ones(t.size),
    }


def step_request(t: np.ndarray, t_request: float, a: float) -> tuple[np.ndarray, float]:
    """aeb_decel stepping to `a` at the cycle nearest t_request; returns (series, brake time)."""
    k = round(t_request / DT)
    aeb = np.zeros(t.size)
    aeb[k:] = a
    return aeb, float(t[k])


def check(proj, expected: Outcome) -> None:
    assert proj.collision is expected.collision, (proj, expected)
    if expected.collision:
        assert proj.contact_time == pytest.approx(expected.contact_time, abs=DT)
        assert proj.impact_speed == pytest.approx(expected.impact_speed, abs=IMPACT_TOL)
        assert proj.min_distance == 0.0
    else:
        assert proj.contact_time is None
        assert proj.impact_speed == 0.0
        assert proj.min_distance == pytest.approx(expected.min_gap, abs=GAP_TOL)


DELAYS = (0.0, 0.1, 0.2, 0.3)
DECELS = (4.0, 7.0, 10.0)


# --------------------------------------------------------------------------- CCRs / CCRm


@pytest.mark.parametrize("delay", DELAYS)
@pytest.mark.parametrize("decel", DECELS)
@pytest.mark.parametrize("speed_kmh", [20, 50, 80])
def test_ccrs_no_ramp(speed_kmh: float, decel: float, delay: float) -> None:
    v0 = speed_kmh * KMH
    t, sig = constant_ego_recording(6.0, v0, gap0=4 * v0, v_lead=0.0)
    aeb, t_b = step_request(t, 4.0 - 1.3, decel)  # request at TTC 1.3 s
    proj = project(t, sig, aeb, t_b, KpiSettings(actuator_delay=delay, brake_jerk=NO_RAMP))

    d0 = 4 * v0 - v0 * t_b
    expected = oracle(d0 + v0 * t_b, v0, 0.0, 0.0, t_b + delay, decel)
    avoided, value = reference_constant_lead(d0, v0, delay, decel)
    assert avoided is not expected.collision
    assert value == pytest.approx(expected.min_gap if avoided else expected.impact_speed)
    check(proj, expected)


@pytest.mark.parametrize("delay", DELAYS)
@pytest.mark.parametrize("decel", DECELS)
@pytest.mark.parametrize("speed_kmh", [30, 50, 80])
def test_ccrm_no_ramp(speed_kmh: float, decel: float, delay: float) -> None:
    v0, vt = speed_kmh * KMH, 20 * KMH
    dv = v0 - vt
    t, sig = constant_ego_recording(8.0, v0, gap0=4 * dv, v_lead=vt)
    aeb, t_b = step_request(t, 4.0 - 1.3, decel)
    proj = project(t, sig, aeb, t_b, KpiSettings(actuator_delay=delay, brake_jerk=NO_RAMP))

    expected = oracle(4 * dv, v0, vt, 0.0, t_b + delay, decel)
    avoided, value = reference_constant_lead(4 * dv - dv * t_b, dv, delay, decel)
    assert avoided is not expected.collision
    assert value == pytest.approx(expected.min_gap if avoided else expected.impact_speed)
    check(proj, expected)


def test_constant_lead_cases_cover_both_outcomes() -> None:
    """The CCRs/CCRm grids are only meaningful if they contain avoided and collided cases."""
    for speeds, vt in (([20, 50, 80], 0.0), ([30, 50, 80], 20 * KMH)):
        outcomes = set()
        for speed_kmh, decel, delay in itertools.product(speeds, DECELS, DELAYS):
            dv = speed_kmh * KMH - vt
            outcomes.add(reference_constant_lead(1.3 * dv, dv, delay, decel)[0])
        assert outcomes == {True, False}


@settings(max_examples=60, deadline=None, database=None)
@given(
    v0_kmh=st.floats(15.0, 130.0),
    lead_kmh=st.sampled_from([0.0, 10.0, 20.0]),
    decel=st.floats(3.0, 10.0),
    delay=st.sampled_from(DELAYS),
    request_ttc=st.floats(0.4, 3.0),
)
def test_random_constant_lead_matches_closed_form(
    v0_kmh: float, lead_kmh: float, decel: float, delay: float, request_ttc: float
) -> None:
    v0, vt = v0_kmh * KMH, lead_kmh * KMH
    dv = v0 - vt
    assume(dv > 1.0)
    t, sig = constant_ego_recording(5.0, v0, gap0=4 * dv, v_lead=vt)
    aeb, t_b = step_request(t, 4.0 - request_ttc, decel)
    d_b = 4 * dv - dv * t_b - dv * delay
    assume(abs(d_b - dv**2 / (2 * decel)) > 0.05)  # not a photo finish
    proj = project(t, sig, aeb, t_b, KpiSettings(actuator_delay=delay, brake_jerk=NO_RAMP))
    check(proj, oracle(4 * dv, v0, vt, 0.0, t_b + delay, decel))


# --------------------------------------------------------------------------- CCRb


@pytest.mark.parametrize("delay", DELAYS)
@pytest.mark.parametrize("ego_decel", [4.0, 8.0, 10.0])
@pytest.mark.parametrize(
    ("lead_decel", "gap0"), [(2.0, 12.0), (2.0, 40.0), (6.0, 12.0), (6.0, 40.0)]
)
def test_ccrb_no_ramp(lead_decel: float, gap0: float, ego_decel: float, delay: float) -> None:
    v0 = 50 * KMH
    t, sig = constant_ego_recording(10.0, v0, gap0=gap0, v_lead=v0, a_lead=lead_decel)
    aeb, t_b = step_request(t, 0.5 if gap0 < 20 else 1.5, ego_decel)
    proj = project(t, sig, aeb, t_b, KpiSettings(actuator_delay=delay, brake_jerk=NO_RAMP))

    t_on = t_b + delay
    expected = oracle(gap0, v0, v0, lead_decel, t_on, ego_decel)
    t_star = t_on + lead_decel * t_on / (ego_decel - lead_decel) if ego_decel > lead_decel else 0
    if not expected.collision and ego_decel > lead_decel and t_star < v0 / lead_decel:
        # closed form: target still moving when the relative speed reaches 0
        ref_gap = (
            gap0
            - lead_decel * t_on**2 / 2
            - (lead_decel * t_on) ** 2 / (2 * (ego_decel - lead_decel))
        )
        assert expected.min_gap == pytest.approx(ref_gap)
    check(proj, expected)


def test_ccrb_cases_cover_both_outcomes() -> None:
    """The CCRb grid is only meaningful if it contains avoided and collided cases."""
    v0 = 50 * KMH
    outcomes = {
        oracle(g, v0, v0, al, (0.5 if g < 20 else 1.5) + d, ae).collision
        for al, g in [(2.0, 12.0), (2.0, 40.0), (6.0, 12.0), (6.0, 40.0)]
        for ae in (4.0, 8.0, 10.0)
        for d in DELAYS
    }
    assert outcomes == {True, False}


# --------------------------------------------------------------------------- ramp


@pytest.mark.parametrize("jerk", [20.0, 40.0])
@pytest.mark.parametrize("decel", [5.0, 9.0])
@pytest.mark.parametrize("speed_kmh", [30, 50, 70])
def test_ccrs_with_jerk_ramp(speed_kmh: float, decel: float, jerk: float) -> None:
    v0, delay = speed_kmh * KMH, 0.2
    t, sig = constant_ego_recording(6.0, v0, gap0=4 * v0, v_lead=0.0)
    aeb, t_b = step_request(t, 4.0 - 1.4, decel)
    proj = project(t, sig, aeb, t_b, KpiSettings(actuator_delay=delay, brake_jerk=jerk))

    t_r = decel / jerk
    d_b = (4 * v0 - v0 * t_b) - v0 * delay
    stop_dist = v0 * t_r / 2 + v0**2 / (2 * decel) - decel * t_r**2 / 24  # closed form
    if d_b >= stop_dist:
        assert not proj.collision
        assert proj.min_distance == pytest.approx(d_b - stop_dist, abs=GAP_TOL)
        return
    t_on = t_b + delay
    ramp_dist = v0 * t_r - jerk * t_r**3 / 6
    if d_b <= ramp_dist:  # contact during the ramp: v0 τ - J τ³/6 = d_b
        tau = min(
            r.real for r in np.roots([-jerk / 6, 0, v0, -d_b]) if abs(r.imag) < 1e-9 and r.real >= 0
        )
        contact, impact = t_on + tau, v0 - jerk * tau**2 / 2
    else:  # after the ramp at constant decel from v1
        v1, d1 = v0 - decel * t_r / 2, d_b - ramp_dist
        impact = math.sqrt(v1**2 - 2 * decel * d1)
        contact = t_on + t_r + (v1 - impact) / decel
    assert proj.collision
    assert proj.contact_time == pytest.approx(contact, abs=DT)
    assert proj.impact_speed == pytest.approx(impact, abs=IMPACT_TOL)


def test_ramp_cases_cover_both_outcomes() -> None:
    outcomes = set()
    for speed_kmh, decel, jerk in itertools.product([30, 50, 70], [5.0, 9.0], [20.0, 40.0]):
        v0 = speed_kmh * KMH
        t_r = decel / jerk
        stop_dist = v0 * t_r / 2 + v0**2 / (2 * decel) - decel * t_r**2 / 24
        outcomes.add(v0 * 1.4 - v0 * 0.2 >= stop_dist)
    assert outcomes == {True, False}


# --------------------------------------------------------------------------- latest request


@pytest.mark.parametrize(("decel", "reference_ttc"), [(9.0, 1.07), (6.0, 1.46)])
def test_latest_request_that_still_avoids(decel: float, reference_ttc: float) -> None:
    """Closed form: 50 km/h, t_l 0.3 s, no ramp -> 1.07 s at 9 m/s², 1.46 s at 6 m/s²."""
    v0, delay = 50 * KMH, 0.3
    assert delay + v0 / (2 * decel) == pytest.approx(reference_ttc, abs=0.005)
    t, sig = constant_ego_recording(6.0, v0, gap0=4 * v0, v_lead=0.0)
    settings = KpiSettings(actuator_delay=delay, brake_jerk=NO_RAMP)
    latest = None
    for k in range(round(2.0 / DT), round(3.5 / DT)):  # TTC 2.0 s down to 0.5 s
        aeb = np.zeros(t.size)
        aeb[k:] = decel
        if project(t, sig, aeb, float(t[k]), settings).collision:
            break
        latest = k
    assert latest is not None
    ttc_latest = 4.0 - t[latest]
    assert ttc_latest == pytest.approx(reference_ttc, abs=DT + 0.005)
    # one cycle later it collides, just barely: the gap at onset shrank by at most v0 * DT
    aeb = np.zeros(t.size)
    aeb[latest + 1 :] = decel
    late = project(t, sig, aeb, float(t[latest + 1]), settings)
    assert late.collision
    assert 0.0 < late.impact_speed <= math.sqrt(2 * decel * v0 * DT) + IMPACT_TOL


# --------------------------------------------------------------------------- past the end


@pytest.mark.parametrize("v_lead_kmh", [0, 20])
def test_recording_ends_before_contact_request_is_held(v_lead_kmh: float) -> None:
    """The recording stops 0.05 s after the request, before even the decel onset."""
    v0, vt, decel, delay = 50 * KMH, v_lead_kmh * KMH, 4.0, 0.2
    dv = v0 - vt
    t_full, sig_full = constant_ego_recording(8.0, v0, gap0=4 * dv, v_lead=vt)
    aeb_full, t_b = step_request(t_full, 4.0 - 1.0, decel)
    end = round((t_b + 0.05) / DT) + 1
    t, sig = t_full[:end], {k: v[:end] for k, v in sig_full.items()}
    settings = KpiSettings(actuator_delay=delay, brake_jerk=NO_RAMP)
    proj = project(t, sig, aeb_full[:end], t_b, settings)

    expected = oracle(4 * dv, v0, vt, 0.0, t_b + delay, decel)
    assert expected.collision
    assert expected.contact_time > t[-1] + 0.3
    check(proj, expected)
    # same answer as with the full recording
    full = project(t_full, sig_full, aeb_full, t_b, settings)
    assert full.contact_time == pytest.approx(proj.contact_time, abs=1e-6)
    assert full.impact_speed == pytest.approx(proj.impact_speed, abs=1e-6)


def test_recording_ends_before_contact_avoided_past_the_end() -> None:
    v0, decel, delay = 40 * KMH, 8.0, 0.1
    t_full, sig_full = constant_ego_recording(6.0, v0, gap0=4 * v0, v_lead=0.0)
    aeb_full, t_b = step_request(t_full, 4.0 - 1.5, decel)
    end = round((t_b + 0.5) / DT) + 1
    t, sig = t_full[:end], {k: v[:end] for k, v in sig_full.items()}
    proj = project(
        t, sig, aeb_full[:end], t_b, KpiSettings(actuator_delay=delay, brake_jerk=NO_RAMP)
    )
    check(proj, oracle(4 * v0, v0, 0.0, 0.0, t_b + delay, decel))
    assert proj.t[-1] > t[-1]
    assert proj.ego_speed[-1] == 0.0


def test_no_request_coasts_into_the_target_after_the_end() -> None:
    v0 = 50 * KMH
    t, sig = constant_ego_recording(3.5, v0, gap0=4 * v0, v_lead=0.0)  # ends at TTC 0.5 s
    proj = project(t, sig, np.zeros(t.size), None)
    assert proj.collision
    assert proj.contact_time == pytest.approx(4.0, abs=DT)
    assert proj.impact_speed == pytest.approx(v0, abs=IMPACT_TOL)


def test_coasting_extrapolation_is_bounded() -> None:
    """A recording ending at TTC 20 s is not a collision: coasting stops after COAST_HORIZON."""
    v0 = 50 * KMH
    t, sig = constant_ego_recording(2.0, v0, gap0=22 * v0, v_lead=0.0)
    proj = project(t, sig, np.zeros(t.size), None)
    assert not proj.collision
    assert proj.min_distance == pytest.approx(v0 * (20.0 - COAST_HORIZON), abs=GAP_TOL)


def test_lead_continues_at_last_speed_and_gap_opens() -> None:
    """CCRm: after the ego slows below the lead past the end, the projection stops early."""
    v0, vt, decel = 50 * KMH, 20 * KMH, 8.0
    dv = v0 - vt
    t, sig = constant_ego_recording(3.0, v0, gap0=4 * dv, v_lead=vt)
    aeb, t_b = step_request(t, 2.9, decel)
    proj = project(t, sig, aeb, t_b, KpiSettings(actuator_delay=0.0, brake_jerk=NO_RAMP))
    check(proj, oracle(4 * dv, v0, vt, 0.0, t_b, decel))
    assert proj.t[-1] == pytest.approx(t_b + dv / decel, abs=DT)


# --------------------------------------------------------------------------- brake onset


@pytest.mark.parametrize(
    ("onset", "peak", "jerk", "seed"),
    [
        (1.234, 4.0, 20.0, 0),
        (2.0, 5.0, 30.0, 1),
        (1.507, 6.0, 40.0, 2),
        (3.333, 7.0, 50.0, 3),
        (0.999, 8.0, 60.0, 4),
        (2.5, 6.0, 25.0, 5),
    ],
)
def test_recorded_brake_time_on_noisy_profiles(
    onset: float, peak: float, jerk: float, seed: int
) -> None:
    t = np.round(np.arange(0.0, onset + 3.0, DT), 10)
    clean = -np.clip(jerk * (t - onset), 0.0, peak)
    noisy = clean + np.random.default_rng(seed).normal(0.0, 0.2, t.size)
    truth = onset + 0.3 / jerk  # where the noise-free profile reaches -0.3 m/s²
    found = recorded_brake_time(t, noisy)
    assert found is not None
    assert found == pytest.approx(truth, abs=DT)
    assert recorded_brake_time(t, clean) == pytest.approx(truth, abs=DT)


# --------------------------------------------------------------------------- lead braking at the end
#
# Open-loop CCRb recordings end (at about a 1 m recorded gap) while the lead is still braking:
# past the end the lead keeps its last speed and deceleration until it stops.


def _stationary(d: float, v: float, a: float, t0: float) -> Outcome:
    """Ego at v, braking at a from t0, d before a stationary lead (closed form, no ramp)."""
    if d >= v**2 / (2 * a):
        return Outcome(False, None, 0.0, d - v**2 / (2 * a))
    impact = math.sqrt(v**2 - 2 * a * d)
    return Outcome(True, t0 + (v - impact) / a, impact, 0.0)


def braking_lead_closed_form(d0: float, v0: float, a_t: float, t_on: float, a_e: float) -> Outcome:
    """The closed-form braking-target case, completed to an outcome (times from the lead's onset).

    Both at v0, gap d0 when the lead starts braking at a_t (t = 0, step); the ego's
    deceleration a_e starts at t_on >= 0 (step). Lead stops at T_l = v0 / a_t.
    1. t < min(t_on, T_l): gap d0 - a_t t²/2; contact at √(2 d0 / a_t), closing a_t t.
    2. T_l <= t_on (lead stops first): lead at rest at X = d0 + v0²/(2 a_t); stationary case
       with d_b = X - v0 t_on (contact at X / v0 with v0 if d_b <= 0).
    3. Both braking, s = t - t_on: closing speed w0 - Δa s with w0 = a_t t_on, Δa = a_e - a_t,
       gap g_on - w0 s + Δa s²/2 with g_on = d0 - a_t t_on²/2. Contact at the first root
       s_c = 2 g_on / (w0 + √(w0² - 2 Δa g_on)) with closing √(w0² - 2 Δa g_on), if it
       comes before the lead stops (s_c <= T_l - t_on). Else, if the closing speed reaches 0
       first (Δa > 0, s* = w0/Δa < T_l - t_on): avoided, minimum gap g_on - w0²/(2 Δa) (the
       reference formula). Else the lead stops first: stationary case from T_l with the
       ego's speed v0 - a_e (T_l - t_on) and the gap at T_l.
    """
    t_l = v0 / a_t
    t1 = min(t_on, t_l)
    if d0 - a_t * t1**2 / 2 <= 0.0:
        tc = math.sqrt(2 * d0 / a_t)
        return Outcome(True, tc, a_t * tc, 0.0)
    if t_l <= t_on:
        x_lead = d0 + v0**2 / (2 * a_t)
        d_b = x_lead - v0 * t_on
        if d_b <= 0.0:
            return Outcome(True, x_lead / v0, v0, 0.0)
        return _stationary(d_b, v0, a_e, t_on)
    g_on, w0, da, s_l = d0 - a_t * t_on**2 / 2, a_t * t_on, a_e - a_t, t_l - t_on
    disc = w0**2 - 2 * da * g_on
    if disc >= 0.0:
        s_c = 2 * g_on / (w0 + math.sqrt(disc))
        if s_c <= s_l:
            return Outcome(True, t_on + s_c, math.sqrt(disc), 0.0)
    if da > 0.0 and w0 / da < s_l:
        return Outcome(False, None, 0.0, g_on - w0**2 / (2 * da))
    g_l = g_on - w0 * s_l + da * s_l**2 / 2
    return _stationary(g_l, v0 - a_e * s_l, a_e, t_l)


@dataclass(frozen=True)
class Body:
    """Exact 1-D motion from x0, v0 under a piecewise-linear acceleration through `knots`
    ((time, accel), equal times = a step, constant outside), up to standstill."""

    x0: float
    v0: float
    knots: tuple[tuple[float, float], ...]

    @cached_property
    def pieces(self) -> tuple[list[tuple[float, float, float, float, float]], float]:
        """(start, x, v, a, jerk) pieces and the stop time (inf if it never stops)."""
        edges = [(t0, a0, t1, a1) for (t0, a0), (t1, a1) in itertools.pairwise(self.knots)]
        spans = [(0.0, self.knots[0][1], self.knots[0][0], self.knots[0][1])]
        spans += [e for e in edges if e[2] > e[0]]
        spans.append((self.knots[-1][0], self.knots[-1][1], math.inf, self.knots[-1][1]))
        x, v, out = self.x0, self.v0, []
        for t0, a0, t1, a1 in spans:
            if t1 <= 0.0 and math.isfinite(t1):
                continue
            span = t1 - t0
            j = (a1 - a0) / span if math.isfinite(span) else 0.0
            out.append((t0, x, v, a0, j))
            stops = [r.real for r in np.roots([j / 2, a0, v]) if abs(r.imag) < 1e-12]
            stops = [r for r in stops if 0.0 < r <= span] if (j or a0) else []
            if stops:
                return out, t0 + min(stops)
            x += v * span + a0 * span**2 / 2 + j * span**3 / 6
            v += a0 * span + j * span**2 / 2
        return out, math.inf

    def state(self, t: float) -> tuple[float, float, float, float]:
        """Position, speed, acceleration and jerk at t (all 0 but x once stopped)."""
        pieces, t_stop = self.pieces
        t0, x, v, a, j = next(p for p in reversed(pieces) if p[0] <= min(t, t_stop))
        tau = min(t, t_stop) - t0
        x += v * tau + a * tau**2 / 2 + j * tau**3 / 6
        if t >= t_stop:
            return x, 0.0, 0.0, 0.0
        return x, v + a * tau + j * tau**2 / 2, a + j * tau, j

    def breaks(self) -> list[float]:
        pieces, t_stop = self.pieces
        return [p[0] for p in pieces] + ([t_stop] if math.isfinite(t_stop) else [])


def exact_outcome(lead: Body, ego: Body) -> Outcome:
    """First contact / minimum gap of two Bodies: per phase the gap is a cubic, solved exactly."""
    cuts = [*sorted({0.0, *lead.breaks(), *ego.breaks()}), math.inf]
    min_gap = math.inf
    for start, end in itertools.pairwise(cuts):
        xl, vl, al, jl = lead.state(start)
        xe, ve, ae, je = ego.state(start)
        poly = [(jl - je) / 6, (al - ae) / 2, vl - ve, xl - xe]
        span = min(end - start, 60.0)  # both stopped long before: the last phase is constant
        if poly[3] <= 0.0:
            return Outcome(True, start, ve - vl, 0.0)
        roots = [r.real for r in np.roots(poly) if abs(r.imag) < 1e-9 and 0.0 <= r.real <= span]
        if roots:  # the gap is positive at the start of the phase: its first root is contact
            r = min(roots)
            return Outcome(True, start + r, -float(np.polyval(np.polyder(poly), r)), 0.0)
        extrema = [r.real for r in np.roots(np.polyder(poly)) if abs(r.imag) < 1e-9]
        candidates = [0.0, span] + [r for r in extrema if 0.0 < r < span]
        min_gap = min(min_gap, *(float(np.polyval(poly, c)) for c in candidates))
    return Outcome(False, None, 0.0, min_gap)


LEAD_ONSET = 1.0  # s into the recording: the lead starts braking
END_GAP = 1.0  # m; the recording ends at this recorded (unbraked) gap ...
END_BEFORE_STOP = 0.3  # s; ... or this long before the lead stops, whichever is first


def braking_lead_recording(
    v0: float, gap0: float, a_t: float, ramp: float
) -> tuple[np.ndarray, dict[str, np.ndarray], Body]:
    """Recorded ego at constant v0; lead from gap0 at v0 braking to a_t over `ramp` from
    LEAD_ONSET; the recording ends while the lead is still braking."""
    lead = Body(gap0, v0, ((LEAD_ONSET, 0.0), (LEAD_ONSET + ramp, -a_t)))
    _, t_stop = lead.pieces
    fine = np.arange(0.0, t_stop, DT)
    gap = np.array([lead.state(x)[0] for x in fine]) - v0 * fine
    t_end = min(fine[gap <= END_GAP].min(initial=math.inf), t_stop - END_BEFORE_STOP)
    t = np.round(np.arange(0.0, t_end + DT / 2, DT), 10)
    states = np.array([lead.state(x)[:2] for x in t])
    ego_v = np.full(t.size, v0)
    sig = {
        "ego_speed": ego_v,
        "target_distance": states[:, 0] - v0 * t,
        "target_rel_speed": states[:, 1] - ego_v,
        "target_valid": np.ones(t.size),
    }
    return t, sig, lead


def ego_body(v0: float, t_on: float, a_e: float, jerk: float) -> Body:
    ramp = 0.0 if math.isinf(jerk) else a_e / jerk
    return Body(0.0, v0, ((t_on, 0.0), (t_on + ramp, -a_e)))


CCRB_CASES = [(2.0, 12.0), (2.0, 40.0), (6.0, 12.0), (6.0, 40.0)]


@pytest.mark.parametrize("jerk", [NO_RAMP, 40.0])
@pytest.mark.parametrize("when", ["early", "late"])
@pytest.mark.parametrize("ego_decel", [3.0, 6.0, 9.0])
@pytest.mark.parametrize("lead_ramp", [0.0, 1.0])
@pytest.mark.parametrize(("lead_decel", "gap0"), CCRB_CASES)
def test_ccrb_recording_ends_while_lead_brakes(
    lead_decel: float, gap0: float, lead_ramp: float, ego_decel: float, when: str, jerk: float
) -> None:
    v0, delay = 50 * KMH, 0.2
    t, sig, lead = braking_lead_recording(v0, gap0, lead_decel, lead_ramp)
    assert t[-1] >= LEAD_ONSET + lead_ramp + 0.5  # the last 0.5 s show the full deceleration
    assert lead.state(t[-1])[1] > 1.0  # ... and the lead is still moving
    t_req = LEAD_ONSET + 0.5 if when == "early" else t[-1] - 0.3
    aeb, t_b = step_request(t, t_req, ego_decel)
    proj = project(t, sig, aeb, t_b, KpiSettings(actuator_delay=delay, brake_jerk=jerk))

    expected = exact_outcome(lead, ego_body(v0, t_b + delay, ego_decel, jerk))
    if lead_ramp == 0.0 and math.isinf(jerk):  # cross-check against the closed form
        closed = braking_lead_closed_form(gap0, v0, lead_decel, t_b + delay - LEAD_ONSET, ego_decel)
        assert closed.collision is expected.collision
        if expected.collision:
            assert closed.contact_time is not None
            assert closed.contact_time + LEAD_ONSET == pytest.approx(expected.contact_time)
            assert closed.impact_speed == pytest.approx(expected.impact_speed)
        else:
            assert closed.min_gap == pytest.approx(expected.min_gap)
    check(proj, expected)


def test_ccrb_end_cases_cover_every_branch() -> None:
    """The grid above must avoid and collide, with the lead still moving and already stopped."""
    v0, seen = 50 * KMH, set()
    for (a_t, gap0), ramp, a_e, when in itertools.product(
        CCRB_CASES, [0.0, 1.0], [3.0, 6.0, 9.0], ["early", "late"]
    ):
        t, _, lead = braking_lead_recording(v0, gap0, a_t, ramp)
        t_b = t[round((LEAD_ONSET + 0.5 if when == "early" else t[-1] - 0.3) / DT)]
        out = exact_outcome(lead, ego_body(v0, t_b + 0.2, a_e, NO_RAMP))
        lead_stopped = (
            out.collision
            and out.contact_time is not None
            and lead.state(out.contact_time)[1] == 0.0
        )
        seen.add((out.collision, lead_stopped))
    assert seen == {(False, False), (True, False), (True, True)}


@pytest.mark.parametrize(
    ("a_t", "d0", "t_on", "a_e"),
    [
        (6.0, 12.0, 0.5, 9.0),  # both braking, relative speed reaches 0: avoided
        (6.0, 12.0, 1.2, 9.0),  # both braking, contact while the lead moves
        (6.0, 40.0, 1.9, 3.0),  # the lead stops first, then the ego hits it
        (6.0, 40.0, 2.5, 9.0),  # the lead stopped before the ego even brakes
        (2.0, 3.0, 2.0, 9.0),  # contact before the ego brakes
        (2.0, 40.0, 1.0, 2.0),  # equal decelerations: closing speed stays a_t t_on
        (6.0, 12.0, 0.8, 4.0),  # ego brakes less than the lead
    ],
)
def test_braking_lead_closed_form_matches_exact_kinematics(
    a_t: float, d0: float, t_on: float, a_e: float
) -> None:
    v0 = 50 * KMH
    lead = Body(d0, v0, ((0.0, -a_t),))
    closed = braking_lead_closed_form(d0, v0, a_t, t_on, a_e)
    exact = exact_outcome(lead, Body(0.0, v0, ((t_on, 0.0), (t_on, -a_e))))
    assert closed.collision is exact.collision
    assert closed.impact_speed == pytest.approx(exact.impact_speed, abs=1e-9)
    assert closed.min_gap == pytest.approx(exact.min_gap, abs=1e-9)
    if exact.collision:
        assert closed.contact_time == pytest.approx(exact.contact_time, abs=1e-9)


# --------------------------------------------------------------------------- target lost at the end


def drop_target_tail(sig: dict[str, np.ndarray], cycles: int, how: str) -> dict[str, np.ndarray]:
    """A copy of `sig` whose target is lost in the last `cycles` samples."""
    out = {k: v.copy() for k, v in sig.items()}
    tail = slice(out["ego_speed"].size - cycles, None)
    if how == "invalid":  # the tracker flags it
        out["target_valid"][tail] = 0.0
    else:  # the radar group ends early / frames dropped: every target channel is NaN
        for name in ("target_distance", "target_rel_speed", "target_valid"):
            out[name][tail] = math.nan
    return out


DROPOUTS = [(1, "nan"), (3, "invalid"), (20, "nan"), (round(TARGET_END_TOLERANCE / DT), "nan")]


@pytest.mark.parametrize(("cycles", "how"), DROPOUTS)
@pytest.mark.parametrize("when", ["early", "late", "none"])
@pytest.mark.parametrize("scenario", ["CCRb", "CCRs"])
def test_target_lost_in_the_last_cycles_is_continued(
    scenario: str, when: str, cycles: int, how: str
) -> None:
    """Within TARGET_END_TOLERANCE of the end, the lead goes on from its last valid sample."""
    v0, delay, jerk = 50 * KMH, 0.2, 40.0
    if scenario == "CCRb":
        t, full, lead = braking_lead_recording(v0, 12.0, 6.0, 0.0)
    else:  # ends at TTC 0.6 s, like the generated CCRs recordings
        t, full = constant_ego_recording(3.4, v0, gap0=4 * v0, v_lead=0.0)
        lead = Body(4 * v0, 0.0, ((0.0, 0.0),))
    sig = drop_target_tail(full, cycles, how)
    assert t[-1] - t[-1 - cycles] <= TARGET_END_TOLERANCE + 1e-9
    settings_ = KpiSettings(actuator_delay=delay, brake_jerk=jerk)
    if when == "none":
        aeb, t_b = np.zeros(t.size), None
        ego = Body(0.0, v0, ((0.0, 0.0),))
    else:  # "late" requests while the target is already lost (for the longer dropouts)
        aeb, t_b = step_request(t, t[-1] - (0.6 if when == "early" else 0.15), 9.0)
        ego = ego_body(v0, t_b + delay, 9.0, jerk)
    proj = project(t, sig, aeb, t_b, settings_)

    check(proj, exact_outcome(lead, ego))
    whole = project(t, full, aeb, t_b, settings_)
    assert proj.collision is whole.collision
    assert proj.impact_speed == pytest.approx(whole.impact_speed, abs=1e-6)
    assert proj.min_distance == pytest.approx(whole.min_distance, abs=1e-6)
    untouched = drop_target_tail(full, cycles, how)
    assert all(np.array_equal(sig[k], untouched[k], equal_nan=True) for k in sig)


@pytest.mark.parametrize("how", ["nan", "invalid"])
@pytest.mark.parametrize("when", ["early", "none"])
def test_target_lost_for_longer_is_no_target(when: str, how: str) -> None:
    """Lost 0.3 s before the end (> TARGET_END_TOLERANCE): nothing to hit past the end."""
    v0 = 50 * KMH
    t, full = constant_ego_recording(3.4, v0, gap0=4 * v0, v_lead=0.0)
    cycles = 30
    sig = drop_target_tail(full, cycles, how)
    assert t[-1] - t[-1 - cycles] > TARGET_END_TOLERANCE
    aeb, t_b = step_request(t, 2.6, 4.0) if when == "early" else (np.zeros(t.size), None)
    proj = project(t, sig, aeb, t_b)
    assert not proj.collision
    assert proj.contact_time is None
    assert proj.t[-1] == pytest.approx(t[-1])  # the projection stops at the end
    assert np.isnan(proj.gap[proj.t > t[-1 - cycles] + 1e-9]).all()
    if t_b is None:  # the recorded gap at the last valid sample
        assert proj.min_distance == pytest.approx(full["target_distance"][-1 - cycles])
    else:  # the projected gap at the last valid sample
        assert proj.min_distance == pytest.approx(np.nanmin(proj.gap))
        assert np.nanargmin(proj.gap) == np.flatnonzero(np.isfinite(proj.gap))[-1]
    assert project(t, full, aeb, t_b).collision  # with the target it is a collision


# --------------------------------------------------------------------------- ego without a request
#
# When the function never brakes the recorded ego is continued past the end with its own last
# deceleration (estimated like the lead's), for at most COAST_HORIZON; a re-propagated ego
# whose request was released keeps its own (actuator) deceleration, i.e. coasts.


def two_body_recording(
    lead: Body, ego: Body, duration: float, noise: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """100 Hz recording of an ego and a lead moving as Bodies, with optional Gaussian noise
    (std `noise` m/s on both speeds and the relative speed, `noise` m on the distance)."""
    t = np.round(np.arange(0.0, duration + DT / 2, DT), 10)
    lead_s = np.array([lead.state(x)[:2] for x in t])
    ego_s = np.array([ego.state(x)[:2] for x in t])
    rng = np.random.default_rng(seed)

    def jitter() -> np.ndarray | float:
        return rng.normal(0.0, noise, t.size) if noise else 0.0

    return t, {
        "ego_speed": ego_s[:, 1] + jitter(),
        "target_distance": lead_s[:, 0] - ego_s[:, 0] + jitter(),
        "target_rel_speed": lead_s[:, 1] - ego_s[:, 1] + jitter(),
        "target_valid": np.ones(t.size),
    }


def both_braking(a: float, gap: float = 20.0, v0: float = 20.0, v_end: float = 10.0):
    """Both at v0, `gap` apart, brake at `a` from 0.5 s; the recording ends at v_end."""
    lead = Body(gap, v0, ((0.5, 0.0), (0.5, -a)))
    ego = Body(0.0, v0, ((0.5, 0.0), (0.5, -a)))
    return lead, ego, 0.5 + (v0 - v_end) / a


@pytest.mark.parametrize("a", [2.0, 4.0, 6.0])
def test_driver_braking_behind_a_braking_lead_is_avoided_past_the_end(a: float) -> None:
    """Both at -a m/s², 20 m apart, the recording ends at 10 m/s: the gap stays 20 m (holding
    the ego's speed instead gave a collision at 8.9 m/s for a = 2)."""
    lead, ego, duration = both_braking(a)
    t, sig = two_body_recording(lead, ego, duration)
    proj = project(t, sig, np.zeros(t.size), None)
    expected = exact_outcome(lead, ego)
    assert not expected.collision
    assert expected.min_gap == pytest.approx(20.0)
    check(proj, expected)
    assert proj.t[-1] > t[-1]  # projected past the end (until the gap can only grow)
    assert proj.gap[-1] == pytest.approx(20.0, abs=GAP_TOL)


@pytest.mark.parametrize(
    ("ego_decel", "lead_decel", "gap0", "collides"),
    [
        (4.0, 2.0, 20.0, False),  # closing 4 m/s at the end, but braking harder: 4 m left
        (6.0, 2.0, 12.0, False),
        (2.0, 6.0, 40.0, True),  # the lead brakes harder: it stops first and is hit
        (3.0, 3.0, 30.0, True),  # same deceleration: closing at 8 m/s throughout
        (3.0, 3.0, 45.0, True),  # ... hit only once the lead has stopped
    ],
)
def test_recorded_ego_keeps_its_deceleration_past_the_end(
    ego_decel: float, lead_decel: float, gap0: float, collides: bool
) -> None:
    """Ego from 22 m/s, lead from 14 m/s, both braking from the start; 2 s recorded."""
    lead = Body(gap0, 14.0, ((0.0, -lead_decel),))
    ego = Body(0.0, 22.0, ((0.0, -ego_decel),))
    t, sig = two_body_recording(lead, ego, 2.0)
    proj = project(t, sig, np.zeros(t.size), None)
    expected = exact_outcome(lead, ego)
    assert expected.collision is collides
    if collides:
        assert t[-1] < expected.contact_time <= t[-1] + COAST_HORIZON
    check(proj, expected)


def test_ego_harder_braking_case_is_what_the_old_rule_got_wrong() -> None:
    """Sanity of the case above: holding the ego's last speed (14 m/s) would hit the lead."""
    lead = Body(20.0, 14.0, ((0.0, -2.0),))
    held = Body(0.0, 22.0, ((0.0, -4.0), (2.0, -4.0), (2.0, 0.0)))  # stops braking at the end
    assert exact_outcome(lead, held).collision
    assert not exact_outcome(lead, Body(0.0, 22.0, ((0.0, -4.0),))).collision


@pytest.mark.parametrize(("a_t", "gap0"), [(3.0, 45.0), (6.0, 20.0)])
def test_coasting_ego_hits_a_lead_that_stops_past_the_end(a_t: float, gap0: float) -> None:
    """Recorded ego at a constant 15 m/s, lead braking from LEAD_ONSET until it stops past the
    end: the ego keeps its speed and hits the stopped lead at 15 m/s (closed form, t_on = inf)."""
    v0 = 15.0
    t, sig, lead = braking_lead_recording(v0, gap0, a_t, 0.0)
    proj = project(t, sig, np.zeros(t.size), None)
    closed = braking_lead_closed_form(gap0, v0, a_t, math.inf, 1.0)  # the ego never brakes
    assert closed.collision
    assert closed.impact_speed == v0
    assert closed.contact_time is not None
    contact = closed.contact_time + LEAD_ONSET
    assert t[-1] < LEAD_ONSET + v0 / a_t < contact <= t[-1] + COAST_HORIZON  # lead stopped
    check(proj, Outcome(True, contact, v0, 0.0))
    check(proj, exact_outcome(lead, Body(0.0, v0, ((0.0, 0.0),))))


@pytest.mark.parametrize("seed", range(5))
def test_ego_deceleration_estimate_is_robust_to_noise(seed: int) -> None:
    """The both-braking case with 0.05 m/s speed noise and 0.05 m distance noise: each
    deceleration is estimated within about 0.1 m/s², worth about 12.5 m per m/s² over a stop
    from 10 m/s at 2 m/s², so the 20 m gap holds to within 1.5 m."""
    lead, ego, duration = both_braking(2.0)
    t, sig = two_body_recording(lead, ego, duration, noise=0.05, seed=seed)
    proj = project(t, sig, np.zeros(t.size), None)
    assert not proj.collision
    assert proj.min_distance == pytest.approx(20.0, abs=1.5)


@pytest.mark.parametrize("seed", range(5))
def test_noisy_constant_speed_ego_gets_no_phantom_deceleration(seed: int) -> None:
    """Noisy 50 km/h ego ending at TTC 0.5 s before a stationary target: full-speed contact."""
    v0 = 50 * KMH
    t, sig = two_body_recording(
        Body(4 * v0, 0.0, ((0.0, 0.0),)), Body(0.0, v0, ((0.0, 0.0),)), 3.5, 0.05, seed
    )
    proj = project(t, sig, np.zeros(t.size), None)
    assert proj.collision
    assert proj.contact_time == pytest.approx(4.0, abs=2 * DT)
    assert proj.impact_speed == pytest.approx(v0, abs=IMPACT_TOL)


@pytest.mark.parametrize(("target_x", "collides"), [(109.5, True), (163.5, False)])
def test_released_request_coasts_past_the_end_despite_recorded_braking(
    target_x: float, collides: bool
) -> None:
    """4 m/s² for 0.5 s from 0.5 s: the re-propagated ego coasts at 18 m/s past the end (at
    55.5 m). The recorded driver brakes at 3 m/s² in the last second, but after brake_time
    only the function's request counts, so its own last deceleration is 0: it coasts, for at
    most COAST_HORIZON (stationary target 3 s or 6 s of coasting ahead)."""
    n = 301
    t = np.round(np.arange(n) * DT, 10)
    ego_v = 20.0 - 3.0 * np.clip(t - 2.0, 0.0, None)
    ego_x = np.concatenate([[0.0], np.cumsum(0.5 * (ego_v[1:] + ego_v[:-1]) * DT)])
    sig = {"ego_speed": ego_v, "target_distance": target_x - ego_x, "target_rel_speed": -ego_v}
    aeb = np.where((t >= 0.5 - 1e-9) & (t < 1.0 - 1e-9), 4.0, 0.0)
    proj = project(t, sig, aeb, 0.5, KpiSettings(actuator_delay=0.0, brake_jerk=NO_RAMP))
    assert proj.collision is collides
    if collides:
        assert proj.contact_time == pytest.approx(t[-1] + 3.0, abs=DT)
        assert proj.impact_speed == pytest.approx(18.0, abs=1e-6)
    else:
        assert proj.t[-1] == pytest.approx(t[-1] + COAST_HORIZON)
        assert proj.min_distance == pytest.approx(target_x - 55.5 - 18.0 * COAST_HORIZON, abs=1e-3)

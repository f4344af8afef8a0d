"""The projection and brake-onset KPIs against closed-form kinematics (AEB_REFERENCE.md).

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

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pytest_adsreplay.kpi import COAST_HORIZON, KpiSettings, project, recorded_brake_time

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
    """AEB_REFERENCE stationary/CCRm no-ramp formulas: (avoided, min gap or impact speed)."""
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
        # AEB_REFERENCE: target still moving when the relative speed reaches 0
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
    stop_dist = v0 * t_r / 2 + v0**2 / (2 * decel) - decel * t_r**2 / 24  # AEB_REFERENCE
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
    """AEB_REFERENCE: 50 km/h, t_l 0.3 s, no ramp -> 1.07 s at 9 m/s², 1.46 s at 6 m/s²."""
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

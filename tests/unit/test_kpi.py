"""The KPIs on small hand-made arrays, and projection semantics edge cases."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pytest

from pytest_adsreplay.kpi.compute import (
    COAST_HORIZON,
    KPI_NAMES,
    MAX_EXTRAPOLATION,
    SCALAR_KPIS,
    TARGET_END_TOLERANCE,
    KpiSettings,
    compute_kpis,
    project,
    recorded_brake_time,
    ttc,
)

DT = 0.01
IDEAL = KpiSettings(actuator_delay=0.0, brake_jerk=math.inf)


def scene(
    n: int = 10,
    *,
    v: float = 10.0,
    gap0: float = 50.0,
    rel: float = -10.0,
    **extra: np.ndarray,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """n cycles at 100 Hz, ego at v closing on a lead at rel; gap consistent with rel."""
    t = np.round(np.arange(n) * DT, 10)
    signals = {
        "ego_speed": np.full(n, v),
        "target_distance": gap0 + rel * t,
        "target_rel_speed": np.full(n, rel),
        "target_valid": np.ones(n),
    }
    signals.update(extra)
    return t, signals


def outputs(fcw: Sequence[float], aeb: Sequence[float]) -> dict[str, np.ndarray]:
    return {"fcw": np.array(fcw, dtype=float), "aeb_decel": np.array(aeb, dtype=float)}


# --------------------------------------------------------------------------- ttc


def test_ttc_closing_is_distance_over_closing_speed() -> None:
    assert ttc(np.array([20.0, 5.0]), np.array([-10.0, -2.5])).tolist() == [2.0, 2.0]


@pytest.mark.parametrize(
    ("distance", "rel"),
    [(20.0, 0.0), (20.0, 3.0), (math.nan, -5.0), (20.0, math.nan), (math.nan, math.nan)],
    ids=["equal-speed", "opening", "no-target", "no-rel-speed", "nothing"],
)
def test_ttc_is_inf_when_not_closing_or_unknown(distance: float, rel: float) -> None:
    assert ttc(np.array([distance]), np.array([rel]))[0] == math.inf


def test_ttc_never_negative() -> None:
    assert ttc(np.array([-1.0, 0.0]), np.array([-5.0, -5.0])).tolist() == [0.0, 0.0]


# --------------------------------------------------------------------------- event KPIs


def test_event_kpis_on_hand_made_arrays() -> None:
    t, sig = scene()
    out = outputs(
        fcw=[0, 0, 0, 1, 1, 1, 1, 0, 0, 0],
        aeb=[0, 0, 0, 0, 0.5, 2, 3, 0, 2, 0.9],
    )
    k = compute_kpis(t, sig, out)
    assert k["fcw_time"] == pytest.approx(0.03)
    assert k["brake_time"] == pytest.approx(0.05)  # 0.5 m/s² is below the 1.0 threshold
    assert k["fcw_lead_time"] == pytest.approx(0.02)
    gap = sig["target_distance"]
    assert k["ttc_at_fcw"] == pytest.approx(gap[3] / 10.0)
    assert k["ttc_at_brake"] == pytest.approx(gap[5] / 10.0)
    assert k["min_ttc"] == pytest.approx(gap[-1] / 10.0)
    assert k["max_decel"] == 3.0
    assert k["activations"] == [
        {"start": t[5], "end": t[6], "peak_decel": 3.0, "ttc_at_start": pytest.approx(gap[5] / 10)},
        {"start": t[8], "end": t[8], "peak_decel": 2.0, "ttc_at_start": pytest.approx(gap[8] / 10)},
    ]


def test_fcw_lead_time_negative_when_braking_comes_first() -> None:
    t, sig = scene()
    k = compute_kpis(
        t, sig, outputs([0, 0, 0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 5, 5, 5, 5, 5, 5, 5, 5])
    )
    assert k["brake_time"] == pytest.approx(0.02)
    assert k["fcw_time"] == pytest.approx(0.06)
    assert k["fcw_lead_time"] == pytest.approx(-0.04)
    assert [(a["start"], a["end"]) for a in k["activations"]] == [(t[2], t[9])]


def test_no_events_give_none() -> None:
    t, sig = scene(rel=2.0)  # opening: TTC inf everywhere
    k = compute_kpis(t, sig, outputs([0] * 10, [0, 0.3, 0.9, 0, 0, 0, 0, 0, 0, 0]))
    for name in ("fcw_time", "brake_time", "ttc_at_fcw", "ttc_at_brake", "fcw_lead_time"):
        assert k[name] is None, name
    assert k["recorded_brake_time"] is None  # no ego_accel signal
    assert k["activations"] == []
    assert k["max_decel"] == pytest.approx(0.9)  # largest request, even below the threshold
    assert k["min_ttc"] == math.inf
    assert k["collision"] is False
    assert k["impact_speed"] == 0.0


def test_fcw_without_braking_and_braking_without_fcw() -> None:
    t, sig = scene()
    k = compute_kpis(t, sig, outputs([0, 1, 0, 0, 0, 0, 0, 0, 0, 0], [0] * 10))
    assert (k["fcw_time"], k["brake_time"], k["fcw_lead_time"]) == (t[1], None, None)
    assert k["ttc_at_brake"] is None
    k = compute_kpis(t, sig, outputs([0] * 10, [0] * 9 + [6]))
    assert (k["fcw_time"], k["brake_time"], k["fcw_lead_time"]) == (None, t[9], None)
    assert k["ttc_at_fcw"] is None


def test_max_decel_zero_when_never_requested() -> None:
    t, sig = scene()
    assert compute_kpis(t, sig, outputs([0] * 10, [0] * 10))["max_decel"] == 0.0


def test_brake_threshold_setting() -> None:
    t, sig = scene()
    out = outputs([0] * 10, [0, 0, 0.5, 0.5, 2, 2, 0, 0, 0, 0])
    assert compute_kpis(t, sig, out)["brake_time"] == t[4]
    low = compute_kpis(t, sig, out, KpiSettings(brake_threshold=0.5))
    assert low["brake_time"] == t[2]
    assert len(low["activations"]) == 1


def test_nan_requests_are_no_requests() -> None:
    t, sig = scene()
    k = compute_kpis(t, sig, outputs([math.nan] * 10, [math.nan] * 5 + [3] * 5))
    assert k["fcw_time"] is None
    assert k["brake_time"] == t[5]
    assert k["max_decel"] == 3.0


def test_invalid_target_does_not_count() -> None:
    """Invalid for the last 0.37 s (longer than TARGET_END_TOLERANCE): no target there."""
    valid = np.where(np.arange(40) < 3, 1.0, 0.0)
    t, sig = scene(n=40, gap0=1.0, target_valid=valid)
    assert t[-1] - t[2] > TARGET_END_TOLERANCE
    k = compute_kpis(t, sig, outputs([0] * 40, [0] * 40))
    assert k["min_ttc"] == pytest.approx(sig["target_distance"][2] / 10)
    assert k["min_distance"] == pytest.approx(sig["target_distance"][2])
    assert k["collision"] is False


def test_kpi_names_and_json_round_trip() -> None:
    t, sig = scene(n=300, gap0=20.0, ego_accel=np.zeros(300))
    aeb = np.zeros(300)
    aeb[50:] = 6.0
    fcw = np.zeros(300)
    fcw[20:] = 1
    k = compute_kpis(t, sig, {"fcw": fcw, "aeb_decel": aeb, "extra": np.ones(300)})
    assert tuple(k) == KPI_NAMES
    assert set(SCALAR_KPIS) == set(KPI_NAMES) - {"activations"}
    assert json.loads(json.dumps(k)) == k
    for name in SCALAR_KPIS:
        assert type(k[name]) in (float, bool, type(None)), name
    assert type(k["collision"]) is bool
    for act in k["activations"]:
        assert {type(v) for v in act.values()} == {float}


def test_json_round_trip_without_target() -> None:
    t, sig = scene(gap0=math.nan)
    k = compute_kpis(t, sig, outputs([1] * 10, [2] * 10))
    assert k["min_ttc"] == math.inf
    assert k["ttc_at_brake"] == math.inf
    assert k["min_distance"] == math.inf
    assert json.loads(json.dumps(k)) == k


@pytest.mark.parametrize(
    "bad",
    [
        {"brake_threshold": 0.0},
        {"brake_threshold": math.nan},
        {"actuator_delay": -0.1},
        {"brake_jerk": 0.0},
        {"lateral_overlap": -1.0},
    ],
)
def test_settings_out_of_range(bad: dict[str, float]) -> None:
    (name,) = bad
    with pytest.raises(ValueError, match=f"{name} = .* is out of range"):
        KpiSettings(**bad)


def test_compute_kpis_rejects_mismatched_arrays() -> None:
    t, sig = scene()
    with pytest.raises(ValueError, match="aeb_decel has 3 samples, t has 10"):
        compute_kpis(t, sig, outputs([0] * 10, [0, 0, 0]))


# --------------------------------------------------------------------------- projection


def test_contact_in_the_recorded_part_before_braking() -> None:
    """The recorded gap crosses 0 between samples 4 and 5; braking only comes later."""
    t, sig = scene(gap0=0.45, rel=-10.0)
    aeb = np.zeros(10)
    aeb[8:] = 9.0
    p = project(t, sig, aeb, t[8], IDEAL)
    assert p.collision
    assert p.contact_time == pytest.approx(0.045)
    assert p.impact_speed == pytest.approx(10.0)
    assert p.min_distance == 0.0
    assert p.t.size == 0


def test_lateral_offset_outside_overlap_prevents_contact() -> None:
    t, sig = scene(n=100, gap0=3.0, target_lateral=np.full(100, 2.0))
    p = project(t, sig, np.zeros(100), None)
    assert not p.collision
    assert p.min_distance == math.inf  # never an in-path target


def test_nan_lateral_counts_as_in_path() -> None:
    t, sig = scene(n=100, gap0=3.0, target_lateral=np.full(100, math.nan))
    assert project(t, sig, np.zeros(100), None).collision


def test_target_moving_out_of_path_before_contact() -> None:
    lateral = np.where(np.arange(100) < 20, 0.0, 2.5)
    t, sig = scene(n=100, gap0=3.0, target_lateral=lateral)
    p = project(t, sig, np.zeros(100), None)
    assert not p.collision
    assert p.min_distance == pytest.approx(3.0 - 10.0 * t[19])


def test_gap_without_target_cannot_produce_contact() -> None:
    t, sig = scene(n=100, gap0=0.5)
    sig["target_distance"][3:] = math.nan  # target lost before the gap would reach 0
    p = project(t, sig, np.zeros(100), None)
    assert not p.collision
    assert p.min_distance == pytest.approx(0.5 - 10.0 * t[2])


def test_min_distance_includes_recorded_part_before_braking() -> None:
    """Lead pulls away first (gap 5 -> ...), closes later; braking after the recorded minimum."""
    n = 300
    t = np.round(np.arange(n) * DT, 10)
    rel = np.where(t < 1.0, -5.0, 5.0)  # closes to 0 m at t=1 then opens
    gap = 5.2 + np.concatenate([[0.0], np.cumsum(0.5 * (rel[1:] + rel[:-1]) * DT)])
    sig = {"ego_speed": np.full(n, 10.0), "target_distance": gap, "target_rel_speed": rel}
    aeb = np.zeros(n)
    aeb[200:] = 3.0
    p = project(t, sig, aeb, t[200], IDEAL)
    assert not p.collision
    assert p.min_distance == pytest.approx(gap.min(), abs=1e-9)


def test_released_request_reduces_speed_by_its_integral() -> None:
    """A 0.5 s request of 4 m/s² takes 2 m/s off, with or without the jerk limit."""
    t, sig = scene(n=400, v=20.0, gap0=500.0, rel=0.0)
    aeb = np.zeros(400)
    aeb[100:150] = 4.0
    for jerk in (math.inf, 40.0):
        p = project(t, sig, aeb, t[100], KpiSettings(actuator_delay=0.2, brake_jerk=jerk))
        assert not p.collision
        assert p.ego_speed[p.t >= 2.0][0] == pytest.approx(18.0, abs=1e-9)
        assert p.ego_speed[p.t <= 1.2][-1] == pytest.approx(20.0)  # dead time: nothing yet


def test_jerk_limit_shapes_the_deceleration() -> None:
    t, sig = scene(n=200, v=20.0, gap0=500.0, rel=0.0)
    aeb = np.zeros(200)
    aeb[10:] = 8.0
    p = project(t, sig, aeb, t[10], KpiSettings(actuator_delay=0.1, brake_jerk=40.0))
    slope = np.diff(p.decel) / np.diff(p.t)
    assert slope.max() <= 40.0 + 1e-6
    onset = p.t[np.flatnonzero(p.decel > 0)[0]]
    assert onset == pytest.approx(t[10] + 0.1, abs=DT / 10 + 1e-9)
    full = p.t[np.flatnonzero(p.decel >= 8.0 - 1e-9)[0]]
    assert full == pytest.approx(t[10] + 0.1 + 0.2, abs=DT / 10 + 1e-9)


def test_ego_never_reverses_and_projection_ends_at_standstill() -> None:
    t, sig = scene(n=100, v=10.0, gap0=100.0, rel=-10.0)
    aeb = np.full(100, 10.0)
    p = project(t, sig, aeb, t[0], IDEAL)
    assert not p.collision
    assert p.ego_speed.min() == 0.0
    assert p.t[-1] == pytest.approx(1.0, abs=DT)  # 10 m/s at 10 m/s² stops after 1 s
    assert p.min_distance == pytest.approx(95.0, abs=1e-3)


def test_recorded_ego_braking_after_brake_time_is_ignored() -> None:
    """The re-propagated ego starts from the recorded state and only follows the request."""
    n = 200
    t = np.round(np.arange(n) * DT, 10)
    ego = np.maximum(10.0 - 8.0 * np.clip(t - 0.5, 0, None), 0.0)  # the driver braked hard
    sig = {
        "ego_speed": ego,
        "target_distance": 8.0
        + np.concatenate([[0.0], -np.cumsum(0.5 * (ego[1:] + ego[:-1]) * DT)]),
        "target_rel_speed": -ego,
    }
    aeb = np.zeros(n)
    aeb[50:] = 2.0  # the function only asks for 2 m/s²: 25 m to stop from 10 m/s
    p = project(t, sig, aeb, t[50], IDEAL)
    assert p.collision
    assert p.impact_speed == pytest.approx(math.sqrt(10.0**2 - 2 * 2.0 * 3.0), abs=1e-3)


def test_reversing_lead_hits_a_stopped_ego() -> None:
    n = 500
    t = np.round(np.arange(n) * DT, 10)
    ego = np.full(n, 10.0)
    lead_v = np.where(t < 2.0, 0.0, -2.0)  # lead stationary, then reverses from t = 2 s
    lead_x = 10.0 + np.concatenate([[0.0], np.cumsum(0.5 * (lead_v[1:] + lead_v[:-1]) * DT)])
    sig = {"ego_speed": ego, "target_distance": lead_x - 10.0 * t, "target_rel_speed": lead_v - ego}
    aeb = np.full(n, 10.0)
    p = project(t, sig, aeb, t[0], IDEAL)  # ego stops at x = 5 m after 1 s, gap 5 m
    assert p.collision
    assert p.contact_time == pytest.approx(2.0 + 5.0 / 2.0, abs=DT)
    assert p.impact_speed == pytest.approx(2.0)


def test_projection_is_bounded_in_time() -> None:
    t, sig = scene(n=100, v=30.0, gap0=5000.0, rel=-1.0)
    aeb = np.full(100, 1e-3)  # a tiny request would take 8 hours to stop
    p = project(t, sig, aeb, t[0])
    assert p.t[-1] <= t[-1] + MAX_EXTRAPOLATION + 1e-9
    assert not p.collision


def test_projection_needs_two_samples() -> None:
    t, sig = scene(n=1)
    with pytest.raises(ValueError, match="at least two samples"):
        project(t, sig, np.zeros(1), None)


# --------------------------------------------------------------------------- brake onset


def braking_profile(
    n: int = 400, onset: float = 1.0, jerk: float = 30.0
) -> tuple[np.ndarray, np.ndarray]:
    t = np.round(np.arange(n) * DT, 10)
    return t, -np.clip(jerk * (t - onset), 0.0, 6.0)


def test_recorded_brake_time_clean_profile() -> None:
    t, acc = braking_profile()
    assert recorded_brake_time(t, acc) == pytest.approx(1.0 + 0.3 / 30.0, abs=DT)
    assert type(recorded_brake_time(t, acc)) is float


@pytest.mark.parametrize(
    "make",
    [
        lambda t, a: None,
        lambda t, a: np.full(t.size, math.nan),
        lambda t, a: np.maximum(a, -0.9),  # never reaches -1 m/s²
        lambda t, a: np.full(t.size, -3.0),  # braking from the start: onset not observable
    ],
    ids=["absent", "all-nan", "never-1", "starts-braking"],
)
def test_recorded_brake_time_none(make) -> None:
    t, acc = braking_profile()
    assert recorded_brake_time(t, make(t, acc)) is None


def test_recorded_brake_time_none_when_sampled_too_slowly() -> None:
    t = np.arange(40) * 0.1  # 10 Hz cannot carry a 10 Hz low-pass
    assert recorded_brake_time(t, -np.clip(30.0 * (t - 1.0), 0.0, 6.0)) is None


def test_recorded_brake_time_bridges_short_nan_gaps() -> None:
    t, acc = braking_profile()
    acc[95:100] = math.nan  # 50 ms just before onset
    assert recorded_brake_time(t, acc) == pytest.approx(1.01, abs=DT)


def test_recorded_brake_time_uses_finite_span_after_long_gap() -> None:
    t, acc = braking_profile()
    acc[:50] = math.nan  # logger started late
    acc[60:80] = math.nan  # and dropped out for 0.2 s
    assert recorded_brake_time(t, acc) == pytest.approx(1.01, abs=DT)


def test_long_recording_keeps_the_projection_grid_bounded() -> None:
    """A 30 min drive braking early and then following: grid capped, contact still exact."""
    n = 180_000
    t, sig = scene(n=n, v=20.0, gap0=30.0, rel=0.0)
    sig["target_distance"][-60_000:] = 30.0 - 20.0 * (t[-60_000:] - t[-60_000])  # lead stops
    sig["target_rel_speed"][-60_000:] = -20.0
    aeb = np.zeros(n)
    aeb[100:150] = 2.0  # brief request, then the ego coasts at 19 m/s
    p = project(t, sig, aeb, t[100], IDEAL)
    assert p.t.size <= 200_001
    lead_stop = t[-60_000]
    # the ego, coasting at 19 m/s and 0.25 m + 1 m/s behind the lead's pace, hits it once stopped
    assert p.collision
    assert p.impact_speed == pytest.approx(19.0, abs=1e-6)
    gap_at_stop = (
        30.0 + 20.0 * (lead_stop - t[100]) - (19.0 * (lead_stop - t[100]) + 0.5 * 2 * 0.25)
    )
    assert p.contact_time == pytest.approx(lead_stop + gap_at_stop / 19.0, abs=DT)


# --------------------------------------------------------------------------- lead past the end


def lead_ending(lead_v: np.ndarray, gap_end: float, ego_v: float = 20.0):
    """100 Hz scene with the ego at constant `ego_v` and the lead at speeds `lead_v`, the
    gap consistent with them and `gap_end` at the last sample."""
    n = lead_v.size
    t = np.round(np.arange(n) * DT, 10)
    rel = lead_v - ego_v
    gap = np.concatenate([[0.0], np.cumsum(0.5 * (rel[1:] + rel[:-1]) * DT)])
    sig = {
        "ego_speed": np.full(n, ego_v),
        "target_distance": gap - gap[-1] + gap_end,
        "target_rel_speed": rel,
    }
    return t, sig


def test_braking_lead_keeps_its_deceleration_past_the_end() -> None:
    """Lead at the ego's speed but braking at 0.5 m/s²; the coasting ego closes 3 m in √12 s."""
    t, sig = lead_ending(20.0 + 0.5 * (3.0 - np.arange(301) * DT), gap_end=3.0)
    p = project(t, sig, np.zeros(t.size), None)
    assert p.collision
    assert p.contact_time == pytest.approx(3.0 + math.sqrt(12.0), abs=DT)
    assert p.impact_speed == pytest.approx(0.5 * math.sqrt(12.0), abs=1e-3)


def test_lead_stops_past_the_end_and_stays() -> None:
    """Lead at 1 m/s braking at 4 m/s² stops 0.125 m on; the ego (5 m/s, 8 m/s²) 1.5625 m on."""
    t, sig = lead_ending(np.maximum(1.0 + 4.0 * (1.0 - np.arange(101) * DT), 0.0), 2.0, 5.0)
    p = project(t, sig, np.full(t.size, 8.0), t[-1], IDEAL)
    assert not p.collision
    assert p.min_distance == pytest.approx(2.0 + 0.125 - 1.5625, abs=1e-3)
    assert p.t[-1] == pytest.approx(t[-1] + 5.0 / 8.0, abs=DT)


@pytest.mark.parametrize(
    "profile",
    [
        lambda s: 20.0 + 0.25 * (3.0 - s),  # braking below LEAD_DECEL_MIN: noise
        lambda s: 20.0 + 4.0 * np.clip(2.4 - s, 0.0, None),  # braked, but not in the last 0.5 s
        lambda s: 20.0 + np.random.default_rng(7).normal(0.0, 0.05, s.size),  # speed noise
    ],
    ids=["below-threshold", "braked-earlier", "noise"],
)
def test_lead_holds_its_speed_without_a_real_deceleration_at_the_end(profile) -> None:
    """Held speed keeps the projected gap at about 15 m; 0.3 m/s² would take 3.75 m off."""
    t, sig = lead_ending(profile(np.arange(301) * DT), gap_end=15.0)
    p = project(t, sig, np.zeros(t.size), None)
    assert not p.collision
    assert np.nanmin(p.gap) > 14.5


def test_accelerating_lead_keeps_its_last_speed() -> None:
    """Lead at 18 m/s accelerating at 1 m/s²: held at 18 m/s, the ego hits it after 1.5 s."""
    t, sig = lead_ending(18.0 - 1.0 * (3.0 - np.arange(301) * DT), gap_end=3.0)
    p = project(t, sig, np.zeros(t.size), None)
    assert p.collision
    assert p.contact_time == pytest.approx(3.0 + 1.5, abs=DT)
    assert p.impact_speed == pytest.approx(2.0, abs=1e-6)


def test_lead_deceleration_needs_half_a_window_of_samples() -> None:
    """Target acquired 0.2 s before the end: too short to estimate, its last speed is held."""
    t, sig = lead_ending(20.0 + 6.0 * (3.0 - np.arange(301) * DT), gap_end=3.0)
    sig["target_distance"][:-21] = math.nan
    p = project(t, sig, np.zeros(t.size), None)
    assert not p.collision
    assert np.nanmin(p.gap) == pytest.approx(3.0)


@pytest.mark.parametrize(("lateral", "hits"), [(2.5, False), (0.0, True)])
def test_target_lost_at_the_end_keeps_its_last_lateral(lateral: float, hits: bool) -> None:
    """Lost in the last 5 cycles: continued with its last lateral offset (in path or not)."""
    lat = np.where(np.arange(100) < 90, 0.0, lateral)
    t, sig = scene(n=100, gap0=9.5, target_lateral=lat)
    sig["target_distance"][-5:] = math.nan
    p = project(t, sig, np.zeros(100), None)
    assert p.collision is hits
    if hits:
        assert p.contact_time == pytest.approx(0.95)


# --------------------------------------------------------------------------- recorded ego past the end


def ego_ending(ego_v: np.ndarray, gap_end: float):
    """100 Hz scene with the recorded ego at speeds `ego_v` and a stationary target `gap_end`
    ahead of it at the last sample."""
    n = ego_v.size
    t = np.round(np.arange(n) * DT, 10)
    ego_x = np.concatenate([[0.0], np.cumsum(0.5 * (ego_v[1:] + ego_v[:-1]) * DT)])
    sig = {
        "ego_speed": ego_v,
        "target_distance": ego_x[-1] + gap_end - ego_x,
        "target_rel_speed": -ego_v,
    }
    return t, sig


def test_braking_recorded_ego_keeps_its_deceleration_past_the_end() -> None:
    """No request; the driver brakes at 2 m/s² and the recording ends at 10 m/s, 30 m before a
    stationary target: the ego stops 25 m on, 5 m short (held speed: contact at 10 m/s)."""
    t, sig = ego_ending(10.0 + 2.0 * (3.0 - np.arange(301) * DT), gap_end=30.0)
    p = project(t, sig, np.zeros(t.size), None)
    assert not p.collision
    assert p.min_distance == pytest.approx(5.0, abs=1e-3)
    assert p.t[-1] == pytest.approx(t[-1] + 5.0, abs=DT)
    assert p.ego_speed[-1] == pytest.approx(0.0, abs=1e-6)
    assert p.decel[p.t < t[-1] + 4.9] == pytest.approx(2.0)


def test_recorded_ego_deceleration_is_bounded_by_the_coast_horizon() -> None:
    """10 m/s at 1 m/s² would stop 50 m on after 10 s; followed for COAST_HORIZON (37.5 m)."""
    t, sig = ego_ending(10.0 + 1.0 * (3.0 - np.arange(301) * DT), gap_end=45.0)
    p = project(t, sig, np.zeros(t.size), None)
    assert not p.collision
    assert p.t[-1] == pytest.approx(t[-1] + COAST_HORIZON)
    assert p.min_distance == pytest.approx(45.0 - 37.5, abs=1e-3)


@pytest.mark.parametrize(
    "profile",
    [
        lambda s: 10.0 + 0.25 * (3.0 - s),  # braking below LEAD_DECEL_MIN: noise
        lambda s: 10.0 + 4.0 * np.clip(2.4 - s, 0.0, None),  # braked, but not in the last 0.5 s
        lambda s: 10.0 + np.random.default_rng(3).normal(0.0, 0.05, s.size),  # speed noise
        lambda s: 10.0 - 1.0 * (3.0 - s),  # accelerating: only its last speed
        lambda s: np.where(s < 2.8, math.nan, 10.0 + 6.0 * (3.0 - s)),  # 0.2 s of samples
    ],
    ids=["below-threshold", "braked-earlier", "noise", "accelerating", "short-window"],
)
def test_recorded_ego_holds_its_speed_without_a_real_deceleration_at_the_end(profile) -> None:
    """Held at 10 m/s, the ego hits a target 20 m ahead 2 s after the end at 10 m/s."""
    t, sig = ego_ending(profile(np.arange(301) * DT), gap_end=20.0)
    if np.isnan(sig["ego_speed"]).any():  # positions from the filled speed, as the projection
        filled = np.interp(t, t[-21:], sig["ego_speed"][-21:])
        sig["target_distance"] = ego_ending(filled, 20.0)[1]["target_distance"]
    p = project(t, sig, np.zeros(t.size), None)
    assert p.collision
    assert p.contact_time == pytest.approx(t[-1] + 2.0, abs=2 * DT)
    assert p.impact_speed == pytest.approx(10.0, abs=0.2)

"""The KPI target derived from an object list: the path-offset formula against exact circle
geometry, curved vs straight paths, a cut-out handing over to the revealed car, the
settings, and the KPIs target_id_at_brake / reacted_to_at_brake / braked_for_out_of_path."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_adsreplay.kpi.compute import KpiSettings, compute_kpis
from pytest_adsreplay.kpi.target import derive_target, kpi_signals, path_curvature, path_offset
from pytest_adsreplay.signals.objects import object_column, object_matrices

DT = 0.01


def exact_offset(x: np.ndarray, y: np.ndarray, kappa: float) -> np.ndarray:
    """Signed distance from the circle through the origin tangent to x, centre (0, 1/k)."""
    r = 1.0 / kappa
    return np.sign(kappa) * (abs(r) - np.hypot(x, y - r))


@pytest.mark.parametrize("radius", [5.0, 12.0, -12.0, 50.0, -200.0, 1000.0])
def test_offset_is_exact_on_circles(radius: float) -> None:
    x, y = np.meshgrid(np.linspace(-3.0, 150.0, 40), np.linspace(-20.0, 20.0, 41))
    kappa = 1.0 / radius
    np.testing.assert_allclose(path_offset(x, y, kappa), exact_offset(x, y, kappa), atol=1e-9)
    # a point on the arc itself is on the path
    phi = np.linspace(0.0, 0.5, 7)
    on_arc_x, on_arc_y = radius * np.sin(phi), radius * (1.0 - np.cos(phi))
    np.testing.assert_allclose(path_offset(on_arc_x, on_arc_y, kappa), 0.0, atol=1e-9)


def test_offset_is_stable_as_curvature_vanishes() -> None:
    x, y = np.array([10.0, 80.0, 150.0]), np.array([-1.5, 0.3, 2.0])
    np.testing.assert_array_equal(path_offset(x, y, 0.0), y)
    for kappa in (1e-6, 1e-9, 1e-12, -1e-12):
        np.testing.assert_allclose(path_offset(x, y, kappa), y - kappa * x**2 / 2, atol=1e-9)
    # the parabola y - k x^2 / 2 is off by about x^4 k^3 / 8 (0.64 m; 0.59 m with the
    # higher-order terms) where the formula is exact
    parabola = 0.0 - (1 / 200) * 80.0**2 / 2
    exact = path_offset(80.0, 0.0, 1 / 200)
    assert abs(float(exact) - parabola) == pytest.approx(80.0**4 / 200**3 / 8, rel=0.1)


def test_curvature_needs_speed_and_a_yaw_rate() -> None:
    v = np.array([20.0, 1.9, 20.0, 20.0])
    w = np.array([0.1, 0.1, np.nan, -0.2])
    np.testing.assert_array_equal(path_curvature(v, w), [0.005, 0.0, 0.0, -0.01])
    np.testing.assert_array_equal(path_curvature(v, None), np.zeros(4))


def signals_with(n: int, **fields: np.ndarray) -> dict[str, np.ndarray]:
    """Signals of ``n`` cycles at 20 m/s carrying the object fields (cycles x count)."""
    out: dict[str, np.ndarray] = {"ego_speed": np.full(n, 20.0)}
    for field, mat in fields.items():
        for j in range(mat.shape[1]):
            out[object_column(field, j)] = np.ascontiguousarray(mat[:, j])
    return out


def test_curved_path_and_straight_line_pick_different_objects() -> None:
    radius = 200.0
    x = 60.0
    arc_y = radius - math.sqrt(radius**2 - x**2)  # the path's lateral position at x
    n = 3
    sig = signals_with(
        n,
        obj_dx=np.tile([x + 5.0, x], (n, 1)),
        obj_dy=np.tile([0.0, arc_y], (n, 1)),  # id 1 straight ahead, id 2 on the arc
        obj_vx=np.tile([-20.0, -20.0], (n, 1)),
        obj_valid=np.ones((n, 2)),
        obj_id=np.tile([1.0, 2.0], (n, 1)),
    )
    straight = derive_target(sig, object_matrices(sig))
    assert (straight["target_id"] == 1).all() and (straight["target_distance"] == x + 5).all()
    sig["ego_yaw_rate"] = np.full(n, 20.0 / radius)  # kappa = 1/200, turning left
    curved = derive_target(sig, object_matrices(sig))
    assert (curved["target_id"] == 2).all() and (curved["target_distance"] == x).all()
    assert abs(curved["target_lateral"][0]) < 0.05  # the path offset, not obj_dy
    # measured from the rear axle, the same objects sit further round the curve
    far = derive_target(sig, object_matrices(sig), axle_to_front=40.0)
    assert np.isnan(far["target_distance"]).all() and (far["target_valid"] == 0).all()


def cut_out(n: int = 300) -> tuple[dict[str, np.ndarray], int]:
    """Lead id 1 at 30 m swerves left at 1 m/s from t = 1 s; a stationary car (id 2) at
    70 m behind it; a car (id 3) in the adjacent lane at 20 m; one empty slot. Returns
    the signals and the analytic handover cycle (|lead dy| first > 1.0 m)."""
    t = np.arange(n) * DT
    lead_dy = np.maximum(t - 1.0, 0.0) * 1.0
    dx = np.column_stack([np.full(n, 30.0), np.full(n, 70.0), np.full(n, 20.0), np.full(n, np.nan)])
    dy = np.column_stack([lead_dy, np.zeros(n), np.full(n, 3.6), np.full(n, np.nan)])
    vx = np.column_stack([np.zeros(n), np.full(n, -20.0), np.zeros(n), np.full(n, np.nan)])
    ids = np.column_stack([np.ones(n), np.full(n, 2.0), np.full(n, 3.0), np.full(n, np.nan)])
    valid = np.isfinite(dx).astype(float)
    sig = signals_with(n, obj_dx=dx, obj_dy=dy, obj_vx=vx, obj_valid=valid, obj_id=ids)
    handover = int(np.flatnonzero(lead_dy > 1.0 + 1e-12)[0])
    return sig, handover


def test_cut_out_hands_over_to_the_revealed_car_at_the_right_cycle() -> None:
    sig, handover = cut_out()
    got = derive_target(sig, object_matrices(sig))
    ids = got["target_id"]
    assert (ids[:handover] == 1).all() and (ids[handover:] == 2).all()
    assert got["target_distance"][handover] == 70.0 and got["target_rel_speed"][handover] == -20
    wide = derive_target(sig, object_matrices(sig), path_half_width=4.0)
    assert (wide["target_id"] == 3).all()  # the adjacent lane is "in path" at ±4 m


def brake_at(n: int, cycle: int, reacted_to: float | None = None) -> dict[str, np.ndarray]:
    decel = np.where(np.arange(n) >= cycle, 6.0, 0.0)
    out = {"aeb_decel": decel, "fcw": np.zeros(n)}
    if reacted_to is not None:
        out["reacted_to"] = np.full(n, reacted_to)
    return out


def test_kpis_use_the_derived_target_and_name_the_track() -> None:
    sig, handover = cut_out()
    n = 300
    t = np.arange(n) * DT
    before = compute_kpis(t, sig, brake_at(n, handover - 10, reacted_to=1.0))
    assert before["target_id_at_brake"] == 1.0 and before["reacted_to_at_brake"] == 1.0
    assert before["braked_for_out_of_path"] is False
    after = compute_kpis(t, sig, brake_at(n, handover + 10, reacted_to=1.0))
    assert after["target_id_at_brake"] == 2.0
    assert after["braked_for_out_of_path"] is True  # braked for the car that swerved out
    assert after["ttc_at_brake"] == pytest.approx(70.0 / 20.0)  # TTC of the revealed car
    adjacent = compute_kpis(t, sig, brake_at(n, 50, reacted_to=3.0))
    assert adjacent["braked_for_out_of_path"] is True
    silent = compute_kpis(t, sig, brake_at(n, 50))
    assert silent["braked_for_out_of_path"] is None and silent["reacted_to_at_brake"] is None
    assert silent["target_id_at_brake"] == 1.0
    idle = compute_kpis(t, sig, {"aeb_decel": np.zeros(n), "fcw": np.zeros(n), "reacted_to": t})
    assert idle["braked_for_out_of_path"] is False and idle["target_id_at_brake"] is None


def test_settings_reach_the_derivation() -> None:
    sig, _ = cut_out()
    n = 300
    t = np.arange(n) * DT
    wide = compute_kpis(t, sig, brake_at(n, 50, 3.0), KpiSettings(path_half_width=4.0))
    assert wide["target_id_at_brake"] == 3.0 and wide["braked_for_out_of_path"] is False
    with pytest.raises(ValueError, match="path_half_width"):
        KpiSettings(path_half_width=0.0)
    with pytest.raises(ValueError, match="axle_to_front"):
        KpiSettings(axle_to_front=-1.0)


def test_mapped_target_channels_win() -> None:
    sig, _ = cut_out()
    n = 300
    sig["target_distance"] = np.full(n, 12.0)
    sig["target_rel_speed"] = np.full(n, -6.0)
    assert kpi_signals(sig, path_half_width=1.0, axle_to_front=0.0) is sig
    k = compute_kpis(np.arange(n) * DT, sig, brake_at(n, 50, 2.0))
    assert k["ttc_at_brake"] == pytest.approx(2.0)
    assert k["target_id_at_brake"] is None and k["braked_for_out_of_path"] is None


def test_replay_settings_name_the_path_knobs() -> None:
    from pytest_adsreplay.replay import kpi_settings

    ks = kpi_settings(path_half_width=2.5, axle_to_front=3.7)
    assert (ks.path_half_width, ks.axle_to_front) == (2.5, 3.7)

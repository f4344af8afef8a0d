"""The reference function selecting its target from an object list (cut-in,
cut-out revealing a stationary car, a stationary car beside a curve, clutter and invalid
slots, a target switch restarting the confirmation, and the same choice as the KPI target).

The recordings (``tests/reference_scenarios.py``) are synthetic ego-relative kinematics on
the 10 ms grid, stepped through the same loop as a replay (:func:`run_function`), so the
function sees real ``frame["objects"]`` views; their KPIs come from :func:`compute_kpis`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from reference_scenarios import (
    DT,
    SLOTS,
    V,
    closing,
    clutter,
    curve,
    cut_in,
    cut_out,
    ghost,
    no_lateral,
    random_list,
    recording,
)

from pytest_adsreplay.function.reference import FULL, PARTIAL, WARNING, TtcAeb
from pytest_adsreplay.function.stepping import run_function
from pytest_adsreplay.kpi.compute import compute_kpis
from pytest_adsreplay.kpi.target import derive_target
from pytest_adsreplay.signals import CANONICAL_SIGNALS
from pytest_adsreplay.signals.objects import object_matrices


def replay(
    t: np.ndarray, sig: dict[str, np.ndarray], **params: float
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The reference function's outputs over the recording, and the KPIs."""
    out = run_function(TtcAeb(**params), t, sig, inputs=CANONICAL_SIGNALS, recording="synthetic")
    return out, compute_kpis(t, sig, out)


def first(values: np.ndarray, threshold: float = 1.0) -> int | None:
    hits = np.flatnonzero(values >= threshold)
    return int(hits[0]) if hits.size else None


def test_cut_in_brakes_for_the_cut_in_car() -> None:
    t, sig = cut_in()
    out, kpis = replay(t, sig)
    i_brake = first(out["aeb_decel"])
    assert i_brake is not None
    in_path = np.flatnonzero(sig["obj_dy[1]"] <= 1.0)[0]
    assert i_brake > in_path  # not before the car is in the path
    assert out["reacted_to"][i_brake] == 5.0
    assert (out["reacted_to"][:in_path] == 1.0).all()  # the far lead until then
    assert (out["reacted_to"][in_path:i_brake] == 5.0).all()
    assert kpis["reacted_to_at_brake"] == 5.0 and kpis["target_id_at_brake"] == 5.0
    assert kpis["braked_for_out_of_path"] is False
    assert out["state"].max() == FULL


def test_cut_out_brakes_for_the_revealed_stationary_car() -> None:
    t, sig = cut_out()
    out, kpis = replay(t, sig)
    handover = int(np.flatnonzero(sig["obj_dy[0]"] > 1.0)[0])
    assert (out["reacted_to"][:handover] == 1.0).all()
    ahead = sig["obj_dx[1]"] > 0
    assert (out["reacted_to"][handover:][ahead[handover:]] == 2.0).all()
    assert out["fcw"][:handover].max() == 0.0  # following the lead is no threat
    i_fcw, i_brake = first(out["fcw"]), first(out["aeb_decel"])
    assert i_fcw is not None and i_brake is not None and handover < i_fcw < i_brake
    assert (i_brake - i_fcw) * DT >= 0.8  # R152 warning lead, also after a switch
    assert kpis["reacted_to_at_brake"] == 2.0 and kpis["target_id_at_brake"] == 2.0
    assert kpis["braked_for_out_of_path"] is False
    assert kpis["collision"] is False  # 72 km/h onto a stationary car: avoided


def test_cut_out_during_a_warning_escalates_for_the_revealed_car() -> None:
    """The ego closes on the lead at 5 m/s (warning for id 1, TTC 2.4 s) when it swerves
    out at t = 2.6 s in front of a stationary car at TTC 1.5 s: the warning stays on
    through the switch, and the cascade escalates for the new target once it is
    confirmed (0.1 s)."""
    t, sig = cut_out(lead_rel=-5.0, swerve=2.1, parked=30.0 + 2.6 * V)
    out, kpis = replay(t, sig)
    handover = int(np.flatnonzero(sig["obj_dy[0]"] > 1.0)[0])
    i_fcw = first(out["fcw"])
    assert i_fcw is not None and i_fcw < handover
    assert out["reacted_to"][i_fcw] == 1.0 and out["state"][handover - 1] == WARNING
    passed = int(np.flatnonzero(sig["obj_dx[1]"] <= 0)[0])  # open loop: it is passed
    assert (out["fcw"][i_fcw:passed] == 1.0).all()  # never released across the switch
    i_brake = first(out["aeb_decel"])
    assert i_brake is not None and out["reacted_to"][i_brake] == 2.0
    confirm = round(TtcAeb().confirm_time / DT)
    assert i_brake == handover + confirm  # escalation waits for the new target's confirmation
    assert kpis["braked_for_out_of_path"] is False


def test_curve_stationary_car_in_the_adjacent_lane_does_not_brake() -> None:
    t, sig = curve()
    assert np.nanmin(np.abs(sig["obj_dy[0]"])) < 0.5  # the straight line runs into it
    out, kpis = replay(t, sig)
    assert out["fcw"].max() == 0.0 and out["aeb_decel"].max() == 0.0
    assert np.isnan(out["reacted_to"]).all()
    assert kpis["brake_time"] is None
    # without the yaw rate the same list is a threat straight ahead (the test can fail)
    straight = {k: v for k, v in sig.items() if k != "ego_yaw_rate"}
    out2, _ = replay(t, straight)
    assert out2["aeb_decel"].max() > 0.0 and np.nanmax(out2["reacted_to"]) == 4.0


def test_curve_car_on_the_path_brakes() -> None:
    t, sig = curve(lane=0.0)
    _, kpis = replay(t, sig)
    assert kpis["brake_time"] is not None and kpis["reacted_to_at_brake"] == 4.0
    assert kpis["braked_for_out_of_path"] is False


def test_axle_to_front_moves_objects_round_the_curve() -> None:
    """On the arc through the rear axle, an object 3.7 m further out sits further off the
    path than measured from the front: the parameter reaches the selection."""
    t, sig = curve(lane=-1.0)
    plain, _ = replay(t, sig)
    assert plain["aeb_decel"].max() > 0.0  # 1.0 m out: within the half width
    shifted, _ = replay(t, sig, axle_to_front=3.7)
    assert np.isnan(shifted["reacted_to"][:100]).all()  # further round: off the path


def test_clutter_and_invalid_slots_are_ignored() -> None:
    t, sig = clutter()
    assert sum(1 for k in sig if k.startswith("obj_dx[")) == SLOTS
    out, kpis = replay(t, sig)
    ahead = closing(t, 70.0, -V) > 0
    assert (out["reacted_to"][ahead] == 7.0).all()
    assert kpis["reacted_to_at_brake"] == 7.0
    assert kpis["ttc_at_brake"] == pytest.approx(TtcAeb().partial_ttc, abs=0.011)
    assert kpis["braked_for_out_of_path"] is False


@pytest.mark.parametrize("seed", range(6))
def test_selection_is_the_kpi_target(seed: int) -> None:
    """Random lists on random curves: every cycle the function selects the object the
    KPI target derivation picks (same formula, same gate), with its TTC."""
    t, sig = random_list(seed)
    out, _ = replay(t, sig)
    kpi = derive_target(sig, object_matrices(sig))
    np.testing.assert_array_equal(out["reacted_to"], kpi["target_id"])
    has = kpi["target_valid"] == 1
    assert has.any() and (~has).any()
    fn = TtcAeb()
    with np.errstate(divide="ignore"):
        ttc = np.where(
            kpi["target_rel_speed"] < 0, kpi["target_distance"] / -kpi["target_rel_speed"], np.inf
        )
    np.testing.assert_array_equal(out["ttc"][has], ttc[has])
    assert np.isnan(out["ttc"][~has]).all()
    assert fn.max_lateral == 1.0


def test_an_object_crossing_the_path_cannot_escalate_braking() -> None:
    t, sig = ghost()
    out, _ = replay(t, sig)
    i_ghost = first(np.nan_to_num(out["reacted_to"] == 66.0))
    assert i_ghost is not None and out["state"][i_ghost - 1] == WARNING
    window = slice(i_ghost, i_ghost + 5)
    assert (out["reacted_to"][window] == 66.0).all()
    assert (out["state"][window] == WARNING).all() and (out["aeb_decel"][window] == 0.0).all()
    i_brake = first(out["aeb_decel"])
    assert i_brake is not None and out["reacted_to"][i_brake] == 1.0  # later, for the car
    # a threat that stays (15 cycles) does escalate, once confirmed
    t, sig = ghost(cycles=15)
    out, _ = replay(t, sig)
    i_brake = first(out["aeb_decel"])
    assert i_brake is not None and out["reacted_to"][i_brake] == 66.0
    assert out["state"][i_brake] == FULL
    assert i_brake - first(np.nan_to_num(out["reacted_to"] == 66.0)) == 10  # type: ignore[operator]


def test_list_without_valid_objects_reads_the_target_signals() -> None:
    """Only a list with a valid object replaces the target_* signals; reacted_to is NaN
    while they are used."""
    n = 300
    t = np.arange(n) * DT
    empty = [{"obj_dx": np.full(n, np.nan)}, {"obj_dx": np.full(n, 5.0), "obj_valid": np.zeros(n)}]
    _, sig = recording(n, empty)
    sig["target_distance"] = closing(t, 40.0, -13.9)
    sig["target_rel_speed"] = np.full(n, -13.9)
    sig["target_valid"] = np.ones(n)
    out, _ = replay(t, sig)
    assert np.isnan(out["reacted_to"]).all()
    assert out["aeb_decel"].max() > 0.0  # the target signals' approach
    plain = run_function(TtcAeb(), t, {k: v for k, v in sig.items() if "[" not in k})
    assert "reacted_to" not in plain
    for key in ("fcw", "aeb_decel", "ttc", "state"):
        np.testing.assert_array_equal(out[key], plain[key])


def test_single_target_frames_have_no_reacted_to_output() -> None:
    fn = TtcAeb()
    frame = {"t": 0.0, "ego_speed": V, "target_distance": 30.0, "target_rel_speed": -V}
    assert set(fn.step(frame)) == {"fcw", "aeb_decel", "ttc", "state"}


def test_reset_forgets_the_selected_target() -> None:
    t, sig = cut_out(lead_rel=-5.0, swerve=2.1, parked=82.0)
    fn = TtcAeb()
    a = run_function(fn, t, sig, inputs=CANONICAL_SIGNALS)
    b = run_function(fn, t, sig, inputs=CANONICAL_SIGNALS)  # resets before the recording
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert math.isnan(TtcAeb()._target)


def test_axle_to_front_is_checked() -> None:
    with pytest.raises(ValueError, match="axle_to_front"):
        TtcAeb(axle_to_front=-1.0)
    assert PARTIAL < FULL


def test_a_list_without_lateral_offsets_places_objects_straight_ahead() -> None:
    """``obj_dy`` NaN (not mapped) counts as 0 m, as in the KPI target: on a gentle curve
    a car 30 m straight ahead is 0.45 m off the path, so it is still selected."""
    t, sig = no_lateral()
    out, _ = replay(t, sig)
    assert (out["reacted_to"] == 3.0).all()
    assert out["ttc"][0] == pytest.approx(30.0 / V)

"""Scenario assertions for the AEB function: warning and braking timing, outcomes.

Each test runs once per selected recording; ``replay`` carries the KPIs.
"""

from __future__ import annotations

import pytest
from conftest import r152_max_impact_kph

from pytest_adsreplay.assertions import assert_kpi

ncap = pytest.mark.recordings(tags="ncap")
constant_speed_targets = pytest.mark.recordings(scenario=["CCRs", "CCRm"])


@constant_speed_targets
def test_brake_timing_window(replay):
    """Partial braking starts at TTC 1.7 s: within one cycle plus sensor noise."""
    assert_kpi(replay, "ttc_at_brake", min=1.6, max=1.8, why="calibrated partial-brake TTC")


@ncap
def test_no_braking_while_ttc_above_3s(replay):
    """Nuisance limit (R131): braking must not start while TTC > 3.0 s."""
    assert_kpi(replay, "ttc_at_brake", max=3.0)


@constant_speed_targets
def test_warning_leads_braking_by_r152_margin(replay):
    """UN R152: the collision warning comes at least 0.8 s before emergency braking."""
    assert_kpi(replay, "fcw_lead_time", min=0.8, why="UN R152 5.2.1.1")


@ncap
def test_emergency_braking_demand(replay):
    """UN R152: emergency braking demands at least 5 m/s²."""
    assert_kpi(replay, "max_decel", min=5.0)


@pytest.mark.recordings(tags="false-activation")
def test_no_activation_on_false_activation_drives(replay):
    """No warning and no braking where the target never becomes critical."""
    assert replay.fcw_time is None, f"{replay.recording}: warned at t = {replay.fcw_time} s"
    assert replay.activations == [], f"{replay.recording}: braked {replay.activations}"


@pytest.mark.recordings(scenario="CCRs")
def test_ccrs_outcome(replay, recording):
    """No collision up to 50 km/h; above, impact speed within R152's table (to 60 km/h)."""
    speed = recording.nominal_speed
    if speed <= 50:
        assert_kpi(replay, "collision", equals=False, why=f"CCRs {speed:g} km/h must be avoided")
    elif speed <= 60:
        limit = r152_max_impact_kph(speed) / 3.6
        assert_kpi(replay, "impact_speed", max=limit, why=f"R152 at {speed:g} km/h")
    else:
        assert replay.impact_speed < speed / 3.6, "the function must at least mitigate"


@pytest.mark.recordings(pattern="ncap/CCRs_40kph.mf4")
@pytest.mark.parametrize(
    "fcw_ttc",
    [
        pytest.param(2.4, marks=pytest.mark.adsreplay_params(fcw_ttc=2.4)),
        pytest.param(2.8, marks=pytest.mark.adsreplay_params(fcw_ttc=2.8)),
        pytest.param(3.2, marks=pytest.mark.adsreplay_params(fcw_ttc=3.2)),
    ],
)
def test_warning_calibration_variants(replay, fcw_ttc):
    """Each calibration warns at its own TTC (confirmation time 0.1 s) and still avoids."""
    assert replay.ttc_at_fcw == pytest.approx(fcw_ttc - 0.1, abs=0.06)
    assert replay.collision is False

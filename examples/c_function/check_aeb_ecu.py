"""The team's own requirements on the C function, replayed on generated NCAP recordings."""

from __future__ import annotations

import pytest


@pytest.mark.recordings(scenario="CCRs")
def test_no_collision_with_a_stationary_target_up_to_50_kph(recording, replay):
    if recording.nominal_speed > 50:
        pytest.skip("above the speed range this function must avoid")
    assert not replay.collision, f"impact at {replay.impact_speed:.1f} m/s"


@pytest.mark.recordings(tags=["ncap"])
def test_warning_comes_before_braking(replay):
    assert replay.fcw_time is not None and replay.brake_time is not None
    assert replay.fcw_lead_time >= 0.4  # s; a braking lead 12 m ahead leaves little time


@pytest.mark.recordings(tags=["ncap"])
def test_extra_outputs_are_kept(replay):
    ttc = replay.outputs["TtcEst"]
    assert ttc.shape == replay.t.shape


@pytest.mark.adsreplay_params(brake={"ttc": 2.2, "decel": 6.0})
@pytest.mark.recordings(scenario="CCRs")
def test_earlier_softer_calibration_still_brakes(replay):
    assert replay.max_decel == 6.0
    assert replay.ttc_at_brake >= 2.1

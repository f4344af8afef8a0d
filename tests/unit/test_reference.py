"""The reference TTC cascade on hand-made frames, and its defaults against the closed forms."""

from __future__ import annotations

import math
import random

import pytest

from pytest_adsreplay.function.reference import FULL, IDLE, PARTIAL, WARNING, TtcAeb

CYCLE = 0.01
DEAD_TIME = 0.2  # SPEC §4 default actuator delay
JERK = 40.0  # SPEC §4 default jerk limit


def frame(t: float = 0.0, **values: float) -> dict[str, float]:
    base = {
        "t": t,
        "ego_speed": 13.9,
        "ego_accel": 0.0,
        "target_distance": math.nan,
        "target_rel_speed": math.nan,
        "target_lateral": 0.0,
        "target_valid": 0.0,
        "driver_brake": 0.0,
    }
    base.update(values)
    return base


def approach(
    v0: float,
    ttc0: float = 4.0,
    *,
    v_target: float = 0.0,
    lateral: float = 0.0,
    duration: float | None = None,
) -> list[dict[str, float]]:
    """Noise-free constant-speed approach on the 10 ms grid, from TTC ``ttc0`` to 0.05 s."""
    closing = v0 - v_target
    n = round((duration or ttc0 - 0.05) / CYCLE) + 1
    return [
        frame(
            i * CYCLE,
            ego_speed=v0,
            target_distance=(ttc0 - i * CYCLE) * closing,
            target_rel_speed=-closing,
            target_lateral=lateral,
            target_valid=1.0,
        )
        for i in range(n)
    ]


def run(fn: TtcAeb, frames: list[dict[str, float]]) -> list[dict[str, float]]:
    fn.reset()
    return [fn.step(f) for f in frames]


def first(outputs: list[dict[str, float]], key: str, threshold: float = 1.0) -> int | None:
    return next((i for i, o in enumerate(outputs) if o[key] >= threshold), None)


def test_cascade_crosses_each_threshold_at_its_ttc() -> None:
    fn = TtcAeb()
    frames = approach(50 / 3.6)
    out = run(fn, frames)
    i_fcw, i_partial = first(out, "fcw"), first(out, "aeb_decel")
    i_full = first(out, "aeb_decel", fn.full_decel)
    assert i_fcw is not None and i_partial is not None and i_full is not None
    ttc = [o["ttc"] for o in out]
    # warning: threshold crossed, then confirmed for 0.1 s
    assert fn.fcw_ttc - fn.confirm_time - CYCLE < ttc[i_fcw] <= fn.fcw_ttc - fn.confirm_time + 1e-6
    assert fn.partial_ttc - CYCLE < ttc[i_partial] <= fn.partial_ttc + 1e-9
    assert fn.full_ttc - CYCLE < ttc[i_full] <= fn.full_ttc + 1e-9
    assert out[i_partial]["aeb_decel"] == fn.partial_decel
    assert [o["state"] for o in (out[i_fcw], out[i_partial], out[i_full])] == [
        WARNING,
        PARTIAL,
        FULL,
    ]
    assert (i_partial - i_fcw) * CYCLE >= 0.8  # R152 warning lead
    assert all(o["fcw"] == 1.0 for o in out[i_fcw:])  # holds to the end of the approach
    assert all(o["aeb_decel"] == fn.full_decel for o in out[i_full:])


@pytest.mark.parametrize("v_kph", [10, 30, 50, 80])
def test_no_braking_while_ttc_above_3_s(v_kph: float) -> None:
    rng = random.Random(v_kph)
    frames = approach(v_kph / 3.6, ttc0=6.0)
    for f in frames:  # measurement noise as in the generated recordings
        f["target_distance"] += rng.gauss(0.0, 0.05)
        f["target_rel_speed"] += rng.gauss(0.0, 0.05)
    out = run(TtcAeb(), frames)
    braking = [o["ttc"] for o in out if o["aeb_decel"] > 0.0]
    assert braking, "the approach must end in braking"
    assert max(braking) <= 3.0


@pytest.mark.parametrize(
    ("lateral", "active"),
    [
        (0.0, True),
        (0.9, True),
        (-0.95, True),
        (math.nan, True),
        (1.2, False),
        (-2.0, False),
        (3.5, False),
    ],
)
def test_lateral_gate(lateral: float, active: bool) -> None:
    out = run(TtcAeb(), approach(50 / 3.6, lateral=lateral))
    assert (first(out, "fcw") is not None) is active
    assert (first(out, "aeb_decel") is not None) is active


@pytest.mark.parametrize(
    "target",
    [
        {"target_valid": 0.0, "target_distance": 0.0, "target_rel_speed": 0.0},  # radar's "none"
        {"target_valid": 0.0, "target_distance": 5.0, "target_rel_speed": -10.0},
        {"target_valid": math.nan, "target_distance": math.nan, "target_rel_speed": math.nan},
        {"target_valid": 1.0, "target_distance": 5.0, "target_rel_speed": 2.0},  # opening
        {"target_valid": 1.0, "target_distance": 5.0, "target_rel_speed": 0.0},  # same speed
    ],
)
def test_no_target_or_no_closing_means_nothing(target: dict[str, float]) -> None:
    frames = [frame(i * CYCLE, **target) for i in range(300)]
    out = run(TtcAeb(), frames)
    assert all(o["fcw"] == 0.0 and o["aeb_decel"] == 0.0 for o in out)
    assert all(o["state"] == IDLE for o in out)


def test_missing_valid_flag_is_derived_from_distance() -> None:
    frames = approach(50 / 3.6)
    for f in frames:
        f["target_valid"] = math.nan
    assert first(run(TtcAeb(), frames), "aeb_decel") is not None


def test_short_spike_does_not_trigger() -> None:
    """Five cycles of a critical in-path object (one interpolated radar interval) do nothing."""
    frames = [frame(i * CYCLE) for i in range(200)]
    for f in frames[50:55]:
        f.update(target_valid=1.0, target_distance=2.0, target_rel_speed=-13.9)
    out = run(TtcAeb(), frames)
    assert all(o["fcw"] == 0.0 and o["aeb_decel"] == 0.0 for o in out)


def test_noise_near_threshold_does_not_restart_confirmation() -> None:
    """TTC dithering around fcw_ttc within the hysteresis band still warns 0.1 s after."""
    fn = TtcAeb()
    frames = []
    for i in range(30):
        ttc = fn.fcw_ttc - 0.05 if i % 2 == 0 else fn.fcw_ttc + 0.1
        frames.append(
            frame(i * CYCLE, target_valid=1.0, target_distance=ttc * 10.0, target_rel_speed=-10.0)
        )
    out = run(fn, frames)
    assert first(out, "fcw") == round(fn.confirm_time / CYCLE)


def test_reset_clears_state() -> None:
    fn = TtcAeb()
    out = run(fn, approach(50 / 3.6))
    assert out[-1]["aeb_decel"] == fn.full_decel and fn.state == FULL
    fn.reset()
    assert fn.state == IDLE
    o = fn.step(frame(100.0))
    assert o["fcw"] == 0.0 and o["aeb_decel"] == 0.0 and o["state"] == IDLE


def test_braking_holds_through_dropouts_and_releases_when_threat_clears() -> None:
    fn = TtcAeb()
    frames = approach(50 / 3.6, duration=3.0)  # ends at TTC 1.0 s, full braking
    t_end = frames[-1]["t"]
    gone = [frame(t_end + (i + 1) * CYCLE) for i in range(100)]  # target lost for 1 s
    out = run(fn, frames + gone)
    released = [i for i, o in enumerate(out[len(frames) :]) if o["aeb_decel"] == 0.0]
    assert released, "braking must release once the threat has cleared"
    assert released[0] * CYCLE + CYCLE == pytest.approx(fn.release_time, abs=1.5 * CYCLE)
    assert out[len(frames) + 10]["aeb_decel"] == fn.full_decel  # a short dropout holds


def test_braking_releases_at_standstill() -> None:
    fn = TtcAeb()
    frames = approach(50 / 3.6, duration=3.0)
    last = dict(frames[-1])
    stop = [dict(last, t=last["t"] + CYCLE, ego_speed=0.0)]
    out = run(fn, frames + stop)
    assert out[-2]["aeb_decel"] == fn.full_decel
    assert out[-1]["aeb_decel"] == 0.0 and out[-1]["fcw"] == 0.0


def test_no_activation_below_min_speed() -> None:
    fn = TtcAeb()
    out = run(fn, approach(fn.min_speed * 0.7))
    assert first(out, "fcw") is None


def test_outputs_are_plain_numbers() -> None:
    out = run(TtcAeb(), approach(30 / 3.6))
    for o in out:
        assert o["fcw"] in (0.0, 1.0)
        assert isinstance(o["aeb_decel"], float) and o["aeb_decel"] >= 0.0
        assert set(o) == {"fcw", "aeb_decel", "ttc", "state"}


@pytest.mark.parametrize(
    "params",
    [
        {"full_ttc": 2.0, "partial_ttc": 1.7},
        {"partial_ttc": 3.0},
        {"full_decel": 3.0},
        {"fcw_ttc": -1.0},
        {"max_lateral": math.inf},
        {"confirm_time": "0.1"},
    ],
)
def test_bad_parameters_are_rejected(params: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError), match="TtcAeb"):
        TtcAeb(**params)  # type: ignore[arg-type]


def test_parameters_are_keyword_arguments() -> None:
    fn = TtcAeb(partial_ttc=2.0, fcw_ttc=3.0)
    out = run(fn, approach(50 / 3.6))
    i = first(out, "aeb_decel")
    assert i is not None and 1.99 < out[i]["ttc"] <= 2.0


# -------------------------------------------------------- defaults vs the closed forms


def latest_avoiding_ttc(v0: float, decel: float, dead_time: float, ramp: float) -> float:
    """AEB_REFERENCE: TTC >= t_l + t_r/2 + v0/(2a) - a t_r²/(24 v0) still avoids (stationary)."""
    return dead_time + ramp / 2 + v0 / (2 * decel) - decel * ramp**2 / (24 * v0)


@pytest.mark.parametrize("v_kph", range(10, 51))
def test_full_stage_alone_avoids_ccrs_up_to_50_kph(v_kph: int) -> None:
    fn = TtcAeb()
    v0 = v_kph / 3.6
    ramp = fn.full_decel / JERK
    request_ttc = fn.full_ttc - CYCLE  # sampled one cycle late at worst
    assert request_ttc >= latest_avoiding_ttc(v0, fn.full_decel, DEAD_TIME, ramp)
    # the same as distances: gap at decel onset >= stopping distance with ramp
    gap_onset = request_ttc * v0 - v0 * DEAD_TIME
    stopping = v0 * ramp / 2 + v0**2 / (2 * fn.full_decel) - fn.full_decel * ramp**2 / 24
    assert gap_onset >= stopping


def test_closed_form_matches_a_numeric_ramp() -> None:
    """The ramp formula of AEB_REFERENCE agrees with integrating the jerk-limited decel."""
    v0, a, ramp, dt = 50 / 3.6, 9.0, 9.0 / JERK, 1e-5
    v, s, t = v0, 0.0, 0.0
    while v > 0:
        decel = min(a, JERK * t)
        s += v * dt
        v -= decel * dt
        t += dt
    expected = v0 * ramp / 2 + v0**2 / (2 * a) - a * ramp**2 / 24
    assert s == pytest.approx(expected, abs=0.01)


def test_default_timing_meets_regulation() -> None:
    fn = TtcAeb()
    assert fn.partial_ttc <= 3.0  # R131: no braking while TTC > 3.0 s
    assert fn.fcw_ttc - fn.confirm_time - fn.partial_ttc >= 0.8 + 0.15  # R152 lead + noise
    assert fn.full_decel >= 5.0  # R152 emergency braking demand
    assert fn.partial_decel >= 1.0  # partial braking counts as brake onset (SPEC §4)

"""False-activation drives: situations where an AEB function must neither warn nor brake.

Each one is a plain drive with a fixed length whose target (if any) never becomes
critical: a free road, a lead accelerating away, a slower car in the next lane, steady
following, parked cars beside the path, a lead that stops gently with the ego driver
stopping behind it, and a faster car cutting in ahead. Their expectation is the same for
every function: ``fcw = false``, ``brake = false``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pytest_adsreplay.scenarios.synthesis import Knots, Motion, Scenario, Target, kph

__all__ = [
    "fa_adjacent_lane",
    "fa_cut_in",
    "fa_following",
    "fa_lead_accelerating",
    "fa_lead_stops",
    "fa_no_target",
    "fa_parked_cars",
]


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

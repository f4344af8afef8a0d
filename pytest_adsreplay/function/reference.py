"""The bundled reference function: a TTC cascade (warning → partial → full braking).

It is the example the generated recordings are built to pass, not the product. Use it as
``--aeb-function pytest_adsreplay.reference:TtcAeb``; every threshold is a keyword
parameter, so calibration variants can be parametrized.

How the defaults follow from the closed forms of ``AEB_REFERENCE.md`` with the KPI
projection's default actuator (dead time t_l = 0.2 s, jerk limit J = 40 m/s^3, so a ramp
to a takes t_r = a/J):

* **Full braking** ``full_decel = 9.0`` m/s^2 (R152 asks >= 5; about the dry-road limit),
  t_r = 0.225 s. The latest request that still avoids a stationary target is
  TTC_req(v) = t_l + t_r/2 + v/(2a) - a*t_r^2/(24v). At 50 km/h that is
  0.200 + 0.1125 + 0.772 - 0.001 = 1.083 s. Allowing one cycle of sampling (the
  request comes at TTC >= full_ttc - 0.01 s), ``full_ttc = 1.2`` leaves a 0.11 s (1.5 m)
  margin. The full stage *alone* therefore avoids every v with TTC_req(v) <= 1.19 s,
  i.e. v <= 2a*(1.19 - 0.3125) = 15.8 m/s (57 km/h). For a target moving at constant
  speed, the same holds with the closing speed in place of v.
* **Partial braking** ``partial_decel = 4.0`` m/s^2 from ``partial_ttc = 1.7`` s. It
  acts for 0.5 s before the full request (its delay and its 0.1 s ramp overlap the
  full stage's delay), so it removes about 4 * 0.45 = 1.8 m/s before the full stage.
  Projected: CCRs is avoided up to 75 km/h (0.4 m left) and hits at 4.7 m/s
  (17 km/h) at 80 km/h. CCRm (20 km/h target) is avoided up to 80 km/h. R152's table
  (0 up to 40 km/h, 42->10 ... 60->35 km/h) is met with room to spare. Partial
  braking is the first request >= 1.0 m/s^2, i.e. ``brake_time``. Since
  1.7 s <= 3.0 s, braking never starts while TTC > 3.0 s (R131 nuisance limit).
* **Warning** ``fcw_ttc = 2.8`` s, confirmed for ``confirm_time = 0.1`` s. On a target
  that does not brake, the FCW therefore comes at TTC ~ 2.7 s, 1.0 s before braking.
  That meets R152's >= 0.8 s lead, with 0.2 s to spare for measurement noise at low
  closing speed (at 10 km/h, 0.05 m/s rel-speed noise alone is 2 % of TTC).
* **Confirmation and hysteresis**: a threat starts when TTC <= ``fcw_ttc`` and stays
  alive while TTC <= ``fcw_ttc + hysteresis`` (0.3 s), so noise near the threshold does
  not restart the 0.1 s (10-cycle) confirmation. A radar sample is 50 ms. When an
  object switches or is lost, interpolation across one radar interval sweeps its
  lateral offset through the path for at most 5 cycles, which cannot confirm a threat.
  The braking stages need an active warning, so they inherit the confirmation.
* **Gates**: a target is in path while ``|target_lateral| <= max_lateral = 1.0`` m (half
  a lane minus half a car; a NaN lateral counts as in path). No new activation starts
  below ``min_speed = 1.4`` m/s (5 km/h). Once active, the cascade only escalates. It
  releases when the threat has been gone for ``release_time = 0.5`` s, or when the ego
  has stopped (speed <= ``standstill_speed = 0.1`` m/s).

**Object lists.** When the frame carries an object list (``frame["objects"]``)
with at least one valid object (``obj_valid`` not 0 and a numeric ``obj_dx``), the
function selects its target from the list every cycle, with the rule of the KPI target:
the valid object with the smallest ``obj_dx > 0`` whose offset from the predicted path is
within ``± max_lateral``. The path is the arc of curvature kappa = ``ego_yaw_rate /
ego_speed`` through the rear axle (kappa = 0 when the yaw rate is NaN or the ego is slower
than 2 m/s); the object sits at x = ``obj_dx + axle_to_front`` (default 0 m), y =
``obj_dy`` (0 when NaN), and its offset is
``(2y - kappa (x^2 + y^2)) / (1 + sqrt((kappa x)^2 + (1 - kappa y)^2))``. The selection
has no memory of its own, so it is the KPI target and ``braked_for_out_of_path`` stays
false (while ``max_lateral`` and ``axle_to_front`` equal ``adsreplay_path_half_width`` and
``adsreplay_axle_to_front``, as they do by default). The cascade then runs
unchanged on that object's ``obj_dx``, ``obj_vx`` (relative speed) and offset (as
``target_lateral``), and the extra output ``reacted_to`` is its ``obj_id`` (NaN with no
in-path object).

* **A target switch restarts the confirmation.** When the selected track id changes (a
  cut-in, or a cut-out revealing the car ahead), the threat timer starts again, and with
  an object list the braking stages too need a threat confirmed for ``confirm_time``: a
  new object must stay a threat for 0.1 s before it can escalate braking, so an object
  that crosses the path for a few cycles cannot. A warning or braking already under way
  is kept (the cascade only escalates; it releases 0.5 s after the threat is gone), so a
  revealed stationary car takes the cascade on from where the lead left it.
* **Without a valid object in the list** (or without a list) the function reads the
  ``target_*`` signals as before, and ``reacted_to`` is NaN. ``reacted_to`` is an output
  only when the frame carries a list, so the outputs and KPIs of single-target
  recordings are exactly those of the function before object lists (the C twin always
  has the output; it is NaN there).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pytest_adsreplay.kpi.target import MIN_CURVATURE_SPEED

__all__ = ["FULL", "IDLE", "PARTIAL", "WARNING", "TtcAeb"]

#: Cascade states, also returned as the extra output ``state``.
IDLE, WARNING, PARTIAL, FULL = 0, 1, 2, 3
_EPS = 1e-9
#: :meth:`TtcAeb.select` with valid objects in the list but none in the path.
_NO_TARGET = (math.nan, math.nan, math.nan, math.nan)


class TtcAeb:
    """TTC cascade AEB: warning, then partial, then full braking (thresholds in s, m, m/s²)."""

    cycle_time = 0.01

    def __init__(
        self,
        *,
        fcw_ttc: float = 2.8,
        partial_ttc: float = 1.7,
        full_ttc: float = 1.2,
        partial_decel: float = 4.0,
        full_decel: float = 9.0,
        confirm_time: float = 0.1,
        hysteresis: float = 0.3,
        release_time: float = 0.5,
        max_lateral: float = 1.0,
        min_speed: float = 1.4,
        standstill_speed: float = 0.1,
        axle_to_front: float = 0.0,
    ) -> None:
        values = {
            "fcw_ttc": fcw_ttc,
            "partial_ttc": partial_ttc,
            "full_ttc": full_ttc,
            "partial_decel": partial_decel,
            "full_decel": full_decel,
            "confirm_time": confirm_time,
            "hysteresis": hysteresis,
            "release_time": release_time,
            "max_lateral": max_lateral,
            "min_speed": min_speed,
            "standstill_speed": standstill_speed,
            "axle_to_front": axle_to_front,
        }
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"TtcAeb {name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"TtcAeb {name} must be finite and >= 0, got {value!r}")
        if not 0 < full_ttc <= partial_ttc <= fcw_ttc:
            raise ValueError(
                "TtcAeb thresholds must satisfy 0 < full_ttc <= partial_ttc <= fcw_ttc, got "
                f"full_ttc={full_ttc}, partial_ttc={partial_ttc}, fcw_ttc={fcw_ttc}"
            )
        if not 0 < partial_decel <= full_decel:
            raise ValueError(
                "TtcAeb decelerations must satisfy 0 < partial_decel <= full_decel, got "
                f"partial_decel={partial_decel}, full_decel={full_decel}"
            )
        self.fcw_ttc = float(fcw_ttc)
        self.partial_ttc = float(partial_ttc)
        self.full_ttc = float(full_ttc)
        self.partial_decel = float(partial_decel)
        self.full_decel = float(full_decel)
        self.confirm_time = float(confirm_time)
        self.hysteresis = float(hysteresis)
        self.release_time = float(release_time)
        self.max_lateral = float(max_lateral)
        self.min_speed = float(min_speed)
        self.standstill_speed = float(standstill_speed)
        self.axle_to_front = float(axle_to_front)
        self.reset()

    def __repr__(self) -> str:
        return (
            f"TtcAeb(fcw_ttc={self.fcw_ttc}, partial_ttc={self.partial_ttc}, "
            f"full_ttc={self.full_ttc}, partial_decel={self.partial_decel}, "
            f"full_decel={self.full_decel})"
        )

    def reset(self) -> None:
        """Forget the cascade state (called before each recording)."""
        self.state = IDLE
        self._threat_since: float | None = None
        self._clear_since: float | None = None
        self._target = math.nan  # the track id selected from the object list last cycle

    def ttc(self, frame: Mapping[str, float]) -> float:
        """TTC of the in-path target: inf when not closing, NaN with no (in-path) target.

        A replay's frame carries every canonical input (NaN where absent), so the signals
        are read by subscript, which is cheaper than ``get`` on the read-only frame; a
        hand-made frame without some of them falls back to ``get`` (missing = NaN).
        """
        try:
            d = frame["target_distance"]
            vr = frame["target_rel_speed"]
            valid = frame["target_valid"]
            lat = frame["target_lateral"]
        except KeyError:
            d = frame.get("target_distance", math.nan)
            vr = frame.get("target_rel_speed", math.nan)
            valid = frame.get("target_valid", math.nan)
            lat = frame.get("target_lateral", math.nan)
        if not (d > 0.0) or vr != vr or valid == 0.0 or abs(lat) > self.max_lateral:
            return math.nan
        return d / -vr if vr < 0.0 else math.inf

    def select(
        self, frame: Mapping[str, float], objects: Any
    ) -> tuple[float, float, float, float] | None:
        """The target selected from an object list: ``(obj_dx, obj_vx, path offset, obj_id)``
        of the nearest in-path valid object ahead, all NaN when no valid object is in the
        path, None when the list holds no valid object at all (see the module docstring).

        :meth:`ObjectList.nearest_in_path
        <pytest_adsreplay.signals.objects.ObjectList.nearest_in_path>` makes the choice
        (in a replay for a chunk of cycles at once); a cycle without an object in the path
        looks whether the list holds any valid object at all (:meth:`~ObjectList.any_valid`).
        """
        try:
            speed = frame["ego_speed"]
            yaw = frame["ego_yaw_rate"]
        except KeyError:
            speed = frame.get("ego_speed", math.nan)
            yaw = frame.get("ego_yaw_rate", math.nan)
        kappa = yaw / speed if math.isfinite(yaw) and speed >= MIN_CURVATURE_SPEED else 0.0
        found = objects.nearest_in_path(kappa, self.max_lateral, self.axle_to_front)
        if found is None:
            # NaN (not mapped) counts as valid, like target_valid
            return _NO_TARGET if objects.any_valid() else None
        _, d, vr, offset, target = found
        return d, vr, offset, target

    def _follow(
        self, frame: Mapping[str, float], picked: tuple[float, float, float, float] | None
    ) -> float:
        """The TTC of the target :meth:`select` picked (the ``target_*`` signals' when the
        list holds no valid object); a new track id restarts the threat confirmation."""
        if picked is None:
            self._target = math.nan
            return self.ttc(frame)
        d, vr, _, target = picked
        if target == target and target != self._target:
            self._threat_since = None  # a new target: its threat is confirmed afresh
        self._target = target
        if not (d > 0.0) or vr != vr:
            return math.nan
        return d / -vr if vr < 0.0 else math.inf

    def step(self, frame: Mapping[str, float]) -> dict[str, float]:  # noqa: C901, PLR0912 - one state machine, mirrored line by line in native/ttc_aeb.c
        """One cycle: update the cascade and return ``fcw``, ``aeb_decel``, ``ttc``, ``state``
        (and ``reacted_to`` when the frame carries an object list)."""
        t = frame["t"]
        if "objects" in frame:
            listed = True
            picked = self.select(frame, frame["objects"])
            ttc = self._follow(frame, picked)
        else:
            listed = False
            picked = None
            ttc = self.ttc(frame)
        # False for NaN (no in-path target) and inf (not closing); the hysteresis band
        # keeps a threat alive through noise once it has crossed fcw_ttc.
        critical = ttc <= self.fcw_ttc + self.hysteresis
        try:
            speed = frame["ego_speed"]
        except KeyError:
            speed = math.nan
        state = self.state

        if critical and speed >= self.min_speed:
            if self._threat_since is None and ttc <= self.fcw_ttc:
                self._threat_since = t
        else:
            self._threat_since = None

        if state == IDLE:
            since = self._threat_since
            if since is not None and t - since >= self.confirm_time - _EPS:
                state = WARNING
                self._clear_since = None
        else:
            if critical:
                self._clear_since = None
            elif self._clear_since is None:
                self._clear_since = t
            if speed <= self.standstill_speed or (
                self._clear_since is not None and t - self._clear_since >= self.release_time - _EPS
            ):
                state = IDLE
                self._clear_since = None

        if (
            state != IDLE
            and self._threat_since is not None
            and (picked is None or t - self._threat_since >= self.confirm_time - _EPS)
        ):
            if ttc <= self.full_ttc:
                state = FULL
            elif ttc <= self.partial_ttc and state < PARTIAL:
                state = PARTIAL

        self.state = state
        if state == FULL:
            decel = self.full_decel
        elif state == PARTIAL:
            decel = self.partial_decel
        else:
            decel = 0.0
        if listed:
            return {
                "fcw": 1.0 if state != IDLE else 0.0,
                "aeb_decel": decel,
                "ttc": ttc,
                "state": float(state),
                "reacted_to": math.nan if picked is None else picked[3],
            }
        return {
            "fcw": 1.0 if state != IDLE else 0.0,
            "aeb_decel": decel,
            "ttc": ttc,
            "state": float(state),
        }

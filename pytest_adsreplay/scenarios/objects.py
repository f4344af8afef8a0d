"""Object-list scenarios with closed-form truth: cut-in, cut-out, a curve, parked cars, traffic.

Every vehicle moves along a road of constant curvature ``k`` (0: straight) in road
coordinates: ``s`` along the ego lane's centre line (a :class:`Motion`, exact) and ``n``
across it, positive left (piecewise-linear knots, so the lateral speed is piecewise
constant). The ego drives on the centre line (``n = 0``) with yaw rate ``k * v``; each
object's position and velocity are turned into the ego frame in closed form
(:func:`ego_frame`): ``dx`` from the ego front to the object's rear, ``dy`` positive left,
``vx``/``vy`` the time derivatives of ``dx``/``dy`` (``vx`` negative when closing).

The radar reports every object with ``MIN_DX < dx <= MAX_RANGE`` in a list of
``SLOTS`` slots at 20 Hz: a track keeps its slot while it is seen, a new track takes the
lowest free slot, and at the scenario's ``reslot`` times the tracker re-sorts its list by
distance, so track ids move between slots mid-recording (a track keeps its id). Unused
slots are NaN with ``Valid`` 0. Clutter (guard-rail returns, short-lived ghost objects,
a pedestrian on the pavement) stays well outside the path.

Two file layouts: one channel per slot (``Radar.Obj00.DistX`` … ``Radar.Obj31.DistX``,
numbered from ``index_base``) or one MF4 array channel per field (``ObjList.DistX``,
``*_array`` files). :func:`channel_map_text` is the channel map written beside them.

The truth is closed-form: which track is the in-path KPI target (the switch time of a
cut-in when its offset crosses ``HALF_WIDTH``, of a cut-out when the lead's leaves it),
the TTC of the key target at any time, and the impact speed of the closed forms in
``docs/physics.md``; the sidecar's bounds for the reference come from
:func:`pytest_adsreplay.scenarios.ncap.expectations` on the key target's motion.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from pytest_adsreplay.mdf.writer import ChannelData, GroupData
from pytest_adsreplay.scenarios.synthesis import (
    ACCEL_NOISE,
    DIST_NOISE,
    LAT_NOISE,
    MAX_RANGE,
    MIN_DX,
    SPEED_NOISE_KPH,
    VREL_NOISE,
    Knots,
    Motion,
    Scenario,
    Target,
    kph,
    timestamps,
)

__all__ = [
    "BUILDERS",
    "HALF_WIDTH",
    "LANE",
    "LAYOUTS",
    "SLOTS",
    "ObjectScenario",
    "Track",
    "channel_map_text",
    "curve",
    "cut_in",
    "cut_out",
    "ego_frame",
    "expectations",
    "overtaking",
    "parked_cars",
]

#: Slots of the generated object list, and the lane width (m).
SLOTS = 32
LANE = 3.5
#: The default ``adsreplay_path_half_width``: the switch times are computed for it.
HALF_WIDTH = 1.0
#: Yaw-rate noise (1 sigma, rad/s): 3e-5 1/m of curvature at 60 km/h.
YAW_NOISE = 0.0005
#: Object classes (the `obj_class` codes).
UNKNOWN, CAR, TRUCK, PEDESTRIAN = 0, 1, 2, 5

#: (file field, canonical field, unit, dtype, meaning) of the list, in channel order.
FIELDS: tuple[tuple[str, str, str, str, str], ...] = (
    ("DistX", "obj_dx", "m", "f4", "longitudinal distance, ego front to object rear"),
    ("DistY", "obj_dy", "m", "f4", "lateral offset (left +)"),
    ("VrelX", "obj_vx", "m/s", "f4", "relative longitudinal speed (negative = closing)"),
    ("VrelY", "obj_vy", "m/s", "f4", "relative lateral speed (left +)"),
    ("Valid", "obj_valid", "", "u1", "slot holds an object (0/1)"),
    ("ID", "obj_id", "", "u2", "track id"),
    ("Class", "obj_class", "", "u1", "0 unknown, 1 car, 2 truck, 5 pedestrian"),
)
#: ``slots``: one channel per slot (``Radar.Obj{i:02d}.DistX``); ``array``: one MF4 array
#: channel per field (``ObjList.DistX``).
LAYOUTS = ("slots", "array")


def slot_channel(field: str, slot: int, index_base: int = 0) -> str:
    return f"Radar.Obj{slot + index_base:02d}.{field}"


def array_channel(field: str) -> str:
    return f"ObjList.{field}"


def channel_map_text(index_base: int = 0) -> str:
    """The channel map of the generated object-list files (both layouts)."""
    lines = [
        "# Channel map for the object-list recordings of `adsreplay generate` (objects/).",
        "# The ego signals (VehSpd, VehAccX, DrvBrkPdl, YawRate) resolve through the built-in",
        "# map; the 32-slot object list is one channel per slot (Radar.Obj00.DistX ...) or,",
        "# in the *_array files, one MF4 array channel per field (ObjList.DistX).",
        "# Use it with --channel-map (or adsreplay_channel_map); it also reads every other",
        "# generated recording.",
        "",
        "[objects]",
        f"count = {SLOTS}",
        f"index_base = {index_base}",
    ]
    for field, name, unit, _, _ in FIELDS:
        lines += [
            "",
            f"[objects.{name}]",
            f'channels = ["Radar.Obj{{i:02d}}.{field}", "{array_channel(field)}"]',
        ]
        if unit:
            lines.append(f'unit = "{unit}"')
    return "\n".join(lines) + "\n"


def channel_map_name(index_base: int) -> str:
    return "channel_map.toml" if index_base == 0 else f"channel_map_base{index_base}.toml"


# ---------------------------------------------------------------------------- kinematics


def _knot_slope(knots: Knots, t: np.ndarray) -> np.ndarray:
    """Derivative of the piecewise-linear ``knots`` at ``t`` (0 outside; right-continuous)."""
    kt = np.array([k[0] for k in knots], dtype=np.float64)
    kv = np.array([k[1] for k in knots], dtype=np.float64)
    out = np.zeros(np.shape(t))
    if kt.size < 2:
        return out
    slopes = np.diff(kv) / np.diff(kt)
    idx = np.searchsorted(kt, t, side="right") - 1
    inside = (idx >= 0) & (idx < slopes.size)
    out[inside] = slopes[idx[inside]]
    return out


@dataclass(frozen=True)
class Track:
    """One object of the list: its motion along the road, its lateral knots (m, left +),
    class, and the time window the radar may see it in."""

    track_id: int
    motion: Motion
    lateral: Knots = ((0.0, 0.0),)
    obj_class: int = CAR
    t_on: float = 0.0
    t_off: float = math.inf

    def n(self, t: np.ndarray) -> np.ndarray:
        return Target(self.motion, self.lateral).lat(t)

    def vn(self, t: np.ndarray) -> np.ndarray:
        return _knot_slope(self.lateral, t)


def _road(
    s: np.ndarray, n: np.ndarray, k: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """World position, heading cos/sin of the road point (s, n) on a road of curvature k
    starting at the origin along +x (the centre of the curve at (0, 1/k))."""
    if k == 0.0:
        return s, n, np.ones_like(s), np.zeros_like(s)
    phi = k * s
    c, si = np.cos(phi), np.sin(phi)
    return si / k - n * si, (1.0 - c) / k + n * c, c, si


def ego_frame(
    ego: Motion, track: Track, k: float, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(dx, dy, vx, vy)`` of ``track`` in the ego frame at ``t`` (closed form).

    The ego is on the centre line with heading ``k * s_ego`` and yaw rate ``w = k * v``;
    with ``d = P - E`` and ``W = V - V_ego``: ``dx = d.h``, ``dy = d.n``,
    ``vx = W.h + w * dy``, ``vy = W.n - w * dx`` (the derivatives in the turning frame).
    """
    se, ve, _ = ego.at(t)
    so, vo, _ = track.motion.at(t)
    n, vn = track.n(t), track.vn(t)
    ex, ey, ec, es = _road(se, np.zeros_like(se), k)
    px, py, c, si = _road(so, n, k)
    wx = vo * (1.0 - n * k) * c - vn * si - ve * ec
    wy = vo * (1.0 - n * k) * si + vn * c - ve * es
    dx = (px - ex) * ec + (py - ey) * es
    dy = -(px - ex) * es + (py - ey) * ec
    w = k * ve
    vx = wx * ec + wy * es + w * dy
    vy = -wx * es + wy * ec - w * dx
    return dx, dy, vx, vy


# ----------------------------------------------------------------------------- scenario


@dataclass(frozen=True)
class ObjectScenario(Scenario):
    """A drive whose radar writes an object list (see the module docstring).

    ``key_track``: the track whose closed forms bound the sidecar (the car the function
    must brake for), None for drives where nothing may be braked for. ``reslot``: times
    when the tracker re-sorts its list by distance. ``noise=False`` writes the exact
    kinematics (for the oracle tests); timestamps keep their jitter either way.
    """

    tracks: tuple[Track, ...] = ()
    curvature: float = 0.0
    layout: str = "slots"
    index_base: int = 0
    noise: bool = True
    reslot: tuple[float, ...] = ()
    key_track: int | None = None

    @property
    def seed(self) -> int:
        """Noise seed from the name without the layout suffix: both layouts of a scenario
        hold the same samples."""
        stem = self.name.removesuffix("_array")
        digest = hashlib.sha256(stem.encode()).digest()
        return int.from_bytes(digest[:8], "little") >> 1

    def logger_groups(self) -> list[GroupData]:
        return synthesize_objects(self)

    def extra_files(self) -> dict[str, str]:
        return {channel_map_name(self.index_base): channel_map_text(self.index_base)}

    def track(self, track_id: int) -> Track:
        for tr in self.tracks:
            if tr.track_id == track_id:
                return tr
        raise KeyError(f"{self.name}: no track {track_id}")

    def kinematics(
        self, track_id: int, t: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Exact ``(dx, dy, vx, vy)`` of one track at ``t``."""
        return ego_frame(self.ego, self.track(track_id), self.curvature, np.asarray(t, float))

    def ttc(self, track_id: int, t: np.ndarray | float) -> np.ndarray:
        """Exact TTC ``dx / -vx`` of a track at ``t`` (inf when not closing)."""
        dx, _, vx, _ = self.kinematics(track_id, np.atleast_1d(np.asarray(t, float)))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(vx < 0, dx / -vx, np.inf)

    def key_equivalent(self) -> Scenario:
        """The single-target scenario of the key track (straight road, gap = dx)."""
        if self.key_track is None or self.curvature != 0.0:
            raise ValueError(f"{self.name}: no key track on a straight road")
        tr = self.track(self.key_track)
        return Scenario(
            name=self.name,
            kind=self.kind,
            tags=self.tags,
            description=self.description,
            ego=self.ego,
            targets=(Target(tr.motion),),
            duration=self.duration,
            nominal_speed=self.nominal_speed,
        )


def _visible(dx: np.ndarray, t: np.ndarray, tr: Track) -> np.ndarray:
    return np.asarray((dx > MIN_DX) & (dx <= MAX_RANGE) & (t >= tr.t_on) & (t < tr.t_off))


def _assign_slots(
    t: np.ndarray, ids: list[int], visible: np.ndarray, dx: np.ndarray, reslot: tuple[float, ...]
) -> np.ndarray:
    """Slot of each track per sample (-1: not listed), (samples x tracks).

    A track keeps its slot while seen; new tracks take the lowest free slot (nearest
    first); beyond ``SLOTS`` the farthest are not listed; at each ``reslot`` time the
    list is re-sorted by distance.
    """
    n, m = visible.shape
    out = np.full((n, m), -1, dtype=np.int64)
    slot_of: dict[int, int] = {}
    events = sorted(reslot)
    e = 0
    for i in range(n):
        seen = [j for j in np.flatnonzero(visible[i]).tolist()]
        seen.sort(key=lambda j: (float(dx[i, j]), ids[j]))
        seen = seen[:SLOTS]
        keep = set(seen)
        slot_of = {j: s for j, s in slot_of.items() if j in keep}
        if e < len(events) and t[i] >= events[e]:
            while e < len(events) and t[i] >= events[e]:
                e += 1
            slot_of = {j: s for s, j in enumerate(seen)}
        free = sorted(set(range(SLOTS)) - set(slot_of.values()))
        for j in seen:
            if j not in slot_of:
                slot_of[j] = free.pop(0)
        for j, s in slot_of.items():
            out[i, j] = s
    return out


def synthesize_objects(sc: ObjectScenario) -> list[GroupData]:
    """ "Vehicle" at 100 Hz (with ``YawRate``) and "Radar", the object list at 20 Hz."""
    if sc.layout not in LAYOUTS:
        raise ValueError(f"{sc.name}: layout {sc.layout!r} is not one of {LAYOUTS}")
    rng = np.random.default_rng(sc.seed)
    t_radar, t_bus = timestamps(sc, rng)
    gain = 1.0 if sc.noise else 0.0
    _, v_ego, a_ego = sc.ego.at(t_bus)
    speed = v_ego * 3.6 + gain * rng.normal(0.0, SPEED_NOISE_KPH, len(t_bus))
    speed = np.maximum(speed, 0.0) * (v_ego > 0)
    accel = a_ego + gain * rng.normal(0.0, ACCEL_NOISE, len(t_bus))
    yaw = sc.curvature * v_ego + gain * rng.normal(0.0, YAW_NOISE, len(t_bus))
    pedal = ((a_ego <= -0.5) | (v_ego <= 0.0)).astype(np.uint8)
    vehicle = GroupData(
        "Vehicle",
        t_bus,
        [
            ChannelData("VehSpd", speed, "km/h", "ego vehicle speed"),
            ChannelData("VehAccX", accel, "m/s^2", "ego longitudinal acceleration"),
            ChannelData("DrvBrkPdl", pedal, "", "driver brake pedal pressed (0/1)"),
            ChannelData("YawRate", yaw, "rad/s", "ego yaw rate (left +)"),
        ],
    )
    return [vehicle, GroupData("Radar", t_radar, _radar_channels(sc, t_radar, rng, gain))]


def object_matrices(
    sc: ObjectScenario, t: np.ndarray, rng: np.random.Generator | None = None, gain: float = 0.0
) -> dict[str, np.ndarray]:
    """The list as the radar writes it at ``t``: one (samples x SLOTS) matrix per field."""
    ids = [tr.track_id for tr in sc.tracks]
    kin = [ego_frame(sc.ego, tr, sc.curvature, t) for tr in sc.tracks]
    dx = np.stack([k[0] for k in kin], axis=1)
    visible = np.stack([_visible(k[0], t, tr) for k, tr in zip(kin, sc.tracks, strict=True)], 1)
    slots = _assign_slots(t, ids, visible, dx, sc.reslot)
    n = len(t)
    out = {name: np.full((n, SLOTS), np.nan) for _, name, *_ in FIELDS}
    out["obj_valid"] = np.zeros((n, SLOTS))
    out["obj_id"] = np.zeros((n, SLOTS))
    out["obj_class"] = np.zeros((n, SLOTS))
    rows = np.arange(n)
    for j, tr in enumerate(sc.tracks):
        on = slots[:, j] >= 0
        r, s = rows[on], slots[on, j]
        for name, values in zip(("obj_dx", "obj_dy", "obj_vx", "obj_vy"), kin[j], strict=True):
            out[name][r, s] = values[on]
        out["obj_valid"][r, s] = 1.0
        out["obj_id"][r, s] = tr.track_id
        out["obj_class"][r, s] = tr.obj_class
    if rng is not None:
        valid = out["obj_valid"] == 1
        for name, sigma in (
            ("obj_dx", DIST_NOISE),
            ("obj_dy", LAT_NOISE),
            ("obj_vx", VREL_NOISE),
            ("obj_vy", VREL_NOISE),
        ):
            noise = gain * rng.normal(0.0, sigma, (n, SLOTS))
            out[name] = np.where(valid, out[name] + noise, np.nan)
    return out


def _radar_channels(
    sc: ObjectScenario, t: np.ndarray, rng: np.random.Generator, gain: float
) -> list[ChannelData]:
    mats = object_matrices(sc, t, rng, gain)
    chans: list[ChannelData] = []
    for field, name, unit, dtype, meaning in FIELDS:
        mat = mats[name].astype(dtype)
        if sc.layout == "array":
            chans.append(ChannelData(array_channel(field), mat, unit, f"object list: {meaning}"))
            continue
        for j in range(SLOTS):
            chans.append(
                ChannelData(
                    slot_channel(field, j, sc.index_base),
                    np.ascontiguousarray(mat[:, j]),
                    unit,
                    f"object {j + sc.index_base}: {meaning}",
                )
            )
    return chans


# ------------------------------------------------------------------------------ builders


def _guard_rail(first_id: int, n: float, s_from: float, s_to: float, step: float) -> list[Track]:
    """Stationary guard-rail returns every ``step`` m at lateral ``n`` (class unknown)."""
    count = int((s_to - s_from) // step) + 1
    return [
        Track(first_id + i, Motion(s_from + i * step, 0.0), ((0.0, n),), UNKNOWN)
        for i in range(count)
    ]


def _ghosts(first_id: int, spec: tuple[tuple[float, float, float, float], ...]) -> list[Track]:
    """Short-lived stationary returns: (s, n, t_on, t_off) each, class unknown."""
    return [
        Track(first_id + i, Motion(s, 0.0), ((0.0, n),), UNKNOWN, t_on, t_off)
        for i, (s, n, t_on, t_off) in enumerate(spec)
    ]


def _end_at_gap(ego: Motion, lead: Motion, t_from: float, t_max: float, gap: float = 1.0) -> float:
    """Last 1 ms time before the true gap falls below ``gap`` (``t_max`` if never)."""
    t = np.arange(math.floor(t_from * 1000), math.ceil(t_max * 1000) + 1) / 1000.0
    below = np.flatnonzero(lead.at(t)[0] - ego.at(t)[0] < gap)
    return float(t[-1]) if not len(below) else float(t[max(int(below[0]) - 1, 0)])


def _layout_name(base: str, layout: str) -> str:
    return base if layout == "slots" else f"{base}_{layout}"


def _layout_text(layout: str) -> str:
    if layout == "slots":
        return "32-slot object list, one channel per slot (Radar.Obj00..31)"
    return "32-slot object list as MF4 array channels (ObjList.*)"


#: Cut-in: ego 60 km/h; a 55 km/h car 20 m ahead in the left lane moves right at
#: 1.0 m/s from 2.0 s and brakes at 4 m/s² (reached in 0.5 s) from 5.0 s.
CUT_IN = {
    "ego_speed": 60.0,
    "cut_in_speed": 55.0,
    "gap": 20.0,
    "lateral_speed": 1.0,
    "cut_in_start": 2.0,
    "brake_start": 5.0,
    "target_decel": 4.0,
    "lead_gap": 60.0,
}
CUT_IN_ID, CUT_IN_LEAD_ID = 5, 12


def cut_in(layout: str = "slots", *, noise: bool = True, index_base: int = 0) -> ObjectScenario:
    """A car from the left lane cuts in at a short gap and brakes; a far lead keeps pace."""
    p = CUT_IN
    v0 = kph(p["ego_speed"])
    ego = Motion(0.0, v0)
    t_c, vlat = p["cut_in_start"], p["lateral_speed"]
    t_b = p["brake_start"]
    car = Track(
        CUT_IN_ID,
        Motion(p["gap"], kph(p["cut_in_speed"]), ((t_b, 0.0), (t_b + 0.5, -p["target_decel"]))),
        ((t_c, LANE), (t_c + LANE / vlat, 0.0)),
    )
    lead = Track(CUT_IN_LEAD_ID, Motion(p["lead_gap"], v0))
    switch = t_c + (LANE - HALF_WIDTH) / vlat
    end = _end_at_gap(ego, car.motion, t_b, t_b + 30.0)
    clutter = [
        *_guard_rail(100, -6.0, 15.0, 15.0 + v0 * end + MAX_RANGE, 30.0),
        *_ghosts(200, ((45.0, 7.5, 1.0, 1.6), (90.0, -9.0, 3.3, 3.9), (120.0, 8.0, 5.8, 6.2))),
    ]
    return ObjectScenario(
        name=_layout_name("objects/cut_in", layout),
        kind="cut-in",
        tags=("objects", "cut-in"),
        description=(
            f"Object list: ego {p['ego_speed']:g} km/h, a lead {p['lead_gap']:g} m ahead at the "
            f"same speed; a {p['cut_in_speed']:g} km/h car {p['gap']:g} m ahead in the left lane "
            f"cuts in at {vlat:g} m/s from {t_c:g} s (in path at {switch:g} s) and brakes at "
            f"{p['target_decel']:g} m/s^2 from {t_b:g} s; recording ends at a 1 m gap; "
            f"{_layout_text(layout)}, guard-rail and ghost clutter"
        ),
        ego=ego,
        targets=(),
        duration=end,
        nominal_speed=p["ego_speed"],
        params={
            **p,
            "switch_time": switch,
            "target_id": CUT_IN_ID,
            "lead_id": CUT_IN_LEAD_ID,
            "index_base": index_base,
        },
        tracks=(car, lead, *clutter),
        layout=layout,
        index_base=index_base,
        noise=noise,
        reslot=(1.0, 3.0, 5.5),
        key_track=CUT_IN_ID,
    )


#: Cut-out: ego and lead at 50 km/h, 20 m apart; the lead moves left at 1.2 m/s from
#: 2.0 s and reveals a stationary car 90 m ahead of the ego at 0 s.
CUT_OUT = {
    "ego_speed": 50.0,
    "lead_gap": 20.0,
    "lateral_speed": 1.2,
    "cut_out_start": 2.0,
    "stationary_gap": 90.0,
}
CUT_OUT_LEAD_ID, CUT_OUT_STATIONARY_ID = 3, 9


def cut_out(layout: str = "slots", *, noise: bool = True, index_base: int = 0) -> ObjectScenario:
    """The lead swerves into the left lane and reveals a stationary car ahead."""
    p = CUT_OUT
    v0 = kph(p["ego_speed"])
    ego = Motion(0.0, v0)
    t_o, vlat = p["cut_out_start"], p["lateral_speed"]
    lead = Track(
        CUT_OUT_LEAD_ID, Motion(p["lead_gap"], v0), ((t_o, 0.0), (t_o + LANE / vlat, LANE))
    )
    parked = Track(CUT_OUT_STATIONARY_ID, Motion(p["stationary_gap"], 0.0))
    switch = t_o + HALF_WIDTH / vlat
    end = _end_at_gap(ego, parked.motion, t_o, 30.0)
    clutter = [
        *_guard_rail(100, -6.0, 10.0, 10.0 + v0 * end + MAX_RANGE, 30.0),
        *_ghosts(200, ((60.0, -8.0, 0.5, 1.2), (110.0, 9.0, 4.0, 4.6))),
        Track(50, Motion(70.0, 0.0), ((0.0, -4.5),), PEDESTRIAN),
    ]
    return ObjectScenario(
        name=_layout_name("objects/cut_out", layout),
        kind="cut-out",
        tags=("objects", "cut-out"),
        description=(
            f"Object list: ego and lead at {p['ego_speed']:g} km/h, {p['lead_gap']:g} m apart; "
            f"the lead moves left at {vlat:g} m/s from {t_o:g} s (out of path at {switch:g} s) "
            f"and reveals a stationary car {p['stationary_gap']:g} m ahead of the ego at 0 s; "
            f"recording ends at a 1 m gap; {_layout_text(layout)}, guard rail, ghosts and a "
            "pedestrian on the pavement"
        ),
        ego=ego,
        targets=(),
        duration=end,
        nominal_speed=p["ego_speed"],
        params={
            **p,
            "switch_time": switch,
            "lead_id": CUT_OUT_LEAD_ID,
            "target_id": CUT_OUT_STATIONARY_ID,
            "index_base": index_base,
        },
        tracks=(lead, parked, *clutter),
        layout=layout,
        index_base=index_base,
        noise=noise,
        reslot=(1.5, 4.0),
        key_track=CUT_OUT_STATIONARY_ID,
    )


#: Curve: ego 50 km/h on a left curve of radius 100 m; a stationary car in the right
#: (outer) lane 110 m ahead along the road.
CURVE = {"ego_speed": 50.0, "radius": 100.0, "car_arc": 110.0, "duration": 9.0}
CURVE_CAR_ID = 7


def curve(layout: str = "slots", *, noise: bool = True, index_base: int = 0) -> ObjectScenario:
    """A stationary car in the adjacent (outer) lane of a curve: straight ahead it is
    hit, along the curved path it is 3.5 m to the right all the way."""
    p = CURVE
    v0, k = kph(p["ego_speed"]), 1.0 / p["radius"]
    ego = Motion(0.0, v0)
    car = Track(CURVE_CAR_ID, Motion(p["car_arc"], 0.0), ((0.0, -LANE),))
    # A straight line (dy within the half width) has it in path where its chord distance
    # is x² ≈ 2R(LANE ± HALF_WIDTH): 22..30 m, TTC 1.6..2.2 s; the arc never does.
    clutter = [
        *_guard_rail(100, 5.5, 20.0, 20.0 + v0 * p["duration"] + MAX_RANGE, 25.0),
        *_ghosts(200, ((70.0, 9.0, 2.0, 2.5), (95.0, -10.0, 6.0, 6.6))),
    ]
    return ObjectScenario(
        name=_layout_name("objects/curve_adjacent_lane_car", layout),
        kind="curve",
        tags=("objects", "curve", "false-activation"),
        description=(
            f"Object list: ego {p['ego_speed']:g} km/h on a left curve of radius "
            f"{p['radius']:g} m (yaw rate {k * v0:.4f} rad/s); a stationary car in the right "
            f"lane {p['car_arc']:g} m ahead along the road: straight ahead it is hit, along "
            f"the curve it is {LANE:g} m to the right; {_layout_text(layout)}, inner guard "
            "rail and ghosts; the recording ends after passing it"
        ),
        ego=ego,
        targets=(),
        duration=p["duration"],
        nominal_speed=p["ego_speed"],
        params={**p, "yaw_rate": k * v0, "car_id": CURVE_CAR_ID, "index_base": index_base},
        tracks=(car, *clutter),
        curvature=k,
        layout=layout,
        index_base=index_base,
        noise=noise,
        reslot=(2.0, 5.0),
    )


#: Parked cars: ego 40 km/h down a street with parked cars 2.6 m to the right every 15 m
#: and 2.8 m to the left every 25 m, and a pedestrian on the pavement.
PARKED = {"ego_speed": 40.0, "right": -2.6, "left": 2.8, "duration": 12.0}


def parked_cars(
    layout: str = "slots", *, noise: bool = True, index_base: int = 0
) -> ObjectScenario:
    """Parked cars along both kerbs, none in the path: nothing to brake for."""
    p = PARKED
    v0 = kph(p["ego_speed"])
    reach = v0 * p["duration"] + MAX_RANGE
    right = [
        Track(10 + i, Motion(12.0 + 15.0 * i, 0.0), ((0.0, p["right"]),))
        for i in range(int(reach // 15.0))
    ]
    left = [
        Track(60 + i, Motion(20.0 + 25.0 * i, 0.0), ((0.0, p["left"]),))
        for i in range(int(reach // 25.0))
    ]
    walker = Track(90, Motion(55.0, 0.0), ((0.0, -4.5),), PEDESTRIAN)
    return ObjectScenario(
        name=_layout_name("objects/parked_cars_street", layout),
        kind="parked-cars",
        tags=("objects", "parked-cars", "false-activation"),
        description=(
            f"Object list: ego {p['ego_speed']:g} km/h down a street with parked cars "
            f"{-p['right']:g} m to the right every 15 m and {p['left']:g} m to the left every "
            f"25 m and a pedestrian on the pavement; nothing in the path; {_layout_text(layout)}"
        ),
        ego=Motion(0.0, v0),
        targets=(),
        duration=p["duration"],
        nominal_speed=p["ego_speed"],
        params={**p, "index_base": index_base},
        tracks=(*right, *left, walker),
        layout=layout,
        index_base=index_base,
        noise=noise,
        reslot=(3.0, 6.0, 9.0),
    )


#: Overtaking traffic: ego 80 km/h behind a lead at 80 km/h 40 m ahead; cars at 110 km/h
#: overtake in the left lane, the ego passes a 70 km/h truck in the right lane.
OVERTAKING = {"ego_speed": 80.0, "lead_gap": 40.0, "fast": 110.0, "truck": 70.0, "duration": 15.0}
OVERTAKING_LEAD_ID = 4


def overtaking(layout: str = "slots", *, noise: bool = True, index_base: int = 0) -> ObjectScenario:
    """Faster cars overtake on the left, a slower truck is passed on the right; the lead
    ahead stays the KPI target and is never critical."""
    p = OVERTAKING
    v0, vf, vt = kph(p["ego_speed"]), kph(p["fast"]), kph(p["truck"])
    lead = Track(OVERTAKING_LEAD_ID, Motion(p["lead_gap"], v0))
    fast = [Track(20 + i, Motion(-25.0 - 30.0 * i, vf), ((0.0, LANE),)) for i in range(4)]
    truck = Track(30, Motion(25.0, vt), ((0.0, -LANE),), TRUCK)
    rail = _guard_rail(100, -7.0, 10.0, 10.0 + v0 * p["duration"] + MAX_RANGE, 40.0)
    return ObjectScenario(
        name=_layout_name("objects/overtaking_traffic", layout),
        kind="overtaking",
        tags=("objects", "overtaking", "false-activation"),
        description=(
            f"Object list: ego {p['ego_speed']:g} km/h, a lead {p['lead_gap']:g} m ahead at "
            f"the same speed; four {p['fast']:g} km/h cars overtake in the left lane, the ego "
            f"passes a {p['truck']:g} km/h truck in the right lane; {_layout_text(layout)}"
        ),
        ego=Motion(0.0, v0),
        targets=(),
        duration=p["duration"],
        nominal_speed=p["ego_speed"],
        params={**p, "lead_id": OVERTAKING_LEAD_ID, "index_base": index_base},
        tracks=(lead, *fast, truck, *rail),
        layout=layout,
        index_base=index_base,
        noise=noise,
        reslot=(2.5, 7.5, 12.5),
    )


_KINDS: dict[str, Callable[..., ObjectScenario]] = {
    "cut_in": cut_in,
    "cut_out": cut_out,
    "curve_adjacent_lane_car": curve,
    "parked_cars_street": parked_cars,
    "overtaking_traffic": overtaking,
}

#: Scenario name -> builder, both layouts (``objects/<name>`` and ``objects/<name>_array``).
BUILDERS: dict[str, Callable[[], Scenario]] = {
    _layout_name(f"objects/{base}", layout): partial(fn, layout)
    for base, fn in _KINDS.items()
    for layout in LAYOUTS
}


def expectations(sc: ObjectScenario) -> dict[str, Any]:
    """``[expect]`` bounds for the reference function (defaults).

    With a key track (cut-in, cut-out): the bounds of the single-target closed forms on
    the key track's motion (:func:`pytest_adsreplay.scenarios.ncap.expectations`); the
    reference's thresholds must be crossed after the key track entered the path.
    Without one: no warning, no braking.
    """
    if sc.key_track is None:
        return {"fcw": False, "brake": False}
    from pytest_adsreplay.function.reference import TtcAeb
    from pytest_adsreplay.scenarios.ncap import expectations as single_target

    eq = sc.key_equivalent()
    fn = TtcAeb()
    switch = float(sc.params["switch_time"])
    if float(sc.ttc(sc.key_track, switch)[0]) <= fn.fcw_ttc + fn.hysteresis:
        raise ValueError(f"{sc.name}: the key target is already critical when it enters the path")
    return single_target(eq, fn)


def with_layout(sc: ObjectScenario, layout: str, index_base: int = 0) -> ObjectScenario:
    """``sc`` written in another layout (same name stem; the seed follows the name)."""
    stem = sc.name.removesuffix("_array")
    return replace(sc, name=_layout_name(stem, layout), layout=layout, index_base=index_base)

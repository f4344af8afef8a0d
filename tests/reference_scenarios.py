"""Synthetic object-list recordings for the reference function's tests (Python and C):
ego-relative kinematics on the 10 ms grid as signal columns ``obj_dx[0]`` … of a 32-slot
list, as the read stage delivers them. Each returns ``(t, signals)``."""

from __future__ import annotations

import numpy as np

from pytest_adsreplay.signals.objects import object_column

DT = 0.01
V = 20.0  # ego speed, m/s
SLOTS = 32
FIELDS = ("obj_dx", "obj_dy", "obj_vx", "obj_valid", "obj_id")


def recording(
    n: int, slots: list[dict[str, np.ndarray]], *, yaw_rate: float | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(t, signals)``: the ego at :data:`V` and one slot per dict of fields (arrays of
    ``n``; a slot is valid where its ``obj_dx`` is finite, every field NaN elsewhere),
    padded with empty slots to :data:`SLOTS` (the C reference's list)."""
    slots = slots + [{"obj_dx": np.full(n, np.nan)}] * (SLOTS - len(slots))
    t = np.arange(n) * DT
    sig: dict[str, np.ndarray] = {"ego_speed": np.full(n, V)}
    if yaw_rate is not None:
        sig["ego_yaw_rate"] = np.full(n, yaw_rate)
    for j, slot in enumerate(slots):
        valid = np.isfinite(slot["obj_dx"])
        for field in FIELDS:
            if field == "obj_valid":
                values = slot.get("obj_valid", valid.astype(float))
            else:
                values = np.where(valid, slot.get(field, np.zeros(n)), np.nan)
            sig[object_column(field, j)] = np.ascontiguousarray(values, dtype=float)
    return t, sig


def closing(t: np.ndarray, d0: float, v_rel: float) -> np.ndarray:
    """Gap of a car closing at constant ``v_rel`` (< 0) from ``d0``."""
    return d0 + v_rel * t


def cut_in(n: int = 500) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A far lead (id 1, 90 m, same speed) in the lane; a car in the left lane (id 5)
    15 m ahead cuts in at 1.5 m/s from t = 0.5 s (in the path from about t = 2.2 s) and
    brakes at 6 m/s² from t = 1.5 s; a stationary car (id 9) parked 3.8 m to the right."""
    t = np.arange(n) * DT
    tb = np.maximum(t - 1.5, 0.0)
    gap = 15.0 - 3.0 * tb**2  # relative to the ego at constant speed
    rel = -6.0 * tb
    dy = np.maximum(3.6 - 1.5 * np.maximum(t - 0.5, 0.0), 0.0)
    parked = 120.0 - V * t
    slots = [
        {"obj_dx": np.full(n, 90.0), "obj_id": np.full(n, 1.0)},
        {"obj_dx": np.where(gap > 0, gap, np.nan), "obj_dy": dy, "obj_vx": rel},
        {"obj_dx": parked, "obj_dy": np.full(n, -3.8), "obj_vx": np.full(n, -V)},
    ]
    slots[1]["obj_id"] = np.full(n, 5.0)
    slots[2]["obj_id"] = np.full(n, 9.0)
    return recording(n, slots)


def cut_out(
    n: int = 500, *, lead_rel: float = 0.0, swerve: float = 0.5, parked: float = 80.0
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The lead (id 1, 25 m ahead, closing at ``lead_rel``) swerves left at 2 m/s from
    t = ``swerve`` (out of the path 0.5 s later) and reveals a stationary car (id 2)
    ``parked`` m ahead at t = 0 (60 m, TTC 3 s, at the default handover)."""
    t = np.arange(n) * DT
    lead = closing(t, 25.0, lead_rel)
    slots = [
        {
            "obj_dx": np.where(t < swerve + 1.5, lead, np.nan),
            "obj_dy": 2.0 * np.maximum(t - swerve, 0.0),
            "obj_vx": np.full(n, lead_rel),
            "obj_id": np.ones(n),
        },
        {"obj_dx": closing(t, parked, -V), "obj_vx": np.full(n, -V), "obj_id": np.full(n, 2.0)},
    ]
    return recording(n, slots)


def curve(
    n: int = 300, radius: float = 200.0, lane: float = -3.5
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A left curve of ``radius``; a stationary car (id 4) on the circle ``lane`` m from
    the ego's path (negative: the outer lane, to the right). In the ego's frame it sits at
    arc angle phi ahead: straight ahead (the straight line would hit it) about 37 m out."""
    t = np.arange(n) * DT
    r_car = radius - lane
    phi = (60.0 - V * t) / radius  # arc length 60 m ahead at t = 0
    x = r_car * np.sin(phi)
    y = radius - r_car * np.cos(phi)
    vx = np.gradient(x, DT)
    slots = [{"obj_dx": np.where(x > 0, x, np.nan), "obj_dy": y, "obj_vx": vx}]
    slots[0]["obj_id"] = np.full(n, 4.0)
    return recording(n, slots, yaw_rate=V / radius)


def clutter(n: int = 400, seed: int = 3) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A stationary car (id 7) in the path 70 m ahead among 24 objects out of the path
    (closer, closing fast, 1.3 … 12 m to either side), 4 invalid slots holding an
    in-path ghost 10 m ahead, and 3 empty slots (32 in all)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) * DT
    slots: list[dict[str, np.ndarray]] = []
    for k in range(24):
        side = 1.0 if k % 2 else -1.0
        d0 = rng.uniform(8.0, 60.0)
        rel = rng.uniform(-30.0, 5.0)
        slots.append(
            {
                "obj_dx": closing(t, d0, rel),
                "obj_dy": np.full(n, side * rng.uniform(1.3, 12.0)),
                "obj_vx": np.full(n, rel),
                "obj_id": np.full(n, 100.0 + k),
            }
        )
    slots.insert(11, {"obj_dx": closing(t, 70.0, -V), "obj_vx": np.full(n, -V)})
    slots[11]["obj_id"] = np.full(n, 7.0)
    for k in range(4):  # radar placeholders: numbers in the fields, obj_valid 0
        slots.append(
            {
                "obj_dx": np.full(n, 10.0),
                "obj_vx": np.full(n, -V),
                "obj_valid": np.zeros(n),
                "obj_id": np.full(n, 200.0 + k),
            }
        )
    slots += [{"obj_dx": np.full(n, np.nan)} for _ in range(3)]
    t, sig = recording(n, slots)
    for k in range(4):  # recording() blanks the invalid slots; keep their numbers
        j = 25 + k
        sig[object_column("obj_dx", j)] = np.full(n, 10.0)
        sig[object_column("obj_vx", j)] = np.full(n, -V)
    return t, sig


def ghost(n: int = 300, cycles: int = 5) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A car (id 1) closing at 8 m/s from TTC 3.5 s; at t = 1.2 s (a warning is on, TTC
    2.3 s) an object (id 66) 10 m ahead, closing at 10 m/s (TTC 1 s), crosses the path
    for ``cycles`` cycles."""
    t = np.arange(n) * DT
    cross = np.where((t >= 1.2 - 1e-9) & (t < 1.2 + cycles * DT - 1e-9), 0.0, np.nan)
    slots = [
        {"obj_dx": closing(t, 28.0, -8.0), "obj_vx": np.full(n, -8.0), "obj_id": np.ones(n)},
        {"obj_dx": 10.0 + cross, "obj_vx": np.full(n, -10.0), "obj_id": np.full(n, 66.0)},
    ]
    return recording(n, slots)


def random_list(seed: int, n: int = 200) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """32 objects that come and go at random (80 % of cycles empty), spread over ± 6 m and
    up to 120 m ahead, on a path of random curvature; the ego speed is random per cycle
    (below 2 m/s the path is straight)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) * DT
    slots = []
    for _ in range(SLOTS):
        dx = rng.uniform(-5.0, 120.0) + rng.uniform(-20.0, 0.0) * t
        gone = rng.uniform(size=n) < 0.8
        slots.append(
            {
                "obj_dx": np.where(gone, np.nan, dx),
                "obj_dy": rng.uniform(-6.0, 6.0) + rng.uniform(-1.0, 1.0) * t,
                "obj_vx": np.full(n, rng.uniform(-25.0, 5.0)),
                "obj_id": np.full(n, float(rng.integers(0, 10_000))),
            }
        )
    _, sig = recording(n, slots, yaw_rate=float(rng.choice([0.0, 0.05, -0.1, 0.4])))
    sig["ego_speed"] = rng.uniform(0.0, 30.0, size=n)
    return t, sig


def no_lateral(n: int = 100) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A list without ``obj_dy`` (NaN: not mapped) on a gentle left curve (R = 1000 m): a
    car (id 3) closing from 30 m straight ahead, 0.45 m off the path at first."""
    t, sig = recording(
        n, [{"obj_dx": closing(np.arange(n) * DT, 30.0, -V), "obj_vx": np.full(n, -V)}]
    )
    sig["ego_yaw_rate"] = np.full(n, V / 1000.0)
    sig["obj_dy[0]"] = np.full(n, np.nan)
    sig["obj_id[0]"] = np.full(n, 3.0)
    return t, sig

"""What every generated scenario shares: exact kinematics, the logger's signals, the files.

Vehicles follow piecewise-linear acceleration profiles evaluated exactly (cubic
position), so the kinematics written into a recording and the closed forms its
expectations come from are the same functions. :func:`synthesize` samples a scenario the
way a logger would (a 100 Hz vehicle bus, a 20 Hz radar whose object 0 is the nearest
object ahead, seeded measurement noise and timestamp jitter); :func:`write_scenario`
writes the MF4 through :mod:`pytest_adsreplay.mdf.writer`, pins its header times and
writes the sidecar TOML beside it, so two runs give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pytest_adsreplay.mdf.writer import ChannelData, GroupData, write_recording

__all__ = [
    "Knots",
    "Motion",
    "Scenario",
    "Target",
    "kph",
    "sidecar_text",
    "synthesize",
    "write_scenario",
]

#: Logger layout: bus group at 100 Hz, radar object list at 20 Hz.
BUS_PERIOD = 0.01
RADAR_PERIOD = 0.05
RADAR_OFFSET = 0.003  # s, radar's first sample after the bus's
BUS_JITTER = 2e-5  # s, uniform ±
RADAR_JITTER = 1e-3  # s, uniform ±
#: Measurement noise (1 sigma).
SPEED_NOISE_KPH = 0.05
ACCEL_NOISE = 0.05
DIST_NOISE = 0.05
VREL_NOISE = 0.05
LAT_NOISE = 0.02
#: Radar: Obj0 is the nearest object ahead with MIN_DX < DistX <= MAX_RANGE.
MIN_DX = 0.5
MAX_RANGE = 160.0
#: MF4 header/file-history time of every generated file (reproducible bytes).
RECORDING_EPOCH_NS = 1_735_689_600 * 10**9  # 2025-01-01T00:00:00Z

#: (time s, value) points, linearly interpolated and held outside (like ``np.interp``).
Knots = tuple[tuple[float, float], ...]


def kph(v: float) -> float:
    """km/h to m/s."""
    return v / 3.6


# ---------------------------------------------------------------------------- kinematics


@dataclass(frozen=True)
class Motion:
    """Longitudinal motion from t = 0 with a piecewise-linear acceleration profile.

    ``knots`` are (time, accel) points, linearly interpolated, constant outside (like
    ``np.interp``). A vehicle that brakes to a standstill stays there.
    """

    x0: float
    v0: float
    knots: Knots = ()

    def _segments(self) -> tuple[list[tuple[float, float, float, float, float]], float, float]:
        """(start, x, v, a, jerk) per segment, plus the stop time and position (inf if none)."""
        kt = [k[0] for k in self.knots] or [0.0]
        ka = [k[1] for k in self.knots] or [0.0]
        starts = [0.0, *sorted({t for t in kt if t > 0.0})]
        x, v = self.x0, self.v0
        segs: list[tuple[float, float, float, float, float]] = []
        if v <= 0.0 and float(np.interp(0.0, kt, ka)) <= 0.0 and max(ka) <= 0.0:
            return [(0.0, x, 0.0, 0.0, 0.0)], 0.0, x
        for i, ts in enumerate(starts):
            te = starts[i + 1] if i + 1 < len(starts) else math.inf
            a = float(np.interp(ts, kt, ka))
            j = (float(np.interp(te, kt, ka)) - a) / (te - ts) if math.isfinite(te) else 0.0
            segs.append((ts, x, v, a, j))
            tau = _first_stop(v, a, j, te - ts)
            if tau is not None:
                return segs, ts + tau, x + v * tau + a * tau**2 / 2 + j * tau**3 / 6
            dt = te - ts
            x, v = x + v * dt + a * dt**2 / 2 + j * dt**3 / 6, v + a * dt + j * dt**2 / 2
        return segs, math.inf, math.nan

    def at(self, t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Position, speed and acceleration at ``t`` (exact)."""
        t = np.asarray(t, dtype=np.float64)
        segs, t_stop, x_stop = self._segments()
        starts = np.array([s[0] for s in segs])
        idx = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(segs) - 1)
        ts, x, v, a, j = (np.array([s[k] for s in segs])[idx] for k in range(5))
        tau = t - ts
        pos = x + v * tau + a * tau**2 / 2 + j * tau**3 / 6
        vel = v + a * tau + j * tau**2 / 2
        acc = a + j * tau
        stopped = t >= t_stop
        pos = np.where(stopped, x_stop, pos)
        vel = np.where(stopped, 0.0, vel)
        acc = np.where(stopped, 0.0, acc)
        return pos, vel, acc

    def stop_time(self) -> float:
        """When the vehicle comes to a standstill (inf if it never does)."""
        return self._segments()[1]


def _first_stop(v: float, a: float, j: float, length: float) -> float | None:
    """Smallest tau in (0, length] where v + a·tau + j·tau²/2 reaches 0 from above."""
    if v <= 0.0:
        return 0.0 if a <= 0.0 and j <= 0.0 else None
    roots: list[float] = []
    if j == 0.0:
        if a < 0.0:
            roots = [-v / a]
    else:
        disc = a * a - 2.0 * j * v
        if disc >= 0.0:
            r = math.sqrt(disc)
            roots = sorted(((-a - r) / j, (-a + r) / j))
    for tau in roots:
        if 0.0 < tau <= length:
            return tau
    return None


@dataclass(frozen=True)
class Target:
    """An object the radar may report: its motion and lateral offset knots (m, + = left)."""

    motion: Motion
    lateral: Knots = ((0.0, 0.0),)

    def lat(self, t: np.ndarray) -> np.ndarray:
        knots_t = [k[0] for k in self.lateral]
        return np.asarray(np.interp(t, knots_t, [k[1] for k in self.lateral]), dtype=np.float64)


@dataclass(frozen=True)
class Scenario:
    """One drive: what happens, how long it is recorded and what the reference must do."""

    name: str  # POSIX path below OUT_DIR without suffix, e.g. "ncap/CCRs_40kph"
    kind: str  # sidecar `scenario`
    tags: tuple[str, ...]
    description: str
    ego: Motion
    targets: tuple[Target, ...]
    duration: float
    nominal_speed: float | None = None  # km/h
    t0: float | None = None  # functional start (NCAP T0)
    params: dict[str, float] = field(default_factory=dict)
    expect: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        """Noise seed from the name (stable across runs and machines, unlike ``hash``)."""
        digest = hashlib.sha256(self.name.encode()).digest()
        return int.from_bytes(digest[:8], "little") >> 1  # fits a TOML (signed 64-bit) int

    def logger_groups(self) -> list[GroupData]:
        """The channel groups the logger writes (see :func:`synthesize`)."""
        return synthesize(self)

    def extra_files(self) -> dict[str, str]:
        """Files written beside the recording (name -> text), e.g. its channel map."""
        return {}


# ----------------------------------------------------------------------------- signals


def timestamps(sc: Scenario, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Radar (20 Hz, offset and jittered) and bus (100 Hz, jittered) timestamps of ``sc``;
    the bus stops with the radar: no cycle at the end without a target measurement."""
    n_radar = math.floor((sc.duration - RADAR_OFFSET) / RADAR_PERIOD + 1e-9) + 1
    t_radar = RADAR_OFFSET + np.arange(n_radar) * RADAR_PERIOD
    t_radar = t_radar + rng.uniform(-RADAR_JITTER, RADAR_JITTER, n_radar)
    t_radar = t_radar[t_radar <= sc.duration]
    n_bus = math.floor(sc.duration / BUS_PERIOD + 1e-9) + 1
    t_bus = np.arange(n_bus) * BUS_PERIOD + rng.uniform(-BUS_JITTER, BUS_JITTER, n_bus)
    t_bus[0] = 0.0
    return t_radar, t_bus[t_bus <= t_radar[-1]]


def synthesize(sc: Scenario) -> list[GroupData]:
    """The logger groups of ``sc``: "Vehicle" at 100 Hz and "Radar" (Obj0) at 20 Hz."""
    rng = np.random.default_rng(sc.seed)
    t_radar, t_bus = timestamps(sc, rng)

    _, v_ego, a_ego = sc.ego.at(t_bus)
    speed = v_ego * 3.6 + rng.normal(0.0, SPEED_NOISE_KPH, len(t_bus))
    speed = np.maximum(speed, 0.0) * (v_ego > 0)
    accel = a_ego + rng.normal(0.0, ACCEL_NOISE, len(t_bus))
    pedal = ((a_ego <= -0.5) | (v_ego <= 0.0)).astype(np.uint8)
    return [_vehicle_group(t_bus, speed, accel, pedal), _radar_group(sc, t_radar, rng)]


def _vehicle_group(
    t_bus: np.ndarray, speed: np.ndarray, accel: np.ndarray, pedal: np.ndarray
) -> GroupData:
    return GroupData(
        "Vehicle",
        t_bus,
        [
            ChannelData("VehSpd", speed, "km/h", "ego vehicle speed"),
            ChannelData("VehAccX", accel, "m/s^2", "ego longitudinal acceleration"),
            ChannelData("DrvBrkPdl", pedal, "", "driver brake pedal pressed (0/1)"),
        ],
    )


def _radar_group(sc: Scenario, t_radar: np.ndarray, rng: np.random.Generator) -> GroupData:
    """Object 0 at the radar's samples: the nearest target ahead in range, zeros without one.

    Draws its noise from ``rng`` after the vehicle bus did, in a fixed order.
    """
    x_ego, v_ego_r, _ = sc.ego.at(t_radar)
    dist = np.zeros(len(t_radar))
    vrel = np.zeros(len(t_radar))
    lat = np.zeros(len(t_radar))
    valid = np.zeros(len(t_radar), dtype=np.uint8)
    best = np.full(len(t_radar), np.inf)
    for target in sc.targets:
        x, v, _ = target.motion.at(t_radar)
        dx = x - x_ego
        take = (dx > MIN_DX) & (dx <= MAX_RANGE) & (dx < best)
        best = np.where(take, dx, best)
        dist = np.where(take, dx, dist)
        vrel = np.where(take, v - v_ego_r, vrel)
        lat = np.where(take, target.lat(t_radar), lat)
        valid |= take.astype(np.uint8)
    m = valid.astype(bool)
    n_r = len(t_radar)
    dist = np.where(m, dist + rng.normal(0.0, DIST_NOISE, n_r), 0.0)
    vrel = np.where(m, vrel + rng.normal(0.0, VREL_NOISE, n_r), 0.0)
    lat = np.where(m, lat + rng.normal(0.0, LAT_NOISE, n_r), 0.0)
    return GroupData(
        "Radar",
        t_radar,
        [
            ChannelData("Radar.Obj0.DistX", dist, "m", "longitudinal distance to object 0"),
            ChannelData(
                "Radar.Obj0.VrelX",
                vrel,
                "m/s",
                "relative longitudinal speed of object 0 (object minus ego)",
            ),
            ChannelData("Radar.Obj0.DistY", lat, "m", "lateral offset of object 0 (left +)"),
            ChannelData("Radar.Obj0.Valid", valid, "", "object 0 present (0/1)"),
        ],
    )


# ------------------------------------------------------------------------------ writing


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(round(value, 3))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=True)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def sidecar_text(sc: Scenario) -> str:
    """The sidecar TOML of ``sc``, written by hand in a fixed key order.

    A scenario without expectations gets no ``[expect]`` table (so no generated test
    item) and a first line that says to add the user's own bounds.
    """
    if sc.expect:
        lines = [
            "# Generated by `adsreplay generate`; bounds are for pytest_adsreplay.reference:TtcAeb",
            "# with its default parameters and the default KPI settings (0.2 s, 40 m/s^3).",
        ]
    else:
        lines = [
            "# Generated by `adsreplay generate`; no [expect] bounds: add the ones your",
            "# function must meet (see docs/physics.md for how the reference's are derived).",
        ]
    lines += [
        f"scenario = {_toml_value(sc.kind)}",
        f"tags = {_toml_value(list(sc.tags))}",
        f"description = {_toml_value(sc.description)}",
    ]
    if sc.nominal_speed is not None:
        lines.append(f"nominal_speed = {_toml_value(sc.nominal_speed)}")
    lines += ["", "[generator]", f"seed = {sc.seed}"]
    if sc.t0 is not None:
        lines.append(f"t0 = {_toml_value(sc.t0)}")
    lines += [f"{k} = {_toml_value(v)}" for k, v in sc.params.items()]
    if sc.expect:
        lines += ["", "[expect]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in sc.expect.items()]
    return "\n".join(lines) + "\n"


def _pin_header_times(path: Path) -> None:
    """Overwrite the MF4 header and file-history times with ``RECORDING_EPOCH_NS`` (UTC).

    asammdf stamps both with the wall clock; pinning them makes reruns byte-identical.
    Layout per ASAM MDF 4.1: HD at 64 (time at +72 after 6 links), FH time at +40.
    """
    data = bytearray(path.read_bytes())

    def pin(offset: int) -> None:
        struct.pack_into("<Q2hB", data, offset, RECORDING_EPOCH_NS, 0, 0, 2)  # offsets valid

    if data[64:68] != b"##HD" or struct.unpack_from("<Q", data, 80)[0] != 6:
        raise RuntimeError(f"{path}: unexpected MF4 header layout, cannot pin its time")
    pin(64 + 24 + 6 * 8)
    fh = struct.unpack_from("<Q", data, 64 + 24 + 8)[0]
    while fh:
        if data[fh : fh + 4] != b"##FH":
            raise RuntimeError(f"{path}: unexpected MF4 file-history block at {fh:#x}")
        pin(fh + 40)
        fh = struct.unpack_from("<Q", data, fh + 24)[0]
    path.write_bytes(bytes(data))


def write_scenario(sc: Scenario, out_dir: Path) -> Path:
    """Write ``sc`` as ``OUT_DIR/<name>.mf4`` plus its sidecar; return the MF4 path."""
    path = Path(out_dir) / f"{sc.name}.mf4"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_recording(
        path, sc.logger_groups(), header_comment=f"adsreplay generate: {sc.name}. {sc.description}"
    )
    _pin_header_times(path)
    path.with_suffix(".toml").write_text(sidecar_text(sc), encoding="utf-8", newline="\n")
    for name, text in sc.extra_files().items():
        (path.parent / name).write_text(text, encoding="utf-8", newline="\n")
    return path

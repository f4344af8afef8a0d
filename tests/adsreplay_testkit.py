"""Builders shared by the tests: synthetic approach recordings and a small TTC function."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from pytest_adsreplay.mdf import ChannelData, GroupData, write_recording

#: A small TTC cascade used by the plugin tests (a test project's own function).
TTC_FUNCTION = '''
import math

class Ttc:
    """Warn at TTC < fcw_ttc, brake with `decel` at TTC < brake_ttc."""

    cycle_time = 0.01

    def __init__(self, fcw_ttc=2.5, brake_ttc=1.5, decel=9.0, late=0.0):
        self.fcw_ttc, self.brake_ttc, self.decel, self.late = fcw_ttc, brake_ttc, decel, late

    def reset(self):
        self.first = None

    def step(self, f):
        d, rv = f["target_distance"], f["target_rel_speed"]
        ttc = d / -rv if rv < 0 and d == d else math.inf
        if ttc < self.brake_ttc and self.first is None:
            self.first = f["t"]
        braking = self.first is not None and f["t"] >= self.first + self.late
        return {"fcw": int(ttc < self.fcw_ttc), "aeb_decel": self.decel if braking else 0.0,
                "ttc": min(ttc, 99.0)}


class Raises(Ttc):
    def step(self, f):
        if f["t"] >= 3.0:
            raise ZeroDivisionError("boom in the function")
        return super().step(f)


class NoDecel(Ttc):
    def step(self, f):
        return {"fcw": 0}
'''


def write_approach(
    path: Path,
    *,
    ego_kph: float = 40.0,
    target_kph: float = 0.0,
    ttc0: float = 4.0,
    pre: float = 2.0,
    end_ttc: float = 0.6,
    sidecar: str | None = None,
) -> Path:
    """An ego approaching a lead at constant speeds (CCRs/CCRm-like), logger channel names.

    Starts ``pre`` s before the lead is at TTC ``ttc0``; ends when TTC reaches ``end_ttc``.
    """
    v, vt = ego_kph / 3.6, target_kph / 3.6
    dv = v - vt
    duration = pre + ttc0 - end_ttc
    t = np.arange(0.0, duration, 0.01)
    tr = np.arange(0.0, duration, 0.05)
    gap = dv * (pre + ttc0) - dv * tr
    write_logger_layout(path, t, ego_kph, tr, gap, np.full(tr.size, -dv), np.ones(tr.size))
    if sidecar is not None:
        path.with_suffix(".toml").write_text(textwrap.dedent(sidecar))
    return path


def write_logger_layout(
    path: Path,
    t_bus: np.ndarray,
    speed_kph: float,
    t_radar: np.ndarray,
    dist: np.ndarray,
    vrel: np.ndarray,
    valid: np.ndarray,
) -> Path:
    """The logger layout the built-in map resolves: a 100 Hz bus and a 20 Hz radar group."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_recording(
        path,
        [
            GroupData(
                "Vehicle",
                t_bus,
                [
                    ChannelData("VehSpd", np.full(t_bus.size, speed_kph), "km/h"),
                    ChannelData("VehAccX", np.zeros(t_bus.size), "m/s^2"),
                ],
            ),
            GroupData(
                "Radar",
                t_radar,
                [
                    ChannelData("Radar.Obj0.DistX", dist, "m"),
                    ChannelData("Radar.Obj0.VrelX", vrel, "m/s"),
                    ChannelData("Radar.Obj0.Valid", np.asarray(valid, dtype=np.uint8)),
                ],
            ),
        ],
    )

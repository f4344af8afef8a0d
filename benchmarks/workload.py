"""Benchmark workloads: realistic logger-shaped recordings of configurable size.

Each recording has about 60 channels in six groups at different rates; the channels the
built-in map resolves (speed, acceleration, brake pedal, radar object 0) are spread over
three of them, the rest is payload a replay must not read.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from pytest_adsreplay.mdf import ChannelData, GroupData, write_recording

#: (group name, rate Hz, mapped channels, filler channel count)
RADAR = ("Radar.Obj0.DistX", "Radar.Obj0.VrelX", "Radar.Obj0.DistY", "Radar.Obj0.Valid")
LAYOUT = (
    ("Vehicle", 100.0, ("VehSpd", "VehAccX", "DrvBrkPdl"), 9),
    ("Radar", 20.0, RADAR, 8),
    ("Engine", 50.0, (), 12),
    ("Chassis", 100.0, (), 10),
    ("Body", 10.0, (), 8),
    ("Camera", 25.0, (), 8),
)


def channel_count() -> int:
    return sum(len(m) + n for _, _, m, n in LAYOUT)


_ONE_BYTE = ("DrvBrkPdl", "Radar.Obj0.Valid")  # uint8 flags; every other channel is float64

#: Sample bytes per recorded minute (time channels included): a file's size / minutes.
BYTES_PER_MINUTE = int(
    sum(
        rate * 60 * (8 + sum(1 if ch in _ONE_BYTE else 8 for ch in mapped) + 8 * fillers)
        for _, rate, mapped, fillers in LAYOUT
    )
)


def _drive(t: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Ego speed and a lead object that comes and goes: following, closing, cut-outs."""
    v = 20.0 + 4.0 * np.sin(t / 45.0) + 1.5 * np.sin(t / 7.0)
    lead = 20.0 + 4.0 * np.sin(t / 45.0 + 0.3) + 2.5 * np.sin(t / 11.0)
    gap = 35.0 + 12.0 * np.sin(t / 23.0) + 0.05 * rng.standard_normal(t.size)
    return {"v": v, "lead": lead, "gap": gap}


def write_workload_recording(path: Path, minutes: float, seed: int) -> Path:
    """One recording of ``minutes`` at the LAYOUT rates (uncompressed MF4)."""
    rng = np.random.default_rng(seed)
    duration = minutes * 60.0
    groups = []
    for name, rate, mapped, fillers in LAYOUT:
        t = np.arange(0.0, duration, 1.0 / rate)
        drive = _drive(t, rng)
        chans: list[ChannelData] = []
        for ch in mapped:
            if ch == "VehSpd":
                chans.append(ChannelData(ch, drive["v"] * 3.6, "km/h"))
            elif ch == "VehAccX":
                chans.append(ChannelData(ch, np.gradient(drive["v"], t), "m/s^2"))
            elif ch == "DrvBrkPdl":
                chans.append(ChannelData(ch, np.zeros(t.size, dtype=np.uint8)))
            elif ch.endswith("DistX"):
                chans.append(ChannelData(ch, drive["gap"], "m"))
            elif ch.endswith("VrelX"):
                chans.append(ChannelData(ch, drive["lead"] - drive["v"], "m/s"))
            elif ch.endswith("DistY"):
                chans.append(ChannelData(ch, 0.1 * rng.standard_normal(t.size), "m"))
            else:
                chans.append(ChannelData(ch, np.ones(t.size, dtype=np.uint8)))
        for i in range(fillers):
            chans.append(ChannelData(f"{name}.Sig{i:02d}", rng.standard_normal(t.size), "-"))
        groups.append(GroupData(name, t, chans))
    return write_recording(path, groups)


def build(out_dir: Path, count: int, minutes: float) -> list[Path]:
    """``count`` recordings in ``out_dir`` (reused when already built with the same size)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = out_dir / f".workload-{count}x{minutes:g}min"
    paths = [out_dir / f"drive_{i:03d}.mf4" for i in range(count)]
    if stamp.exists() and all(p.exists() for p in paths):
        return paths
    for i, p in enumerate(paths):
        seed = int(hashlib.sha256(p.name.encode()).hexdigest()[:8], 16) + i
        write_workload_recording(p, minutes, seed)
    stamp.write_text("ok\n")
    return paths

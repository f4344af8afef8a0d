"""A corpus of recordings laid out the way real loggers and tools write them.

Each shape is written with asammdf (plus, where asammdf has no writer for a detail such as
a VLSD payload group or an unfinalized header, a byte-level patch of the saved file):

- **CANedge**: raw CAN bus logging (``CAN_DataFrame`` bus events) at jittering 10-100 Hz
  rates with one dropped frame, frames of the logger's internal bus that no DBC knows,
  the payload bytes in a VLSD channel group, MDF 4.11; also left unfinalized (``UnFinMF``,
  cycle counters not updated) as after a power cut.
- **CANape**: decoded measurement rasters (10 ms, 50 ms), an XML header comment with
  common properties, value-to-text flags, a speed whose text table falls back to a
  linear conversion, a radar object list as an array channel, duplicated names.
- **Vector** (CANoe/CANalyzer exports): decoded signals named ``CAN1.Message.Signal``,
  raw CAN on bus 2 decoded with a per-bus DBC, and a classic MDF 3.30 ``.mdf`` file.
- An **ASAM ODS** export whose time axis is in nanoseconds but labelled "s" (invalid).

Every recording shows the same drive: ego at 50 km/h closing on a stationary car 60 m
ahead for 4 s, so a TTC-based AEB function warns and brakes in each of them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from asammdf import MDF, Signal
from asammdf.blocks import v4_constants as v4c
from asammdf.blocks.source_utils import Source

from pytest_adsreplay.mdf import ChannelData, GroupData, write_recording

EGO_KPH = 50.0
GAP_M = 60.0
DURATION = 4.0

DBC = """\
VERSION ""

NS_ :

BS_:

BU_: ECU RADAR

BO_ 256 EgoMotion: 8 ECU
 SG_ VehSpd : 0|16@1+ (0.01,0) [0|655.35] "km/h" ECU
 SG_ AccX : 16|16@1- (0.001,0) [-32|32] "m/s^2" ECU

BO_ 512 RadarObj0: 8 RADAR
 SG_ DistX : 0|16@1+ (0.01,0) [0|655.35] "m" ECU
 SG_ VrelX : 16|16@1- (0.01,0) [-327|327] "m/s" ECU
 SG_ Valid : 32|1@1+ (1,0) [0|1] "" ECU

VAL_ 512 Valid 0 "NoObject" 1 "Object" ;
"""

CAN_SIGNALS = """
[signals.ego_speed]
channels = ["EgoMotion.VehSpd"]
[signals.target_distance]
channels = ["RadarObj0.DistX"]
[signals.target_rel_speed]
channels = ["RadarObj0.VrelX"]
[signals.target_valid]
channels = ["RadarObj0.Valid"]
"""


@dataclass(frozen=True)
class Case:
    """One corpus file: how to read it and what a reader must make of it.

    ``outcome`` is "valid" (replays; the reference function warns and brakes) or
    "invalid" (an invalid recording whose message contains ``message``).
    """

    name: str
    path: Path
    channel_map: Path | None = None
    outcome: str = "valid"
    message: str = ""
    inspect_says: tuple[str, ...] = field(default_factory=tuple)


def v_ego() -> float:
    return EGO_KPH / 3.6


def jittered(rate_hz: float, rng: np.random.Generator, *, drop: int | None = None) -> np.ndarray:
    """Timestamps of a message sent every 1/rate s with ±2 % jitter (and one frame lost)."""
    period = 1.0 / rate_hz
    n = round(DURATION * rate_hz) + 1
    t = np.arange(n) * period * 1.001 + rng.uniform(-0.02, 0.02, n) * period
    t[0] = 0.0
    if drop is not None:
        t = np.delete(t, drop)
    return np.sort(t)


def distance(t: np.ndarray) -> np.ndarray:
    return GAP_M - v_ego() * t


# ------------------------------------------------------------------------ raw CAN


def can_frames(rng: np.random.Generator, *, internal_bus: bool) -> list[tuple[float, int, bytes]]:
    """EgoMotion at 100 Hz, RadarObj0 at 10 Hz with one dropped frame, and (CANedge)
    heartbeat frames of the logger's internal bus that the DBC does not know."""
    frames: list[tuple[float, int, bytes]] = []
    for t in jittered(100.0, rng):
        frames.append((float(t), 0x100, struct.pack("<Hh4x", round(EGO_KPH / 0.01), 0)))
    for t in jittered(10.0, rng, drop=17) + 0.003:
        d = max(distance(np.array([t]))[0], 0.0)
        frames.append(
            (float(t), 0x200, struct.pack("<HhB3x", round(d / 0.01), round(-v_ego() / 0.01), 1))
        )
    if internal_bus:
        frames += [(0.25 + i, 0x7E0, bytes(8)) for i in range(4)]
    return sorted(frames, key=lambda f: f[0])


def write_raw_can(
    path: Path,
    frames: Sequence[tuple[float, int, bytes]],
    *,
    bus: int,
    version: str,
    payload_group: bool,
) -> Path:
    """A bus-event ``CAN_DataFrame`` group (and a VLSD payload group, as CANedge writes)."""
    n = len(frames)
    rec = np.zeros(
        n,
        dtype=[
            ("CAN_DataFrame.BusChannel", "u1"),
            ("CAN_DataFrame.ID", "<u4"),
            ("CAN_DataFrame.IDE", "u1"),
            ("CAN_DataFrame.DLC", "u1"),
            ("CAN_DataFrame.DataLength", "u1"),
            ("CAN_DataFrame.DataBytes", "u1", (8,)),
        ],
    )
    rec["CAN_DataFrame.BusChannel"] = bus
    rec["CAN_DataFrame.ID"] = [f[1] for f in frames]
    rec["CAN_DataFrame.DLC"] = 8
    rec["CAN_DataFrame.DataLength"] = 8
    rec["CAN_DataFrame.DataBytes"] = np.frombuffer(b"".join(f[2] for f in frames), "u1").reshape(
        n, 8
    )
    ts = np.array([f[0] for f in frames])
    src = Source(
        name=f"CAN{bus}",
        path=f"CAN{bus}",
        comment="",
        source_type=Source.SOURCE_BUS,
        bus_type=Source.BUS_TYPE_CAN,
    )
    mdf: Any = MDF(version=version)  # MF4 only: bus events are an MF4 feature
    try:
        mdf.header.comment = "<HDcomment><TX>CANedge2 log</TX></HDcomment>"
        mdf.append(
            [Signal(rec, ts, name="CAN_DataFrame", source=src)],
            acq_name="CAN_DataFrame",
            acq_source=src,
        )
        mdf.groups[0].channel_group.flags |= v4c.FLAG_CG_BUS_EVENT
        if payload_group:
            mdf.append(
                [Signal(np.zeros(n, np.uint8), ts, name="DataBytes")],
                acq_name="CAN_DataFrame payload",
            )
        saved = Path(mdf.save(path, overwrite=True, compression=0))
    finally:
        mdf.close()
    if saved != path:
        saved.replace(path)
    if payload_group:
        mark_payload_group(path, index=1)
    return path


def channel_groups(data: bytes | bytearray) -> list[int]:
    return [i for i in range(len(data) - 3) if data[i : i + 4] == b"##CG"]


def mark_payload_group(path: Path, index: int) -> None:
    """Turn channel group ``index`` into a VLSD group: no channels of its own."""
    data = bytearray(path.read_bytes())
    cg = channel_groups(data)[index]
    struct.pack_into("<Q", data, cg + 24 + 8, 0)  # cg_first_ch
    struct.pack_into("<H", data, cg + 24 + 48 + 16, v4c.FLAG_CG_VLSD)
    path.write_bytes(bytes(data))


def unfinalize(path: Path, target: Path) -> Path:
    """What a logger leaves after a power cut: ``UnFinMF`` and stale cycle counters."""
    data = bytearray(path.read_bytes())
    data[0:8] = b"UnFinMF "
    struct.pack_into("<H", data, 60, v4c.FLAG_UNFIN_UPDATE_CG_COUNTER)
    cg = channel_groups(data)[0]
    struct.pack_into("<Q", data, cg + 24 + 48 + 8, 0)  # cg_cycle_count never written
    target.write_bytes(bytes(data))
    return target


def write_map(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------- shapes


def canedge(folder: Path, rng: np.random.Generator) -> list[Case]:
    (folder / "canedge.dbc").write_text(DBC)
    cmap = write_map(folder / "canedge_map.toml", '[can]\ndbc = ["canedge.dbc"]\n' + CAN_SIGNALS)
    frames = can_frames(rng, internal_bus=True)
    log = write_raw_can(
        folder / "canedge_00000001.mf4", frames, bus=1, version="4.11", payload_group=True
    )
    broken = unfinalize(log, folder / "canedge_00000002_unfinalized.mf4")
    says = ("variable-length payload bytes", "0x7E0 (bus")
    return [
        Case("canedge", log, cmap, inspect_says=says),
        Case("canedge-unfinalized", broken, cmap, inspect_says=says),
    ]


def canape(folder: Path, rng: np.random.Generator) -> list[Case]:
    t10 = jittered(100.0, rng)
    t50 = jittered(20.0, rng)
    n = t50.size
    speed_conv = {"val_0": 0xFFFF, "text_0": b"SNA", "default_addr": {"a": 0.01, "b": 0.0}}
    valid_conv = {
        "val_0": 0,
        "text_0": b"NoObject",
        "val_1": 1,
        "text_1": b"Object",
        "default": b"?",
    }
    header = (
        '<HDcomment xmlns="http://www.asam.net/mdf/v4"><TX>CANape measurement</TX>'
        '<common_properties><e name="vehicle">TestCar 7</e><e name="driver">A</e>'
        "</common_properties></HDcomment>"
    )
    path = folder / "canape_measurement.mf4"
    write_recording(
        path,
        [
            GroupData(
                "10ms",
                t10,
                [
                    ChannelData(
                        "VehSpd",
                        np.full(t10.size, round(EGO_KPH / 0.01)).astype(np.uint16),
                        "km/h",
                        conversion=speed_conv,
                    ),
                    ChannelData("VehAccX", np.zeros(t10.size), "m/s^2"),
                    ChannelData("Status", np.ones(t10.size, np.uint8), conversion=valid_conv),
                ],
            ),
            GroupData(
                "50ms",
                t50,
                [
                    ChannelData("Radar.Obj0.DistX", distance(t50), "m"),
                    ChannelData("Radar.Obj0.VrelX", np.full(n, -v_ego()), "m/s"),
                    ChannelData("Radar.Obj0.DistY", np.full(n, 0.1), "m"),
                    ChannelData("Radar.Obj0.Valid", np.ones(n, np.uint8), conversion=valid_conv),
                    ChannelData("Status", np.ones(n, np.uint8), conversion=valid_conv),
                ],
            ),
        ],
        header_comment=header,
    )
    arrays = folder / "canape_object_list.mf4"
    objects = np.zeros(n, dtype=[("ObjList.DistX", "<f8", (4,))])
    objects["ObjList.DistX"][:, 0] = distance(t50)
    mdf = MDF(path)
    try:
        mdf.append([Signal(objects, t50, name="ObjList.DistX", unit="m")], acq_name="ObjectList")
        saved = Path(mdf.save(arrays, overwrite=True))
    finally:
        mdf.close()
    if saved != arrays:
        saved.replace(arrays)
    elem_map = write_map(
        folder / "canape_array_map.toml",
        '[signals.target_distance]\nchannels = ["ObjList.DistX[0]"]\n',
    )
    return [
        Case(
            "canape", path, inspect_says=("vehicle = 'TestCar 7'", "value-to-text, numeric default")
        ),
        Case("canape-array-element", arrays, elem_map, inspect_says=("array channel",)),
    ]


def vector(folder: Path, rng: np.random.Generator) -> list[Case]:
    t10 = jittered(100.0, rng)
    t100 = jittered(10.0, rng, drop=21)
    decoded = folder / "vector_canoe_decoded.mf4"
    write_recording(
        decoded,
        [
            GroupData(
                "CAN1.EgoMotion",
                t10,
                [ChannelData("CAN1.EgoMotion.VehSpd", np.full(t10.size, EGO_KPH), "km/h")],
            ),
            GroupData(
                "CAN2.RadarObj0",
                t100,
                [
                    ChannelData("CAN2.RadarObj0.DistX", distance(t100), "m"),
                    ChannelData("CAN2.RadarObj0.VrelX", np.full(t100.size, -v_ego()), "m/s"),
                    ChannelData("CAN2.RadarObj0.Valid", np.ones(t100.size, np.uint8)),
                ],
            ),
        ],
    )
    # the map written for raw CAN + DBC names work on the tool's decoded export too
    names_map = write_map(folder / "vector_map.toml", CAN_SIGNALS)
    (folder / "radar.dbc").write_text(DBC)
    raw = write_raw_can(
        folder / "vector_canalyzer_bus2.mf4",
        can_frames(rng, internal_bus=False),
        bus=2,
        version="4.10",
        payload_group=False,
    )
    bus_map = write_map(
        folder / "vector_bus2_map.toml",
        '[can]\ndbc = [{ file = "radar.dbc", bus = 2 }]\n' + CAN_SIGNALS,
    )
    mdf3 = folder / "vector_logging.mdf"
    write_recording(
        mdf3,
        [
            GroupData(
                "EgoMotion", t10, [ChannelData("VehSpd", np.full(t10.size, EGO_KPH), "km/h")]
            ),
            GroupData(
                "RadarObj0",
                t100,
                [
                    ChannelData("ObjDist", distance(t100), "m"),
                    ChannelData("ObjRelSpd", np.full(t100.size, -v_ego()), "m/s"),
                ],
            ),
        ],
        version="3.30",
    )
    return [
        Case("vector-decoded", decoded, names_map),
        Case("vector-raw-bus2", raw, bus_map, inspect_says=("decoded CAN messages",)),
        Case("vector-mdf3", mdf3),
    ]


def ods_nanoseconds(folder: Path, rng: np.random.Generator) -> list[Case]:
    t = np.arange(0, round(DURATION / 0.01) + 1) * 0.01
    path = folder / "ods_export_ns.mf4"
    write_recording(
        path,
        [
            GroupData(
                "Measurement",
                t * 1e9,
                [
                    ChannelData("VehSpd", np.full(t.size, EGO_KPH), "km/h"),
                    ChannelData("ObjDist", distance(t), "m"),
                    ChannelData("ObjRelSpd", np.full(t.size, -v_ego()), "m/s"),
                ],
            )
        ],
    )
    return [Case("ods-nanoseconds", path, outcome="invalid", message="probably not in seconds")]


SHAPES: tuple[Callable[[Path, np.random.Generator], list[Case]], ...] = (
    canedge,
    canape,
    vector,
    ods_nanoseconds,
)


def write_corpus(folder: Path, seed: int = 13) -> list[Case]:
    """Write every shape into ``folder``; the cases in a stable order."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    return [case for shape in SHAPES for case in shape(folder, rng)]


if __name__ == "__main__":  # pragma: no cover - write a corpus to look at
    import sys

    for c in write_corpus(Path(sys.argv[1] if len(sys.argv) > 1 else "realworld-corpus")):
        print(f"{c.name:<24} {c.path}")

"""Raw CAN bus logging decoded with a DBC named by the channel map (asammdf bus extraction)."""

from __future__ import annotations

import math
import struct
import tomllib
from pathlib import Path

import numpy as np
import pytest

from pytest_adsreplay.cli.inspect import inspect_recording
from pytest_adsreplay.errors import ChannelMapError, MissingChannelError
from pytest_adsreplay.mdf import open_recording, write_can_recording
from pytest_adsreplay.replay import replay_file
from pytest_adsreplay.signals import ChannelMap, read_signals, resolve_channels

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

MAP = """\
[can]
dbc = ["dbc/aeb.dbc"]

[signals.ego_speed]
channels = ["EgoMotion.VehSpd"]
unit = "km/h"

[signals.target_distance]
channels = ["RadarObj0.DistX"]

[signals.target_rel_speed]
channels = ["RadarObj0.VrelX"]

[signals.target_valid]
channels = ["RadarObj0.Valid"]
"""

UNKNOWN_ID = 0x7FF


def can_log(path: Path, kph: float = 40.0, duration: float = 4.0, *, bus: int = 1) -> Path:
    """Ego at ``kph`` closing on a stationary target (TTC 4 s at t = 0) as raw CAN frames:
    EgoMotion at 100 Hz, RadarObj0 at 20 Hz, and a few frames of an ID the DBC lacks."""
    v = kph / 3.6
    frames: list[tuple[float, int, bytes]] = []
    for t in np.arange(round(duration / 0.01) + 1) * 0.01:
        frames.append((float(t), 0x100, struct.pack("<Hh4x", round(kph / 0.01), 0)))
    for t in np.arange(round(duration / 0.05) + 1) * 0.05:
        dist = 4.0 * v - v * t
        frames.append(
            (
                float(t) + 0.002,
                0x200,
                struct.pack("<HhB3x", round(dist / 0.01), round(-v / 0.01), 1),
            )
        )
    frames += [(0.5 + i, UNKNOWN_ID, bytes(8)) for i in range(3)]
    return write_can_recording(path, frames, bus=bus)


@pytest.fixture
def can_map(tmp_path: Path) -> ChannelMap:
    (tmp_path / "dbc").mkdir()
    (tmp_path / "dbc" / "aeb.dbc").write_text(DBC)
    (tmp_path / "map.toml").write_text(MAP)
    return ChannelMap.load(tmp_path / "map.toml")


class Ttc:
    """A tiny TTC function: warn at 2.5 s, brake 8 m/s² at 1.5 s."""

    cycle_time = 0.01

    def step(self, f: dict[str, float]) -> dict[str, float]:
        d, rv = f["target_distance"], f["target_rel_speed"]
        ttc = d / -rv if rv < 0 and math.isfinite(d) else math.inf
        return {"fcw": float(ttc < 2.5), "aeb_decel": 8.0 if ttc < 1.5 else 0.0}


def test_dbc_paths_are_relative_to_the_map(tmp_path: Path, can_map: ChannelMap) -> None:
    assert [(d.path, d.bus) for d in can_map.dbc] == [((tmp_path / "dbc/aeb.dbc"), 0)]
    assert can_map.to_dict()["can"] == {"dbc": [{"file": str(tmp_path / "dbc/aeb.dbc"), "bus": 0}]}


def test_decoded_signals_resolve_as_message_dot_signal(tmp_path: Path, can_map: ChannelMap) -> None:
    sig = read_signals(can_log(tmp_path / "can.mf4"), can_map)
    assert sig.sources["ego_speed"].startswith("EgoMotion.VehSpd@")
    assert "km/h -> m/s" in sig.sources["ego_speed"]
    assert sig.values["ego_speed"] == pytest.approx(40 / 3.6)
    # the DBC's AccX reached ego_accel through the built-in candidate "AccX" (bare name)
    assert sig.sources["ego_accel"].startswith("EgoMotion.AccX@")
    d = sig.values["target_distance"]
    i = int(np.flatnonzero(sig.t >= 1.0)[0])
    assert d[i] == pytest.approx(4 * 40 / 3.6 - 40 / 3.6 * 1.0, abs=0.05)
    # value-to-text Valid is read as its raw 0/1, held
    assert set(np.unique(sig.values["target_valid"][np.isfinite(sig.values["target_valid"])])) == {
        1.0
    }


def test_replay_file_on_raw_can(tmp_path: Path, can_map: ChannelMap) -> None:
    res = replay_file(
        can_log(tmp_path / "can.mf4"),
        Ttc,
        channel_map=can_map,
        nominal_speed=40.0,
        expect_target=True,
    )
    assert res.brake_time is not None and res.ttc_at_brake == pytest.approx(1.5, abs=0.02)
    assert res.fcw_time == pytest.approx(1.5, abs=0.02)
    assert not res.collision


def test_bus_filter(tmp_path: Path) -> None:
    (tmp_path / "aeb.dbc").write_text(DBC)
    path = can_log(tmp_path / "can.mf4", bus=1)
    for bus, decoded in ((1, True), (0, True), (2, False)):
        data = {**tomllib.loads(MAP), "can": {"dbc": ["aeb.dbc"], "bus": bus}}
        cmap = ChannelMap.from_dict(data, base=tmp_path)
        if decoded:
            assert read_signals(path, cmap).values["ego_speed"] == pytest.approx(40 / 3.6)
        else:
            with pytest.raises(MissingChannelError, match="no CAN frame matched the DBC"):
                read_signals(path, cmap)


def test_unknown_ids_are_reported_by_inspect(tmp_path: Path, can_map: ChannelMap) -> None:
    path = can_log(tmp_path / "can.mf4")
    with open_recording(path, dbc=can_map.dbc_pairs()) as reader:
        can = reader.info.can
        assert can is not None
        assert {m for _, m in can.found} == {"EgoMotion", "RadarObj0"}
        assert [i for i, _ in can.unknown] == [UNKNOWN_ID]
        raw = reader.info.raw_bus_groups()
        assert [g.bus for g in raw] == ["CAN"] and raw[0].samples == 401 + 81 + 3
    text = inspect_recording(path, can_map)
    assert "[0] CAN1: 485 samples" in text and "raw CAN bus logging" in text
    assert "decoded CAN messages with aeb.dbc: EgoMotion (0x100), RadarObj0 (0x200)" in text
    assert "CAN IDs not in the DBC: 0x7FF" in text
    findings = text.split("Findings:")[1]
    assert f"CAN IDs not in the DBC ({tmp_path / 'dbc/aeb.dbc'}): 0x7FF" in findings
    assert "CAN_DataFrame@0/1" in text and "(structure channel, not mappable)" in text
    assert "ego_speed        <- EgoMotion.VehSpd@" in text
    assert "verdict: valid" in text


def test_raw_can_without_a_dbc_says_how_to_decode(tmp_path: Path) -> None:
    path = can_log(tmp_path / "can.mf4")
    with pytest.raises(MissingChannelError) as info:
        read_signals(path, ChannelMap.default())
    assert "the file holds raw CAN bus logging in group 0 (CAN1, 485 frames); add [can] dbc" in (
        str(info.value)
    )
    assert "add [can] dbc" in inspect_recording(path)


def test_a_dbc_without_messages(tmp_path: Path) -> None:
    (tmp_path / "junk.dbc").write_text("this is not a DBC\n")
    cmap = ChannelMap.from_dict(
        {"can": {"dbc": "junk.dbc"}, "signals": {"ego_speed": {"channels": ["EgoMotion.VehSpd"]}}},
        base=tmp_path,
    )
    with pytest.raises(MissingChannelError) as info:
        read_signals(can_log(tmp_path / "can.mf4"), cmap)
    msg = str(info.value)
    assert "no CAN frame matched the DBC file(s)" in msg and "junk.dbc" in msg
    assert "CAN IDs not in the DBC: 0x100 (bus 0), 0x200 (bus 0), 0x7FF (bus 0)" in msg


@pytest.mark.parametrize(
    ("can", "message"),
    [
        ({"dbc": ["missing.dbc"]}, r"\[can\] DBC file 'missing.dbc' not found \(looked for "),
        ({}, r"\[can\] has no dbc"),
        ({"dbc": []}, "dbc must be a non-empty list"),
        ({"dbc": ["aeb.dbc"], "bus": -1}, "bus must be a CAN channel number >= 0"),
        ({"dbc": [{"path": "aeb.dbc"}]}, r"write \{ file = "),
        ({"dbc": [3]}, "entries are file names or tables"),
        ({"dbc": ["aeb.dbc"], "baud": 500}, r"unknown key\(s\) baud"),
        ("aeb.dbc", r"\[can\] must be a table"),
    ],
)
def test_bad_can_tables(tmp_path: Path, can: object, message: str) -> None:
    (tmp_path / "aeb.dbc").write_text(DBC)
    with pytest.raises(ChannelMapError, match=message):
        ChannelMap.from_dict(
            {"can": can, "signals": {"ego_speed": {"channels": ["X"]}}},
            source="m.toml",
            base=tmp_path,
        )


def test_fingerprint_follows_the_dbc_content(tmp_path: Path, can_map: ChannelMap) -> None:
    before = can_map.fingerprint()
    assert ChannelMap.load(tmp_path / "map.toml").fingerprint() == before
    (tmp_path / "dbc" / "aeb.dbc").write_text(
        DBC.replace('0.01,0) [0|655.35] "km/h"', '0.02,0) [0|655.35] "km/h"')
    )
    assert ChannelMap.load(tmp_path / "map.toml").fingerprint() != before


def test_a_map_with_only_a_can_table_is_merged_over_the_built_in_map(tmp_path: Path) -> None:
    """The advice inspect gives for raw CAN (`[can] dbc = [...]`) is a complete map."""
    (tmp_path / "aeb.dbc").write_text(DBC)
    (tmp_path / "map.toml").write_text('[can]\ndbc = ["aeb.dbc"]\n')
    only_can = ChannelMap.load(tmp_path / "map.toml")
    assert only_can.signals == ChannelMap.default().signals
    assert [d.path.name for d in only_can.dbc] == ["aeb.dbc"]
    path = can_log(tmp_path / "can.mf4")
    with open_recording(path, dbc=only_can.dbc_pairs()) as reader:
        resolved = resolve_channels(only_can, reader.info)
    assert resolved["ego_speed"].found  # the DBC's VehSpd is a built-in candidate
    assert str(resolved["ego_speed"].channel.name) == "EgoMotion.VehSpd"  # type: ignore[union-attr]
    (tmp_path / "empty.toml").write_text('description = "nothing"\n')
    with pytest.raises(ChannelMapError, match=r"no \[signals.<name>\] tables \(and no \[can\]"):
        ChannelMap.load(tmp_path / "empty.toml")

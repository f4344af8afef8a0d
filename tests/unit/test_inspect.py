"""inspect_recording: the text behind ``adsreplay inspect FILE``."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from pytest_adsreplay.cli.inspect import inspect_recording
from pytest_adsreplay.mdf import ChannelData, GroupData, write_recording
from pytest_adsreplay.signals import ChannelMap


def recording(tmp_path: Path) -> Path:
    tv = np.r_[np.arange(0, 200), np.arange(250, 400)] * 0.01  # 0.5 s gap at 1.99 s
    tr = np.arange(0, 80) * 0.05
    dist = 50.0 - 2.0 * tr
    dist[10:14] = np.nan
    return write_recording(
        tmp_path / "rec.mf4",
        [
            GroupData(
                "Vehicle",
                tv,
                [
                    ChannelData("VehSpd", np.full(tv.size, 36.0), unit="km/h"),
                    ChannelData(
                        "State",
                        (tv > 1).astype(np.uint8),
                        conversion={
                            "val_0": 0,
                            "text_0": b"OFF",
                            "val_1": 1,
                            "text_1": b"ON",
                            "default": b"?",
                        },
                    ),
                ],
            ),
            GroupData(
                "Radar",
                tr,
                [
                    ChannelData("Radar.Obj0.DistX", dist, unit="m"),
                    ChannelData("ObjRelSpeed", np.full(tr.size, -2.0), unit="m/s"),
                    ChannelData("State", np.zeros(tr.size, dtype=np.uint8)),
                ],
            ),
        ],
    )


def test_inspect_lists_groups_channels_resolution_and_findings(tmp_path: Path) -> None:
    path = recording(tmp_path)
    text = inspect_recording(path, None)
    lines = text.splitlines()
    assert lines[0] == f"Recording: {path}"
    assert "MDF 4.10" in lines[1] and "bytes" in lines[1]
    assert "  [0] Vehicle: 350 samples, ~100 Hz, t 0.000 .. 3.990 s" in lines
    assert "  [1] Radar: 80 samples, ~20 Hz, t 0.000 .. 3.950 s" in lines
    assert any(ln.startswith("  VehSpd@0/1") and "'km/h'" in ln and "float64" in ln for ln in lines)
    assert any(
        ln.startswith("  State@0/2") and "uint8" in ln and "value-to-text" in ln for ln in lines
    )
    assert "Channel map: built-in" in text
    assert any(
        ln.startswith("  ego_speed") and "<- VehSpd@0/1 [km/h -> m/s, linear]" in ln for ln in lines
    )
    rel = next(ln for ln in lines if ln.startswith("  target_rel_speed"))
    assert "not found" in rel and "close matches: " in rel and "ObjRelSpeed" in rel
    assert "Findings:" in lines
    findings = text.split("Findings:")[1]
    assert "group 0 (Vehicle): 1 gap(s) longer than 0.2 s: 0.510 s at t=1.990 s" in findings
    assert "Radar.Obj0.DistX@1/1: 4 NaN sample(s) in 1 span(s): t 0.500 .. 0.650 s" in findings
    assert "duplicate channel name 'State': State@0/2, State@1/3" in findings
    assert "required signal target_rel_speed cannot be resolved" in findings


def test_inspect_with_a_map_shows_its_resolution(tmp_path: Path) -> None:
    path = recording(tmp_path)
    cmap = ChannelMap.from_dict(
        {
            "signals": {
                "target_rel_speed": {"channels": ["ObjRelSpeed"]},
                "target_valid": {"channels": ["State"]},
                "ego_accel": {"channels": ["VehSpd"], "unit": "m/s^2"},
            }
        },
        source="my-map.toml",
    )
    text = inspect_recording(path, cmap)
    assert "Channel map: my-map.toml" in text
    assert "target_rel_speed <- ObjRelSpeed@1/2 [m/s, linear]" in text
    valid = next(ln for ln in text.splitlines() if ln.startswith("  target_valid"))
    assert "ERROR" in valid and "State@0/2" in valid and "State@1/3" in valid
    accel = next(ln for ln in text.splitlines() if ln.startswith("  ego_accel"))
    assert "ERROR: unit contradiction" in accel and "'km/h'" in accel
    assert "required signal" not in text.split("Findings:")[1]


def test_inspect_non_monotonic_time(tmp_path: Path) -> None:
    t = np.arange(0, 50) * 0.01
    t[20] = 0.1
    path = write_recording(
        tmp_path / "dec.mf4", [GroupData("G", t, [ChannelData("VehSpd", t, unit="m/s")])]
    )
    text = inspect_recording(path, None)
    assert (
        "group 0 (G): time goes backwards at sample 20 (t=0.1 s after t=0.19 s); "
        "1 decreasing step(s) in total"
    ) in text
    gate = text.split("Data-quality gate")[1]
    assert "not run: required signal(s) not found" in gate  # only a speed channel
    assert "verdict: the replay cannot run" in gate


def test_inspect_bad_file_reports_instead_of_raising(tmp_path: Path) -> None:
    path = tmp_path / "garbage.mf4"
    path.write_bytes(b"\x00\x01garbage" * 100)
    text = inspect_recording(path, None)
    assert text.splitlines()[0] == f"Recording: {path}"
    assert "ERROR: " in text and "is not an MF4/MDF file" in text
    assert "re-export it from the logger" in text
    assert "does not exist" in inspect_recording(tmp_path / "missing.mf4", None)


def test_inspect_clean_file_has_no_findings(tmp_path: Path) -> None:
    t = np.arange(0, 100) * 0.01
    path = write_recording(
        tmp_path / "ok.mf4",
        [
            GroupData(
                "G",
                t,
                [
                    ChannelData("VehSpd", t, unit="km/h"),
                    ChannelData("ObjDist", t, unit="m"),
                    ChannelData("ObjRelSpd", t, unit="m/s"),
                ],
            )
        ],
    )
    assert inspect_recording(path, None).endswith("Findings:\n  none\n")


def _approach(path: Path, kph: float = 40.0, vehicle_t: np.ndarray | None = None) -> Path:
    v = kph / 3.6
    tv = np.arange(401) * 0.01 if vehicle_t is None else vehicle_t
    tr = np.arange(81) * 0.05
    return write_recording(
        path,
        [
            GroupData("Vehicle", tv, [ChannelData("VehSpd", np.full(tv.size, kph), unit="km/h")]),
            GroupData(
                "Radar",
                tr,
                [
                    ChannelData("ObjDist", 4 * v - v * tr, unit="m"),
                    ChannelData("ObjRelSpd", np.full(tr.size, -v), unit="m/s"),
                ],
            ),
        ],
        header_comment="<HDcomment><TX>run 7</TX><common_properties><e name='driver'>anna</e>"
        "</common_properties></HDcomment>",
    )


def test_inspect_shows_the_gate_with_the_sidecar_settings(tmp_path: Path) -> None:
    gap = np.r_[np.arange(0, 200), np.arange(250, 401)] * 0.01
    path = _approach(tmp_path / "r.mf4", 45.0, vehicle_t=gap)
    (tmp_path / "r.toml").write_text('scenario = "CCRs"\nnominal_speed = 40\n')
    text = inspect_recording(path)
    assert "Metadata: driver = 'anna', description = 'run 7'" in text
    gate = text.split("Data-quality gate (")[1].split("Findings:")[0]
    assert gate.startswith(
        "max_gap 0.2 s, min rate 10 Hz, nominal_speed 40 km/h, target expected: scenario 'CCRs'):"
    )
    lines = gate.splitlines()[1:]
    assert lines[0].startswith(
        "  FAIL gap at t = 1.990 s: channel VehSpd@0/1 (ego_speed) has no samples for 0.510 s"
    )
    assert lines[1].startswith("  FAIL presence at t = 2.000 s: ego_speed is missing (NaN)")
    assert lines[2].startswith("  FAIL nominal_speed at t = 0.000 s: ego speed 45.000 km/h")
    assert lines[-1] == "  verdict: invalid recording (3 failed checks)"
    # a wider max_gap, as the ini would set it, lets the gap pass
    assert "FAIL gap" not in inspect_recording(path, max_gap=0.6)


def test_inspect_of_a_valid_recording_and_a_broken_sidecar(tmp_path: Path) -> None:
    path = _approach(tmp_path / "ok.mf4")
    assert "  verdict: valid\n" in inspect_recording(path)
    (tmp_path / "ok.toml").write_text("scenario = \n")
    text = inspect_recording(path)
    assert "  - sidecar: sidecar " in text and "is not valid TOML" in text
    assert "  verdict: valid\n" in text


# ------------------------------------------------------------- real logger files


def vlsd_payload_file(path: Path) -> Path:
    """A vehicle group plus a channel group flagged VLSD, as CAN loggers write the payload
    bytes of their frames: no channels and no time channel of its own."""
    t = np.arange(0, 100) * 0.01
    write_recording(
        path,
        [
            GroupData("Vehicle", t, [ChannelData("VehSpd", np.full(t.size, 36.0), "km/h")]),
            GroupData("CAN_DataFrame", t, [ChannelData("Payload", np.zeros(t.size, np.uint8))]),
        ],
    )
    data = bytearray(path.read_bytes())
    cg = [i for i in range(len(data)) if data[i : i + 4] == b"##CG"][1]
    struct.pack_into("<Q", data, cg + 24 + 8, 0)  # cg_first_ch: no channels
    struct.pack_into("<H", data, cg + 24 + 48 + 16, 1)  # cg_flags: VLSD
    path.write_bytes(bytes(data))
    return path


def test_vlsd_payload_groups_are_no_time_channel_finding(tmp_path: Path) -> None:
    text = inspect_recording(vlsd_payload_file(tmp_path / "vlsd.mf4"))
    assert "[1] CAN_DataFrame: 100 samples, variable-length payload bytes" in text
    assert "NO TIME CHANNEL" not in text and "has no time channel" not in text


def test_gate_section_lists_every_missing_signal_and_counts_agree(tmp_path: Path) -> None:
    text = inspect_recording(vlsd_payload_file(tmp_path / "vlsd.mf4"))
    assert "Channels (1):" in text
    gate = text.split("Data-quality gate")[1].split("Findings:")[0].splitlines()
    assert gate[1] == "  not run: required signal(s) not found in the recording (1 channel):"
    assert gate[2].startswith("    target_distance: tried Radar.Obj0.DistX")
    assert gate[3].startswith("    target_rel_speed: tried Radar.Obj0.VrelX")
    assert gate[4].startswith("    -> add the file's channel name to channels = [...]")
    assert gate[-1] == "  verdict: the replay cannot run (see above)"


def test_bursty_bus_group_shows_an_average_frame_rate(tmp_path: Path) -> None:
    from pytest_adsreplay.mdf import write_can_recording

    # 10 bursts per second of 8 frames 1 µs apart: a median interval would say ~1e6 Hz
    frames = [(b * 0.1 + i * 1e-6, 0x100 + i, bytes(8)) for b in range(50) for i in range(8)]
    text = inspect_recording(write_can_recording(tmp_path / "can.mf4", frames))
    line = next(ln for ln in text.splitlines() if "raw CAN bus logging" in ln)
    assert "~81.43 frames/s on average" in line and "e+06" not in line
    assert "gap(s)" not in text


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["inspect", "{ok}"], 0),
        (["inspect", "{missing}"], 1),
        (["inspect", "{empty}"], 1),
        (["inspect", "{garbage}"], 1),
        (["inspect", "{invalid}"], 1),
        (["inspect"], 4),
        (["inspect", "{ok}", "--channel-map", "{missing}"], 4),
        (["inspect", "{ok}", "--max-gap", "0"], 4),
    ],
)
def test_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int
) -> None:
    from pytest_adsreplay.cli.main import main

    t = np.arange(0, 300) * 0.01
    ok = write_recording(
        tmp_path / "ok.mf4",
        [
            GroupData(
                "V",
                t,
                [
                    ChannelData("VehSpd", np.full(t.size, 36.0), "km/h"),
                    ChannelData("ObjDist", 40.0 - t, "m"),
                    ChannelData("ObjRelSpd", np.full(t.size, -1.0), "m/s"),
                ],
            )
        ],
    )
    slow = np.arange(0, 30) * 0.2  # 5 Hz: an invalid recording
    invalid = write_recording(
        tmp_path / "slow.mf4",
        [
            GroupData(
                "V",
                slow,
                [
                    ChannelData("VehSpd", np.full(slow.size, 36.0), "km/h"),
                    ChannelData("ObjDist", 40.0 - slow, "m"),
                    ChannelData("ObjRelSpd", np.full(slow.size, -1.0), "m/s"),
                ],
            )
        ],
    )
    (tmp_path / "empty.mf4").write_bytes(b"")
    (tmp_path / "garbage.mf4").write_bytes(b"\x00garbage" * 200)
    paths = {
        "ok": ok,
        "missing": tmp_path / "missing.mf4",
        "empty": tmp_path / "empty.mf4",
        "garbage": tmp_path / "garbage.mf4",
        "invalid": invalid,
    }
    args = [a.format(**paths) for a in argv]
    try:
        got = main(args)
    except SystemExit as exc:
        got = int(exc.code or 0)
    assert got == code
    out = capsys.readouterr()
    assert "--recordings" not in out.out + out.err
    if argv[-1] == "{missing}" and code == 1:
        assert "does not exist" in out.out and "check the path" in out.out


def test_a_named_pipe_is_refused_without_opening_it(tmp_path: Path) -> None:
    """Opening a FIFO blocks until someone writes to it: inspect must not open it."""
    import os
    import subprocess
    import sys

    fifo = tmp_path / "x.mf4"
    os.mkfifo(fifo)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_adsreplay.cli", "inspect", str(fifo)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "named pipe (FIFO)" in proc.stdout

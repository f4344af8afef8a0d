"""inspect_recording: the text behind ``adsreplay inspect FILE``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

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
    assert lines[-1] == "  verdict: invalid recording (3 failed check(s))"
    # a wider max_gap, as the ini would set it, lets the gap pass
    assert "FAIL gap" not in inspect_recording(path, max_gap=0.6)


def test_inspect_of_a_valid_recording_and_a_broken_sidecar(tmp_path: Path) -> None:
    path = _approach(tmp_path / "ok.mf4")
    assert "  verdict: valid\n" in inspect_recording(path)
    (tmp_path / "ok.toml").write_text("scenario = \n")
    text = inspect_recording(path)
    assert "  - sidecar: sidecar " in text and "is not valid TOML" in text
    assert "  verdict: valid\n" in text

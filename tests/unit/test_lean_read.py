"""The read stage's lean read: the same signals and the same gate verdict as a plain
read, while each channel's raw samples are released once its signal is on the grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_adsreplay.errors import AdsReplayError
from pytest_adsreplay.mdf import ChannelData, GroupData, write_recording
from pytest_adsreplay.queue import stages
from pytest_adsreplay.signals import load_channel_map, read_signals
from pytest_adsreplay.signals.quality import GateSettings, assess

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = sorted((ROOT / "recordings").rglob("*.mf4"))


def _drive(path: Path, *, seconds: float = 20.0, spoil: str = "") -> Path:
    """A logger-like file with the built-in map's channels; ``spoil`` plants one fault."""
    t = np.arange(0.0, seconds, 0.01)
    v = 50.0 - 0.5 * t  # km/h
    acc = np.full(t.size, -0.14)
    tr = np.arange(0.0, seconds, 0.05)
    dist = 40.0 - 0.3 * tr
    vrel = np.full(tr.size, -3.0)
    valid = np.ones(tr.size, dtype=np.uint8)
    if spoil == "gap":  # 0.5 s without ego speed samples
        keep = (t < 8.0) | (t >= 8.5)
        t_spd, v = t[keep], v[keep]
    else:
        t_spd = t
    if spoil == "nan":  # ego speed NaN for a second: a presence failure
        v = v.copy()
        v[(t_spd >= 5.0) & (t_spd < 6.0)] = np.nan
    if spoil == "inf":
        acc = acc.copy()
        acc[300] = np.inf
    if spoil == "no_target":
        valid[:] = 0
    groups = [
        GroupData("Speed", t_spd, [ChannelData("VehSpd", v, "km/h")]),
        GroupData(
            "Vehicle",
            t,
            [
                ChannelData("VehAccX", acc, "m/s^2"),
                ChannelData("DrvBrkPdl", np.zeros(t.size, dtype=np.uint8)),
            ],
        ),
        GroupData(
            "Radar",
            tr,
            [
                ChannelData("Radar.Obj0.DistX", dist, "m"),
                ChannelData("Radar.Obj0.VrelX", vrel, "m/s"),
                ChannelData("Radar.Obj0.DistY", np.zeros(tr.size), "m"),
                ChannelData("Radar.Obj0.Valid", valid),
            ],
        ),
    ]
    return write_recording(path, groups)


def _findings(sig: Any, settings: GateSettings) -> list[tuple[Any, ...]]:
    return [(f.check, f.fatal, f.message, f.t, f.hint) for f in assess(sig, settings)]


def _same(path: Path, settings: GateSettings) -> None:
    cmap = load_channel_map(None)
    plain = read_signals(path, cmap, 0.01, max_gap=settings.max_gap)
    lean = read_signals(path, cmap, 0.01, max_gap=settings.max_gap, lean=True)
    assert plain.early_findings is None and lean.early_findings is not None
    assert list(lean.values) == list(plain.values)
    for name, v in plain.values.items():
        assert lean.values[name].tobytes() == v.tobytes(), name
    assert lean.t.tobytes() == plain.t.tobytes() and lean.sources == plain.sources
    assert _findings(lean, settings) == _findings(plain, settings)
    # the raw samples are gone, the trace names (the gate asks for target_valid's) stay
    assert set(lean.traces) == set(plain.traces)
    assert all(tr.values.size == 0 and tr.timestamps.size == 0 for tr in lean.traces.values())


@pytest.mark.parametrize("path", BUNDLED[:6], ids=lambda p: p.name)
def test_bundled_recordings_read_lean_are_identical(path: Path) -> None:
    _same(path, GateSettings())


@pytest.mark.parametrize("spoil", ["", "gap", "nan", "inf", "no_target"])
@pytest.mark.parametrize("max_gap", [0.2, 0.6])
def test_every_gate_finding_is_the_same(tmp_path: Path, spoil: str, max_gap: float) -> None:
    path = _drive(tmp_path / f"d_{spoil}.mf4", spoil=spoil)
    settings = GateSettings(max_gap, 50.0, "the scenario is a CCR" if spoil else None)
    _same(path, settings)
    if spoil in ("nan", "inf") or (spoil == "gap" and max_gap < 0.5):  # these are fatal
        assert any(f[1] for f in _findings(read_signals(path, load_channel_map(None)), settings))


def test_the_read_stage_rejects_what_the_gate_rejects(tmp_path: Path) -> None:
    """The stage's lean read errors with the plain gate's message (the presence check
    names the NaN samples from the released trace)."""
    path = _drive(tmp_path / "nan.mf4", spoil="nan")
    ctx = {"path": str(path), "rec": "nan.mf4", "cycle_time": 0.01, "max_gap": 0.2}
    with pytest.raises(AdsReplayError, match=r"nan\.mf4") as err:
        stages._decode(ctx, load_channel_map(None))
    assert "has invalid (NaN) samples there" in str(err.value)
    good = _drive(tmp_path / "good.mf4")
    entry = stages._decode({**ctx, "path": str(good), "rec": "good.mf4"}, load_channel_map(None))
    plain = read_signals(good, load_channel_map(None), 0.01)
    assert {k: v.tobytes() for k, v in entry.values.items()} == {
        k: v.tobytes() for k, v in plain.values.items()
    }


def test_only_a_large_recording_fixes_the_mmap_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fixed 4 MiB mmap threshold (which keeps a long recording's read lean) is set
    from the first recording of ``LARGE_RECORDING`` bytes on, not for short ones: it
    makes every recording's arrays fresh pages from the kernel."""
    from pytest_adsreplay import malloc

    calls: list[str] = []
    monkeypatch.setattr(malloc, "map_large_arrays", lambda: calls.append("large"))
    path = _drive(tmp_path / "drive.mf4")
    ctx = {"path": str(path), "rec": "drive.mf4", "cycle_time": 0.01, "max_gap": 0.2}
    monkeypatch.setattr(stages, "LARGE_RECORDING", path.stat().st_size + 1)
    stages._decode(ctx, load_channel_map(None))
    assert calls == []
    monkeypatch.setattr(stages, "LARGE_RECORDING", path.stat().st_size)
    stages._decode(ctx, load_channel_map(None))
    assert calls == ["large"]

"""Scenario synthesis: reproducible bytes, the bundled folder, sidecars, MF4 layout, physics."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pytest_adsreplay.scenarios as gen
from pytest_adsreplay.errors import UsageError
from pytest_adsreplay.function.reference import TtcAeb
from pytest_adsreplay.scenarios import ncap, synthesis

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings"
KPI_NAMES = {
    "fcw_time",
    "brake_time",
    "ttc_at_fcw",
    "ttc_at_brake",
    "fcw_lead_time",
    "min_ttc",
    "max_decel",
    "collision",
    "impact_speed",
    "min_distance",
    "recorded_brake_time",
    "brake",
    "fcw",
}


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundled")
    paths = gen.generate(out, "bundled")
    assert len(paths) == len(gen.SUITES["bundled"])
    return out


def files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.suffix in (".mf4", ".toml")
    }


def single_target(root: Path) -> list[Path]:
    """The recordings below ``root`` outside ``objects/`` (the single-target layout)."""
    return sorted(p for p in root.rglob("*.mf4") if p.parent.name != "objects")


def sidecar(path: Path) -> dict[str, Any]:
    with open(path.with_suffix(".toml"), "rb") as fh:
        return tomllib.load(fh)


def read_groups(path: Path) -> dict[str, dict[str, Any]]:
    """{group: {channel: Signal}} read with asammdf (the test may, the library may not)."""
    from asammdf import MDF

    out: dict[str, dict[str, Any]] = {}
    with MDF(path) as mdf:
        groups: list[Any] = list(mdf.groups)
        for gi, group in enumerate(groups):
            name = group.channel_group.acq_name
            out[name] = {
                ch.name: mdf.get(ch.name, group=gi, index=ci)
                for ci, ch in enumerate(group.channels)
                if ci != 0
            }
    return out


# ------------------------------------------------------------------ reproducibility


def test_two_runs_write_identical_bytes(tmp_path: Path, bundled: Path) -> None:
    again = tmp_path / "again"
    gen.generate(again, "bundled")
    first, second = files(bundled), files(again)
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


def test_bundled_recordings_do_not_drift(bundled: Path) -> None:
    """recordings/ is exactly `adsreplay generate recordings --suite bundled`."""
    fresh, committed = files(bundled), files(RECORDINGS)
    hint = "regenerate: adsreplay generate recordings --suite bundled"
    assert sorted(committed) == sorted(fresh), hint
    changed = [k for k in fresh if fresh[k] != committed[k]]
    assert changed == [], f"{changed} differ; {hint}"


def test_bundled_folder_is_small() -> None:
    size = sum(p.stat().st_size for p in RECORDINGS.rglob("*") if p.is_file())
    assert size < 10 * 2**20
    assert (RECORDINGS / "README.md").is_file()


def test_seed_is_stable_and_per_scenario() -> None:
    a, b = gen.scenario("ncap/CCRs_40kph"), gen.scenario("ncap/CCRs_50kph")
    assert a.seed == gen.scenario("ncap/CCRs_40kph").seed
    assert a.seed != b.seed
    assert 0 <= a.seed < 2**63  # a TOML integer


# ------------------------------------------------------------------------ suites


def test_suites_and_file_names() -> None:
    assert set(gen.SUITES) >= {"ncap", "false-activation", "all", "bundled"}
    assert set(gen.SUITES["all"]) == (
        set(gen.SUITES["ncap"]) | set(gen.SUITES["false-activation"]) | set(gen.SUITES["objects"])
    )
    assert set(gen.SUITES["bundled"]) <= set(gen.SUITES["all"])
    ncap = gen.SUITES["ncap"]
    assert {f"ncap/CCRs_{v}kph" for v in range(10, 85, 5)} <= set(ncap)
    assert {f"ncap/CCRm_{v}kph" for v in range(30, 85, 5)} <= set(ncap)
    assert {
        "ncap/CCRb_d2_g12m",
        "ncap/CCRb_d2_g40m",
        "ncap/CCRb_d6_g12m",
        "ncap/CCRb_d6_g40m",
    } <= set(ncap)
    assert len(gen.SUITES["false-activation"]) >= 6
    for name in gen.SUITES["all"]:
        assert " " not in name and name == name.strip("/")
        assert gen.scenario(name).name == name


def test_unknown_suite_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"unknown suite 'nacp'.*\n.*ncap"):
        gen.generate(tmp_path, "nacp")
    assert list(tmp_path.iterdir()) == []


def test_generate_returns_sorted_mf4_paths_with_sidecars(tmp_path: Path) -> None:
    paths = gen.generate(tmp_path, "false-activation")
    assert paths == sorted(paths)
    assert all(p.suffix == ".mf4" and p.with_suffix(".toml").is_file() for p in paths)
    assert {p.parent.name for p in paths} == {"false-activation"}


# ---------------------------------------------------------------------- sidecars


def test_sidecars_parse_and_carry_scenario_tags_expect(bundled: Path) -> None:
    for path in single_target(bundled):  # objects/: test_object_scenarios.py
        data = sidecar(path)
        assert data["scenario"] in ("CCRs", "CCRm", "CCRb", "false-activation")
        assert isinstance(data["description"], str) and data["description"]
        tags, expect = data["tags"], data["expect"]
        assert set(expect) <= KPI_NAMES, path
        if data["scenario"] == "false-activation":
            assert tags[0] == "false-activation"
            assert expect == {"fcw": False, "brake": False}
        else:
            assert tags[:2] == ["ncap", data["scenario"].lower()]
            assert expect["brake"] is True and expect["fcw"] is True
            lo, hi = expect["ttc_at_brake"]
            assert lo < hi <= 3.0
            assert "collision" in expect or "impact_speed" in expect


def test_sidecars_load_with_the_plugin_parser(bundled: Path) -> None:
    from pytest_adsreplay.recordings import load_recording

    for path in sorted(bundled.rglob("*.mf4")):
        rec = load_recording(path, bundled)
        assert rec.expect and rec.scenario and rec.tags


def test_ttc_window_catches_a_function_300_ms_late() -> None:
    """On CCRs/CCRm the TTC falls 1 s per s: 0.3 s late is 0.3 s lower TTC at brake."""
    fn = TtcAeb()
    for name in gen.SUITES["ncap"]:
        sc = gen.scenario(name)
        lo, hi = sc.expect["ttc_at_brake"]
        assert hi - lo <= 0.2, name
        if sc.kind in ("CCRs", "CCRm"):
            assert fn.partial_ttc - 0.3 < lo <= fn.partial_ttc <= hi, name


@pytest.mark.parametrize(("v_kph", "r152_kph"), [(45, 15.0), (50, 25.0), (55, 30.0), (60, 35.0)])
def test_ccrs_impact_speed_never_above_r152(v_kph: int, r152_kph: float) -> None:
    expect = gen.scenario(f"ncap/CCRs_{v_kph}kph").expect
    assert expect["impact_speed"]["max"] <= math.ceil(r152_kph / 3.6 * 10) / 10


@pytest.mark.parametrize("v_kph", range(10, 55, 5))
def test_ccrs_up_to_50_kph_must_be_avoided(v_kph: int) -> None:
    sc = gen.scenario(f"ncap/CCRs_{v_kph}kph")
    assert sc.expect["collision"] is False
    assert sc.expect["fcw_lead_time"] == {"min": 0.8}
    assert "avoidance" in sc.tags


def test_sidecar_text_is_toml_with_expected_bound_syntax() -> None:
    text = gen.sidecar_text(gen.scenario("ncap/CCRs_40kph"))
    data = tomllib.loads(text)
    assert data["nominal_speed"] == 40.0
    assert data["generator"]["t0"] == ncap.PRE_ROLL
    assert "fcw_lead_time = { min = 0.8 }" in text
    assert "collision = false" in text
    assert data["expect"]["ttc_at_brake"] == pytest.approx([1.64, 1.71])


# -------------------------------------------------------------------- MF4 layout


def test_mf4_groups_channels_units_rates(bundled: Path) -> None:
    for path in single_target(bundled):  # objects/: test_object_scenarios.py
        groups = read_groups(path)
        assert set(groups) == {"Vehicle", "Radar"}, path
        expected = {
            "Vehicle": {"VehSpd": "km/h", "VehAccX": "m/s^2", "DrvBrkPdl": ""},
            "Radar": {
                "Radar.Obj0.DistX": "m",
                "Radar.Obj0.VrelX": "m/s",
                "Radar.Obj0.DistY": "m",
                "Radar.Obj0.Valid": "",
            },
        }
        for gname, chans in expected.items():
            assert {n: s.unit for n, s in groups[gname].items()} == chans, (path, gname)
        for flag in (groups["Vehicle"]["DrvBrkPdl"], groups["Radar"]["Radar.Obj0.Valid"]):
            assert flag.samples.dtype == np.uint8
            assert set(np.unique(flag.samples)) <= {0, 1}
        for gname, period, jitter in (("Vehicle", 0.01, 1e-4), ("Radar", 0.05, 2.5e-3)):
            ts = next(iter(groups[gname].values())).timestamps
            dt = np.diff(ts)
            assert (dt > 0).all(), (path, gname)
            assert np.median(dt) == pytest.approx(period, abs=1e-4)
            assert np.abs(dt - period).max() <= jitter
        radar = groups["Radar"]
        absent = radar["Radar.Obj0.Valid"].samples == 0
        for ch in ("Radar.Obj0.DistX", "Radar.Obj0.VrelX", "Radar.Obj0.DistY"):
            assert (radar[ch].samples[absent] == 0.0).all()


def test_ncap_approach_is_steady_for_2_s_before_t0_and_ends_before_contact(
    bundled: Path,
) -> None:
    for path in sorted((bundled / "ncap").glob("*.mf4")):
        data = sidecar(path)
        groups = read_groups(path)
        speed = groups["Vehicle"]["VehSpd"]
        radar = groups["Radar"]
        t0 = data["generator"]["t0"]
        assert t0 - speed.timestamps[0] >= 2.0
        assert t0 - radar["Radar.Obj0.DistX"].timestamps[0] >= 2.0
        assert np.abs(speed.samples - data["nominal_speed"]).max() < 1.0  # NCAP: within 1 km/h
        assert np.abs(radar["Radar.Obj0.DistY"].samples).max() < 0.1
        assert (radar["Radar.Obj0.Valid"].samples == 1).all()
        dist, vrel = radar["Radar.Obj0.DistX"].samples, radar["Radar.Obj0.VrelX"].samples
        assert dist.min() > 0.7  # the recording stops at a 1 m gap: no contact recorded
        assert radar["Radar.Obj0.DistX"].timestamps[-1] >= speed.timestamps[-1]
        if data["scenario"] in ("CCRs", "CCRm"):
            ts = radar["Radar.Obj0.DistX"].timestamps
            near = np.abs(ts - t0) < 0.2
            ttc = dist[near] / -vrel[near] + (ts[near] - t0)
            assert np.median(ttc) == pytest.approx(4.0, abs=0.05)


# ------------------------------------------------------------------ kinematics


def test_motion_matches_closed_form_stopping_distance() -> None:
    v0, a = 50 / 3.6, 9.0
    ramp = a / ncap.BRAKE_JERK
    plain = gen.Motion(0.0, v0, ((1.0, 0.0), (1.0 + 1e-9, -a)))
    ramped = gen.Motion(0.0, v0, ((1.0, 0.0), (1.0 + ramp, -a)))
    for motion, expected in (
        (plain, v0**2 / (2 * a)),
        (ramped, v0 * ramp / 2 + v0**2 / (2 * a) - a * ramp**2 / 24),
    ):
        t_stop = motion.stop_time()
        x, v, acc = motion.at(np.array([t_stop, t_stop + 5.0]))
        assert x[0] - v0 * 1.0 == pytest.approx(expected, abs=1e-6)
        assert x[1] == x[0] and v[1] == 0.0 and acc[1] == 0.0


def test_ccrb_target_follows_its_braking_profile() -> None:
    sc = gen.scenario("ncap/CCRb_d6_g12m")
    lead = sc.targets[0].motion
    _, v, a = lead.at(np.array([ncap.PRE_ROLL - 0.1, ncap.PRE_ROLL + 0.25, ncap.PRE_ROLL + 1.0]))
    assert a.tolist() == pytest.approx([0.0, -3.0, -6.0])
    assert v[2] == pytest.approx(50 / 3.6 - 6.0 * (1.0 - ncap.CCRB_RAMP / 2))


@pytest.mark.parametrize("name", gen.SUITES["false-activation"])
def test_false_activation_truth_never_activates_the_reference(name: str) -> None:
    """Noise-free truth, Obj0 chosen like the radar, stepped through TtcAeb: silence."""
    sc = gen.scenario(name)
    t = np.arange(0.0, sc.duration, 0.01)
    x_ego, v_ego, _ = sc.ego.at(t)
    best = np.full(t.size, np.inf)
    dist, vrel, lat = (np.full(t.size, math.nan) for _ in range(3))
    for target in sc.targets:
        x, v, _ = target.motion.at(t)
        dx = x - x_ego
        take = (dx > synthesis.MIN_DX) & (dx <= synthesis.MAX_RANGE) & (dx < best)
        best = np.where(take, dx, best)
        dist, vrel = np.where(take, dx, dist), np.where(take, v - v_ego, vrel)
        lat = np.where(take, target.lat(t), lat)
    fn = TtcAeb()
    fn.reset()
    for i in range(t.size):
        out = fn.step(
            {
                "t": float(t[i]),
                "ego_speed": float(v_ego[i]),
                "ego_accel": 0.0,
                "target_distance": float(dist[i]),
                "target_rel_speed": float(vrel[i]),
                "target_lateral": float(lat[i]),
                "target_valid": float(np.isfinite(dist[i])),
                "driver_brake": 0.0,
            }
        )
        assert out["fcw"] == 0.0 and out["aeb_decel"] == 0.0, (name, t[i])
    if name.endswith("lead_stops_gently"):
        assert sc.ego.stop_time() < sc.duration - 3.0  # ends standing, not closing in
        gap = sc.targets[0].motion.at(sc.duration)[0] - sc.ego.at(sc.duration)[0]
        assert 10.0 < float(gap) < 20.0


# ------------------------------------------------------------------- recordings/README


def test_the_replay_command_in_recordings_readme_collects_only_the_recordings(
    tmp_path: Path,
) -> None:
    """Run from the repository root, the suggested command must not collect tests/."""
    import shlex
    import subprocess
    import sys

    text = (RECORDINGS / "README.md").read_text(encoding="utf-8")
    (line,) = [
        s[2:] for s in text.splitlines() if s.startswith("$ pytest ") and "--aeb-function" in s
    ]
    argv = shlex.split(line)[1:]
    cmd = [sys.executable, "-m", "pytest", *argv, "--collect-only", "-q", "-p", "no:randomly"]
    cmd += ["--adsreplay-db", str(tmp_path / "results.sqlite")]
    done = subprocess.run(
        cmd,
        cwd=RECORDINGS.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    items = [s for s in done.stdout.splitlines() if "::" in s]
    with_expect = [p for p in sorted(RECORDINGS.rglob("*.mf4")) if "expect" in sidecar(p)]
    assert len(items) == len(with_expect) == 19, done.stdout + done.stderr
    assert all(".mf4" in s and "test_" not in s for s in items), items

"""Object-list scenarios of ``adsreplay generate`` against their closed-form truth.

The recordings are written by the generator (without measurement noise for the oracles:
``noise=False``, timestamps still jittered), read through the real read path with the
channel map written beside them, and stepped through a small function that brakes at a
fixed time, so the checks do not depend on any function's target selection. The KPI
target is the one the KPI stage derives from the object list
(:func:`pytest_adsreplay.kpi.target.kpi_signals`). The oracles: the derived target
switches at the analytic cycle (± one cycle), TTC at brake is the closed-form TTC within
one cycle, and the projected impact speed matches exact piecewise kinematics (dead time,
jerk ramp, constant deceleration) within 0.5 km/h.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_adsreplay import replay_file
from pytest_adsreplay.kpi.target import kpi_signals, path_offset
from pytest_adsreplay.scenarios import generate, objects, write_scenario
from pytest_adsreplay.scenarios.objects import HALF_WIDTH, SLOTS, ObjectScenario
from pytest_adsreplay.scenarios.synthesis import MAX_RANGE, MIN_DX, Motion

DT = 0.01
DELAY, JERK = 0.2, 40.0  # the KPI projection's defaults
IMPACT_TOL = 0.5 / 3.6


class FixedBrake:
    """Requests ``decel`` from ``t_brake`` on, whatever the scene."""

    cycle_time = DT

    def __init__(self, t_brake: float, decel: float) -> None:
        self.t_brake, self.decel = t_brake, decel

    def step(self, frame: Any) -> dict[str, float]:
        return {"aeb_decel": self.decel if frame["t"] >= self.t_brake - 1e-9 else 0.0}


def write(sc: ObjectScenario, folder: Path) -> tuple[Path, Path]:
    path = write_scenario(sc, folder)
    return path, path.parent / objects.channel_map_name(sc.index_base)


def replay(sc: ObjectScenario, folder: Path, t_brake: float = math.inf, decel: float = 0.0):
    path, cmap = write(sc, folder)
    return replay_file(path, lambda: FixedBrake(t_brake, decel), channel_map=cmap, sidecar=False)


def derived(result: Any, *, yaw: bool = True) -> dict[str, np.ndarray]:
    """The KPI target per cycle, derived by the KPI stage (optionally on a straight path)."""
    sig = dict(result.signals)
    if not yaw:
        sig.pop("ego_yaw_rate", None)
    return dict(kpi_signals(sig, path_half_width=HALF_WIDTH, axle_to_front=0.0))


def first_cycle(t: np.ndarray, mask: np.ndarray) -> float:
    hits = np.flatnonzero(mask)
    assert hits.size, "never"
    return float(t[hits[0]])


def truth_ids(sc: ObjectScenario, t: np.ndarray, *, yaw: bool = True) -> np.ndarray:
    """The in-path target by the KPI-target rule on the exact kinematics (NaN: none)."""
    kappa = sc.curvature if yaw else 0.0
    best = np.full(t.size, np.inf)
    ids = np.full(t.size, np.nan)
    for tr in sc.tracks:
        dx, dy, _, _ = objects.ego_frame(sc.ego, tr, sc.curvature, t)
        seen = (dx > MIN_DX) & (dx <= MAX_RANGE) & (t >= tr.t_on) & (t < tr.t_off)
        ok = seen & (np.abs(path_offset(dx, dy, kappa)) <= HALF_WIDTH) & (dx < best)
        best = np.where(ok, dx, best)
        ids = np.where(ok, tr.track_id, ids)
    return ids


def impact_oracle(sc: ObjectScenario, t_request: float, decel: float) -> tuple[bool, float]:
    """Exact outcome of braking at ``decel`` requested at ``t_request`` (dead time, jerk
    ramp, then constant) against the key track's exact motion: (collision, impact speed).
    The gap is scanned at 0.1 ms and the contact refined by bisection."""
    assert sc.key_track is not None
    x0, v0, _ = (float(a) for a in sc.ego.at(t_request))
    ramp = decel / JERK
    ego = Motion(x0, v0, ((DELAY, 0.0), (DELAY + ramp, -decel)))
    lead = sc.track(sc.key_track).motion

    def gap(tau: np.ndarray) -> np.ndarray:
        return np.asarray(lead.at(tau + t_request)[0] - ego.at(tau)[0])

    tau = np.arange(0, math.ceil((ego.stop_time() + 1.0) * 10_000) + 1) / 10_000.0
    hit = np.flatnonzero(gap(tau) <= 0.0)
    if not hit.size:
        return False, 0.0
    lo, hi = float(tau[max(hit[0] - 1, 0)]), float(tau[hit[0]])
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if gap(np.array([mid]))[0] > 0 else (lo, mid)
    ve = float(ego.at(np.array([hi]))[1][0])
    vl = float(lead.at(np.array([hi + t_request]))[1][0])
    return True, ve - vl


# ------------------------------------------------------------------------ the scenarios


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("objects")
    paths = generate(out, "objects")
    assert len(paths) == 10
    return out / "objects"


def test_suite_writes_both_layouts_and_the_channel_map(suite: Path) -> None:
    names = sorted(p.stem for p in suite.glob("*.mf4"))
    bases = [
        "curve_adjacent_lane_car",
        "cut_in",
        "cut_out",
        "overtaking_traffic",
        "parked_cars_street",
    ]
    assert names == sorted([*bases, *(f"{b}_array" for b in bases)])
    cmap = tomllib.loads((suite / "channel_map.toml").read_text())
    assert cmap["objects"]["count"] == SLOTS and cmap["objects"]["index_base"] == 0
    assert cmap["objects"]["obj_dx"]["channels"] == ["Radar.Obj{i:02d}.DistX", "ObjList.DistX"]
    side = tomllib.loads((suite / "cut_in.toml").read_text())
    assert side["scenario"] == "cut-in" and side["generator"]["switch_time"] == 4.5
    assert side["expect"]["brake"] is True
    curve = tomllib.loads((suite / "curve_adjacent_lane_car.toml").read_text())
    assert curve["expect"] == {"fcw": False, "brake": False}


def test_the_list_has_32_slots_moving_ids_clutter_and_empty_slots() -> None:
    sc = objects.cut_in(noise=False)
    t = np.arange(0.0, sc.duration, 0.05)
    mats = objects.object_matrices(sc, t)
    ids, valid, dx = mats["obj_id"], mats["obj_valid"], mats["obj_dx"]
    assert ids.shape == (t.size, SLOTS)
    assert np.isnan(dx[valid == 0]).all() and (valid == 0).any(axis=1).all()
    # every slot a track ever occupied: the cut-in car and the lead change slots
    for track in (objects.CUT_IN_ID, objects.CUT_IN_LEAD_ID):
        slots = {int(s) for s in np.nonzero(ids == track)[1]}
        assert len(slots) >= 2, (track, slots)
    assert (ids >= 100).any()  # guard-rail and ghost clutter
    ghost = np.nonzero(ids == 200)[0]
    assert ghost.size and t[ghost].min() >= 1.0 and t[ghost].max() < 1.6


def test_ego_frame_closed_form_on_a_curve() -> None:
    """A stationary point in the outer lane stays at arc offset -LANE; its ego-frame
    velocity is the derivative of its ego-frame position."""
    sc = objects.curve(noise=False)
    t = np.linspace(0.0, 5.0, 11)
    dx, dy, vx, vy = sc.kinematics(objects.CURVE_CAR_ID, t)
    np.testing.assert_allclose(path_offset(dx, dy, sc.curvature), -objects.LANE, atol=1e-9)
    h = 1e-5
    dx2, dy2, _, _ = sc.kinematics(objects.CURVE_CAR_ID, t + h)
    dx1, dy1, _, _ = sc.kinematics(objects.CURVE_CAR_ID, t - h)
    np.testing.assert_allclose(vx, (dx2 - dx1) / (2 * h), atol=1e-5)
    np.testing.assert_allclose(vy, (dy2 - dy1) / (2 * h), atol=1e-5)


# --------------------------------------------------------------------------- oracles


CASES = {
    # name: (builder, key track, track before the switch, brake time, decel)
    "cut_in": (objects.cut_in, objects.CUT_IN_ID, objects.CUT_IN_LEAD_ID, 6.2, 9.0),
    "cut_out": (objects.cut_out, objects.CUT_OUT_STATIONARY_ID, objects.CUT_OUT_LEAD_ID, 4.8, 9.0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_target_switches_at_the_analytic_cycle(name: str, tmp_path: Path) -> None:
    build, key, before, _, _ = CASES[name]
    sc = build(noise=False)
    res = replay(sc, tmp_path)
    tgt = derived(res)
    t, ids = res.t, tgt["target_id"]
    switch = float(sc.params["switch_time"])
    assert ids[t < switch - 0.5][-1] == before
    t_switch = first_cycle(t, ids == key)
    assert abs(t_switch - switch) <= DT + 1e-9, (t_switch, switch)
    assert (ids[t >= switch + DT] == key).all()
    # ... and the whole recording agrees with the rule on the exact kinematics, except
    # within one radar interval of a change (a track entering, leaving or changing slot)
    # and before the first radar sample.
    truth = truth_ids(sc, t)
    same = (ids == truth) | (np.isnan(ids) & np.isnan(truth))
    changes = t[np.flatnonzero(np.diff(np.nan_to_num(truth, nan=-1.0)) != 0) + 1]
    near = np.zeros(t.size, bool)
    for c in [0.0, *changes, *sc.reslot]:  # the radar's first sample is 3 ms in
        near |= np.abs(t - c) <= 0.06
    assert same[~near].all(), t[~near & ~same][:5]


@pytest.mark.parametrize("name", sorted(CASES))
def test_ttc_at_brake_and_impact_match_the_closed_forms(name: str, tmp_path: Path) -> None:
    build, key, _, t_brake, decel = CASES[name]
    sc = build(noise=False)
    res = replay(sc, tmp_path, t_brake, decel)
    k = res.kpis
    t_b = k["brake_time"]
    assert abs(t_b - t_brake) <= DT
    assert k["target_id_at_brake"] == key
    lo, hi = sorted(float(x) for x in sc.ttc(key, np.array([t_b - DT, t_b + DT])))
    assert lo - 1e-3 <= k["ttc_at_brake"] <= hi + 1e-3, (k["ttc_at_brake"], lo, hi)
    assert k["ttc_at_brake"] == pytest.approx(float(sc.ttc(key, t_b)[0]), abs=0.01)
    collision, impact = impact_oracle(sc, t_b, decel)
    assert k["collision"] is collision
    assert k["impact_speed"] == pytest.approx(impact, abs=IMPACT_TOL)


@pytest.mark.parametrize("name", sorted(CASES))
def test_late_weak_braking_hits_at_the_closed_form_speed(name: str, tmp_path: Path) -> None:
    """The impact-speed oracle where there is an impact (late and weak braking)."""
    build, key, _, t_brake, _ = CASES[name]
    sc = build(noise=False)
    t_late = t_brake + 0.4
    res = replay(sc, tmp_path, t_late, 3.0)
    collision, impact = impact_oracle(sc, res.kpis["brake_time"], 3.0)
    assert collision and impact > 2.0
    assert res.kpis["target_id_at_brake"] == key
    assert res.kpis["collision"] is True
    assert res.kpis["impact_speed"] == pytest.approx(impact, abs=IMPACT_TOL)


def test_the_oracle_cases_avoid_with_full_braking() -> None:
    for build, _, _, t_brake, decel in CASES.values():
        sc = build(noise=False)
        assert impact_oracle(sc, t_brake, decel) == (False, 0.0)


def test_curve_no_target_on_the_arc_but_on_a_straight_line(tmp_path: Path) -> None:
    """The stationary car in the outer lane: never the KPI target along the yaw-rate
    path; on a straight line it is in path exactly where |dy| <= the half width."""
    sc = objects.curve(noise=False)
    res = replay(sc, tmp_path)
    arc = derived(res)
    assert (arc["target_valid"] == 0).all()
    straight = derived(res, yaw=False)
    t, ids = res.t, straight["target_id"]
    car = ids == objects.CURVE_CAR_ID
    assert car.any()
    truth = truth_ids(sc, t, yaw=False) == objects.CURVE_CAR_ID
    # closed form of the window: the car's chord dy crosses +HALF_WIDTH, then -HALF_WIDTH
    t_in, t_out = first_cycle(t, truth), float(t[np.flatnonzero(truth)[-1]])
    assert abs(first_cycle(t, car) - t_in) <= DT + 1e-9
    assert abs(float(t[np.flatnonzero(car)[-1]]) - t_out) <= DT + 1e-9
    # the straight line would see it at a braking TTC: 1.6 .. 2.2 s at 50 km/h, R 100 m
    ttc = straight["target_distance"][car] / -straight["target_rel_speed"][car]
    assert 1.5 < ttc.min() < 1.7 and 2.0 < ttc.max() < 2.3


def test_parked_cars_and_overtaking_traffic_truth(tmp_path: Path) -> None:
    parked = replay(objects.parked_cars(noise=False), tmp_path / "p")
    assert (derived(parked)["target_valid"] == 0).all()
    sc = objects.overtaking(noise=False)
    res = replay(sc, tmp_path / "o")
    ids = derived(res)["target_id"]
    assert (ids[res.t > 0.1] == objects.OVERTAKING_LEAD_ID).all()
    # the overtaking cars appear mid-recording, ahead of the ego
    seen = res.signals
    appear = [
        np.isfinite(seen[f"obj_dx[{j}]"])
        for j in range(SLOTS)
        if (seen[f"obj_id[{j}]"] == 20).any()
    ]
    assert appear and not any(a[0] for a in appear)


# --------------------------------------------------------------------------- layouts


def test_layouts_give_identical_kpis(tmp_path: Path) -> None:
    """Slot channels numbered from 0 and from 1, and array channels: the same KPIs and the
    same derived target, with measurement noise."""
    base = objects.cut_in()
    variants = {
        "slots0": base,
        "slots1": replace(base, index_base=1),
        "array": objects.with_layout(base, "array"),
    }
    out = {}
    for label, sc in variants.items():
        path, cmap = write(sc, tmp_path / label)
        res = replay_file(path, "pytest_adsreplay.reference:TtcAeb", channel_map=cmap)
        out[label] = (res.kpis, derived(res)["target_id"])
    text = (tmp_path / "slots1" / "objects" / "channel_map_base1.toml").read_text()
    assert "index_base = 1" in text
    ref_kpis, ref_ids = out["slots0"]
    assert ref_kpis["brake_time"] is not None and ref_kpis["target_id_at_brake"] == 5
    for label in ("slots1", "array"):
        kpis, ids = out[label]
        assert kpis == ref_kpis, label
        np.testing.assert_array_equal(ids, ref_ids)


def test_the_slot_layout_is_one_channel_per_slot_and_the_array_layout_one_per_field() -> None:
    sc = objects.cut_out(noise=False)
    slots = {c.name for g in sc.logger_groups() for c in g.channels}
    assert {"Radar.Obj00.DistX", "Radar.Obj31.Class", "YawRate"} <= slots
    one = {c.name for g in replace(sc, index_base=1).logger_groups() for c in g.channels}
    assert "Radar.Obj32.DistX" in one and "Radar.Obj00.DistX" not in one
    arr = [c for g in objects.with_layout(sc, "array").logger_groups() for c in g.channels]
    dx = next(c for c in arr if c.name == "ObjList.DistX")
    assert dx.samples.shape[1] == SLOTS


def test_objects_suite_rerun_is_byte_identical(tmp_path: Path, suite: Path) -> None:
    again = generate(tmp_path, "objects")
    for path in again:
        assert path.read_bytes() == (suite / path.name).read_bytes(), path.name
        side = path.with_suffix(".toml")
        assert side.read_bytes() == (suite / side.name).read_bytes()
    assert (tmp_path / "objects" / "channel_map.toml").read_bytes() == (
        suite / "channel_map.toml"
    ).read_bytes()


# --------------------------------------------------------------------- files, bundled

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings"


def test_mf4_groups_channels_units_rates_and_types(suite: Path) -> None:
    from asammdf import MDF

    for stem, layout in (("cut_in", "slots"), ("cut_in_array", "array")):
        with MDF(suite / f"{stem}.mf4") as mdf:
            groups: dict[str, dict[str, Any]] = {}
            blocks: list[Any] = list(mdf.groups)
            for gi, group in enumerate(blocks):
                groups[group.channel_group.acq_name] = {
                    ch.name: mdf.get(ch.name, group=gi, index=ci)
                    for ci, ch in enumerate(group.channels)
                    if ci != 0
                }
        assert set(groups) == {"Vehicle", "Radar"}
        assert groups["Vehicle"]["YawRate"].unit == "rad/s"
        radar = groups["Radar"]
        if layout == "slots":
            assert len(radar) == SLOTS * len(objects.FIELDS)
            dx, ids = radar["Radar.Obj00.DistX"], radar["Radar.Obj31.ID"]
            assert dx.unit == "m" and dx.samples.dtype == np.float32
            assert ids.samples.dtype == np.uint16
        else:
            whole = {n for n in radar if "[" not in n}  # asammdf also lists the elements
            assert whole == {f"ObjList.{f[0]}" for f in objects.FIELDS}
            assert sum(n.startswith("ObjList.DistX[") for n in radar) == SLOTS
        ts = next(iter(radar.values())).timestamps
        assert np.median(np.diff(ts)) == pytest.approx(0.05, abs=1e-4)


def test_bundled_object_recordings_and_their_map() -> None:
    folder = RECORDINGS / "objects"
    assert sorted(p.name for p in folder.glob("*.mf4")) == [
        "curve_adjacent_lane_car.mf4",
        "cut_in.mf4",
        "cut_out.mf4",
    ]
    assert (folder / "channel_map.toml").read_text() == objects.channel_map_text()
    examples = tomllib.loads((RECORDINGS.parent / "examples" / "channel_map.toml").read_text())
    assert examples["objects"] == tomllib.loads(objects.channel_map_text())["objects"]
    for name in ("cut_in", "cut_out"):
        side = tomllib.loads((folder / f"{name}.toml").read_text())
        assert side["expect"]["brake"] is True and "ttc_at_brake" in side["expect"]
        assert "impact_speed" in side["expect"] or side["expect"]["collision"] is False
    side = tomllib.loads((folder / "curve_adjacent_lane_car.toml").read_text())
    assert side["expect"] == {"fcw": False, "brake": False}
    assert sum(p.stat().st_size for p in folder.iterdir()) < 1.5 * 2**20


def test_the_curve_discriminates_a_straight_line_selection(tmp_path: Path) -> None:
    """The bundled reference with the recorded yaw rate does not brake in the curve;
    without it (a straight path) it brakes for the car in the outer lane."""
    sc = objects.curve()
    path, cmap = write(sc, tmp_path)
    with_yaw = replay_file(path, "pytest_adsreplay.reference:TtcAeb", channel_map=cmap)
    assert with_yaw.kpis["brake_time"] is None and with_yaw.kpis["fcw_time"] is None
    straight = tmp_path / "straight.toml"
    straight.write_text(
        cmap.read_text() + '\n[signals.ego_yaw_rate]\nchannels = ["NoSuchYawRate"]\n'
    )
    blind = replay_file(path, "pytest_adsreplay.reference:TtcAeb", channel_map=straight)
    assert blind.kpis["brake_time"] is not None
    assert blind.outputs["reacted_to"][np.flatnonzero(blind.outputs["aeb_decel"] > 0)[0]] == (
        objects.CURVE_CAR_ID
    )


class StraightPathAeb:
    """The reference, blind to the yaw rate: it selects along a straight line."""

    cycle_time = DT

    def __init__(self) -> None:
        from pytest_adsreplay.function.reference import TtcAeb

        self.inner = TtcAeb()

    def step(self, frame: Any) -> dict[str, float]:
        seen = {k: frame[k] for k in frame.keys()}  # noqa: SIM118  (a frame, not a dict)
        seen["ego_yaw_rate"] = math.nan
        return dict(self.inner.step(seen))


def test_new_kpis_flag_braking_for_the_curve_car_as_out_of_path(tmp_path: Path) -> None:
    """The KPI target follows the yaw-rate path (none in the curve); a function that
    selects on a straight line brakes for the outer-lane car: braked_for_out_of_path."""
    path, cmap = write(objects.curve(), tmp_path)
    res = replay_file(path, StraightPathAeb, channel_map=cmap)
    k = res.kpis
    assert k["brake_time"] is not None and k["target_id_at_brake"] is None
    assert k["reacted_to_at_brake"] == objects.CURVE_CAR_ID
    assert k["braked_for_out_of_path"] is True
    path, cmap = write(objects.cut_in(), tmp_path / "cut_in")
    ok = replay_file(path, "pytest_adsreplay.reference:TtcAeb", channel_map=cmap).kpis
    assert ok["target_id_at_brake"] == ok["reacted_to_at_brake"] == objects.CUT_IN_ID
    assert ok["braked_for_out_of_path"] is False

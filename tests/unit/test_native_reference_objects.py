"""The C reference (``native/ttc_aeb.c``) selecting its target from the object list like
the Python one: the object-list inputs and ``reacted_to``, and identical outputs cycle by
cycle (``fcw``, ``aeb_decel``, ``ttc``, ``state``, ``reacted_to``) on a bundled
single-target recording, the bundled object-list recordings (``recordings/objects/``) and
synthetic 32-slot lists (cut-in, cut-out with a target switch, curve, clutter, an object
crossing the path, random lists), as a library (batch and per step) and as FMI 2 / FMI 3
FMUs."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from native_build import NATIVE, Builds, build_all, build_library
from reference_scenarios import (
    SLOTS,
    clutter,
    curve,
    cut_in,
    cut_out,
    ghost,
    no_lateral,
    random_list,
)

from pytest_adsreplay import replay
from pytest_adsreplay.function.native import NativeAdapter
from pytest_adsreplay.recordings.discovery import discover
from pytest_adsreplay.reference import TtcAeb

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings"
OUTPUTS = ("fcw", "aeb_decel", "ttc", "state", "reacted_to")
FIELDS = ("obj_dx", "obj_dy", "obj_vx", "obj_valid", "obj_id")

Scenario = Callable[[], tuple[np.ndarray, dict[str, np.ndarray]]]
SCENARIOS: dict[str, Scenario] = {
    "cut_in": cut_in,
    "cut_out": cut_out,
    "cut_out_during_warning": lambda: cut_out(lead_rel=-5.0, swerve=2.1, parked=82.0),
    "curve_adjacent_lane": curve,
    "curve_in_path": lambda: curve(lane=0.0),
    "clutter": clutter,
    "ghost_5_cycles": ghost,
    "ghost_15_cycles": lambda: ghost(cycles=15),
    "no_lateral": no_lateral,
    **{f"random_{seed}": partial(random_list, seed) for seed in range(4)},
}


@pytest.fixture(scope="session")
def native_builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    return build_all(tmp_path_factory)


def python_outputs(
    t: np.ndarray, sig: dict[str, np.ndarray], **params: float
) -> dict[str, np.ndarray]:
    return replay.step(TtcAeb(**params), t, sig)


def assert_same_outputs(
    expected: dict[str, np.ndarray], got: dict[str, np.ndarray], where: str
) -> None:
    for name in OUTPUTS:
        want = expected.get(name, np.full(len(got[name]), math.nan))  # Python: no list, none
        np.testing.assert_array_equal(got[name], want, err_msg=f"{where}: {name}")


def test_object_list_inputs_and_reacted_to(native_builds: Builds) -> None:
    fn = NativeAdapter(str(native_builds.reference))
    info = fn.info()
    names = [p.name for p in info.inputs]
    assert names[:6] == [
        "ego_speed",
        "target_distance",
        "target_rel_speed",
        "target_valid",
        "target_lateral",
        "ego_yaw_rate",
    ]
    assert names[6:] == [f"{f}[{i}]" for f in FIELDS for i in range(SLOTS)]
    assert [p.name for p in info.outputs] == list(OUTPUTS)
    params = {p.name: p.start for p in info.parameters}
    assert params["axle_to_front"] == 0.0 and params["max_lateral"] == 1.0
    fn.close()


@pytest.mark.parametrize("form", ["batch", "steps"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_c_selects_like_python_cycle_by_cycle(native_builds: Builds, name: str, form: str) -> None:
    t, sig = SCENARIOS[name]()
    expected = python_outputs(t, sig)
    lib = native_builds.reference if form == "batch" else native_builds.reference_steps
    fn = NativeAdapter(str(lib))
    try:
        got = fn.run(t, sig, recording=name)
    finally:
        fn.close()
    assert_same_outputs(expected, got, name)
    # the list is exercised: a target is selected (on the curve: the car is never in path)
    assert bool(np.isfinite(got["reacted_to"]).any()) is (name != "curve_adjacent_lane")


def test_parameters_reach_the_c_selection(native_builds: Builds) -> None:
    t, sig = curve(lane=-1.0)
    params = {"axle_to_front": 3.7, "max_lateral": 1.2}
    fn = NativeAdapter(str(native_builds.reference), params)
    try:
        got = fn.run(t, sig)
    finally:
        fn.close()
    assert_same_outputs(python_outputs(t, sig, **params), got, "curve, axle_to_front 3.7")
    with pytest.raises(Exception, match="axle_to_front must be finite and >= 0"):
        NativeAdapter(str(native_builds.reference), {"axle_to_front": -1.0})


def test_single_target_recording_is_unchanged_and_reacted_to_nan(native_builds: Builds) -> None:
    rec = next(r for r in discover([RECORDINGS]) if r.id == "ncap/CCRs_50kph.mf4")
    sig = replay.read(rec.path, None, 0.01, recording_id=rec.id)
    expected = python_outputs(sig.t, sig.values)
    assert "reacted_to" not in expected  # no list: the Python function has no such output
    fn = NativeAdapter(str(native_builds.reference))
    try:
        got = fn.run(sig.t, sig.values, recording=rec.id)
    finally:
        fn.close()
    assert_same_outputs(expected, got, rec.id)
    assert np.isnan(got["reacted_to"]).all() and got["aeb_decel"].max() > 0
    k_py = replay.kpis(sig.t, sig.values, expected)
    k_c = replay.kpis(sig.t, sig.values, got)
    assert k_c["reacted_to_at_brake"] is None and k_c["braked_for_out_of_path"] is None
    assert k_c == k_py


@pytest.mark.parametrize("version", [2, 3])
def test_fmus_of_the_c_reference_select_like_python(native_builds: Builds, version: int) -> None:
    from pytest_adsreplay.function.fmu import FmuAdapter

    fmu = native_builds.reference_fmu2 if version == 2 else native_builds.reference_fmu3
    if fmu is None:
        pytest.skip("no FMI 3 build on this machine")
    fn: Any = FmuAdapter(str(fmu))
    try:
        for name in ("cut_out_during_warning", "clutter", "random_1"):
            t, sig = SCENARIOS[name]()
            got = fn.run(t, sig, recording=name)
            assert_same_outputs(python_outputs(t, sig), got, f"FMI {version} {name}")
    finally:
        fn.close()


def test_slot_count_is_a_build_option(native_builds: Builds) -> None:
    """``-DTTC_AEB_SLOTS=n`` builds the list with n slots (a 4-slot recording runs, with the
    Python outputs); 0 leaves out the object inputs (a single-target build)."""
    src = [NATIVE / "ttc_aeb.c"]
    four = build_library(native_builds.root / "libaeb_4.so", src, defines=("TTC_AEB_SLOTS=4",))
    none = build_library(native_builds.root / "libaeb_0.so", src, defines=("TTC_AEB_SLOTS=0",))
    t, sig = cut_in()
    narrow = {k: v for k, v in sig.items() if "[" not in k or int(k.split("[")[1][:-1]) < 4}
    fn = NativeAdapter(str(four))
    try:
        assert len(fn.info().inputs) == 6 + 5 * 4
        assert_same_outputs(python_outputs(t, narrow), fn.run(t, narrow), "4 slots, cut-in")
    finally:
        fn.close()
    rec = next(r for r in discover([RECORDINGS]) if r.id == "ncap/CCRm_50kph.mf4")
    plain = replay.read(rec.path, None, 0.01, recording_id=rec.id)
    fn = NativeAdapter(str(none))
    try:
        assert [p.name for p in fn.info().inputs][-1] == "ego_yaw_rate"
        got = fn.run(plain.t, plain.values, recording=rec.id)
        assert_same_outputs(python_outputs(plain.t, plain.values), got, rec.id)
    finally:
        fn.close()


OBJECT_RECORDINGS = sorted((RECORDINGS / "objects").glob("*.mf4"))


@pytest.mark.parametrize("path", OBJECT_RECORDINGS, ids=[p.name for p in OBJECT_RECORDINGS])
def test_c_selects_like_python_on_the_bundled_object_lists(
    native_builds: Builds, path: Path
) -> None:
    """The bundled object-list recordings (read with their channel map): the same outputs
    every cycle and the same KPIs, and the target braked for is the in-path one."""
    sig = replay.read(path, RECORDINGS / "objects" / "channel_map.toml", 0.01, gate=False)
    expected = python_outputs(sig.t, sig.values)
    fn = NativeAdapter(str(native_builds.reference))
    try:
        got = fn.run(sig.t, sig.values, recording=path.name)
    finally:
        fn.close()
    assert_same_outputs(expected, got, path.name)
    k_py = replay.kpis(sig.t, sig.values, expected)
    assert replay.kpis(sig.t, sig.values, got) == k_py
    assert k_py["braked_for_out_of_path"] is False

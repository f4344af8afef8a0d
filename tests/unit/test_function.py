"""Loading and stepping the function under test."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pytest_adsreplay.errors import FunctionError, FunctionLoadError
from pytest_adsreplay.function import stepping as function
from pytest_adsreplay.function.python import declared_cycle_time, load_function, run_function

T = np.arange(0, 1, 0.01)
SIGNALS = {"ego_speed": np.full(T.size, 10.0), "target_distance": np.linspace(20, 10, T.size)}


@pytest.fixture(autouse=True, params=[function.CHUNK, 7, 1], ids=["chunk", "chunk7", "chunk1"])
def chunk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Every test also runs with chunks of 7 and 1 cycles, so each irregular result,
    exception and bad value lands mid-chunk, on a chunk's first cycle and after
    checked chunks."""
    monkeypatch.setattr(function, "CHUNK", request.param)
    return int(request.param)


class Good:
    cycle_time = 0.02

    def __init__(self, decel: float = 3.0):
        self.decel = decel
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def step(self, frame):
        return {
            "fcw": 1 if frame["target_distance"] < 15 else 0,
            "aeb_decel": self.decel if frame["t"] >= 0.5 else 0.0,
            "extra": frame["t"] * 2,
        }


def test_load_by_string_and_by_class() -> None:
    fn = load_function("pytest_adsreplay.reference:TtcAeb", {"fcw_ttc": 3.0})
    assert fn.fcw_ttc == 3.0  # type: ignore[attr-defined]
    assert isinstance(load_function(Good, {"decel": 2.0}), Good)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nocolon", "is not of the form 'module:attr'"),
        ("no_such_mod_xyz:Aeb", "cannot import module 'no_such_mod_xyz'"),
        ("pytest_adsreplay.reference:Nope", "has no attribute 'Nope'"),
        ("pytest_adsreplay.reference:__doc__", "is a str, not a class or zero-argument factory"),
        ("math:pi", "is a float, not a class"),
    ],
)
def test_load_errors(spec: str, message: str) -> None:
    with pytest.raises(FunctionLoadError, match=message):
        load_function(spec)


def test_bad_params_show_the_signature() -> None:
    with pytest.raises(
        FunctionLoadError, match=r"(?s)with params \{'nope': 1\}.*signature is Good\(decel"
    ):
        load_function(Good, {"nope": 1})


def test_object_without_step() -> None:
    with pytest.raises(FunctionLoadError, match="without a step"):
        load_function(dict)


def test_declared_cycle_time() -> None:
    assert declared_cycle_time(Good()) == 0.02
    assert declared_cycle_time(object()) is None
    bad = Good()
    bad.cycle_time = -1
    with pytest.raises(FunctionLoadError, match="positive"):
        declared_cycle_time(bad)


def test_run_collects_outputs_calls_reset_and_fills_absent_inputs() -> None:
    seen = []

    class Spy(Good):
        def step(self, frame):
            seen.append(dict(frame))
            return super().step(frame)

    fn = Spy()
    out = run_function(fn, T, SIGNALS, inputs=("ego_speed", "ego_accel", "target_distance"))
    assert fn.resets == 1
    assert set(out) == {"fcw", "aeb_decel", "extra"}
    assert out["aeb_decel"][49] == 0.0 and out["aeb_decel"][50] == 3.0
    assert out["extra"][10] == pytest.approx(0.2)
    assert math.isnan(seen[0]["ego_accel"]) and seen[3]["t"] == pytest.approx(0.03)


def test_each_frame_is_a_fresh_read_only_mapping_a_function_may_keep() -> None:
    kept: list[object] = []

    class Keeps(Good):
        def step(self, frame):
            kept.append(frame)
            out = super().step(frame)
            with pytest.raises(TypeError):
                frame["t"] = -1.0  # read-only (SPEC §3)
            return out

    out = run_function(Keeps(), T, SIGNALS)
    assert [f["ego_speed"] for f in kept[:2]] == [10.0, 10.0]  # type: ignore[index]
    assert kept[1] is not kept[0]
    assert kept[2]["target_distance"] == SIGNALS["target_distance"][2]  # type: ignore[index]
    assert out["extra"][3] == pytest.approx(0.06)


class Varying:
    """Results that leave the fast path at ``switch``: another key set, then a Mapping."""

    def __init__(self, switch: int, bad: object = None) -> None:
        self.switch, self.bad = switch, bad

    def step(self, frame):
        i = round(frame["t"] / 0.01)
        if i == self.switch and self.bad is not None:
            return self.bad
        if i < self.switch:
            return {"aeb_decel": 1.0, "fcw": 0}
        if i % 2:
            return {"aeb_decel": 2.0, "late": float(i)}
        from types import MappingProxyType

        return MappingProxyType({"aeb_decel": np.float32(3.0), "fcw": True})


def test_results_that_change_shape_are_collected_cycle_by_cycle() -> None:
    out = run_function(Varying(switch=10), T, SIGNALS)
    assert list(out) == ["fcw", "aeb_decel", "late"]
    assert out["aeb_decel"][9] == 1.0 and out["aeb_decel"][11] == 2.0
    assert out["aeb_decel"][12] == 3.0 and out["fcw"][12] == 1.0 and out["fcw"][11] == 0.0
    assert math.isnan(out["late"][10]) and out["late"][11] == 11.0


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"aeb_decel": 1.0, "fcw": 0.5}, r"fcw = 0.5 at t = 0.070 s \(cycle 7\)"),
        ({"aeb_decel": -1.0, "fcw": 0}, r"aeb_decel = -1.0 at t = 0.070 s"),
        ({"aeb_decel": 1.0, "fcw": "on"}, r"fcw = 'on' at t = 0.070 s"),
        ({"aeb_decel": np.array([1.0]), "fcw": 0}, r"aeb_decel = array\(\[1.\]\) at t = 0.070 s"),
        ({"aeb_decel": 1j, "fcw": 0}, r"aeb_decel = 1j at t = 0.070 s"),
        (
            {"aeb_decel": 1.0, "fcw": 0, "x": None},
            r"non-numeric extra output 'x' = None at t = 0.070",
        ),
        ({"fcw": 0, "x": 1.0}, r"returned no 'aeb_decel' at t = 0.070 s"),
    ],
)
def test_a_bad_result_after_good_ones_names_its_cycle(bad: object, message: str) -> None:
    with pytest.raises(FunctionError, match=message):
        run_function(Varying(switch=7, bad=bad), T, SIGNALS)


def test_a_bad_result_before_an_exception_is_reported_first() -> None:
    class BadThenRaises:
        def step(self, frame):
            i = round(frame["t"] / 0.01)
            if i == 20:
                raise RuntimeError("later")
            return {"aeb_decel": -1.0 if i == 5 else 0.0, "fcw": 0}

    with pytest.raises(FunctionError, match=r"aeb_decel = -1.0 at t = 0.050 s"):
        run_function(BadThenRaises(), T, SIGNALS)


@pytest.mark.parametrize("value", [np.bool_(True), np.array(1.0), np.float32(1.0), np.uint8(1)])
def test_numpy_numbers_are_numbers(value: object) -> None:
    class Numpy:
        def step(self, frame):
            return {"aeb_decel": value, "fcw": value}

    out = run_function(Numpy(), T, SIGNALS)
    assert (out["aeb_decel"] == 1.0).all() and (out["fcw"] == 1.0).all()


def test_only_aeb_decel_and_big_integers() -> None:
    class Minimal:
        def step(self, frame):
            return {"aeb_decel": 2**70 if frame["t"] > 0.5 else 0}

    out = run_function(Minimal(), T, SIGNALS)
    assert out["aeb_decel"][-1] == float(2**70) and out["fcw"].sum() == 0.0
    assert run_function(Minimal(), T[:0], {"ego_speed": T[:0]})["aeb_decel"].size == 0


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"fcw": 0}, r"step\(\) returned no 'aeb_decel' at t = 0.000 s \(cycle 0\)"),
        ({"aeb_decel": "strong"}, r"aeb_decel = 'strong' at t = 0.000 s.*finite number"),
        ({"aeb_decel": float("nan")}, r"aeb_decel = nan .*finite number"),
        ({"aeb_decel": -2.0}, r"aeb_decel = -2.0 .*≥ 0"),
        ({"aeb_decel": None}, r"aeb_decel = None"),
        ({"aeb_decel": 1.0, "fcw": 0.5}, r"fcw = 0.5 .*expected 0 or 1"),
        ({"aeb_decel": 1.0, "state": "BRAKE"}, r"non-numeric extra output 'state'"),
        (None, r"step\(\) returned NoneType None"),
    ],
)
def test_garbage_outputs_are_function_errors(result: object, message: str) -> None:
    class Garbage:
        def step(self, frame):
            return result

    with pytest.raises(FunctionError, match=message) as info:
        run_function(Garbage(), T, SIGNALS, recording="rec.mf4")
    assert info.value.t == 0.0
    assert str(info.value).startswith("rec.mf4: ")


def test_exception_carries_the_function_traceback_and_t() -> None:
    class Raises:
        def step(self, frame):
            if frame["t"] > 0.3:
                return {"aeb_decel": 1 / 0}
            return {"aeb_decel": 0.0}

    with pytest.raises(FunctionError) as info:
        run_function(Raises(), T, SIGNALS, recording="rec.mf4")
    err = info.value
    assert err.t == pytest.approx(0.31)
    assert "raised ZeroDivisionError: division by zero at t = 0.310 s (cycle 31)" in str(err)
    assert err.traceback and "in step" in err.traceback
    assert "pytest_adsreplay/function/" not in err.traceback  # only the function's own frames


def test_reset_that_raises() -> None:
    class BadReset(Good):
        def reset(self) -> None:
            raise RuntimeError("no calibration file")

    with pytest.raises(FunctionError, match="reset\\(\\) raised RuntimeError: no calibration file"):
        run_function(BadReset(), T, SIGNALS)


def test_signals_must_match_the_grid() -> None:
    for bad in (np.zeros(T.size - 1), np.zeros(T.size + 1), np.zeros((T.size, 2))):
        with pytest.raises(ValueError, match="'ego_speed' has shape"):
            run_function(Good(), T, {**SIGNALS, "ego_speed": bad})


def test_the_traceback_starts_in_the_function_not_in_the_replay_loop() -> None:
    class Fails:
        def step(self, frame):
            if frame["t"] > 0.5:
                raise ZeroDivisionError("boom")
            return {"aeb_decel": 0.0}

    with pytest.raises(FunctionError) as info:
        run_function(Fails(), T, SIGNALS)
    tb = info.value.traceback or ""
    assert tb.startswith("Traceback") and "fast loop" not in tb and "<string>" not in tb
    assert 'in step\n    raise ZeroDivisionError("boom")' in tb


def test_import_hint_names_the_ini_line_for_a_folder_it_finds(tmp_path: Path) -> None:
    from pytest_adsreplay.function.python import import_hint

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mine.py").write_text("")
    (tmp_path / "pkgroot").mkdir()
    (tmp_path / "pkgroot" / "mypkg").mkdir()
    (tmp_path / "pkgroot" / "mypkg" / "__init__.py").write_text("")
    assert "add `pythonpath = src` to the [pytest] section" in import_hint("mine", tmp_path)
    assert "PYTHONPATH=pkgroot" in import_hint("mypkg.aeb", tmp_path)
    general = import_hint("nowhere", tmp_path)
    assert "`pythonpath = <folder>`" in general and "rootdir" in general


def test_load_error_on_a_worker_names_worker_and_host() -> None:
    import socket

    from pytest_adsreplay.queue.stages import _load_error_here

    err = FunctionLoadError("cannot import module 'mine' of function under test 'mine:Aeb'")
    out = _load_error_here(err, {"function": "mine:Aeb", "rec": "r.mf4"})
    assert str(out).startswith("r.mf4: worker pid ")
    assert f"on host {socket.gethostname()}: cannot import module 'mine'" in str(out)
    assert "PYTHONPATH=<folder> adsreplay worker" in str(out)


def test_open_function_dispatches_by_form(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_adsreplay.function as fn_pkg
    from pytest_adsreplay.function import function_kind, open_function
    from pytest_adsreplay.function.python import PythonAdapter

    assert [function_kind(s) for s in ("a.b:C", "x/aeb.FMU", "libaeb.so", "aeb.dll", Good)] == [
        "python",
        "fmu",
        "c",
        "c",
        "python",
    ]
    adapter = open_function(Good, {"decel": 2.0})  # a class object still works
    assert isinstance(adapter, PythonAdapter) and adapter.cycle_time == 0.02
    assert adapter.info().kind == "python" and adapter.spec.endswith(":Good")
    assert adapter.run(T, SIGNALS)["aeb_decel"].max() == 2.0
    monkeypatch.setitem(fn_pkg.ADAPTERS, "fmu", "pytest_adsreplay.function.no_such_adapter")
    with pytest.raises(
        FunctionLoadError, match="is an FMU, and this installation of pytest-adsreplay cannot"
    ):
        open_function("build/aeb.fmu")

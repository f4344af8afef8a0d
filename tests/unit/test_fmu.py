"""FMUs as the function under test: FMI 2.0 and 3.0 co-simulation builds of the C
reference, parity with the Python reference, binding, parameters, status errors and the
FMUs that cannot run here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from native_build import Builds, build_all, write_fmu

from pytest_adsreplay import replay
from pytest_adsreplay.errors import FunctionError, FunctionLoadError
from pytest_adsreplay.function.fmu import FmuAdapter
from pytest_adsreplay.function.protocol import FunctionOptions
from pytest_adsreplay.recordings.discovery import discover
from pytest_adsreplay.reference import TtcAeb

pytest.importorskip("fmpy", reason="pip install 'pytest-adsreplay[fmu]'")

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings"
#: The single-target bundled recordings (the object-list ones under objects/ need their
#: channel map; the C and FMU twins' object-list parity is tested on its own).
BUNDLED = [r for r in discover([RECORDINGS]) if not r.id.startswith("objects/")]
BINDING = {"inputs": {"VehSpd_mps": "ego_speed"}, "outputs": {"AebDecelReq": "aeb_decel"}}


@pytest.fixture(scope="session")
def native_builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    return build_all(tmp_path_factory)


def approach(n: int = 400, dt: float = 0.01) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    t = np.arange(n) * dt
    speed = np.full(n, 15.0)
    return t, {
        "ego_speed": speed,
        "target_distance": 40.0 - 15.0 * t,
        "target_rel_speed": -speed,
        "target_valid": np.ones(n),
        "target_lateral": np.zeros(n),
    }


def kpi_diffs(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Times and flags equal, floats within 1e-9."""
    diffs = []
    for name, want in expected.items():
        have = got.get(name)
        if isinstance(want, float) and isinstance(have, float):
            if not (want == have or abs(want - have) <= 1e-9):
                diffs.append(f"{name}: {want!r} != {have!r}")
        elif isinstance(want, list):
            pairs = zip(want, have or [], strict=False)
            if len(want) != len(have or []) or any(kpi_diffs(a, b) for a, b in pairs):
                diffs.append(f"{name}: {want!r} != {have!r}")
        elif want != have:
            diffs.append(f"{name}: {want!r} != {have!r}")
    return diffs


@pytest.mark.parametrize("version", [2, 3])
def test_fmu_reference_gives_the_python_reference_kpis_on_every_bundled_recording(
    native_builds: Builds, version: int
) -> None:
    fmu = native_builds.reference_fmu2 if version == 2 else native_builds.reference_fmu3
    assert fmu is not None
    fn = FmuAdapter(str(fmu))
    assert fn.major == version and fn.cycle_time == 0.01  # DefaultExperiment/@stepSize
    assert len(BUNDLED) == 16
    try:
        for rec in BUNDLED:
            sig = replay.read(rec.path, None, fn.cycle_time, recording_id=rec.id)
            expected_out = replay.step(TtcAeb(), sig.t, sig.values)
            got_out = fn.run(sig.t, sig.values, recording=rec.id)
            for name in ("fcw", "aeb_decel", "ttc", "state"):
                np.testing.assert_array_equal(
                    got_out[name], expected_out[name], err_msg=f"{rec.id} {name}"
                )
            expected = replay.kpis(sig.t, sig.values, expected_out)
            got = replay.kpis(sig.t, sig.values, got_out)
            assert not kpi_diffs(expected, got), (rec.id, kpi_diffs(expected, got))
    finally:
        fn.close()


def test_outputs_are_stored_at_the_cycle_that_computed_them(native_builds: Builds) -> None:
    """The output of cycle k is at t_k (as a Python step(frame_k)), not at t_k + h."""
    fn = FmuAdapter(str(native_builds.reference_fmu2))
    t, sig = approach()
    out = fn.run(t, sig)
    py = replay.step(TtcAeb(), t, sig)
    np.testing.assert_array_equal(out["ttc"], py["ttc"])
    assert out["ttc"][0] == pytest.approx(40.0 / 15.0)
    fn.close()


def test_parameters_by_name_and_reset_between_recordings(native_builds: Builds) -> None:
    fn = FmuAdapter(str(native_builds.reference_fmu2), {"full_decel": 7.5})
    t, sig = approach()
    first = fn.run(t, sig)
    assert first["aeb_decel"].max() == 7.5
    np.testing.assert_array_equal(fn.run(t, sig)["aeb_decel"], first["aeb_decel"])
    assert {p.name: p.start for p in fn.info().parameters}["full_decel"] == 7.5
    fn.close()


def test_unknown_parameter_is_a_usage_error_listing_the_known_ones(native_builds: Builds) -> None:
    with pytest.raises(FunctionLoadError) as err:
        FmuAdapter(str(native_builds.reference_fmu2), {"ful_decel": 7.5})
    assert "'ful_decel'" in str(err.value) and "fcw_ttc, partial_ttc" in str(err.value)


def test_nested_parameters_set_dotted_fmu_parameters(native_builds: Builds) -> None:
    t, sig = approach()
    options = FunctionOptions(binding=BINDING)
    late = FmuAdapter(str(native_builds.custom_fmu2), {}, options)
    early = FmuAdapter(str(native_builds.custom_fmu2), {"ctrl": {"brake_ttc": 2.5}}, options)
    first = [int(np.argmax(fn.run(t, sig)["aeb_decel"] > 0)) for fn in (late, early)]
    assert first[1] < first[0]
    late.close()
    early.close()


def test_a_value_the_fmu_rejects_fails_with_its_log_text(native_builds: Builds) -> None:
    fn = FmuAdapter(str(native_builds.reference_fmu2), {"full_ttc": 2.0})
    t, sig = approach()
    with pytest.raises(FunctionError) as err:
        fn.run(t, sig, recording="ccrs/a.mf4")
    text = str(err.value)
    assert text.startswith("ccrs/a.mf4: ") and "initialization failed" in text
    assert "0 < full_ttc <= partial_ttc <= fcw_ttc" in text  # the FMU's own log
    fn.close()


@pytest.mark.parametrize("version", [2, 3])
def test_fmu_error_status_fails_with_its_log_text_and_t(
    native_builds: Builds, tmp_path: Path, version: int
) -> None:
    if version == 2:
        path = native_builds.custom_fmu2
    else:
        from native_build import CUSTOM_C, build_fmu, build_library

        src = tmp_path / "custom.c"
        src.write_text(CUSTOM_C)
        lib = build_library(tmp_path / "libcustom.so", [src])
        path = build_fmu(tmp_path / "custom3.fmu", [src], lib, version=3, model="custom")
    fn = FmuAdapter(str(path), {"fail_at": 1.5}, FunctionOptions(binding=BINDING))
    t, sig = approach()
    with pytest.raises(FunctionError) as err:
        fn.run(t, sig, recording="ccrs/a.mf4")
    assert err.value.t == pytest.approx(1.5)
    text = str(err.value)
    assert "doStep returned Error at t = 1.500 s (cycle 150)" in text
    assert "radar plausibility check failed (speed 15.0 m/s)" in text
    fn.close()


def test_unbound_input_is_a_usage_error_and_start_keeps_the_start_value(
    native_builds: Builds,
) -> None:
    with pytest.raises(FunctionLoadError) as err:
        FmuAdapter(str(native_builds.custom_fmu2))
    text = str(err.value)
    assert "'VehSpd_mps'" in text and "VehSpd_mps, target_distance, target_rel_speed" in text
    assert "ego_speed" in text and 'NAME = "start"' in text
    kept = {"inputs": {"VehSpd_mps": "start"}, "outputs": {"AebDecelReq": "aeb_decel"}}
    fn = FmuAdapter(str(native_builds.custom_fmu2), {}, FunctionOptions(binding=kept))
    assert fn.info().inputs[0].binds_to is None
    t, sig = approach()
    assert fn.run(t, sig)["aeb_decel"].max() == 0.0  # speed input sits at its start value 0
    fn.close()


MODEL_EXCHANGE_ONLY = """<?xml version="1.0" encoding="UTF-8"?>
<fmiModelDescription fmiVersion="2.0" modelName="me" guid="{1}">
  <ModelExchange modelIdentifier="me"/>
  <ModelVariables>
    <ScalarVariable name="ego_speed" valueReference="0" causality="input"><Real start="0"/></ScalarVariable>
  </ModelVariables>
  <ModelStructure/>
</fmiModelDescription>
"""


def test_model_exchange_only_fmu_is_a_usage_error(tmp_path: Path) -> None:
    path = write_fmu(tmp_path / "me.fmu", MODEL_EXCHANGE_ONLY)
    with pytest.raises(FunctionLoadError, match="modelExchange FMU without co-simulation"):
        FmuAdapter(str(path))


def test_fmu_without_a_binary_for_this_machine_is_a_usage_error(tmp_path: Path) -> None:
    xml = MODEL_EXCHANGE_ONLY.replace("<ModelExchange", "<CoSimulation")
    path = write_fmu(tmp_path / "win.fmu", xml, {"binaries/win64/me.dll": b"MZ"})
    with pytest.raises(FunctionLoadError) as err:
        FmuAdapter(str(path))
    assert "has no binary for this machine" in str(err.value) and "win64" in str(err.value)


def test_fmi1_and_missing_fmu_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(FunctionLoadError, match="does not exist"):
        FmuAdapter(str(tmp_path / "none.fmu"))
    xml = MODEL_EXCHANGE_ONLY.replace('fmiVersion="2.0"', 'fmiVersion="1.0"')
    with pytest.raises(FunctionLoadError):
        FmuAdapter(str(write_fmu(tmp_path / "old.fmu", xml)))


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "c_function"


@pytest.mark.parametrize("version", [2, 3])
def test_boolean_ports_and_nan_inputs(native_builds: Builds, tmp_path: Path, version: int) -> None:
    """Boolean/Integer inputs cannot hold NaN: a missing value is false; Boolean outputs
    come back as 0/1. Same outputs as the C library form where the inputs are defined."""
    from native_build import NATIVE, build_fmu, build_library

    from pytest_adsreplay.function.binding import load_binding
    from pytest_adsreplay.function.native import NativeAdapter

    src = [EXAMPLE / "aeb_ecu.c"]
    lib = build_library(tmp_path / "libaeb_ecu.so", src)
    types = {"ObjValid": "Boolean", "FcwReq": "Boolean"}
    fmu = build_fmu(tmp_path / "ecu.fmu", src, lib, version=version, model="ecu", types=types)
    assert (NATIVE / "adsreplay_function.h").is_file()
    options = FunctionOptions(binding=load_binding(EXAMPLE / "binding.toml"))
    c_fn, fmu_fn = NativeAdapter(str(lib), {}, options), FmuAdapter(str(fmu), {}, options)
    assert {p.name: p.kind for p in fmu_fn.info().inputs}["ObjValid"] == "bool"
    t, sig = approach()
    np.testing.assert_array_equal(fmu_fn.run(t, sig)["fcw"], c_fn.run(t, sig)["fcw"])
    out = fmu_fn.run(t, sig)
    assert out["fcw"].max() == 1.0 and out["aeb_decel"].max() == 8.0
    sig["target_valid"] = np.where(t < 1.5, np.nan, 1.0)  # no object information first
    out = fmu_fn.run(t, sig)
    assert not out["fcw"][t < 1.5].any() and out["fcw"][t >= 1.5][0] == 1.0
    c_fn.close()
    fmu_fn.close()


def test_cli_function_shows_an_fmu_and_its_unbound_input(
    native_builds: Builds, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_adsreplay.cli.main import main

    assert main(["function", str(native_builds.custom_fmu2)]) == 2
    out, err = capsys.readouterr()
    assert "(FMU)" in out and "VehSpd_mps        <- UNBOUND" in out
    assert "ctrl.brake_ttc = 1.5" in out and "not bound to any canonical signal" in err
    assert main(["function", str(native_builds.reference_fmu2)]) == 0
    out = capsys.readouterr().out
    assert "cycle time: 0.01 s (declared by the function)" in out
    assert "FMI 2.0 co-simulation" in out
    assert re.search(r"\n  ego_speed +<- ego_speed \(by name\)\n", out)  # width: the longest name

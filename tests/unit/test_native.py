"""C shared libraries as the function under test: the ABI adapter, binding, parameters,
status errors, and parity of the C reference with the Python one on every bundled
recording."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from native_build import Builds, build_all

from pytest_adsreplay import replay
from pytest_adsreplay.errors import ConfigError, FunctionError, FunctionLoadError
from pytest_adsreplay.function.binding import flatten_params, load_binding
from pytest_adsreplay.function.native import NativeAdapter, header_path
from pytest_adsreplay.function.protocol import FunctionOptions
from pytest_adsreplay.recordings.discovery import discover
from pytest_adsreplay.reference import TtcAeb

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings"
#: The single-target bundled recordings (the object-list ones under objects/ need their
#: channel map; the C and FMU twins' object-list parity is tested on its own).
BUNDLED = [r for r in discover([RECORDINGS]) if not r.id.startswith("objects/")]


def approach(n: int = 400, dt: float = 0.01) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Ego at 15 m/s closing on a stationary target from 40 m."""
    t = np.arange(n) * dt
    speed = np.full(n, 15.0)
    return t, {
        "ego_speed": speed,
        "target_distance": 40.0 - 15.0 * t,
        "target_rel_speed": -speed,
        "target_valid": np.ones(n),
        "target_lateral": np.zeros(n),
    }


def same_kpis(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """KPI differences: times and flags equal, floats within 1e-9."""
    diffs = []
    for name, want in expected.items():
        have = got.get(name)
        if isinstance(want, float) and isinstance(have, float):
            if not (
                want == have or abs(want - have) <= 1e-9 or (math.isnan(want) and math.isnan(have))
            ):
                diffs.append(f"{name}: {want!r} != {have!r}")
        elif isinstance(want, list):
            if len(want) != len(have or []) or any(
                same_kpis(a, b) for a, b in zip(want, have or [], strict=False)
            ):
                diffs.append(f"{name}: {want!r} != {have!r}")
        elif want != have:
            diffs.append(f"{name}: {want!r} != {have!r}")
    return diffs


@pytest.fixture(scope="session")
def native_builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    return build_all(tmp_path_factory)


@pytest.fixture(scope="module")
def bundled_signals() -> list[tuple[str, Any]]:
    return [(r.id, replay.read(r.path, None, 0.01, recording_id=r.id)) for r in BUNDLED]


@pytest.mark.parametrize("form", ["batch", "steps"])
def test_c_reference_gives_the_python_reference_kpis_on_every_bundled_recording(
    native_builds: Builds, bundled_signals: list[tuple[str, Any]], form: str
) -> None:
    lib = native_builds.reference if form == "batch" else native_builds.reference_steps
    fn = NativeAdapter(str(lib))
    assert fn.use_batch is (form == "batch")
    assert len(bundled_signals) == 16
    try:
        for rid, sig in bundled_signals:
            expected_out = replay.step(TtcAeb(), sig.t, sig.values)
            got_out = fn.run(sig.t, sig.values, recording=rid)
            for name in ("fcw", "aeb_decel", "ttc", "state"):
                np.testing.assert_array_equal(
                    got_out[name], expected_out[name], err_msg=f"{rid} {name}"
                )
            expected = replay.kpis(sig.t, sig.values, expected_out)
            got = replay.kpis(sig.t, sig.values, got_out)
            assert not same_kpis(expected, got), (rid, same_kpis(expected, got))
    finally:
        fn.close()


def test_interface_and_declared_cycle_time(native_builds: Builds) -> None:
    fn = NativeAdapter(str(native_builds.reference))
    info = fn.info()
    assert info.kind == "c" and fn.cycle_time == 0.01
    assert [p.name for p in info.inputs][:6] == [
        "ego_speed",
        "target_distance",
        "target_rel_speed",
        "target_valid",
        "target_lateral",
        "ego_yaw_rate",
    ]  # then the object list obj_dx[0] … (test_native_reference_objects.py)
    assert all(p.binds_to == p.name for p in info.inputs)
    assert [p.name for p in info.outputs] == ["fcw", "aeb_decel", "ttc", "state", "reacted_to"]
    assert {p.name: p.start for p in info.parameters}["full_ttc"] == 1.2
    assert any("batch" in note and "used" in note for note in info.notes)
    fn.close()


def test_parameters_by_name_change_the_outputs(native_builds: Builds) -> None:
    t, sig = approach()
    fn = NativeAdapter(str(native_builds.reference), {"full_decel": 7.5})
    out = fn.run(t, sig)
    assert out["aeb_decel"].max() == 7.5
    py = replay.step(TtcAeb(full_decel=7.5), t, sig)
    np.testing.assert_array_equal(out["aeb_decel"], py["aeb_decel"])
    # the same instance gives the same outputs again: reset between recordings
    np.testing.assert_array_equal(fn.run(t, sig)["aeb_decel"], out["aeb_decel"])
    fn.close()


def test_unknown_parameter_is_a_usage_error_listing_the_known_ones(native_builds: Builds) -> None:
    with pytest.raises(FunctionLoadError) as err:
        NativeAdapter(str(native_builds.reference), {"full_tcc": 1.0})
    text = str(err.value)
    assert "'full_tcc'" in text and "did you mean 'full_ttc'" in text
    assert "fcw_ttc, partial_ttc, full_ttc" in text


def test_a_parameter_value_the_library_rejects_is_a_usage_error_with_its_text(
    native_builds: Builds,
) -> None:
    with pytest.raises(FunctionLoadError, match="0 < full_ttc <= partial_ttc <= fcw_ttc"):
        NativeAdapter(str(native_builds.reference), {"full_ttc": 2.0})


def test_nested_parameters_are_flattened_with_dots(native_builds: Builds) -> None:
    assert flatten_params({"ctrl": {"brake_ttc": 1.6, "x": {"y": 1}}, "a": 2}) == {
        "ctrl.brake_ttc": 1.6,
        "ctrl.x.y": 1,
        "a": 2,
    }
    binding = {"inputs": {"VehSpd_mps": "ego_speed"}, "outputs": {"AebDecelReq": "aeb_decel"}}
    t, sig = approach()
    late = NativeAdapter(str(native_builds.custom), {}, FunctionOptions(binding=binding))
    early = NativeAdapter(
        str(native_builds.custom), {"ctrl": {"brake_ttc": 2.5}}, FunctionOptions(binding=binding)
    )
    first = [int(np.argmax(fn.run(t, sig)["aeb_decel"] > 0)) for fn in (late, early)]
    assert first[1] < first[0]  # braking from TTC 2.5 s starts before braking from 1.5 s


def test_unbound_input_is_a_usage_error_listing_inputs_and_canonical_names(
    native_builds: Builds,
) -> None:
    with pytest.raises(FunctionLoadError) as err:
        NativeAdapter(str(native_builds.custom))
    text = str(err.value)
    assert "'VehSpd_mps'" in text and "not bound" in text
    assert "VehSpd_mps, target_distance, target_rel_speed" in text  # the function's inputs
    assert "ego_speed" in text and "adsreplay_function_binding" in text


def test_binding_file_binds_inputs_and_outputs(native_builds: Builds, tmp_path: Path) -> None:
    path = tmp_path / "binding.toml"
    path.write_text(
        '[inputs]\nVehSpd_mps = "ego_speed"\n[outputs]\nAebDecelReq = "aeb_decel"\nFcwReq = "fcw"\n'
    )
    fn = NativeAdapter(str(native_builds.custom), {}, FunctionOptions(binding=load_binding(path)))
    t, sig = approach()
    out = fn.run(t, sig)
    assert set(out) == {"fcw", "aeb_decel", "ttc_est"}
    assert out["aeb_decel"].max() == 6.0 and out["fcw"].max() == 1.0
    assert [(p.name, p.binds_to) for p in fn.info().outputs] == [
        ("AebDecelReq", "aeb_decel"),
        ("FcwReq", "fcw"),
        ("ttc_est", "ttc_est"),
    ]


@pytest.mark.parametrize(
    ("binding", "message"),
    [
        ({"inputs": {"VehSpd": "ego_speed"}}, "names 'VehSpd', which is not one of the inputs"),
        ({"inputs": {"VehSpd_mps": "speed"}}, "'speed' is not a canonical signal"),
        ({"inputs": {"VehSpd_mps": "start"}}, "'start' is not a canonical signal"),
        (
            {"inputs": {"VehSpd_mps": "ego_speed"}, "outputs": {"FcwReq": "warning"}},
            "'warning' is not a canonical output",
        ),
        ({"inputs": {"VehSpd_mps": "ego_speed"}}, "no output bound to 'aeb_decel'"),
    ],
)
def test_bad_bindings_are_usage_errors(
    native_builds: Builds, binding: dict[str, Any], message: str
) -> None:
    with pytest.raises(FunctionLoadError, match=message):
        NativeAdapter(str(native_builds.custom), {}, FunctionOptions(binding=binding))


def test_binding_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_binding(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[input]\nx = 'ego_speed'\n")
    with pytest.raises(ConfigError, match=r"unknown table\(s\) \['input'\]"):
        load_binding(bad)


def test_non_zero_status_fails_with_the_library_text_and_t(native_builds: Builds) -> None:
    binding = {"inputs": {"VehSpd_mps": "ego_speed"}, "outputs": {"AebDecelReq": "aeb_decel"}}
    fn = NativeAdapter(
        str(native_builds.custom), {"fail_at": 1.5}, FunctionOptions(binding=binding)
    )
    t, sig = approach()
    with pytest.raises(FunctionError) as err:
        fn.run(t, sig, recording="ccrs/a.mf4")
    assert err.value.t == pytest.approx(1.5)
    text = str(err.value)
    assert text.startswith("ccrs/a.mf4: ")
    assert "returned status 7 from adsreplay_step at t = 1.500 s (cycle 150)" in text
    assert "radar plausibility check failed (speed 15.0 m/s)" in text


def test_bad_output_values_fail_at_their_cycle(native_builds: Builds) -> None:
    binding = {"inputs": {"VehSpd_mps": "ego_speed"}, "outputs": {"ttc_est": "aeb_decel"}}
    fn = NativeAdapter(str(native_builds.custom), {}, FunctionOptions(binding=binding))
    t, sig = approach()
    sig["target_rel_speed"] = np.where(t >= 1.0, 1.0, sig["target_rel_speed"])  # opening: inf
    with pytest.raises(
        FunctionError, match=r"returned aeb_decel = inf; .* at t = 1\.000 s \(cycle 100\)"
    ):
        fn.run(t, sig)


def test_missing_or_foreign_library_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(FunctionLoadError, match="does not exist"):
        NativeAdapter(str(tmp_path / "libnothing.so"))
    import ctypes.util

    libm = ctypes.util.find_library("m")
    if libm is None:
        pytest.skip("no libm to load")
    path = Path("/lib/x86_64-linux-gnu") / libm
    if not path.is_file():
        pytest.skip(f"{libm} not at {path}")
    with pytest.raises(FunctionLoadError, match="does not export adsreplay_abi_version"):
        NativeAdapter(str(path))


def test_header_ships_with_the_package() -> None:
    text = header_path().read_text()
    assert "#define ADSREPLAY_ABI_VERSION 1" in text
    for name in (
        "adsreplay_create",
        "adsreplay_step",
        "adsreplay_step_batch",
        "adsreplay_last_error",
    ):
        assert name in text


def test_cli_function_shows_ports_parameters_cycle_time_and_binding(
    native_builds: Builds, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_adsreplay.cli.main import main

    assert main(["function", str(native_builds.custom)]) == 2
    out, err = capsys.readouterr()
    assert "VehSpd_mps        <- UNBOUND" in out
    assert "target_distance   <- target_distance (by name)" in out
    assert "ctrl.brake_ttc = 1.5" in out and "not bound to any canonical signal" in err

    binding = tmp_path / "binding.toml"
    binding.write_text('[inputs]\nVehSpd_mps = "ego_speed"\n[outputs]\nAebDecelReq = "aeb_decel"\n')
    args = ["function", str(native_builds.custom), "--binding", str(binding)]
    assert main([*args, "--params", "{ctrl = {brake_ttc = 2.0}}"]) == 0
    out = capsys.readouterr().out
    assert "VehSpd_mps        <- ego_speed (binding file)" in out
    assert "AebDecelReq       -> aeb_decel" in out and "ttc_est           -> kept as output" in out
    assert "ctrl.brake_ttc = 2" in out and "cycle time: not declared" in out

    assert main(["function", str(native_builds.reference)]) == 0
    out = capsys.readouterr().out
    assert "cycle time: 0.01 s (declared by the function)" in out
    assert "batch entry point: adsreplay_step_batch (used)" in out


def test_cli_function_header(capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_adsreplay.cli.main import main

    assert main(["function", "--header"]) == 0
    assert capsys.readouterr().out == header_path().read_text()


def test_replay_file_runs_a_c_library_with_its_binding_file(
    native_builds: Builds, tmp_path: Path
) -> None:
    from pytest_adsreplay import replay_file

    binding = tmp_path / "binding.toml"
    binding.write_text('[inputs]\nVehSpd_mps = "ego_speed"\n[outputs]\nAebDecelReq = "aeb_decel"\n')
    rec = next(r for r in BUNDLED if r.id == "ncap/CCRs_40kph.mf4")
    result = replay_file(
        rec.path, str(native_builds.custom), binding=binding, params={"ctrl": {"decel": 7.0}}
    )
    assert result.max_decel == 7.0 and result.brake_time is not None
    assert {"FcwReq", "ttc_est"} <= set(result.outputs)
    with pytest.raises(FunctionLoadError, match="not bound to any canonical signal"):
        replay_file(rec.path, str(native_builds.custom))

"""C shared libraries and FMUs as ``adsreplay_function``, end to end through the plugin:
the same KPIs as the Python reference, the binding file, parameters, usage errors and a
failing library status that fails only its recording."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from adsreplay_testkit import write_approach
from native_build import FLAGS, Builds, build_all, require_compiler

REPO = Path(__file__).resolve().parents[2]

#: A test module that stores every recording's KPIs as JSON in the folder ``kpis``.
KPI_DUMP = """
import json
import shutil
import subprocess
from pathlib import Path

def test_kpis(replay, recording):
    out = Path(__file__).parent / "kpis"
    out.mkdir(exist_ok=True)
    name = recording.id.replace("/", "__") + ".json"
    (out / name).write_text(json.dumps(replay.kpis, sort_keys=True))
"""


@pytest.fixture(scope="session")
def native_builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    return build_all(tmp_path_factory)


def recordings(root: Path) -> None:
    sidecar = """
        scenario = "CCRs"
        [expect]
        brake = true
        collision = false
    """
    write_approach(root / "ccrs" / "a40.mf4", ego_kph=40, pre=1.0, sidecar=sidecar)
    write_approach(root / "ccrs" / "b50.mf4", ego_kph=50, pre=4.0, sidecar=sidecar)
    write_approach(root / "ccrm" / "c60.mf4", ego_kph=60, target_kph=20)


def run_with(
    pytester: pytest.Pytester, function: str, *ini: str, args: tuple[str, ...] = ()
) -> tuple[int, dict[str, str]]:
    """Run the project with ``function``; the exit code and every recording's KPIs."""
    kpis = pytester.path / "kpis"
    if kpis.exists():
        for f in kpis.iterdir():
            f.unlink()
    lines = "\n".join(ini)
    pytester.makeini(
        f"[pytest]\nadsreplay_function = {function}\nadsreplay_recordings = recs\n"
        f"adsreplay_db = results.sqlite\n{lines}\n"
    )
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", *args)
    pytester._last = result  # type: ignore[attr-defined]
    got = {f.stem: f.read_text() for f in kpis.iterdir()} if kpis.exists() else {}
    return int(result.ret), got


@pytest.fixture
def kpi_project(pytester: pytest.Pytester) -> pytest.Pytester:
    recordings(pytester.path / "recs")
    pytester.makepyfile(test_dump=KPI_DUMP)
    return pytester


def test_c_library_and_fmus_give_the_python_reference_kpis(
    kpi_project: pytest.Pytester, native_builds: Builds
) -> None:
    code, python = run_with(kpi_project, "pytest_adsreplay.reference:TtcAeb")
    assert code == 0 and len(python) == 3
    assert json.loads(python["ccrs__a40.mf4"])["brake_time"] is not None
    forms = [native_builds.reference, native_builds.reference_fmu2]
    forms += [native_builds.reference_fmu3] if native_builds.reference_fmu3 else []
    for form in forms:
        code, got = run_with(kpi_project, str(form))
        assert code == 0, kpi_project._last.stdout.str()  # type: ignore[attr-defined]
        for rid, text in python.items():
            want, have = json.loads(text), json.loads(got[rid])
            for name, value in want.items():
                if isinstance(value, float):
                    assert have[name] == pytest.approx(value, rel=0, abs=1e-9), (form, rid, name)
                elif name != "activations":
                    assert have[name] == value, (form, rid, name)


def test_native_forms_under_xdist_give_the_same_kpis(
    kpi_project: pytest.Pytester, native_builds: Builds
) -> None:
    code, alone = run_with(kpi_project, str(native_builds.reference_fmu2))
    assert code == 0 and len(alone) == 3
    for form in (native_builds.reference, native_builds.reference_fmu2):
        code, spread = run_with(kpi_project, str(form), args=("-n", "2"))
        assert code == 0, kpi_project._last.stdout.str()  # type: ignore[attr-defined]
        assert spread == alone


def test_binding_file_and_params_through_the_ini(
    kpi_project: pytest.Pytester, native_builds: Builds
) -> None:
    (kpi_project.path / "binding.toml").write_text(
        '[inputs]\nVehSpd_mps = "ego_speed"\n[outputs]\nAebDecelReq = "aeb_decel"\nFcwReq = "fcw"\n'
    )
    code, got = run_with(
        kpi_project,
        str(native_builds.custom),
        "adsreplay_function_binding = binding.toml",
        "adsreplay_function_params = {ctrl = {decel = 7.0, brake_ttc = 2.5}}",
    )
    assert code == 0, kpi_project._last.stdout.str()  # type: ignore[attr-defined]
    assert json.loads(got["ccrs__a40.mf4"])["max_decel"] == 7.0


def test_unbound_input_is_a_usage_error_naming_inputs_and_canonical_signals(
    kpi_project: pytest.Pytester, native_builds: Builds
) -> None:
    code, got = run_with(kpi_project, str(native_builds.custom))
    assert code == 4 and not got
    kpi_project._last.stderr.fnmatch_lines(  # type: ignore[attr-defined]
        ["*'VehSpd_mps'*not bound to any canonical signal*VehSpd_mps, target_distance*"]
    )


def test_unknown_parameter_is_a_usage_error(
    kpi_project: pytest.Pytester, native_builds: Builds
) -> None:
    code, _ = run_with(
        kpi_project, str(native_builds.reference), "adsreplay_function_params = {ful_ttc = 1.0}"
    )
    assert code == 4
    out = kpi_project._last.stdout.str() + kpi_project._last.stderr.str()  # type: ignore[attr-defined]
    assert "'ful_ttc'" in out and "fcw_ttc, partial_ttc, full_ttc" in out


def test_library_status_error_fails_only_its_recording(
    kpi_project: pytest.Pytester, native_builds: Builds
) -> None:
    (kpi_project.path / "binding.toml").write_text(
        '[inputs]\nVehSpd_mps = "ego_speed"\n[outputs]\nAebDecelReq = "aeb_decel"\nFcwReq = "fcw"\n'
    )
    # a40 lasts 4.4 s, b50 7.4 s, c60 5.4 s: only b50 reaches t = 6 s
    code, got = run_with(
        kpi_project,
        str(native_builds.custom),
        "adsreplay_function_binding = binding.toml",
        "adsreplay_function_params = {fail_at = 6.0, ctrl = {brake_ttc = 2.5}}",
    )
    assert code == 1
    result = kpi_project._last  # type: ignore[attr-defined]
    outcomes = result.parseoutcomes()
    assert (
        outcomes.get("passed") == 3 and outcomes.get("failed", 0) + outcomes.get("errors", 0) == 2
    )
    text = result.stdout.str()
    assert "radar plausibility check failed" in text and "t = 6.000 s" in text
    assert "ccrs__a40.mf4" in got and "ccrm__c60.mf4" in got and "ccrs__b50.mf4" not in got


def test_worked_example_builds_and_its_suite_passes(pytester: pytest.Pytester) -> None:
    from pytest_adsreplay.cli.main import main
    from pytest_adsreplay.function.native import header_path

    cc = require_compiler()
    example = pytester.path / "c_function"
    shutil.copytree(REPO / "examples" / "c_function", example)
    shutil.copy(header_path(), example / "adsreplay_function.h")
    (example / "build").mkdir()
    build = [cc, *FLAGS, "-I.", "aeb_ecu.c", "-o", "build/libaeb_ecu.so", "-lm"]
    subprocess.run(build, cwd=example, check=True)
    recordings = [
        "--suite",
        "ncap",
        "--no-expect",
        "--speeds",
        "20,40,60",
        "--gaps",
        "12",
        "--decels",
        "2",
    ]
    assert main(["generate", str(example / "recordings"), *recordings]) == 0
    result = pytester.runpytest_subprocess("c_function", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    assert result.parseoutcomes()["passed"] >= 10

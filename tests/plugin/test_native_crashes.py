"""Native functions that crash, abort, exit or end the simulation on one recording, end
to end through the plugin (embedded mode): that recording errors naming how the
function's process ended and the last cycle reached, pytest exits non-zero and the
other recordings pass. FMU variants of a crash, FMI 2 ``Discard``/``fmi2Terminated``,
FMI 3 ``terminateSimulation``, and an FMU that may be instantiated only once per
process."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from adsreplay_testkit import write_approach
from native_build import build_fmu, build_library

HERE = Path(__file__).resolve().parent
CRASH_C = HERE.parent / "native" / "crash_aeb.c"
TERMINATE = 9  # the step status the test FMUs turn into FMI's end of the simulation

#: A test that records which recordings it saw (so the others are known to have run).
RAN = """
from pathlib import Path

def test_runs(replay, recording):
    out = Path(__file__).parent / "ran"
    out.mkdir(exist_ok=True)
    (out / recording.id.replace("/", "__")).write_text(str(replay.kpis.get("fcw_time")))
"""


class CrashBuilds:
    def __init__(self, root: Path):
        self.root = root
        self.library = build_library(root / "libcrash.so", [CRASH_C])
        self._fmus: dict[tuple[int, bool], Path] = {}

    def fmu(self, version: int, *, once: bool = False) -> Path:
        """The crash function as an FMI ``version`` FMU (``once``: it declares
        canBeInstantiatedOnlyOncePerProcess)."""
        key = (version, once)
        if key not in self._fmus:
            name = f"crash{version}{'once' if once else ''}"
            out = build_fmu(
                self.root / f"{name}.fmu",
                [CRASH_C],
                self.library,
                version=version,
                model=f"crash{version}",
                defines=(f"ADSREPLAY_FMU_TERMINATE_STATUS={TERMINATE}",),
            )
            if once:
                _declare_once(out)
            self._fmus[key] = out
        return self._fmus[key]


def _declare_once(fmu: Path) -> None:
    """Rewrite the FMU's modelDescription.xml with canBeInstantiatedOnlyOncePerProcess."""
    with zipfile.ZipFile(fmu) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    xml = members["modelDescription.xml"].decode()
    members["modelDescription.xml"] = xml.replace(
        "<CoSimulation ", '<CoSimulation canBeInstantiatedOnlyOncePerProcess="true" ', 1
    ).encode()
    with zipfile.ZipFile(fmu, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


_BUILT: list[CrashBuilds] = []


@pytest.fixture(scope="session")
def crash_builds(tmp_path_factory: pytest.TempPathFactory) -> CrashBuilds:
    if not _BUILT:
        _BUILT.append(CrashBuilds(tmp_path_factory.mktemp("crash")))
    return _BUILT[0]


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """Three recordings; only c60 (16.7 m/s) reaches the crash speed of 15 m/s."""
    recs = pytester.path / "recs"
    write_approach(recs / "a40.mf4", ego_kph=40, pre=1.0)
    write_approach(recs / "b50.mf4", ego_kph=50, pre=1.0)
    write_approach(recs / "c60.mf4", ego_kph=60, pre=1.0)
    pytester.makepyfile(test_ran=RAN)
    return pytester


def run(project: pytest.Pytester, function: Path, crash: int) -> tuple[pytest.RunResult, str]:
    project.makeini(
        f"[pytest]\nadsreplay_function = {function}\nadsreplay_recordings = recs\n"
        f"adsreplay_db = results.sqlite\nadsreplay_function_params = {{crash = {crash}}}\n"
    )
    result = project.runpytest("-p", "no:randomly", "-p", "no:cacheprovider")
    return result, result.stdout.str()


def ran(project: pytest.Pytester) -> set[str]:
    folder = project.path / "ran"
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def assert_only_c60_failed(project: pytest.Pytester, result: pytest.RunResult) -> None:
    assert result.ret == 1
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 2, outcomes
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 1, outcomes
    assert ran(project) == {"a40.mf4", "b50.mf4"}


@pytest.mark.parametrize(
    ("crash", "how"),
    [
        (1, "crashed (SIGSEGV) at or after t = 1.000 s"),
        (2, "crashed (SIGABRT) at or after t = 1.000 s"),
        (3, "exited with status 0 at or after t = 1.000 s"),
    ],
    ids=["segfault", "abort", "exit0"],
)
def test_c_library_crash_errors_only_its_recording(
    project: pytest.Pytester, crash_builds: CrashBuilds, crash: int, how: str
) -> None:
    result, text = run(project, crash_builds.library, crash)
    assert_only_c60_failed(project, result)
    assert f"the function under test {how}" in text, text
    lines = [line for line in text.splitlines() if how in line]
    assert any("c60" in line for line in lines) or "c60.mf4" in text


def test_c_library_without_crash_passes_everything(
    project: pytest.Pytester, crash_builds: CrashBuilds
) -> None:
    result, _ = run(project, crash_builds.library, 0)
    result.assert_outcomes(passed=3)
    assert ran(project) == {"a40.mf4", "b50.mf4", "c60.mf4"}


def test_fmu_segfault_errors_only_its_recording(
    project: pytest.Pytester, crash_builds: CrashBuilds
) -> None:
    result, text = run(project, crash_builds.fmu(2), 1)
    assert_only_c60_failed(project, result)
    assert "the function under test crashed (SIGSEGV) at or after t = 1.000 s" in text, text


@pytest.mark.parametrize(
    ("version", "why"),
    [
        (
            2,
            "the FMU ended the simulation (doStep returned Discard, fmi2Terminated) at t = 1.000 s",
        ),
        (3, "the FMU ended the simulation (doStep set terminateSimulation) at t = 1.000 s"),
    ],
    ids=["fmi2-discard-terminated", "fmi3-terminate"],
)
def test_fmu_ending_the_simulation_errors_its_recording(
    project: pytest.Pytester, crash_builds: CrashBuilds, version: int, why: str
) -> None:
    result, text = run(project, crash_builds.fmu(version), 4)
    assert_only_c60_failed(project, result)
    assert why in text, text
    assert "plausibility monitor requested the end of the run" in text


def test_fmu_instantiated_only_once_per_process_gets_a_host_per_instance(
    crash_builds: CrashBuilds,
) -> None:
    """Two parameter variants of such an FMU are two instances: each in its own host
    process, and both step."""
    from pytest_adsreplay.function import host
    from pytest_adsreplay.function.fmu import FmuAdapter

    fmu = str(crash_builds.fmu(2, once=True))
    adapter = FmuAdapter(fmu)
    try:
        assert any("only once per process" in n for n in adapter.info().notes)
    finally:
        adapter.close()
    a = host.acquire(fmu, {"crash_speed": 100.0})
    b = host.acquire(fmu, {"crash_speed": 200.0})
    try:
        assert a.proc is not None and b.proc is not None and a.proc.pid != b.proc.pid
        t = np.arange(0.0, 1.0, 0.01)
        signals = {
            "ego_speed": np.full(t.size, 10.0),
            "target_distance": np.linspace(20.0, 5.0, t.size),
            "target_rel_speed": np.full(t.size, -10.0),
        }
        for h in (a, b):
            out = h.run(t, signals, recording="r")
            assert out["aeb_decel"][-1] == 6.0 and out["aeb_decel"][0] == 0.0
    finally:
        host.shutdown()

"""The examples suite (the README's main job) against the bundled recordings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

LATE_FUNCTION = '''
from pytest_adsreplay.function.reference import TtcAeb


class Late(TtcAeb):
    """The reference function with its braking request delivered 300 ms (30 cycles) late."""

    def reset(self):
        super().reset()
        self.requests = []

    def step(self, frame):
        out = dict(super().step(frame))
        self.requests.append(out["aeb_decel"])
        out["aeb_decel"] = self.requests[-31] if len(self.requests) > 30 else 0.0
        return out
'''


@pytest.fixture
def examples(pytester: pytest.Pytester) -> pytest.Pytester:
    shutil.copytree(REPO / "examples", pytester.path / "examples")
    return pytester


def test_main_job_passes_on_bundled_recordings(examples: pytest.Pytester) -> None:
    result = examples.runpytest_subprocess(
        "examples", f"--recordings={REPO / 'recordings'}", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "adsreplay: 19 recordings under *recordings*TtcAeb*",
            "*adsreplay KPI summary*",
            "* passed in *",
        ]
    )


def test_function_braking_300ms_late_fails_timing_with_values(examples: pytest.Pytester) -> None:
    examples.makepyfile(latefn=LATE_FUNCTION)
    result = examples.runpytest_subprocess(
        "examples",
        f"--recordings={REPO / 'recordings'}",
        "--aeb-function=latefn:Late",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*ncap/CCRs_40kph.mf4: ttc_at_brake = 1.[34]* s, expected in [[]1.6, 1.8[]] s (off by -0.* s)*"
            " (calibrated partial-brake TTC)",
            "*-> replay it alone with pytest_adsreplay.replay_file*",
        ]
    )
    result.stdout.fnmatch_lines(["*ncap/CCRm_50kph.mf4: ttc_at_brake = 1.[34]*"])
    # the generated sidecar items catch it too, naming the sidecar bound
    result.stdout.fnmatch_lines(
        [
            "*ncap/CCRs_50kph.mf4: * expectation(s) of *CCRs_50kph.toml violated:",
            "*ttc_at_brake = 1.[34]*, expected in [[]1.6*",
        ]
    )
    result.stdout.fnmatch_lines(["FAILED *test_brake_timing_window[[]ncap/CCRs_20kph.mf4[]]*"])

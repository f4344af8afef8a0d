"""Real Redis, two local workers: a function that takes its process down on one recording
errors that recording only; the workers survive it and replay every other recording."""

from __future__ import annotations

from pathlib import Path

import pytest
from integration_kit import processes_with, result_rows, run_id_of, run_pytest, write_project

#: ``aebfn:Ttc`` that leaves its process on the 33 km/h recording from t = 1 s.
EXITING = """
import ctypes, os
from aebfn import Ttc

class Dies(Ttc):
    def __init__(self, how="exit", **kw):
        super().__init__(**kw)
        self.how = how

    def step(self, frame):
        if self._at(33, frame) and frame["t"] >= 1.0:
            if self.how == "exit":
                os._exit(0)
            ctypes.string_at(0)
        return super().step(frame)
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("how", "said"), [("exit", "exited with status 0"), ("segv", "crashed (SIGSEGV)")]
)
def test_dying_function_errors_one_recording_on_two_workers(
    real_redis: str, tmp_path: Path, how: str, said: str
) -> None:
    project = write_project(tmp_path / "proj", extra={"dies_33kph": 33})
    (project.root / "diesfn.py").write_text(EXITING)
    result = run_pytest(
        project.root,
        "--redis-url",
        real_redis,
        "--adsreplay-workers",
        "2",
        "-o",
        "adsreplay_function=diesfn:Dies",
        "-o",
        f'adsreplay_function_params={{how = "{how}"}}',
        "--junitxml=out.xml",
    )
    assert result.ret == 1
    result.assert_outcomes(passed=6, errors=1)
    assert (project.root / "out.xml").is_file()
    rows = result_rows(project, run_id_of(result))
    assert len(rows) == project.count + 1  # one row per recording
    bad = rows.pop("dies_33kph.mf4")
    assert (bad.status, bad.stage) == ("error", "aeb")
    assert f"the function under test {said} at or after t = 1.000 s" in (bad.error or "")
    assert {r.status for r in rows.values()} == {"ok"}
    out = result.stdout.str()
    assert "the session ended before this recording was replayed" not in out
    assert "worker process died" not in out
    assert processes_with(str(project.root)) == []  # workers and their hosts are gone

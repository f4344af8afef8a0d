"""How a session ends when it is stopped or its results database fails: one row per
recording, the tally and the KPI summary printed, and an exit status that is not 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from store_backends import POSTGRES_DEFAULT, POSTGRES_ENV, postgres_url

from pytest_adsreplay.results.store import ResultRow, open_store

__all__ = ["postgres_url"]

#: Blocks in the first recording's reset until the session is stopped; the flag file
#: says that a replay is under way (the event the test waits for, not a time).
SLOW_FUNCTION = """
import os, pathlib, time
from aebfn import Ttc

class Stuck(Ttc):
    def reset(self):
        super().reset()
        pathlib.Path(os.environ["ADSREPLAY_TEST_FLAG"]).write_text("replaying")
        time.sleep(600)
"""


def _default_sigint() -> None:
    # a shell that starts jobs in the background starts them with SIGINT ignored
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop_mid_replay(
    project: pytest.Pytester,
    signum: int,
    extra: tuple[str, ...] = ("-p", "no:xdist"),
    group: bool = False,
) -> tuple[int, str]:
    project.makepyfile(stuckfn=SLOW_FUNCTION)
    project.makepyfile(test_r="def test_r(replay):\n    assert replay.brake_time\n")
    flag = project.path / "replaying.flag"
    env = {k: v for k, v in os.environ.items() if k != "ADSREPLAY_REDIS_URL"}  # embedded
    env["ADSREPLAY_TEST_FLAG"] = str(flag)
    env["PYTHONPATH"] = os.pathsep.join([str(project.path), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "pytest", "--recordings=recs", "--aeb-function=stuckfn:Stuck"]
    cmd += ["-p", "no:randomly", "-p", "no:cacheprovider", *extra]
    proc = subprocess.Popen(
        cmd,
        cwd=project.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_default_sigint,
        start_new_session=group,
    )
    try:
        deadline = time.monotonic() + 300  # a generous bound on a busy machine
        while not flag.exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the replay never started"
            time.sleep(0.05)
        time.sleep(0.5)  # every xdist worker is inside a replay by now, or waiting for one
        if group:  # a CI runner cancelling a job signals its whole process group
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out


def _run_and_rows(project: pytest.Pytester) -> tuple[dict[str, Any], dict[str, ResultRow]]:
    store = open_store(str(project.path / "results.sqlite"))
    (run,) = store.runs()
    return run, {r.recording_id: r for r in store.results(run["run_id"])}


@pytest.mark.parametrize(
    ("signum", "extra", "group"),
    [
        (signal.SIGINT, ("-p", "no:xdist"), False),
        (signal.SIGTERM, ("-p", "no:xdist"), False),
        (signal.SIGTERM, ("-n", "2"), False),
        (signal.SIGTERM, ("-n", "2"), True),
        (
            signal.SIGINT,
            ("-p", "no:xdist", "--adsreplay-workers=1", "--adsreplay-read-ahead=1"),
            False,
        ),
    ],
    ids=["ctrl-c", "sigterm", "sigterm-xdist", "sigterm-xdist-group", "ctrl-c-read-ahead"],
)
def test_stopping_the_embedded_session_writes_a_row_per_recording(
    project: pytest.Pytester, signum: int, extra: tuple[str, ...], group: bool
) -> None:
    code, out = _stop_mid_replay(project, signum, extra, group)
    assert code == pytest.ExitCode.INTERRUPTED, out
    if "--adsreplay-workers=1" in extra:  # one host, the reader reading ahead
        assert "1 stepping thread (a function host), reading up to 1 recording ahead" in out
    run, rows = _run_and_rows(project)
    assert run["exit_status"] == pytest.ExitCode.INTERRUPTED
    assert set(rows) == {"ccrm/c50.mf4", "ccrs/a40.mf4", "ccrs/b60.mf4"}, out
    for row in rows.values():
        assert row.status == "error"
        assert "session ended before this recording was replayed" in (row.error or "")
        assert "KeyboardInterrupt" not in (row.error or "")


SABOTAGE_SQLITE = """
import pytest
from pathlib import Path

@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    db = Path(session.config.rootpath, "results.sqlite")
    db.rename(db.with_suffix(".moved"))
    db.mkdir()  # a folder where the database was: it cannot be opened any more
"""

SABOTAGE_POSTGRES = """
import os
import psycopg
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    with psycopg.connect(os.environ["ADMIN_URL"], autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{os.environ["DROP_DB"]}" WITH (FORCE)')
"""


def _assert_reported(result: pytest.RunResult, masked: str) -> None:
    result.assert_outcomes(passed=4)  # the tally
    result.stdout.fnmatch_lines(
        [
            "*adsreplay KPI summary*",
            "ccrs/a40.mf4 *CCRs *passed*",
            f"adsreplay: the results database {masked} could not be finished (*",
        ]
    )
    assert result.ret != pytest.ExitCode.OK
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_an_unwritable_sqlite_database_at_the_end(project: pytest.Pytester) -> None:
    project.makeconftest(SABOTAGE_SQLITE)
    project.makepyfile(test_r="def test_r(replay):\n    assert replay.brake_time\n")
    result = project.runpytest("--recordings=recs")
    _assert_reported(result, "*results.sqlite")
    result.stdout.fnmatch_lines(["*could not be finished (OperationalError: *"])


def test_a_postgres_database_dropped_mid_run(
    project: pytest.Pytester, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # trust auth ignores the password; it is there to be masked
    url = postgres_url.replace("postgres@", "postgres:s3cret@", 1)
    monkeypatch.setenv("ADMIN_URL", os.environ.get(POSTGRES_ENV, POSTGRES_DEFAULT))
    monkeypatch.setenv("DROP_DB", Path(postgres_url.split("?")[0]).name)
    project.makeconftest(SABOTAGE_POSTGRES)
    project.makepyfile(test_r="def test_r(replay):\n    assert replay.brake_time\n")
    result = project.runpytest("--recordings=recs", f"--adsreplay-db={url}")
    _assert_reported(result, "postgresql://*")
    assert "s3cret" not in result.stdout.str()

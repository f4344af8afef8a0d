"""Local worker processes: preloaded, short-lived registrations, always stopped."""

from __future__ import annotations

from pathlib import Path

import pytest
from integration_kit import (
    processes_with,
    run_pytest,
    subprocess_env,
    unique,
    wait_for,
    write_function_module,
    write_project,
)

from pytest_adsreplay.queue.broker import connect
from pytest_adsreplay.queue.worker import LIVENESS_TTL, LocalWorkers, local_worker_count


@pytest.mark.parametrize(
    ("requested", "xdist", "expected"),
    [(4, None, 4), (0, None, 0), (4, "2", 2), (1, "4", 1), (5, "2", 2), (None, None, None)],
)
def test_local_worker_count(requested, xdist, expected, monkeypatch) -> None:
    """Under xdist each xdist worker starts max(1, N // count): every one owns a worker."""
    import os

    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    if xdist:
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", xdist)
    assert local_worker_count(requested) == (os.cpu_count() or 1 if expected is None else expected)


@pytest.mark.timeout(60)
def test_preloaded_registered_and_stopped(
    real_redis: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_function_module(tmp_path / "fn")
    monkeypatch.syspath_prepend(str(tmp_path / "fn"))  # becomes the workers' PYTHONPATH
    marks = tmp_path / "imported"
    monkeypatch.setenv("AEBFN_IMPORT_MARK", str(marks))
    namespace = unique("adsreplay-local")
    workers = LocalWorkers(
        real_redis, namespace, 2, prefix=namespace, preload_modules=["aebfn"]
    ).start()
    conn = connect(real_redis)
    try:
        keys = [f"rq:worker:{n}" for n in workers.names]
        # registered: rq's birth sets a long TTL that FleetWorker shortens one command
        # later, so wait for the short one (a loaded machine can pause in between)
        wait_for(lambda: all(0 < conn.ttl(k) <= LIVENESS_TTL for k in keys), 30)
        pids = set(workers.pids.values())
        # before any job: the function's module, asammdf and numpy are already imported
        assert pids <= {int(p) for p in marks.read_text().split()}
        for pid in pids:
            maps = Path(f"/proc/{pid}/maps").read_text()
            assert "asammdf" in maps and "numpy" in maps
        assert all(0 < conn.ttl(k) <= LIVENESS_TTL for k in keys)
    finally:
        workers.stop()
    assert all(p.poll() is not None for p in workers.procs.values())
    assert processes_with(namespace) == []  # nor their heartbeat processes
    from rq import Worker

    from pytest_adsreplay.queue.broker import make_queues

    for q in make_queues(conn, namespace).values():  # a warm stop unregisters
        assert Worker.all_keys(connection=conn, queue=q) == []
    assert all(not conn.exists(k) or conn.hget(k, "death") for k in keys)
    assert workers.exit_codes == {} or set(workers.exit_codes.values()) <= {0}


#: Notes how many local worker processes this pytest process runs once collection is
#: over: ``workers <n>`` in ``$ADSREPLAY_TEST_OUT``.
COUNT_AFTER_COLLECTION = """
import os, pathlib

def _mine():
    me = str(os.getpid()).encode()
    n = 0
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\\0")
            ppid = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[1]
        except (OSError, IndexError):
            continue
        if b"pytest_adsreplay.queue.worker" in args and ppid == me:  # not its heartbeat
            n += 1
    return n

def pytest_runtestloop(session):
    with open(os.environ["ADSREPLAY_TEST_OUT"], "a") as f:
        f.write(f"workers {_mine()}\\n")
"""


@pytest.mark.timeout(180)
def test_workers_get_the_folders_collection_puts_on_sys_path(
    real_redis: str, tmp_path: Path
) -> None:
    """The function's module beside the tests in ``tests/`` is importable only once
    pytest has collected there (it puts the folder on ``sys.path``): the local workers
    start after collection, with that ``sys.path``."""
    project = write_project(tmp_path / "proj", function_module=False)
    tests = project.root / "tests"
    tests.mkdir()
    (project.root / "test_aeb.py").rename(tests / "test_aeb.py")
    write_function_module(tests)
    result = run_pytest(
        project.root, "--redis-url", real_redis, "--adsreplay-workers", "1", "tests"
    )
    result.assert_outcomes(passed=project.count * 2)


@pytest.mark.timeout(180)
def test_no_recording_selected_no_workers(real_redis: str, tmp_path: Path) -> None:
    """A session whose collection selects no recording starts no local worker."""
    project = write_project(tmp_path / "proj")
    (project.root / "conftest.py").write_text(COUNT_AFTER_COLLECTION)
    out = tmp_path / "out"
    args = ["--redis-url", real_redis, "--adsreplay-workers", "2", "-k", "no_such_test"]
    result = run_pytest(project.root, *args, env=subprocess_env(ADSREPLAY_TEST_OUT=str(out)))
    assert result.ret == 5  # no tests ran
    assert out.read_text().split() == ["workers", "0"]

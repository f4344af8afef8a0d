"""The embedded mode's stepping threads: N recordings step at once, each thread with a
function host of its own; the rows are those of the one-host run, a host that dies
costs only its own recording, a failing thread is never silent, and Ctrl-C stops the
session with one row per recording and no process left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import pytest_adsreplay.scenarios as gen
from pytest_adsreplay.function import host as host_mod
from pytest_adsreplay.queue import broker
from pytest_adsreplay.queue.pipeline import Chain, ReplaySession, SessionConfig
from pytest_adsreplay.recordings import discover
from pytest_adsreplay.results.store import ResultRow, open_store

#: The project's TTC function, plus: every host that loads it notes its pid in ``loads``
#: beside ``$ADSREPLAY_TEST_PIDS``, every host that steps a recording in that folder,
#: and, before its first recording, waits until ``$ADSREPLAY_TEST_HOSTS`` hosts have
#: (a barrier: with two stepping threads both hosts are inside a recording at the same
#: time, which a sequential run can never reach; it then fails after 120 s);
#: ``KilledAt60`` SIGKILLs its own process halfway through the 60 km/h recording.
FUNCTIONS = """
import os, pathlib, signal, time
from aebfn import Ttc

class Counted(Ttc):
    started = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        loads = pathlib.Path(os.environ["ADSREPLAY_TEST_PIDS"]).with_name("loads")
        (loads / str(os.getpid())).touch()

    def reset(self):
        super().reset()
        pids = pathlib.Path(os.environ["ADSREPLAY_TEST_PIDS"])
        (pids / str(os.getpid())).touch()
        if not Counted.started:
            Counted.started = True
            want = int(os.environ.get("ADSREPLAY_TEST_HOSTS", "1"))
            deadline = time.monotonic() + 120
            while len(list(pids.iterdir())) < want:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"never {want} hosts stepping at once")
                time.sleep(0.01)

class KilledAt60(Counted):
    def step(self, f):
        if f["ego_speed"] > 15 and f["t"] >= 1.0:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().step(f)
"""

TESTS = """
def test_kpis(replay):
    assert replay.kpis is not None
"""


@pytest.fixture
def ncap(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The project with 8 generated NCAP recordings (CCRs/CCRm at 20..80 km/h, one CCRb)
    besides its own 3, and the functions above."""
    grid = gen.Grid(speeds=(20.0, 40.0, 60.0, 80.0), gaps=(12.0,), decels=(6.0,))
    paths = gen.generate(project.path / "recs" / "gen", "ncap", grid, expect=False)
    assert len(paths) == 8
    project.makepyfile(hostfn=FUNCTIONS, test_kpis=TESTS)
    (project.path / "pids").mkdir()
    (project.path / "loads").mkdir()
    monkeypatch.setenv("ADSREPLAY_TEST_PIDS", str(project.path / "pids"))
    return project


def _run(project: pytest.Pytester, workers: int, function: str = "Counted", *extra: str) -> Any:
    for pid_file in [*(project.path / "pids").iterdir(), *(project.path / "loads").iterdir()]:
        pid_file.unlink()
    (project.path / "results.sqlite").unlink(missing_ok=True)
    os.environ["ADSREPLAY_TEST_HOSTS"] = str(workers)
    try:
        result = project.runpytest_subprocess(
            "--recordings=recs",
            f"--aeb-function=hostfn:{function}",
            f"--adsreplay-workers={workers}",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            *extra,
        )
    finally:
        del os.environ["ADSREPLAY_TEST_HOSTS"]
    return result


def _rows(project: pytest.Pytester) -> dict[str, ResultRow]:
    store = open_store(str(project.path / "results.sqlite"))
    (run,) = store.runs()
    rows = store.results(str(run["run_id"]))
    ids = [r.recording_id for r in rows]
    assert len(ids) == len(set(ids)) == 11, ids  # one row per recording
    return {r.recording_id: r for r in rows}


def _same(row: ResultRow) -> tuple[Any, ...]:
    """A row without its timestamps."""
    return (row.status, row.stage, row.error, row.recording_sha256, row.kpis)


def _hosts(project: pytest.Pytester) -> set[str]:
    return {p.name for p in (project.path / "pids").iterdir()}


def _loads(project: pytest.Pytester) -> set[str]:
    """The hosts that loaded the function (stepped a recording or not)."""
    return {p.name for p in (project.path / "loads").iterdir()}


def test_two_hosts_give_the_rows_of_one(ncap: pytest.Pytester) -> None:
    one = _run(ncap, 1, "Counted", "--adsreplay-read-ahead=0")
    one.assert_outcomes(passed=12)
    one.stdout.fnmatch_lines(
        ["*broker fakeredis (embedded, in-process worker), workers in-process, run *"]
    )
    assert len(_hosts(ncap)) == 1
    assert _loads(ncap) == _hosts(ncap)
    rows_one = _rows(ncap)

    ahead = _run(ncap, 1, "Counted", "--adsreplay-read-ahead=1")  # read while it steps
    ahead.assert_outcomes(passed=12)
    ahead.stdout.fnmatch_lines(
        [
            "*workers in-process, 1 stepping thread (a function host), reading up to 1 "
            "recording ahead, run *"
        ]
    )
    assert len(_hosts(ncap)) == 1
    # the session loaded the function once: its stepping thread took that host over
    assert _loads(ncap) == _hosts(ncap)
    assert {k: _same(r) for k, r in _rows(ncap).items()} == {
        k: _same(r) for k, r in rows_one.items()
    }
    assert _summary(ahead.stdout.lines) == _summary(one.stdout.lines)

    two = _run(ncap, 2, "Counted", "--adsreplay-read-ahead=2")
    two.assert_outcomes(passed=12)
    two.stdout.fnmatch_lines(
        [
            "*workers in-process, up to 2 stepping threads (a function host each), reading up "
            "to 2 recordings ahead, run *"
        ]
    )
    assert len(_hosts(ncap)) == 2  # both stepped a recording at the same time (barrier)
    assert _loads(ncap) == _hosts(ncap)
    rows_two = _rows(ncap)

    assert {k: _same(r) for k, r in rows_two.items()} == {k: _same(r) for k, r in rows_one.items()}
    assert {r.status for r in rows_two.values()} == {"ok"}
    assert rows_two["gen/ncap/CCRs_60kph.mf4"].kpis["brake_time"] is not None
    # the KPI summary lists the recordings in the same order
    assert _summary(two.stdout.lines) == _summary(one.stdout.lines)


def _summary(lines: list[str]) -> list[str]:
    start = next(i for i, line in enumerate(lines) if "adsreplay KPI summary" in line)
    return [line.split()[0] for line in lines[start + 3 : start + 14]]


@pytest.mark.parametrize("hosts", [1, 2])
def test_a_killed_host_costs_only_its_recording(ncap: pytest.Pytester, hosts: int) -> None:
    """With read-ahead each host holds the next recording while it steps one: a crash
    errors the recording it stepped; the one waiting in it goes to a fresh host."""
    result = _run(ncap, hosts, "KilledAt60")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    rows = _rows(ncap)
    # every recording at 60 km/h or more kills its host; each in turn gets a fresh one
    # (the CCRb case runs at 50 km/h)
    killed = {k for k, r in rows.items() if r.status == "error"}
    fast = {k for k in rows if "60kph" in k or "80kph" in k} | {"ccrs/b60.mf4"}
    assert killed == fast and len(killed) == 5
    for rec in killed:
        row = rows[rec]
        assert (row.stage, row.status) == ("aeb", "error")
        assert "was killed (SIGKILL" in (row.error or ""), row.error
        assert "at or after t = 1.000 s" in (row.error or "")
    for rec in set(rows) - killed:
        assert rows[rec].status == "ok", (rec, rows[rec].error)
    result.assert_outcomes(passed=12 - len(killed), errors=len(killed))  # + a40::expect
    # the surviving hosts plus one fresh host per killed one
    assert len(_hosts(ncap)) >= 2


def test_one_host_without_read_ahead_keeps_the_sequential_path(ncap: pytest.Pytester) -> None:
    result = _run(ncap, 1, "Counted", "--adsreplay-read-ahead", "0")
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines(["*, workers in-process, run *"])
    assert len(_hosts(ncap)) == 1
    assert not [line for line in result.stdout.lines if "stepping thread" in line]


# -- the session object, in this process ------------------------------------------------


def _session(tmp_path: Path, function: str, threads: int, read_ahead: int = 0) -> ReplaySession:
    cfg = SessionConfig(
        run_id=f"par{threads}{'r' * read_ahead}",
        function=function,
        params={},
        channel_map=None,
        cycle_time=0.01,
        db=str(tmp_path / f"r{threads}{read_ahead}.sqlite"),
        timeout=60,
        namespace=f"adsreplay-par{threads}{'r' * read_ahead}",
        settings={"brake_threshold": 1.0, "actuator_delay": 0.2, "brake_jerk": 40.0},
    )
    return ReplaySession(
        cfg, broker.connect(None), embedded=True, threads=threads, read_ahead=read_ahead
    )


@pytest.fixture
def gen_recs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    from adsreplay_testkit import TTC_FUNCTION

    (tmp_path / "aebfn.py").write_text(TTC_FUNCTION)
    monkeypatch.syspath_prepend(str(tmp_path))
    grid = gen.Grid(speeds=(30.0, 50.0), gaps=(12.0,), decels=(6.0,))
    gen.generate(tmp_path / "recs", "ncap", grid, expect=False)
    return discover([tmp_path / "recs"])


def _stepping_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("adsreplay-par")]


def test_one_thread_runs_in_the_waiting_thread(tmp_path: Path, gen_recs: list[Any]) -> None:
    session = _session(tmp_path, "aebfn:Ttc", 1)
    try:
        outs = [session.outcome(Chain(r, {})) for r in gen_recs]
        assert session._pool is None and _stepping_threads() == []
        assert all(o.ok for o in outs)
    finally:
        session.close()
        host_mod.shutdown()


def test_threads_in_process_match_and_stop(tmp_path: Path, gen_recs: list[Any]) -> None:
    one = _session(tmp_path, "aebfn:Ttc", 1)
    two = _session(tmp_path, "aebfn:Ttc", 2)
    try:
        chains = [Chain(r, {}) for r in gen_recs]
        two.enqueue(chains)
        assert len(_stepping_threads()) == 2
        got = {c.key: two.outcome(c) for c in reversed(chains)}  # waits in any order
        want = {c.key: one.outcome(c) for c in chains}
        assert {k: (o.status, o.kpis) for k, o in got.items()} == {
            k: (o.status, o.kpis) for k, o in want.items()
        }
    finally:
        two.close()
        one.close()
        host_mod.shutdown()
    assert _stepping_threads() == []


def test_a_failing_thread_is_never_silent(
    tmp_path: Path, gen_recs: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stepping thread that fails outside a job (not a job's own failure, which rq
    records) ends the waits with its error, and every chain not finished gets an error
    row that says why."""
    from pytest_adsreplay.errors import BrokerError
    from pytest_adsreplay.queue.inprocess import InProcessWorker

    def broken(self: Any, max_jobs: int, **kwargs: Any) -> int:
        raise ConnectionError("the embedded server went away")

    monkeypatch.setattr(InProcessWorker, "run", broken)
    session = _session(tmp_path, "aebfn:Ttc", 2)
    store = open_store(session.cfg.db)
    store.start_run(session.cfg.run_id, function="aebfn:Ttc")
    try:
        chains = [Chain(r, {}) for r in gen_recs]
        session.enqueue(chains)
        with pytest.raises(BrokerError, match="the embedded server went away"):
            session.outcome(chains[0])
        with pytest.raises(BrokerError, match="stepping threads stopped"):
            session.outcome(chains[1])  # every later wait too, at once
    finally:
        session.close(store)
        host_mod.shutdown()
    rows = store.results(session.cfg.run_id)
    assert len(rows) == len(chains)
    for row in rows:
        assert row.status == "error"
        assert "ConnectionError: the embedded server went away" in (row.error or "")


def test_read_ahead_matches_the_sequential_run(tmp_path: Path, gen_recs: list[Any]) -> None:
    """One host and a read-ahead thread: the outcomes of the sequential run, the reader
    runs reads and KPIs only (it never starts a host), and it stops with the session."""
    one = _session(tmp_path, "aebfn:Ttc", 1)
    ahead = _session(tmp_path, "aebfn:Ttc", 1, read_ahead=1)
    try:
        chains = [Chain(r, {}) for r in gen_recs]
        ahead.enqueue(chains)
        names = sorted(t.name.rsplit("-", 1)[1] for t in _stepping_threads())
        assert names == ["1", "1b", "reader"]  # the host's two stepping threads
        got = {c.key: ahead.outcome(c) for c in chains}
        teams = {id(s.host) for s in host_mod._POOL if isinstance(s.holder, host_mod.Team)}
        assert len(teams) == 1  # every recording stepped by the one host
        want = {c.key: one.outcome(c) for c in chains}
        assert {k: (o.status, o.kpis) for k, o in got.items()} == {
            k: (o.status, o.kpis) for k, o in want.items()
        }
        stepped_by = {
            broker.fetch_job(ahead.conn, f"{ahead.cfg.run_id}-aeb-{c.key}").worker_name
            for c in chains
        }
        assert len(stepped_by) <= 2  # only the host's two stepping threads ran aeb jobs
    finally:
        ahead.close()
        one.close()
        host_mod.shutdown()
    assert _stepping_threads() == []


def _read_jobs(session: ReplaySession, chains: list[Chain]) -> list[Any]:
    return [broker.fetch_job(session.conn, f"{session.cfg.run_id}-read-{c.key}") for c in chains]


@pytest.mark.timeout(300)  # below FIRST_WAIT: a first read that never released would fail
@pytest.mark.parametrize(("threads", "read_ahead", "bad_first"), [(1, 1, False), (2, 2, True)])
def test_the_first_read_runs_alone(
    tmp_path: Path,
    gen_recs: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    threads: int,
    read_ahead: int,
    bad_first: bool,
) -> None:
    """The session's first recording is read alone: the other chains are enqueued and the
    other threads take jobs only once that read ended, whether it passed or erred (the
    bound is set far beyond the test's timeout, so only the event can release them).
    The first read is held for a while: a read that starts meanwhile is caught."""
    from pytest_adsreplay.queue import inprocess, stages

    monkeypatch.setattr(inprocess, "FIRST_WAIT", 600.0)
    real = stages._read_file
    lock = threading.Lock()
    held: list[str] = []  # the first read, held for a while
    during: list[str] = []  # reads that started while the first one ran
    first_done = threading.Event()
    other_started = threading.Event()

    def held_first(ctx: dict[str, Any]) -> dict[str, Any]:
        with lock:
            mine = not held
            if mine:
                held.append(ctx["rec"])
            elif not first_done.is_set():
                during.append(ctx["rec"])
                other_started.set()
        if not mine:
            return real(ctx)
        other_started.wait(2.0)  # the window (ends early when another read starts)
        try:
            return real(ctx)
        finally:
            first_done.set()

    monkeypatch.setattr(stages, "_read_file", held_first)
    recs = list(gen_recs)
    if bad_first:  # a truncated copy of a recording, first in line
        bad = tmp_path / "recs" / "aaa_truncated.mf4"
        data = recs[0].path.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
        recs = [r for r in discover([tmp_path / "recs"]) if r.path == bad] + recs
    session = _session(tmp_path, "aebfn:Ttc", threads, read_ahead=read_ahead)
    try:
        chains = [Chain(r, {}) for r in recs]
        session.enqueue(chains)
        outs = [session.outcome(c) for c in chains]
        assert [o.ok for o in outs] == [not bad_first] + [True] * (len(chains) - 1)
        assert during == []
        first, *rest = _read_jobs(session, chains)
        assert first.ended_at is not None
        for job in rest:
            assert job.enqueued_at >= first.ended_at, job.id
            assert job.started_at >= first.ended_at, job.id
    finally:
        session.close()
        host_mod.shutdown()
    assert _stepping_threads() == []


def test_a_session_stopped_while_enqueueing_owes_every_chain_a_row(
    tmp_path: Path, gen_recs: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the session waits for its first read, before the other chains are
    enqueued: every chain still gets its row."""
    from pytest_adsreplay.queue import inprocess

    def interrupted(self: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(inprocess.SteppingThreads, "wait_first", interrupted)
    session = _session(tmp_path, "aebfn:Ttc", 1, read_ahead=1)
    store = open_store(session.cfg.db)
    chains = [Chain(r, {}) for r in gen_recs]
    try:
        with pytest.raises(KeyboardInterrupt):
            session.enqueue(chains)
        assert {c.key for c in session.unfinished()} == {c.key for c in chains}
        session.close(store, interrupted=True)
        rows = store.results(session.cfg.run_id)
        assert sorted(r.recording_id for r in rows) == sorted(c.recording.id for c in chains)
    finally:
        session.close()
        host_mod.shutdown()


#: Steps only once ``$ADSREPLAY_TEST_GO`` exists (the test's event, not a time).
GATED = """
import os, pathlib, time
from aebfn import Ttc

class Gated(Ttc):
    def reset(self):
        super().reset()
        go = pathlib.Path(os.environ["ADSREPLAY_TEST_GO"])
        while not go.exists():
            time.sleep(0.01)
"""


def test_read_ahead_stops_reading_at_its_bound(
    tmp_path: Path, gen_recs: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the one host waits inside its first recording, the next recording is handed
    to that host (its second stepping thread waits for its turn) and the reader reads
    exactly ``read_ahead`` more, then waits: the read signals of a long session are
    never all in memory at once."""
    (tmp_path / "gatedfn.py").write_text(GATED)
    go = tmp_path / "go"
    monkeypatch.setenv("ADSREPLAY_TEST_GO", str(go))
    recs = gen_recs
    assert len(recs) >= 5
    session = _session(tmp_path, "gatedfn:Gated", 1, read_ahead=1)
    try:
        chains = [Chain(r, {}) for r in recs]
        session.enqueue(chains)
        reads = session.queues["read"].finished_job_registry
        aeb = session.queues["aeb"]
        deadline = time.monotonic() + 120  # generous: a busy machine
        while not (aeb.count == 1 and aeb.started_job_registry.count == 2):
            assert time.monotonic() < deadline, (aeb.count, reads.count)
            time.sleep(0.02)
        # the host is inside recording 1, recording 2 waits in the host for its turn and
        # recording 3 in the queue: nothing more is read (a short look: a reader that
        # went on would have read the next one by then)
        time.sleep(0.5)
        assert reads.count == 3, reads.get_job_ids()
        assert aeb.started_job_registry.count == 2 and aeb.count == 1
        go.touch()
        assert all(session.outcome(c).ok for c in chains)
        assert reads.count == len(chains)
    finally:
        go.touch()
        session.close()
        host_mod.shutdown()


#: Notes every module that a thread other than the main thread imports first through
#: pytest's assertion rewriting (which runs ast.parse), in one file per process under
#: ``$ADSREPLAY_TEST_IMPORTS``.
THREAD_IMPORTS = """
import atexit, os, sys, threading

_first = set()

class _Recorder:
    def find_spec(self, name, path=None, target=None):
        main = threading.current_thread() is threading.main_thread()
        if name not in sys.modules and not main:
            _first.add(name)
        return None

sys.meta_path.insert(0, _Recorder())

@atexit.register
def _write():
    folder = os.environ["ADSREPLAY_TEST_IMPORTS"]
    with open(os.path.join(folder, str(os.getpid())), "w") as f:
        rewritten = [
            n for n in _first
            if type(getattr(sys.modules.get(n), "__loader__", None)).__name__
            == "AssertionRewritingHook"
        ]
        f.write("\\n".join(sorted(rewritten)))
"""


@pytest.mark.parametrize(("function", "outcome"), [("Ttc", "passed"), ("Raises", "failed")])
def test_no_thread_is_the_first_to_import_a_module(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, function: str, outcome: str
) -> None:
    """pytest compiles the plugin's modules through its assertion rewriting (ast.parse),
    and CPython 3.11 cannot run two ast.parse at once (``SystemError: AST constructor
    recursion depth mismatch``): while the threads replay, the main thread formats
    failures with ast.parse. So the session imports what the stages need, the plugin's
    modules and asammdf with its dependencies, before its threads start (here pytest-xdist
    workers, which do not write the run's row and so had not imported the results
    store; with a failing function, whose reports pytest formats meanwhile)."""
    project.makeconftest(THREAD_IMPORTS)
    project.makepyfile(test_k="def test_k(replay):\n    assert replay.brake_time\n")
    folder = project.path / "imports"
    folder.mkdir()
    monkeypatch.setenv("ADSREPLAY_TEST_IMPORTS", str(folder))
    result = project.runpytest_subprocess(
        "--recordings=recs",
        f"--aeb-function=aebfn:{function}",
        "-n",
        "2",
        "-p",
        "xdist",
        "--adsreplay-workers=1",
        "--adsreplay-read-ahead=1",
        "-k",
        "test_k",
    )
    result.assert_outcomes(**{outcome: 3})
    files = list(folder.iterdir())
    assert len(files) >= 3  # the controller and both xdist workers
    assert {f.name: f.read_text() for f in files} == {f.name: "" for f in files}


def test_hosts_are_never_shared_by_live_threads(tmp_path: Path, gen_recs: list[Any]) -> None:
    host_mod.shutdown()  # no host of an earlier test in this process (same spec) is reused
    got: dict[str, Any] = {}
    both = threading.Barrier(2, timeout=120)  # both threads alive while both acquire
    taken = threading.Event()

    def take(name: str) -> None:
        got[name] = host_mod.acquire("aebfn:Ttc")
        got[name + "-again"] = host_mod.acquire("aebfn:Ttc")
        both.wait()
        host_mod.release()
        # alive until this test took one: a host dies with the thread that started it
        # (PR_SET_PDEATHSIG), so only a released one of a live thread can be handed on
        taken.wait(120)

    threads = [threading.Thread(target=take, args=(n,)) for n in ("a", "b")]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 120  # a generous bound on a busy machine
        while len(got) < 4 or any(s.holder in threads for s in host_mod._POOL):
            assert time.monotonic() < deadline, got  # both acquired twice, then released
            time.sleep(0.01)
        assert got["a"] is got["a-again"] and got["b"] is got["b-again"]
        assert got["a"] is not got["b"] and got["a"].proc.pid != got["b"].proc.pid
        # both released theirs: one of them is handed to this thread (no third process)
        mine = host_mod.acquire("aebfn:Ttc")
        assert mine in (got["a"], got["b"])
        host_mod.release()
    finally:
        taken.set()
        for t in threads:
            t.join()
        host_mod.shutdown()
    assert not got["a"].alive and not got["b"].alive


# -- Ctrl-C ----------------------------------------------------------------------------

#: Blocks in every recording's reset until the session is stopped; one flag file per
#: host says that it is stepping (the event the test waits for, not a time).
STUCK = """
import os, pathlib, time
from aebfn import Ttc

class Stuck(Ttc):
    def reset(self):
        super().reset()
        pathlib.Path(os.environ["ADSREPLAY_TEST_PIDS"], str(os.getpid())).touch()
        time.sleep(600)
"""


def _default_sigint() -> None:
    # a shell that starts jobs in the background starts them with SIGINT ignored
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_the_threads_and_their_hosts(ncap: pytest.Pytester) -> None:
    ncap.makepyfile(stuckfn=STUCK)
    pids = ncap.path / "pids"
    env = {k: v for k, v in os.environ.items() if k != "ADSREPLAY_REDIS_URL"}
    env["PYTHONPATH"] = os.pathsep.join([str(ncap.path), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "pytest", "--recordings=recs", "--aeb-function=stuckfn:Stuck"]
    cmd += ["--adsreplay-workers=2", "-p", "no:randomly", "-p", "no:cacheprovider"]
    cmd += ["-p", "no:xdist"]
    proc = subprocess.Popen(
        cmd,
        cwd=ncap.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 300  # a generous bound on a busy machine
        while len(list(pids.iterdir())) < 2:  # both hosts are stepping
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the two hosts never stepped at once"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=300)  # a hang fails here, not at a time limit
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    rows = _rows(ncap)
    for row in rows.values():
        assert row.status == "error", (row.recording_id, row.error)
        assert "session ended before this recording was replayed" in (row.error or "")
    for pid in (int(p.name) for p in pids.iterdir()):  # no host outlives the session
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.parametrize(("threads", "read_ahead"), [(1, 0), (2, 0), (1, 1)])
def test_jobs_registries_and_results_stay_whole(
    tmp_path: Path, gen_recs: list[Any], threads: int, read_ahead: int
) -> None:
    """The leaner worker bookkeeping still leaves what ``rq info`` and rq-dashboard read:
    every job finished with a successful result, in its queue's finished registry,
    nothing left started, deferred or ready, and the workers' records counting the
    jobs, idle once the queues are empty."""
    from rq import Worker
    from rq.results import Result

    session = _session(tmp_path, "aebfn:Ttc", threads, read_ahead)
    try:
        chains = [Chain(r, {}) for r in gen_recs]
        session.enqueue(chains)
        assert all(session.outcome(c).ok for c in chains)
        conn = session.conn
        for stage, q in session.queues.items():
            finished = set(q.finished_job_registry.get_job_ids())
            for c in chains:
                jid = f"{session.cfg.run_id}-{stage}-{c.key}"
                job = broker.fetch_job(conn, jid)
                assert job.get_status().value == "finished"
                assert jid in finished
                result = job.latest_result()
                assert result is not None and result.type == Result.Type.SUCCESSFUL
                assert job.worker_name and job.started_at and job.ended_at
            assert q.started_job_registry.get_job_ids() == []
            assert q.deferred_job_registry.get_job_ids() == []
            assert conn.zcard(q.ready_job_registry.key) == 0
        if session.background:
            session._stepping().poke()
        deadline = time.monotonic() + 60
        while True:  # the threads go idle once they find nothing more to run
            workers = Worker.all(connection=conn)
            if all(w.get_state() == "idle" for w in workers):
                break
            assert time.monotonic() < deadline, [w.get_state() for w in workers]
            time.sleep(0.05)
        # with read-ahead: two stepping threads per host and the reader
        assert len(workers) == (2 * threads + 1 if read_ahead else threads)
        assert sum(w.successful_job_count for w in workers) == 3 * len(chains)
    finally:
        session.close()
        host_mod.shutdown()


def test_dependents_rq_leaves_ready_are_enqueued(
    tmp_path: Path, gen_recs: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """rq skips enqueueing a ready dependent when another worker touches the ready
    registry meanwhile (and leaves it to a maintenance pass minutes later); a stepping
    thread's worker enqueues it before its next dequeue. Here rq skips every time."""
    from rq import Queue
    from rq.job import JobStatus

    monkeypatch.setattr(Queue, "enqueue_ready_jobs_by_queue", lambda self, ids: None)
    session = _session(tmp_path, "aebfn:Ttc", 1)
    chain = Chain(gen_recs[0], {})
    try:
        session.enqueue([chain])
        worker = broker.in_process_worker(session.conn, broker.worker_order(session.queues))
        assert worker.run(max_jobs=5) == 1  # the read job: its aeb job is left ready
        aeb = broker.fetch_job(session.conn, f"{session.cfg.run_id}-aeb-{chain.key}")
        assert aeb.get_status() == JobStatus.READY_TO_ENQUEUE
        worker.recover_ready = True
        assert worker.run(max_jobs=5) == 2  # aeb, then db (also left ready, recovered)
        worker.close()
        session._worker = None
        out = session._read_outcome(chain)
        assert out.ok and out.kpis["brake_time"] is not None
    finally:
        session.close()
        host_mod.shutdown()


@pytest.mark.parametrize(("recordings", "threads"), [(1, 1), (3, 2)])
def test_never_more_threads_than_recordings(
    tmp_path: Path, gen_recs: list[Any], recordings: int, threads: int
) -> None:
    """``--adsreplay-workers 2``: one recording runs in the waiting test's thread (no
    second host starts), three in two stepping threads."""
    from pytest_adsreplay.config import Settings
    from pytest_adsreplay.plugin.run import ReplayRun

    settings = Settings(
        recordings=(str(tmp_path / "recs"),),
        function="aebfn:Ttc",
        db=str(tmp_path / "r.sqlite"),
        workers=2,
    )
    run = ReplayRun(settings, run_id=f"few{recordings}", owner=True, rootdir=tmp_path)
    assert run.stepping_threads == 2
    try:
        run.begin()
        chains = [run.chain(r) for r in run.recordings[:recordings]]
        run.start(chains)
        assert run.session is not None and run.session.threads == threads
        assert all(run.outcome(c).ok for c in chains)
        assert (run.session._pool is None) == (threads == 1)
    finally:
        run.finish(0, complete=True)
    rows = open_store(settings.db).results(f"few{recordings}")
    assert [r.status for r in rows] == ["ok"] * recordings


@pytest.mark.parametrize(
    ("setting", "xdist", "expected"),
    [(None, False, 2), (None, True, 0), (1, True, 1), (0, False, 0)],
)
def test_read_ahead_default_is_one_per_host_but_none_in_an_xdist_worker(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    setting: int | None,
    xdist: bool,
    expected: int,
) -> None:
    """``-n N`` already keeps every core busy: a reading thread there would only compete
    for them (the rule of the stepping threads); an explicit setting always wins."""
    from pytest_adsreplay.config import Settings
    from pytest_adsreplay.plugin.run import ReplayRun

    if xdist:
        monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    else:
        monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    run = ReplayRun(
        Settings(read_ahead=setting, workers=2), run_id="ra", owner=True, rootdir=tmp_path
    )
    assert run.read_ahead(hosts=2, chains=5) == expected
    assert run.read_ahead(hosts=2, chains=2) == 0  # every recording has a host of its own

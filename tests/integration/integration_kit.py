"""Shared helpers of the integration tests: recordings, a tiny TTC function, Redis servers.

Kept out of ``conftest.py`` so that scripts (``bench_worker_model.py``) and the tests'
subprocesses can import them too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_URL = "redis://127.0.0.1:6379/15"
ENABLE_HINT = "start redis-server or set ADSREPLAY_REDIS_URL=redis://host:6379/15"
PYTHON = sys.executable
FUNCTION_MODULE = "aebfn"

#: The function under test of the test projects. Parameters make it misbehave on purpose
#: for recordings driven at a given speed: ``delay`` seconds of sleep in the first cycle
#: (``delay_kph`` None = every recording), an endless loop (``hang_kph``; ``c_hang_kph``:
#: in C code that SIGALRM cannot interrupt), and a marker
#: file written when a recording starts (``started_dir``), so a test can act mid-job.
FUNCTION_SOURCE = '''\
"""Test function under test: a two-threshold TTC cascade (and ways to misbehave)."""

import math
import os
import time

if os.environ.get("AEBFN_IMPORT_MARK"):  # lets a test see which processes imported us
    with open(os.environ["AEBFN_IMPORT_MARK"], "a") as mark:
        mark.write(f"{os.getpid()}\\n")


class Ttc:
    def __init__(self, fcw_ttc=2.6, brake_ttc=1.6, decel=6.0, delay=0.0, delay_kph=None,
                 hang_kph=None, c_hang_kph=None, started_dir=None):
        self.fcw_ttc, self.brake_ttc, self.decel = fcw_ttc, brake_ttc, decel
        self.delay, self.delay_kph, self.hang_kph = delay, delay_kph, hang_kph
        self.c_hang_kph = c_hang_kph
        self.started_dir = started_dir

    @staticmethod
    def _at(kph, frame):
        return kph is not None and abs(frame["ego_speed"] * 3.6 - kph) < 0.5

    def step(self, frame):
        if frame["t"] < 1e-9:
            if self.started_dir:  # named after the worker: the function runs in its host child
                name = f"{os.getppid()}-{frame['ego_speed'] * 3.6:.0f}kph"
                open(os.path.join(self.started_dir, name), "w").close()
            if self.delay and (self.delay_kph is None or self._at(self.delay_kph, frame)):
                time.sleep(self.delay)
            while self._at(self.hang_kph, frame):
                time.sleep(0.05)
            if self._at(self.c_hang_kph, frame):
                sum(range(10**13))  # hours in C, deaf to SIGALRM
        d, vr = frame["target_distance"], frame["target_rel_speed"]
        ttc = d / -vr if vr < 0 and math.isfinite(d) else math.inf
        return {"fcw": 1.0 if ttc < self.fcw_ttc else 0.0,
                "aeb_decel": self.decel if ttc < self.brake_ttc else 0.0}


class Cautious(Ttc):
    """A second calibration (earlier braking) for the isolation test."""

    def __init__(self, **kw):
        super().__init__(brake_ttc=2.0, **kw)
'''

#: The scenario test file of the test projects (``--aeb-function aebfn:Ttc``).
TEST_SOURCE = """\
import pytest


@pytest.mark.recordings(tags=["closing"])
def test_brakes_in_time(replay):
    assert replay.brake_time is not None, "no braking on a closing target"
    assert 1.0 <= replay.ttc_at_brake <= 2.2
    assert not replay.collision


@pytest.mark.recordings(tags=["free"])
def test_no_false_activation(replay):
    assert replay.brake_time is None
    assert len(replay.outputs["aeb_decel"]) == len(replay.t)
"""


#: Tests of the recordings passed as ``extra`` to ``write_project`` (fault scenarios).
EXTRA_TEST_SOURCE = """\
import pytest


@pytest.mark.recordings(tags=["extra"])
def test_extra(replay):
    assert replay.brake_time is not None
"""


def write_scenario(
    path: Path,
    *,
    speed_kph: float = 50.0,
    dist0: float = 60.0,
    duration: float | None = None,
    target: bool = True,
    sidecar: str | None = None,
) -> Path:
    """An MF4 of an ego at constant speed closing on a stationary target (or no target).

    The recording ends (by default) at 85 % of the time to reach the target, so the
    recorded gap stays positive.

    Channel names are the ones the built-in map resolves: group "Vehicle" at 100 Hz
    (``VehSpd`` km/h, ``VehAccX``), group "Radar" at 20 Hz (``Radar.Obj0.*``).
    """
    from adsreplay_testkit import write_logger_layout

    v = speed_kph / 3.6
    if duration is None:
        duration = min(5.0, 0.85 * dist0 / v) if target else 5.0
    steps = 5 * round(duration / 0.05)  # both groups end on the same sample
    tv = np.arange(steps + 1) * 0.01
    tr = np.arange(steps // 5 + 1) * 0.05
    if target:
        dist, vrel, valid = dist0 - v * tr, np.full(tr.size, -v), np.ones(tr.size)
    else:
        dist, vrel, valid = np.full(tr.size, 250.0), np.zeros(tr.size), np.zeros(tr.size)
    write_logger_layout(path, tv, speed_kph, tr, dist, vrel, valid)
    if sidecar is not None:
        path.with_suffix(".toml").write_text(sidecar)
    return path


def write_function_module(folder: Path, name: str = FUNCTION_MODULE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(FUNCTION_SOURCE)
    return path


@dataclass
class Project:
    """A small pytest project: recordings, the function module, a scenario test file."""

    root: Path
    recordings: Path
    closing: list[str]
    free: list[str]

    @property
    def count(self) -> int:
        return len(self.closing) + len(self.free)


@dataclass
class Mode:
    """How the jobs of an inner session run: its extra pytest args and its workers."""

    name: str
    url: str | None
    args: list[str]
    workers: list[Any] = field(default_factory=list)

    @property
    def real(self) -> bool:
        return self.url is not None


def write_project(
    root: Path,
    *,
    closing: Sequence[float] = (40.0, 50.0),
    free: Sequence[float] = (60.0,),
    extra: dict[str, float] | None = None,
    ini: str = "",
    function_module: bool = True,
) -> Project:
    """Write recordings (closing targets at the given speeds, free roads, ``extra`` by
    name -> speed, tested by ``test_extra.py``), the function module and ``test_aeb.py``."""
    recs = root / "recs"
    tagged = "[expect]\nbrake = true\nttc_at_brake = [1.0, 2.2]\ncollision = false\n"
    names_c, names_f = [], []
    for kph in closing:
        name = f"closing_{kph:.0f}kph"
        write_scenario(recs / f"{name}.mf4", speed_kph=kph, sidecar=f'tags = ["closing"]\n{tagged}')
        names_c.append(f"{name}.mf4")
    for kph in free:
        name = f"free_{kph:.0f}kph"
        write_scenario(
            recs / f"{name}.mf4",
            speed_kph=kph,
            target=False,
            sidecar='tags = ["free"]\n[expect]\nbrake = false\n',
        )
        names_f.append(f"{name}.mf4")
    for name, kph in (extra or {}).items():
        write_scenario(recs / f"{name}.mf4", speed_kph=kph, sidecar='tags = ["extra"]\n')
    if extra:
        (root / "test_extra.py").write_text(EXTRA_TEST_SOURCE)
    if function_module:
        write_function_module(root)
    (root / "test_aeb.py").write_text(TEST_SOURCE)
    (root / "pytest.ini").write_text(
        "[pytest]\nfilterwarnings = error\nadsreplay_recordings = recs\n"
        f"adsreplay_function = {FUNCTION_MODULE}:Ttc\nadsreplay_db = results.sqlite\n{ini}"
    )
    return Project(root, recs, names_c, names_f)


# -- Redis -------------------------------------------------------------------------------
#: ``ADSREPLAY_REDIS_URL`` as the suite was started with: read once at import, because
#: every test then runs with the plugin's variables removed (the embedded mode).
SUITE_REDIS_URL = os.environ.get("ADSREPLAY_REDIS_URL", "").strip()


def redis_url() -> str:
    """The shared Redis of the real-Redis tests."""
    return SUITE_REDIS_URL or DEFAULT_URL


def reachable(url: str, timeout: float = 1.0) -> str | None:
    """None when a Redis at ``url`` answers PING, else why not."""
    import redis

    try:
        conn = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        conn.ping()
        conn.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A throw-away ``redis-server`` on a free port (for the tests that kill or restart it).

    ``password`` makes it require AUTH; nothing is persisted.
    """

    def __init__(self, workdir: Path, password: str | None = None):
        self.workdir = workdir
        self.password = password
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed")
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [
            exe,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
        ]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10 * PATIENCE
        while reachable(self.url, 0.2) is not None:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"private redis-server on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def connection(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url)


#: The key of the lease on a shared Redis's fleet queues (see ``fleet_lease``).
FLEET_LEASE_KEY = "adsreplay-test:fleet-lease"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"


@contextlib.contextmanager
def fleet_lease(url: str, wait: float = 900.0, hold: float = 300.0) -> Iterator[None]:
    """Exclusive use of the fleet queues (``adsreplay-read/aeb/db``) of the Redis at ``url``.

    ``adsreplay worker`` processes and sessions with ``--adsreplay-workers 0`` all use
    these queues, so two tests using them at once would take each other's jobs. The lease
    is a key in that Redis (expiring after ``hold`` s should its holder die), so tests of
    every session on that server take turns, not only the xdist workers of one.
    """
    import redis

    conn = redis.Redis.from_url(url)
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait
    with contextlib.closing(conn):
        while not conn.set(FLEET_LEASE_KEY, token, nx=True, ex=int(hold)):
            if time.monotonic() > deadline:
                from pytest_adsreplay.queue.broker import mask_url

                raise AssertionError(
                    f"the fleet queues of {mask_url(url)} stayed leased for {wait:.0f} s "
                    f"(key {FLEET_LEASE_KEY}); delete the key if no test runs any more"
                )
            time.sleep(0.1)
        try:
            yield
        finally:
            conn.eval(_RELEASE, 1, FLEET_LEASE_KEY, token)


@contextlib.contextmanager
def private_redis(workdir: Path, password: str | None = None) -> Iterator[PrivateRedis]:
    server = PrivateRedis(workdir, password).start()
    try:
        yield server
    finally:
        server.kill()


def run_keys(conn: Any, run_id: str) -> list[bytes]:
    """Every key of a run: its data keys and its rq job/result keys."""
    keys = list(conn.scan_iter(match=f"adsreplay:{run_id}:*", count=1000))
    keys += list(conn.scan_iter(match=f"rq:job:{run_id}-*", count=1000))
    keys += list(conn.scan_iter(match=f"rq:results:{run_id}-*", count=1000))
    return keys


# -- processes ---------------------------------------------------------------------------
def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child pytest/worker: no inherited plugin settings."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("ADSREPLAY_", "PYTEST_", "COV_"))
    }
    env.update(extra)
    return env


def start_worker(
    url: str,
    cwd: Path,
    pythonpath: Path,
    *extra: str,
    burst: bool = False,
    functions: Sequence[str] = (f"{FUNCTION_MODULE}:Ttc",),
) -> subprocess.Popen[str]:
    """An external ``adsreplay worker`` process in ``cwd`` with ``pythonpath`` importable,
    allowed to run ``functions`` (``--function``; none added when ``extra`` already says
    which functions it runs)."""
    cmd = [PYTHON, "-m", "pytest_adsreplay.cli", "worker", "--redis-url", url, *extra]
    if not {"--function", "--trust-any-function"} & set(extra):
        for spec in functions:
            cmd += ["--function", spec]
    if burst:
        cmd.append("--burst")
    return subprocess.Popen(
        cmd,
        cwd=cwd,
        env=subprocess_env(PYTHONPATH=str(pythonpath)),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[Any], grace: float = 5.0) -> str:
    """SIGTERM, then SIGKILL after ``grace`` s; the process's output."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=5)
    return out or ""


def processes_with(marker: str) -> list[int]:
    """pids of live processes whose command line or environment contains ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            text = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split(") ", 1)[1][:1]
        except OSError:
            continue
        if marker.encode() in text and state != "Z":
            pids.append(int(entry.name))
    return pids


# -- time budgets ------------------------------------------------------------------------
#: How many times longer than on an idle machine the suite waits before it calls
#: something hung (``wait_for``, inner sessions, server start-up); ``wait_for`` and
#: ``collect`` wait longer still when ``slowdown()`` measures a slower machine. Waiting
#: longer costs nothing when things work, and a busy machine (load 4-8 on 2 cores) runs
#: every process several times slower.
PATIENCE = 3.0
#: The same for pytest-timeout marks: the last resort, behind the waits above.
MARK_PATIENCE = 10.0

#: The least a reference step (``reference_seconds``) counts for: about its time on an
#: idle 2-core VM, so a faster machine keeps the same limits.
REFERENCE_FLOOR = 1.0
REFERENCE_IMPORTS = (
    "import pytest, numpy, scipy.signal, asammdf, redis, rq, pytest_adsreplay.plugin"
)


def reference_seconds() -> float:
    """Wall time of a reference step measured now: a fresh interpreter importing what every
    inner session and worker imports. It grows with the load of the machine."""
    started = time.monotonic()
    subprocess.run([PYTHON, "-c", REFERENCE_IMPORTS], env=subprocess_env(), check=True)
    return time.monotonic() - started


def slowdown() -> float:
    """How many times slower than an idle machine this one is now (at least 1)."""
    return max(1.0, reference_seconds() / REFERENCE_FLOOR)


def assert_within(elapsed: float, *, fixed: float, steps: float, what: str) -> None:
    """``elapsed`` s must fit a budget of ``fixed`` s (the product's own timeouts and
    grace periods, which do not stretch) plus ``steps`` reference steps (the work, which
    does). The reference is measured only when the idle-machine limit is exceeded, so a
    busy machine stretches the limit in proportion while a hang still fails."""
    if elapsed <= fixed + steps * REFERENCE_FLOOR:
        return
    step = max(REFERENCE_FLOOR, reference_seconds())
    limit = fixed + steps * step
    assert elapsed <= limit, (
        f"{what} took {elapsed:.1f} s; the budget is {fixed:g} s + {steps:g} x {step:.2f} s "
        f"(a reference start-up measured now) = {limit:.1f} s"
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def enqueue_chains(url: str, namespace: str, recs: Sequence[Path], function: str, db: str) -> Any:
    """A ReplaySession on real Redis with every recording enqueued (for the benchmark)."""
    from pytest_adsreplay.queue.broker import connect
    from pytest_adsreplay.queue.pipeline import Chain, ReplaySession, SessionConfig, new_run_id
    from pytest_adsreplay.recordings import discover

    cfg = SessionConfig(
        run_id=new_run_id(),
        function=function,
        params={},
        channel_map=None,
        cycle_time=0.01,
        db=db,
        timeout=60,
        namespace=namespace,
        settings={"brake_threshold": 1.0, "actuator_delay": 0.2, "brake_jerk": 40.0},
    )
    session = ReplaySession(cfg, connect(url), embedded=False)
    # the session fingerprints the build workers must match: the test project's
    # function module (next to its ``recs`` folder) is importable while it enqueues
    with project_importable(recs):
        session.enqueue([Chain(recording=r, params={}) for r in discover(list(recs))])
    return session


@contextlib.contextmanager
def project_importable(recs: Sequence[Path]) -> Iterator[None]:
    """The test project of ``recs`` (its root holds the function module) on sys.path."""
    root = str(Path(recs[0]).resolve().parent.parent) if recs else None
    if root is None or root in sys.path:
        yield
        return
    sys.path.insert(0, root)
    try:
        yield
    finally:
        sys.path.remove(root)


# -- inner pytest sessions ---------------------------------------------------------------
RUN_ID = re.compile(r"\brun (\d{8}T\d{6}-[0-9a-f]{6})")


def pytest_cmd(*args: str) -> list[str]:
    return [PYTHON, "-m", "pytest", "-p", "no:cacheprovider", *args]


def spawn_pytest(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    """A pytest session in ``cwd`` as a child process (stdout+stderr in one pipe).

    SIGINT is reset to its default in the child: a shell without job control (a CI
    script run in the background) starts children with SIGINT ignored, and Python
    keeps an ignored SIGINT ignored, so the Ctrl-C tests would send it into the void.
    Every child is remembered in ``SPAWNED`` until ``reap_spawned`` ends the test.
    """
    proc = subprocess.Popen(
        pytest_cmd(*args),
        cwd=cwd,
        env=env or subprocess_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_default_sigint,
    )
    SPAWNED.append(proc)
    return proc


#: Inner sessions started by ``spawn_pytest`` during the current test.
SPAWNED: list[subprocess.Popen[str]] = []


def reap_spawned() -> list[str]:
    """Kill the inner sessions of the current test that still run (a test that failed
    while waiting for one) and close every pipe, so that no process or open file is left
    to warn in a later test; the output of each one that had to be killed."""
    leftovers = []
    while SPAWNED:
        proc = SPAWNED.pop()
        if proc.poll() is None:
            proc.kill()
            out, _ = proc.communicate(timeout=30)
            leftovers.append(f"inner session {proc.args!r}:\n{out}")
        elif proc.stdout is not None and not proc.stdout.closed:
            proc.stdout.close()
    return leftovers


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def collect(proc: Any, started: float, timeout: float = 120) -> Any:
    """Wait for a ``spawn_pytest`` child: a ``pytest.RunResult`` (outcomes, fnmatch).
    It counts as hung after ``timeout`` x ``PATIENCE`` s, or ``timeout`` x the measured
    ``slowdown()`` when the machine is slower than that."""
    import pytest

    limit = timeout * PATIENCE
    try:
        out, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        out = _finish_or_kill(proc, timeout * slowdown() - limit, started)
    return pytest.RunResult(proc.returncode, out.splitlines(), [], time.monotonic() - started)


def _finish_or_kill(proc: Any, more: float, started: float) -> str:
    """The output of ``proc`` if it ends within ``more`` s; else kill it and fail."""
    try:
        if more > 0:
            out, _ = proc.communicate(timeout=more)
            return str(out)
    except subprocess.TimeoutExpired:
        pass
    proc.kill()
    out, _ = proc.communicate()
    waited = time.monotonic() - started
    raise AssertionError(f"inner pytest still running after {waited:.0f} s:\n{out}")


def run_pytest(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> Any:
    """Run pytest in ``cwd`` to the end; a ``pytest.RunResult``."""
    started = time.monotonic()
    return collect(spawn_pytest(cwd, *args, env=env), started, timeout)


def run_id_of(result: Any) -> str:
    """The run id an inner session printed (header / summary)."""
    for line in result.outlines:
        m = RUN_ID.search(line)
        if m:
            return m.group(1)
    raise AssertionError("no run id in the output:\n" + "\n".join(result.outlines))


def result_rows(project: Project, run_id: str) -> dict[str, Any]:
    """recording id -> results row of ``run_id`` (asserting one row per recording)."""
    from pytest_adsreplay.results.store import open_store

    rows = open_store(str(project.root / "results.sqlite")).results(run_id)
    ids = [r.recording_id for r in rows]
    assert len(ids) == len(set(ids)), f"duplicate result rows: {ids}"
    return {r.recording_id: r for r in rows}


def wait_for(what: Any, timeout: float, step: float = 0.05) -> Any:
    """Poll ``what()`` until it returns something truthy. ``timeout`` is the wait on an
    idle machine: it fails after ``timeout`` x ``PATIENCE`` s, or ``timeout`` x the
    measured ``slowdown()`` when the machine is slower than that."""
    started = time.monotonic()
    limit, measured = timeout * PATIENCE, False
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() - started > limit:
            if measured:
                waited = time.monotonic() - started
                raise AssertionError(f"still waiting after {waited:.0f} s for {what}")
            limit, measured = max(limit, timeout * slowdown()), True
        time.sleep(step)


def params(**kw: Any) -> list[str]:
    """``-o adsreplay_function_params={...}`` for the test function ``aebfn:Ttc``."""
    items = ", ".join(f"{k} = {json.dumps(v)}" for k, v in kw.items())
    return ["-o", f"adsreplay_function_params={{{items}}}"]

"""Worker processes on the plugin's queues: a session's local workers and external fleets.

The model is a long-lived process per worker, each running an rq ``SimpleWorker`` loop
with asammdf, numpy, the stages and the function's module imported once (scipy.signal
when a KPI first needs it). It was chosen by measurement
(``tests/integration/bench_worker_model.py``: 20 recordings x 3 jobs on one worker, two
runs on a loaded 2-core machine): 54 / 20 ms per job, against
140 / 69 ms for a forking ``Worker`` whose parent preloads the same modules (fork and
horse teardown per job) and 941 / 736 ms for a plain forking worker, whose every work
horse imports asammdf again. Job timeouts still work: the job runs in the worker's main
thread, so the SIGALRM death penalty interrupts it (``broker.death_penalties``); a job
stuck in C code is failed by the session (``WorkerWatch``), which kills its worker.

Every worker keeps its rq registration alive with a short TTL from a small heartbeat
process (also during a job, even one stuck in C code), which deletes it as soon as the
worker dies, so a killed worker disappears from Redis within about a second;
``WorkerWatch`` (the session side) uses that, and the exit of a local process, to retry
a killed worker's job once and to stop waiting when no worker is left.

Run ``python -m pytest_adsreplay.queue.worker`` (local workers; the URL comes from the
``ADSREPLAY_REDIS_URL`` environment variable so that no password shows in ``ps``) or
``adsreplay worker --redis-url URL`` (fleets).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rq import SimpleWorker

from pytest_adsreplay.errors import AdsReplayError, BrokerError
from pytest_adsreplay.queue import broker
from pytest_adsreplay.urls import mask_url

log = logging.getLogger(__name__)

URL_ENV = "ADSREPLAY_REDIS_URL"
#: Modules every worker imports before its first job (the function's module is added).
PRELOAD = (  # not scipy.signal: see broker.in_process_worker
    "numpy",
    "asammdf",
    "pytest_adsreplay.queue.stages",
    "pytest_adsreplay.replay",
    "pytest_adsreplay.mdf.reader",
    "pytest_adsreplay.signals",
    "pytest_adsreplay.kpi.compute",
    "pytest_adsreplay.function.python",
    "pytest_adsreplay.results.store",
)
LIVENESS_TTL = 6  # s a worker stays registered after its last heartbeat
BEAT_INTERVAL = 1.0  # s between heartbeats (and parent checks)
WORKER_TTL = 20  # rq worker_ttl: an idle worker polls its queues every WORKER_TTL - 15 s
NO_WORKER_GRACE = 10.0  # s without any live worker on a queue before the session gives up
HUNG_GRACE = 10.0  # s past the job timeout before a started job counts as stuck
STOP_GRACE = 5.0  # s a local worker gets to finish its job after SIGTERM
WATCH_INTERVAL = 0.25  # s between two looks at Redis from the session


def preload(modules: Iterable[str]) -> list[str]:
    """Import ``modules`` now so that jobs do not; returns the ones that failed (why)."""
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # a broken function module fails its jobs, not the worker
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    return failed


class FleetWorker(SimpleWorker):
    """SimpleWorker whose registration expires ``LIVENESS_TTL`` s after its last beat.

    rq stretches the TTL to job timeout + 60 s while a SimpleWorker runs a job; the
    heartbeat process (``start_heartbeat``) keeps it short instead, so a SIGKILLed worker
    vanishes from Redis within seconds. Timeouts raise ``StrictJobTimeoutException``,
    which the function's own ``except Exception`` cannot swallow.
    """

    death_penalty_class = broker.death_penalties()[0]

    #: Inside the work loop (where rq catches the StopRequested of a warm stop).
    _looping = False

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        """rq registers the worker and only then installs its SIGINT/SIGTERM handlers: a
        stop in between (a session that ends as its workers start) would kill it with
        its registration left behind. The handlers come first here; a stop before the
        loop runs is noted and ends the loop at its first look (:meth:`request_stop`),
        so the worker still unregisters."""
        self._install_signal_handlers()
        super().bootstrap(*args, **kwargs)

    def request_stop(self, signum: Any, frame: Any) -> None:
        if self._looping:
            super().request_stop(signum, frame)  # type: ignore[no-untyped-call,unused-ignore]
            return
        self._stop_requested = True  # the loop's first look ends it; teardown unregisters
        signal.signal(signal.SIGINT, self.request_force_stop)
        signal.signal(signal.SIGTERM, self.request_force_stop)

    def _install_signal_handlers(self) -> None:
        if self._stop_requested:  # stopped during the bootstrap: the next signal is cold
            return
        super()._install_signal_handlers()  # type: ignore[no-untyped-call,unused-ignore]

    def check_for_suspension(self, burst: bool) -> None:
        self._looping = True  # the loop's first call
        super().check_for_suspension(burst)

    def unsubscribe(self) -> None:
        """rq's, with the pubsub thread told to stop before the UNSUBSCRIBE, whose reply
        then wakes it to end. rq 3 stops it after: a thread that has already handled the
        reply waits for a new subscription (up to 60 s) and rq's join gives up only after
        1 s, so about every fourth stop of a worker took a second longer."""
        thread = getattr(self, "pubsub_thread", None)
        if thread is not None:
            thread.stop()
        super().unsubscribe()  # type: ignore[no-untyped-call,unused-ignore]

    def register_birth(self) -> None:
        super().register_birth()  # type: ignore[no-untyped-call,unused-ignore]
        self.connection.expire(self.key, LIVENESS_TTL)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        super().heartbeat(LIVENESS_TTL, pipeline=pipeline)


def start_heartbeat(url: str, name: str, session_pid: int | None = None) -> int:
    """Fork the worker's heartbeat process (call before any thread or heavy import).

    A process, not a thread: a job stuck in C code holds the GIL and would starve a
    thread, and a busy worker would look dead. Every ``BEAT_INTERVAL`` s the helper
    refreshes the worker's registration to ``LIVENESS_TTL``. When the worker dies (its
    parent pid changes) it deletes the registration at once, so the session notices
    within a second, and exits. With ``session_pid`` it also SIGKILLs the worker once
    that pytest session is gone, so no orphan is left, even one stuck in C code. It
    ignores SIGINT/SIGTERM: during a warm shutdown the worker stays registered until it
    exits. Returns the helper's pid.
    """
    worker_pid = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    try:  # the helper
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        import redis

        conn = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        key = f"rq:worker:{name}"
        while os.getppid() == worker_pid:
            if session_pid is not None and _session_gone(worker_pid, session_pid):
                os.kill(worker_pid, signal.SIGKILL)
            else:
                with contextlib.suppress(Exception):
                    conn.expire(key, LIVENESS_TTL)  # EXPIRE never recreates a deleted key
            time.sleep(BEAT_INTERVAL)
        with contextlib.suppress(Exception):
            conn.delete(key)
    finally:
        os._exit(0)


def _session_gone(worker_pid: int, session_pid: int) -> bool:
    """True when the worker's parent is no longer the session (it died, even as a zombie)."""
    try:
        stat = Path(f"/proc/{worker_pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[1]) != session_pid
    except (OSError, ValueError, IndexError):
        try:
            os.kill(session_pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def default_name() -> str:
    return f"adsreplay-{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:4]}"


def build_worker(conn: Any, namespace: str, name: str | None = None) -> Any:
    """A FleetWorker on the three stage queues of ``namespace`` (db, aeb, read order)."""
    from rq.serializers import JSONSerializer

    from pytest_adsreplay.queue.trust import job_class

    queues = broker.worker_order(broker.make_queues(conn, namespace))
    return FleetWorker(
        queues,
        connection=conn,
        name=name or default_name(),
        serializer=JSONSerializer,
        worker_ttl=WORKER_TTL,
        job_class=job_class(),
    )


def run_worker(
    url: str | None,
    *,
    burst: bool = False,
    namespace: str = "adsreplay",
    name: str | None = None,
    preload_modules: Sequence[str] = (),
    parent_pid: int | None = None,
    announce: bool = True,
    functions: Sequence[str] = (),
    trust_shipped_functions: bool = False,
    allowed_functions: Sequence[str] = (),
    trust_any_function: bool = False,
) -> int:
    """Run one worker until stopped (or, with ``burst``, until the queues are empty).

    The process entry point of a worker: it forks the heartbeat process first, so call it
    in a process of its own, never inside pytest. ``url`` None reads
    ``ADSREPLAY_REDIS_URL``. Logs at WARNING; an unreachable Redis raises BrokerError
    naming the masked URL. Returns the process exit status.
    """
    url = url or os.environ.get(URL_ENV, "").strip()
    if not url:
        raise BrokerError(f"no Redis URL: pass --redis-url URL or set {URL_ENV}")
    name = name or default_name()
    from pytest_adsreplay.function import shipping

    shipping.configure(functions, trust_shipped=trust_shipped_functions)
    from pytest_adsreplay.queue.trust import allow_functions

    # only the functions it was started for (none without --function), or any at all
    allow_functions(allowed_functions, any_function=trust_any_function)
    start_heartbeat(url, name, parent_pid)
    conn = broker.connect(url, worker=True)
    from pytest_adsreplay import malloc

    malloc.reuse_freed_memory()
    for problem in preload([*PRELOAD, *preload_modules]):
        print(f"adsreplay worker: cannot preload {problem}", file=sys.stderr)
    from pytest_adsreplay.function.host import prestart

    prestart()  # the function's host process starts before the first aeb job
    worker = build_worker(conn, namespace, name)
    broker.freeze_imports()  # the preloaded modules: out of every full collection's way
    if announce:
        queues = ", ".join(q.name for q in worker.queues)
        print(
            f"adsreplay worker {worker.name} (pid {os.getpid()}) on {mask_url(url)}, "
            f"queues {queues}" + (", burst" if burst else ""),
            file=sys.stderr,
            flush=True,
        )
        print(_functions_line(allowed_functions, trust_any_function), file=sys.stderr)
    worker.work(burst=burst, logging_level="WARNING", with_scheduler=False)
    return 0


def _functions_line(allowed: Sequence[str], any_function: bool) -> str:
    """What the worker's start-up message says about the functions it runs."""
    if allowed:
        return f"adsreplay worker: runs only the function(s) {', '.join(allowed)}"
    if any_function:
        return "adsreplay worker: runs any function a job names (--trust-any-function)"
    return (
        "adsreplay worker: started without --function: it refuses every recording; "
        "name the function under test with --function FUNCTION"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pytest_adsreplay.queue.worker``: the entry point of a session's local worker."""
    parser = argparse.ArgumentParser(prog="python -m pytest_adsreplay.queue.worker")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--name", default=None)
    parser.add_argument("--preload", action="append", default=[], metavar="MODULE")
    parser.add_argument("--parent-pid", type=int, default=None)
    parser.add_argument("--burst", action="store_true")
    parser.add_argument("--function", action="append", default=[], metavar="MODULE:ATTR")
    args = parser.parse_args(argv)
    try:
        return run_worker(
            None,
            burst=args.burst,
            namespace=args.namespace,
            name=args.name,
            preload_modules=args.preload,
            parent_pid=args.parent_pid,
            announce=False,
            allowed_functions=args.function,
            trust_any_function=not args.function,
        )
    except AdsReplayError as exc:
        print(f"adsreplay local worker: error: {exc}", file=sys.stderr)
        return 2


# -- the session side --------------------------------------------------------------------
def local_worker_count(requested: int | None) -> int:
    """Local worker processes this pytest process starts.

    ``requested`` None means the CPU count. Under pytest-xdist every xdist worker starts
    ``max(1, N // PYTEST_XDIST_WORKER_COUNT)``: the xdist workers share the run's queues,
    but each ends (and stops its own processes) when its own tests are done, so each must
    own at least one worker for the chains its remaining tests wait for.
    """
    n = (os.cpu_count() or 1) if requested is None else requested
    if n <= 0:
        return 0
    xdist = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    return max(1, n // xdist) if xdist > 1 else n


class LocalWorkers:
    """The worker processes one pytest session starts and always stops (finally + atexit).

    Each is ``python -m pytest_adsreplay.queue.worker`` in its own process group, with the
    session's ``sys.path`` as PYTHONPATH (so the function's module imports as it does in
    pytest) and its output in a log file whose tail is shown when it dies.
    """

    def __init__(
        self,
        url: str,
        namespace: str,
        count: int,
        *,
        prefix: str,
        preload_modules: Sequence[str] = (),
        function: str | None = None,
    ):
        self.url = url
        self.function = function  # the only function spec these workers load
        self.namespace = namespace
        self.count = count
        self.names = [f"{prefix}-w{i}" for i in range(count)]
        self.preload_modules = list(preload_modules)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.exit_codes: dict[str, int] = {}
        self.killed: set[str] = set()
        self._logdir: Path | None = None
        self._stopped = False

    def start(self) -> LocalWorkers:
        self._logdir = Path(tempfile.mkdtemp(prefix="adsreplay-workers-"))
        env = dict(os.environ)
        env[URL_ENV] = self.url
        paths = [os.path.abspath(p or os.curdir) for p in sys.path]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if os.path.isdir(p)))
        cmd = [
            sys.executable,
            "-m",
            "pytest_adsreplay.queue.worker",
            "--namespace",
            self.namespace,
            "--parent-pid",
            str(os.getpid()),
        ]
        for mod in self.preload_modules:
            cmd += ["--preload", mod]
        if self.function:
            cmd += ["--function", self.function]
        atexit.register(self.stop, fast=True)
        for name in self.names:
            with open(self._logdir / f"{name}.log", "wb") as out:
                self.procs[name] = subprocess.Popen(
                    [*cmd, "--name", name],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,  # Ctrl-C reaches pytest only; it stops us
                )
        return self

    @property
    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items()}

    def poll(self) -> dict[str, int]:
        """Workers that exited since the last call: name -> exit status (-9 = SIGKILL)."""
        new = {}
        for name, proc in self.procs.items():
            code = proc.poll()
            if code is not None and name not in self.exit_codes:
                self.exit_codes[name] = new[name] = code
        return new

    def alive(self) -> list[str]:
        self.poll()
        return [n for n in self.procs if n not in self.exit_codes]

    def log_tail(self, name: str, lines: int = 8) -> str:
        if self._logdir is None:
            return ""
        try:
            text = (self._logdir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def kill(self, name: str) -> None:
        """SIGKILL one worker (it is stuck in a job that its timeout cannot interrupt)."""
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            self.killed.add(name)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def stop(self, *, fast: bool = False) -> None:
        """SIGTERM every worker (warm: it finishes its job), SIGKILL after ``STOP_GRACE``.

        ``fast`` (Ctrl-C, an aborted session; also at interpreter exit) SIGKILLs at once:
        nobody waits for the results any more.
        """
        if self._stopped:
            return
        self._stopped = True
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL if fast else signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
            _kill_group(proc.pid)  # also its heartbeat process
            proc.wait()
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        if self._logdir is not None:
            shutil.rmtree(self._logdir, ignore_errors=True)


def _kill_group(pgid: int, patience: float = 2.0) -> None:
    """SIGKILL process group ``pgid`` and wait until none of it runs any more."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + patience
    while _group_running(pgid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _group_running(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies do not count; Linux /proc)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return False
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


class WorkerWatch:
    """The session's eye on its workers, called while a test waits (``worker_check``).

    * jobs rq left in READY_TO_ENQUEUE (see ``_kick_ready``) are enqueued;
    * a started job of this run whose worker is dead (local process exited, or its rq
      registration expired) is retried once at the front of its queue, the second time
      it fails and its dependents run, so the db stage writes the error row;
    * a started job with no result ``timeout + HUNG_GRACE`` s after the session first saw
      it started fails as a timeout (its worker is stuck in uninterruptible code; a local
      one is killed);
    * when no live worker listens on one of the stage queues (all local processes gone,
      or external workers absent for ``NO_WORKER_GRACE`` s), BrokerError ends the wait.

    Several pytest processes (xdist) may watch the same run: every reap is claimed with
    ``SET NX`` first, so a job is retried or failed once.
    """

    def __init__(
        self,
        session: Any,
        local: LocalWorkers | None = None,
        *,
        grace: float = NO_WORKER_GRACE,
        hung_grace: float = HUNG_GRACE,
    ):
        self.session = session
        self.local = local
        self.grace = grace
        self.hung_grace = hung_grace
        self.dead: dict[str, str] = {}
        self.events: list[tuple[float, str, str]] = []  # (monotonic, job id, "retried"/...)
        self._seen: dict[str, float] = {}
        self._none_since: float | None = None
        self._last = 0.0

    # -- liveness ----------------------------------------------------------------------
    def _note_exits(self) -> None:
        if self.local is None:
            return
        for name, code in self.local.poll().items():
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            if name in self.local.killed:
                how += " (stopped by the session: it was stuck in a job)"
            tail = self.local.log_tail(name)
            self.dead[name] = f"local worker {name} {how}" + (
                f"; its last output:\n{tail}" if tail else ""
            )

    def live_workers(self) -> dict[str, set[str]]:
        """Queue name -> names of registered, unexpired, not known dead workers on it."""
        from rq import Worker

        conn = self.session.conn
        by_queue = {}
        for q in self.session.queues.values():
            keys = [
                k.decode() if isinstance(k, bytes) else k
                for k in Worker.all_keys(connection=conn, queue=q)
            ]
            with conn.pipeline(transaction=False) as pipe:
                for k in keys:
                    pipe.exists(k)
                exists = pipe.execute()
            prefix = Worker.redis_worker_namespace_prefix
            by_queue[q.name] = {
                k[len(prefix) :]
                for k, e in zip(keys, exists, strict=True)
                if e and k[len(prefix) :] not in self.dead
            }
        return by_queue

    def __call__(self, chain: Any = None) -> None:
        now = time.monotonic()
        if now - self._last < WATCH_INTERVAL:
            return
        self._last = now
        self._note_exits()
        self._kick_ready()
        live = self.live_workers()
        self._reap(set().union(*live.values()), now)
        booting = self.local.alive() if self.local is not None else []
        idle = [q for q, names in live.items() if not names]
        if not idle or booting:
            self._none_since = None
            return
        queues = ", ".join(idle)
        if self.local is not None and self.local.count:
            raise BrokerError(
                f"every local worker process is gone and no other worker listens on {queues}: "
                + "; ".join(self.dead.values()),
                hint="the function may crash its worker (segfault, os._exit, out of memory); "
                "replay the recording inline with pytest_adsreplay.replay_file to see why",
            )
        if self._none_since is None:
            self._none_since = now
        elif now - self._none_since > self.grace:
            raise BrokerError(
                f"no live worker has listened on {queues} for {self.grace:.0f} s "
                f"(Redis {broker.describe(self.session.conn)})",
                hint="start workers: adsreplay worker --redis-url URL (or run with "
                "--adsreplay-workers N > 0 for local ones)",
            )

    # -- abandoned and stuck jobs ------------------------------------------------------
    def _kick_ready(self) -> None:
        """Enqueue jobs that rq 3 left in its ReadyJobRegistry.

        A worker whose job has dependents moves them to READY_TO_ENQUEUE and enqueues them
        under WATCH; when another worker touches the same queue at that moment, rq skips
        the job "for a later cleanup pass", which its maintenance runs every 10 minutes.
        With several workers that happens to about one chain in 20; rq's own recovery,
        run here, enqueues each such job exactly once.
        """
        conn = self.session.conn
        for q in self.session.queues.values():
            reg = q.ready_job_registry
            if conn.zcard(reg.key):
                reg.cleanup()

    def _reap(self, live: set[str], now: float) -> None:
        from rq.registry import StartedJobRegistry

        conn = self.session.conn
        prefix = f"{self.session.cfg.run_id}-"
        limit = float(self.session.cfg.timeout) + self.hung_grace
        for q in self.session.queues.values():
            reg = StartedJobRegistry(queue=q)
            for raw in conn.zrange(reg.key, 0, -1):
                entry = raw.decode() if isinstance(raw, bytes) else raw
                job_id = entry.partition(":")[0]
                if not job_id.startswith(prefix):
                    continue
                seen = self._seen.setdefault(entry, now)
                worker = conn.hget(f"rq:execution:{entry}", "worker_name")
                worker = worker.decode() if isinstance(worker, bytes) else (worker or "")
                if worker in self.dead or (worker and worker not in live):
                    why = self.dead.get(worker) or (
                        f"worker {worker} stopped sending heartbeats (or unregistered)"
                    )
                    self._abandon(q, reg, entry, job_id, f"the worker died: {why}", retry=True)
                elif now - seen > limit:
                    if self.local is not None and worker in self.local.procs:
                        self.local.kill(worker)
                    self._abandon(
                        q,
                        reg,
                        entry,
                        job_id,
                        f"JobTimeoutException: no result {limit:.0f} s after it started on "
                        f"worker {worker or '?'} (per-stage timeout {self.session.cfg.timeout} s "
                        "+ grace); the job is stuck in code the timeout cannot interrupt",
                        retry=False,
                    )

    def _abandon(
        self, queue: Any, reg: Any, entry: str, job_id: str, reason: str, *, retry: bool
    ) -> None:
        """Retry (once) or fail a started job whose execution will never end."""
        from rq.exceptions import NoSuchJobError
        from rq.job import JobStatus
        from rq.job_lifecycle import record_job_failure

        conn = self.session.conn
        run, ttl = self.session.cfg.run_id, int(self.session.cfg.ttl)
        if not conn.set(f"adsreplay:{run}:reap:{entry}", 1, nx=True, ex=ttl):
            return
        try:
            job = broker.fetch_job(conn, job_id)
        except NoSuchJobError:
            conn.zrem(reg.key, entry)
            return
        if job.get_status() != JobStatus.STARTED:
            conn.zrem(reg.key, entry)
            return
        attempts_key = f"adsreplay:{run}:attempts:{job_id}"
        attempts = int(conn.incr(attempts_key))
        conn.expire(attempts_key, ttl)
        if retry and attempts == 1:
            conn.zrem(reg.key, entry)
            queue.enqueue_job(job, at_front=True)
            self.events.append((time.monotonic(), job_id, "retried"))
            log.warning("adsreplay: %s; retrying job %s once", reason, job_id)
            return
        if retry:
            reason += " (it had been retried once already)"
        with conn.pipeline() as pipe:
            record_job_failure(job, f"AbandonedJobError: {reason}", pipe)
            pipe.zrem(reg.key, entry)
            pipe.execute()
        queue.enqueue_dependents(job)
        self.events.append((time.monotonic(), job_id, "failed"))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

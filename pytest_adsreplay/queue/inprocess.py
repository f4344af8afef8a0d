"""The embedded mode's workers: rq's SimpleWorker run inside the pytest process.

One :class:`InProcessWorker` driven by the waiting test (one host, sequential), or
:class:`SteppingThreads`: N of them, each in a thread of its own with its own client of
the embedded server, so N recordings step in parallel (each thread's aeb jobs use a
function host process of their own) while the session thread waits for its results;
plus, with read-ahead, one more that reads the next recordings and computes the KPIs of
finished ones while the hosts step.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from rq import SimpleWorker

from pytest_adsreplay.queue.broker import death_penalties, in_process_worker

#: s an idle stepping thread waits for new jobs before it looks at the queues again (a
#: finished job or an enqueue wakes it at once).
IDLE_WAIT = 0.25

#: s the other stepping threads (and the rest of the enqueue) wait at most for a
#: session's first job, the first recording's read: run alone it hands the first host
#: its recording ~4x sooner than while three threads read and the session enqueues (the
#: session's Python threads share one core's worth of the interpreter lock).
FIRST_WAIT = 1.0

log = logging.getLogger(__name__)


class InProcessWorker(SimpleWorker):
    """SimpleWorker for the embedded mode: no SIGINT/SIGTERM takeover, no pubsub.

    In the main thread job timeouts use SIGALRM (they can interrupt sleeps and C
    calls); the previous SIGALRM handler and interval timer are restored after every
    ``work()``. Elsewhere a timer thread raises into the job instead.

    Fewer Redis round trips per job than SimpleWorker's bookkeeping, with the same
    jobs, registries, results and worker records: the heartbeat at most every 30 s;
    the worker's state written only when it changes, and "idle" only when ``run``
    finds nothing more to do (not between two jobs); the execution and the job's start
    in one round trip instead of two; no extra job heartbeat between the end of a job
    and the write of its result (the plugin's jobs have no callbacks to run there);
    and the server version known (the embedded server has no INFO command, so rq
    would ask for it on every job).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        _known_version(self.connection)

    def _install_signal_handlers(self) -> None:
        pass

    def handle_exception(self, job: Any, *exc_info: Any) -> None:
        """Ctrl-C (or SIGTERM turned into KeyboardInterrupt) inside a job stops the
        session: rq's bare ``except`` in ``perform_job`` would record it as the job's
        failure and go on with the next recording."""
        if len(exc_info) > 1 and isinstance(exc_info[1], KeyboardInterrupt):
            raise exc_info[1]
        super().handle_exception(job, *exc_info)

    def subscribe(self) -> None:
        """No command channel: nobody can address a worker that lives inside the
        session, and each subscription would cost a pubsub connection and a thread
        per ``work()`` call."""

    def unsubscribe(self) -> None:
        pass

    _born = False
    _beat = 0.0
    _written_state: str | None = None
    _pending_state: str | None = None
    _deferring = False  # inside run(): "idle" waits for settle()
    _prepared: str | None = None  # the job whose start prepare_execution wrote

    def work(self, *args: Any, **kwargs: Any) -> bool:
        with self._penalties():
            return bool(super().work(*args, **kwargs))

    def run(self, max_jobs: int, *, settle: bool = True, queues: list[Any] | None = None) -> int:
        """Run up to ``max_jobs`` jobs that are ready now; how many ran.

        The embedded session's loop: rq's own dequeue and ``execute_job`` (so every
        job is performed, recorded and its dependents enqueued exactly as by
        ``work``), but the worker is registered once per session (``close`` ends
        it) instead of once per call, and no suspension check: the private
        fakeredis server cannot be suspended. ``settle``: write the idle state at the
        end (else the caller calls :meth:`settle` when it has nothing more to run).
        ``queues``: look only at these of the worker's queues, in this order.
        """
        if not self._born:
            self.bootstrap(logging_level="WARNING")
            self._born = True
        done = 0
        self._deferring = True
        self._ordered_queues = list(self.queues if queues is None else queues)
        try:
            with self._penalties():
                while done < max_jobs:
                    if self.recover_ready:
                        self._recover_ready()
                    found = self.dequeue_job_and_maintain_ttl(None)
                    if found is None:
                        break
                    self.execute_job(*found)
                    done += 1
        finally:
            self._deferring = False
        if settle:
            self.settle()
        return done

    def settle(self) -> None:
        """Write the idle state that ``run`` held back."""
        pending, self._pending_state = self._pending_state, None
        if pending is not None and pending != self._written_state:
            super().set_state(pending)
            self._written_state = pending

    #: Set for workers that share queues with others in this process (stepping threads).
    recover_ready = False

    def _recover_ready(self) -> None:
        """Enqueue dependents left in a ready registry (one command when there are none:
        an empty registry has no key).

        rq moves a finished job's dependents to the queue's ready registry and then
        enqueues them under WATCH of that registry; when another worker changes the
        registry meanwhile (the other thread finishing another recording's read) rq
        skips the job and leaves it for a maintenance pass that runs every few minutes:
        that recording would wait until then.
        """
        keys = self._ready_keys
        if keys is None:
            keys = self._ready_keys = [q.ready_job_registry.key for q in self.queues]
        if not self.connection.exists(*keys):
            return
        for queue in self.queues:
            queue.ready_job_registry.cleanup()

    _ready_keys: list[str] | None = None

    def close(self) -> None:
        """Unregister a worker that ``run`` registered."""
        if self._born:
            self._born = False
            self.teardown()  # type: ignore[no-untyped-call,unused-ignore]

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """At most one worker heartbeat (3 Redis commands) per 30 s, not 3 per job:
        the worker's key lives ``worker_ttl`` + 60 s and nobody watches it."""
        now = time.monotonic()
        if timeout is not None or pipeline is not None or now - self._beat > 30.0:
            self._beat = now
            self._alive_until = now + (timeout or self.worker_ttl + 60)
            super().heartbeat(timeout, pipeline)

    _alive_until = 0.0  # monotonic time until which the worker's key surely lives

    def set_state(self, state: str, pipeline: Any = None) -> None:
        """The worker's state (idle, busy) in Redis, written only when it changes: rq
        writes "idle" both after a job and again before the next dequeue; inside
        ``run`` "idle" waits for :meth:`settle` (the next job's start, in a pipeline,
        says "busy" anyway)."""
        self._state = state
        if pipeline is not None:
            super().set_state(state, pipeline)
            self._written_state, self._pending_state = state, None
            return
        if state == self._written_state:
            self._pending_state = None
            return
        if self._deferring and state == "idle":
            self._pending_state = state
            return
        super().set_state(state)
        self._written_state, self._pending_state = state, None

    def prepare_execution(self, job: Any) -> Any:
        """rq's execution record and the worker's busy state, plus what
        ``prepare_job_execution`` writes next (the job's heartbeat, started status, no
        expiry; the worker's heartbeat only when its key would expire during the job),
        in one round trip."""
        from rq.executions import Execution
        from rq.utils import now

        with self.connection.pipeline() as pipe:
            ttl = self.get_heartbeat_ttl(job)
            execution = Execution.create(job, ttl, pipeline=pipe, worker_name=self.name)
            self.executions[execution.id] = execution
            self.set_state("busy", pipeline=pipe)
            if time.monotonic() + ttl > self._alive_until:  # else the key outlives the job
                self.heartbeat(ttl, pipe)
            job.heartbeat(now(), ttl, pipeline=pipe)
            job.prepare_for_execution(self.name, pipeline=pipe)
            pipe.persist(job.key)
            pipe.execute()
        self._prepared = job.id
        return execution

    def prepare_job_execution(self, job: Any, remove_from_intermediate_queue: bool = False) -> None:
        if self._prepared == job.id and not remove_from_intermediate_queue:
            self._prepared = None
            return  # written by prepare_execution
        self._prepared = None
        super().prepare_job_execution(job, remove_from_intermediate_queue)

    def handle_execution_ended(self, job: Any, queue: Any, heartbeat_ttl: int) -> None:
        """The job's end time; its result and status follow in one transaction. rq also
        writes a job heartbeat here, to cover the job's callbacks, which the plugin's
        jobs do not have (``trust.job_class``)."""
        from rq.utils import now

        job.ended_at = now()
        job.last_heartbeat = job.ended_at

    def register_birth(self) -> None:
        super().register_birth()  # type: ignore[no-untyped-call,unused-ignore]
        self._written_state = None  # birth writes the worker's whole record

    @contextlib.contextmanager
    def _penalties(self) -> Iterator[None]:
        signal_penalty, timer_penalty = death_penalties()
        if threading.current_thread() is not threading.main_thread():
            self.death_penalty_class = timer_penalty
            yield
            return
        self.death_penalty_class = signal_penalty
        saved = signal.getsignal(signal.SIGALRM)
        timer = signal.getitimer(signal.ITIMER_REAL)
        try:
            yield
        finally:
            signal.signal(signal.SIGALRM, saved)
            if timer[0] > 0:
                signal.setitimer(signal.ITIMER_REAL, *timer)


def _known_version(conn: Any) -> None:
    """Tell rq the embedded server's version (it asks with INFO, which fakeredis does not
    know, so rq would ask again on every job and fall back to 5.0.9 each time)."""
    import fakeredis

    if not isinstance(conn, fakeredis.FakeRedis):
        return
    if getattr(conn, "__rq_redis_server_version", None):
        return
    raw = conn.connection_pool.connection_kwargs.get("version") or (7,)
    parts = [int(p) for p in (raw if isinstance(raw, tuple) else str(raw).split("."))][:3]
    setattr(conn, "__rq_redis_server_version", tuple(parts + [0] * (3 - len(parts))))


def thread_connection(conn: Any) -> Any:
    """A client of its own for a thread: for the embedded fakeredis, a new client of
    the same server (each command runs under the server's lock); else ``conn``."""
    import fakeredis

    if isinstance(conn, fakeredis.FakeRedis):
        server = conn.connection_pool.connection_kwargs.get("server")
        if server is not None:
            return fakeredis.FakeRedis(server=server)
    return conn


class SteppingThreads:
    """``count`` in-process workers, each in a daemon thread with its own client of the
    embedded server, running the jobs of the session's queues until :meth:`stop`.

    Each stepping thread's aeb jobs step in a function host process that no other thread
    uses, so ``count`` recordings step at once. Without read-ahead each thread runs whole
    chains where it can (its worker looks at the db queue before the aeb queue before the
    read queue). With ``read_ahead`` > 0 one more thread, the reader, runs the db jobs
    and the read jobs, but a read only while fewer than ``read_ahead`` read recordings
    wait in the aeb queue for a host; the stepping threads then look at the aeb queue
    first, and each host has two of them (a ``host.Team``): while one thread's recording
    steps, the other hands the host the next one, which the host starts as soon as the
    first one's outputs are collected (the job's bookkeeping, saving the outputs and
    loading the next signals no longer leave the host idle). They read or compute KPIs
    only when no recording waits for them. Waiters use
    :meth:`wait`: it returns when any job ended (or after a while). A thread that fails
    outside a job (a job's own failure is the job's, recorded by rq) keeps its error in
    :attr:`error`: the session then stops waiting and says why.
    """

    def __init__(
        self,
        conn: Any,
        make_queues: Callable[[Any], dict[str, Any]],
        count: int,
        name: str,
        *,
        read_ahead: int = 0,
    ):
        self.conn = conn
        self.make_queues = make_queues  # client -> the session's queues by stage
        self.count = count
        self.read_ahead = max(0, int(read_ahead))
        self.name = name
        self.error: str | None = None
        self.jobs = 0  # jobs run by all threads; waiters watch it change
        self._cond = threading.Condition()
        self._stop = threading.Event()
        #: set when the first job ended (or a thread failed, or on stop)
        self._first = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        from pytest_adsreplay.function import host

        targets: list[tuple[str, Callable[..., None], tuple[Any, ...]]] = []
        for i in range(self.count):
            if self.read_ahead:  # two threads per host: one steps, one hands it the next
                team = host.Team()
                targets += [(f"{i + 1}", self._main, (team,)), (f"{i + 1}b", self._main, (team,))]
            else:
                targets.append((f"{i + 1}", self._main, (None,)))
        if self.read_ahead:
            targets.append(("reader", self._reader, ()))
        for i, (suffix, target, args) in enumerate(targets):
            thread = threading.Thread(
                target=target, args=(*args, i == 0), name=f"{self.name}-{suffix}", daemon=True
            )
            self.threads.append(thread)
            thread.start()

    @property
    def alive(self) -> int:
        return sum(t.is_alive() for t in self.threads)

    def poke(self) -> None:
        """New jobs are queued: idle threads look now."""
        with self._cond:
            self._cond.notify_all()

    def wait_first(self) -> None:
        """Return when the first job ended (or after ``FIRST_WAIT`` seconds)."""
        self._first.wait(FIRST_WAIT)

    def wait(self, seen: int, timeout: float) -> None:
        """Return when a job ended since the count was ``seen``, a thread failed, or
        after ``timeout`` seconds."""
        with self._cond:
            self._cond.wait_for(
                lambda: self.jobs != seen or self.error is not None, timeout=timeout
            )

    def _main(self, team: Any, first: bool) -> None:
        if team is not None:
            from pytest_adsreplay.function import host

            host.join(team)
        order = ("aeb", "db", "read") if self.read_ahead else ("db", "aeb", "read")
        self._loop(order, lambda queues: None, first)

    def _reader(self, first: bool) -> None:
        """The read-ahead thread: db jobs, and read jobs while the aeb queue holds fewer
        than ``read_ahead`` recordings (each waiting recording's signals are in memory)."""

        def looks_at(queues: dict[str, Any]) -> list[Any]:
            if queues["aeb"].count >= self.read_ahead:
                return [queues["db"]]
            return [queues["db"], queues["read"]]

        self._loop(("db", "read"), looks_at, first)

    def _loop(
        self,
        order: tuple[str, ...],
        looks_at: Callable[[dict[str, Any]], list[Any] | None],
        first: bool,
    ) -> None:
        from pytest_adsreplay.function import host

        worker = None
        try:
            queues = self.make_queues(thread_connection(self.conn))
            worker = in_process_worker(queues["db"].connection, [queues[s] for s in order])
            worker.recover_ready = True
            if not first:  # the first thread runs the first job alone
                self._first.wait(FIRST_WAIT)
            while not self._stop.is_set():
                ran = worker.run(max_jobs=1, settle=False, queues=looks_at(queues))
                if not ran:
                    worker.settle()  # idle: say so in the worker's record
                with self._cond:
                    if ran:
                        self.jobs += ran
                        self._first.set()
                        self._cond.notify_all()
                    elif not self._stop.is_set():
                        self._cond.wait(IDLE_WAIT)
        except BaseException as exc:
            name = threading.current_thread().name
            text = "".join(traceback.format_exception(exc)).strip()
            log.error("adsreplay: %s failed: %s", name, text)
            with self._cond:
                if self.error is None:
                    self.error = f"{name} failed: {type(exc).__name__}: {exc}"
                self._cond.notify_all()
            self._first.set()
        finally:
            if worker is not None:
                with contextlib.suppress(Exception):
                    worker.close()
            host.release()

    def stop(self, *, interrupt: bool = False, timeout: float = 10.0) -> list[str]:
        """Stop the threads after the job each is running; ``interrupt``: kill the
        function host processes first, so a recording being stepped ends at once (as a
        crash of that recording). The names of threads still running after ``timeout``
        seconds (a read in native code cannot be interrupted)."""
        from pytest_adsreplay.function import host

        self._stop.set()
        self._first.set()
        if interrupt:
            host.interrupt()
        self.poke()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [t.name for t in self.threads if t.is_alive()]

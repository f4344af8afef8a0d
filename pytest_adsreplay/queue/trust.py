"""Who may run what on a worker: the queue's trust boundary.

A worker on the plugin's queues runs only the three stage functions of this package,
and only for a live session, on that session's queues. Every job is checked *before*
rq imports or calls anything (:func:`job_class`'s ``func``):

- its function is ``pytest_adsreplay.queue.stages.{read,aeb,db}_stage`` (no instance, no
  callbacks, one ``ctx`` dict as its only argument);
- its id is ``<run>-<stage>-<key>`` of the ``ctx`` it carries;
- the run is a live session: the session registers ``adsreplay:session:<run>`` with a
  short TTL and refreshes it while it runs (:class:`Registration`), naming its queue
  namespace; the job must come from one of that namespace's queues.

Anything else fails as ``SecurityError`` with the reason, and nothing of it runs. Job
data are JSON, never pickles, so whoever can write to the Redis can feed the workers
bad *data* (the stages treat it as untrusted input) but never code.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

STAGE_FUNCTIONS = {
    f"pytest_adsreplay.queue.stages.{stage}_stage": stage for stage in ("read", "aeb", "db")
}
#: s a session's registration lives without a refresh (a killed session's jobs are
#: refused after at most this long).
SESSION_TTL = 120
REFRESH_INTERVAL = 10.0  # s between two refreshes of a registration
FIRST_SWEEP = 2.0  # s after the start: the first refresh (the enqueued jobs' keys exist)


#: The function specs this worker process may load (None: any the session names). The
#: session's own local workers are started pinned to its function, so a job planted on
#: their queues cannot make them import and call another ``module:attr`` (whose factory
#: runs with the job's keyword arguments: ``subprocess:Popen`` would run a command).
_allowed_functions: frozenset[str] | None = None


def allow_functions(specs: Iterable[str] | None) -> None:
    """Pin this process to ``specs`` (None or empty: no pin)."""
    global _allowed_functions
    specs = [str(s) for s in specs or ()]
    _allowed_functions = frozenset(specs) if specs else None


class SecurityError(Exception):
    """A job a worker refused to run (it is failed with this message, nothing executed)."""


def session_key(run_id: str) -> str:
    return f"adsreplay:session:{run_id}"


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def refusal(conn: Any, job: Any) -> str | None:
    """Why ``job`` must not run on a plugin worker, or None when it may."""
    name = job.func_name
    stage = STAGE_FUNCTIONS.get(name) if isinstance(name, str) else None
    if stage is None:
        return f"job function {str(name)[:120]!r} is not one of the plugin's stage functions"
    if job.instance is not None or job.kwargs or len(job.args) != 1:
        return "a stage job takes exactly one ctx dict (no instance, no keyword arguments)"
    if any(
        getattr(job, attr, None)
        for attr in ("_success_callback_name", "_failure_callback_name", "_stopped_callback_name")
    ):
        return "stage jobs have no callbacks"
    ctx = job.args[0]
    if not isinstance(ctx, dict) or not isinstance(ctx.get("run"), str):
        return "the job carries no ctx with a session run id"
    run = ctx["run"]
    pinned = _allowed_functions
    named = str(ctx.get("function"))
    if pinned is not None and (stage == "aeb" or "function" in ctx) and named not in pinned:
        return (
            f"function {named[:120]!r} is not the one this worker was "
            f"started for ({', '.join(sorted(pinned))})"
        )
    if job.id != f"{run}-{stage}-{ctx.get('key')}":
        return f"job id {job.id!r} does not match its ctx (run {run!r}, {stage} stage)"
    raw = conn.get(session_key(run))
    if raw is None:
        return f"run {run!r} is not a live session on this Redis"
    try:
        namespace = json.loads(_text(raw))["namespace"]
    except (ValueError, KeyError, TypeError):
        return f"the registration of run {run!r} is malformed"
    from pytest_adsreplay.queue.broker import queue_names

    if job.origin not in queue_names(str(namespace)).values():
        return f"queue {job.origin!r} does not belong to run {run!r}"
    return None


@functools.cache
def job_class() -> type:
    """rq's Job with the trust check in front of its function lookup.

    rq resolves ``job.func`` (an import) inside ``perform``; raising there fails the job
    through rq's own failure path (status, registries, dependents), with the reason as
    its error text. Callbacks are never resolved: the plugin's jobs have none.
    """
    from rq.job import Job

    class TrustedJob(Job):
        _trusted = False

        @property
        def func(self) -> Any:
            if not self._trusted:
                why = refusal(self.connection, self)
                if why is not None:
                    log.warning("adsreplay: refused job %s from %s: %s", self.id, self.origin, why)
                    raise SecurityError(f"the worker refused job {self.id}: {why}; nothing ran")
                self._trusted = True
            return super().func

        @property
        def success_callback(self) -> None:
            return None

        @property
        def failure_callback(self) -> None:
            return None

        @property
        def stopped_callback(self) -> None:
            return None

    return TrustedJob


class Registration:
    """A session's ``adsreplay:session:<run>`` key: set, refreshed, removed.

    On a real Redis a daemon thread refreshes it every ``REFRESH_INTERVAL`` s to
    ``SESSION_TTL`` s and, on the way, gives every key of the run that has no TTL one
    (``ttl``): so even a session killed with SIGKILL leaves nothing behind for good.
    In the embedded mode the key lives as long as the run's data (nobody else sees it).
    """

    def __init__(self, conn: Any, run_id: str, namespace: str, *, ttl: int, refresh: bool):
        self.conn = conn
        self.run_id = run_id
        self.namespace = namespace
        self.ttl = ttl
        self.refresh = refresh
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def value(self) -> str:
        return json.dumps({"namespace": self.namespace})

    def start(self) -> None:
        """Register (again) and, on a real Redis, start the refresher (once)."""
        ex = SESSION_TTL if self.refresh else self.ttl
        self.conn.set(session_key(self.run_id), self.value(), ex=ex)
        if self.refresh and self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"adsreplay-session-{self.run_id}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        wait = FIRST_SWEEP
        while not self._stop.wait(wait):
            wait = REFRESH_INTERVAL
            try:
                self.conn.set(session_key(self.run_id), self.value(), ex=SESSION_TTL)
                expire_run_keys(self.conn, self.run_id, self.ttl)
            except Exception as exc:  # a Redis hiccup: the next round tries again
                log.debug("adsreplay: session refresh failed: %s", exc)

    def stop(self, *, remove: bool) -> None:
        """Stop refreshing; ``remove`` deletes the registration (the run is over)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if remove:
            self.conn.delete(session_key(self.run_id))


def expire_run_keys(conn: Any, run_id: str, ttl: int) -> int:
    """Give every key of ``run_id`` that has no TTL one of ``ttl`` s; how many got one.

    rq keeps its queues, registries, dependents sets and started jobs without a TTL
    until the session deletes them (``broker.delete_run``); this covers a session that
    dies before it can.
    """
    keys = list(conn.scan_iter(match=f"*{run_id}*", count=1000))
    if not keys:
        return 0
    with conn.pipeline(transaction=False) as pipe:
        for k in keys:
            pipe.ttl(k)
        ttls = pipe.execute()
    bare = [k for k, left in zip(keys, ttls, strict=True) if left == -1]
    with conn.pipeline(transaction=False) as pipe:
        for k in bare:
            pipe.expire(k, ttl)
        pipe.execute()
    return len(bare)


def __getattr__(name: str) -> Any:
    """``pytest_adsreplay.queue.trust.TrustedJob`` for ``rq worker --job-class`` (built on
    first use, so importing this module does not import rq)."""
    if name == "TrustedJob":
        return job_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Redis connections (embedded fakeredis or a real server), queues, the in-process worker.

The only module that opens Redis connections for the session (every message that names
a server shows it through ``urls.mask_url``); it also knows how to remove a run's keys.
Worker processes live in ``worker``; who may run what on them, in ``trust``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from pytest_adsreplay.errors import BrokerError
from pytest_adsreplay.urls import mask_url as mask_url  # re-exported for older callers
from pytest_adsreplay.urls import needs_quoting, scrub

CONNECT_TIMEOUT = 5.0
STAGES = ("read", "aeb", "db")


def describe(conn: Any) -> str:
    """The masked URL a client was made from (``connect`` notes it), else host:port/db."""
    label = getattr(conn, "adsreplay_url", None)
    if label:
        return str(label)
    kw = getattr(getattr(conn, "connection_pool", None), "connection_kwargs", {}) or {}
    return f"{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"


def connect(url: str | None, *, worker: bool = False) -> Any:
    """A Redis client: embedded fakeredis when ``url`` is None, else a checked real server.

    ``redis://``, ``rediss://`` (TLS; certificate options as query arguments, e.g.
    ``?ssl_ca_certs=ca.pem``) and ``unix://``, password in the URL. An unreachable server
    raises BrokerError within ``CONNECT_TIMEOUT`` seconds (one PING, no retries), naming
    the URL with its password masked; its hint says how to check the URL and the server
    (``worker``: for a worker process, which has no embedded mode to fall back to).
    """
    if url is None:
        import fakeredis

        return fakeredis.FakeRedis(server=fakeredis.FakeServer())
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    masked = mask_url(url)
    try:
        probe = redis.Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=CONNECT_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            probe.ping()
        finally:
            probe.close()
        conn = redis.Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=None,
            health_check_interval=30,
        )
    except (redis.exceptions.RedisError, OSError, ValueError) as exc:
        raise BrokerError(
            f"cannot reach Redis at {masked}: {type(exc).__name__}: {scrub(str(exc), url)}",
            hint=unreachable_hint(url, worker=worker),
        ) from None
    conn.adsreplay_url = masked  # type: ignore[attr-defined]
    return conn


def unreachable_hint(url: str, *, worker: bool = False) -> str:
    """What to do when the Redis at ``url`` does not answer."""
    check = (
        "check the URL (host, port, db, password; the TLS options of a rediss:// URL) and "
        "that the server is up: redis-cli -u URL ping"
    )
    if needs_quoting(url):
        check = (
            "the password holds # ? / or @, which must be percent-encoded in a URL "
            "(%23 %3F %2F %40); " + check
        )
    if worker:
        return check + "; a worker needs the Redis server its sessions use"
    return check + ", or drop --redis-url to use the embedded fakeredis"


class StrictJobTimeoutException(BaseException):
    """A stage's timeout (``--adsreplay-timeout``), raised into the running job.

    rq raises ``JobTimeoutException``, an ``Exception``: an ``except Exception`` in the
    function under test (or around its ``step``) would swallow it and report a function
    failure. Like KeyboardInterrupt this one passes such handlers and reaches rq's
    bare ``except``, which fails the job; its name keeps the ``JobTimeoutException``
    that ``stages.describe_crash`` looks for.
    """


@functools.cache
def death_penalties() -> tuple[type, type]:
    """(SIGALRM, timer-thread) rq death penalties that raise StrictJobTimeoutException."""
    from rq.timeouts import TimerDeathPenalty, UnixSignalDeathPenalty

    class StrictSignalDeathPenalty(UnixSignalDeathPenalty):
        """SIGALRM timeout for a job in the main thread (interrupts sleeps and C calls)."""

        def __init__(self, timeout: Any, exception: Any = None, **kwargs: Any):
            super().__init__(timeout, StrictJobTimeoutException, **kwargs)  # type: ignore[no-untyped-call,unused-ignore]

        def handle_death_penalty(self, signum: Any, frame: Any) -> None:
            raise StrictJobTimeoutException(
                f"JobTimeoutException: the stage exceeded its timeout of {self._timeout} s"
            )

    class StrictTimerDeathPenalty(TimerDeathPenalty):
        """Timer-thread timeout for a job in another thread (cannot interrupt C calls)."""

        def __init__(self, timeout: Any, exception: Any = None, **kwargs: Any):
            super().__init__(timeout, StrictJobTimeoutException, **kwargs)  # type: ignore[no-untyped-call,unused-ignore]

    return StrictSignalDeathPenalty, StrictTimerDeathPenalty


def queue_names(namespace: str) -> dict[str, str]:
    """Queue name per stage under ``namespace`` (rq accepts ``[A-Za-z0-9_-]``)."""
    return {stage: f"{namespace}-{stage}" for stage in STAGES}


def make_queues(conn: Any, namespace: str) -> dict[str, Any]:
    from rq import Queue
    from rq.serializers import JSONSerializer

    from pytest_adsreplay.queue.trust import job_class

    return {
        stage: Queue(name, connection=conn, serializer=JSONSerializer, job_class=job_class())
        for stage, name in queue_names(namespace).items()
    }


def fetch_job(conn: Any, job_id: str) -> Any:
    """The rq job ``job_id``, decoded with the JSON serializer (never a pickle); raises
    rq's NoSuchJobError when it is gone. Every job the plugin reads comes from here."""
    from rq.job import Job
    from rq.serializers import JSONSerializer

    return Job.fetch(job_id, connection=conn, serializer=JSONSerializer)


def worker_order(queues: dict[str, Any]) -> list[Any]:
    """db before aeb before read: a worker finishes a recording's chain before the next."""
    return [queues[s] for s in reversed(STAGES)]


def in_process_worker(conn: Any, queues: Sequence[Any]) -> Any:
    """A SimpleWorker that leaves pytest's signal handlers and timers as it found them.

    asammdf is imported here, before the first job, so that its import (about a second
    on a busy machine) is not charged to the first read stage's timeout. scipy.signal is
    not: the KPIs need it only for a recording whose deceleration can reach the braking
    onset (``kpi.recorded_brake_time``), and its import costs as much again.

    Then the objects alive so far (mostly the modules of pytest, asammdf, pandas, rq and
    the plugin) are moved out of the garbage collector's reach (:func:`freeze_imports`).
    """
    import importlib

    from rq.serializers import JSONSerializer

    importlib.import_module("asammdf")  # warm-up only: mdf/ uses it

    from pytest_adsreplay.queue.inprocess import InProcessWorker
    from pytest_adsreplay.queue.trust import job_class

    worker = InProcessWorker(
        list(queues), connection=conn, serializer=JSONSerializer, job_class=job_class()
    )
    freeze_imports()
    return worker


@functools.cache
def freeze_imports() -> None:
    """``gc.freeze()``, once per process: the objects alive now are never scanned by the
    cyclic garbage collector again.

    After the imports of a replay a process holds some 10^5 long-lived objects (module
    dicts, classes, functions) that every full collection walks: each of the collections
    that run while recordings are stepped, and pytest's forced ones at the session's end
    (about 0.1 s each). Freezing them keeps a full collection to the objects made since.
    The objects stay alive as they would anyway; only cyclic garbage created before this
    call (little: the session has not run a test yet) is never collected. Once per
    process: a process that runs many sessions (pytester's in-process runs) would
    otherwise pin each earlier session's garbage.
    """
    import gc

    gc.freeze()


def delete_run(conn: Any, run_id: str, queues: dict[str, Any] | None = None) -> int:
    """Delete every key of run ``run_id``; returns how many keys went.

    That is every key whose name holds the run id (data hashes ``adsreplay:{run}:*``,
    jobs, results, executions, the per-run queues and their registries, local workers'
    registrations) plus the run's entries in shared fleet queues and registries
    (``queues``). Run ids are unique, so nothing of another session is touched.
    """
    keys = [k for k in conn.scan_iter(match=f"*{run_id}*", count=1000)]
    for i in range(0, len(keys), 500):
        conn.delete(*keys[i : i + 500])
    prefix = f"{run_id}-"
    with conn.pipeline(transaction=False) as pipe:
        for member in conn.sscan_iter("rq:workers", match=f"*{run_id}*"):
            pipe.srem("rq:workers", member)
        for q in (queues or {}).values():
            if run_id in q.name:
                pipe.srem("rq:queues", q.key)
                continue
            for jid in q.get_job_ids():
                if jid.startswith(prefix):
                    pipe.lrem(q.key, 0, jid)
            for reg in (
                q.started_job_registry,
                q.finished_job_registry,
                q.failed_job_registry,
                q.deferred_job_registry,
                q.ready_job_registry,
                q.scheduled_job_registry,
                q.canceled_job_registry,
            ):
                for member, _ in conn.zscan_iter(reg.key, match=f"{prefix}*"):
                    pipe.zrem(reg.key, member)
        pipe.execute()
    return len(keys)

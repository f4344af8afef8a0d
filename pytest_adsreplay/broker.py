"""Redis connections (embedded fakeredis or a real server) and the in-process worker."""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Sequence
from typing import Any

from .errors import BrokerError

CONNECT_TIMEOUT = 5.0
STAGES = ("read", "aeb", "db")


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to print)."""
    return re.sub(r"(?<=://)([^:/@]*):([^@]*)@", r"\1:***@", url)


def connect(url: str | None) -> Any:
    """A Redis client: embedded fakeredis when ``url`` is None, else a checked real server.

    An unreachable server raises BrokerError within ``CONNECT_TIMEOUT`` seconds, naming
    the URL with its password masked.
    """
    if url is None:
        import fakeredis

        return fakeredis.FakeRedis(server=fakeredis.FakeServer())
    import redis

    try:
        conn = redis.Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=None,
            health_check_interval=30,
        )
        conn.ping()
    except (redis.exceptions.RedisError, OSError, ValueError) as exc:
        raise BrokerError(
            f"cannot reach Redis at {mask_url(url)}: {mask_url(str(exc))}",
            hint="start redis-server there, check host/port/password, or drop --redis-url "
            "to use the embedded fakeredis",
        ) from None
    return conn


def queue_names(namespace: str) -> dict[str, str]:
    """Queue name per stage under ``namespace`` (rq accepts ``[A-Za-z0-9_-]``)."""
    return {stage: f"{namespace}-{stage}" for stage in STAGES}


def make_queues(conn: Any, namespace: str) -> dict[str, Any]:
    from rq import Queue
    from rq.serializers import JSONSerializer

    return {
        stage: Queue(name, connection=conn, serializer=JSONSerializer)
        for stage, name in queue_names(namespace).items()
    }


def worker_order(queues: dict[str, Any]) -> list[Any]:
    """db before aeb before read: a worker finishes a recording's chain before the next."""
    return [queues[s] for s in reversed(STAGES)]


def in_process_worker(conn: Any, queues: Sequence[Any]) -> Any:
    """A SimpleWorker that leaves pytest's signal handlers and timers as it found them."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer
    from rq.timeouts import TimerDeathPenalty

    class InProcessWorker(SimpleWorker):
        """SimpleWorker for the embedded mode: no SIGINT/SIGTERM takeover.

        In the main thread job timeouts use SIGALRM (they can interrupt sleeps and C
        calls); the previous SIGALRM handler and interval timer are restored after every
        ``work()``. Elsewhere a timer thread raises into the job instead.
        """

        def _install_signal_handlers(self) -> None:
            pass

        def work(self, *args: Any, **kwargs: Any) -> bool:
            if threading.current_thread() is not threading.main_thread():
                self.death_penalty_class = TimerDeathPenalty
                return bool(super().work(*args, **kwargs))
            saved = signal.getsignal(signal.SIGALRM)
            timer = signal.getitimer(signal.ITIMER_REAL)
            try:
                return bool(super().work(*args, **kwargs))
            finally:
                signal.signal(signal.SIGALRM, saved)
                if timer[0] > 0:
                    signal.setitimer(signal.ITIMER_REAL, *timer)

    return InProcessWorker(list(queues), connection=conn, serializer=JSONSerializer)

"""The embedded mode's worker: rq's SimpleWorker run inside the pytest process."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from rq import SimpleWorker

from pytest_adsreplay.queue.broker import death_penalties


class InProcessWorker(SimpleWorker):
    """SimpleWorker for the embedded mode: no SIGINT/SIGTERM takeover, no pubsub.

    In the main thread job timeouts use SIGALRM (they can interrupt sleeps and C
    calls); the previous SIGALRM handler and interval timer are restored after every
    ``work()``. Elsewhere a timer thread raises into the job instead.
    """

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

    def work(self, *args: Any, **kwargs: Any) -> bool:
        with self._penalties():
            return bool(super().work(*args, **kwargs))

    def run(self, max_jobs: int) -> int:
        """Run up to ``max_jobs`` jobs that are ready now; how many ran.

        The embedded session's loop: rq's own dequeue and ``execute_job`` (so every
        job is performed, recorded and its dependents enqueued exactly as by
        ``work``), but the worker is registered once per session (``close`` ends
        it) instead of once per call, and no suspension check: the private
        fakeredis server cannot be suspended.
        """
        if not self._born:
            self.bootstrap(logging_level="WARNING")
            self._born = True
        done = 0
        with self._penalties():
            while done < max_jobs:
                found = self.dequeue_job_and_maintain_ttl(None)
                if found is None:
                    break
                self.execute_job(*found)
                done += 1
        return done

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
            super().heartbeat(timeout, pipeline)

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

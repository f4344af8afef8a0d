"""A fleet worker stopped while it starts still unregisters (embedded fakeredis, in this
process: the worker's signal handlers are restored after each test)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def handlers() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@pytest.mark.timeout(60)  # a worker that missed the stop would wait for jobs forever
def test_a_stop_right_after_registration_still_unregisters(
    handlers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rq registers a worker before it installs its signal handlers: a SIGTERM in
    between used to kill the worker and leave its registration behind."""
    from rq import Worker

    from pytest_adsreplay.queue import broker
    from pytest_adsreplay.queue.worker import FleetWorker, build_worker

    conn = broker.connect(None)
    worker = build_worker(conn, "stopping", name="adsreplay-test-stopping")
    registered: list[bool] = []
    birth = FleetWorker.register_birth

    def born_then_stopped(self: Any) -> None:
        birth(self)
        registered.append(conn.exists(self.key) == 1)
        os.kill(os.getpid(), signal.SIGTERM)  # as a session stopping its workers now

    monkeypatch.setattr(FleetWorker, "register_birth", born_then_stopped)
    worker.work(burst=False, logging_level="WARNING", with_scheduler=False)
    assert registered == [True]
    assert Worker.all_keys(connection=conn) == []
    for queue in worker.queues:
        assert Worker.all_keys(connection=conn, queue=queue) == []
    # a second signal while stopping is a cold stop, as in rq
    assert signal.getsignal(signal.SIGTERM) == worker.request_force_stop


@pytest.mark.timeout(60)
def test_a_stop_while_idle_still_ends_the_wait_for_jobs(handlers: None) -> None:
    """In the loop the warm stop works as in rq: an idle worker stops at once."""
    import threading

    from pytest_adsreplay.queue import broker
    from pytest_adsreplay.queue.worker import build_worker

    conn = broker.connect(None)
    worker = build_worker(conn, "idle", name="adsreplay-test-idle")
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        worker.work(burst=False, logging_level="WARNING", with_scheduler=False)
    finally:
        timer.cancel()
    assert worker._looping


@pytest.mark.timeout(60)
def test_the_pubsub_thread_ends_with_the_unsubscribe(monkeypatch: pytest.MonkeyPatch) -> None:
    """rq 3 sends UNSUBSCRIBE before it tells its pubsub thread to stop: a thread that
    handles the reply first then waits for a new subscription, and the worker's exit
    waited a second for rq's join to give up. A slow stop() makes that order lose the
    race every time; the worker's own order (stop, then UNSUBSCRIBE, whose reply wakes
    the thread to end) does not depend on it."""
    import time

    from redis.client import PubSubWorkerThread

    from pytest_adsreplay.queue import broker
    from pytest_adsreplay.queue.worker import build_worker

    conn = broker.connect(None)
    worker = build_worker(conn, "unsubscribing", name="adsreplay-test-unsubscribing")
    worker.subscribe()
    thread = worker.pubsub_thread
    stop = PubSubWorkerThread.stop

    def slow_stop(self: Any) -> None:
        time.sleep(0.2)  # the reply of an UNSUBSCRIBE sent before has been handled
        stop(self)

    monkeypatch.setattr(PubSubWorkerThread, "stop", slow_stop)
    worker.unsubscribe()
    # a busy machine may need longer than rq's 1 s join; in the old order the thread
    # waits 60 s for a subscription that never comes
    thread.join(30)
    assert not thread.is_alive()

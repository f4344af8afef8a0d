"""Fixtures of the integration tests: Redis servers, test projects, worker modes.

Real-Redis tests use ``ADSREPLAY_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``) and
skip, saying how to enable them, when nothing answers there. Tests that kill or restart
Redis get a private ``redis-server`` on a free port instead. Each test keeps to its own
queues: sessions with local workers use queues named after their run id, tests with
their own ``--namespace`` use ``unique()`` names, and tests that run external workers on
the fleet queues get ``fleet_redis``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from integration_kit import (
    ENABLE_HINT,
    MARK_PATIENCE,
    Mode,
    PrivateRedis,
    Project,
    fleet_lease,
    reachable,
    reap_spawned,
    redis_url,
    start_worker,
    stop,
    write_project,
)

from pytest_adsreplay.queue.broker import mask_url

MODES = ("fakeredis", "redis-1", "redis-N", "external")
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ``timeout`` marks of the integration tests are their times on an idle machine:
    they are given ``MARK_PATIENCE`` times as long before pytest-timeout calls them hung
    (the waits inside a test fail first, with a message, when something really hangs)."""
    for item in items:
        mark = item.get_closest_marker("timeout")
        if mark is None or not mark.args or HERE not in item.path.parents:
            continue
        item.add_marker(pytest.mark.timeout(mark.args[0] * MARK_PATIENCE), append=False)


@pytest.fixture(autouse=True)
def no_leftover_sessions() -> Iterator[None]:
    """After each test, inner sessions it left running are killed (their output printed,
    shown with the test's failure), so they cannot disturb the next test."""
    yield
    for leftover in reap_spawned():
        print(f"killed at the end of the test, still running: {leftover}")


@pytest.fixture(scope="session")
def real_redis() -> str:
    """URL of the shared real Redis (skips when none answers)."""
    url = redis_url()
    why = reachable(url, timeout=5.0)
    if why is not None:
        pytest.skip(f"no Redis at {mask_url(url)} ({why}); {ENABLE_HINT}")
    return url


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator[Callable[..., PrivateRedis]]:
    """Starts throw-away redis-servers on free ports (``password=`` optional); all are
    killed at the end of the test."""
    if shutil.which("redis-server") is None:
        pytest.skip(
            "redis-server is not installed: this test kills or restarts a private "
            "server of its own (apt-get install redis-server)"
        )
    servers: list[PrivateRedis] = []

    def make(password: str | None = None) -> PrivateRedis:
        server = PrivateRedis(tmp_path / f"redis{len(servers)}", password)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.kill()


@pytest.fixture
def private_redis(redis_factory: Callable[..., PrivateRedis]) -> PrivateRedis:
    """A throw-away redis-server on a free port (killed at the end of the test)."""
    return redis_factory()


#: ``private`` (default when redis-server is installed) or ``shared``: where ``fleet_redis``
#: puts the fleet queues.
FLEET_ENV = "ADSREPLAY_TEST_FLEET"


@pytest.fixture
def fleet_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a Redis whose fleet queues (``adsreplay-read/aeb/db``: the queues of
    ``adsreplay worker`` and of ``--adsreplay-workers 0``) only this test uses.

    A private redis-server of the test when one is installed; else (or with
    ``ADSREPLAY_TEST_FLEET=shared``) the shared Redis, where such tests take turns under
    a lease kept in that Redis, so tests of concurrent sessions take turns too.
    """
    where = os.environ.get(FLEET_ENV, "").strip() or (
        "private" if shutil.which("redis-server") else "shared"
    )
    if where == "private":
        server = PrivateRedis(tmp_path / "fleet-redis").start()
        try:
            yield server.url
        finally:
            server.kill()
        return
    url = request.getfixturevalue("real_redis")
    with fleet_lease(url):
        yield url


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A test project: 2 closing-target recordings, 1 free road, function ``aebfn:Ttc``."""
    return write_project(tmp_path / "proj")


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, tmp_path: Path, project: Project) -> Iterator[Mode]:
    """fakeredis | real Redis + 1 local worker | + 2 local workers | 2 external workers.

    External workers run ``adsreplay worker`` in another directory, with only the
    project's folder (the function's module) on PYTHONPATH, on ``fleet_redis``.
    """
    name = request.param
    if name == "fakeredis":
        yield Mode(name, None, [])
        return
    if name != "external":
        url = request.getfixturevalue("real_redis")
        n = "1" if name == "redis-1" else "2"
        yield Mode(name, url, ["--redis-url", url, "--adsreplay-workers", n])
        return
    url = request.getfixturevalue("fleet_redis")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    workers = [start_worker(url, elsewhere, project.root) for _ in range(2)]
    try:
        yield Mode(name, url, ["--redis-url", url, "--adsreplay-workers", "0"], workers)
    finally:
        for w in workers:
            stop(w)

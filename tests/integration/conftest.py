"""Fixtures of the integration tests: Redis servers, test projects, worker modes.

Real-Redis tests use ``ADSREPLAY_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``) and
skip, saying how to enable them, when nothing answers there. Tests that kill or restart
Redis get a private ``redis-server`` on a free port instead.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from integration_kit import (
    ENABLE_HINT,
    PrivateRedis,
    Project,
    reachable,
    redis_url,
    start_worker,
    stop,
    write_project,
)

from pytest_adsreplay.queue.broker import mask_url

MODES = ("fakeredis", "redis-1", "redis-N", "external")


@pytest.fixture(scope="session")
def real_redis() -> str:
    """URL of the shared real Redis (skips when none answers)."""
    url = redis_url()
    why = reachable(url)
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


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A test project: 2 closing-target recordings, 1 free road, function ``aebfn:Ttc``."""
    return write_project(tmp_path / "proj")


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


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, tmp_path: Path, project: Project) -> Iterator[Mode]:
    """fakeredis | real Redis + 1 local worker | + 2 local workers | 2 external workers.

    External workers run ``adsreplay worker`` in another directory, with only the
    project's folder (the function's module) on PYTHONPATH.
    """
    name = request.param
    if name == "fakeredis":
        yield Mode(name, None, [])
        return
    url = request.getfixturevalue("real_redis")
    if name != "external":
        n = "1" if name == "redis-1" else "2"
        yield Mode(name, url, ["--redis-url", url, "--adsreplay-workers", n])
        return
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    workers = [start_worker(url, elsewhere, project.root) for _ in range(2)]
    try:
        yield Mode(name, url, ["--redis-url", url, "--adsreplay-workers", "0"], workers)
    finally:
        for w in workers:
            stop(w)

"""A session's local workers load the session's function only: a job planted on their
queues (with a registration forged for it) cannot name another ``module:attr``, whose
factory would run with the job's keyword arguments (``subprocess:Popen`` runs a command)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest

from pytest_adsreplay.queue import trust, worker
from pytest_adsreplay.queue.broker import queue_names


@pytest.fixture(autouse=True)
def unpinned() -> Iterator[None]:
    trust.allow_functions(None)
    yield
    trust.allow_functions(None)


def _planted(conn: Any, function: str) -> Any:
    """An aeb job of a run whose registration anyone with write access can set."""
    conn.set(trust.session_key("r1"), '{"namespace": "ns"}')
    ctx = {
        "run": "r1",
        "key": "k",
        "function": function,
        "params": {"args": "touch /tmp/pwned", "shell": True},
    }
    return SimpleNamespace(
        func_name="pytest_adsreplay.queue.stages.aeb_stage",
        instance=None,
        kwargs={},
        args=[ctx],
        id="r1-aeb-k",
        origin=queue_names("ns")["aeb"],
    )


def test_an_unpinned_worker_takes_any_function_the_job_names() -> None:
    conn = fakeredis.FakeRedis()
    assert trust.refusal(conn, _planted(conn, "subprocess:Popen")) is None


def test_a_pinned_worker_refuses_another_function_before_loading_it() -> None:
    conn = fakeredis.FakeRedis()
    trust.allow_functions(["aebfn:Ttc"])
    why = trust.refusal(conn, _planted(conn, "subprocess:Popen"))
    assert why is not None
    assert "'subprocess:Popen' is not the one this worker was started for (aebfn:Ttc)" in why
    assert trust.refusal(conn, _planted(conn, "aebfn:Ttc")) is None
    job = _planted(conn, "aebfn:Ttc")
    del job.args[0]["function"]
    assert trust.refusal(conn, job) is not None


def test_local_workers_are_started_pinned_to_the_session_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(worker, "run_worker", lambda url, **kw: seen.update(kw) or 0)
    assert worker.main(["--namespace", "ns", "--function", "aebfn:Ttc"]) == 0
    assert seen["allowed_functions"] == ["aebfn:Ttc"]
    started: list[list[str]] = []

    class Proc:
        pid = 1

        def __init__(self, cmd: list[str], **kw: Any):
            started.append(cmd)

    monkeypatch.setattr("pytest_adsreplay.queue.worker.subprocess.Popen", Proc)
    monkeypatch.setattr("pytest_adsreplay.queue.worker.atexit.register", lambda *a, **k: None)
    local = worker.LocalWorkers("redis://x", "ns", 1, prefix="p", function="aebfn:Ttc")
    local.start()
    cmd = started[0]
    assert cmd[cmd.index("--function") + 1] == "aebfn:Ttc"

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
    job = _planted(conn, "subprocess:Popen")
    why = trust.function_refusal(job.args[0])
    assert why is not None
    assert "'subprocess:Popen' is not one this worker was started for (aebfn:Ttc)" in why
    assert "--function subprocess:Popen" in why
    assert trust.function_refusal(_planted(conn, "aebfn:Ttc").args[0]) is None
    job = _planted(conn, "aebfn:Ttc")
    del job.args[0]["function"]
    assert trust.function_refusal(job.args[0]) is not None


def test_a_worker_started_without_function_refuses_every_function() -> None:
    conn = fakeredis.FakeRedis()
    trust.allow_functions([], any_function=False)
    for spec in ("subprocess:Popen", "aebfn:Ttc"):
        why = trust.function_refusal(_planted(conn, spec).args[0])
        assert why is not None and "started without --function" in why
        assert "--trust-any-function" in why
    trust.allow_functions([], any_function=True)
    assert trust.function_refusal(_planted(conn, "aebfn:Ttc").args[0]) is None


def test_file_specs_are_allowed_by_path_or_sha256(tmp_path: Any) -> None:
    conn = fakeredis.FakeRedis()
    lib = tmp_path / "libaeb.so"
    lib.write_bytes(b"\x7fELF not really")
    other = tmp_path / "libother.so"
    other.write_bytes(b"\x7fELF another")
    trust.allow_functions([str(lib)])
    assert trust.function_refusal(_planted(conn, str(lib)).args[0]) is None
    assert trust.function_refusal(_planted(conn, str(other)).args[0]) is not None
    assert trust.may_load_path(str(lib), None)
    assert not trust.may_load_path(str(other), None)
    import hashlib

    sha = hashlib.sha256(lib.read_bytes()).hexdigest()
    trust.allow_functions([f"sha256:{sha}"])
    shipped = _planted(conn, "/nowhere/libaeb.so").args[0]
    shipped["function_file"] = {"sha256": sha, "name": "libaeb.so", "size": 16}
    assert trust.function_refusal(shipped) is None
    shipped["function_file"] = {"sha256": "0" * 64, "name": "libaeb.so", "size": 16}
    assert trust.function_refusal(shipped) is not None
    assert not trust.may_load_path(str(other), None)


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


def test_a_plain_rq_worker_is_pinned_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = fakeredis.FakeRedis()
    monkeypatch.setattr(trust, "_configured", False)
    monkeypatch.setenv(trust.FUNCTIONS_ENV, "aebfn:Ttc, aebfn:Cautious")
    why = trust.function_refusal(_planted(conn, "subprocess:Popen").args[0])
    assert why is not None and trust.FUNCTIONS_ENV in why
    assert trust.function_refusal(_planted(conn, "aebfn:Cautious").args[0]) is None


def test_a_file_the_job_names_without_sha256_is_not_loaded(tmp_path: Any) -> None:
    from pytest_adsreplay.errors import FunctionLoadError
    from pytest_adsreplay.function import shipping

    allowed, other = tmp_path / "libaeb.so", tmp_path / "libevil.so"
    allowed.write_bytes(b"a")
    other.write_bytes(b"b")
    trust.allow_functions([str(allowed)])
    assert shipping.localize({"function": str(allowed)}, None)["function"] == str(allowed)
    with pytest.raises(FunctionLoadError, match="without its sha256"):
        shipping.localize({"function": str(other)}, None)
    ref = {"sha256": "0" * 64, "name": "libevil.so", "size": 1}
    with pytest.raises(FunctionLoadError, match="is not at"):
        shipping.localize({"function": str(other), "function_file": ref}, None)

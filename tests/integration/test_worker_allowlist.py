"""An external ``adsreplay worker`` runs only the functions under test it was started
for (``--function``): a job planted on its queues that names another ``module:attr``
(``subprocess:Popen`` with ``shell`` keyword arguments) is refused before anything is
imported, with an error naming the worker, its host, the function and the flag to add.
A job without the fingerprint of the session's build is never run unchecked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from integration_kit import project_importable, subprocess_env, unique, write_project

from pytest_adsreplay.queue import broker


def _session(
    url: str, namespace: str, recs: list[Path], function: str, params: dict[str, Any], db: str
) -> Any:
    """A live session on real Redis whose chains name ``function`` with ``params``."""
    from pytest_adsreplay.queue.pipeline import Chain, ReplaySession, SessionConfig, new_run_id
    from pytest_adsreplay.recordings import discover

    cfg = SessionConfig(
        run_id=new_run_id(),
        function=function,
        params={},
        channel_map=None,
        cycle_time=0.01,
        db=db,
        timeout=60,
        namespace=namespace,
        settings={"brake_threshold": 1.0, "actuator_delay": 0.2, "brake_jerk": 40.0},
    )
    session = ReplaySession(cfg, broker.connect(url), embedded=False)
    with project_importable(recs):
        session.enqueue([Chain(recording=r, params=dict(params)) for r in discover(recs)])
    return session


def _burst(url: str, namespace: str, cwd: Path, pythonpath: Path, *flags: str) -> str:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_adsreplay.cli",
            "worker",
            "--redis-url",
            url,
            "--namespace",
            namespace,
            "--burst",
            *flags,
        ],
        cwd=cwd,
        env=subprocess_env(PYTHONPATH=str(pythonpath)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def _errors(session: Any) -> dict[str, str]:
    return {c.recording.id: session.outcome(c).error or "" for c in session.unfinished()}


def _run(
    url: str,
    tmp_path: Path,
    function: str,
    params: dict[str, Any],
    *flags: str,
    strip_fingerprint: bool = False,
) -> tuple[dict[str, Any], str]:
    project = write_project(tmp_path / unique("proj"), closing=(40,), free=())
    recs = sorted(project.recordings.glob("*.mf4"))
    ns = unique("adsreplay-allow")
    session = _session(url, ns, recs, function, params, str(tmp_path / f"{ns}.db"))
    try:
        if strip_fingerprint:
            _strip_fingerprints(session)
        out = _burst(url, ns, tmp_path, project.root, *flags)
        outcomes = {c.recording.id: session.outcome(c) for c in session.unfinished()}
    finally:
        session.cleanup()
        for q in broker.make_queues(session.conn, ns).values():
            q.delete(delete_jobs=True)
    return outcomes, out


def _strip_fingerprints(session: Any) -> None:
    """Remove ``function_fingerprint`` from every aeb job (as anyone who can write could)."""
    from rq.serializers import JSONSerializer

    for chain in session.unfinished():
        job = broker.fetch_job(session.conn, f"{session.cfg.run_id}-aeb-{chain.key}")
        ctx = job.args[0]
        ctx.pop("function_fingerprint", None)
        job.args = [ctx]
        job.serializer = JSONSerializer
        job.save()


@pytest.mark.timeout(180)
def test_a_worker_without_function_refuses_a_planted_popen(real_redis: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    params = {"args": f"touch {marker}", "shell": True}
    outcomes, out = _run(real_redis, tmp_path, "subprocess:Popen", params)
    assert not marker.exists(), "the planted function ran"
    (outcome,) = outcomes.values()
    assert outcome.status == "error", outcome
    text = outcome.error or ""
    assert "refused the function 'subprocess:Popen'" in text, text
    assert "started without --function" in text and "on host" in text, text
    assert "--function subprocess:Popen" in text and "--trust-any-function" in text, text
    assert "refuses every recording" in out


@pytest.mark.timeout(180)
def test_a_pinned_worker_runs_its_function_and_refuses_another(
    real_redis: str, tmp_path: Path
) -> None:
    ok, _ = _run(real_redis, tmp_path, "aebfn:Ttc", {}, "--function", "aebfn:Ttc")
    assert {o.status for o in ok.values()} == {"ok"}, [o.error for o in ok.values()]
    marker = tmp_path / "pwned"
    params = {"args": f"touch {marker}", "shell": True}
    refused, _ = _run(real_redis, tmp_path, "subprocess:Popen", params, "--function", "aebfn:Ttc")
    assert not marker.exists(), "the planted function ran"
    (outcome,) = refused.values()
    assert outcome.status == "error", outcome
    assert "is not one this worker was started for (aebfn:Ttc)" in (outcome.error or "")


@pytest.mark.timeout(180)
def test_an_aeb_job_without_fingerprint_is_refused(real_redis: str, tmp_path: Path) -> None:
    outcomes, _ = _run(
        real_redis, tmp_path, "aebfn:Ttc", {}, "--function", "aebfn:Ttc", strip_fingerprint=True
    )
    (outcome,) = outcomes.values()
    assert outcome.status == "error", outcome
    assert "carries no fingerprint" in (outcome.error or ""), outcome.error

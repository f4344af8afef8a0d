"""Nothing read from Redis is ever unpickled: a shared Redis cannot run code on workers.

A crafted pickle whose ``__reduce__`` would create a marker file is planted where a run's
jobs and data live (job ``data`` and ``meta`` fields, a result stream, an arrays hash);
the workers and the session read them, the marker never appears, and the recordings
end as clean errors. A static check keeps pickle out of the package and keeps every rq
object that deserializes on the JSON serializer.
"""

from __future__ import annotations

import ast
import base64
import pickle
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from integration_kit import enqueue_chains, subprocess_env, unique, write_project

import pytest_adsreplay
from pytest_adsreplay.queue import broker, stages
from pytest_adsreplay.queue.pipeline import Chain

PACKAGE = Path(pytest_adsreplay.__file__).parent


class Boom:
    """Unpickling this creates ``marker`` (what an attacker would do with os.system)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Path]]:
        return (Path.touch, (self.marker,))


def _payload(marker: Path) -> bytes:
    data = pickle.dumps(Boom(marker))
    return data if len(data) % 8 else data + b"."  # never a whole number of float64s


def test_the_payload_is_live(tmp_path: Path) -> None:
    """Control: unpickling the payload really creates the marker."""
    marker = tmp_path / "control"
    code = "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"
    subprocess.run([sys.executable, "-c", code], input=_payload(marker), check=True)
    assert marker.exists()


@pytest.mark.timeout(120)
def test_planted_pickles_are_not_executed(real_redis: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = _payload(marker)
    project = write_project(tmp_path / "proj", closing=(40, 45, 50), free=(60,))
    recs = sorted(project.recordings.glob("*.mf4"))
    namespace = unique("adsreplay-sec")
    session = enqueue_chains(real_redis, namespace, recs, "aebfn:Ttc", str(tmp_path / "r.db"))
    conn, run = session.conn, session.cfg.run_id
    chains = {c.recording.id: c for c in session.unfinished()}
    data_job, result_job, arrays_job = (chains[f"closing_{v}kph.mf4"] for v in (40, 45, 50))
    clean = chains["free_60kph.mf4"]

    def jid(chain: Chain, stage: str) -> str:
        return stages.job_id({"run": run, "key": chain.key}, stage)

    try:
        # 1. job data (what the worker imports and calls) and job meta, before any worker ran
        conn.hset(f"rq:job:{jid(data_job, 'read')}", "data", zlib.compress(payload))
        conn.hset(f"rq:job:{jid(data_job, 'aeb')}", "meta", payload)
        # read stage of every chain, by the plugin's own in-process worker
        assert broker.in_process_worker(conn, [session.queues["read"]]).work(burst=True)
        assert not marker.exists()
        # 2. the read job's result stream (the aeb stage reads its parent's result)
        stream = f"rq:results:{jid(result_job, 'read')}"
        conn.xadd(
            stream,
            {"type": 1, "worker_name": "evil", "return_value": base64.b64encode(payload).decode()},
        )
        # 3. the arrays hash of the signals (raw float64 buffers)
        key = stages.data_key({"run": run, "key": arrays_job.key}, "signals")
        conn.hset(key, "target_distance", payload)
        # aeb and db stages on an external worker process
        env = subprocess_env(PYTHONPATH=str(project.root))
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pytest_adsreplay.cli",
                "worker",
                "--redis-url",
                real_redis,
                "--namespace",
                namespace,
                "--burst",
                "--function",
                "aebfn:Ttc",
            ],
            cwd=tmp_path,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = worker.communicate(timeout=90)
        assert worker.returncode == 0, out
        outcomes = {rid: session.outcome(c) for rid, c in chains.items()}
        # 4. the session reading a planted result of a finished job
        conn.xadd(
            f"rq:results:{jid(clean, 'db')}",
            {"type": 1, "return_value": base64.b64encode(payload).decode()},
        )
        planted = stages.parent_result(conn, {"run": run, "key": clean.key}, "db")
        assert planted["ok"] is False and planted["outcome"] == "error"
        assert "is not valid JSON" in planted["error"]
        assert not marker.exists()
    finally:
        session.cleanup()
        for k in conn.scan_iter(match=f"*{namespace}*"):
            conn.delete(k)
        conn.srem("rq:queues", *(q.key for q in session.queues.values()))
    assert not marker.exists(), "a planted pickle was executed"
    bad = {rid: o for rid, o in outcomes.items() if rid != clean.recording.id}
    assert {o.status for o in bad.values()} == {"error"}, outcomes
    assert "DeserializationError" in (bad[data_job.recording.id].error or "")
    assert "read stage" in (bad[data_job.recording.id].error or "")
    # the result is rejected by JSON decoding (the stages do not catch that yet: the
    # recording ends as a db stage crash instead of a tidy message, but nothing runs)
    assert "is not valid JSON" in (bad[result_job.recording.id].error or "")
    assert "buffer size must be a multiple" in (bad[arrays_job.recording.id].error or "")
    assert outcomes[clean.recording.id].status == "ok"


# -- static guards -----------------------------------------------------------------------
FORBIDDEN_MODULES = {
    "pickle",
    "cPickle",
    "dill",
    "cloudpickle",
    "jsonpickle",
    "marshal",
    "shelve",
    "joblib",
}
#: rq calls that deserialize what they read (or build objects that do): they must be given
#: the JSON serializer, or a ``queue=`` whose serializer they inherit.
DESERIALIZING = {
    "fetch",
    "fetch_many",
    "Queue",
    "SimpleWorker",
    "Worker",
    "FleetWorker",
    "InProcessWorker",
    "StartedJobRegistry",
    "FailedJobRegistry",
    "FinishedJobRegistry",
    "DeferredJobRegistry",
    "Result",
    "fetch_latest",
    "all",
}


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_no_pickle_anywhere(path: Path) -> None:
    """No pickle-family module, no ``allow_pickle=True``, ``np.load`` only with
    ``allow_pickle=False``, no ``yaml.load``/``read_pickle``/``torch.load``."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module.split(".")[0]]
        bad = FORBIDDEN_MODULES.intersection(names)
        assert not bad, f"{where} imports {bad}"
        if not isinstance(node, ast.Call):
            continue
        for kw in node.keywords:
            if kw.arg == "allow_pickle":
                assert isinstance(kw.value, ast.Constant) and kw.value.value is False, where
        func = node.func
        if not isinstance(func, ast.Attribute):
            continue
        owner = ast.unparse(func.value)
        assert func.attr not in ("read_pickle", "unsafe_load", "full_load"), where
        if owner in ("yaml", "torch", "joblib"):
            assert func.attr not in ("load", "loads"), f"{where} {owner}.{func.attr}"
        if owner in ("np", "numpy") and func.attr == "load":
            kwargs = {k.arg for k in node.keywords}
            assert "allow_pickle" in kwargs, f"{where} np.load without allow_pickle=False"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_rq_objects_use_the_json_serializer(path: Path) -> None:
    text = path.read_text()
    if "rq" not in text:
        return
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        owner = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
        if name not in DESERIALIZING or owner in ("json", "tomllib", "self.conn", "conn"):
            continue
        if name == "all" and owner not in ("Worker", "Job", "Result"):
            continue
        kwargs = {k.arg for k in node.keywords}
        assert kwargs & {"serializer", "queue"}, (
            f"{path.name}:{node.lineno}: {ast.unparse(node)} defaults to rq's pickle serializer"
        )


def test_workers_and_queues_are_json(real_redis: str) -> None:
    from rq.serializers import JSONSerializer

    from pytest_adsreplay.queue.worker import build_worker

    conn = broker.connect(real_redis)
    worker = build_worker(conn, unique("adsreplay-sec"))
    assert worker.serializer is JSONSerializer
    assert {q.serializer for q in worker.queues} == {JSONSerializer}


def test_worker_never_prints_the_password(tmp_path: Path) -> None:
    """``adsreplay worker`` on an unreachable password URL: masked, and exit status 2."""
    url = "redis://:Sup3r-s3cret@127.0.0.1:1/0"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_adsreplay.cli", "worker", "--redis-url", url],
        cwd=tmp_path,
        env=subprocess_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=60,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 2, out
    assert "redis://:***@127.0.0.1:1/0" in out
    assert "Sup3r-s3cret" not in out


# -- masking every credential field ------------------------------------------------------
HASH_PASSWORD = "Pa55#w0rd"
PIECES = ("Pa55", "w0rd", "pa55")


def _shows_no_secret(text: str) -> None:
    for piece in PIECES:
        assert piece not in text, f"{piece!r} shown in:\n{text}"


@pytest.mark.timeout(120)
def test_header_and_runs_broker_mask_a_password_with_a_hash(redis_factory, tmp_path: Path) -> None:
    """A password holding ``#`` (percent-encoded in the URL, as it must be) is masked in
    the session header, in ``runs.broker`` and in the results line."""
    from integration_kit import result_rows, run_id_of, run_pytest

    from pytest_adsreplay.results.store import open_store

    server = redis_factory()
    server.connection().config_set("requirepass", HASH_PASSWORD)
    url = f"redis://:Pa55%23w0rd@127.0.0.1:{server.port}/0"
    project = write_project(tmp_path / "proj", closing=(40,), free=())
    result = run_pytest(project.root, "--redis-url", url, "--adsreplay-workers", "1")
    out = result.stdout.str()
    assert result.ret == 0, out
    assert f"broker redis redis://:***@127.0.0.1:{server.port}/0" in out
    _shows_no_secret(out)
    run_id = run_id_of(result)
    assert result_rows(project, run_id)
    run = open_store(str(project.root / "results.sqlite")).run(run_id)
    assert run is not None and "redis://:***@" in str(run["broker"])
    _shows_no_secret(str(run))


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "url",
    [
        "redis://:Pa55#w0rd@127.0.0.1:1/0",
        "redis://:Pa55%23w0rd@127.0.0.1:1/0",
        "unix://:pa55?w0rd@/nonexistent/redis.sock",
        "redis://127.0.0.1:1/0?password=Pa55#w0rd",
    ],
)
def test_exit_4_message_masks_every_password_form(url: str, tmp_path: Path) -> None:
    from integration_kit import run_pytest

    project = write_project(tmp_path / "proj", closing=(40,), free=())
    result = run_pytest(project.root, "--redis-url", url)
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == 4, out
    assert "cannot reach Redis at" in out
    _shows_no_secret(out)


@pytest.mark.timeout(60)
def test_postgres_sslpassword_is_masked(tmp_path: Path) -> None:
    """An unreachable PostgreSQL results database: exit 4, no ``sslpassword`` shown."""
    pytest.importorskip("psycopg")
    from integration_kit import run_pytest

    project = write_project(tmp_path / "proj", closing=(40,), free=())
    db = "postgresql://ci:Pa55w0rd@127.0.0.1:1/aeb?sslpassword=pa55-ssl-key&sslmode=disable"
    result = run_pytest(project.root, "--adsreplay-db", db)
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == 4, out
    assert "postgresql://ci:***@127.0.0.1:1/aeb?sslpassword=***" in out
    _shows_no_secret(out)

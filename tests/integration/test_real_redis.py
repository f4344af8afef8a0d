"""``--redis-url``: reachable or a usage error within 5 s, TLS, passwords never printed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from integration_kit import (
    assert_within,
    collect,
    free_port,
    params,
    processes_with,
    result_rows,
    run_id_of,
    run_pytest,
    spawn_pytest,
    subprocess_env,
    wait_for,
    write_project,
)

from pytest_adsreplay.errors import BrokerError
from pytest_adsreplay.queue.broker import connect
from pytest_adsreplay.urls import mask_url

SECRET = "Sup3r-s3cret"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("rediss://user:pw@h:6380/1", "rediss://user:***@h:6380/1"),
        ("redis://user:p@ss/w:rd@h/2", "redis://user:***@h/2"),
        ("redis://onlysecret@h", "redis://***@h"),
        ("redis://h:6379/0?password=pw&db=1", "redis://h:6379/0?password=***&db=1"),
        ("unix:///run/redis.sock?db=0&password=pw", "unix:///run/redis.sock?db=0&password=***"),
        ("redis://127.0.0.1:6379/15", "redis://127.0.0.1:6379/15"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


@pytest.mark.timeout(30)
@pytest.mark.parametrize("password", [None, SECRET])
def test_unreachable_redis_is_a_usage_error(password: str | None, tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj", closing=(50,), free=())
    auth = f":{password}@" if password else ""
    url = f"redis://{auth}127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    result = run_pytest(project.root, "--redis-url", url)
    assert result.ret == 4  # pytest.ExitCode.USAGE_ERROR
    # the 5 s connect bound, plus the inner session's start-up on this machine now
    assert_within(time.monotonic() - started, fixed=5, steps=3, what="the usage error")
    result.stdout.fnmatch_lines([f"*cannot reach Redis at {mask_url(url)}*Connection*"])
    assert SECRET not in result.stdout.str()


def test_connect_is_bounded_for_a_silent_server() -> None:
    """A server that accepts and never answers: BrokerError after the 5 s bound."""
    import socket

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        url = f"redis://:{SECRET}@127.0.0.1:{srv.getsockname()[1]}/0"
        started = time.monotonic()
        with pytest.raises(BrokerError) as err:
            connect(url)
    elapsed = time.monotonic() - started
    assert elapsed > 4.5  # it waited for the server before giving up
    assert_within(elapsed, fixed=5, steps=3, what="giving up on a silent server")
    assert "redis://:***@127.0.0.1:" in str(err.value) and SECRET not in str(err.value)


@pytest.mark.timeout(60)
def test_password_protected_redis(redis_factory, tmp_path: Path) -> None:
    server = redis_factory(password=SECRET)
    project = write_project(tmp_path / "proj")
    result = run_pytest(project.root, "--redis-url", server.url, "--adsreplay-workers", "2")
    result.assert_outcomes(passed=6)
    out = result.stdout.str()
    assert f"broker redis redis://:***@127.0.0.1:{server.port}/0" in out
    assert SECRET not in out
    assert {r.status for r in result_rows(project, run_id_of(result)).values()} == {"ok"}


def _tls_redis(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """redis-server with TLS only (self-signed certificate) and a password."""
    if not (shutil.which("redis-server") and shutil.which("openssl")):
        pytest.skip("needs redis-server and openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            key,
            "-out",
            cert,
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            cert,
            "--tls-key-file",
            key,
            "--tls-ca-cert-file",
            cert,
            "--tls-auth-clients",
            "no",
            "--requirepass",
            SECRET,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            tmp_path,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"rediss://:{SECRET}@127.0.0.1:{port}/0?ssl_ca_certs={cert}"
    deadline = time.monotonic() + 10
    while True:
        try:
            connect(url).close()
            return proc, url
        except BrokerError:
            if proc.poll() is not None:
                pytest.skip("this redis-server has no TLS support")
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.1)


@pytest.mark.timeout(90)
def test_rediss_tls_with_password(tmp_path: Path) -> None:
    proc, url = _tls_redis(tmp_path)
    try:
        project = write_project(tmp_path / "proj")
        result = run_pytest(project.root, "--redis-url", url, "--adsreplay-workers", "2")
        result.assert_outcomes(passed=6)
        out = result.stdout.str()
        assert "broker redis rediss://:***@127.0.0.1:" in out
        assert SECRET not in out
        plain = url.replace("rediss://", "redis://").split("?")[0]
        with pytest.raises(BrokerError, match=r"cannot reach Redis at redis://:\*\*\*@"):
            connect(plain)  # the TLS port does not speak plain Redis
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.timeout(60)
def test_local_workers_hide_the_url_from_ps(redis_factory, tmp_path: Path) -> None:
    """Local workers get the URL through their environment: no process shows the
    password on its command line while a session runs."""
    server = redis_factory(password=SECRET)
    project = write_project(tmp_path / "proj")
    marks = tmp_path / "started"
    marks.mkdir()
    proc = spawn_pytest(
        project.root,
        "--redis-url",
        server.url,
        "--adsreplay-workers",
        "2",
        *params(delay=1.0, started_dir=str(marks)),
    )
    started = time.monotonic()
    wait_for(lambda: list(marks.iterdir()), 30)
    workers = [p for p in processes_with(str(project.root)) if p != proc.pid]
    assert workers
    for pid in workers:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert SECRET.encode() not in cmdline
        assert b"pytest_adsreplay.queue.worker" in cmdline or b"function.host" in cmdline
        if b"function.host" in cmdline:  # the function's host does not get the URL at all
            assert SECRET.encode() not in Path(f"/proc/{pid}/environ").read_bytes()
    collect(proc, started).assert_outcomes(passed=6)


def test_worker_cli_environment_url(tmp_path: Path) -> None:
    """``python -m pytest_adsreplay.queue.worker`` reads ADSREPLAY_REDIS_URL (masked on error)."""
    url = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    out = subprocess.run(
        [sys.executable, "-m", "pytest_adsreplay.queue.worker", "--namespace", "x"],
        env=subprocess_env(ADSREPLAY_REDIS_URL=url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    assert mask_url(url) in out.stderr and SECRET not in out.stderr + out.stdout
    assert "fakeredis" not in out.stderr and "redis-cli -u URL ping" in out.stderr


def _bare_keys(url: str, run_id: str) -> dict[str, str]:
    """Keys of run ``run_id`` that have no TTL (key -> type), and the run's entries in
    rq's shared ``rq:workers`` / ``rq:queues`` sets."""
    import redis

    conn: Any = redis.Redis.from_url(url)  # replies are bytes (no decode_responses)
    try:
        bare = {
            k.decode(): conn.type(k).decode()
            for k in conn.scan_iter(match=f"*{run_id}*", count=1000)
            if conn.ttl(k) == -1
        }
        for shared in ("rq:workers", "rq:queues"):
            for member in conn.smembers(shared):
                if run_id in member.decode():
                    bare[f"{shared} member {member.decode()}"] = "set member"
    finally:
        conn.close()
    return bare


@pytest.mark.timeout(120)
def test_a_session_leaves_no_key_without_a_ttl(real_redis: str, tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj")
    result = run_pytest(project.root, "--redis-url", real_redis, "--adsreplay-workers", "2")
    assert result.ret == 0, result.stdout.str()
    assert _bare_keys(real_redis, run_id_of(result)) == {}


@pytest.mark.timeout(120)
def test_sigterm_mid_run_leaves_no_key_without_a_ttl(real_redis: str, tmp_path: Path) -> None:
    """A cancelled CI job (SIGTERM to pytest while workers run jobs): every key of the run
    is deleted or expires (rq's queues, registries, dependents sets, started jobs, worker
    registrations, the plugin's data keys and its session registration)."""
    import signal

    project = write_project(tmp_path / "proj", closing=(40, 45, 50, 55), free=(60, 65))
    marks = tmp_path / "started"
    marks.mkdir()
    proc = spawn_pytest(
        project.root,
        "--redis-url",
        real_redis,
        "--adsreplay-workers",
        "2",
        *params(delay=2.0, started_dir=str(marks)),
    )
    started = time.monotonic()
    wait_for(lambda: list(marks.iterdir()), 60)  # a worker is inside a job
    proc.send_signal(signal.SIGTERM)
    result = collect(proc, started)
    assert result.ret != 0
    run_id = run_id_of(result)
    assert _bare_keys(real_redis, run_id) == {}

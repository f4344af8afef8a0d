"""URL masking: every credential field of every connection-string form is hidden."""

from __future__ import annotations

import socket

import pytest

from pytest_adsreplay.errors import BrokerError
from pytest_adsreplay.queue import broker
from pytest_adsreplay.urls import mask_url, scrub

SECRETS = ("Pa55#w0rd", "pa55?w0rd", "p@ss/w:rd", "s3cr3t", "zz-ssl", "a b' c")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:Pa55#w0rd@h:6391/0", "redis://:***@h:6391/0"),
        ("unix://:pa55?w0rd@/s.sock", "unix://:***@/s.sock"),
        ("unix://:pa55?w0rd@/s.sock?db=2", "unix://:***@/s.sock?db=2"),
        ("redis://user:p@ss/w:rd@h/2", "redis://user:***@h/2"),
        (
            "rediss://user:s3cr3t@h:6380/1?ssl_ca_certs=ca.pem",
            "rediss://user:***@h:6380/1?ssl_ca_certs=ca.pem",
        ),
        ("redis://s3cr3t@h", "redis://***@h"),
        ("redis://h:6379/0?password=s3cr3t&db=1", "redis://h:6379/0?password=***&db=1"),
        ("redis://h/0?db=1;Password=s3cr3t", "redis://h/0?db=1;Password=***"),
        ("redis://h/0?password=Pa55#w0rd&db=1", "redis://h/0?password=***&db=1"),
        ("unix:///run/redis.sock?db=0&password=s3cr3t", "unix:///run/redis.sock?db=0&password=***"),
        (
            "postgresql://u:s3cr3t@db:5432/r?sslmode=require&sslpassword=zz-ssl",
            "postgresql://u:***@db:5432/r?sslmode=require&sslpassword=***",
        ),
        ("postgresql://u:Pa55%23w0rd@db/r", "postgresql://u:***@db/r"),
        ("host=db user=u password=s3cr3t dbname=r", "host=db user=u password=*** dbname=r"),
        ("host=db sslpassword = zz-ssl dbname=r", "host=db sslpassword = *** dbname=r"),
        ("host=db password='a b\\' c' dbname=r", "host=db password=*** dbname=r"),
        ("redis://127.0.0.1:6379/15", "redis://127.0.0.1:6379/15"),
        ("sqlite:///tmp/results.sqlite", "sqlite:///tmp/results.sqlite"),
        ("results/r.sqlite", "results/r.sqlite"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    masked = mask_url(url)
    assert masked == shown
    assert not any(s in masked for s in SECRETS)


def test_scrub_hides_the_password_quoted_in_a_driver_message() -> None:
    url = "redis://:Pa55#w0rd@h:6391/0"
    text = f"Error connecting to {url}: AUTH Pa55#w0rd failed; password=x2x3x"
    shown = scrub(text, url)
    assert "Pa55#w0rd" not in shown and "x2x3x" not in shown
    assert "redis://:***@h:6391/0" in shown


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    "url",
    [
        "redis://:Pa55#w0rd@127.0.0.1:{port}/0",
        "redis://:Pa55%23w0rd@127.0.0.1:{port}/0",
        "redis://127.0.0.1:{port}/0?password=Pa55#w0rd",
    ],
)
def test_unreachable_redis_message_masks_the_password(url: str) -> None:
    """The exit-4 message of an unreachable Redis never shows the password."""
    url = url.format(port=_free_port())
    with pytest.raises(BrokerError) as err:
        broker.connect(url)
    text = f"{err.value.message} {err.value.hint}"
    assert "cannot reach Redis at" in text
    assert "Pa55" not in text and "w0rd" not in text, text
    assert "***" in text


def test_the_results_store_and_history_do_not_import_the_broker() -> None:
    import ast
    from pathlib import Path

    import pytest_adsreplay

    root = Path(pytest_adsreplay.__file__).parent / "results"
    for name in ("store.py", "history.py"):
        tree = ast.parse((root / name).read_text())
        imported = {
            n.module
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module is not None
        }
        assert not any(m.startswith("pytest_adsreplay.queue") for m in imported), name


def test_a_literal_hash_in_the_password_is_explained() -> None:
    url = f"redis://:Pa55#w0rd@127.0.0.1:{_free_port()}/0"
    with pytest.raises(BrokerError) as err:
        broker.connect(url)
    assert "percent-encoded" in (err.value.hint or "")


def test_the_worker_hint_does_not_offer_the_embedded_mode() -> None:
    """A worker has no embedded fakeredis: its hint says how to check URL and server."""
    url = f"redis://:s3cr3t@127.0.0.1:{_free_port()}/0"
    with pytest.raises(BrokerError) as session_err:
        broker.connect(url)
    with pytest.raises(BrokerError) as worker_err:
        broker.connect(url, worker=True)
    assert "embedded fakeredis" in (session_err.value.hint or "")
    hint = worker_err.value.hint or ""
    assert "fakeredis" not in hint and "drop --redis-url" not in hint
    assert "redis-cli -u URL ping" in hint

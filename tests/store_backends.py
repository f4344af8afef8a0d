"""Results-store backend fixtures (SQLite, and PostgreSQL when a server is up)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

try:  # imported now, before any pytester run takes its sys.modules snapshot: psycopg's
    # C extension keeps the exception classes of its first import and cannot be reloaded
    import psycopg
except ImportError:  # pragma: no cover - the postgres extra is not installed
    psycopg = None  # type: ignore[assignment]

#: Server (any database on it) the PostgreSQL tests create their throwaway databases on.
POSTGRES_ENV = "ADSREPLAY_TEST_POSTGRES"
POSTGRES_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"


def _with_db(url: str, dbname: str) -> str:
    base, _, query = url.partition("?")
    root = base.rsplit("/", 1)[0] if base.count("/") > 2 else base
    return f"{root}/{dbname}" + (f"?{query}" if query else "")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database (created and dropped per test) as a URL.

    Skips when psycopg or the server is missing: set ADSREPLAY_TEST_POSTGRES to a server
    URL (default postgresql://postgres@127.0.0.1:5432/postgres) to run them.
    """
    if psycopg is None:
        pytest.skip("psycopg is not installed: pip install 'pytest-adsreplay[postgres]'")
    server = os.environ.get(POSTGRES_ENV, POSTGRES_DEFAULT)
    try:
        admin = psycopg.connect(server, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(
            f"no PostgreSQL at {server} ({str(exc).strip().splitlines()[0]}); start one or "
            f"set {POSTGRES_ENV}=postgresql://user@host:port/db to run the PostgreSQL tests"
        )
    dbname = f"adsreplay_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{dbname}"')
        try:
            yield _with_db(server, dbname)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A results database URL on each backend (PostgreSQL skips when there is none)."""
    if request.param == "sqlite":
        return str(tmp_path / "results.sqlite")
    return str(request.getfixturevalue("postgres_url"))

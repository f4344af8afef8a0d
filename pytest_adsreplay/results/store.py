"""Results database: runs, results and run_stats tables (the only module with SQL).

Exactly one results row per (run, recording, variant): the db stage writes it in one
transaction with an upsert, so a retried chain replaces its row instead of adding one.
SQLite (a path or ``sqlite:///path``) is the default; ``postgresql://…`` stores the same
schema through psycopg 3 (optional extra ``postgres``), floats as DOUBLE PRECISION.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_adsreplay.errors import UsageError
from pytest_adsreplay.kpi.registry import KPIS, get
from pytest_adsreplay.urls import mask_text, mask_url

if TYPE_CHECKING:
    from pytest_adsreplay.fleet.stats import GroupStats

STATUSES = ("ok", "failed", "error", "invalid")
#: (name, SQL type) of each KPI column, from the KPI registry in its order.
KPI_COLUMNS: tuple[tuple[str, str], ...] = tuple((s.name, s.column) for s in KPIS)
RUN_COLUMNS = (
    "run_id",
    "started_at",
    "finished_at",
    "function",
    "params",
    "channel_map",
    "git_commit",
    "plugin_version",
    "host",
    "recordings_root",
    "broker",
    "settings",
    "exit_status",
    "git_dirty",
    "function_fingerprint",
)
#: The ``run_stats`` columns in insert order (one row per run and statistics group).
STATS_COLUMNS = (
    "run_id",
    "group_name",
    "position",
    "recordings",
    "invalid",
    "km",
    "hours",
    "activations",
    "warnings",
    "false_activations",
    "false_warnings",
    "passed",
    "judged",
    "data",
)
#: Columns added to ``runs`` after its first release: added to older databases on open.
ADDED_RUN_COLUMNS = (("git_dirty", "INTEGER"), ("function_fingerprint", "TEXT"))


def _schema(real: str = "REAL") -> str:
    """The DDL; ``real`` is the float type (PostgreSQL's REAL is only 4 bytes)."""
    kpis = ", ".join(f"{n} {real if t == 'REAL' else t}" for n, t in KPI_COLUMNS)
    return f"""
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started_at {real} NOT NULL,
    finished_at {real},
    function TEXT,
    params TEXT,
    channel_map TEXT,
    git_commit TEXT,
    plugin_version TEXT,
    host TEXT,
    recordings_root TEXT,
    broker TEXT,
    settings TEXT,
    exit_status INTEGER,
    git_dirty INTEGER,
    function_fingerprint TEXT
);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL,
    recording_id TEXT NOT NULL,
    variant TEXT NOT NULL DEFAULT '',
    recording_sha256 TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'error', 'invalid')),
    stage TEXT,
    {kpis},
    error TEXT,
    written_at {real} NOT NULL,
    PRIMARY KEY (run_id, recording_id, variant)
);
CREATE TABLE IF NOT EXISTS run_stats (
    run_id TEXT NOT NULL,
    group_name TEXT NOT NULL,
    position INTEGER NOT NULL,
    recordings INTEGER NOT NULL,
    invalid INTEGER NOT NULL,
    km {real} NOT NULL,
    hours {real} NOT NULL,
    activations INTEGER NOT NULL,
    warnings INTEGER NOT NULL,
    false_activations INTEGER NOT NULL,
    false_warnings INTEGER NOT NULL,
    passed INTEGER NOT NULL,
    judged INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, group_name)
);
"""


_SCHEMA = _schema()


@dataclass(frozen=True)
class ResultRow:
    run_id: str
    recording_id: str
    variant: str
    recording_sha256: str | None
    status: str
    stage: str | None
    kpis: dict[str, Any]
    error: str | None
    written_at: float


def _sqlite_path(url: str) -> Path:
    return Path(url[len("sqlite:///") :] if url.startswith("sqlite:///") else url)


def _kind(name: str) -> str:
    spec = get(name)
    return "number" if spec is None else spec.kind


def _kpi_value(name: str, value: Any) -> Any:
    """A KPI as its column stores it: events as JSON text, flags as 0/1, numbers as floats."""
    kind = _kind(name)
    if kind == "events":
        return json.dumps(value or [])
    if kind == "flag":
        return None if value is None else int(bool(value))
    return None if value is None else float(value)


def _kpi_back(name: str, value: Any) -> Any:
    kind = _kind(name)
    if kind == "events":
        return json.loads(value) if value else []
    if kind == "flag":
        return None if value is None else bool(value)
    return value


class ResultsStore:
    """SQLite results database at ``url`` (a path or ``sqlite:///path``)."""

    #: parameter placeholder of the driver
    mark = "?"
    insert_run = "INSERT OR IGNORE INTO runs ({names}) VALUES ({marks})"
    upsert_result = "INSERT OR REPLACE INTO results ({names}) VALUES ({marks})"

    def __init__(self, url: str):
        if "://" in url and not url.startswith("sqlite:///"):
            raise ValueError(
                f"unsupported results database URL {url!r}; use a SQLite path, sqlite:///path "
                "or postgresql://user@host/dbname"
            )
        self.url = url
        self.path = _sqlite_path(url)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.executescript(_SCHEMA)
            have = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
            for name, kind in ADDED_RUN_COLUMNS:
                if name not in have:
                    with contextlib.suppress(sqlite3.OperationalError):  # added meanwhile
                        con.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
            have = {row[1] for row in con.execute("PRAGMA table_info(results)")}
            for name, kind in KPI_COLUMNS:  # a KPI added to the registry since the file was made
                if name not in have:
                    with contextlib.suppress(sqlite3.OperationalError):
                        con.execute(f"ALTER TABLE results ADD COLUMN {name} {kind}")

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA busy_timeout=30000")
            yield con
        finally:
            con.close()

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """One write transaction (SQLite: BEGIN IMMEDIATE takes the write lock up front)."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def _q(self, sql: str) -> str:
        """``sql`` with ``?`` placeholders in the driver's style."""
        return sql if self.mark == "?" else sql.replace("?", self.mark)

    def start_run(self, run_id: str, **fields: Any) -> None:
        cols = {"run_id": run_id, "started_at": time.time(), **fields}
        unknown = set(cols) - set(RUN_COLUMNS)
        if unknown:
            raise ValueError(f"unknown run fields {sorted(unknown)}")
        for key in ("params", "settings"):
            if key in cols and not isinstance(cols[key], str):
                cols[key] = json.dumps(cols[key], sort_keys=True, default=str)
        if cols.get("git_dirty") is not None:
            cols["git_dirty"] = int(bool(cols["git_dirty"]))
        if cols.get("broker") is not None:
            cols["broker"] = mask_text(str(cols["broker"]))
        names = ", ".join(cols)
        marks = ", ".join(self.mark for _ in cols)
        with self._connect() as con:
            con.execute(self.insert_run.format(names=names, marks=marks), list(cols.values()))

    def finish_run(self, run_id: str, exit_status: int | None = None) -> None:
        with self._connect() as con:
            con.execute(
                self._q("UPDATE runs SET finished_at = ?, exit_status = ? WHERE run_id = ?"),
                (time.time(), exit_status, run_id),
            )

    def write_result(
        self,
        run_id: str,
        recording_id: str,
        *,
        status: str,
        variant: str = "",
        kpis: Mapping[str, Any] | None = None,
        sha256: str | None = None,
        stage: str | None = None,
        error: str | None = None,
    ) -> None:
        """Insert or replace the one row of (run, recording, variant) in one transaction.

        ``variant`` is '' for the session's function parameters, else a short hash of the
        marker's calibration parameters.
        """
        if status not in STATUSES:
            raise ValueError(f"status {status!r} not in {STATUSES}")
        kpis = kpis or {}
        names = [
            "run_id",
            "recording_id",
            "variant",
            "recording_sha256",
            "status",
            "stage",
            "error",
            "written_at",
        ]
        values: list[Any] = [
            run_id,
            recording_id,
            variant,
            sha256,
            status,
            stage,
            error,
            time.time(),
        ]
        for name, _ in KPI_COLUMNS:
            names.append(name)
            values.append(_kpi_value(name, kpis.get(name)))
        marks = ", ".join(self.mark for _ in names)
        with self._transaction() as con:
            con.execute(self.upsert_result.format(names=", ".join(names), marks=marks), values)

    def has_result(self, run_id: str, recording_id: str, variant: str = "") -> bool:
        with self._connect() as con:
            row = con.execute(
                self._q(
                    "SELECT 1 FROM results WHERE run_id = ? AND recording_id = ? AND variant = ?"
                ),
                (run_id, recording_id, variant),
            ).fetchone()
        return row is not None

    def _select_results(
        self, where: str, params: Sequence[Any], order: str, limit: int | None = None
    ) -> list[tuple[dict[str, Any], ResultRow]]:
        """(run columns, result row) pairs of ``results JOIN runs``."""
        kpi_names = [n for n, _ in KPI_COLUMNS]
        res_cols = [
            "run_id",
            "recording_id",
            "variant",
            "recording_sha256",
            "status",
            "stage",
            "error",
            "written_at",
            *kpi_names,
        ]
        run_cols = [c for c in RUN_COLUMNS if c != "run_id"]
        sql = (
            f"SELECT {', '.join('r.' + c for c in res_cols)}, "
            f"{', '.join('u.' + c for c in run_cols)} "
            "FROM results r LEFT JOIN runs u ON u.run_id = r.run_id "
            f"WHERE {where} ORDER BY {order}" + ("" if limit is None else f" LIMIT {int(limit)}")
        )
        with self._connect() as con:
            rows = con.execute(self._q(sql), list(params)).fetchall()
        out = []
        for row in rows:
            rec = dict(zip(res_cols, row[: len(res_cols)], strict=True))
            run = _run_row(dict(zip(run_cols, row[len(res_cols) :], strict=True)))
            run["run_id"] = rec["run_id"]
            out.append((run, _result_row(rec, kpi_names)))
        return out

    def results(self, run_id: str) -> list[ResultRow]:
        """Rows of one run, sorted by recording id."""
        rows = self._select_results("r.run_id = ?", [run_id], "r.recording_id, r.variant")
        return [row for _, row in rows]

    def history(
        self, recording_id: str, limit: int | None = None
    ) -> list[tuple[dict[str, Any], ResultRow]]:
        """(run, row) of one recording over the runs, newest run first (every variant)."""
        return self._select_results(
            "r.recording_id = ?",
            [recording_id],
            "u.started_at DESC, r.written_at DESC, r.variant",
            limit,
        )

    def recording_ids(self) -> list[str]:
        """Every recording id with at least one result, sorted."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT DISTINCT recording_id FROM results ORDER BY recording_id"
            ).fetchall()
        return [r[0] for r in rows]

    def status_counts(self) -> dict[str, dict[str, int]]:
        """Per run: how many results of each status, and ``collisions`` (projected)."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT run_id, status, COUNT(*), "
                "SUM(CASE WHEN collision = 1 THEN 1 ELSE 0 END) "
                "FROM results GROUP BY run_id, status"
            ).fetchall()
        out: dict[str, dict[str, int]] = {}
        for run_id, status, count, collisions in rows:
            per = out.setdefault(run_id, {"collisions": 0})
            per[status] = int(count)
            per["collisions"] += int(collisions or 0)
        return out

    def write_stats(self, run_id: str, groups: Sequence[GroupStats]) -> None:
        """Store the run's fleet statistics (one row per group), replacing earlier ones.

        The headline figures are columns for plain SQL; ``data`` holds every figure and
        the events behind the false activations and warnings as JSON.
        """
        names = ", ".join(STATS_COLUMNS)
        marks = ", ".join(self.mark for _ in STATS_COLUMNS)
        with self._transaction() as con:
            con.execute(self._q("DELETE FROM run_stats WHERE run_id = ?"), (run_id,))
            for position, g in enumerate(groups):
                row = (
                    run_id,
                    g.name,
                    position,
                    g.recordings,
                    g.invalid,
                    float(g.km),
                    float(g.hours),
                    g.activations,
                    g.warnings,
                    g.false_activations.count,
                    g.false_warnings.count,
                    g.pass_rate.passed,
                    g.pass_rate.runs,
                    json.dumps(g.to_json(), sort_keys=True),
                )
                con.execute(f"INSERT INTO run_stats ({names}) VALUES ({marks})", row)

    def read_stats(self, run_id: str) -> list[GroupStats]:
        """The run's fleet statistics in the order written; [] when it has none."""
        from pytest_adsreplay.fleet.stats import GroupStats

        with self._connect() as con:
            rows = con.execute(
                self._q("SELECT data FROM run_stats WHERE run_id = ? ORDER BY position"),
                (run_id,),
            ).fetchall()
        return [GroupStats.from_json(json.loads(r[0])) for r in rows]

    def runs(self) -> list[dict[str, Any]]:
        """Every run, newest first."""
        with self._connect() as con:
            rows = con.execute(
                f"SELECT {', '.join(RUN_COLUMNS)} FROM runs ORDER BY started_at DESC"
            ).fetchall()
        return [_run_row(dict(zip(RUN_COLUMNS, r, strict=True))) for r in rows]

    def run(self, run_id: str) -> dict[str, Any] | None:
        for r in self.runs():
            if r["run_id"] == run_id:
                return r
        return None


def _run_row(run: dict[str, Any]) -> dict[str, Any]:
    if run.get("git_dirty") is not None:
        run["git_dirty"] = bool(run["git_dirty"])
    return run


def _result_row(rec: Mapping[str, Any], kpi_names: Sequence[str]) -> ResultRow:
    return ResultRow(
        run_id=rec["run_id"],
        recording_id=rec["recording_id"],
        variant=rec["variant"],
        recording_sha256=rec["recording_sha256"],
        status=rec["status"],
        stage=rec["stage"],
        kpis={n: _kpi_back(n, rec[n]) for n in kpi_names},
        error=rec["error"],
        written_at=rec["written_at"],
    )


#: Serializes concurrent schema creation (CREATE TABLE IF NOT EXISTS races in PostgreSQL).
_PG_SCHEMA_LOCK = 0x61647372  # "adsr"
#: URLs whose schema this process created or checked already (a db job opens the store once
#: per recording; the DDL round trips are needed once).
_PG_READY: set[str] = set()


class PostgresStore(ResultsStore):
    """The same schema in PostgreSQL through psycopg 3 (``postgresql://user@host/db``).

    Choose a schema with the libpq option ``?options=-csearch_path%3Dmyschema``. Every
    operation is its own connection and transaction, as with SQLite, so the store can be
    used from RQ workers on other hosts.
    """

    mark = "%s"
    insert_run = "INSERT INTO runs ({names}) VALUES ({marks}) ON CONFLICT (run_id) DO NOTHING"
    upsert_result = (
        "INSERT INTO results ({names}) VALUES ({marks}) "
        "ON CONFLICT (run_id, recording_id, variant) DO UPDATE SET "
        + ", ".join(
            f"{c} = EXCLUDED.{c}"
            for c in ["recording_sha256", "status", "stage", "error", "written_at"]
            + [n for n, _ in KPI_COLUMNS]
        )
    )

    def __init__(self, url: str):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise UsageError(
                f"results database {mask_url(url)} needs psycopg 3, which is not installed",
                hint="pip install 'pytest-adsreplay[postgres]'",
            ) from None
        self.url = url
        self.path = None  # type: ignore[assignment]
        if url in _PG_READY:
            return
        with self._transaction() as con:
            con.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_SCHEMA_LOCK,))
            for statement in _schema("DOUBLE PRECISION").split(";"):
                if statement.strip():
                    con.execute(statement)
            for name, kind in ADDED_RUN_COLUMNS:
                con.execute(f"ALTER TABLE runs ADD COLUMN IF NOT EXISTS {name} {kind}")
            for name, kind in KPI_COLUMNS:  # a KPI added to the registry since the db was made
                kind = "DOUBLE PRECISION" if kind == "REAL" else kind
                con.execute(f"ALTER TABLE results ADD COLUMN IF NOT EXISTS {name} {kind}")
        _PG_READY.add(url)

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        """A connection whose block is one transaction (committed unless it raises)."""
        import psycopg

        try:
            con = psycopg.connect(self.url, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise UsageError(
                f"cannot connect to PostgreSQL: {str(exc).strip()}",
                hint="check that PostgreSQL is up and the database exists "
                "(createdb NAME), or use a SQLite path",
            ) from None
        with con:
            yield con

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._connect() as con:
            yield con


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def open_store(url: str) -> ResultsStore:
    """The results store at ``url``: PostgreSQL for ``postgresql://…``, else SQLite."""
    if is_postgres(url):
        return PostgresStore(url)
    return ResultsStore(url)

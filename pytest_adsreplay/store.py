"""Results database: a runs table and a results table (the only module with SQL).

Exactly one results row per (run, recording, variant): the db stage writes it in one
transaction with an upsert, so a retried chain replaces its row instead of adding one.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATUSES = ("ok", "failed", "error", "invalid")
KPI_COLUMNS: tuple[tuple[str, str], ...] = (
    ("fcw_time", "REAL"),
    ("brake_time", "REAL"),
    ("ttc_at_fcw", "REAL"),
    ("ttc_at_brake", "REAL"),
    ("fcw_lead_time", "REAL"),
    ("min_ttc", "REAL"),
    ("max_decel", "REAL"),
    ("activations", "TEXT"),
    ("collision", "INTEGER"),
    ("impact_speed", "REAL"),
    ("min_distance", "REAL"),
    ("recorded_brake_time", "REAL"),
)
RUN_COLUMNS = (
    "run_id", "started_at", "finished_at", "function", "params", "channel_map", "git_commit",
    "plugin_version", "host", "recordings_root", "broker", "settings", "exit_status",
)  # fmt: skip

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started_at REAL NOT NULL,
    finished_at REAL,
    function TEXT,
    params TEXT,
    channel_map TEXT,
    git_commit TEXT,
    plugin_version TEXT,
    host TEXT,
    recordings_root TEXT,
    broker TEXT,
    settings TEXT,
    exit_status INTEGER
);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL,
    recording_id TEXT NOT NULL,
    variant TEXT NOT NULL DEFAULT '',
    recording_sha256 TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'error', 'invalid')),
    stage TEXT,
    {", ".join(f"{n} {t}" for n, t in KPI_COLUMNS)},
    error TEXT,
    written_at REAL NOT NULL,
    PRIMARY KEY (run_id, recording_id, variant)
);
"""


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


def _kpi_value(name: str, value: Any) -> Any:
    if name == "activations":
        return json.dumps(value or [])
    if name == "collision":
        return None if value is None else int(bool(value))
    return None if value is None else float(value)


def _kpi_back(name: str, value: Any) -> Any:
    if name == "activations":
        return json.loads(value) if value else []
    if name == "collision":
        return None if value is None else bool(value)
    return value


class ResultsStore:
    """SQLite results database at ``url`` (a path or ``sqlite:///path``)."""

    def __init__(self, url: str):
        if "://" in url and not url.startswith("sqlite:///"):
            raise ValueError(f"unsupported results database URL {url!r}; use a SQLite path")
        self.url = url
        self.path = _sqlite_path(url)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA busy_timeout=30000")
            yield con
        finally:
            con.close()

    def start_run(self, run_id: str, **fields: Any) -> None:
        cols = {"run_id": run_id, "started_at": time.time(), **fields}
        unknown = set(cols) - set(RUN_COLUMNS)
        if unknown:
            raise ValueError(f"unknown run fields {sorted(unknown)}")
        for key in ("params", "settings"):
            if key in cols and not isinstance(cols[key], str):
                cols[key] = json.dumps(cols[key], sort_keys=True, default=str)
        names = ", ".join(cols)
        marks = ", ".join("?" for _ in cols)
        with self._connect() as con:
            con.execute(
                f"INSERT OR IGNORE INTO runs ({names}) VALUES ({marks})", list(cols.values())
            )

    def finish_run(self, run_id: str, exit_status: int | None = None) -> None:
        with self._connect() as con:
            con.execute(
                "UPDATE runs SET finished_at = ?, exit_status = ? WHERE run_id = ?",
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
        names = ["run_id", "recording_id", "variant", "recording_sha256", "status", "stage",
                 "error", "written_at"]  # fmt: skip
        values: list[Any] = [run_id, recording_id, variant, sha256, status, stage, error,
                             time.time()]  # fmt: skip
        for name, _ in KPI_COLUMNS:
            names.append(name)
            values.append(_kpi_value(name, kpis.get(name)))
        marks = ", ".join("?" for _ in names)
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute(
                    f"INSERT OR REPLACE INTO results ({', '.join(names)}) VALUES ({marks})",
                    values,
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def has_result(self, run_id: str, recording_id: str, variant: str = "") -> bool:
        with self._connect() as con:
            row = con.execute(
                "SELECT 1 FROM results WHERE run_id = ? AND recording_id = ? AND variant = ?",
                (run_id, recording_id, variant),
            ).fetchone()
        return row is not None

    def results(self, run_id: str) -> list[ResultRow]:
        """Rows of one run, sorted by recording id."""
        kpi_names = [n for n, _ in KPI_COLUMNS]
        cols = ["run_id", "recording_id", "variant", "recording_sha256", "status", "stage",
                "error", "written_at", *kpi_names]  # fmt: skip
        with self._connect() as con:
            rows = con.execute(
                f"SELECT {', '.join(cols)} FROM results WHERE run_id = ? "
                "ORDER BY recording_id, variant",
                (run_id,),
            ).fetchall()
        out = []
        for row in rows:
            rec = dict(zip(cols, row, strict=True))
            kpis = {n: _kpi_back(n, rec[n]) for n in kpi_names}
            out.append(
                ResultRow(
                    run_id=rec["run_id"],
                    recording_id=rec["recording_id"],
                    variant=rec["variant"],
                    recording_sha256=rec["recording_sha256"],
                    status=rec["status"],
                    stage=rec["stage"],
                    kpis=kpis,
                    error=rec["error"],
                    written_at=rec["written_at"],
                )
            )
        return out

    def runs(self) -> list[dict[str, Any]]:
        """Every run, newest first."""
        with self._connect() as con:
            rows = con.execute(
                f"SELECT {', '.join(RUN_COLUMNS)} FROM runs ORDER BY started_at DESC"
            ).fetchall()
        return [dict(zip(RUN_COLUMNS, r, strict=True)) for r in rows]

    def run(self, run_id: str) -> dict[str, Any] | None:
        for r in self.runs():
            if r["run_id"] == run_id:
                return r
        return None


def open_store(url: str) -> ResultsStore:
    return ResultsStore(url)

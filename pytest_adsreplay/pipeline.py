"""Enqueue, chain and wait: the session side of the read → aeb → db jobs.

A ``ReplaySession`` enqueues every chain of the session at once (``enqueue_many`` per
stage queue in one pipeline), then each test waits only for its own chain. In the
embedded mode the in-process worker is driven by the waiting test: its recording is
moved to the front of the read queue and the worker runs until that chain is terminal
(db before aeb before read, so one chain finishes before the next starts).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import broker, stages
from .errors import BrokerError, StageError
from .recordings import Recording

TERMINAL = ("finished", "failed", "stopped", "canceled")


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def variant_of(params: Mapping[str, Any], base: Mapping[str, Any]) -> str:
    """'' for the session's own parameters, else a short stable hash of ``params``."""
    if dict(params) == dict(base):
        return ""
    text = json.dumps(params, sort_keys=True, default=str)
    return "p" + hashlib.sha1(text.encode()).hexdigest()[:8]


def recording_key(rec_id: str, variant: str = "") -> str:
    """rq-safe key ``[A-Za-z0-9_-]`` for a recording id (readable part + hash)."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", rec_id).strip("_")[:60]
    digest = hashlib.sha1(rec_id.encode()).hexdigest()[:8]
    return f"{safe}-{digest}" + (f"-{variant}" if variant else "")


@dataclass(frozen=True)
class Chain:
    """One replay to run: a recording with one set of function parameters."""

    recording: Recording
    params: Mapping[str, Any]
    variant: str = ""

    @property
    def key(self) -> str:
        return recording_key(self.recording.id, self.variant)


@dataclass
class Outcome:
    """How one chain ended: status ok/failed/error/invalid, KPIs or the error text."""

    recording: str
    variant: str
    status: str
    stage: str | None = None
    error: str | None = None
    kpis: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class SessionConfig:
    """What every chain of a session shares (all JSON-able)."""

    run_id: str
    function: str
    params: Mapping[str, Any]
    channel_map: str | None
    cycle_time: float
    db: str
    timeout: float
    settings: Mapping[str, float]
    namespace: str
    ttl: int = 24 * 3600


class ReplaySession:
    """Chains of one pytest session on one Redis (embedded or real)."""

    def __init__(self, cfg: SessionConfig, conn: Any, *, embedded: bool):
        self.cfg = cfg
        self.conn = conn
        self.embedded = embedded
        self.queues = broker.make_queues(conn, cfg.namespace)
        self._worker: Any = None
        self._chains: dict[str, Chain] = {}
        self._outcomes: dict[str, Outcome] = {}
        self._sha: dict[str, str] = {}
        self.worker_check: Any = None  # callable raising BrokerError when no worker is alive

    # -- enqueue ---------------------------------------------------------------------
    def context(self, chain: Chain) -> dict[str, Any]:
        rec = chain.recording
        sha = self._sha.get(rec.id)
        if sha is None:
            try:
                sha = self._sha[rec.id] = rec.sha256()
            except OSError:
                sha = None
        return {
            "run": self.cfg.run_id,
            "rec": rec.id,
            "key": chain.key,
            "variant": chain.variant,
            "path": str(rec.path.resolve()),
            "sha256": sha,
            "channel_map": self.cfg.channel_map,
            "cycle_time": self.cfg.cycle_time,
            "function": self.cfg.function,
            "params": dict(chain.params),
            "settings": dict(self.cfg.settings),
            "db": self.cfg.db,
            "ttl": self.cfg.ttl,
            "timeout": self.cfg.timeout,
        }

    def enqueue(self, chains: Iterable[Chain]) -> int:
        """Enqueue the chains not enqueued yet (bulk, one pipeline per stage)."""
        from rq import Queue
        from rq.job import Dependency

        new = list({c.key: c for c in chains if c.key not in self._chains}.values())
        if not new:
            return 0
        ctxs = [self.context(c) for c in new]
        timeout = int(max(1, round(self.cfg.timeout)))
        common = {"timeout": timeout, "result_ttl": self.cfg.ttl, "failure_ttl": self.cfg.ttl}
        try:
            for stage, func, parents in (
                ("read", stages.read_stage, ()),
                ("aeb", stages.aeb_stage, ("read",)),
                ("db", stages.db_stage, ("read", "aeb")),
            ):
                datas = [
                    Queue.prepare_data(
                        func,
                        args=(ctx,),
                        job_id=stages.job_id(ctx, stage),
                        description=f"adsreplay {stage} {ctx['rec']}",
                        depends_on=Dependency(
                            [stages.job_id(ctx, p) for p in parents], allow_failure=True
                        )
                        if parents
                        else None,
                        **common,
                    )
                    for ctx in ctxs
                ]
                with self.conn.pipeline() as pipe:
                    self.queues[stage].enqueue_many(datas, pipeline=pipe)
                    pipe.execute()
        except Exception as exc:
            if exc.__class__.__module__.startswith("redis"):
                raise BrokerError(f"enqueueing failed: {exc}") from exc
            raise
        for c in new:
            self._chains[c.key] = c
        return len(new)

    # -- wait --------------------------------------------------------------------------
    def _db_job(self, chain: Chain) -> Any:
        from rq.job import Job
        from rq.serializers import JSONSerializer

        ctx = {"run": self.cfg.run_id, "key": chain.key}
        return Job.fetch(stages.job_id(ctx, "db"), connection=self.conn, serializer=JSONSerializer)

    def _prioritize(self, chain: Chain) -> None:
        ctx = {"run": self.cfg.run_id, "key": chain.key}
        jid = stages.job_id(ctx, "read")
        q = self.queues["read"]
        if q.remove(jid):
            q.push_job_id(jid, at_front=True)

    def _drive(self, chain: Chain) -> None:
        """Embedded mode: run the in-process worker until this chain's db job is terminal."""
        if self._worker is None:
            self._worker = broker.in_process_worker(self.conn, broker.worker_order(self.queues))
        self._prioritize(chain)
        job = self._db_job(chain)
        while job.get_status(refresh=True).value not in TERMINAL:
            if not self._worker.work(burst=True, max_jobs=1, logging_level="WARNING"):
                break

    def _poll(self, chain: Chain) -> None:
        """Real Redis: wait for this chain's db job, bounded by the stage timeouts."""
        deadline = time.monotonic() + 3 * self.cfg.timeout + 30
        job = self._db_job(chain)
        delay = 0.02
        while job.get_status(refresh=True).value not in TERMINAL:
            if time.monotonic() > deadline:
                raise StageError(
                    f"no result after {3 * self.cfg.timeout + 30:.0f} s "
                    "(3 stages x --adsreplay-timeout + 30 s)",
                    stage="wait",
                    recording=chain.recording.id,
                    hint="are workers running on the plugin's queues? see 'adsreplay worker'",
                )
            if self.worker_check is not None:
                self.worker_check(chain)
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def outcome(self, chain: Chain) -> Outcome:
        """How ``chain`` ended (waits for it; cached per session)."""
        cached = self._outcomes.get(chain.key)
        if cached is not None:
            return cached
        if chain.key not in self._chains:
            self.enqueue([chain])
        if self.embedded:
            self._drive(chain)
        else:
            self._poll(chain)
        out = self._read_outcome(chain)
        self._outcomes[chain.key] = out
        return out

    def _read_outcome(self, chain: Chain) -> Outcome:
        ctx = self.context(chain)
        rid, var = chain.recording.id, chain.variant
        res = stages.parent_result(self.conn, ctx, "db")
        if "status" not in res:
            return Outcome(rid, var, status="error", stage="db", error=res.get("error"))
        return Outcome(
            rid,
            var,
            status=res["status"],
            stage=res.get("stage"),
            error=res.get("error"),
            kpis=res.get("kpis") or {},
            sources=res.get("sources") or {},
        )

    def arrays(self, chain: Chain) -> tuple[dict[str, Any], dict[str, Any]]:
        """(signals incl. ``t``, outputs) of a finished chain, read from Redis."""
        ctx = {"run": self.cfg.run_id, "key": chain.key}
        return (
            stages.load_arrays(self.conn, stages.data_key(ctx, "signals")),
            stages.load_arrays(self.conn, stages.data_key(ctx, "outputs")),
        )

    # -- end ---------------------------------------------------------------------------
    def unfinished(self) -> list[Chain]:
        return [c for k, c in self._chains.items() if k not in self._outcomes]

    def drain(self) -> None:
        """Finish every enqueued chain no test has waited for (so each gets its row)."""
        for chain in self.unfinished():
            with contextlib.suppress(Exception):
                self.outcome(chain)

    def close(self, store: Any = None) -> None:
        """Write an explicit error row for any chain that never ended; delete run keys."""
        if store is not None:
            for chain in self.unfinished():
                if not store.has_result(self.cfg.run_id, chain.recording.id, chain.variant):
                    store.write_result(
                        self.cfg.run_id,
                        chain.recording.id,
                        variant=chain.variant,
                        status="error",
                        stage="wait",
                        sha256=self._sha.get(chain.recording.id),
                        error="the session ended before this recording was replayed",
                    )
        with contextlib.suppress(Exception):
            self.cleanup()

    def cleanup(self) -> None:
        """Delete this run's data keys and jobs (they would also expire by TTL)."""
        pattern = f"adsreplay:{self.cfg.run_id}:*"
        keys = list(self.conn.scan_iter(match=pattern, count=500))
        keys += list(self.conn.scan_iter(match=f"rq:job:{self.cfg.run_id}-*", count=500))
        keys += list(self.conn.scan_iter(match=f"rq:results:{self.cfg.run_id}-*", count=500))
        for i in range(0, len(keys), 500):
            self.conn.delete(*keys[i : i + 500])
        for q in self.queues.values():
            if q.name.startswith(f"adsreplay-{self.cfg.run_id}"):
                q.delete(delete_jobs=False)

"""Enqueue, chain and wait: the session side of the read → aeb → db jobs.

A ``ReplaySession`` enqueues every chain of the session at once (one ``enqueue_many``
per stage queue), then each test waits only for its own chain. In the
embedded mode with one thread the in-process worker is driven by the waiting test: its
recording is moved to the front of the read queue and the worker runs until that chain
is terminal (db before aeb before read, so one chain finishes before the next starts).
With more threads (``threads``), or with recordings read ahead (``read_ahead``),
stepping threads run the chains in the background, each with its own function host, and
the waiting test only watches its chain's db job; a read-ahead thread reads the next
recordings (and computes finished chains' KPIs) while the hosts step.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_adsreplay.errors import AdsReplayError, BrokerError, StageError
from pytest_adsreplay.queue import broker, stages, trust
from pytest_adsreplay.recordings import Recording

TERMINAL = ("finished", "failed", "stopped", "canceled")

#: s at most between two looks at a job's status while the session waits on real Redis
#: (from 20 ms up): a result is seen at most this late (one HGET per look).
POLL_MAX = 0.1


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
    exposure: dict[str, Any] = field(default_factory=dict)  # distance, time, warnings

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
    max_gap: float = 0.2  # s, data-quality gate (ini adsreplay_max_gap)
    cache_dir: str | None = None  # absolute decoded-signal cache directory; None: off
    function_memory: int | None = 4 * 1024**3  # bytes for the function's process; None: no limit
    function_output: int = 1024**2  # bytes of the function's output kept per recording
    binding: Mapping[str, Any] | None = None  # parsed adsreplay_function_binding (FMU/C)


def prepare_embedded() -> None:
    """What an embedded session needs before its first recording, for the session to do
    while its function host loads the function: the embedded server's module, and the
    stages' modules with asammdf (imported in this thread, see ``stages.preload``)."""
    import fakeredis  # noqa: F401

    stages.preload()


class ReplaySession:
    """Chains of one pytest session on one Redis (embedded or real)."""

    def __init__(
        self,
        cfg: SessionConfig,
        conn: Any,
        *,
        embedded: bool,
        threads: int = 1,
        read_ahead: int = 0,
    ):
        self.cfg = cfg
        self.conn = conn
        self.embedded = embedded
        #: Embedded mode: how many stepping threads (each with its own function host)
        #: run the chains; 1 without read-ahead runs them in the waiting test's thread,
        #: one at a time.
        self.threads = max(1, int(threads)) if embedded else 1
        #: Embedded mode: at most this many recordings read and waiting for a host, read
        #: by a thread of their own while the hosts step (0: no read-ahead thread).
        self.read_ahead = max(0, int(read_ahead)) if embedded else 0
        self.queues = broker.make_queues(conn, cfg.namespace)
        self._worker: Any = None
        self._pool: Any = None  # inprocess.SteppingThreads once started
        self._chains: dict[str, Chain] = {}
        #: chains being enqueued one at a time (``_enqueue_first``), not all in _chains yet
        self._pending: dict[str, Chain] = {}
        self._outcomes: dict[str, Outcome] = {}
        self._sha: dict[str, str] = {}
        self.worker_check: Any = None  # callable raising BrokerError when no worker is alive
        # workers run only jobs of a registered, live session (see ``trust``)
        self.registration = trust.Registration(
            conn, cfg.run_id, cfg.namespace, ttl=int(cfg.ttl), refresh=not embedded
        )

    # -- enqueue ---------------------------------------------------------------------
    def context(self, chain: Chain) -> dict[str, Any]:
        """The JSON ctx every job of ``chain`` gets.

        The data-quality gate's settings travel with it (``max_gap``, the sidecar's
        ``nominal_speed``, ``expect_target``: why a target object is expected, or None),
        and ``problem`` (a broken sidecar: the chain records an error without reading).
        The channel map is loaded here once per session, so a broken map is a usage error
        before anything runs; its fingerprint lets the read stage check that a worker
        reads the same map.
        """
        from pytest_adsreplay.signals.quality import expects_target

        rec = chain.recording
        return {
            "run": self.cfg.run_id,
            "rec": rec.id,
            "key": chain.key,
            "variant": chain.variant,
            "path": str(rec.path.parent.resolve() / rec.path.name),
            "channel_map": self.cfg.channel_map,
            "channel_map_sha": self._channel_map_sha(),
            # the map's text and DBC files in the broker, for workers without a copy
            "channel_map_ref": self.channel_map_ref,
            "max_gap": self.cfg.max_gap,
            "nominal_speed": rec.nominal_speed,
            "expect_target": expects_target(rec.scenario, rec.expect, rec.meta),
            "problem": rec.problem,
            # a recording in object storage: URL, endpoint, ETag, size (no credentials)
            "object": rec.remote.to_json() if rec.remote is not None else None,
            "cycle_time": self.cfg.cycle_time,
            "cache_dir": self.cfg.cache_dir,
            "function": self.cfg.function,
            # a session that cannot find the function itself (a bare ReplaySession, not
            # the plugin, which loads it first) has nothing to compare workers with
            "function_fingerprint": self.build.digest if self.build.found else None,
            "function_build": self.build.source,
            "function_file": self.function_file,
            "function_memory": self.cfg.function_memory,
            "function_output": self.cfg.function_output,
            "params": dict(chain.params),
            "binding": self.cfg.binding,
            "settings": dict(self.cfg.settings),
            "db": self.cfg.db,
            "ttl": self.cfg.ttl,
            "timeout": self.cfg.timeout,
        }

    def sha256(self, rec: Recording) -> str | None:
        """The recording's content hash: as its read stage computed it (the session does
        not hash: the stages do, beside the read), else computed now; None if unreadable."""
        known = self._sha.get(rec.id)
        if known is None:
            try:
                known = self._sha[rec.id] = rec.sha256()
            except OSError:
                return None
        return known

    @functools.cached_property
    def build(self) -> Any:
        """The fingerprint of the function under test, computed once per session
        (``function.fingerprint.Build``); every aeb job carries it."""
        from pytest_adsreplay.function.fingerprint import of_function

        return of_function(self.cfg.function, getattr(self.cfg, "binding", None))

    @functools.cached_property
    def function_file(self) -> dict[str, Any] | None:
        """The FMU / library file's sha256, name and size (None for a Python function);
        with a real Redis the file is also uploaded for workers that trust shipped files
        (``function.shipping``)."""
        from pytest_adsreplay.function import shipping

        if self.embedded:
            return shipping.describe(self.cfg.function)
        return shipping.upload(self.conn, self.cfg.function, int(self.cfg.ttl))

    @functools.cached_property
    def channel_map_ref(self) -> dict[str, Any] | None:
        """With a real Redis, the channel map and its DBC files uploaded under their
        sha256 with the session's TTL (``storage.mapship``); None when embedded."""
        if self.embedded or self.cfg.channel_map is None:
            return None
        from pytest_adsreplay.storage import mapship

        return mapship.upload(self.conn, self.cfg.channel_map, int(self.cfg.ttl))

    def _channel_map_sha(self) -> str | None:
        """Fingerprint of the session's channel map (None: built-in); ChannelMapError
        when it cannot be loaded."""
        if self.cfg.channel_map is None:
            return None
        cached: str | None = getattr(self, "_map_sha", None)
        if cached is None:
            from pytest_adsreplay.signals import ChannelMap

            cached = self._map_sha = ChannelMap.load(self.cfg.channel_map).fingerprint()
        return cached

    def enqueue(self, chains: Iterable[Chain]) -> int:
        """Enqueue the chains not enqueued yet, and not claimed by another xdist worker
        (bulk: one ``enqueue_many`` per stage)."""
        from rq import Queue
        from rq.job import Dependency

        new = list({c.key: c for c in chains if c.key not in self._chains}.values())
        if not new:
            return 0
        if self.background and self._pool is None and len(new) > 1:
            return self._enqueue_first(new)
        timeout = int(max(1, round(self.cfg.timeout)))
        common: dict[str, Any] = {
            "timeout": timeout,
            "result_ttl": self.cfg.ttl,
            "failure_ttl": self.cfg.ttl,
            "ttl": self.cfg.ttl,
        }
        try:
            self.registration.start()
            mine = self._claim(new)
            ctxs = [self.context(c) for c in mine]
            for stage, func, parents in (
                ("read", stages.read_stage, ()),
                ("aeb", stages.aeb_stage, ("read",)),
                ("db", stages.db_stage, ("read", "aeb")),
            ):
                options = dict(common)
                if stage == "aeb":
                    options["timeout"] = self._aeb_job_timeout(timeout)
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
                        **options,
                    )
                    for ctx in ctxs
                ]
                if not datas:
                    continue
                # No caller pipeline: rq 3.0 then saves the deferred jobs before it WATCHes
                # their parents. With ours, a parent that a running worker touches makes
                # the WATCH fail and rq silently drops the buffered saves (lost jobs).
                self.queues[stage].enqueue_many(datas)
        except Exception as exc:
            if exc.__class__.__module__.startswith("redis"):
                raise BrokerError(
                    f"enqueueing on Redis {broker.describe(self.conn)} failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            raise
        for c in new:
            self._chains[c.key] = c
        if self.background:
            self._stepping().poke()
        return len(new)

    def _enqueue_first(self, new: list[Chain]) -> int:
        """The session's first chains with stepping threads: the first alone, the second
        once the first one's read ended, the rest once the next job ended (normally that
        second read; each wait at most ``inprocess.FIRST_WAIT``). The session's Python
        threads share one core's worth of the interpreter lock: a read that runs beside
        the enqueue of 40 chains and two other reads takes ~4x as long, and the first
        hosts would wait for it (40 x 10 min, one host: first step 1.14 s -> 0.95 s
        after the process started)."""
        from pytest_adsreplay.queue.inprocess import FIRST_WAIT

        # a session stopped while it waits here (Ctrl-C) still owes each a row
        self._pending = {c.key: c for c in new}
        enqueued = self.enqueue(new[:1])
        pool = self._stepping()
        pool.wait_first()
        seen = pool.jobs
        enqueued += self.enqueue(new[1:2])
        if len(new) > 2:
            pool.wait(seen, FIRST_WAIT)
            enqueued += self.enqueue(new[2:])
        self._pending = {}
        return enqueued

    def _aeb_job_timeout(self, timeout: int) -> int:
        """rq's own timeout of an aeb job, a backstop behind the function host's (which
        ends a run at the stage timeout after its start): with two stepping threads per
        host (read-ahead), a recording may first wait up to one stage timeout for the
        other thread's recording to be stepped."""
        if self.background and self.read_ahead:
            return 2 * timeout + 60
        return timeout

    @property
    def background(self) -> bool:
        """Embedded mode: the chains run in threads (several hosts, or read-ahead), not in
        the waiting test's thread."""
        return self.embedded and (self.threads > 1 or self.read_ahead > 0)

    def _claim(self, chains: list[Chain]) -> list[Chain]:
        """The chains this process enqueues: ``SET NX adsreplay:{run}:{key}:claimed``.

        Under pytest-xdist every xdist worker shares the run id and (on real Redis) the
        queues, and each one asks for every chain; the first claim wins, so a chain is
        enqueued once and every process waits on the same jobs.
        """
        with self.conn.pipeline(transaction=False) as pipe:
            for c in chains:
                pipe.set(
                    f"adsreplay:{self.cfg.run_id}:{c.key}:claimed", 1, nx=True, ex=self.cfg.ttl
                )
            won = pipe.execute()
        return [c for c, ok in zip(chains, won, strict=True) if ok]

    # -- wait --------------------------------------------------------------------------
    def _db_job(self, chain: Chain) -> Any:
        ctx = {"run": self.cfg.run_id, "key": chain.key}
        return broker.fetch_job(self.conn, stages.job_id(ctx, "db"))

    def _prioritize(self, chain: Chain) -> None:
        ctx = {"run": self.cfg.run_id, "key": chain.key}
        jid = stages.job_id(ctx, "read")
        q = self.queues["read"]
        if q.remove(jid):
            q.push_job_id(jid, at_front=True)

    def _drive(self, chain: Chain) -> None:
        """Embedded mode: run the in-process worker until this chain's db job is terminal.

        One ``run`` normally runs the whole chain (its read job is first in line, then its
        aeb and db jobs become ready in the queues the worker looks at first); the worker
        is registered once per session (``cleanup`` unregisters it).
        """
        if self._worker is None:
            self._worker = broker.in_process_worker(self.conn, broker.worker_order(self.queues))
        self._prioritize(chain)
        job = self._db_job(chain)
        while job.get_status(refresh=True).value not in TERMINAL:
            if not self._worker.run(max_jobs=3):
                break

    def _stepping(self) -> Any:
        """The stepping threads, started on first use."""
        if self._pool is None:
            from pytest_adsreplay.queue.inprocess import SteppingThreads

            stages.preload()  # no thread is the first to import one of the stages' modules
            self._pool = SteppingThreads(
                self.conn,
                functools.partial(broker.make_queues, namespace=self.cfg.namespace),
                self.threads,
                name=f"adsreplay-{self.cfg.run_id}",
                read_ahead=self.read_ahead,
            )
            self._pool.start()
        return self._pool

    def _await(self, chain: Chain) -> None:
        """Embedded mode with stepping threads: wait until this chain's db job is
        terminal (its read job first moved to the front of its queue). A stepping thread
        that failed outside a job ends this wait and every later one with BrokerError
        saying what failed."""
        pool = self._stepping()
        if self.broken is not None:
            raise BrokerError(self.broken.message, hint=self.broken.hint)
        self._prioritize(chain)
        job = self._db_job(chain)
        while True:
            seen = pool.jobs
            if job.get_status(refresh=True).value in TERMINAL:
                return
            if pool.error is not None or not pool.alive:
                self.broken = BrokerError(
                    "the embedded mode's stepping threads stopped "
                    f"({pool.error or 'no thread is left'}); the session stops waiting for "
                    "recordings",
                    hint="this is a bug of pytest-adsreplay or of rq/fakeredis: report it "
                    "with this message; --adsreplay-workers 1 --adsreplay-read-ahead 0 runs "
                    "the recordings without threads",
                )
                raise BrokerError(self.broken.message, hint=self.broken.hint)
            pool.wait(seen, timeout=1.0)

    def stop_threads(self, *, interrupt: bool = False) -> None:
        """Stop the stepping threads (each after its current job; ``interrupt``: the
        recordings being stepped end at once). Called before rows for unfinished chains
        are written and before the run's keys go, so no thread writes after that."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        left = pool.stop(interrupt=interrupt, timeout=10.0 if interrupt else self.cfg.timeout)
        if left:
            import logging

            logging.getLogger(__name__).warning(
                "adsreplay: stepping threads %s still run a job after the session stopped "
                "them (a read in native code cannot be interrupted)",
                ", ".join(left),
            )

    #: Set when Redis failed mid-run: every later wait fails at once with this error.
    broken: BrokerError | None = None

    def _poll(self, chain: Chain) -> Outcome:
        """Real Redis: wait for this chain's db job and read how it ended.

        ``worker_check`` (``worker.WorkerWatch``) retries or fails the jobs of dead or
        stuck workers and raises when no worker is left; as a last resort the wait ends
        when nothing in the run's queues moved for 3 stage timeouts + 30 s. A Redis that
        fails, or forgets the run's jobs (restart, flush), ends the wait and every later
        one with BrokerError naming the masked URL.
        """
        import redis
        from rq.exceptions import InvalidJobOperation, NoSuchJobError

        if self.broken is not None:
            raise BrokerError(self.broken.message, hint=self.broken.hint)
        where = broker.describe(self.conn)
        try:
            self._wait(chain)
            return self._read_outcome(chain)
        except (redis.exceptions.RedisError, OSError) as exc:
            self.broken = BrokerError(
                f"Redis at {where} failed during the run ({type(exc).__name__}: {exc}); "
                "the session stops waiting for recordings",
                hint="check that the server is up and reachable, then re-run",
            )
            raise BrokerError(self.broken.message, hint=self.broken.hint) from None
        except (NoSuchJobError, InvalidJobOperation):
            self.broken = BrokerError(
                f"the run's jobs vanished from Redis at {where} (was the server restarted "
                "or flushed during the run?); the session stops waiting for recordings",
                hint="Redis must keep its data for the whole session; re-run",
            )
            raise BrokerError(self.broken.message, hint=self.broken.hint) from None

    def _wait(self, chain: Chain) -> None:
        limit = 3 * self.cfg.timeout + 30
        job = self._claimed_job(chain)
        delay = 0.02
        progress: tuple[Any, ...] = ()
        moved = next_look = time.monotonic()
        while job.get_status(refresh=True).value not in TERMINAL:
            now = time.monotonic()
            if now >= next_look:
                next_look = now + 1.0
                state = self._progress()
                if state != progress:
                    progress, moved = state, now
            if now - moved > limit:
                raise StageError(
                    f"no result and no progress on the run's queues for {limit:.0f} s "
                    "(3 stages x --adsreplay-timeout + 30 s)",
                    stage="wait",
                    recording=chain.recording.id,
                    hint="are workers running on the plugin's queues? see 'adsreplay worker'",
                )
            if self.worker_check is not None:
                self.worker_check(chain)
            time.sleep(delay)
            delay = min(delay * 1.5, POLL_MAX)

    def _claimed_job(self, chain: Chain, patience: float = 30.0) -> Any:
        """The chain's db job; another xdist worker may still be enqueueing it."""
        from rq.exceptions import NoSuchJobError

        claim = f"adsreplay:{self.cfg.run_id}:{chain.key}:claimed"
        deadline = time.monotonic() + patience
        while True:
            try:
                return self._db_job(chain)
            except NoSuchJobError:
                if not self.conn.exists(claim) or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def _progress(self) -> tuple[Any, ...]:
        """Queue lengths and started counts of the run's queues (changes = progress)."""
        with self.conn.pipeline(transaction=False) as pipe:
            for q in self.queues.values():
                pipe.llen(q.key)
                pipe.zcard(q.started_job_registry.key)
                pipe.zcard(q.finished_job_registry.key)
                pipe.zcard(q.failed_job_registry.key)
            return tuple(pipe.execute())

    def outcome(self, chain: Chain) -> Outcome:
        """How ``chain`` ended (waits for it; cached per session)."""
        cached = self._outcomes.get(chain.key)
        if cached is not None:
            return cached
        if chain.key not in self._chains:
            self.enqueue([chain])
        if self.background:
            self._await(chain)
            out = self._read_outcome(chain)
        elif self.embedded:
            self._drive(chain)
            out = self._read_outcome(chain)
        else:
            out = self._poll(chain)
        self._outcomes[chain.key] = out
        return out

    def _read_outcome(self, chain: Chain) -> Outcome:
        ctx = self.context(chain)
        rid, var = chain.recording.id, chain.variant
        res = stages.parent_result(self.conn, ctx, "db")
        if "status" not in res:
            return Outcome(rid, var, status="error", stage="db", error=res.get("error"))
        if res.get("sha256"):
            self._sha[rid] = str(res["sha256"])
        return Outcome(
            rid,
            var,
            status=res["status"],
            stage=res.get("stage"),
            error=res.get("error"),
            kpis=res.get("kpis") or {},
            sources=res.get("sources") or {},
            exposure=res.get("exposure") or {},
        )

    def arrays(self, chain: Chain) -> tuple[dict[str, Any], dict[str, Any]]:
        """(signals incl. ``t``, outputs) of a finished chain: outputs from Redis, signals
        where its read stage handed them over (Redis or the decoded-signal cache); empty
        when there are none."""
        ctx = self.context(chain)
        read = stages.parent_result(self.conn, ctx, "read")
        try:
            signals = stages.load_signals(self.conn, ctx, read) if read.get("ok") else {}
        except AdsReplayError:
            signals = {}
        return signals, stages.load_arrays(self.conn, stages.data_key(ctx, "outputs"))

    # -- end ---------------------------------------------------------------------------
    def unfinished(self) -> list[Chain]:
        chains = {**self._pending, **self._chains}
        return [c for k, c in chains.items() if k not in self._outcomes]

    def drain(self) -> None:
        """Finish every enqueued chain no test has waited for (so each gets its row)."""
        for chain in self.unfinished():
            with contextlib.suppress(Exception):
                self.outcome(chain)

    def close(self, store: Any = None, *, interrupted: bool = False) -> None:
        """Stop the stepping threads, write an explicit error row for any chain that
        never ended; delete run keys."""
        self.stop_threads(interrupt=interrupted)
        if store is not None:
            for chain in self.unfinished():
                if not store.has_result(self.cfg.run_id, chain.recording.id, chain.variant):
                    store.write_result(
                        self.cfg.run_id,
                        chain.recording.id,
                        variant=chain.variant,
                        status="error",
                        stage="wait",
                        sha256=self.sha256(chain.recording),
                        error=self._unfinished_error(),
                    )
        with contextlib.suppress(Exception):
            self.cleanup()

    def _unfinished_error(self) -> str:
        text = "the session ended before this recording was replayed"
        if self.broken is not None:
            text += f" ({self.broken.message})"
        return text

    #: False in an xdist worker on real Redis: the run's keys are shared with the other
    #: xdist workers, so only the controller deletes them (``broker.delete_run``).
    owns_keys: bool = True

    def cleanup(self) -> None:
        """Delete this run's keys, jobs and registration (rq's own keys have no TTL: a
        session that dies before this call leaves them to ``trust.Registration``'s
        refresher, which gives them one)."""
        self.stop_threads(interrupt=True)
        if self._worker is not None:
            with contextlib.suppress(Exception):
                self._worker.close()
        self.registration.stop(remove=self.owns_keys)
        if self.owns_keys:
            broker.delete_run(self.conn, self.cfg.run_id, self.queues)

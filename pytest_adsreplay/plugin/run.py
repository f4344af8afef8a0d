"""The state of one pytest session's replay run, kept free of pytest.

The plugin creates one ``ReplayRun`` per pytest config and its hooks delegate to it:
which recordings exist, which chains the collected tests need, the broker and the
results store, the outcome of each chain, and how the session ended.
"""

from __future__ import annotations

import os
import socket
import subprocess
import weakref
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from pytest_adsreplay import __version__
from pytest_adsreplay.config import Settings
from pytest_adsreplay.errors import UsageError
from pytest_adsreplay.function import fingerprint
from pytest_adsreplay.queue.pipeline import Chain, Outcome, ReplaySession, SessionConfig, variant_of
from pytest_adsreplay.recordings import Recording, discover
from pytest_adsreplay.replay import ReplayResult

INTERRUPTED = 2  # pytest.ExitCode.INTERRUPTED (Ctrl-C), without importing pytest
FLEET = "adsreplay"  # queue prefix of external workers (``adsreplay worker`` default)


class ReplayRun:
    """Recordings, broker, store and outcomes of one pytest session (or xdist worker)."""

    def __init__(self, settings: Settings, *, run_id: str, owner: bool, rootdir: Path):
        self.settings = settings
        self.run_id = run_id
        self.owner = owner  # False on an xdist worker: the controller owns the run row
        self.rootdir = rootdir
        self.session: ReplaySession | None = None
        self._store: Any = None
        self.local_workers: Any = None  # worker.LocalWorkers on real Redis with N > 0
        #: ReplayResults handed to tests whose arrays are not loaded yet (weak: a result
        #: nobody keeps costs nothing); the ones still alive are loaded before the
        #: session deletes its keys, so a result kept past the session stays whole.
        self._deferred: list[weakref.ref[ReplayResult]] = []
        #: Recordings whose file is rejected (never opened) that collected tests needed:
        #: each gets an error row at the end.
        self.rejected: dict[str, Recording] = {}
        #: Why the results database could not be finished at the end, or None.
        self.store_failure: str | None = None

    # -- recordings ------------------------------------------------------------------
    @property
    def configured(self) -> bool:
        return bool(self.settings.recordings)

    @cached_property
    def recordings(self) -> list[Recording]:
        """Every recording of the session, sorted (raises UsageError when there is none)."""
        from pytest_adsreplay.storage import StoreSettings

        store = StoreSettings.from_settings(self.settings)
        specs = list(self.settings.recordings)  # paths or URLs (s3://bucket/prefix/)
        return discover(
            specs,
            source=self.settings.source("recordings"),
            store=store,
            id_root=self.settings.recordings_root,
        )

    def require_recordings(self, who: str) -> list[Recording]:
        if not self.configured:
            raise UsageError(
                f"{who} needs recordings, but none are configured",
                hint="pass --recordings PATH (a file, directory or glob), set the ini key "
                "adsreplay_recordings or the environment variable ADSREPLAY_RECORDINGS",
            )
        return self.recordings

    def select(self, selections: Iterable[Mapping[str, Any]], who: str) -> list[Recording]:
        """Recordings matching every ``@pytest.mark.recordings`` selection given."""
        recs = self.require_recordings(who)
        for sel in selections:
            recs = [r for r in recs if r.matches(**sel)]
        return recs

    def outside_selection(self, rid: str) -> bool:
        """Whether a recording id this run did not find names a recording outside the
        selection (kept in a baseline) rather than one that is gone (stale)."""
        from pytest_adsreplay.recordings.discovery import outside_selection

        return outside_selection(
            rid, self.settings.recordings, self.root, self.settings.recordings_root
        )

    @property
    def root(self) -> Path:
        recs = self.recordings
        return recs[0].root if recs else Path(self.settings.recordings[0])

    # -- function --------------------------------------------------------------------
    def require_function(self, who: str) -> str:
        if not self.settings.function:
            raise UsageError(
                f"{who} needs a function under test, but none is configured",
                hint="pass --aeb-function MODULE:ATTR or set the ini key adsreplay_function "
                "(the bundled example: pytest_adsreplay.reference:TtcAeb)",
            )
        return self.settings.function

    def chain(self, rec: Recording, marker_params: Mapping[str, Any] | None = None) -> Chain:
        base = dict(self.settings.function_params)
        params = {**base, **(marker_params or {})}
        return Chain(recording=rec, params=params, variant=variant_of(params, base))

    # -- broker ----------------------------------------------------------------------
    @property
    def broker_label(self) -> str:
        from pytest_adsreplay.urls import mask_url

        if self.settings.redis_url is None:
            return "fakeredis (embedded, in-process worker)"
        return f"redis {mask_url(self.settings.redis_url)}"

    @property
    def stepping_threads(self) -> int:
        """Embedded mode: how many recordings step at once, each in a thread with its own
        function host. ``adsreplay_workers`` when set (0 counts as 1); else one per CPU
        core, but one in each pytest-xdist worker (``-n N`` already runs N sessions, one
        per core: threads on top would only compete for the same cores)."""
        n = self.settings.workers
        if n is not None:
            return max(1, n)
        if os.environ.get("PYTEST_XDIST_WORKER"):
            return 1
        return cpu_count()

    def read_ahead(self, hosts: int, chains: int) -> int:
        """Embedded mode: how many read recordings may wait for a host; none when every
        chain has a host of its own."""
        if chains <= hosts:
            return 0
        return self.read_ahead_setting(hosts)

    def read_ahead_setting(self, hosts: int) -> int:
        """``adsreplay_read_ahead`` when set; else one per host, but none in a
        pytest-xdist worker (``-n N`` already runs N sessions, one per core: a thread
        reading ahead would only compete for the same cores, as stepping threads would)."""
        n = self.settings.read_ahead
        if n is not None:
            return n
        return 0 if os.environ.get("PYTEST_XDIST_WORKER") else hosts

    @property
    def workers_label(self) -> str:
        """How the jobs run: in-process, N local processes, or external workers only."""
        if self.settings.redis_url is None:
            if self.session is not None:
                threads, ahead = self.session.threads, self.session.read_ahead
            else:
                threads = self.stepping_threads
                ahead = self.read_ahead_setting(threads)
            parts = ["in-process"]
            if threads > 1:
                parts.append(f"up to {threads} stepping threads (a function host each)")
            elif ahead:
                parts.append("1 stepping thread (a function host)")
            if ahead:
                parts.append(f"reading up to {ahead} recording{'s' if ahead != 1 else ''} ahead")
            return ", ".join(parts)
        n = self.settings.workers
        if n == 0:
            from pytest_adsreplay.queue.broker import queue_names

            return "external only (queues " + ", ".join(queue_names(FLEET).values()) + ")"
        count = (os.cpu_count() or 1) if n is None else n
        return f"{count} local process{'es' if count != 1 else ''}"

    @property
    def namespace(self) -> str:
        """Queue prefix: per run, except with only external workers (the fleet queues)."""
        if self.settings.redis_url is not None and self.settings.workers == 0:
            return FLEET
        return f"adsreplay-{self.run_id}"

    def start(self, chains: Iterable[Chain]) -> None:
        """Connect, check the function, enqueue every chain the session needs (once)."""
        chains = list(chains)
        if self.session is None:
            self.session = self._open_session(len(chains))
        self.session.enqueue(chains)
        if self.local_workers is not None and not self.local_workers.procs:
            # after collection and the enqueue: they get the sys.path collection built
            self.local_workers.start()

    def _open_session(self, chains: int) -> ReplaySession:
        """The session on the broker; embedded, with as many stepping threads as
        ``stepping_threads`` says but no more than the ``chains`` it starts with (one
        recording is stepped in the waiting test's thread, no second host starts)."""
        from pytest_adsreplay.function.host import HostLimits, acquire
        from pytest_adsreplay.function.protocol import FunctionOptions
        from pytest_adsreplay.queue.broker import connect
        from pytest_adsreplay.queue.pipeline import prepare_embedded
        from pytest_adsreplay.replay import resolve_cycle_time

        spec = self.require_function("replaying recordings")
        # loaded in a supervised host: the embedded mode's aeb stages step in this one
        limits = HostLimits(self.settings.function_memory, self.settings.function_output)
        options = FunctionOptions(
            binding=self.settings.binding, cycle_time=self.settings.cycle_time
        )
        embedded = self.settings.redis_url is None
        fn = acquire(
            spec,
            self.settings.function_params,
            options,
            limits,
            meanwhile=prepare_embedded if embedded else None,
        )
        cycle = resolve_cycle_time(fn, self.settings.cycle_time)
        threads = max(1, min(self.stepping_threads, chains)) if embedded else 1
        read_ahead = self.read_ahead(threads, chains) if embedded else 0
        if threads > 1 or read_ahead:  # the chains run in stepping threads
            from pytest_adsreplay.function.host import prestart, release

            release()  # the first stepping thread takes this host over
            prestart(threads - 1)  # the others' processes start during the enqueue
        conn = connect(self.settings.redis_url)
        cfg = SessionConfig(
            run_id=self.run_id,
            function=spec,
            params=dict(self.settings.function_params),
            channel_map=str(self.settings.channel_map) if self.settings.channel_map else None,
            cycle_time=cycle,
            db=self.settings.db,
            timeout=self.settings.timeout,
            settings=self.settings.kpi_settings(),
            namespace=self.namespace,
            max_gap=self.settings.max_gap,
            cache_dir=str(Path(self.settings.cache_dir).resolve()) if self.settings.cache else None,
            function_memory=self.settings.function_memory,
            function_output=self.settings.function_output,
            binding=self.settings.binding,
        )
        url = self.settings.redis_url
        session = ReplaySession(
            cfg, conn, embedded=url is None, threads=threads, read_ahead=read_ahead
        )
        if url is None:
            return session
        fn.close()  # the workers run the function in hosts of their own
        from pytest_adsreplay.queue.worker import LocalWorkers, WorkerWatch, local_worker_count

        # xdist workers share the run's keys on real Redis; the controller deletes them.
        session.owns_keys = self.owner
        count = local_worker_count(self.settings.workers)
        if count:
            where = os.environ.get("PYTEST_XDIST_WORKER", "main")
            self.local_workers = LocalWorkers(
                url,
                cfg.namespace,
                count,
                prefix=f"adsreplay-{self.run_id}-{where}",
                preload_modules=[spec.partition(":")[0]],
                function=spec,
            )
        session.worker_check = WorkerWatch(session, self.local_workers)
        return session

    def outcome(self, chain: Chain) -> Outcome:
        if self.session is None:
            self.start([chain])
        assert self.session is not None
        return self.session.outcome(chain)

    def result(self, chain: Chain, outcome: Outcome) -> ReplayResult:
        assert self.session is not None
        session = self.session
        self._deferred = [r for r in self._deferred if r() is not None]
        result = ReplayResult.deferred(
            lambda: session.arrays(chain),
            recording=chain.recording.id,
            kpis=dict(outcome.kpis),
            cycle_time=self.session.cfg.cycle_time,
            function=self.session.cfg.function,
            sources=dict(outcome.sources),
        )
        self._deferred.append(weakref.ref(result))
        return result

    # -- store -----------------------------------------------------------------------
    @property
    def store(self) -> Any:
        if self._store is None:
            from pytest_adsreplay.results.store import open_store

            self._store = open_store(self.settings.db)
        return self._store

    def begin(self, *, replays: bool = True) -> None:
        """Write the run row (owner only: a plain session or the xdist controller).

        ``replays``: this process replays recordings itself (not the xdist controller);
        its function host process starts now, while pytest collects."""
        if self.configured and self.settings.function and replays:
            from pytest_adsreplay.function.host import prestart

            prestart()  # the function's host process starts while pytest collects
        if not self.owner or not self.configured:
            return
        self.store.start_run(
            self.run_id,
            function=self.settings.function,
            params=dict(self.settings.function_params),
            channel_map=str(self.settings.channel_map) if self.settings.channel_map else None,
            git_commit=git_commit(self.rootdir),
            git_dirty=fingerprint.git_dirty(self.rootdir),
            function_fingerprint=fingerprint.digest_of(self.settings.function),
            plugin_version=__version__,
            host=socket.gethostname(),
            recordings_root=str(self.root),
            broker=self.broker_label,
            settings={
                "cycle_time": self.settings.cycle_time,
                "timeout": self.settings.timeout,
                **self.settings.kpi_settings(),
            },
        )

    def finish(self, exitstatus: int | None, *, complete: bool) -> None:
        """Drain (when the session ran to the end), write missing rows, close the run.

        Local worker processes are stopped whatever happened (Ctrl-C, errors: at once).
        A results database that fails here does not stop the rest: the failure is kept
        in ``store_failure`` for the session's report and exit status.
        """
        interrupted = exitstatus == INTERRUPTED
        try:
            if self.session is not None and complete and not interrupted and self.owner:
                self.session.drain()
        finally:
            if self.local_workers is not None:
                # before cleanup, so that no worker writes keys after it
                self.local_workers.stop(fast=interrupted or not complete)
            if self.session is not None:
                # stepping threads stop first: none may write a row or a key after this
                self.session.stop_threads(interrupt=interrupted or not complete)
                self._load_deferred()
                self._close_session()
            elif self.owner and self.settings.redis_url is not None and self.configured:
                self._delete_shared_run()
        self._guarded(self._write_rejected)
        if self.owner and self.session is None:
            self._guarded(self._write_unreplayed)
        if self.owner and self.configured and self._store_exists():
            self._guarded(lambda: self.store.finish_run(self.run_id, exitstatus))
        if self.configured:
            from pytest_adsreplay.function.host import shutdown

            shutdown()  # the function's host processes end with the session

    def _close_session(self) -> None:
        """Write the rows of chains that never ended, delete the run's keys; the keys go
        even when the results database fails."""
        assert self.session is not None
        session = self.session
        failed = not self._guarded(lambda: session.close(self.store if self.owner else None))
        if failed:
            import contextlib

            with contextlib.suppress(Exception):
                session.cleanup()

    @property
    def chains_file(self) -> Path:
        """Where xdist workers leave the chains their collected tests need (every worker
        collects the same tests): the controller, which collects nothing, writes a row
        for each of them that no worker wrote."""
        import tempfile

        return Path(tempfile.gettempdir()) / f"adsreplay-{self.run_id}-chains.json"

    def note_chains(self, chains: Iterable[Chain]) -> None:
        """On an xdist worker: leave the chains the session needs for the controller."""
        import contextlib
        import json

        path = self.chains_file
        if path.exists():
            return
        tmp = path.with_name(f"{path.name}.{os.getpid()}")
        with contextlib.suppress(OSError):
            tmp.write_text(json.dumps(sorted({(c.recording.id, c.variant) for c in chains})))
            os.replace(tmp, path)

    def _write_unreplayed(self) -> None:
        """The xdist controller: an error row for every chain the workers needed and no
        worker wrote (a worker stopped by Ctrl-C or SIGTERM, or lost)."""
        import json

        path = self.chains_file
        if not path.exists():
            return
        try:
            needed = json.loads(path.read_text())
        finally:
            path.unlink(missing_ok=True)
        for rid, variant in needed:
            if not self.store.has_result(self.run_id, rid, variant):
                self.store.write_result(
                    self.run_id,
                    rid,
                    variant=variant,
                    status="error",
                    stage="wait",
                    error="the session ended before this recording was replayed",
                )

    def _write_rejected(self) -> None:
        """An error row for every rejected recording the collected tests needed."""
        for rec in self.rejected.values():
            if not self.store.has_result(self.run_id, rec.id):
                self.store.write_result(
                    self.run_id, rec.id, status="error", stage="read", error=rec.rejected
                )

    def _guarded(self, step: Any) -> bool:
        """Run one results-database step; a failure is remembered, not raised."""
        try:
            step()
        except Exception as exc:
            if self.store_failure is None:
                self.store_failure = self._store_error(exc)
            return False
        return True

    def _store_error(self, exc: Exception) -> str:
        from pytest_adsreplay.urls import mask_url

        masked = mask_url(self.settings.db)
        detail = str(exc).replace(self.settings.db, masked).strip().splitlines()
        what = f"{type(exc).__name__}: {detail[0]}" if detail else type(exc).__name__
        return (
            f"the results database {masked} could not be finished ({what}); this run's "
            "rows and exit status may be incomplete there"
        )

    def _load_deferred(self) -> None:
        """Load the arrays of every handed-out result that is still alive (see
        ``_deferred``); a failure leaves that result without arrays, nothing else."""
        import contextlib

        for ref in self._deferred:
            result = ref()
            if result is not None:
                with contextlib.suppress(Exception):
                    result.load()
        self._deferred = []

    def _delete_shared_run(self) -> None:
        """xdist controller on real Redis: the workers shared the run's keys; delete them."""
        import contextlib

        from pytest_adsreplay.queue.broker import connect, delete_run, make_queues

        with contextlib.suppress(Exception):
            conn = connect(self.settings.redis_url)
            delete_run(conn, self.run_id, make_queues(conn, self.namespace))

    def _store_exists(self) -> bool:
        return self._store is not None or Path(self.settings.db).exists()

    # -- header ----------------------------------------------------------------------
    def header(self, workers: str | None = None) -> str:
        """The header line: recordings, function with its parameters, channel map,
        cycle time, broker, workers and run id."""
        recs = self.recordings
        fn = self.settings.function or "(none: set --aeb-function)"
        cmap = self.settings.channel_map
        return (
            f"adsreplay: {len(recs)} recordings under {shown(self.root)}, "
            f"function {fn}, params {toml_inline(dict(self.settings.function_params))}, "
            f"channel map {shown(cmap) if cmap else 'built-in'}, "
            f"cycle time {self.cycle_time_label}, "
            f"broker {self.broker_label}, workers {workers or self.workers_label}, "
            f"run {self.run_id}"
        )

    @property
    def cycle_time_label(self) -> str:
        if self.session is not None:
            return f"{self.session.cfg.cycle_time:g} s"
        if self.settings.cycle_time is not None:
            return f"{self.settings.cycle_time:g} s"
        return "the function's cycle_time, else 0.01 s"

    def command_line(self, extra_args: Iterable[str] = ()) -> str:
        """A pytest command line that replays the same recordings through the same
        function with the same settings, whatever the ini file says."""
        import shlex

        s = self.settings
        args = ["pytest", *(f"--recordings={shown(Path(r))}" for r in s.recordings)]
        if s.function:
            args.append(f"--aeb-function={s.function}")
        if s.function_params:
            args += ["-o", f"adsreplay_function_params={toml_inline(dict(s.function_params))}"]
        if s.channel_map:
            args.append(f"--channel-map={shown(s.channel_map)}")
        if s.cycle_time is not None:
            args += ["-o", f"adsreplay_cycle_time={s.cycle_time:g}"]
        for name, value in s.kpi_settings().items():
            args += ["-o", f"adsreplay_{name}={value:g}"]
        if s.redis_url:
            from pytest_adsreplay.urls import mask_url

            args.append(f"--redis-url={mask_url(s.redis_url)}")
        if s.s3_endpoint:  # recordings in object storage: where and how to address it
            args += ["-o", f"adsreplay_s3_endpoint={s.s3_endpoint}"]
        if s.s3_path_style:
            args += ["-o", "adsreplay_s3_path_style=true"]
        if s.workers is not None:
            args.append(f"--adsreplay-workers={s.workers}")
        if s.read_ahead is not None:
            args.append(f"--adsreplay-read-ahead={s.read_ahead}")
        return shlex.join([*args, *extra_args])

    # -- baseline and report (issue 6) ---------------------------------------------------
    def sha256(self, rec: Recording) -> str:
        """The recording's content hash: the one its read stage computed."""
        known = self.session.sha256(rec) if self.session else None
        return known or rec.sha256()

    @property
    def cycle_time(self) -> float:
        """The session's resampling grid (s): the function's own or ``adsreplay_cycle_time``."""
        if self.session is not None:
            return float(self.session.cfg.cycle_time)
        return float(self.settings.cycle_time or 0.01)

    def arrays(self, chain: Chain) -> tuple[dict[str, Any], dict[str, Any]]:
        """(signals incl. ``t``, outputs) of a chain this process waited for; empty dicts
        when the replay produced none (they live in Redis until the session ends)."""
        if self.session is None:
            return {}, {}
        return self.session.arrays(chain)


def cpu_count() -> int:
    """The CPU cores this process may run on (its affinity where the OS tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def shown(path: Path) -> str:
    """``path`` relative to the current directory when inside it, else as it is (a URL
    such as ``s3://bucket/prefix`` with its two slashes)."""
    from pytest_adsreplay.storage import as_url

    if (url := as_url(str(path))) is not None:
        return url
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix() or "."
    except (ValueError, OSError):
        return str(path)


def toml_inline(value: Any) -> str:
    """``value`` as TOML (an inline table for a dict), as the ini keys take it."""
    import json

    if isinstance(value, dict):
        if not value:
            return "{}"
        items = ", ".join(f"{_toml_key(k)} = {toml_inline(v)}" for k, v in value.items())
        return "{ " + items + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_inline(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def _toml_key(key: Any) -> str:
    import json
    import re

    text = str(key)
    return text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else json.dumps(text)


def git_commit(path: Path) -> str | None:
    """HEAD commit of the repository at ``path`` (None outside git or without git)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None

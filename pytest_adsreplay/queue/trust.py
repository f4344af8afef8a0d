"""Who may run what on a worker: the queue's trust boundary.

A worker on the plugin's queues runs only the three stage functions of this package,
and only for a live session, on that session's queues. Every job is checked *before*
rq imports or calls anything (:func:`job_class`'s ``func``):

- its function is ``pytest_adsreplay.queue.stages.{read,aeb,db}_stage`` (no instance, no
  callbacks, one ``ctx`` dict as its only argument);
- its id is ``<run>-<stage>-<key>`` of the ``ctx`` it carries;
- the run is a live session: the session registers ``adsreplay:session:<run>`` with a
  short TTL and refreshes it while it runs (:class:`Registration`), naming its queue
  namespace; the job must come from one of that namespace's queues.

Anything else fails as ``SecurityError`` with the reason, and nothing of it runs. Job
data are JSON, never pickles, so whoever can write to the Redis can feed the workers
bad *data* (the stages treat it as untrusted input) but never code.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

STAGE_FUNCTIONS = {
    f"pytest_adsreplay.queue.stages.{stage}_stage": stage for stage in ("read", "aeb", "db")
}
#: s a session's registration lives without a refresh (a killed session's jobs are
#: refused after at most this long).
SESSION_TTL = 120
REFRESH_INTERVAL = 10.0  # s between two refreshes of a registration
FIRST_SWEEP = 2.0  # s after the start: the first refresh (the enqueued jobs' keys exist)


#: The functions under test this worker process may load: None loads any the job names
#: (the embedded in-process worker, ``--trust-any-function``); an empty set loads none
#: (an external worker started without ``--function``). A job's factory runs with the
#: job's keyword arguments, so an unchecked ``module:attr`` (``subprocess:Popen`` with
#: ``shell``) would run a command for whoever can write to the Redis.
_allowed_functions: frozenset[str] | None = None
#: sha256 of the allowed function files (``--function sha256:HEX``, or of an allowed path)
_allowed_sha: frozenset[str] = frozenset()
#: the flag that would let this worker run a refused function (named in the refusal)
_flag_hint = "--function"
#: set once this process was told which functions it runs (``allow_functions``)
_configured = False
#: a plain ``rq worker`` with this job class takes its allowed functions from here
FUNCTIONS_ENV = "ADSREPLAY_WORKER_FUNCTIONS"


def allow_functions(
    specs: Iterable[str] | None, *, any_function: bool = True, flag: str = "--function"
) -> None:
    """Pin this process to ``specs``; with none, load any function (``any_function``)
    or none at all."""
    global _allowed_functions, _allowed_sha, _flag_hint, _configured
    _configured = True
    named = [str(s) for s in specs or ()]
    _flag_hint = flag
    if not named:
        _allowed_functions = None if any_function else frozenset()
        _allowed_sha = frozenset()
        return
    paths: set[str] = set()
    shas: set[str] = set()
    for spec in named:
        if spec.lower().startswith("sha256:"):
            shas.add(spec[7:].strip().lower())
            continue
        paths.add(_canonical(spec))
        sha = _sha_of(spec)
        if sha is not None:
            shas.add(sha)
    _allowed_functions = frozenset(paths)
    _allowed_sha = frozenset(shas)


def _canonical(spec: str) -> str:
    """A file spec as its resolved path; a ``module:attr`` spec as it is."""
    from pathlib import Path

    from pytest_adsreplay.function.fingerprint import is_file_spec

    return str(Path(spec).resolve()) if is_file_spec(spec) else spec


def _sha_of(spec: str) -> str | None:
    from pathlib import Path

    from pytest_adsreplay.function.fingerprint import is_file_spec

    if not is_file_spec(spec):
        return None
    from pytest_adsreplay.hashing import memo_sha256

    try:
        return memo_sha256(Path(spec)) if Path(spec).is_file() else None
    except OSError:
        return None


def any_function() -> bool:
    """This process loads whatever function a job names (not pinned)."""
    return _allowed_functions is None


def function_refusal(ctx: Any) -> str | None:
    """Why this worker must not load the function ``ctx`` names, or None when it may."""
    if not _configured and os.environ.get(FUNCTIONS_ENV, "").strip():
        env = os.environ[FUNCTIONS_ENV].split(",")
        allow_functions([s.strip() for s in env if s.strip()], flag=FUNCTIONS_ENV)
    pinned = _allowed_functions
    if pinned is None:
        return None
    named = str(ctx.get("function") if isinstance(ctx, dict) else None)
    shown = repr(named[:120])
    if not pinned and not _allowed_sha:
        return (
            f"it was started without {_flag_hint} and runs no function under test "
            f"(the job names {shown}); start it with {_flag_hint} {named[:120]} to run "
            "this function (repeatable), or --trust-any-function on a Redis whose "
            "writers you fully trust"
        )
    if _canonical(named) in pinned:
        return None
    ref = ctx.get("function_file") if isinstance(ctx, dict) else None
    sha = str(ref.get("sha256") or "").lower() if isinstance(ref, dict) else ""
    from pytest_adsreplay.function.fingerprint import is_file_spec

    if sha and is_file_spec(named) and sha in _allowed_sha:
        return None
    allowed = ", ".join(sorted(pinned | {f"sha256:{s[:12]}" for s in _allowed_sha}))
    return (
        f"function {shown} is not one this worker was started for ({allowed}); add "
        f"{_flag_hint} {named[:120]} to its command line to run it"
    )


def may_load_path(path: str, sha: str | None) -> bool:
    """Whether this worker may load the function file at ``path`` the job names: any
    (not pinned), the allowed path, or a file with an allowed sha256."""
    pinned = _allowed_functions
    if pinned is None or _canonical(path) in pinned:
        return True
    return bool(sha) and str(sha).lower() in _allowed_sha and _sha_of(path) == str(sha).lower()


class SecurityError(Exception):
    """A job a worker refused to run (it is failed with this message, nothing executed)."""


def session_key(run_id: str) -> str:
    return f"adsreplay:session:{run_id}"


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def refusal(conn: Any, job: Any) -> str | None:
    """Why ``job`` must not run on a plugin worker, or None when it may."""
    name = job.func_name
    stage = STAGE_FUNCTIONS.get(name) if isinstance(name, str) else None
    if stage is None:
        return f"job function {str(name)[:120]!r} is not one of the plugin's stage functions"
    if job.instance is not None or job.kwargs or len(job.args) != 1:
        return "a stage job takes exactly one ctx dict (no instance, no keyword arguments)"
    if any(
        getattr(job, attr, None)
        for attr in ("_success_callback_name", "_failure_callback_name", "_stopped_callback_name")
    ):
        return "stage jobs have no callbacks"
    ctx = job.args[0]
    if not isinstance(ctx, dict) or not isinstance(ctx.get("run"), str):
        return "the job carries no ctx with a session run id"
    run = ctx["run"]
    if job.id != f"{run}-{stage}-{ctx.get('key')}":
        return f"job id {job.id!r} does not match its ctx (run {run!r}, {stage} stage)"
    raw = conn.get(session_key(run))
    if raw is None:
        return f"run {run!r} is not a live session on this Redis"
    try:
        namespace = json.loads(_text(raw))["namespace"]
    except (ValueError, KeyError, TypeError):
        return f"the registration of run {run!r} is malformed"
    from pytest_adsreplay.queue.broker import queue_names

    if job.origin not in queue_names(str(namespace)).values():
        return f"queue {job.origin!r} does not belong to run {run!r}"
    return None


@functools.cache
def job_class() -> type:
    """rq's Job with the trust check in front of its function lookup.

    rq resolves ``job.func`` (an import) inside ``perform``; raising there fails the job
    through rq's own failure path (status, registries, dependents), with the reason as
    its error text. Callbacks are never resolved: the plugin's jobs have none.
    """
    from rq.job import Job

    class TrustedJob(Job):
        _trusted = False

        @property
        def func(self) -> Any:
            if not self._trusted:
                why = refusal(self.connection, self)
                if why is not None:
                    log.warning("adsreplay: refused job %s from %s: %s", self.id, self.origin, why)
                    raise SecurityError(f"the worker refused job {self.id}: {why}; nothing ran")
                self._trusted = True
            return super().func

        @property
        def success_callback(self) -> None:
            return None

        @property
        def failure_callback(self) -> None:
            return None

        @property
        def stopped_callback(self) -> None:
            return None

    return TrustedJob


class Registration:
    """A session's ``adsreplay:session:<run>`` key: set, refreshed, removed.

    On a real Redis a daemon thread refreshes it every ``REFRESH_INTERVAL`` s to
    ``SESSION_TTL`` s and, on the way, gives every key of the run that has no TTL one
    (``ttl``): so even a session killed with SIGKILL leaves nothing behind for good.
    In the embedded mode the key lives as long as the run's data (nobody else sees it).
    """

    def __init__(self, conn: Any, run_id: str, namespace: str, *, ttl: int, refresh: bool):
        self.conn = conn
        self.run_id = run_id
        self.namespace = namespace
        self.ttl = ttl
        self.refresh = refresh
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def value(self) -> str:
        return json.dumps({"namespace": self.namespace})

    def start(self) -> None:
        """Register (again) and, on a real Redis, start the refresher (once)."""
        ex = SESSION_TTL if self.refresh else self.ttl
        self.conn.set(session_key(self.run_id), self.value(), ex=ex)
        if self.refresh and self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"adsreplay-session-{self.run_id}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        wait = FIRST_SWEEP
        while not self._stop.wait(wait):
            wait = REFRESH_INTERVAL
            try:
                self.conn.set(session_key(self.run_id), self.value(), ex=SESSION_TTL)
                expire_run_keys(self.conn, self.run_id, self.ttl)
            except Exception as exc:  # a Redis hiccup: the next round tries again
                log.debug("adsreplay: session refresh failed: %s", exc)

    def stop(self, *, remove: bool) -> None:
        """Stop refreshing; ``remove`` deletes the registration (the run is over)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if remove:
            self.conn.delete(session_key(self.run_id))


def expire_run_keys(conn: Any, run_id: str, ttl: int) -> int:
    """Give every key of ``run_id`` that has no TTL one of ``ttl`` s; how many got one.

    rq keeps its queues, registries, dependents sets and started jobs without a TTL
    until the session deletes them (``broker.delete_run``); this covers a session that
    dies before it can.
    """
    keys = list(conn.scan_iter(match=f"*{run_id}*", count=1000))
    if not keys:
        return 0
    with conn.pipeline(transaction=False) as pipe:
        for k in keys:
            pipe.ttl(k)
        ttls = pipe.execute()
    bare = [k for k, left in zip(keys, ttls, strict=True) if left == -1]
    with conn.pipeline(transaction=False) as pipe:
        for k in bare:
            pipe.expire(k, ttl)
        pipe.execute()
    return len(bare)


def __getattr__(name: str) -> Any:
    """``pytest_adsreplay.queue.trust.TrustedJob`` for ``rq worker --job-class`` (built on
    first use, so importing this module does not import rq)."""
    if name == "TrustedJob":
        return job_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

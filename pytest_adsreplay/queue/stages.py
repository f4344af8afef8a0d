"""The three RQ jobs of a recording: read → aeb → db.

Rules (ECOSYSTEM_NOTES §1): importable module-level functions, one small JSON-able
``ctx`` dict in, a small JSON-able dict out, no module state. Signal arrays never travel
as job arguments or pickles: they sit in Redis hashes as raw little-endian float64
buffers with a TTL (``save_arrays``/``load_arrays``), or, with the decoded-signal cache,
in its content-addressed entry on disk (``load_signals``).

Every stage ends a chain explicitly: an expected failure (bad file, function error) is
returned as ``{"ok": False, ...}``; the aeb and db jobs depend on their parents with
``allow_failure`` and read the parents' status themselves, so a failed read never leaves
its dependents deferred, and the db stage always writes exactly one results row.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from pytest_adsreplay import malloc
from pytest_adsreplay.errors import AdsReplayError
from pytest_adsreplay.hashing import BackgroundHash
from pytest_adsreplay.queue import cache

DTYPE = "<f8"


#: The package's modules the stages import on first use (object storage included: its
#: package imports fsspec only when a recording is fetched).
STAGE_MODULES = (
    "pytest_adsreplay.replay",
    "pytest_adsreplay.signals.read",
    "pytest_adsreplay.signals.quality",
    "pytest_adsreplay.signals.objects",
    "pytest_adsreplay.kpi.compute",
    "pytest_adsreplay.fleet.stats",
    "pytest_adsreplay.function.host",
    "pytest_adsreplay.function.stepping",
    "pytest_adsreplay.function.shipping",
    "pytest_adsreplay.function.fingerprint",
    "pytest_adsreplay.function.binding",
    "pytest_adsreplay.results.store",
    "pytest_adsreplay.queue.trust",
    "pytest_adsreplay.storage",
    "pytest_adsreplay.storage.mapship",
)


def preload() -> None:
    """Import :data:`STAGE_MODULES` now, in the calling thread: before the embedded mode's
    threads run stages, so that no two of them import one of the package's modules at
    the same time. Under pytest every module of the plugin is compiled through pytest's
    assertion rewriting (``ast.parse``), and two threads in ``ast.parse`` at once can fail
    on CPython 3.11 with ``SystemError: AST constructor recursion depth mismatch``
    (a recording erred that way when a pytest-xdist worker's threads first needed the
    results store together). The same holds for any library that parses Python source
    while it loads: asammdf's dependencies are imported here too (a thread importing
    them once broke pytest's report of a failing test in the main thread). Also sets
    malloc up for replaying (:func:`pytest_adsreplay.malloc.reuse_freed_memory`)."""
    import importlib

    malloc.reuse_freed_memory()
    for name in STAGE_MODULES:
        importlib.import_module(name)
    # asammdf and what it imports (pandas, canmatrix, ...): some of those parse or
    # compile code as they load, which must not run beside pytest's own ast.parse
    importlib.import_module("asammdf")


def job_id(ctx: Mapping[str, Any], stage: str) -> str:
    return f"{ctx['run']}-{stage}-{ctx['key']}"


def data_key(ctx: Mapping[str, Any], what: str) -> str:
    return f"adsreplay:{ctx['run']}:{ctx['key']}:{what}"


def save_arrays(conn: Any, key: str, arrays: Mapping[str, np.ndarray], ttl: int) -> None:
    """Store float arrays as raw buffers in one Redis hash that expires after ``ttl`` s.

    The buffers are handed to the client as memoryviews, not copied into bytes first.
    """
    mapping = {name: _buffer(a) for name, a in arrays.items()}
    pipe = conn.pipeline(transaction=True)
    pipe.delete(key)
    if mapping:
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, ttl)
    pipe.execute()


def _buffer(a: np.ndarray) -> memoryview:
    """The raw little-endian float64 bytes of ``a``, without a copy when already so."""
    data: Any = np.ascontiguousarray(a, dtype=DTYPE)
    return memoryview(data).cast("B")


def load_arrays(conn: Any, key: str) -> dict[str, np.ndarray]:
    """Read back ``save_arrays``; only ``np.frombuffer`` on bytes, nothing is unpickled."""
    raw = conn.hgetall(key)
    return {
        (k.decode() if isinstance(k, bytes) else k): np.frombuffer(v, dtype=DTYPE).copy()
        for k, v in raw.items()
    }


def _connection() -> Any:
    from rq import get_current_job

    job = get_current_job()
    if job is None:  # pragma: no cover - stages only run inside rq jobs
        raise RuntimeError("pytest_adsreplay stages run as rq jobs; use replay_file() inline")
    return job.connection


def _failure(stage: str, exc: AdsReplayError) -> dict[str, Any]:
    return {
        "ok": False,
        "stage": stage,
        "outcome": exc.outcome,
        "error": str(exc),
        "type": type(exc).__name__,
    }


def parent_result(conn: Any, ctx: Mapping[str, Any], stage: str) -> dict[str, Any]:
    """What the ``stage`` job of this chain ended with, as a stage result dict.

    A crashed or timed-out job becomes ``{"ok": False, "outcome": "error", ...}`` with
    its traceback; the status is always checked first (a stale ``return_value`` from an
    earlier run with the same id must never be trusted).
    """
    from rq.exceptions import NoSuchJobError
    from rq.job import JobStatus

    from pytest_adsreplay.queue.broker import fetch_job

    jid = job_id(ctx, stage)
    try:
        job = fetch_job(conn, jid)
    except NoSuchJobError:
        return {
            "ok": False,
            "stage": stage,
            "outcome": "error",
            "error": f"{stage} job {jid} vanished from Redis (expired or deleted)",
        }
    status = job.get_status()
    try:
        if status == JobStatus.FINISHED:
            value = job.return_value()
            if isinstance(value, dict):
                return value
            return {
                "ok": False,
                "stage": stage,
                "outcome": "error",
                "error": f"{stage} job returned {value!r:.200}, not a result dict",
            }
        result = job.latest_result()
    except ValueError as exc:  # JSON decode of a tampered result stream: never unpickled
        return {
            "ok": False,
            "stage": stage,
            "outcome": "error",
            "error": f"{stage} job's result in Redis is not valid JSON ({exc}); "
            "something other than pytest-adsreplay wrote it",
        }
    exc_string = (result.exc_string if result is not None else None) or ""
    return {
        "ok": False,
        "stage": stage,
        "outcome": "error",
        "error": describe_crash(
            stage, str(status.value if status else status), exc_string, ctx.get("timeout")
        ),
    }


def describe_crash(stage: str, status: str, exc_string: str, timeout: Any = None) -> str:
    """A readable sentence for a job that did not finish (timeout, killed worker, crash)."""
    if "JobTimeoutException" in exc_string:
        return (
            f"{stage} stage exceeded the per-stage timeout of {timeout} s "
            "(--adsreplay-timeout); the function or the read may hang"
        )
    if "terminated unexpectedly" in exc_string or "AbandonedJobError" in exc_string:
        return f"{stage} stage: the worker process died while running it\n{exc_string.strip()}"
    if exc_string:
        return f"{stage} stage crashed ({status}):\n{exc_string.strip()}"
    return f"{stage} stage did not finish (status {status})"


def _channel_map(ctx: Mapping[str, Any]) -> Any:
    """The session's channel map; a worker whose copy at the session's path is missing
    or differs (fingerprint) uses the one that travelled through the broker
    (``ctx["channel_map_ref"]``), and without one must not read."""
    from pytest_adsreplay.errors import ChannelMapError
    from pytest_adsreplay.signals import ChannelMap, load_channel_map

    want = ctx.get("channel_map_sha")
    try:
        cmap = load_channel_map(ctx.get("channel_map"))
        if not (want and isinstance(cmap, ChannelMap) and cmap.fingerprint() != want):
            return cmap
        problem = ChannelMapError(
            f"the channel map {ctx['channel_map']} on this worker differs from the session's "
            f"(fingerprint {cmap.fingerprint()[:12]}, session {want[:12]})",
            hint="deploy the same channel map (and DBC files) to every worker",
        )
    except ChannelMapError as exc:
        problem = exc
    ref = ctx.get("channel_map_ref")
    if not isinstance(ref, Mapping):
        raise problem
    from pytest_adsreplay.storage import mapship

    folder = mapship.default_folder(ctx.get("cache_dir") or None)
    shipped = mapship.materialize(_connection(), ref, folder, source=str(ctx["channel_map"]))
    if want and shipped.fingerprint() != want:
        raise problem
    return shipped


def read_stage(ctx: dict[str, Any]) -> dict[str, Any]:
    """The read stage; a recording in object storage (``ctx["object"]``) is first made a
    local file through this host's download cache (a failure errors the recording)."""
    if not ctx.get("object"):
        return _read_file(ctx)
    from pytest_adsreplay import storage

    try:
        with storage.local_copy(ctx["object"]) as local:
            return _read_file({**ctx, "path": str(local)})
    except AdsReplayError as exc:
        return {**_failure("read", exc.with_recording(ctx["rec"])), "sha256": None}


def _read_file(ctx: dict[str, Any]) -> dict[str, Any]:
    """MF4 → canonical signals on the cycle grid, handed to the aeb stage.

    Without the decoded-signal cache the signals are stored in Redis as raw buffers.
    With ``ctx["cache_dir"]`` they are handed over as the cache entry's key (SPEC: "or in
    a content-addressed cache"): a hit is checked (metadata and size) but not loaded, a
    fresh read that passed the gate is stored there (:mod:`.cache`); the next stages
    load the entry (:func:`load_signals`), or decode the recording again if it is not
    on their host. The result says ``cache`` = hit, miss or off, the stage's own
    ``seconds`` and of those ``decode_seconds``, the time to get the signals (a read, or
    checking a hit), and the file's ``sha256`` (for the results row). With the cache the
    hash comes first (it is the key; remembered per file, see ``cache.content_hash``);
    without it the file is hashed in a thread while it is read.
    """
    from pytest_adsreplay.errors import SidecarError

    started = time.perf_counter()
    conn = _connection()
    cache_dir = ctx.get("cache_dir") or None
    sha: str | None = ctx.get("sha256")
    background = None if sha or cache_dir else BackgroundHash(ctx["path"])

    def digest() -> str | None:
        return sha or (background.result() if background else None)

    entry_key = handoff = None
    try:
        if cache_dir and not sha:
            sha = _content_hash(ctx["path"], cache_dir)
        if ctx.get("problem"):  # a broken sidecar: record the error, read nothing
            raise SidecarError(str(ctx["problem"]), recording=ctx["rec"])
        cmap = _channel_map(ctx)
        entry_key = _cache_key(ctx, cmap, sha) if cache_dir else None
        meta = cache.check(cache_dir, entry_key) if entry_key and cache_dir else None
        if meta is not None:
            n, sources, handoff = int(meta["samples"]), meta["sources"], entry_key
        else:
            entry = _decode(ctx, cmap)
            n, sources = len(entry.t), entry.sources
            if (
                entry_key
                and cache_dir
                and cache.store(cache_dir, entry_key, entry.t, entry.values, sources)
            ):
                handoff = entry_key
    except AdsReplayError as exc:
        return {**_failure("read", exc.with_recording(ctx["rec"])), "sha256": digest()}
    decoded = time.perf_counter()
    if handoff is None:
        save_arrays(conn, data_key(ctx, "signals"), {"t": entry.t, **entry.values}, int(ctx["ttl"]))
    return {
        "ok": True,
        "stage": "read",
        "n": n,
        "sources": dict(sources),
        "cache": "off" if not entry_key else "hit" if meta is not None else "miss",
        "signals_cache": handoff,
        "sha256": digest(),
        "seconds": time.perf_counter() - started,
        "decode_seconds": decoded - started,
    }


def _decode(ctx: Mapping[str, Any], cmap: Any) -> cache.Entry:
    """Read, resample and gate the recording (raises AdsReplayError).

    ``replay.read`` with a lean read: the gate's checks of the raw channels are made while
    reading and each channel's samples go once its signal is on the grid, so a long
    recording's raw channels and grid signals are never all in memory at once.
    """
    from pytest_adsreplay.signals import read_signals
    from pytest_adsreplay.signals.quality import GateSettings, gate

    if _file_size(ctx["path"]) >= LARGE_RECORDING:
        malloc.map_large_arrays()
    rec = ctx["rec"]
    try:
        sig = read_signals(
            ctx["path"],
            cmap,
            float(ctx["cycle_time"]),
            recording_id=rec,
            max_gap=_max_gap(ctx),
            lean=True,
        )
        settings = GateSettings(_max_gap(ctx), ctx.get("nominal_speed"), ctx.get("expect_target"))
        gate(sig, settings, recording=rec)
    except AdsReplayError as exc:
        raise exc.with_recording(rec) from None
    # only the grid and the values: the raw traces were for the gate
    return cache.Entry(sig.t, sig.values, dict(sig.sources))


#: Bytes: from this size on, a recording is read with a fixed mmap threshold (see
#: :func:`pytest_adsreplay.malloc.map_large_arrays`); a 10-minute logger file is ~17 MB.
LARGE_RECORDING = 256 << 20


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0  # the read says what is wrong with it


def load_signals(conn: Any, ctx: Mapping[str, Any], read: Mapping[str, Any]) -> dict[str, Any]:
    """The signals (with ``t``) a successful read stage handed over: from its cache
    entry, or from Redis. An entry this host does not hold (another host's cache, or
    cleared meanwhile) is decoded again from the recording, but only if this host's file,
    map and settings give the same key (else AdsReplayError: never other signals under
    that key); then it is stored. Raises AdsReplayError if that fails."""
    from pytest_adsreplay.errors import RecordingError

    ref = read.get("signals_cache")
    if not ref:
        return load_arrays(conn, data_key(ctx, "signals"))
    if not cache.is_key(ref):
        raise RecordingError(
            f"read stage handed over a malformed cache key {str(ref)[:80]!r}",
            recording=ctx.get("rec"),
        )
    cache_dir = ctx.get("cache_dir")
    entry = cache.load(cache_dir, ref) if cache_dir else None
    if entry is not None:
        return {"t": entry.t, **entry.values}
    if ctx.get("object"):  # decode again from this host's copy of the object
        from pytest_adsreplay import storage

        with storage.local_copy(ctx["object"]) as local:
            return load_signals(conn, {**ctx, "object": None, "path": str(local)}, read)
    cmap = _channel_map(ctx)
    try:
        here = _cache_key(ctx, cmap, cache.content_hash(ctx["path"], cache_dir))
    except OSError as exc:
        raise RecordingError(
            f"{ctx['path']} cannot be read again on this worker: {exc}", recording=ctx.get("rec")
        ) from None
    if here != ref:
        raise RecordingError(
            f"the recording {ctx['path']} on this worker differs from the one the read stage "
            "read (content, channel map or settings), and its cache entry is not here",
            recording=ctx.get("rec"),
            hint="deploy the same recordings and channel map to every worker host",
        )
    entry = _decode(ctx, cmap)
    if cache_dir:
        cache.store(cache_dir, ref, entry.t, entry.values, entry.sources)
    return {"t": entry.t, **entry.values}


def _content_hash(path: str, cache_dir: str | None) -> str | None:
    try:
        return cache.content_hash(path, cache_dir)
    except OSError:  # unreadable: no cache key; the read reports why
        return None


def _max_gap(ctx: Mapping[str, Any]) -> float:
    return float(ctx.get("max_gap") or 0.2)


def _cache_key(ctx: Mapping[str, Any], cmap: Any, sha: str | None) -> str | None:
    """The decoded-signal cache key of this read, or None (no file hash)."""
    if not sha:
        return None
    return cache.key(
        sha256=sha,
        channel_map=cmap.fingerprint(),
        cycle_time=float(ctx["cycle_time"]),
        max_gap=_max_gap(ctx),
        nominal_speed=ctx.get("nominal_speed"),
        expect_target=ctx.get("expect_target"),
    )


def check_build(ctx: Mapping[str, Any]) -> dict[str, Any] | None:
    """The aeb stage's failure when this process would run another build of the function
    than the session (``ctx["function_fingerprint"]``), else None.

    When the files here match the session's but differ from the build this process ran
    last (a long-lived worker whose code was deployed again), the function hosts of this
    process are stopped, so the next one loads the files on disk: a stale copy never
    steps a recording.
    """
    from pytest_adsreplay.errors import FunctionLoadError
    from pytest_adsreplay.function import fingerprint

    want = ctx.get("function_fingerprint")
    spec = str(ctx["function"])
    if not want:
        err = FunctionLoadError(
            f"{worker_identity()} refuses to run {spec[:120]}: the job carries no "
            "fingerprint of the session's build (the session could not find the "
            "function), so the build here cannot be checked; it never runs a function "
            "unchecked",
            recording=ctx.get("rec"),
            hint="make the function importable (or the file present) where the session "
            "runs, so it can fingerprint the build the workers must match",
        )
        return _failure("aeb", err)
    here = fingerprint.of_function(spec, ctx.get("binding"))
    if here.digest != want:
        session = f"{ctx.get('function_build') or 'its build'}, fingerprint {str(want)[:12]}"
        err = FunctionLoadError(
            f"{worker_identity()} has a different build of {spec} ({here.describe()}) than "
            f"the session ({session}); it never runs it",
            recording=ctx.get("rec"),
            hint="deploy the session's code (and the same installed versions) to this "
            "worker's host, or run the recordings with local workers",
        )
        logging.getLogger(__name__).error("adsreplay: %s", err)
        return _failure("aeb", err)
    if fingerprint.TRACKER.changed(spec, here):
        from pytest_adsreplay.function import host

        host.shutdown()
    return None


def worker_identity() -> str:
    """``worker W on host H`` of the job running in this process."""
    import os
    import socket

    from rq import get_current_job

    job = get_current_job()
    worker = (job.worker_name if job is not None else None) or f"pid {os.getpid()}"
    return f"worker {worker} on host {socket.gethostname()}"


def aeb_stage(ctx: dict[str, Any]) -> dict[str, Any]:
    """Signals → outputs of the function under test (skipped when read did not succeed).

    The function runs in this process's supervised host (kept across recordings,
    restarted after a crash); the run gets what is left of the stage timeout, less a
    margin, so a hang ends as the function's timeout error, not as a killed job.
    """
    from pytest_adsreplay.errors import FunctionLoadError

    started = time.monotonic()
    if (refused := _refused_function(ctx)) is not None:
        return refused
    conn = _connection()
    try:
        ctx = _local_function(ctx, conn)
    except FunctionLoadError as exc:
        return _failure("aeb", _load_error_here(exc, ctx))
    if (other_build := check_build(ctx)) is not None:
        return other_build
    parent = parent_result(conn, ctx, "read")
    if not parent.get("ok"):
        return {"ok": False, "stage": "aeb", "skipped": True}
    try:
        arrays = load_signals(conn, ctx, parent)
        t = arrays.pop("t")
        outputs = _step(ctx, t, arrays, started)
    except FunctionLoadError as exc:
        return _failure("aeb", _load_error_here(exc, ctx))
    except AdsReplayError as exc:
        return _failure("aeb", exc)
    save_arrays(conn, data_key(ctx, "outputs"), outputs, int(ctx["ttl"]))
    return {"ok": True, "stage": "aeb", "outputs": sorted(outputs)}


#: Times a recording goes to a fresh host because the one it waited for ended first.
_RETRIES = 100


def _step(ctx: Mapping[str, Any], t: Any, arrays: Mapping[str, Any], started: float) -> Any:
    """The recording stepped in this process's host; when that host ended (another
    recording crashed it) before this recording's turn, in a fresh one: it was never
    stepped, so its row must not be another recording's crash."""
    from pytest_adsreplay import replay
    from pytest_adsreplay.function.host import HostLost

    budget = _step_budget(ctx, started)  # from the run's start: waits for a turn are free
    timeout = ctx.get("timeout")
    label = f"aeb stage exceeded the per-stage timeout of {timeout} s (--adsreplay-timeout)"
    tries = 0
    while True:
        host = _function_host(ctx)
        try:
            return replay.step(
                host, t, arrays, recording_id=ctx["rec"], timeout=budget, timeout_label=label
            )
        except HostLost as lost:
            tries += 1
            if lost.interrupted or tries > _RETRIES:
                raise


def _refused_function(ctx: Mapping[str, Any]) -> dict[str, Any] | None:
    """The aeb stage's failure when this worker may not load the function the job names
    (``adsreplay worker --function``), checked before anything is imported or loaded."""
    from pytest_adsreplay.errors import FunctionLoadError
    from pytest_adsreplay.queue.trust import function_refusal

    why = function_refusal(dict(ctx))
    if why is None:
        return None
    err = FunctionLoadError(
        f"{worker_identity()} refused the function {str(ctx.get('function'))[:120]!r}: {why}",
        recording=ctx.get("rec"),
        hint="start the worker with --function FUNCTION naming the session's function "
        "(or set ADSREPLAY_WORKER_FUNCTIONS)",
    )
    logging.getLogger(__name__).error("adsreplay: %s", err)
    return _failure("aeb", err)


def _local_function(ctx: dict[str, Any], conn: Any) -> dict[str, Any]:
    """``ctx`` with the function file this worker runs: the session's path, a copy with
    the same sha256 from ``--functions DIR``, or (``--trust-shipped-functions``) the
    session's upload, verified (``function.shipping``)."""
    from pytest_adsreplay.function import shipping

    return dict(shipping.localize(ctx, conn))


def _function_host(ctx: Mapping[str, Any]) -> Any:
    """This process's host for the session's function, parameters and limits."""
    from pytest_adsreplay.function import host
    from pytest_adsreplay.function.protocol import FunctionOptions

    limits = host.HostLimits(
        memory=ctx.get("function_memory", host.MEMORY_DEFAULT),
        output=int(ctx.get("function_output") or host.OUTPUT_DEFAULT),
    )
    binding = ctx.get("binding")
    options = FunctionOptions(
        binding=binding if isinstance(binding, Mapping) else None,
        cycle_time=float(ctx["cycle_time"]) if ctx.get("cycle_time") else None,
    )
    return host.acquire(str(ctx["function"]), ctx.get("params") or {}, options, limits)


def _step_budget(ctx: Mapping[str, Any], started: float) -> float:
    """Seconds the function may step: the stage timeout left, less 10 % (at most 2 s)."""
    timeout = float(ctx.get("timeout") or 300.0)
    margin = min(2.0, 0.1 * timeout)
    return max(0.1, timeout - margin - (time.monotonic() - started))


def _load_error_here(exc: AdsReplayError, ctx: Mapping[str, Any]) -> AdsReplayError:
    """A load error that names the worker and host it happened on (and is logged there)."""
    import logging

    from pytest_adsreplay.errors import FunctionLoadError

    where = worker_identity()
    hint = exc.hint
    if exc.message.startswith("cannot import module"):
        module = str(ctx["function"]).partition(":")[0]
        hint = (
            f"make {module!r} importable where that worker runs: install its package there, "
            "or start the worker with the folder that holds it on PYTHONPATH "
            "(PYTHONPATH=<folder> adsreplay worker ...)"
        )
    logging.getLogger("pytest_adsreplay.worker").error(
        "%s cannot load the function under test %s: %s", where, ctx["function"], exc.message
    )
    return FunctionLoadError(f"{where}: {exc.message}", recording=ctx.get("rec"), hint=hint)


def _exposure(t: Any, signals: Mapping[str, Any], outputs: Mapping[str, Any]) -> dict[str, Any]:
    """What fleet statistics need beyond the KPIs: distance and time driven, warnings."""
    from pytest_adsreplay.fleet.stats import exposure, onsets

    speed = signals.get("ego_speed")
    distance, duration = (0.0, 0.0) if speed is None else exposure(t, speed)
    fcw = outputs.get("fcw")
    warnings = [] if fcw is None else onsets(t, fcw)
    return {"distance_m": distance, "duration_s": duration, "warnings": warnings}


def db_stage(ctx: dict[str, Any]) -> dict[str, Any]:
    """KPIs → one results row (always written, also for a failed read or aeb stage)."""
    from pytest_adsreplay import replay
    from pytest_adsreplay.results.store import open_store

    conn = _connection()
    read = parent_result(conn, ctx, "read")
    aeb = parent_result(conn, ctx, "aeb") if read.get("ok") else read
    outcome: dict[str, Any] = {
        "status": "ok",
        "stage": None,
        "error": None,
        "kpis": {},
        "sources": read.get("sources", {}),
    }
    if not read.get("ok") or not aeb.get("ok"):
        bad = read if not read.get("ok") else aeb
        outcome.update(
            status=bad.get("outcome", "error"), stage=bad.get("stage"), error=bad.get("error")
        )
    else:
        outputs = load_arrays(conn, data_key(ctx, "outputs"))
        try:
            arrays = load_signals(conn, ctx, read)
            t = arrays.pop("t")
            outcome["kpis"] = replay.kpis(
                t, arrays, outputs, replay.kpi_settings(**ctx["settings"])
            )
            outcome["exposure"] = _exposure(t, arrays, outputs)
        except AdsReplayError as exc:
            outcome.update(status=exc.outcome, stage="db", error=str(exc))
    sha = ctx.get("sha256") or read.get("sha256")
    if not sha:  # a read job that crashed or timed out did not say: hash the file here
        sha = _content_hash(ctx["path"], ctx.get("cache_dir"))
    store = open_store(ctx["db"])
    store.write_result(
        ctx["run"],
        ctx["rec"],
        variant=ctx.get("variant", ""),
        status=outcome["status"],
        kpis=outcome["kpis"],
        sha256=sha,
        stage=outcome["stage"],
        error=outcome["error"],
    )
    outcome["sha256"] = sha
    return outcome

"""The supervised function host: the function under test runs in a child process.

A :class:`FunctionHost` is a clean Python subprocess (not a fork: the parent may hold
fakeredis, threads and open connections) that loads the function once through
:func:`~pytest_adsreplay.function.open_function` and then steps whole recordings:
the signals go in and the outputs come back as raw float64 arrays in a shared memory
file, with one small JSON message each way over a pipe per recording. The child writes
the time of the cycle it is about to step into a shared one-value buffer, so when it
dies — any exit status, any signal, a segfault in native code — the recording gets a
FunctionCrashError saying how it died and the last cycle time reached, and the next
recording gets a fresh host.

Limits: the child's address space is capped with ``RLIMIT_AS`` (``memory`` bytes), its
stdout and stderr are captured with only the last ``output`` bytes kept (the rest is
counted), and a run that does not answer within its timeout is killed with SIGKILL (a
timer cannot interrupt native code).

Hosts are kept per process in a small pool keyed by the function, its parameters,
options and limits (:func:`acquire`): a worker keeps its host across recordings, and
threads that step recordings in parallel (the embedded mode's stepping threads) each
get a host of their own.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import mmap
import os
import select
import selectors
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pytest_adsreplay.errors import (
    AdsReplayError,
    FunctionCrashError,
    FunctionError,
    FunctionLoadError,
)
from pytest_adsreplay.function.protocol import FunctionOptions

MEMORY_DEFAULT = 4 * 1024**3  # bytes of address space for the function's process
OUTPUT_DEFAULT = 1024**2  # bytes of the function's output kept per recording
POOL_SIZE = 4  # hosts kept alive per process (e.g. parameter variants of one session)
DEPTH = 2  # runs a host holds at once: the one it steps and the next, waiting for its turn
DTYPE = "<f8"
_LEN = struct.Struct("<Q")
_GO = b"g"  # the go-ahead for a run that waits for its turn
_SKIP = b"s"  # ... or: its caller gave up on it, the child goes on to the next message
_READ = 1 << 20
_POLL = 0.05  # s between looks at a running child (memory, liveness)
_EXIT_WAIT = 5.0  # s a child that closed its pipe gets to exit before it is killed
_MEMORY_HINT = (
    "raise the limit in the ini file, e.g. `adsreplay_function_memory = 8GB` (or 0 for "
    "no limit), or find what the function keeps allocating"
)


@dataclass(frozen=True)
class HostLimits:
    """What the host allows the function: ``memory`` bytes of address space (None: no
    limit), the last ``output`` bytes of its stdout/stderr kept per recording."""

    memory: int | None = MEMORY_DEFAULT
    output: int = OUTPUT_DEFAULT


class HostLost(FunctionCrashError):
    """A run given to a host that had ended, or that ended before the run's turn
    (another recording's run crashed it, or the session stopped it): the recording was
    never stepped, so it may go to a fresh host (``interrupted``: the session is
    stopping)."""

    def __init__(self, message: str, *, recording: str | None, interrupted: bool):
        super().__init__(message, recording=recording, hint="run it again in a fresh host")
        self.interrupted = interrupted


@dataclass(eq=False)  # compared by identity
class _Run:
    """One run sent to a host: its shared-memory ``slot``, whether the child waits for a
    go-ahead before it starts (``wait``: another run was ahead of it) and whether it was
    lost with its host before its turn."""

    slot: int
    wait: bool
    lost: bool = False
    abandoned: bool = False  # its caller gave up before its turn: the child skips it
    sent: bool = False  # its message is in the command pipe


def format_size(n: float) -> str:
    """``4 GB``, ``512 MB``, ``1.5 kB``: bytes for a message (powers of 1024)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            text = f"{n:.1f}".removesuffix(".0") if unit != "B" else str(int(n))
            return f"{text} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


class _Tail:
    """The last ``cap`` bytes written to a stream, and how many there were in all."""

    def __init__(self, cap: int):
        self.cap = max(0, cap)
        self.buf = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        self.buf += data
        if len(self.buf) > self.cap:
            del self.buf[: len(self.buf) - self.cap]

    def clear(self) -> None:
        self.buf.clear()
        self.total = 0

    def text(self) -> str:
        """The kept tail as an error-message section ('' when nothing was written)."""
        if not self.total:
            return ""
        body = self.buf.decode("utf-8", errors="replace").rstrip()
        dropped = self.total - len(self.buf)
        more = f"; {format_size(dropped)} more not shown" if dropped else ""
        kept = format_size(len(self.buf))
        return f"\n\nOutput of the function under test (last {kept}{more}):\n{body}"


class _Shared:
    """The signals and outputs of a recording, in a memory file both processes map.

    Only a small JSON header crosses the pipe (which arrays, where); the arrays
    themselves are copied once into the shared file and once out of it. The file grows
    (either side may grow it; the other remaps) and is never shrunk.
    """

    def __init__(self, fd: int):
        self.fd = fd
        self.mm = mmap.mmap(fd, max(os.fstat(fd).st_size, mmap.PAGESIZE))

    @classmethod
    def create(cls) -> _Shared:
        return cls(_memory_file("adsreplay-function-data", mmap.PAGESIZE))

    def _ensure(self, size: int) -> None:
        if os.fstat(self.fd).st_size < size:
            os.ftruncate(self.fd, size)
        if len(self.mm) < size:
            self.mm.close()
            self.mm = mmap.mmap(self.fd, os.fstat(self.fd).st_size)

    def put(self, arrays: Mapping[str, np.ndarray]) -> list[list[Any]]:
        """Copy ``arrays`` in; their ``[name, size, offset]`` for the header."""
        bufs = [np.asarray(a, dtype=DTYPE).reshape(-1) for a in arrays.values()]
        self._ensure(sum(8 * b.size for b in bufs))
        spec: list[list[Any]] = []
        pos = 0
        for name, b in zip(arrays, bufs, strict=True):
            np.frombuffer(self.mm, dtype=DTYPE, count=b.size, offset=pos)[:] = b
            spec.append([name, int(b.size), pos])
            pos += 8 * b.size
        return spec

    def get(self, spec: list[list[Any]]) -> dict[str, np.ndarray]:
        """Copies of the arrays ``put`` (by either process) described."""
        self._ensure(max((int(off) + 8 * int(n) for _, n, off in spec), default=0))
        return {
            str(name): np.frombuffer(self.mm, dtype=DTYPE, count=int(n), offset=int(off)).copy()
            for name, n, off in spec
        }

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.mm.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _memory_file(name: str, size: int) -> int:
    """A file descriptor of ``size`` bytes of memory, unlinked (Linux: memfd)."""
    make = getattr(os, "memfd_create", None)
    if make is not None:
        fd: int = make(name, 0)
    else:  # pragma: no cover - no memfd
        with tempfile.TemporaryFile() as f:
            fd = os.dup(f.fileno())
    os.ftruncate(fd, size)
    return fd


def _message(header: Mapping[str, Any]) -> list[bytes]:
    """A pipe message: the length of the JSON header, the header."""
    raw = json.dumps(header).encode()
    return [_LEN.pack(len(raw)), raw]


def _parse(data: bytes | bytearray) -> dict[str, Any] | None:
    """The header at the start of ``data``, or None while it is incomplete."""
    if len(data) < _LEN.size:
        return None
    (hlen,) = _LEN.unpack_from(data)
    end = _LEN.size + hlen
    if len(data) < end:
        return None
    header: dict[str, Any] = json.loads(bytes(data[_LEN.size : end]))
    return header


class FunctionHost:
    """One supervised child process holding one loaded function under test."""

    def __init__(
        self,
        spec: str,
        params: Mapping[str, Any] | None = None,
        options: FunctionOptions | None = None,
        limits: HostLimits | None = None,
    ):
        self.spec = spec
        self.params = dict(params or {})
        self.options = options or FunctionOptions()
        self.limits = limits or HostLimits()
        self.owner = os.getpid()
        self.proc: subprocess.Popen[bytes] | None = None
        self.kind = "python"
        self.cycle_time: float | None = None
        self.output = _Tail(self.limits.output)
        self.started_seconds = 0.0  # how long starting and loading took
        self._peak_vm = 0  # bytes of address space last seen in use
        self._fds: dict[str, int] = {}
        self._progress: mmap.mmap | None = None
        self._shared: list[_Shared] = []  # one memory file per run it may hold (DEPTH)
        self._timeout_label: str | None = None
        self.step_seconds = 0.0  # the child's own time for the last recording
        self._turns = threading.Condition(threading.RLock())  # guards _runs and the pipe
        self._runs: list[_Run] = []  # sent, not yet answered; the first one is stepping
        self.interrupted = False  # killed because the session stops (see interrupt())
        self._close_idle = False  # close after the runs it holds (close_when_idle)

    # -- lifecycle -------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.owner == os.getpid() and self.proc.poll() is None

    def start(
        self, timeout: float = 120.0, meanwhile: Callable[[], object] | None = None
    ) -> FunctionHost:
        """Start the child and load the function there (FunctionLoadError if it cannot);
        ``meanwhile`` runs in this thread while the child loads it."""
        began = time.perf_counter()
        if self.proc is None:  # else a spare process adopted by acquire()
            self._spawn()
        options = asdict(self.options)
        options["binding"] = dict(self.options.binding) if self.options.binding else None
        header = {
            "op": "open",
            "spec": self.spec,
            "params": self.params,
            "options": options,
            "memory": self.limits.memory,
            "sys_path": list(sys.path),
        }
        pending = [memoryview(m) for m in _message(header)]
        try:
            self._send(pending)  # what the pipe takes now; the rest in the exchange
            if meanwhile is not None:
                meanwhile()
            reply = self._exchange(pending, timeout, None, "loading")
        except BaseException:
            self.close()
            raise
        if not reply.get("ok"):
            self.close()
            raise _error_from(reply, None)
        self.kind = str(reply.get("kind", "python"))
        ct = reply.get("cycle_time")
        self.cycle_time = None if ct is None else float(ct)
        self.started_seconds = time.perf_counter() - began
        return self

    def _spawn(self) -> None:
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        out_r, out_w = os.pipe()
        prog_fd = _memory_file("adsreplay-function-progress", mmap.PAGESIZE)
        self._shared = [_Shared.create() for _ in range(DEPTH)]
        fds = (cmd_r, res_w, prog_fd, *(sh.fd for sh in self._shared))
        code = "from pytest_adsreplay.function.host import child_main; child_main()"
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-u", "-c", code, *map(str, fds)],
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=out_w,
                pass_fds=fds,
                close_fds=True,
                env=child_environment(),
            )
        finally:
            for fd in (cmd_r, res_w, out_w):
                os.close(fd)
        self._progress = mmap.mmap(prog_fd, mmap.PAGESIZE)
        os.close(prog_fd)
        for fd in (cmd_w, res_r, out_r):
            os.set_blocking(fd, False)
        self._fds = {"cmd": cmd_w, "res": res_r, "out": out_r}

    def close(self) -> None:
        """Stop the child (EOF on its command pipe, then SIGKILL if it lingers); runs
        waiting for their turn end with :class:`HostLost`."""
        self._detach()()

    def _detach(self) -> Callable[[], None]:
        """Take the child's resources from this host and send it EOF; the returned call
        waits for the child to end and frees the rest (``close`` in two halves, so that
        :func:`shutdown` lets every child end at once)."""
        with self._turns:  # another thread may close it at the same time
            proc, self.proc = self.proc, None
            fds, self._fds = self._fds, {}
            progress, self._progress = self._progress, None
            shared, self._shared = self._shared, []
            for waiting in self._runs:
                waiting.lost = True
            self._runs.clear()
            self._turns.notify_all()
        mine = proc is not None and self.owner == os.getpid()
        if mine:
            with contextlib.suppress(OSError):
                os.close(fds.pop("cmd"))

        def finish() -> None:
            try:
                if mine:
                    assert proc is not None
                    try:
                        proc.wait(timeout=1.0)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            finally:  # also when the wait is interrupted (Ctrl-C)
                for fd in fds.values():
                    with contextlib.suppress(OSError):
                        os.close(fd)
                if progress is not None:
                    progress.close()
                for one in shared:
                    one.close()

        return finish

    # -- running -----------------------------------------------------------------------

    def run(
        self,
        t: np.ndarray,
        signals: Mapping[str, np.ndarray],
        *,
        inputs: tuple[str, ...] = (),
        recording: str | None = None,
        timeout: float | None = None,
        timeout_label: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Step one whole recording in the child; its outputs as arrays on ``t``.

        Raises FunctionError for a failure inside the function, FunctionCrashError when
        the child dies or does not answer within ``timeout`` seconds (it is then killed;
        ``timeout_label`` says which timeout that was); after a crash the host is
        closed and :func:`acquire` starts a new one.

        Two threads may run recordings on one host at once (``DEPTH``): the second one's
        signals go to the child while the first steps, and the child starts it as soon
        as the first one's outputs and output text are collected, so the host does not
        wait for the caller's work between recordings. The second run's ``timeout``
        counts from its start; when the host ends before that, it raises
        :class:`HostLost` (the recording was never stepped).
        """
        arrays = {"t": np.asarray(t, dtype=np.float64), **signals}
        mine, shared, proc = self._submit(arrays, inputs, recording)
        # this run's turn: the child steps it now
        try:
            self._timeout_label = timeout_label
            self.output.clear()
            reply = self._exchange([], timeout, recording, "stepping")
            outputs = shared.get(reply.get("arrays") or [])
        except BaseException as exc:
            if self.proc is not proc and isinstance(exc, Exception):
                # another thread closed the host under this run (a retired or evicted
                # host): not this recording's failure
                raise HostLost(
                    "the function host was stopped while it stepped this recording",
                    recording=recording,
                    interrupted=self.interrupted,
                ) from None
            self.close()
            if isinstance(exc, FunctionCrashError):
                prestart()  # the next recording's host starts now
            raise
        try:
            if not reply.get("ok"):
                error = _error_from(reply, recording, self.output.text())
                if reply.get("fatal"):
                    self.close()
                raise error
            self.step_seconds = float(reply.get("seconds") or 0.0)
            return outputs
        finally:
            if self.proc is proc:
                self._next_turn(mine)  # also when an exception is raised in this thread

    def _submit(
        self, arrays: Mapping[str, np.ndarray], inputs: tuple[str, ...], recording: str | None
    ) -> tuple[_Run, _Shared, Any]:
        """Hand a run to the child and wait for its turn; the run, its memory file and the
        child process it went to."""
        with self._turns:
            while len(self._runs) >= DEPTH and self.proc is not None:
                self._turns.wait(_POLL)  # in slices: an exception raised in this thread
                # (rq's job timeout) is delivered only between them
            if not self.alive:  # e.g. ended by another thread's run since acquire()
                raise HostLost(
                    "the function host is not running",
                    recording=recording,
                    interrupted=self.interrupted,
                )
            busy = {r.slot for r in self._runs}
            mine = _Run(slot=min(set(range(DEPTH)) - busy), wait=bool(self._runs))
            header = {
                "op": "run",
                "inputs": list(inputs),
                "recording": recording,
                "slot": mine.slot,
                "wait": mine.wait,
                "arrays": self._shared[mine.slot].put(arrays),
            }
            if not mine.wait:
                self._set_progress(math.nan)
            shared, proc = self._shared[mine.slot], self.proc
            try:
                self._runs.append(mine)
                self._write(_message(header))
                mine.sent = True
                while not mine.lost and self._runs[0] is not mine:
                    self._turns.wait(_POLL)  # in slices, as above
            except BaseException:  # e.g. the job's own timeout, raised in this thread
                if mine not in self._runs:
                    pass  # not appended, or lost with the host
                elif not mine.sent or self._runs[0] is mine:
                    # a message cut short (the stream cannot go on), or its turn had
                    # come and the child may be stepping it
                    self.close()
                else:
                    mine.abandoned = True
                raise
            if mine.lost:
                why = (
                    "the session is stopping"
                    if self.interrupted
                    else "another recording's run ended it"
                )
                raise HostLost(
                    f"the function host ended before this recording's turn ({why})",
                    recording=recording,
                    interrupted=self.interrupted,
                )
        return mine, shared, proc

    def _next_turn(self, done: _Run) -> None:
        """``done`` is answered and collected: the next run, if any, starts now."""
        with self._turns:
            if self._runs and self._runs[0] is done:
                self._runs.pop(0)
                # when the child is gone, the next run's exchange says how
                with contextlib.suppress(OSError, ValueError):
                    while self._runs and self._runs[0].abandoned:
                        self._write([_SKIP])
                        self._runs.pop(0)
                    if self._runs and self._runs[0].wait:
                        self._set_progress(math.nan)
                        self._write([_GO])
            if not self._runs and self._close_idle:
                self.close()
            self._turns.notify_all()

    def close_when_idle(self) -> None:
        """:meth:`close` now, or after the runs it holds (another thread's) are done."""
        with self._turns:
            if self._runs:
                self._close_idle = True
            else:
                self.close()  # under the lock: no run starts in between

    def _write(self, message: list[bytes]) -> None:
        """Write all of ``message`` to the command pipe (the caller holds ``_turns``, so
        messages and go-aheads never interleave); returns early when the child is gone
        (the run's exchange then says how it ended)."""
        if "cmd" not in self._fds:
            return  # closed
        pending = [memoryview(m) for m in message]
        while self._send(pending):
            if self.proc is None or self.proc.poll() is not None:
                return
            select.select([], [self._fds["cmd"]], [], _POLL)

    def _set_progress(self, value: float) -> None:
        if self._progress is not None:
            struct.pack_into("<d", self._progress, 0, value)

    def progress(self) -> float:
        """The time of the last cycle the child started (NaN: none yet)."""
        if self._progress is None:
            return math.nan
        value: float = struct.unpack_from("<d", self._progress, 0)[0]
        return value

    def _exchange(
        self,
        message: Sequence[bytes | memoryview],
        timeout: float | None,
        recording: str | None,
        doing: str,
    ) -> dict[str, Any]:
        """Send ``message``, collect the reply, drain the output meanwhile; raise
        FunctionError when the child dies or the deadline passes."""
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        pending = [memoryview(m) for m in message]
        received = bytearray()
        sel = selectors.DefaultSelector()
        try:
            sel.register(self._fds["res"], selectors.EVENT_READ, "res")
            sel.register(self._fds["out"], selectors.EVENT_READ, "out")
            if pending:
                sel.register(self._fds["cmd"], selectors.EVENT_WRITE, "cmd")
            while True:
                wait = (
                    _POLL if deadline is None else min(_POLL, max(0.0, deadline - time.monotonic()))
                )
                for key, _ in sel.select(wait):
                    if key.data == "cmd":
                        if not self._send(pending):
                            sel.unregister(self._fds["cmd"])
                    elif key.data == "out":
                        if not self._drain_output():
                            sel.unregister(self._fds["out"])
                    else:
                        chunk = _read(self._fds["res"])
                        if chunk is None:
                            continue
                        if not chunk:
                            raise self._died(recording, doing)
                        received += chunk
                        parsed = _parse(received)
                        if parsed is not None:
                            self._drain_output()
                            return parsed
                self._sample_memory()
                if deadline is not None and time.monotonic() >= deadline:
                    raise self._kill_on_timeout(timeout or 0.0, recording, doing)
        finally:
            sel.close()

    def _send(self, pending: list[memoryview]) -> bool:
        """Write what the pipe takes; False when everything is sent."""
        while pending:
            try:
                n = os.write(self._fds["cmd"], pending[0])
            except BlockingIOError:
                return True
            except BrokenPipeError:
                pending.clear()  # the child is gone: the result pipe says how
                return False
            if n == len(pending[0]):
                pending.pop(0)
            else:
                pending[0] = pending[0][n:]
        return False

    def _drain_output(self) -> bool:
        """Read the child's available output into the tail; False at EOF."""
        while True:
            chunk = _read(self._fds["out"])
            if chunk is None:
                return True
            if not chunk:
                return False
            self.output.add(chunk)

    def _sample_memory(self) -> None:
        if self.proc is None:
            return
        try:
            with open(f"/proc/{self.proc.pid}/statm", "rb") as f:
                self._peak_vm = max(self._peak_vm, int(f.read().split()[0]) * mmap.PAGESIZE)
        except (OSError, ValueError, IndexError):
            pass

    def _where(self) -> tuple[float | None, str]:
        t = self.progress()
        if math.isnan(t):
            return None, "before its first cycle"
        return t, f"at or after t = {t:.3f} s"

    def _died(self, recording: str | None, doing: str) -> FunctionError:
        """The error for a child that closed its result pipe: how it ended, and where."""
        proc = self.proc
        assert proc is not None
        try:
            status = proc.wait(timeout=_EXIT_WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            status = proc.wait()
        self._drain_output()
        t, where = self._where()
        if status >= 0:
            how = f"exited with status {status}"
        else:
            how = f"crashed ({signal_name(-status)})"
            if -status == signal.SIGKILL:
                how = "was killed (SIGKILL, perhaps by the kernel's out-of-memory killer)"
        text = f"the function under test {how} {where}"
        if doing == "loading":
            text = f"the function under test {how} while it was being loaded"
        hint = (
            "the other recordings run in a fresh function host; reproduce with "
            "pytest_adsreplay.replay_file(path, function)"
        )
        limit = self.limits.memory
        if limit and self._peak_vm >= 0.9 * limit:
            text += (
                f"; it was using {format_size(self._peak_vm)} of its memory limit of "
                f"{format_size(limit)} (adsreplay_function_memory)"
            )
            hint = _MEMORY_HINT
        return FunctionCrashError(text + self.output.text(), t=t, recording=recording, hint=hint)

    def _kill_on_timeout(self, timeout: float, recording: str | None, doing: str) -> FunctionError:
        proc = self.proc
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self._drain_output()
        t, where = self._where()
        what = f"did not finish {doing} within {timeout:.1f} s"
        if self._timeout_label and doing == "stepping":
            what = f"did not finish ({self._timeout_label})"
        return FunctionCrashError(
            f"the function under test {what} and was killed (SIGKILL) {where}" + self.output.text(),
            t=t,
            recording=recording,
            hint="it may hang (an endless loop, a blocking call in native code); or raise "
            "adsreplay_timeout (--adsreplay-timeout) if the recording is that long",
        )


#: Variables the function under test does not get: the broker's URL (with its password).
_PRIVATE_VARIABLES = ("ADSREPLAY_REDIS_URL",)


def child_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _PRIVATE_VARIABLES}


def _read(fd: int) -> bytes | None:
    """Up to 1 MB from a non-blocking pipe; None when nothing is there, b'' at EOF."""
    try:
        return os.read(fd, _READ)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _error_from(
    reply: Mapping[str, Any], recording: str | None, output: str = ""
) -> AdsReplayError:
    """The error a child reported, rebuilt in this process."""
    err = reply.get("error") or {}
    message = str(err.get("message", "the function host failed")) + output
    hint = err.get("hint")
    rec = err.get("recording") or recording
    kind = str(err.get("type", "FunctionError"))
    if kind == "FunctionLoadError":
        return FunctionLoadError(message, recording=rec, hint=hint)
    cls = FunctionCrashError if kind == "FunctionCrashError" else FunctionError
    return cls(message, t=err.get("t"), traceback=err.get("traceback"), recording=rec, hint=hint)


# -- the pool of hosts of this process ----------------------------------------------------


class Team:
    """Threads that share their hosts (see :func:`join`): one thread's recording steps
    while the next one's signals are handed to the same host by the other."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.released: set[threading.Thread] = set()  # members done with its hosts
        self.lock = threading.Lock()  # one member at a time acquires (starts) a host

    def is_alive(self) -> bool:
        return any(t.is_alive() for t in self.threads)


_LOCAL = threading.local()


def join(team: Team) -> None:
    """The calling thread shares its hosts with the other threads of ``team``: they
    acquire the same host, which holds up to ``DEPTH`` of their runs at once."""
    _LOCAL.team = team
    team.threads.append(threading.current_thread())


def _me() -> threading.Thread | Team:
    """Who holds the hosts the calling thread acquires: its team, or itself."""
    team: Team | None = getattr(_LOCAL, "team", None)
    return team if team is not None else threading.current_thread()


@dataclass
class _Slot:
    """A pooled host, what it was acquired for (``key``) and the thread (or team) using
    it (``holder``; None: free for any thread)."""

    key: str
    host: FunctionHost
    holder: threading.Thread | Team | None
    retired: bool = False  # shut down while another thread held it: closed on its return


#: Every host of this process, least recently acquired first.
_POOL: list[_Slot] = []
_POOL_LOCK = threading.Lock()


def _pool_key(
    spec: str, params: Mapping[str, Any], options: FunctionOptions, limits: HostLimits
) -> str:
    """The pool key: what the host loaded and from where (``sys.path`` and the working
    folder decide which files an import finds); a Python function reads no options, so
    they are not part of its key."""
    from pytest_adsreplay.function import function_kind

    opts = asdict(options) if function_kind(spec) != "python" else None
    where = [os.getcwd(), *sys.path]
    return json.dumps(
        [spec, dict(params), opts, asdict(limits), where], sort_keys=True, default=str
    )


def _free(slot: _Slot, me: threading.Thread | Team) -> bool:
    """Whether ``me`` may take ``slot``: nobody holds it, or its holder has ended."""
    return slot.holder is None or slot.holder is me or not slot.holder.is_alive()


def _take(key: str, me: threading.Thread | Team) -> FunctionHost | None:
    """The live host for ``key`` this thread holds, else a free one (the caller holds the
    lock); dead or retired hosts met on the way are closed."""
    mine = [s for s in _POOL if s.key == key and s.holder is me]
    other = [s for s in _POOL if s.key == key and s.holder is not me and _free(s, me)]
    for slot in mine + other:
        _POOL.remove(slot)
        if slot.host.alive and not slot.retired:
            return slot.host
        slot.host.close_when_idle()  # a team member may still be stepping on it
    return None


def _evict(holder: threading.Thread | Team | None) -> None:
    """Close the least recently used hosts of ``holder`` beyond ``POOL_SIZE`` (the caller
    holds the lock)."""
    held = [s for s in _POOL if s.holder is holder]
    for slot in held[: max(0, len(held) - POOL_SIZE)]:
        _POOL.remove(slot)
        slot.host.close_when_idle()  # a team member may be stepping on it


def acquire(
    spec: str,
    params: Mapping[str, Any] | None = None,
    options: FunctionOptions | None = None,
    limits: HostLimits | None = None,
    *,
    meanwhile: Callable[[], object] | None = None,
) -> FunctionHost:
    """A running host for this function, parameters, options and limits, for the calling
    thread: the one it kept from its last recording when that is still alive, else a
    free one (released, or left by a thread that ended), else a new one
    (FunctionLoadError when the function cannot be loaded).

    A host is never handed to two live threads at once (unless they are a
    :class:`Team`), so threads that step recordings in parallel each get their own
    process; each thread (or team) keeps at most ``POOL_SIZE`` hosts (e.g. parameter
    variants).

    ``meanwhile`` runs in the calling thread while a new host loads the function (else
    right away): a session prepares its own side in the time the child needs.
    """
    params = dict(params or {})
    options = options or FunctionOptions()
    limits = limits or HostLimits()
    key = _pool_key(spec, params, options, limits)
    me = _me()
    if isinstance(me, Team):
        with me.lock:  # the other members take the host this one may be starting
            return _acquire(key, me, spec, params, options, limits, meanwhile)
    return _acquire(key, me, spec, params, options, limits, meanwhile)


def _acquire(
    key: str,
    me: threading.Thread | Team,
    spec: str,
    params: dict[str, Any],
    options: FunctionOptions,
    limits: HostLimits,
    meanwhile: Callable[[], object] | None,
) -> FunctionHost:
    with _POOL_LOCK:
        host = _take(key, me)
        if host is None:
            host = _adopt_spare(FunctionHost(spec, params, options, limits))
            fresh = True
        else:
            fresh = False
            _POOL.append(_Slot(key, host, me))
    if fresh:
        host.start(meanwhile=meanwhile)  # outside the lock: other threads go on
        with _POOL_LOCK:
            _POOL.append(_Slot(key, host, me))
    elif meanwhile is not None:
        meanwhile()
    with _POOL_LOCK:
        _evict(me)
    return host


def release() -> None:
    """The calling thread is done with its hosts: they stay alive, free for any thread
    (a session hands the host it loaded the function in to its stepping threads)."""
    me = _me()
    with _POOL_LOCK:
        if isinstance(me, Team):
            me.released.add(threading.current_thread())
            if any(t not in me.released and t.is_alive() for t in me.threads):
                return  # its team goes on with them; the last one to end releases
        for slot in _POOL:
            if slot.holder is me:
                slot.holder = None
        _evict(None)


def _busy_elsewhere(holder: threading.Thread | Team | None) -> bool:
    """Whether a live thread other than the calling one holds hosts as ``holder``."""
    me = threading.current_thread()
    if holder is None:
        return False
    if isinstance(holder, Team):
        return any(t.is_alive() for t in holder.threads if t is not me)
    return holder is not me and holder.is_alive()


#: Host processes started ahead of need, without a function (see :func:`prestart`).
_SPARE: list[FunctionHost] = []


def prestart(count: int = 1) -> None:
    """Start host processes now, without a function, until ``count`` spares are alive,
    for the next :func:`acquire` calls that need a new host: the interpreter and numpy
    start while the caller does other work (a session collecting its tests), and the
    function is still loaded with the ``sys.path`` and limits of that later call."""
    with _POOL_LOCK:
        alive = [h for h in _SPARE if h.alive]
        for dead in (h for h in _SPARE if not h.alive):
            dead.close()
        _SPARE[:] = alive
        while len(_SPARE) < count:
            spare = FunctionHost("")
            spare._spawn()
            _SPARE.append(spare)


def _adopt_spare(host: FunctionHost) -> FunctionHost:
    """``host`` with a spare process when there is a live one (the caller holds the
    lock)."""
    while _SPARE:
        spare = _SPARE.pop()
        if spare.alive:
            host.proc, host._fds = spare.proc, spare._fds
            host._progress, host._shared = spare._progress, spare._shared
            spare._shared = []
            return host
        spare.close()
    return host


def interrupt() -> int:
    """Kill (SIGKILL) the processes of hosts that other live threads hold, so that a
    recording they step ends at once with a crash error (the session is stopping);
    how many were killed. Nothing else is touched: each thread closes its own."""
    killed = 0
    with _POOL_LOCK:
        for slot in _POOL:
            proc = slot.host.proc
            if not _busy_elsewhere(slot.holder) or proc is None:
                continue
            slot.host.interrupted = True  # a run waiting for its turn is not run again
            with contextlib.suppress(OSError):
                proc.kill()
                killed += 1
    return killed


def shutdown() -> None:
    """Stop every host of this process; a host that another live thread holds (it may be
    stepping a recording right now) is retired instead and closed when that thread
    next acquires one."""
    with _POOL_LOCK:
        keep: list[_Slot] = []
        ending: list[Callable[[], None]] = []  # every child gets its EOF first
        for slot in _POOL:
            if _busy_elsewhere(slot.holder):
                slot.retired = True
                keep.append(slot)
            else:
                ending.append(slot.host._detach())
        _POOL[:] = keep
        while _SPARE:
            ending.append(_SPARE.pop()._detach())
        failed: BaseException | None = None
        for finish in ending:  # every one, whatever one of them raises (Ctrl-C)
            try:
                finish()
            except BaseException as exc:
                failed = failed or exc
        if failed is not None:
            raise failed


atexit.register(shutdown)


# -- the child ------------------------------------------------------------------------


def child_main() -> None:
    """The host process: load the function, then step recordings until EOF."""
    import faulthandler

    cmd_fd, res_fd, prog_fd, *data_fds = (int(a) for a in sys.argv[1:])
    # Ctrl-C and SIGTERM are the parent's to handle: a CI runner that cancels a job
    # signals the whole process group, and the parent then stops this process itself
    # (SIGKILL) and says why, instead of this recording looking like a crash
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    faulthandler.enable()  # a native crash prints the Python stack into the captured output
    die_with_parent()
    from pytest_adsreplay import malloc

    malloc.reuse_freed_memory()  # each recording's arrays reuse the last one's pages
    buf = mmap.mmap(prog_fd, mmap.PAGESIZE)
    progress = memoryview(buf).cast("d")
    cmd = os.fdopen(cmd_fd, "rb", buffering=0)
    res = os.fdopen(res_fd, "wb", buffering=0)
    shared = [_Shared(fd) for fd in data_fds]
    child = _Child(progress)
    while True:
        header = _read_message(cmd)
        if header is None:
            return
        slot = shared[int(header.get("slot") or 0)]
        given = slot.get(header.get("arrays") or [])
        # a run sent while another was stepping starts when the parent has collected
        # that one's outputs and output text
        if header.get("wait"):
            go = _read_exact(cmd, len(_GO))
            if go is None:
                return
            if go == _SKIP:
                continue
        reply, arrays = child.handle(header, given)
        del given  # the next run's arrays are copied in before these are collected
        _flush()
        if arrays:
            reply["arrays"] = slot.put(arrays)
        del arrays
        for part in _message(reply):
            res.write(part)
        if reply.get("fatal"):
            os._exit(70)


def _flush() -> None:
    """Flush Python's and C's stdio, so the output of a run is in the pipe before its reply."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).fflush(None)


def die_with_parent() -> None:
    """Linux: SIGKILL this process when the parent dies (a hang in native code would
    otherwise outlive it; elsewhere EOF on the command pipe ends an idle child)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _read_message(f: Any) -> dict[str, Any] | None:
    """The next header from the command pipe (None at EOF)."""
    head = _read_exact(f, _LEN.size)
    if head is None:
        return None
    (hlen,) = _LEN.unpack(head)
    raw = _read_exact(f, hlen)
    if raw is None:
        return None
    header: dict[str, Any] = json.loads(raw)
    return header


def _read_exact(f: Any, n: int) -> bytes | None:
    data = bytearray()
    while len(data) < n:
        chunk = f.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


class _Child:
    """The child's state: the loaded adapter and the memory limit."""

    def __init__(self, progress: Any):
        self.progress = progress
        self.adapter: Any = None
        self.memory: int | None = None

    def handle(
        self, header: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        try:
            if header.get("op") == "open":
                return self.open(header), {}
            began = time.perf_counter()
            outputs = self.run(header, arrays)
            return {"ok": True, "seconds": time.perf_counter() - began}, outputs
        except MemoryError:
            return self._memory_error(header), {}
        except AdsReplayError as exc:
            if isinstance(exc, FunctionError) and "raised MemoryError" in exc.message:
                return self._memory_error(header, exc.t), {}
            return {"ok": False, "error": _error_dict(exc)}, {}
        except Exception as exc:
            import traceback

            text = "".join(traceback.format_exception(exc))
            error = {
                "type": "FunctionError",
                "message": f"the function host failed: {type(exc).__name__}: {exc}",
                "traceback": text,
            }
            return {"ok": False, "fatal": True, "error": error}, {}

    def open(self, header: dict[str, Any]) -> dict[str, Any]:
        # exactly what the parent can import (``python -c`` would add the working folder)
        sys.path[:] = [str(p) for p in header.get("sys_path", ())]
        self.memory = header.get("memory") or None
        if self.memory:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (int(self.memory), int(self.memory)))
        from pytest_adsreplay.function import open_function

        raw = dict(header.get("options") or {})
        options = FunctionOptions(**raw)
        self.adapter = open_function(str(header["spec"]), header.get("params") or {}, options)
        with contextlib.suppress(Exception):
            self.adapter.progress = self.progress
        return {"ok": True, "kind": self.adapter.kind, "cycle_time": self.adapter.cycle_time}

    def run(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.progress[0] = math.nan
        t = arrays.pop("t")
        outputs: dict[str, np.ndarray] = self.adapter.run(
            t, arrays, inputs=tuple(header.get("inputs") or ()), recording=header.get("recording")
        )
        return outputs

    def _memory_error(self, header: Mapping[str, Any], t: float | None = None) -> dict[str, Any]:
        if t is None:
            t = self.progress[0]
            t = None if math.isnan(t) else t
        where = "before its first cycle" if t is None else f"at t = {t:.3f} s"
        limit = f"its memory limit of {format_size(self.memory)}" if self.memory else "no memory"
        error = {
            "type": "FunctionCrashError",
            "message": f"the function under test hit {limit} (adsreplay_function_memory) {where}",
            "t": t,
            "recording": header.get("recording"),
            "hint": _MEMORY_HINT,
        }
        # what it allocated may still be held: the next recording gets a fresh process
        return {"ok": False, "fatal": True, "error": error}


def _error_dict(exc: AdsReplayError) -> dict[str, Any]:
    return {
        "type": type(exc).__name__ if isinstance(exc, FunctionLoadError) else "FunctionError",
        "message": exc.message,
        "hint": exc.hint,
        "recording": exc.recording,
        "t": getattr(exc, "t", None),
        "traceback": getattr(exc, "traceback", None),
    }

"""The supervised function host: crashes, exits, memory, output and hangs end one
recording with an explicit error, and the next recording gets a fresh host."""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_adsreplay.errors import FunctionCrashError, FunctionError, FunctionLoadError
from pytest_adsreplay.function import host as host_mod
from pytest_adsreplay.function.host import FunctionHost, HostLimits, acquire, format_size

T = np.arange(0, 1, 0.01)
SIGNALS = {"ego_speed": np.full(T.size, 10.0), "target_distance": np.linspace(20, 10, T.size)}

FUNCTIONS = """
import ctypes, os, sys

class Good:
    cycle_time = 0.01
    def __init__(self, decel=3.0):
        self.decel = decel
    def step(self, frame):
        return {"fcw": 0, "aeb_decel": self.decel if frame["t"] >= 0.5 else 0.0}

class ExitAt:
    def __init__(self, at=0.42, status=0):
        self.at, self.status = at, status
    def step(self, frame):
        if frame["t"] >= self.at:
            print("about to leave", flush=True)
            os._exit(self.status)
        return {"aeb_decel": 0.0}

class Segfault:
    def step(self, frame):
        if frame["t"] >= 0.3:
            ctypes.string_at(0)
        return {"aeb_decel": 0.0}

class Leak:
    def __init__(self):
        self.kept = []
    def step(self, frame):
        self.kept.append(bytearray(8 * 1024 * 1024))
        return {"aeb_decel": 0.0}

class Chatty:
    def step(self, frame):
        print(f"cycle at {frame['t']:.2f} " + "x" * 1000)
        return {"aeb_decel": 0.0}

class HangsInC:
    def step(self, frame):
        if frame["t"] >= 0.25:
            ctypes.CDLL(None).sleep(1000)
        return {"aeb_decel": 0.0}

class Raises:
    def step(self, frame):
        if frame["t"] >= 0.31:
            1 / 0
        return {"aeb_decel": 0.0}
"""


@pytest.fixture
def fns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module of test functions, importable in this process and in the host."""
    (tmp_path / "host_fns.py").write_text(textwrap.dedent(FUNCTIONS))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "host_fns"
    host_mod.shutdown()


def test_steps_like_in_process_and_is_kept_across_recordings(fns: str) -> None:
    host = acquire(f"{fns}:Good", {"decel": 4.0})
    assert host.cycle_time == 0.01
    out = host.run(T, SIGNALS, inputs=("ego_accel",), recording="r1", timeout=30)
    assert out["aeb_decel"][T >= 0.5].tolist() == [4.0] * int((T >= 0.5).sum())
    assert out["aeb_decel"][T < 0.5].max() == 0.0
    assert acquire(f"{fns}:Good", {"decel": 4.0}) is host  # the same process, re-used
    other = acquire(f"{fns}:Good", {"decel": 5.0})  # other params: another host
    assert other is not host
    assert other.run(T, SIGNALS, timeout=30)["aeb_decel"].max() == 5.0


@pytest.mark.parametrize("status", [0, 1])
def test_exit_names_status_and_time_then_a_fresh_host(fns: str, status: int) -> None:
    host = acquire(f"{fns}:ExitAt", {"status": status})
    with pytest.raises(FunctionError) as info:
        host.run(T, SIGNALS, recording="rec.mf4", timeout=30)
    err = info.value
    assert isinstance(err, FunctionCrashError) and err.outcome == "error"
    assert f"the function under test exited with status {status} at or after t = 0.420 s" in str(
        err
    )
    assert err.t == pytest.approx(0.42)
    assert str(err).startswith("rec.mf4: ")
    assert "about to leave" in str(err)  # its output is in the error
    assert not host.alive
    again = acquire(f"{fns}:ExitAt", {"status": status})
    assert again is not host and again.alive


def test_segfault_in_native_code(fns: str) -> None:
    host = acquire(f"{fns}:Segfault")
    with pytest.raises(FunctionError, match=r"crashed \(SIGSEGV\) at or after t = 0\.300 s"):
        host.run(T, SIGNALS, recording="rec.mf4", timeout=30)
    assert not host.alive


def test_memory_limit_stops_a_leak_with_a_message(fns: str) -> None:
    host = acquire(f"{fns}:Leak", limits=HostLimits(memory=600 * 1024**2))
    with pytest.raises(FunctionError) as info:
        host.run(T, SIGNALS, recording="rec.mf4", timeout=60)
    text = str(info.value)
    assert "hit its memory limit of 600 MB (adsreplay_function_memory) at t = " in text
    assert "adsreplay_function_memory = 8GB" in text
    assert not host.alive  # what it allocated is gone with the process


def test_output_is_capped_and_counted(fns: str) -> None:
    host = acquire(f"{fns}:Chatty", limits=HostLimits(output=4096))
    host.run(T, SIGNALS, recording="rec.mf4", timeout=30)  # a passing run keeps nothing
    assert host.output.total > 100_000
    assert len(host.output.buf) == 4096
    text = host.output.text()
    assert "(last 4 kB; " in text and " more not shown)" in text
    assert "cycle at 0.99" in text  # the tail is kept
    assert "cycle at 0.00" not in text


def test_output_tail_in_a_crash_message(fns: str) -> None:
    host = acquire(f"{fns}:ExitAt", {"at": 0.0, "status": 3}, limits=HostLimits(output=10))
    with pytest.raises(
        FunctionError, match=r"exited with status 3 at or after t = 0\.000 s"
    ) as info:
        host.run(T, SIGNALS, timeout=30)
    assert "(last 10 B; 5 B more not shown):\n to leave" in str(info.value)


def test_hang_in_native_code_is_killed_at_the_timeout(fns: str) -> None:
    host = acquire(f"{fns}:HangsInC")
    with pytest.raises(FunctionError) as info:
        host.run(T, SIGNALS, recording="rec.mf4", timeout=1.0)
    assert isinstance(info.value, FunctionCrashError)
    text = str(info.value)
    assert (
        "did not finish stepping within 1.0 s and was killed (SIGKILL) at or after t = 0.250 s"
        in text
    )
    assert "adsreplay_timeout" in text
    assert not host.alive


def test_function_exception_keeps_its_traceback_and_host(fns: str) -> None:
    host = acquire(f"{fns}:Raises")
    with pytest.raises(FunctionError) as info:
        host.run(T, SIGNALS, recording="rec.mf4", timeout=30)
    err = info.value
    assert "raised ZeroDivisionError: division by zero at t = 0.310 s (cycle 31)" in str(err)
    assert not isinstance(err, FunctionCrashError) and err.outcome == "failed"
    assert err.traceback and "in step" in err.traceback and "host.py" not in err.traceback
    assert host.alive  # a Python exception does not cost the process


def test_load_errors_come_back_as_load_errors(fns: str) -> None:
    with pytest.raises(FunctionLoadError, match="has no attribute 'Nope'"):
        acquire(f"{fns}:Nope")
    with pytest.raises(FunctionLoadError, match="cannot build function under test"):
        acquire(f"{fns}:Good", {"nope": 1})


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupts_are_the_parents_to_handle(fns: str, signum: int) -> None:
    """Ctrl-C or a cancelled CI job signals the whole process group: the host goes on
    (the session stops it itself and says why) instead of dying as a crash."""
    host = FunctionHost(f"{fns}:Good").start()
    assert host.proc is not None
    try:
        os.kill(host.proc.pid, signum)
        out = host.run(T, SIGNALS, inputs=("ego_accel",), recording="r1", timeout=30)
        assert out["aeb_decel"].max() == 3.0 and host.alive
    finally:
        host.close()


def test_close_stops_the_child(fns: str) -> None:
    host = FunctionHost(f"{fns}:Good").start()
    proc = host.proc
    assert proc is not None
    host.close()
    assert proc.poll() is not None


def _identity(fd: int) -> tuple[int, int] | None:
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def test_shutdown_lets_every_child_end_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """``shutdown`` sends every host its EOF before it waits for the first to end (the
    children's exits overlap instead of adding up at the end of a session)."""
    import subprocess

    host_mod.prestart(3)
    procs = [h.proc for h in host_mod._SPARE]
    assert len(procs) == 3 and all(p is not None for p in procs)
    cmd_fds = {h._fds["cmd"]: _identity(h._fds["cmd"]) for h in host_mod._SPARE}
    open_at_first_wait: list[int] = []
    wait = subprocess.Popen.wait

    def noted_wait(self: Any, timeout: float | None = None) -> int:
        if not open_at_first_wait and self in procs:
            for fd, identity in cmd_fds.items():
                if _identity(fd) == identity:  # still that pipe (not a reused number)
                    open_at_first_wait.append(fd)
            open_at_first_wait.append(-1)  # noted
        return wait(self, timeout)

    monkeypatch.setattr(subprocess.Popen, "wait", noted_wait)
    host_mod.shutdown()
    assert open_at_first_wait == [-1]  # no command pipe left open when the waits began
    assert all(p is not None and p.poll() is not None for p in procs)


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (10, "10 B"), (4096, "4 kB"), (1536, "1.5 kB"), (4 * 1024**3, "4 GB")],
)
def test_format_size(n: int, text: str) -> None:
    assert format_size(n) == text


def test_timeout_label_names_the_stage_timeout(fns: str) -> None:
    host = acquire(f"{fns}:HangsInC")
    with pytest.raises(FunctionCrashError) as info:
        host.run(T, SIGNALS, timeout=0.5, timeout_label="aeb stage exceeded the timeout of 3 s")
    assert str(info.value).startswith(
        "the function under test did not finish (aeb stage exceeded the timeout of 3 s) and "
        "was killed (SIGKILL) at or after t = 0.250 s"
    )


def test_prestarted_process_is_adopted_with_the_later_sys_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host_mod.prestart()
    (spare,) = host_mod._SPARE
    assert spare.proc is not None
    pid = spare.proc.pid
    # the function's folder joins sys.path only after the spare started (as collection does)
    (tmp_path / "late_fns.py").write_text(textwrap.dedent(FUNCTIONS))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        host = acquire("late_fns:Good")
        assert host.proc is not None and host.proc.pid == pid
        assert host.run(T, SIGNALS, timeout=30)["aeb_decel"].max() == 3.0
        assert host_mod._SPARE == []
    finally:
        host_mod.shutdown()


def test_a_crash_starts_the_next_host_ahead(fns: str) -> None:
    host = acquire(f"{fns}:ExitAt")
    with pytest.raises(FunctionCrashError):
        host.run(T, SIGNALS, timeout=30)
    (spare,) = host_mod._SPARE
    assert spare.alive and spare.proc is not None
    pid = spare.proc.pid
    again = acquire(f"{fns}:ExitAt", {"at": 5.0})
    assert again.proc is not None and again.proc.pid == pid
    assert again.run(T, SIGNALS, timeout=30)["aeb_decel"].max() == 0.0


def test_meanwhile_runs_while_the_function_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller's ``meanwhile`` runs while the child loads the function: this module's
    import waits for a file that only ``meanwhile`` writes (run after the load instead,
    the load would give up after 60 s)."""
    flag = tmp_path / "go"
    (tmp_path / "waits_fns.py").write_text(
        textwrap.dedent(
            f"""
            import pathlib, time
            deadline = time.monotonic() + 60
            while not pathlib.Path({str(flag)!r}).exists():
                if time.monotonic() > deadline:
                    raise RuntimeError("meanwhile never ran while the function loaded")
                time.sleep(0.01)
            """
        )
        + textwrap.dedent(FUNCTIONS)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    calls: list[str] = []
    try:

        def loading() -> None:
            flag.touch()
            calls.append("new")

        host = acquire("waits_fns:Good", meanwhile=loading)
        assert host.alive and calls == ["new"]
        assert acquire("waits_fns:Good", meanwhile=functools.partial(calls.append, "kept")) is host
        assert calls == ["new", "kept"]  # a kept host: right away

        def fails() -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            acquire("waits_fns:Good", {"decel": 2.0}, meanwhile=fails)
        assert [s.host.params for s in host_mod._POOL] == [{}]  # the new one was closed
    finally:
        host_mod.shutdown()


# -- two runs on one host: the next recording waits in the host for its turn ---------------

#: Holds its first cycle while ``$ADSREPLAY_TEST_HOLD`` exists (the test's event, not a
#: time); says which run it is; brakes with the ego speed; ``Held2`` raises at 0.31 s in
#: the run at 20 m/s, ``HeldExit`` ends its process at 0.42 s in the run at 10 m/s.
HELD = """
import os, pathlib, time

class Held:
    def reset(self):
        self.first = True
    def step(self, frame):
        if self.first:
            self.first = False
            print(f"run at {frame['ego_speed']:.0f} m/s", flush=True)
            hold = pathlib.Path(os.environ["ADSREPLAY_TEST_HOLD"])
            while hold.exists():
                time.sleep(0.01)
        return {"aeb_decel": frame["ego_speed"]}

class Held2(Held):
    def step(self, frame):
        if frame["ego_speed"] == 20 and frame["t"] >= 0.31:
            raise ValueError("bad at 20")
        return super().step(frame)

class HeldExit(Held):
    def step(self, frame):
        if frame["ego_speed"] == 10 and frame["t"] >= 0.42:
            os._exit(3)
        return super().step(frame)
"""


@pytest.fixture
def held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "held_fns.py").write_text(HELD)
    monkeypatch.syspath_prepend(str(tmp_path))
    hold = tmp_path / "hold"
    hold.touch()
    monkeypatch.setenv("ADSREPLAY_TEST_HOLD", str(hold))
    yield hold
    hold.unlink(missing_ok=True)
    host_mod.shutdown()


def _speed(v: float) -> dict[str, np.ndarray]:
    return {"ego_speed": np.full(T.size, v)}


def _until(what: Any, timeout: float = 60.0) -> None:
    """Wait for an event (generous: a busy machine)."""
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def _in_thread(
    host: FunctionHost, got: dict[str, Any], name: str, v: float, **kw: Any
) -> threading.Thread:
    def run() -> None:
        try:
            got[name] = host.run(T, _speed(v), recording=name, **kw)
        except BaseException as exc:  # the test looks at it
            got[name] = exc

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread


def test_a_second_run_waits_in_the_host_and_gets_its_own_outputs(held: Path) -> None:
    host = acquire("held_fns:Held2")
    got: dict[str, Any] = {}
    a = _in_thread(host, got, "a", 10.0, timeout=60)
    _until(lambda: len(host._runs) == 1 and host.progress() == 0.0)  # a is in its 1st cycle
    # b goes to the child now, and has a timeout shorter than a takes: it counts from
    # b's start, not from when it was handed over
    b = _in_thread(host, got, "b", 20.0, timeout=2.0)
    _until(lambda: len(host._runs) == 2)
    c = _in_thread(host, got, "c", 30.0, timeout=60)  # a third run waits here
    time.sleep(2.5)  # longer than b's timeout: b still waits for its turn
    assert "b" not in got and "c" not in got and host.progress() == 0.0
    held.unlink()
    for thread in (a, b, c):
        thread.join(60)
    assert got["a"]["aeb_decel"].tolist() == [10.0] * T.size
    assert got["c"]["aeb_decel"].tolist() == [30.0] * T.size
    err = got["b"]
    assert isinstance(err, FunctionError) and not isinstance(err, FunctionCrashError), err
    assert "raised ValueError: bad at 20 at t = 0.310 s" in str(err)
    assert "run at 20 m/s" in str(err) and "run at 10 m/s" not in str(err)  # b's output only
    assert host.alive and host._runs == []


def test_a_crash_ends_the_waiting_run_unstepped(held: Path) -> None:
    host = acquire("held_fns:HeldExit")
    got: dict[str, Any] = {}
    a = _in_thread(host, got, "a", 10.0, timeout=60)
    _until(lambda: len(host._runs) == 1)
    b = _in_thread(host, got, "b", 20.0, timeout=60)
    _until(lambda: len(host._runs) == 2)
    held.unlink()
    a.join(60)
    b.join(60)
    assert isinstance(got["a"], FunctionCrashError)
    assert "exited with status 3 at or after t = 0.420 s" in str(got["a"])
    lost = got["b"]
    assert isinstance(lost, host_mod.HostLost) and not lost.interrupted
    assert lost.recording == "b" and "before this recording's turn" in str(lost)
    again = acquire("held_fns:HeldExit")  # a fresh host steps it
    assert again is not host
    assert again.run(T, _speed(20.0), timeout=60)["aeb_decel"].max() == 20.0


def test_a_run_given_up_while_waiting_is_skipped_by_the_child(held: Path) -> None:
    """The waiting thread is stopped (rq's job timeout raises in it): the child never
    steps that run, and the next run on the host gets its own outputs."""

    host = acquire("held_fns:Held")
    got: dict[str, Any] = {}
    a = _in_thread(host, got, "a", 10.0, timeout=60)
    _until(lambda: len(host._runs) == 1)
    b = _in_thread(host, got, "b", 20.0, timeout=60)
    _until(lambda: len(host._runs) == 2 and host._runs[1].sent)  # b waits for its turn
    assert b.ident is not None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(b.ident), ctypes.py_object(TimeoutError)
    )
    _until(lambda: "b" in got)
    assert isinstance(got["b"], TimeoutError) and host._runs[1].abandoned
    held.unlink()
    a.join(60)
    assert got["a"]["aeb_decel"].max() == 10.0
    assert host._runs == [] and host.alive
    out = host.run(T, _speed(30.0), recording="c", timeout=60)
    assert out["aeb_decel"].tolist() == [30.0] * T.size


def test_a_team_shares_its_host(fns: str) -> None:
    team = host_mod.Team()
    got: dict[str, FunctionHost] = {}
    done = threading.Barrier(3, timeout=60)  # all alive until each has its host

    def member(name: str, joins: bool) -> None:
        if joins:
            host_mod.join(team)
        got[name] = acquire(f"{fns}:Good")
        done.wait()

    threads = [
        threading.Thread(target=member, args=(n, n != "other"), name=n)
        for n in ("one", "two", "other")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    pool = [(s.holder, s.host.proc and s.host.proc.pid, s.retired) for s in host_mod._POOL]
    assert got["one"] is got["two"], (pool, {k: h.proc and h.proc.pid for k, h in got.items()})
    assert got["other"] is not got["one"]
    assert sum(1 for s in host_mod._POOL if s.holder is team) == 1


def test_a_run_on_a_host_that_ended_since_it_was_acquired_is_lost(fns: str) -> None:
    """Another thread's recording crashed the host between acquire() and run(): this
    recording was never stepped, and a fresh host steps it."""
    host = acquire(f"{fns}:Good")
    host.close()
    with pytest.raises(host_mod.HostLost) as info:
        host.run(T, SIGNALS, recording="r2", timeout=30)
    assert not info.value.interrupted and info.value.recording == "r2"
    again = acquire(f"{fns}:Good")
    assert again is not host and again.run(T, SIGNALS, timeout=30)["aeb_decel"].max() == 3.0


def test_a_host_closed_by_another_thread_mid_run_loses_the_run(held: Path) -> None:
    """A host retired or evicted by another thread (e.g. a team member after a rebuild)
    while it steps: the recording is lost to a fresh host, not failed as a crash."""
    host = acquire("held_fns:Held")
    got: dict[str, Any] = {}
    a = _in_thread(host, got, "a", 10.0, timeout=60)
    _until(lambda: len(host._runs) == 1 and host.progress() == 0.0)
    host.close()
    a.join(60)
    lost = got["a"]
    assert isinstance(lost, host_mod.HostLost) and not lost.interrupted, lost
    assert "stopped while it stepped this recording" in str(lost)

"""The supervised function host: crashes, exits, memory, output and hangs end one
recording with an explicit error, and the next recording gets a fresh host."""

from __future__ import annotations

import functools
import os
import signal
import textwrap
from collections.abc import Iterator
from pathlib import Path

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

"""glibc's malloc settings: reuse freed memory while replaying, map the arrays of a
large recording; the second never undone by the first (a recorder stands in for
glibc's mallopt)."""

from __future__ import annotations

import platform

import pytest

from pytest_adsreplay import malloc


@pytest.fixture
def mallopt(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []

    def mallopt(param: int, value: int) -> int:
        calls.append((param, value))
        return 1  # glibc: success

    for name in ("GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(malloc, "_mode", None)
    monkeypatch.setattr(malloc, "_mallopt", lambda: mallopt)
    return calls


def test_reuse_then_large_and_never_back(mallopt: list[tuple[int, int]]) -> None:
    malloc.reuse_freed_memory()
    assert mallopt == [(malloc.M_MMAP_THRESHOLD, 32 << 20), (malloc.M_TRIM_THRESHOLD, 64 << 20)]
    malloc.reuse_freed_memory()  # once
    assert len(mallopt) == 2
    malloc.map_large_arrays()
    assert mallopt[2:] == [(malloc.M_MMAP_THRESHOLD, 4 << 20), (malloc.M_TRIM_THRESHOLD, 128 << 10)]
    malloc.map_large_arrays()
    malloc.reuse_freed_memory()  # a large recording was read: its settings stay
    assert len(mallopt) == 4


@pytest.mark.parametrize(
    ("name", "value"),
    [("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1048576"), ("MALLOC_TRIM_THRESHOLD_", "0")],
)
def test_the_users_own_settings_stay(
    mallopt: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    malloc.reuse_freed_memory()
    malloc.map_large_arrays()
    assert mallopt == []


def test_a_refused_setting_is_not_claimed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(malloc, "_mode", None)
    monkeypatch.setattr(malloc, "_mallopt", lambda: lambda p, v: 0)  # glibc: refused
    malloc.reuse_freed_memory()
    assert malloc._mode is None
    malloc.map_large_arrays()
    assert malloc._mode is None


def test_no_mallopt_no_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(malloc, "_mode", None)
    monkeypatch.setattr(malloc, "_mallopt", lambda: None)
    malloc.reuse_freed_memory()
    malloc.map_large_arrays()
    assert malloc._mode is None


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_mallopt_is_found() -> None:
    assert malloc._mallopt() is not None

"""glibc's malloc settings for the processes that replay recordings (Linux with glibc;
elsewhere, musl say, every call does nothing).

Replaying allocates the same large arrays again and again: every recording's signals,
its outputs, each chunk's float objects. glibc starts with a 128 KiB mmap threshold and
a 128 KiB trim threshold and raises both only as large blocks are freed, so at first
each such array gets fresh pages from the kernel, and freed memory at the top of the
heap goes back to it, to be faulted in again for the next recording. Forty 10-minute
recordings, embedded, one host, the read no longer fixing the thresholds for short
recordings: 200 000 page faults without these settings, 110 000 with them (the bare
script takes 66 000), ~0.2 s less CPU (with the thresholds fixed on every read, as
before: 350 000).
"""

from __future__ import annotations

import threading
from typing import Any

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

_lock = threading.Lock()
_mode: str | None = None
_libc_mallopt: Any = None


def _mallopt() -> Any:
    global _libc_mallopt
    if _libc_mallopt is None:
        import contextlib
        import ctypes
        import sys

        _libc_mallopt = False
        if sys.platform.startswith("linux"):
            # not glibc: musl has no mallopt
            with contextlib.suppress(OSError, AttributeError):
                _libc_mallopt = ctypes.CDLL(None).mallopt
    return _libc_mallopt or None


def _user_settings() -> bool:
    """The user set glibc's malloc thresholds (environment): theirs stay."""
    import os

    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.mmap_threshold" in tunables or "glibc.malloc.trim_threshold" in tunables:
        return True
    return any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"))


def reuse_freed_memory() -> None:
    """Blocks under 32 MiB come from the heap, and up to 64 MiB free at its top stay
    mapped: the next recording reuses the pages of the last. Does nothing once
    :func:`map_large_arrays` was called (a large recording was read), nor when the
    user set glibc's malloc thresholds in the environment."""
    global _mode
    with _lock:
        mallopt = _mallopt()
        if _mode is not None or mallopt is None or _user_settings():
            return
        # glibc's mallopt returns 1 on success (32 MiB is its 64-bit maximum)
        if mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1:
            mallopt(M_TRIM_THRESHOLD, 64 << 20)
            _mode = "reuse"


def map_large_arrays() -> None:
    """Allocations of 4 MiB and more always get pages of their own (mmap), and freed
    memory at the top of the heap goes back at once: from the first large recording
    on (see ``queue.stages.LARGE_RECORDING``).

    glibc raises its mmap threshold to the size of each large block freed (up to 32 MiB),
    after which a long recording's arrays come from the heap, whose freed middle is not
    given back: a worker would keep the peak of its longest read. A fixed threshold
    returns each channel's samples to the system as the read releases them. Not over
    the user's own thresholds (environment).
    """
    global _mode
    with _lock:
        mallopt = _mallopt()
        if _mode == "large" or mallopt is None or _user_settings():
            return
        if mallopt(M_MMAP_THRESHOLD, 4 << 20) == 1:
            mallopt(M_TRIM_THRESHOLD, 128 << 10)
            _mode = "large"

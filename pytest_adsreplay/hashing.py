"""sha256 of files: the one home of file hashing (recordings, cache keys, function builds).

Files are streamed in 1 MiB blocks; hashlib releases the GIL for each block, so a hash
computed in a thread (:class:`BackgroundHash`) runs beside Python code on another core.
:func:`memo_sha256` remembers a file's hash in the process by its ``stat`` signature,
for the many small files of a function's package that are checked on every job.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from pathlib import Path
from typing import BinaryIO

BLOCK = 1 << 20


def stream_sha256(fh: BinaryIO) -> str:
    """sha256 hex of what is left to read in the open binary file ``fh``."""
    h = hashlib.sha256()
    for chunk in iter(lambda: fh.read(BLOCK), b""):
        h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 hex of the file at ``path`` (OSError when it cannot be read)."""
    with open(path, "rb") as fh:
        return stream_sha256(fh)


def signature(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What identifies one version of a file: device, inode, size, mtime and ctime (ns)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


_MEMO: dict[str, tuple[tuple[int, int, int, int, int], str]] = {}
_MEMO_LOCK = threading.Lock()


def memo_sha256(path: str | Path) -> str:
    """sha256 hex of ``path``, remembered in this process while its ``stat`` signature
    stays the same (any write changes the ctime; a replaced file is a new inode)."""
    key = os.path.abspath(path)
    with _MEMO_LOCK:
        known = _MEMO.get(key)
    if known is not None and known[0] == signature(os.stat(key)):
        return known[1]
    with open(key, "rb") as fh:
        sig = signature(os.fstat(fh.fileno()))
        with _MEMO_LOCK:
            known = _MEMO.get(key)
        if known is not None and known[0] == sig:
            return known[1]
        digest = stream_sha256(fh)
        if signature(os.fstat(fh.fileno())) != sig:  # written while hashed: not remembered
            return digest
    with _MEMO_LOCK:
        _MEMO[key] = (sig, digest)
    return digest


class BackgroundHash:
    """The sha256 of a file, computed in a thread beside other work; :meth:`result` is
    None for an unreadable file (the caller's own read says why)."""

    def __init__(self, path: str | Path):
        self._digest: str | None = None
        self._thread = threading.Thread(target=self._run, args=(path,), daemon=True)
        self._thread.start()

    def _run(self, path: str | Path) -> None:
        with contextlib.suppress(OSError):
            self._digest = file_sha256(path)

    def result(self) -> str | None:
        self._thread.join()
        return self._digest

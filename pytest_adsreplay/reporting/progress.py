"""Replay progress on a terminal: recordings done/total and failures so far.

Shown only on an interactive terminal and never when ``CI`` is set, so CI logs stay quiet;
``ADSREPLAY_PROGRESS=1``/``0`` forces it on or off. While a test waits for its recording,
the status is appended to the current terminal line and erased again (with backspaces,
so pytest's own line and its ``[ 42%]`` column are untouched); it never wraps the line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

MIN_ROOM = 16  # columns; with less room left on the line nothing is shown


def enabled(isatty: bool, environ: Mapping[str, str] | None = None) -> bool:
    """On for a TTY outside CI; ``ADSREPLAY_PROGRESS`` (1/0) overrides both."""
    env = os.environ if environ is None else environ
    forced = env.get("ADSREPLAY_PROGRESS", "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    return bool(isatty) and not env.get("CI", "").strip()


class Progress:
    """Counts replays and failures; ``show``/``clear`` draw the status around a wait.

    ``write`` writes raw text to the terminal (no line bookkeeping), ``room`` returns the
    free columns on the current line.
    """

    def __init__(self, total: int, write: Callable[[str], None], room: Callable[[], int]):
        self.total = total
        self._write = write
        self._room = room
        self.done: set[str] = set()
        self.failures = 0
        self._shown = 0

    def text(self, waiting_for: str) -> str:
        fails = f", {self.failures} failure{'s' if self.failures != 1 else ''} so far"
        return (
            f"[adsreplay {len(self.done)}/{self.total} replayed{fails if self.failures else ''}"
            f"; replaying {waiting_for}]"
        )

    def show(self, waiting_for: str) -> None:
        self.clear()
        room = self._room() - 2
        if room < MIN_ROOM:
            return
        text = " " + self.text(waiting_for)
        if len(text) > room:
            text = text[: room - 1] + "…"
        self._write(text)
        self._shown = len(text)

    def clear(self) -> None:
        if self._shown:
            n, self._shown = self._shown, 0
            self._write("\b" * n + " " * n + "\b" * n)

    def replayed(self, key: str) -> None:
        self.done.add(key)

    def failed(self) -> None:
        self.failures += 1

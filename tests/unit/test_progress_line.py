"""The progress line: when it shows, what it says, and that it erases itself."""

from __future__ import annotations

import pytest

from pytest_adsreplay.reporting.progress import Progress, enabled


@pytest.mark.parametrize(
    ("isatty", "env", "expected"),
    [
        (True, {}, True),
        (False, {}, False),
        (True, {"CI": "true"}, False),  # CI logs stay quiet even on a pseudo-TTY
        (True, {"CI": ""}, True),
        (False, {"ADSREPLAY_PROGRESS": "1"}, True),
        (True, {"ADSREPLAY_PROGRESS": "0"}, False),
        (True, {"CI": "1", "ADSREPLAY_PROGRESS": "on"}, True),
    ],
)
def test_enabled_on_a_tty_outside_ci(isatty: bool, env: dict[str, str], expected: bool) -> None:
    assert enabled(isatty, env) is expected


class Screen:
    """A one-line terminal: applies backspaces like a real one."""

    def __init__(self, line: str = "tests/test_x.py ..", width: int = 120):
        self.line, self.cursor, self.width = line, len(line), width

    def write(self, text: str) -> None:
        for ch in text:
            if ch == "\b":
                self.cursor -= 1
                continue
            chars = list(self.line.ljust(self.cursor + 1))
            chars[self.cursor] = ch
            self.line, self.cursor = "".join(chars), self.cursor + 1

    def room(self) -> int:
        return self.width - len("tests/test_x.py ..")


def test_show_and_clear_leave_the_line_as_it_was() -> None:
    screen = Screen()
    p = Progress(3, screen.write, screen.room)
    p.show("ccrs/a40.mf4")
    assert screen.line == "tests/test_x.py .. [adsreplay 0/3 replayed; replaying ccrs/a40.mf4]"
    p.clear()
    assert screen.line.rstrip() == "tests/test_x.py .."
    assert screen.cursor == len("tests/test_x.py ..")
    p.replayed("a")
    p.failed()
    p.failed()
    p.show("ccrs/b60.mf4")
    assert "[adsreplay 1/3 replayed, 2 failures so far; replaying ccrs/b60.mf4]" in screen.line
    p.clear()
    p.clear()  # idempotent
    assert screen.line.rstrip() == "tests/test_x.py .." and screen.cursor == 18


def test_never_wraps_the_line() -> None:
    screen = Screen(width=50)
    p = Progress(300, screen.write, screen.room)
    p.show("a/very/long/recording/name.mf4")
    assert len(screen.line) <= 48 and screen.line.endswith("…")
    p.clear()
    narrow = Screen(width=30)
    q = Progress(3, narrow.write, narrow.room)
    q.show("x.mf4")  # less than MIN_ROOM left: nothing shown
    assert narrow.line == "tests/test_x.py .."

"""The progress line in the session: recordings replayed/total and failures so far,
shown while a test waits (on a terminal, not in CI)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_adsreplay.plugin.items import chain_of, lists_only
from pytest_adsreplay.plugin.run import ReplayRun
from pytest_adsreplay.queue.pipeline import Chain


def register_progress(config: pytest.Config, run: ReplayRun) -> None:
    """Register the progress plugin (the xdist controller's own line is xdist's)."""
    if run.configured and not hasattr(config, "workerinput"):
        config.pluginmanager.register(ProgressPlugin(config), "adsreplay-progress")


class ProgressPlugin:
    """Recordings replayed/total and failures so far while a test waits (TTY, not CI)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.progress: Any = None

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from pytest_adsreplay.reporting.progress import Progress, enabled

        reporter: Any = self.config.pluginmanager.get_plugin("terminalreporter")
        tw = getattr(reporter, "_tw", None)  # pytest's TerminalWriter (write_raw, widths)
        if tw is None or lists_only(self.config) or not enabled(reporter.isatty()):
            return
        keys = {c.key for c in map(chain_of, session.items) if c is not None}
        if not keys:
            return
        capman = self.config.pluginmanager.get_plugin("capturemanager")

        def write(text: str) -> None:
            if capman is None:
                tw.write_raw(text, flush=True)
                return
            with capman.global_and_fixture_disabled():
                tw.write_raw(text, flush=True)

        self.progress = Progress(len(keys), write, lambda: tw.fullwidth - tw.width_of_current_line)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Any:
        progress = self.progress
        chain = chain_of(item) if progress is not None else None
        if chain is None or chain.key in progress.done:
            return (yield)
        progress.show(chain.recording.id + (f" [{chain.variant}]" if chain.variant else ""))
        try:
            return (yield)
        finally:
            progress.clear()

    def replayed(self, chain: Chain) -> None:
        if self.progress is not None:
            self.progress.replayed(chain.key)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.progress is not None and report.failed and report.when != "teardown":
            self.progress.failed()

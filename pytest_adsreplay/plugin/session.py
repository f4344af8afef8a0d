"""The session object: every hook of pytest-adsreplay, registered at configure time.

``AdsReplaySession`` holds the config's ``ReplayRun`` (recordings, broker, store) and
turns pytest's events into it: parametrization, generated items, the enqueue of every
chain before the first test, the KPI summary, and an end that always writes one row per
recording and an honest exit status (Ctrl-C, SIGTERM, a failing results database).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_adsreplay.config import OPTIONS
from pytest_adsreplay.errors import AdsReplayError, UsageError
from pytest_adsreplay.plugin.items import (
    USAGE_KEY,
    FailedReplay,
    GeneratedItem,
    RecordingFile,
    ReplayFailed,
    chain_of,
    collect_generated,
    lists_only,
    needs_expect_item,
    node_id,
    recording_of,
)
from pytest_adsreplay.plugin.run import ReplayRun
from pytest_adsreplay.queue.pipeline import Chain
from pytest_adsreplay.recordings import Recording, absolute_path, is_recording_name
from pytest_adsreplay.reporting.text import PROPERTY_PREFIX, SUMMARY_KPIS, summary_lines, worst
from pytest_adsreplay.urls import mask_url

#: Exit status of a session whose results database could not be finished, when the
#: tests themselves passed (pytest.ExitCode.TESTS_FAILED).
STORE_FAILED_EXIT = 1
#: Options that take no value (the others take one, as ``--opt=V`` or ``--opt V``).
_FLAGS = {"--adsreplay-update-baseline", "--adsreplay-no-cache"}


class Terminated(KeyboardInterrupt):
    """SIGTERM (a cancelled CI job): the session stops like on Ctrl-C."""


def selections(node: Any) -> list[dict[str, Any]]:
    """The ``@pytest.mark.recordings(pattern, tags, scenario, metadata)`` selections."""
    names = ("pattern", "tags", "scenario", "metadata")
    return [
        dict(m.kwargs, **dict(zip(names, m.args, strict=False)))
        for m in node.iter_markers("recordings")
    ]


def describe_selection(sel: Mapping[str, Any]) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in sel.items() if v is not None)
    return f"@pytest.mark.recordings({args})"


def _user_args(args: list[str]) -> list[str]:
    """The invocation's arguments without the plugin's own options (the reproducing
    command line states those explicitly)."""
    ours = {o.flag for o in OPTIONS if o.flag}
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        flag = arg.split("=", 1)[0]
        if flag in ours:
            skip = "=" not in arg and flag not in _FLAGS
            continue
        out.append(arg)
    return out


class AdsReplaySession:
    """The hooks of one pytest config (a plain session, or one xdist worker)."""

    def __init__(self, config: pytest.Config, run: ReplayRun):
        self.config = config
        self.run = run
        self.rows: dict[str, dict[str, Any]] = {}
        self._by_path: dict[Path, Recording] | None = None
        self._saved_sigterm: Any = None
        self._forwarded = False

    # -- signals -----------------------------------------------------------------------
    def install_sigterm(self) -> None:
        """SIGTERM stops the session like Ctrl-C (one row per recording, the broker's
        keys deleted, exit 2), unless someone else already handles SIGTERM."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        self._saved_sigterm = signal.SIG_DFL
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        xdist = self.config.pluginmanager.get_plugin("adsreplay-xdist")
        if not self._forwarded and xdist is not None and xdist.forward(signum):
            # the xdist workers stop as on Ctrl-C, then xdist ends the session (exit 2)
            self._forwarded = True
            return
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the cleanup runs once
        raise Terminated("SIGTERM: the session stops; recordings not replayed get error rows")

    def pytest_unconfigure(self) -> None:
        if self._saved_sigterm is not None:
            if signal.getsignal(signal.SIGTERM) in (self._on_sigterm, signal.SIG_IGN):
                signal.signal(signal.SIGTERM, self._saved_sigterm)
            self._saved_sigterm = None

    # -- header --------------------------------------------------------------------------
    def pytest_report_header(self, config: pytest.Config) -> list[str] | None:
        if not self.run.configured:
            return None
        extra = _user_args(list(config.invocation_params.args))
        return [self.run.header(), f"adsreplay: reproduce with {self.run.command_line(extra)}"]

    # -- collection ----------------------------------------------------------------------
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "recording" not in metafunc.fixturenames:
            return
        who = f"test {metafunc.definition.nodeid}"
        sels = selections(metafunc.definition)
        try:
            recs = self.run.select(sels, who)
        except UsageError as exc:
            # raised from pytest_collection_modifyitems: inside a collector it would only
            # be a collection error (exit 2), not the usage error (exit 4) it is
            metafunc.config.stash[USAGE_KEY] = str(exc)
            recs = []
        if recs or USAGE_KEY in metafunc.config.stash:
            metafunc.parametrize("recording", recs, ids=[r.id for r in recs], indirect=True)
            return
        self._parametrize_nothing(metafunc, sels)

    def _parametrize_nothing(self, metafunc: pytest.Metafunc, sels: list[dict[str, Any]]) -> None:
        """A marker that selects no recording says which marker matched nothing."""
        total = len(self.run.recordings)
        text = (
            " and ".join(describe_selection(s) for s in sels)
            + f" matches none of the {total} recordings under {self.run.root}"
            + " -> check the pattern against the ids that --collect-only shows"
        )
        mode = metafunc.config.getini("empty_parameter_set_mark")
        if mode == "fail_at_collect":
            raise pytest.Collector.CollectError(f"{metafunc.definition.nodeid}: {text}")
        mark = pytest.mark.xfail(reason=text, run=False) if mode == "xfail" else None
        param = pytest.param(None, marks=mark or pytest.mark.skip(reason=text), id="no-recording")
        metafunc.parametrize("recording", [param], indirect=True)

    def _recordings_by_path(self) -> dict[Path, Recording]:
        if self._by_path is None:
            self._by_path = {absolute_path(r.path): r for r in self.run.recordings}
        return self._by_path

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> Any:
        """A recording named on the command line collects its generated items."""
        if not self.run.configured or not is_recording_name(file_path):
            return None
        if not parent.session.isinitpath(file_path):
            return None
        rec = self._recordings_by_path().get(absolute_path(file_path))
        if rec is None:
            return None
        nodeid = node_id(rec.path, self.config.rootpath)
        return RecordingFile.from_parent(parent, path=file_path, nodeid=nodeid, recording=rec)

    def _names_items(self) -> bool:
        """Whether the command line names test ids or recording files: then only those
        run, and no generated item is added."""
        return any("::" in arg or is_recording_name(Path(arg)) for arg in self.config.args)

    def _variants(self, items: list[pytest.Item]) -> dict[str, list[Chain]]:
        """Calibration variants (``adsreplay_params`` markers) of the Python tests."""
        out: dict[str, list[Chain]] = {}
        for item in items:
            chain = chain_of(item)
            if chain is not None and chain.variant and not isinstance(item, GeneratedItem):
                out.setdefault(chain.recording.id, []).append(chain)
        return out

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """Add each recording's generated items (before ``-k``/``-m`` deselection)."""
        if USAGE_KEY in config.stash:
            raise pytest.UsageError(config.stash[USAGE_KEY])
        if not self.run.configured or self._names_items():
            return
        collected = {i.recording.id for i in items if isinstance(i, GeneratedItem) and i.recording}
        variants = self._variants(items)
        baseline = config.pluginmanager.get_plugin("adsreplay-baseline")
        for rec in self.run.recordings:
            if rec.id in collected:
                continue
            if not (needs_expect_item(rec) or baseline is not None):
                continue
            node = RecordingFile.from_parent(
                session,
                path=rec.path,
                nodeid=node_id(rec.path, config.rootpath),
                recording=rec,
                variants=variants.get(rec.id, ()),
            )
            items.extend(collect_generated(session, node))
        if baseline is not None:
            items.extend(baseline.stale_items(session))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Enqueue every chain the selected tests need, once, before the first test runs
        (nothing when the session only lists: no rows, not even for rejected files)."""
        if lists_only(session.config):
            return
        for item in session.items:
            rec = recording_of(item)
            if rec is not None and rec.rejected:
                self.run.rejected[rec.id] = rec
        chains = [c for c in map(chain_of, session.items) if c is not None]
        if not chains:
            return
        if not self.run.owner:
            self.run.note_chains(chains)
        try:
            self.run.start(chains)
        except AdsReplayError as exc:
            raise pytest.UsageError(str(exc)) from None

    # -- running -------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> None:
        """A failed function under test fails the test (call phase), not errors it."""
        for value in pyfuncitem.funcargs.values():
            if isinstance(value, FailedReplay):
                raise ReplayFailed(value.message)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        if call.excinfo is not None and isinstance(call.excinfo.value, ReplayFailed):
            report.longrepr = str(call.excinfo.value)
        return report

    # -- reporting -----------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Summary rows from report properties (xdist: they travel with the report)."""
        props = dict(report.user_properties)
        rid = props.get(f"{PROPERTY_PREFIX}recording")
        if not isinstance(rid, str):
            return
        if report.when == "teardown" or (report.when == "setup" and report.passed):
            return
        row = self.rows.setdefault(rid, {"outcome": None})
        row["scenario"] = props.get(f"{PROPERTY_PREFIX}scenario") or "-"
        for name in SUMMARY_KPIS:
            row[name] = props.get(f"{PROPERTY_PREFIX}{name}")
        outcome: str = "error" if report.when == "setup" and report.failed else report.outcome
        if props.get(f"{PROPERTY_PREFIX}status") == "invalid":
            outcome = "invalid"
        row["outcome"] = worst(row["outcome"], outcome)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if hasattr(self.config, "workerinput"):
            return
        run = self.run
        if self.rows:
            terminalreporter.write_sep("=", "adsreplay KPI summary")
            for line in summary_lines(self.rows):
                terminalreporter.write_line(line)
            terminalreporter.write_line(
                f"results: {mask_url(run.settings.db)} (run {run.run_id}, "
                f"cycle time {run.cycle_time_label})"
            )
        if run.store_failure is not None:
            terminalreporter.write_line(f"adsreplay: {run.store_failure}", red=True, bold=True)

    # -- session start and end -----------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if lists_only(session.config):
            return
        # the xdist controller replays nothing itself: its workers do
        replays = not session.config.pluginmanager.has_plugin("dsession")
        try:
            self.run.begin(replays=replays)
        except Exception as exc:
            raise pytest.UsageError(
                f"results database {mask_url(self.run.settings.db)}: {exc}"
            ) from None

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Rows for every recording and the run's exit status, whatever happened; a
        results database that fails here makes the exit status non-zero."""
        complete = not session.shouldstop and not session.shouldfail
        self.run.finish(int(exitstatus), complete=complete)
        if self.run.store_failure is not None and session.exitstatus == 0:
            session.exitstatus = STORE_FAILED_EXIT

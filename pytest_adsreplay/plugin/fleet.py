"""Fleet statistics, release gates and the Markdown summary in the session.

Every replayed recording's facts (distance, time, activations, warnings, sidecar
expectations) travel on its test reports, so the controller of a ``pytest -n N`` run sees
all of them. Once every test has run, the controller evaluates each gate and reports it as
its own test outcome ``adsreplay::gate[NAME]`` (terminal, JUnit XML, exit status), prints
the statistics and stores them with the run; at the end it writes the Markdown summary.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_adsreplay.errors import AdsReplayError
from pytest_adsreplay.fleet import (
    GateResult,
    GroupStats,
    KpiChange,
    RecordingFacts,
    Summary,
    evaluate,
    fleet_stats,
    render,
    stats_lines,
)
from pytest_adsreplay.plugin.items import lists_only
from pytest_adsreplay.plugin.run import ReplayRun
from pytest_adsreplay.reporting.text import PROPERTY_PREFIX, worst

#: Where a test item keeps the facts of the recording it replayed (set with its KPIs).
FACTS_KEY = pytest.StashKey[str]()
#: The report attribute that carries the facts (it survives xdist's serialization).
FACTS_ATTR = "adsreplay_facts"


def register_fleet(config: pytest.Config, run: ReplayRun) -> None:
    """Register the fleet plugin in every process; only the controller evaluates."""
    # gates without recordings (an unset ADSREPLAY_RECORDINGS in CI) fail, never vanish
    if run.configured or run.settings.gates or run.settings.gates_file:
        config.pluginmanager.register(FleetPlugin(config, run), "adsreplay-fleet")


def _first_line(report: pytest.TestReport) -> str:
    text = report.longreprtext.strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:  # the message, not the traceback's first frame
        if ln.startswith("E "):
            return ln[2:].strip()
    return lines[-1] if lines else report.outcome


class FleetPlugin:
    """Collects facts from reports; on the controller: gates, statistics and summary."""

    def __init__(self, config: pytest.Config, run: ReplayRun):
        self.config = config
        self.run = run
        self.controller = not hasattr(config, "workerinput")
        self.facts: dict[str, RecordingFacts] = {}
        #: Replays with calibration parameters (``adsreplay_params``): kept out of the
        #: fleet figures, which count each recording once, as the session's function ran it.
        self.variants: set[str] = set()
        self.outcome: dict[str, str] = {}  # recording (+ variant) -> worst test outcome
        self.counts: dict[str, int] = {}
        self.failures: list[tuple[str, str]] = []
        self.gates: list[GateResult] = []
        self.groups: list[GroupStats] = []

    # -- every process: the facts ride on the reports --------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report: Any = yield
        facts = item.stash.get(FACTS_KEY, None)
        if facts is not None and report.when in ("setup", "call"):
            setattr(report, FACTS_ATTR, facts)
        return report

    # -- the controller --------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.controller:
            return
        facts = getattr(report, FACTS_ATTR, None)
        if isinstance(facts, str):
            data = json.loads(facts)
            f = RecordingFacts.from_json(data)
            if data.get("variant"):
                self.variants.add(f.recording)
            else:
                self.facts[f.recording] = f
        if report.when == "call" or (report.when == "setup" and not report.passed):
            kind = "error" if report.when == "setup" and report.failed else report.outcome
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if report.failed:
                self.failures.append((report.nodeid, _first_line(report)))
            rid = dict(report.user_properties).get(f"{PROPERTY_PREFIX}recording")
            if isinstance(rid, str):
                # an expected failure (xfail) is a failure of the recording, not a pass
                xfailed = report.skipped and hasattr(report, "wasxfail")
                judged = "failed" if xfailed else kind
                self.outcome[rid] = worst(self.outcome.get(rid), judged)

    def _facts(self) -> list[RecordingFacts]:
        out = []
        for rid, f in sorted(self.facts.items()):
            passed = self.outcome.get(rid) in ("passed", "skipped", None) and f.status == "ok"
            out.append(RecordingFacts.from_json({**f.to_json(), "passed": passed}))
        return out

    def _narrowed(self, facts: Sequence[RecordingFacts]) -> str | None:
        if not self.run.configured:
            return (
                "no recordings are configured (--recordings, adsreplay_recordings or "
                "ADSREPLAY_RECORDINGS)"
            )
        try:
            total = len(self.run.recordings)
        except Exception:  # discovery failed on the controller: say nothing rather than crash
            return None
        seen = len({f.recording.split(" [", 1)[0] for f in facts})
        return None if seen >= total else f"{seen} of {total} recordings selected"

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        result = yield
        stopped = session.shouldfail or session.shouldstop
        if self.controller and not stopped and not lists_only(session.config):
            self._evaluate(session)
        return result

    def _evaluate(self, session: pytest.Session) -> None:
        facts = self._facts()
        gates = self.run.settings.gates + self.run.settings.gates_file
        if not facts and not gates:
            return
        # a selection that replays nothing never deselects a gate: it fails without data
        self.groups = fleet_stats(facts) if facts else []
        narrowed = self._narrowed(facts)
        session.testscollected += len(gates)
        for gate in gates:
            result = evaluate(gate, facts, narrowed=narrowed)
            self.gates.append(result)
            self._report_gate(session, result)
        report = self.config.pluginmanager.get_plugin("adsreplay-report")
        if report is not None:
            report.stats = self.groups
        if not self.groups:
            return
        try:
            self.run.store.write_stats(self.run.run_id, self.groups)
        except Exception as exc:  # the run's end reports a failing database
            self.run.store_failure = self.run.store_failure or (
                f"fleet statistics could not be stored: {type(exc).__name__}: {exc}"
            )

    def _report_gate(self, session: pytest.Session, result: GateResult) -> None:
        """The gate as a test outcome of its own: terminal, JUnit XML and exit status."""
        name = f"gate[{result.gate.name}]"
        nodeid = f"adsreplay::{name}"
        location = ("adsreplay", None, name)
        props = [(f"{PROPERTY_PREFIX}gate.{k}", v) for k, v in result.properties.items()]
        hook = session.config.hook
        hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
        for when in ("setup", "call", "teardown"):
            failed = when == "call" and not result.passed
            report = pytest.TestReport(
                nodeid=nodeid,
                location=location,
                keywords={name: 1},
                outcome="failed" if failed else "passed",
                longrepr=result.text if failed else None,
                when=when,
                sections=[],
                duration=0.0,
                start=0.0,
                stop=0.0,
                user_properties=props,
            )
            hook.pytest_runtest_logreport(report=report)
        hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.controller or not (self.groups or self.gates):
            return
        terminalreporter.write_sep("=", "adsreplay fleet statistics")
        for line in stats_lines(self.groups) if self.groups else ["no replayed recordings"]:
            terminalreporter.write_line(line)
        for g in self.gates:
            first = g.text.splitlines()[0]
            terminalreporter.write_line(("PASS " if g.passed else "FAIL ") + first)

    # -- the Markdown summary --------------------------------------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        targets = []
        if self.run.settings.summary_md is not None:
            targets.append((self.run.settings.summary_md, "w"))
        step = os.environ.get("GITHUB_STEP_SUMMARY")
        if step:
            targets.append((Path(step), "a"))
        if not self.controller or not targets:
            return
        text = render(self._summary(session))
        for path, mode in targets:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open(mode, encoding="utf-8") as fh:
                    fh.write(text)
            except OSError as exc:
                session.config.get_terminal_writer().line(
                    f"adsreplay: cannot write the Markdown summary {path}: {exc}", red=True
                )
                session.exitstatus = session.exitstatus or 1

    def _summary(self, session: pytest.Session) -> Summary:
        counts = dict(self.counts)
        changes: list[KpiChange] = []
        unchanged = 0
        against = None
        try:
            against, changes, unchanged = self._changes()
        except AdsReplayError as exc:
            self.failures.append(("adsreplay summary", f"KPI comparison not made: {exc}"))
        except Exception as exc:  # the results database failed at the end: still summarize
            from pytest_adsreplay.plugin.session import STORE_FAILED_EXIT

            why = self.run._store_error(exc)
            self.failures.append(("adsreplay summary", f"KPI comparison not made: {why}"))
            writer = session.config.get_terminal_writer()
            writer.line()
            writer.line(f"adsreplay: {why}", red=True)
            session.exitstatus = session.exitstatus or STORE_FAILED_EXIT
        return Summary(
            outcomes=counts,
            gates=self.gates,
            failures=self.failures,
            changes=changes,
            unchanged=unchanged,
            compared_with=against,
            stats=self.groups,
            exit_status=int(session.exitstatus),
        )

    def _changes(self) -> tuple[str | None, list[KpiChange], int]:
        """KPI changes against ``--adsreplay-compare-run`` or else the baseline file."""
        from pytest_adsreplay.results.history import resolve_run

        if not self.run.configured:
            return None, [], 0
        store = self.run.store
        current = {(r.recording_id, r.variant): r.kpis for r in store.results(self.run.run_id)}
        ref = self.run.settings.compare_run
        if ref:
            other = resolve_run(store, ref)
            before = {(r.recording_id, r.variant): r.kpis for r in store.results(other)}
            return f"run {other}", *kpi_changes(before, current)
        baseline = self.config.pluginmanager.get_plugin("adsreplay-baseline")
        if baseline is None:
            return None, [], 0
        from pytest_adsreplay.results.baseline import decode, entry_key

        entries = baseline.state.baseline.entries
        before = {}
        for key in current:
            entry = entries.get(entry_key(*key))
            if entry is not None:
                before[key] = {k: decode(v) for k, v in entry.get("kpis", {}).items()}
        return f"baseline {baseline.state.shown}", *kpi_changes(before, current)


def kpi_changes(
    before: dict[tuple[str, str], dict[str, Any]], after: dict[tuple[str, str], dict[str, Any]]
) -> tuple[list[KpiChange], int]:
    """Scalar KPIs whose shown value differs, and how many compared recordings are
    unchanged."""
    from pytest_adsreplay.kpi.registry import SCALAR_KPIS
    from pytest_adsreplay.reporting.text import fmt_value

    changes: list[KpiChange] = []
    unchanged = 0
    for key in sorted(set(before) & set(after)):
        rid = key[0] + (f" [{key[1]}]" if key[1] else "")
        found = False
        for name in SCALAR_KPIS:
            b: Any = before[key].get(name)
            a: Any = after[key].get(name)
            if fmt_value(name, b) == fmt_value(name, a):
                continue
            found = True
            delta = ""
            numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
            if numbers:
                delta = fmt_value(name, a - b)
                delta = delta if delta.startswith("-") else "+" + delta
            changes.append(KpiChange(rid, name, fmt_value(name, b), fmt_value(name, a), delta))
        unchanged += not found
    return changes, unchanged

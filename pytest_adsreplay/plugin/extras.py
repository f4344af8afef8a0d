"""pytest-side plumbing of baselines, the HTML report and progress (issue 6).

Per-config plugin objects registered by ``plugin.pytest_configure`` and the generated
``::baseline`` items; ``plugin.py`` keeps only hooks and fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_adsreplay import plugin as _p
from pytest_adsreplay.errors import UsageError
from pytest_adsreplay.plugin.session import ReplayRun
from pytest_adsreplay.queue.pipeline import Chain, Outcome
from pytest_adsreplay.reporting.text import (
    PROPERTY_PREFIX,
    worst,
)

TOLERANCES_HELP = (
    "per-KPI baseline tolerances, a TOML inline table such as { brake_time = 0.02, "
    'impact_speed = "1 km/h", recorded_brake_time = "ignore" } (numbers in SI units); '
    "defaults: event times one cycle, TTCs 0.05 s, impact_speed 0.5 km/h, distances 0.1 m, "
    "max_decel 0.1 m/s², collision and activations exact"
)


def _register_extras(config: pytest.Config, run: ReplayRun) -> None:
    """Register the baseline, report and progress plugins this session asks for."""
    s = run.settings
    if s.update_baseline and s.baseline is None:
        raise pytest.UsageError(
            "--adsreplay-update-baseline needs a baseline file: pass --adsreplay-baseline FILE "
            "or set the ini key adsreplay_baseline"
        )
    if not run.configured:
        return
    if s.baseline is not None:
        plugin = _BaselinePlugin(config, _baseline_session(config, run))
        config.pluginmanager.register(plugin, "adsreplay-baseline")
    if s.report is not None:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            raise pytest.UsageError(
                f"--adsreplay-report {s.report}: the HTML report draws its plots with "
                "matplotlib, which is not installed; pip install 'pytest-adsreplay[report]'"
            )
        try:
            from pytest_adsreplay.reporting.html import prepare

            prepare(s.report, owner=not hasattr(config, "workerinput"))
        except OSError as exc:
            raise pytest.UsageError(f"--adsreplay-report {s.report}: {exc}") from None
        config.pluginmanager.register(_ReportPlugin(config, s.report), "adsreplay-report")
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(_ProgressPlugin(config), "adsreplay-progress")


def _after_outcome(item: pytest.Item, chain: Chain, out: Outcome) -> None:
    """A replay ended in this process: draw its report page (its arrays are still in
    Redis) and count it for the progress line."""
    report = item.config.pluginmanager.get_plugin("adsreplay-report")
    if report is not None:
        report.page(item, chain, out)
    progress = item.config.pluginmanager.get_plugin("adsreplay-progress")
    if progress is not None:
        progress.replayed(chain)


def _shown_path(path: Path) -> str:
    """``path`` as the user should read it: relative to the current directory if inside."""
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def _baseline_session(config: pytest.Config, run: ReplayRun) -> Any:
    from pytest_adsreplay.results.baseline import BaselineSession, parse_tolerances

    assert run.settings.baseline is not None
    inipath = config.inipath
    try:
        tolerances = parse_tolerances(
            config.getini("adsreplay_baseline_tolerances"), inipath.name if inipath else "ini"
        )
        return BaselineSession(
            run.settings.baseline,
            tolerances,
            update=run.settings.update_baseline,
            shown=_shown_path(run.settings.baseline),
        )
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


class _GeneratedFile(pytest.File):
    """A recording or the baseline file: the parent of generated items (nothing to collect)."""

    def collect(self) -> Iterator[pytest.Item]:  # pragma: no cover - built directly
        return iter(())


class _GeneratedItem(pytest.Item):
    """Failure text without a traceback: the message is the whole story."""

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, _p.ReplayFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)


class BaselineItem(_GeneratedItem):
    """Compares a recording's KPIs with its baseline entry (``<recording id>::baseline``)."""

    def __init__(self, *, chain: Chain, state: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.chain = chain
        self.state = state
        self.outcome: Outcome | None = None

    def setup(self) -> None:
        _p._check_sidecar(self, self.chain.recording)
        self.outcome = _p._outcome(self, self.chain)

    def runtest(self) -> None:
        import json

        from pytest_adsreplay.results.baseline import entry_key

        out = self.outcome
        assert out is not None
        if not out.ok:
            raise _p.ReplayFailed(_p._failure_text(out))
        run = _p._run(self.config)
        rec, variant = self.chain.recording, self.chain.variant
        verdict = self.state.check(
            entry_key(rec.id, variant),
            out.kpis,
            run.sha256(rec),
            dict(self.chain.params) if variant else None,
            run.cycle_time,
        )
        props = self.user_properties
        props.append((f"{PROPERTY_PREFIX}baseline", verdict.verdict))
        props.append((f"{PROPERTY_PREFIX}baseline_key", verdict.key))
        if verdict.update is not None:  # the owner writes it (xdist: from this property)
            props.append((f"{PROPERTY_PREFIX}baseline_entry", json.dumps(verdict.update)))
        if verdict.message:
            raise _p.ReplayFailed(verdict.message)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"baseline[{self.chain.recording.id}]"


class StaleBaselineItem(_GeneratedItem):
    """Fails when baseline entries name recordings that no longer exist (``FILE::stale``)."""

    def __init__(self, *, keys: list[str], state: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.keys = keys
        self.state = state

    def runtest(self) -> None:
        from pytest_adsreplay.results.baseline import stale_text

        raise _p.ReplayFailed(stale_text(self.keys, self.state.shown, updated=self.state.update))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, "baseline stale entries"


class _BaselinePlugin:
    """Generates the baseline items; on the owner, collects rewrites and writes the file."""

    def __init__(self, config: pytest.Config, state: Any):
        self.config = config
        self.state = state

    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """After the expectation items (tryfirst), before ``-k``/``-m`` deselection."""
        if _p.USAGE_KEY in config.stash:
            return
        run = _p._run(config)
        chains = {c.key: c for c in map(run.chain, run.recordings)}
        for item in items:  # calibration variants of the Python tests get entries too
            chain = _p._chain_of(item)
            if chain is not None and chain.variant:
                chains.setdefault(chain.key, chain)
        expect = {i.recording.id: i for i in items if isinstance(i, _p.ExpectItem)}
        parents: dict[str, pytest.Collector] = {r: i.parent for r, i in expect.items() if i.parent}
        after: dict[str, list[pytest.Item]] = {}
        for chain in sorted(chains.values(), key=lambda c: (c.recording.id, c.variant)):
            rec = chain.recording
            if rec.id not in parents:
                parents[rec.id] = _GeneratedFile.from_parent(session, path=rec.path, nodeid=rec.id)
            name = "baseline" + (f"[{chain.variant}]" if chain.variant else "")
            item = BaselineItem.from_parent(
                parents[rec.id], name=name, chain=chain, state=self.state
            )
            after.setdefault(rec.id if rec.id in expect else "", []).append(item)
        placed: list[pytest.Item] = []
        for item in items:  # each recording's baseline item right after its expect item
            placed.append(item)
            if isinstance(item, _p.ExpectItem):
                placed += after.pop(item.recording.id, [])
        placed += after.pop("", [])
        stale = self.state.baseline.stale(r.id for r in run.recordings)
        if stale:
            parent = _GeneratedFile.from_parent(
                session, path=self.state.path, nodeid=self.state.shown
            )
            placed.append(
                StaleBaselineItem.from_parent(parent, name="stale", keys=stale, state=self.state)
            )
        items[:] = placed

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        props = dict(report.user_properties)
        verdict = props.get(f"{PROPERTY_PREFIX}baseline")
        key = props.get(f"{PROPERTY_PREFIX}baseline_key")
        if isinstance(verdict, str) and isinstance(key, str):
            self.state.record(key, verdict, props.get(f"{PROPERTY_PREFIX}baseline_entry"))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput") or self.config.option.collectonly:
            return
        self.state.finish(r.id for r in _p._run(self.config).recordings)

    @pytest.hookimpl(trylast=True)  # after the KPI summary table
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if hasattr(self.config, "workerinput") or self.config.option.collectonly:
            return
        terminalreporter.write_sep("-", "adsreplay baseline")
        for line in self.state.summary(r.id for r in _p._run(self.config).recordings):
            terminalreporter.write_line(line)


class _ReportPlugin:
    """Writes each recording's page where it was replayed; the owner writes the index."""

    def __init__(self, config: pytest.Config, report_dir: Path):
        self.config = config
        self.dir = report_dir
        self.written: set[str] = set()
        self.rows: dict[str, Any] = {}

    def page(self, item: pytest.Item, chain: Chain, out: Outcome) -> None:
        from pytest_adsreplay.reporting.html import PageInput, page_name, write_page

        if chain.key not in self.written:
            self.written.add(chain.key)
            run = _p._run(item.config)
            rec = chain.recording
            signals, outputs = run.arrays(chain)
            expect: dict[str, str] = {}
            for bound in rec.expect:
                expect[bound.name] = "; ".join(
                    filter(None, (expect.get(bound.name), bound.describe()))
                )
            write_page(
                self.dir,
                PageInput(
                    key=chain.key,
                    recording=rec.id,
                    variant=chain.variant,
                    status=out.status,
                    kpis=out.kpis,
                    stage=out.stage,
                    error=out.error,
                    scenario=rec.scenario,
                    tags=tuple(rec.tags),
                    description=rec.description,
                    expect=expect,
                    params=dict(chain.params) if chain.variant else {},
                    sources=out.sources,
                    function=run.settings.function or "",
                    run_id=run.run_id,
                    signals=signals,
                    outputs=outputs,
                    kpi_settings=run.settings.kpi_settings(),
                ),
            )
        item.user_properties.append((f"{PROPERTY_PREFIX}report_page", page_name(chain.key)))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from pytest_adsreplay.reporting.html import INDEX_COLUMNS, IndexRow

        props = dict(report.user_properties)
        rid = props.get(f"{PROPERTY_PREFIX}recording")
        if not isinstance(rid, str) or report.when == "teardown":
            return
        if report.when == "setup" and report.passed:
            return
        row = self.rows.setdefault(rid, IndexRow(rid))
        outcome: str = "error" if report.when == "setup" and report.failed else report.outcome
        if props.get(f"{PROPERTY_PREFIX}status") == "invalid":
            outcome = "invalid"
        row.outcome = worst(row.outcome, outcome)
        for col, _ in INDEX_COLUMNS:
            if f"{PROPERTY_PREFIX}{col}" in props:
                row.values[col] = props[f"{PROPERTY_PREFIX}{col}"]
        page = props.get(f"{PROPERTY_PREFIX}report_page")
        if isinstance(page, str):
            row.page = page

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from pytest_adsreplay.reporting.html import write_index

        if hasattr(self.config, "workerinput") or self.config.option.collectonly:
            return
        run = _p._run(self.config)
        meta = {
            "run": run.run_id,
            "function": run.settings.function,
            "broker": run.broker_label,
            "recordings": str(run.root),
        }
        self.index = write_index(self.dir, self.rows.values(), meta)

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        index = getattr(self, "index", None)
        if index is not None:
            terminalreporter.write_line(f"adsreplay report: {_shown_path(index)}")


class _ProgressPlugin:
    """Recordings replayed/total and failures so far while a test waits (TTY, not CI)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.progress: Any = None

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from pytest_adsreplay.reporting.progress import Progress, enabled

        reporter: Any = self.config.pluginmanager.get_plugin("terminalreporter")
        tw = getattr(reporter, "_tw", None)  # pytest's TerminalWriter (write_raw, widths)
        if tw is None or self.config.option.collectonly or not enabled(reporter.isatty()):
            return
        keys = {c.key for c in map(_p._chain_of, session.items) if c is not None}
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
        chain = _p._chain_of(item) if progress is not None else None
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

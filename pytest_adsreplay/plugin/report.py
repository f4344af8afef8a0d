"""The HTML report in the session: each recording's page is drawn where it was replayed
(its arrays are still in Redis there); the owner writes the index at the end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_adsreplay.plugin.baseline import shown_path
from pytest_adsreplay.plugin.items import lists_only, run_of
from pytest_adsreplay.plugin.run import ReplayRun
from pytest_adsreplay.queue.pipeline import Chain, Outcome
from pytest_adsreplay.reporting.text import PROPERTY_PREFIX, worst


def register_report(config: pytest.Config, run: ReplayRun) -> None:
    """Register the report plugin when the session asks for a report directory."""
    report_dir = run.settings.report
    if not run.configured or report_dir is None or lists_only(config):
        return
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise pytest.UsageError(
            f"--adsreplay-report {report_dir}: the HTML report draws its plots with "
            "matplotlib, which is not installed; pip install 'pytest-adsreplay[report]'"
        )
    try:
        from pytest_adsreplay.reporting.html import prepare

        prepare(report_dir, owner=not hasattr(config, "workerinput"))
    except OSError as exc:
        raise pytest.UsageError(f"--adsreplay-report {report_dir}: {exc}") from None
    config.pluginmanager.register(ReportPlugin(config, report_dir), "adsreplay-report")


def _bounds(chain: Chain, out: Outcome) -> list[tuple[str, str, str, bool]]:
    """Each sidecar bound with the observed KPI and whether the replay violated it; the
    KPI named with its SI unit, the unit of the bound and the observed value (the KPI
    table above shows some KPIs scaled, e.g. the impact speed in km/h)."""
    from pytest_adsreplay.kpi import registry
    from pytest_adsreplay.recordings import check_expectations
    from pytest_adsreplay.recordings.expectations import EVENT_EXPECTATIONS, format_observed

    def named(name: str) -> str:
        found = registry.get(name)
        return found.si_name if found is not None else name

    bounds = list(chain.recording.expect)
    if not out.ok:
        return [(named(b.name), b.describe(), "-", False) for b in bounds]
    violated = {id(v.bound): v for v in check_expectations(bounds, out.kpis)}
    rows = []
    for b in bounds:
        v = violated.get(id(b))
        if v is not None:
            off = f" (off by {v.delta:+.3f})" if v.delta is not None else ""
            rows.append((named(b.name), b.describe(), format_observed(v.observed) + off, True))
            continue
        if b.name in EVENT_EXPECTATIONS:
            seen: Any = out.kpis.get(EVENT_EXPECTATIONS[b.name]) is not None
        else:
            seen = out.kpis.get(b.name)
        rows.append((named(b.name), b.describe(), format_observed(seen), False))
    return rows


def _baseline(config: pytest.Config, run: ReplayRun, chain: Chain, out: Outcome) -> dict[str, Any]:
    """The page's baseline fields: each KPI against the baseline entry (when one is set)."""
    plugin = config.pluginmanager.get_plugin("adsreplay-baseline")
    if plugin is None:
        return {}
    state = plugin.state
    fields: dict[str, Any] = {"baseline_file": state.shown}
    if not out.ok:
        return fields
    from pytest_adsreplay.results import baseline as bl

    rec = chain.recording
    key = bl.entry_key(rec.id, chain.variant)
    now = bl.entry(out.kpis, run.sha256(rec), dict(chain.params) if chain.variant else None)
    c = bl.check(key, state.baseline.entries.get(key), now, state.tolerances, run.cycle_time)
    fields["baseline_verdict"] = "not in the baseline yet" if c.new else c.verdict
    verdicts = {"worse": "regressed", "better": "improved", "same": "ok"}
    fields["baseline"] = [
        (
            bl._label(d.name),
            bl._cell(d.name, d.base),
            bl._cell(d.name, d.now),
            bl._delta_cell(d),
            verdicts[d.change],
        )
        for d in c.diffs
    ]
    return fields


class ReportPlugin:
    """Writes each recording's page where it was replayed; the owner writes the index."""

    def __init__(self, config: pytest.Config, report_dir: Path):
        self.config = config
        self.dir = report_dir
        self.written: set[str] = set()
        self.rows: dict[str, Any] = {}
        self.index: Path | None = None

    def page(self, item: pytest.Item, chain: Chain, out: Outcome) -> None:
        from pytest_adsreplay.reporting.html import PageInput, page_name, write_page

        if chain.key not in self.written:
            self.written.add(chain.key)
            run = run_of(item.config)
            rec = chain.recording
            signals, outputs = run.arrays(chain)
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
                    bounds=_bounds(chain, out),
                    params=dict(chain.params) if chain.variant else {},
                    sources=out.sources,
                    function=run.settings.function or "",
                    run_id=run.run_id,
                    signals=signals,
                    outputs=outputs,
                    kpi_settings=run.settings.kpi_settings(),
                    **_baseline(item.config, run, chain, out),
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
        from pytest_adsreplay.reporting.html import set_outcome, write_index

        if hasattr(self.config, "workerinput") or lists_only(self.config):
            return
        run = run_of(self.config)
        meta = {
            "run": run.run_id,
            "function": run.settings.function,
            "broker": run.broker_label,
            "recordings": str(run.root),
        }
        for row in self.rows.values():  # pages were drawn before their tests finished
            if row.page and row.outcome:
                set_outcome(self.dir, row.page, row.outcome)
        stats = getattr(self, "stats", None)  # fleet statistics, set by the fleet plugin
        self.index = write_index(self.dir, self.rows.values(), meta, stats)

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.index is not None:
            terminalreporter.write_line(f"adsreplay report: {shown_path(self.index)}")

"""KPI regression baselines in the session: the ``::baseline`` items of each recording,
the ``::stale`` item of the baseline file, and the file's rewrite at the end."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_adsreplay.errors import UsageError
from pytest_adsreplay.plugin.items import (
    GeneratedItem,
    ReplayFailed,
    check_recording,
    collect_generated,
    failure_text,
    lists_only,
    node_id,
    run_of,
    wait_outcome,
)
from pytest_adsreplay.plugin.run import ReplayRun
from pytest_adsreplay.queue.pipeline import Chain, Outcome
from pytest_adsreplay.reporting.text import PROPERTY_PREFIX

TOLERANCES_HELP = (
    "per-KPI baseline tolerances, a TOML inline table such as { brake_time = 0.02, "
    'impact_speed = "1 km/h", recorded_brake_time = "ignore" } (numbers in SI units); '
    "defaults: event times one cycle, TTCs 0.05 s, impact_speed 0.5 km/h, distances 0.1 m, "
    "max_decel 0.1 m/s², collision and activations exact"
)


def shown_path(path: Path) -> str:
    """``path`` as the user should read it: relative to the current directory if inside."""
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def register_baseline(config: pytest.Config, run: ReplayRun) -> None:
    """Register the baseline plugin when the session has a baseline file."""
    s = run.settings
    if s.update_baseline and s.baseline is None:
        raise pytest.UsageError(
            "--adsreplay-update-baseline needs a baseline file: pass --adsreplay-baseline FILE "
            "or set the ini key adsreplay_baseline"
        )
    if run.configured and s.baseline is not None:
        plugin = BaselinePlugin(config, baseline_session(config, run))
        config.pluginmanager.register(plugin, "adsreplay-baseline")


def baseline_session(config: pytest.Config, run: ReplayRun) -> Any:
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
            shown=shown_path(run.settings.baseline),
        )
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


class BaselineItem(GeneratedItem):
    """Compares a recording's KPIs with its baseline entry (``<recording>::baseline``)."""

    def __init__(self, *, chain: Chain, state: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.chain = chain
        self.recording = chain.recording
        self.state = state
        self.outcome: Outcome | None = None

    def setup(self) -> None:
        assert self.chain is not None
        check_recording(self, self.chain.recording)
        self.outcome = wait_outcome(self, self.chain)

    def runtest(self) -> None:
        from pytest_adsreplay.results.baseline import entry_key

        out, chain = self.outcome, self.chain
        assert out is not None and chain is not None
        if not out.ok:
            raise ReplayFailed(failure_text(out))
        run = run_of(self.config)
        rec, variant = chain.recording, chain.variant
        verdict = self.state.check(
            entry_key(rec.id, variant),
            out.kpis,
            run.sha256(rec),
            dict(chain.params) if variant else None,
            run.cycle_time,
        )
        props = self.user_properties
        props.append((f"{PROPERTY_PREFIX}baseline", verdict.verdict))
        props.append((f"{PROPERTY_PREFIX}baseline_key", verdict.key))
        if verdict.update is not None:  # the owner writes it (xdist: from this property)
            props.append((f"{PROPERTY_PREFIX}baseline_entry", json.dumps(verdict.update)))
        if verdict.improved:  # reported by the owner's summary (xdist: from this property)
            props.append((f"{PROPERTY_PREFIX}baseline_improved", verdict.improved))
        if verdict.message:
            raise ReplayFailed(verdict.message)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        assert self.chain is not None
        return self.path, None, f"baseline[{self.chain.recording.id}]"


class StaleBaselineItem(GeneratedItem):
    """Fails when baseline entries name recordings that no longer exist (``FILE::stale``)."""

    def __init__(self, *, keys: list[str], state: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.keys = keys
        self.state = state

    def runtest(self) -> None:
        from pytest_adsreplay.results.baseline import stale_text

        raise ReplayFailed(stale_text(self.keys, self.state.shown, updated=self.state.update))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, "baseline stale entries"


class BaselineFile(pytest.File):
    """The baseline file as a collector: its ``stale`` item, when entries are stale."""

    def __init__(self, *, keys: list[str], state: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.keys = keys
        self.state = state

    def collect(self) -> Iterator[pytest.Item]:
        yield StaleBaselineItem.from_parent(self, name="stale", keys=self.keys, state=self.state)


class BaselinePlugin:
    """Generates the baseline items; on the owner, collects rewrites and writes the file."""

    def __init__(self, config: pytest.Config, state: Any):
        self.config = config
        self.state = state

    def items_for(self, parent: pytest.Collector, chains: Iterable[Chain]) -> list[pytest.Item]:
        """The ``baseline`` items of one recording: its plain chain and its variants."""
        items: list[pytest.Item] = []
        seen: set[str] = set()
        for chain in sorted(chains, key=lambda c: c.variant):
            if chain.key in seen:
                continue
            seen.add(chain.key)
            name = "baseline" + (f"[{chain.variant}]" if chain.variant else "")
            items.append(BaselineItem.from_parent(parent, name=name, chain=chain, state=self.state))
        return items

    def stale_items(self, session: pytest.Session) -> list[pytest.Item]:
        """The ``::stale`` item of the baseline file, when some entries are stale."""
        run = run_of(self.config)
        stale = self.state.baseline.stale((r.id for r in run.recordings), run.outside_selection)
        if not stale:
            return []
        node = BaselineFile.from_parent(
            session,
            path=self.state.path,
            nodeid=node_id(self.state.path, self.config.rootpath),
            keys=stale,
            state=self.state,
        )
        return collect_generated(session, node)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        props = dict(report.user_properties)
        verdict = props.get(f"{PROPERTY_PREFIX}baseline")
        key = props.get(f"{PROPERTY_PREFIX}baseline_key")
        if isinstance(verdict, str) and isinstance(key, str):
            entry = props.get(f"{PROPERTY_PREFIX}baseline_entry")
            improved = props.get(f"{PROPERTY_PREFIX}baseline_improved")
            self.state.record(key, verdict, entry, improved)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput") or lists_only(self.config):
            return
        run = run_of(self.config)
        self.state.finish((r.id for r in run.recordings), run.outside_selection)

    @pytest.hookimpl(trylast=True)  # after the KPI summary table
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if hasattr(self.config, "workerinput") or lists_only(self.config):
            return
        terminalreporter.write_sep("-", "adsreplay baseline")
        run = run_of(self.config)
        for line in self.state.summary((r.id for r in run.recordings), run.outside_selection):
            terminalreporter.write_line(line)

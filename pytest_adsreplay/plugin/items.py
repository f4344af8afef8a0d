"""What a test item sees of the replay run: the run of its config, its chain, how the
chain ended, and the items generated for recordings (no Python test file needed).

Generated items live under one collector per recording (``RecordingFile``), whose node
id is the recording's path relative to the rootdir: ``pytest "recs/a.mf4::expect"``
re-runs that item.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_adsreplay.errors import AdsReplayError
from pytest_adsreplay.plugin.run import ReplayRun
from pytest_adsreplay.queue.pipeline import Chain, Outcome
from pytest_adsreplay.recordings import Recording, check_expectations
from pytest_adsreplay.reporting.text import PROPERTY_PREFIX, expectation_failure, outcome_failure

RUN_KEY = pytest.StashKey[ReplayRun]()
USAGE_KEY = pytest.StashKey[str]()


class ReplayFailed(Exception):
    """The function under test failed (or an expectation was violated) for a recording."""


def lists_only(config: pytest.Config) -> bool:
    """The session only lists (``--collect-only``, ``--fixtures``,
    ``--fixtures-per-test``): nothing is replayed, no run row, report or baseline is
    written."""
    option = config.option
    return bool(
        option.collectonly
        or getattr(option, "showfixtures", False)
        or getattr(option, "show_fixtures_per_test", False)
    )


def run_of(config: pytest.Config) -> ReplayRun:
    """The replay run of this pytest config (one per session or xdist worker)."""
    return config.stash[RUN_KEY]


def node_id(path: Path, rootpath: Path) -> str:
    """A file's node id as pytest shows it: its POSIX path relative to the rootdir
    (``../x`` outside it), which pytest accepts back as an argument; a recording in
    object storage (a URL that ``Path`` folded to ``s3:/bucket/key``) keeps its URL,
    ``s3://bucket/key``."""
    url = _URL_PATH.match(path.as_posix())
    if url is not None and not path.is_absolute():
        return f"{url.group(1)}://{url.group(2)}"
    return Path(os.path.relpath(path, rootpath)).as_posix()


#: ``scheme:/rest`` as ``Path`` keeps a URL (two-letter schemes at least: never ``C:/``)
_URL_PATH = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/+(.*)$")


class FailedReplay:
    """Stands in for a ReplayResult whose function failed; the test fails on call."""

    def __init__(self, message: str):
        self.message = message

    def __getattr__(self, name: str) -> Any:
        raise ReplayFailed(self.message)


def check_recording(item: pytest.Item, rec: Recording) -> None:
    """A recording that cannot be replayed (a rejected file, a broken sidecar) errors its
    own tests, and only those."""
    error = rec.error
    if error:
        from pytest_adsreplay.fleet import RecordingFacts
        from pytest_adsreplay.plugin.fleet import FACTS_KEY

        item.user_properties.append((f"{PROPERTY_PREFIX}recording", rec.id))
        item.user_properties.append((f"{PROPERTY_PREFIX}status", "error"))
        # a run that did not pass for the fleet figures (no km, no events)
        facts = RecordingFacts(
            rec.id, scenario=rec.scenario, tags=tuple(rec.tags), status="error", passed=False
        )
        item.stash[FACTS_KEY] = json.dumps({**facts.to_json(), "variant": ""})
        pytest.fail(f"{rec.id}: {error}", pytrace=False)


def failure_text(out: Outcome) -> str:
    return outcome_failure(out.recording, out.status, out.stage, out.error)


def wait_outcome(item: pytest.Item, chain: Chain) -> Outcome:
    """Wait for a chain; errors and invalid recordings end the test here (setup)."""
    run = run_of(item.config)
    problem = None
    try:
        out = run.outcome(chain)
    except AdsReplayError as exc:
        problem = f"{chain.recording.id}: {exc}"
    if problem is not None:  # outside the except: no "During handling of…" noise
        pytest.fail(problem, pytrace=False)
    attach_properties(item, chain, out)
    after_outcome(item, chain, out)
    if out.status == "error":
        pytest.fail(failure_text(out), pytrace=False)
    if out.status == "invalid":
        mode = run.settings.invalid
        if mode == "skip":
            pytest.skip(failure_text(out))
        if mode == "error":
            pytest.fail(failure_text(out), pytrace=False)
    return out


def attach_properties(item: pytest.Item, chain: Chain, out: Outcome) -> None:
    """KPIs as JUnit XML properties; the terminal summary is built from them too."""
    from pytest_adsreplay.fleet import facts_from_outcome
    from pytest_adsreplay.kpi.registry import junit_value
    from pytest_adsreplay.plugin.fleet import FACTS_KEY

    props = item.user_properties
    if any(name == f"{PROPERTY_PREFIX}recording" for name, _ in props):
        return
    rid = chain.recording.id + (f" [{chain.variant}]" if chain.variant else "")
    props.append((f"{PROPERTY_PREFIX}recording", rid))
    props.append((f"{PROPERTY_PREFIX}scenario", chain.recording.scenario or ""))
    props.append((f"{PROPERTY_PREFIX}status", out.status))
    for name, value in out.kpis.items():
        if name != "activations":
            props.append((f"{PROPERTY_PREFIX}{name}", junit_value(name, value)))
    props.append((f"{PROPERTY_PREFIX}activations", len(out.kpis.get("activations") or [])))
    facts = facts_from_outcome(chain.recording, out.status, out.kpis, out.exposure, label=rid)
    # the variant rides along: fleet figures count each recording once, with the
    # session's own parameters (a calibration variant is an experiment, not more km)
    item.stash[FACTS_KEY] = json.dumps({**facts.to_json(), "variant": chain.variant or ""})


def after_outcome(item: pytest.Item, chain: Chain, out: Outcome) -> None:
    """A replay ended in this process: the report plugin draws its page (its arrays are
    still in Redis) and the progress plugin counts it."""
    report = item.config.pluginmanager.get_plugin("adsreplay-report")
    if report is not None:
        report.page(item, chain, out)
    progress = item.config.pluginmanager.get_plugin("adsreplay-progress")
    if progress is not None:
        progress.replayed(chain)


def recording_of(item: pytest.Item) -> Recording | None:
    """The recording a test item replays (generated items and parametrized tests)."""
    if isinstance(item, GeneratedItem):
        return item.recording
    callspec = getattr(item, "callspec", None)
    rec = callspec.params.get("recording") if callspec is not None else None
    return rec if isinstance(rec, Recording) else None


def chain_of(item: pytest.Item) -> Chain | None:
    """The chain a test item waits for (None: it replays nothing, or its recording is
    rejected and never replayed)."""
    if isinstance(item, GeneratedItem):
        chain = item.chain
        return None if chain is None or chain.recording.rejected else chain
    rec = recording_of(item)
    if rec is None or rec.rejected or "replay" not in getattr(item, "fixturenames", ()):
        return None
    marker = item.get_closest_marker("adsreplay_params")
    return run_of(item.config).chain(rec, marker.kwargs if marker else None)


def collect_generated(session: pytest.Session, node: pytest.Collector) -> list[pytest.Item]:
    """Collect a generated collector the way pytest collects a file: through the
    collect-report hooks, so that "collected N items" and ``-x`` count its items."""
    report = node.ihook.pytest_make_collect_report(collector=node)
    session.ihook.pytest_collectreport(report=report)
    if not report.passed:
        return []
    return [x for x in report.result if isinstance(x, pytest.Item)]


class GeneratedItem(pytest.Item):
    """An item without a Python test function; its failure text is the whole story."""

    recording: Recording | None = None
    chain: Chain | None = None

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ReplayFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)


class ExpectItem(GeneratedItem):
    """Checks a recording's sidecar ``[expect]`` bounds (``<recording path>::expect``)."""

    def __init__(self, *, recording: Recording, chain: Chain | None, **kwargs: Any):
        super().__init__(**kwargs)
        self.recording = recording
        self.chain = chain
        self.outcome: Outcome | None = None

    def setup(self) -> None:
        assert self.recording is not None
        check_recording(self, self.recording)
        assert self.chain is not None
        self.outcome = wait_outcome(self, self.chain)

    def runtest(self) -> None:
        out = self.outcome
        assert out is not None and self.recording is not None
        if not out.ok:
            raise ReplayFailed(failure_text(out))
        violations = check_expectations(self.recording.expect, out.kpis)
        if violations:
            raise ReplayFailed(
                expectation_failure(self.recording.id, str(self.recording.sidecar), violations)
            )

    def reportinfo(self) -> tuple[Path, int | None, str]:
        assert self.recording is not None
        return self.path, None, f"expect[{self.recording.id}]"


def needs_expect_item(rec: Recording) -> bool:
    """A recording gets an ``::expect`` item when its sidecar bounds it, when its sidecar
    is broken, or when its file is rejected (so that it errors even without Python tests)."""
    return bool(rec.rejected) or bool((rec.expect or rec.problem) and rec.sidecar is not None)


class RecordingFile(pytest.File):
    """One recording as a collector: its ``expect`` item and baseline items."""

    def __init__(self, *, recording: Recording, variants: Iterable[Chain] = (), **kwargs: Any):
        super().__init__(**kwargs)
        self.recording = recording
        self.variants = list(variants)

    def collect(self) -> Iterator[pytest.Item]:
        rec = self.recording
        run = run_of(self.config)
        if needs_expect_item(rec):
            chain = None if rec.rejected else run.chain(rec)
            yield ExpectItem.from_parent(self, name="expect", recording=rec, chain=chain)
        baseline = self.config.pluginmanager.get_plugin("adsreplay-baseline")
        if baseline is not None:
            yield from baseline.items_for(self, [run.chain(rec), *self.variants])

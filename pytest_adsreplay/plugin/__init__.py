"""pytest hooks and fixtures of pytest-adsreplay (thin: the work is in ``runner``).

Disable with ``-p no:adsreplay``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_adsreplay.config import OPTIONS, build_settings
from pytest_adsreplay.errors import AdsReplayError, UsageError
from pytest_adsreplay.plugin.session import ReplayRun
from pytest_adsreplay.urls import mask_url
from pytest_adsreplay.queue.pipeline import Chain, Outcome, new_run_id
from pytest_adsreplay.recordings import Recording, check_expectations
from pytest_adsreplay.reporting.text import (
    PROPERTY_PREFIX,
    expectation_failure,
    outcome_failure,
    summary_lines,
    worst,
)

RUN_KEY = pytest.StashKey[ReplayRun]()
USAGE_KEY = pytest.StashKey[str]()
SUMMARY_KPIS = (
    "fcw_time",
    "brake_time",
    "ttc_at_brake",
    "fcw_lead_time",
    "collision",
    "impact_speed",
)


class ReplayFailed(Exception):
    """The function under test failed (or an expectation was violated) for a recording."""


# -- options -----------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("adsreplay", "AEB replay of MF4 recordings (pytest-adsreplay)")
    for opt in OPTIONS:
        dest = f"adsreplay_opt_{opt.name}"
        if opt.flag == "--recordings":
            group.addoption(
                opt.flag, action="append", dest=dest, default=[], metavar=opt.metavar, help=opt.help
            )
        elif opt.flag == "--adsreplay-update-baseline":
            group.addoption(opt.flag, action="store_true", dest=dest, default=False, help=opt.help)
        elif opt.flag and opt.const is not None:
            group.addoption(
                opt.flag,
                action="store_const",
                const=opt.const,
                dest=dest,
                default=None,
                help=opt.help,
            )
        elif opt.flag:
            group.addoption(opt.flag, dest=dest, default=None, metavar=opt.metavar, help=opt.help)
        if opt.ini:
            if opt.name == "recordings":
                parser.addini(opt.ini, opt.help, type="linelist", default=[])
            else:
                parser.addini(opt.ini, opt.help, type="string", default="")
    parser.addini("adsreplay_baseline_tolerances", TOLERANCES_HELP, type="string", default="")


def _run(config: pytest.Config) -> ReplayRun:
    return config.stash[RUN_KEY]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "recordings(pattern=None, tags=None, scenario=None): replay only the recordings whose "
        "id matches the glob pattern(s), that carry all the tags, or whose scenario is named",
    )
    config.addinivalue_line(
        "markers",
        "adsreplay_params(**params): keyword parameters for the function's factory, merged "
        "over adsreplay_function_params (calibration variants)",
    )
    inipath = config.inipath
    try:
        settings = build_settings(
            lambda name: config.getoption(f"adsreplay_opt_{name}", None),
            config.getini,
            ini_base=inipath.parent if inipath else config.rootpath,
            ini_label=inipath.name if inipath else "ini",
        )
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    workerinput = getattr(config, "workerinput", None)
    run_id = workerinput.get("adsreplay_run_id") if workerinput else None
    run = ReplayRun(
        settings,
        run_id=run_id or new_run_id(),
        owner=workerinput is None,
        rootdir=config.rootpath,
    )
    config.stash[RUN_KEY] = run
    config.pluginmanager.register(_Summary(config), "adsreplay-summary")
    if run.configured:
        try:
            run.recordings  # noqa: B018 - discover now: zero recordings is a usage error
        except UsageError as exc:
            raise pytest.UsageError(str(exc)) from None
    _register_extras(config, run)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker shares the controller's run id."""
    node.workerinput["adsreplay_run_id"] = _run(node.config).run_id


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    run = _run(config)
    if not run.configured:
        return None
    return [run.header()]


# -- collection --------------------------------------------------------------------------
def _selections(node: Any) -> list[dict[str, Any]]:
    """The ``@pytest.mark.recordings(pattern, tags, scenario, metadata)`` selections."""
    names = ("pattern", "tags", "scenario", "metadata")
    return [
        dict(m.kwargs, **dict(zip(names, m.args, strict=False)))
        for m in node.iter_markers("recordings")
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "recording" not in metafunc.fixturenames:
        return
    run = _run(metafunc.config)
    who = f"test {metafunc.definition.nodeid}"
    try:
        recs = run.select(_selections(metafunc.definition), who)
    except UsageError as exc:
        # raised from pytest_collection_modifyitems: inside a collector it would only be
        # a collection error (exit 2), not the usage error (exit 4) it is
        metafunc.config.stash[USAGE_KEY] = str(exc)
        recs = []
    metafunc.parametrize("recording", recs, ids=[r.id for r in recs], indirect=True)


class SidecarFile(pytest.File):
    """A recording's sidecar TOML, the parent of its generated expectation item."""

    def collect(self) -> Iterator[pytest.Item]:  # pragma: no cover - built directly
        return iter(())


class ExpectItem(pytest.Item):
    """Checks a recording's sidecar ``[expect]`` bounds (no Python test file needed)."""

    def __init__(self, *, recording: Recording, **kwargs: Any):
        super().__init__(**kwargs)
        self.recording = recording
        self.outcome: Outcome | None = None

    def setup(self) -> None:
        _check_sidecar(self, self.recording)
        run = _run(self.config)
        self.outcome = _outcome(self, run.chain(self.recording))

    def runtest(self) -> None:
        out = self.outcome
        assert out is not None
        if not out.ok:
            raise ReplayFailed(_failure_text(out))
        violations = check_expectations(self.recording.expect, out.kpis)
        if violations:
            raise ReplayFailed(
                expectation_failure(self.recording.id, str(self.recording.sidecar), violations)
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ReplayFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"expect[{self.recording.id}]"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if USAGE_KEY in config.stash:
        raise pytest.UsageError(config.stash[USAGE_KEY])
    run = _run(config)
    if not run.configured:
        return
    for rec in run.recordings:
        if (rec.expect or rec.problem) and rec.sidecar is not None:
            parent = SidecarFile.from_parent(session, path=rec.sidecar, nodeid=rec.id)
            items.append(ExpectItem.from_parent(parent, name="expect", recording=rec))


def _chain_of(item: pytest.Item) -> Chain | None:
    run = _run(item.config)
    if isinstance(item, ExpectItem):
        return run.chain(item.recording)
    if isinstance(item, BaselineItem):
        return item.chain
    callspec = getattr(item, "callspec", None)
    rec = callspec.params.get("recording") if callspec is not None else None
    if not isinstance(rec, Recording) or "replay" not in getattr(item, "fixturenames", ()):
        return None
    marker = item.get_closest_marker("adsreplay_params")
    return run.chain(rec, marker.kwargs if marker else None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Enqueue every chain the selected tests need, once, before the first test runs."""
    run = _run(session.config)
    chains = [c for c in map(_chain_of, session.items) if c is not None]
    if not chains or session.config.option.collectonly:
        return
    try:
        run.start(chains)
    except AdsReplayError as exc:
        raise pytest.UsageError(str(exc)) from None


# -- fixtures ----------------------------------------------------------------------------
@pytest.fixture
def recording(request: pytest.FixtureRequest) -> Recording:
    """The recording under test (path, id, tags, scenario, sidecar metadata).

    Every test that takes ``recording`` or ``replay`` runs once per selected recording;
    narrow the set with ``@pytest.mark.recordings(pattern=, tags=, scenario=)``.
    """
    rec: Recording = request.param
    _check_sidecar(request.node, rec)
    return rec


@pytest.fixture
def replay(request: pytest.FixtureRequest, recording: Recording) -> Any:
    """The ReplayResult of the current recording through the function under test.

    KPIs as attributes (``brake_time``, ``ttc_at_brake``, ``fcw_lead_time``, ``collision``,
    ``impact_speed``, …), ``.signals``/``.outputs`` as dicts of numpy arrays on ``.t``.
    A function that raises fails the test; an unreadable recording errors it.
    """
    chain = _chain_of(request.node)
    assert chain is not None
    out = _outcome(request.node, chain)
    if not out.ok:
        return _FailedReplay(_failure_text(out))
    return _run(request.config).result(chain, out)


@pytest.fixture(scope="session")
def adsreplay_redis(pytestconfig: pytest.Config) -> Any:
    """The session's Redis connection (embedded fakeredis or ``--redis-url``)."""
    run = _run(pytestconfig)
    if run.session is None:
        from pytest_adsreplay.queue.broker import connect

        return connect(run.settings.redis_url)
    return run.session.conn


@pytest.fixture(scope="session")
def adsreplay_results(pytestconfig: pytest.Config) -> Any:
    """The results store (``--adsreplay-db``): ``.results(run_id)``, ``.runs()``.

    The current run id is ``adsreplay_results.run_id``.
    """
    run = _run(pytestconfig)
    store = run.store
    store.run_id = run.run_id
    return store


class _FailedReplay:
    """Stands in for a ReplayResult whose function failed; the test fails on call."""

    def __init__(self, message: str):
        self.message = message

    def __getattr__(self, name: str) -> Any:
        raise ReplayFailed(self.message)


def _check_sidecar(item: pytest.Item, rec: Recording) -> None:
    """A recording whose sidecar is broken errors its own tests (and only those)."""
    if rec.problem:
        item.user_properties.append((f"{PROPERTY_PREFIX}recording", rec.id))
        item.user_properties.append((f"{PROPERTY_PREFIX}status", "error"))
        pytest.fail(f"{rec.id}: {rec.problem}", pytrace=False)


def _failure_text(out: Outcome) -> str:
    return outcome_failure(out.recording, out.status, out.stage, out.error)


def _outcome(item: pytest.Item, chain: Chain) -> Outcome:
    """Wait for a chain; errors and invalid recordings end the test here (setup)."""
    run = _run(item.config)
    problem = None
    try:
        out = run.outcome(chain)
    except AdsReplayError as exc:
        problem = f"{chain.recording.id}: {exc}"
    if problem is not None:  # outside the except: no "During handling of…" noise
        pytest.fail(problem, pytrace=False)
    _attach_properties(item, chain, out)
    _after_outcome(item, chain, out)
    if out.status == "error":
        pytest.fail(_failure_text(out), pytrace=False)
    if out.status == "invalid":
        mode = run.settings.invalid
        if mode == "skip":
            pytest.skip(_failure_text(out))
        if mode == "error":
            pytest.fail(_failure_text(out), pytrace=False)
    return out


def _attach_properties(item: pytest.Item, chain: Chain, out: Outcome) -> None:
    """KPIs as JUnit XML properties; the terminal summary is built from them too."""
    props = item.user_properties
    if any(name == f"{PROPERTY_PREFIX}recording" for name, _ in props):
        return
    rid = chain.recording.id + (f" [{chain.variant}]" if chain.variant else "")
    props.append((f"{PROPERTY_PREFIX}recording", rid))
    props.append((f"{PROPERTY_PREFIX}scenario", chain.recording.scenario or ""))
    props.append((f"{PROPERTY_PREFIX}status", out.status))
    for name, value in out.kpis.items():
        if name != "activations":
            props.append((f"{PROPERTY_PREFIX}{name}", value))
    props.append((f"{PROPERTY_PREFIX}activations", len(out.kpis.get("activations") or [])))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> None:
    """A failed function under test fails the test (call phase), not errors it."""
    for value in pyfuncitem.funcargs.values():
        if isinstance(value, _FailedReplay):
            raise ReplayFailed(value.message)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.excinfo is not None and isinstance(call.excinfo.value, ReplayFailed):
        report.longrepr = str(call.excinfo.value)
    return report


# -- reporting ---------------------------------------------------------------------------
class _Summary:
    """Per-config collector of summary rows, built from report properties (xdist-safe)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.rows: dict[str, dict[str, Any]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
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
        if hasattr(self.config, "workerinput") or not self.rows:
            return
        terminalreporter.write_sep("=", "adsreplay KPI summary")
        for line in summary_lines(self.rows):
            terminalreporter.write_line(line)
        run = _run(self.config)
        terminalreporter.write_line(f"results: {mask_url(run.settings.db)} (run {run.run_id})")


def pytest_sessionstart(session: pytest.Session) -> None:
    run = _run(session.config)
    if session.config.option.collectonly:
        return
    try:
        run.begin()
    except Exception as exc:
        raise pytest.UsageError(f"results database {mask_url(run.settings.db)}: {exc}") from None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    complete = not session.shouldstop and not session.shouldfail
    _run(session.config).finish(int(exitstatus), complete=complete)


from pytest_adsreplay.plugin.extras import (  # noqa: E402 - it refers back to this module's helpers
    TOLERANCES_HELP,
    BaselineItem,
    _after_outcome,
    _register_extras,
)

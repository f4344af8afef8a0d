"""pytest-adsreplay's pytest entry point: options and fixtures.

The hooks live on the session object (:mod:`.session`) registered at configure time,
next to the baseline, report, progress and xdist plugins that the options ask for.
Disable the plugin with ``-p no:adsreplay``.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_adsreplay.config import OPTIONS, build_settings
from pytest_adsreplay.errors import UsageError
from pytest_adsreplay.plugin.baseline import TOLERANCES_HELP, register_baseline
from pytest_adsreplay.plugin.fleet import register_fleet
from pytest_adsreplay.plugin.items import (
    RUN_KEY,
    USAGE_KEY,
    FailedReplay,
    ReplayFailed,
    chain_of,
    check_recording,
    failure_text,
    run_of,
    wait_outcome,
)
from pytest_adsreplay.plugin.progress import register_progress
from pytest_adsreplay.plugin.report import register_report
from pytest_adsreplay.plugin.run import ReplayRun
from pytest_adsreplay.plugin.session import AdsReplaySession
from pytest_adsreplay.plugin.xdist import XdistPlugin, is_worker, worker_run_id
from pytest_adsreplay.queue.pipeline import new_run_id
from pytest_adsreplay.recordings import Recording

__all__ = ["RUN_KEY", "USAGE_KEY", "ReplayFailed", "run_of"]


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


def pytest_configure(config: pytest.Config) -> None:
    """Resolve the settings, create the run and register the session's plugins."""
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
    run = ReplayRun(
        settings,
        run_id=worker_run_id(config) or new_run_id(),
        owner=not is_worker(config),
        rootdir=config.rootpath,
    )
    config.stash[RUN_KEY] = run
    session = AdsReplaySession(config, run)
    config.pluginmanager.register(session, "adsreplay-session")
    if not is_worker(config):
        config.pluginmanager.register(XdistPlugin(run.run_id), "adsreplay-xdist")
    if run.configured:
        try:
            run.recordings  # noqa: B018 - discover now: zero recordings is a usage error
        except UsageError as exc:
            raise pytest.UsageError(str(exc)) from None
        session.install_sigterm()
    register_baseline(config, run)
    register_report(config, run)
    register_progress(config, run)
    register_fleet(config, run)


# -- fixtures ----------------------------------------------------------------------------
@pytest.fixture
def recording(request: pytest.FixtureRequest) -> Recording:
    """The recording under test (path, id, tags, scenario, sidecar metadata).

    Every test that takes ``recording`` or ``replay`` runs once per selected recording;
    narrow the set with ``@pytest.mark.recordings(pattern=, tags=, scenario=)``.
    """
    rec: Recording = request.param
    check_recording(request.node, rec)
    return rec


@pytest.fixture
def replay(request: pytest.FixtureRequest, recording: Recording) -> Any:
    """The ReplayResult of the current recording through the function under test.

    KPIs as attributes (``brake_time``, ``ttc_at_brake``, ``fcw_lead_time``, ``collision``,
    ``impact_speed``, …), ``.signals``/``.outputs`` as dicts of numpy arrays on ``.t``.
    A function that raises fails the test; an unreadable recording errors it.
    """
    chain = chain_of(request.node)
    assert chain is not None
    out = wait_outcome(request.node, chain)
    if not out.ok:
        return FailedReplay(failure_text(out))
    return run_of(request.config).result(chain, out)


@pytest.fixture(scope="session")
def adsreplay_redis(pytestconfig: pytest.Config) -> Any:
    """The session's Redis connection (embedded fakeredis or ``--redis-url``)."""
    run = run_of(pytestconfig)
    if run.session is None:
        from pytest_adsreplay.queue.broker import connect

        return connect(run.settings.redis_url)
    return run.session.conn


@pytest.fixture(scope="session")
def adsreplay_results(pytestconfig: pytest.Config) -> Any:
    """The results store (``--adsreplay-db``): ``.results(run_id)``, ``.runs()``.

    The current run id is ``adsreplay_results.run_id``.
    """
    run = run_of(pytestconfig)
    store = run.store
    store.run_id = run.run_id
    return store

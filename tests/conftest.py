"""Shared fixtures: the embedded mode by default, synthetic approach recordings and small
pytester projects."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import asammdf  # noqa: F401
import fakeredis  # noqa: F401
import pytest
import rq  # noqa: F401
import scipy.signal  # noqa: F401
from adsreplay_testkit import TTC_FUNCTION, write_approach

# Imported once here: pytester's in-process runs restore sys.modules afterwards, and a
# C extension imported first inside an inner run cannot be loaded again in the next one.

#: Environment variables of the test suite itself, kept for every test.
SUITE_VARIABLES = ("ADSREPLAY_TEST_", "ADSREPLAY_BENCH_")


@pytest.fixture(autouse=True)
def embedded_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts in the embedded mode, whatever the shell that runs the suite set:
    the plugin's ``ADSREPLAY_*`` settings (``ADSREPLAY_REDIS_URL``, ``ADSREPLAY_DB``, …)
    are removed from the environment for the test. A test that wants a real Redis says so
    with the ``real_redis`` fixture (which read ``ADSREPLAY_REDIS_URL`` at start-up) or
    by passing ``--redis-url``; a test of an environment variable sets it itself."""
    for name in list(os.environ):
        if name.startswith("ADSREPLAY_") and not name.startswith(SUITE_VARIABLES):
            monkeypatch.delenv(name)


@pytest.fixture
def approach() -> Callable[..., Path]:
    """``approach(path, ego_kph=…, target_kph=…, sidecar=…)`` writes an approach MF4."""
    return write_approach


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester project (embedded mode) with a function module ``aebfn`` and three
    recordings.

    recs/ccrs/a40.mf4 (expects braking, no collision), recs/ccrs/b60.mf4,
    recs/ccrm/c50.mf4 (moving target). The ini sets the function and the DB path.
    """
    pytester.makepyfile(aebfn=TTC_FUNCTION)
    root = pytester.path / "recs"
    write_approach(
        root / "ccrs" / "a40.mf4",
        ego_kph=40,
        sidecar="""
        scenario = "CCRs"
        tags = ["ncap", "ccrs"]
        [expect]
        brake = true
        ttc_at_brake = [1.4, 1.6]
        collision = false
    """,
    )
    write_approach(
        root / "ccrs" / "b60.mf4",
        ego_kph=60,
        sidecar="""
        scenario = "CCRs"
        tags = ["ncap", "ccrs"]
    """,
    )
    write_approach(
        root / "ccrm" / "c50.mf4",
        ego_kph=50,
        target_kph=20,
        sidecar="""
        scenario = "CCRm"
        tags = ["ncap"]
    """,
    )
    pytester.makeini(
        """
        [pytest]
        adsreplay_function = aebfn:Ttc
        adsreplay_db = results.sqlite
        """
    )
    pytester.syspathinsert()
    return pytester

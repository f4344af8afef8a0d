"""Assertion helpers for scenario tests: failures read like an engineer's note.

from pytest_adsreplay.assertions import assert_kpi
assert_kpi(replay, "ttc_at_brake", min=1.5, max=1.9)
# AssertionError: ncap/CCRs_40kph.mf4: ttc_at_brake = 1.400, expected in [1.5, 1.9]
#   (off by -0.100) -> ...
"""

from __future__ import annotations

from typing import Any

from pytest_adsreplay.recordings import Bound, check_expectations

NEXT_STEP = (
    "replay it alone with pytest_adsreplay.replay_file(path, function) and look at "
    "outputs['aeb_decel'] and outputs['fcw'] around the event"
)


def assert_kpi(
    replay: Any,
    name: str,
    *,
    min: float | None = None,
    max: float | None = None,
    equals: bool | float | None = None,
    why: str = "",
) -> None:
    """Fail with recording id, bound, observed value and delta when a KPI is out of bounds."""
    __tracebackhide__ = True
    if min is None and max is None and equals is None:
        raise ValueError("assert_kpi needs min=, max= or equals=")
    bound = Bound(name, lo=min, hi=max, exact=equals)
    violations = check_expectations([bound], replay.kpis)
    if violations:
        reason = f" ({why})" if why else ""
        raise AssertionError(
            f"{replay.recording}: {violations[0].describe()}{reason}\n  -> {NEXT_STEP}"
        )

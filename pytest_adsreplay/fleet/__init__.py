"""Fleet statistics, release gates and the merge-request summary."""

from __future__ import annotations

from pytest_adsreplay.fleet.facts import facts_from_outcome, facts_from_replay
from pytest_adsreplay.fleet.gates import Gate, GateResult, evaluate, parse_gates
from pytest_adsreplay.fleet.markdown import KpiChange, Summary, render
from pytest_adsreplay.fleet.stats import (
    Event,
    GroupStats,
    RecordingFacts,
    clopper_pearson,
    exposure,
    fleet_stats,
    lower_bound,
    onsets,
    poisson_upper,
    stats_lines,
)

__all__ = [
    "Event",
    "Gate",
    "GateResult",
    "GroupStats",
    "KpiChange",
    "RecordingFacts",
    "Summary",
    "clopper_pearson",
    "evaluate",
    "exposure",
    "facts_from_outcome",
    "facts_from_replay",
    "fleet_stats",
    "lower_bound",
    "onsets",
    "parse_gates",
    "poisson_upper",
    "render",
    "stats_lines",
]

"""Release gates on fleet figures: parsed from TOML, evaluated on the session's facts.

A gate bounds one metric over a group of recordings::

    false_activations_per_1000km = { max = 0.5, bound = "upper95" }
    false_warnings_per_hour = { max = 2 }
    ncap_pass_rate = { metric = "pass_rate", scenario = "CCR*", min = 0.9 }

``bound = "estimate"`` (the default) compares the observed figure; ``"upper95"`` (rates)
and ``"lower95"`` (pass rates) compare the one-sided 95 % confidence bound instead —
stricter, and with little data always failing, which the gate's text then says. A gate
with no data to judge fails: a merge gate never passes by accident.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_adsreplay.errors import UsageError
from pytest_adsreplay.fleet.stats import (
    Event,
    RecordingFacts,
    group_stats,
    poisson_upper,
    select,
)

#: Rate metrics: (which events, per what) -> text unit.
RATE_METRICS: dict[str, tuple[str, str]] = {
    "false_activations_per_1000km": ("false_activations", "1000km"),
    "false_activations_per_hour": ("false_activations", "hour"),
    "false_warnings_per_1000km": ("false_warnings", "1000km"),
    "false_warnings_per_hour": ("false_warnings", "hour"),
}
METRICS: tuple[str, ...] = (*RATE_METRICS, "pass_rate")
KEYS = ("metric", "max", "min", "bound", "scenario", "tag")
#: Events listed under a failing gate before "… and N more".
MAX_LISTED = 10


@dataclass(frozen=True)
class Gate:
    """One parsed gate."""

    name: str
    metric: str
    max: float | None = None
    min: float | None = None
    bound: str = "estimate"
    scenario: str | None = None
    tag: str | None = None

    @property
    def group(self) -> str:
        parts = []
        if self.scenario:
            parts.append(f"scenario {self.scenario}")
        if self.tag:
            parts.append(f"tag {self.tag}")
        return ", ".join(parts) or "all recordings"


@dataclass(frozen=True)
class GateResult:
    """A gate's verdict, its text and its figures (JUnit properties)."""

    gate: Gate
    passed: bool
    text: str
    properties: Mapping[str, str] = field(default_factory=dict)


def _number(name: str, key: str, value: Any, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise UsageError(
            f"gate {name!r}: {key} = {value!r} is not a number ({source})",
            hint=f"write e.g. {name} = {{ {key} = 0.5 }}",
        )
    return float(value)


def parse_gate(name: str, table: Any, source: str) -> Gate:
    """One gate from its TOML table; a usage error names the key that is wrong."""
    if not isinstance(table, Mapping):
        raise UsageError(
            f"gate {name!r} must be a table like {{ max = 0.5 }}, got {table!r} ({source})"
        )
    for key in table:
        if key not in KEYS:
            raise UsageError(
                f"gate {name!r}: unknown key {key!r} ({source})",
                hint=f"known keys: {', '.join(KEYS)}",
            )
    metric = str(table.get("metric", name))
    if metric not in METRICS:
        raise UsageError(
            f"gate {name!r}: unknown metric {metric!r} ({source})",
            hint=f"known metrics: {', '.join(METRICS)}; set metric = … when the gate's "
            "name is not a metric",
        )
    hi = None if "max" not in table else _number(name, "max", table["max"], source)
    lo = None if "min" not in table else _number(name, "min", table["min"], source)
    if hi is None and lo is None:
        raise UsageError(f"gate {name!r} has neither max nor min ({source})")
    bound = str(table.get("bound", "estimate"))
    allowed = ("estimate", "lower95") if metric == "pass_rate" else ("estimate", "upper95")
    if bound not in allowed:
        raise UsageError(
            f"gate {name!r}: bound = {bound!r} does not apply to {metric} ({source})",
            hint=f"use one of {', '.join(repr(a) for a in allowed)}",
        )
    scenario = table.get("scenario")
    tag = table.get("tag")
    for key, value in (("scenario", scenario), ("tag", tag)):
        if value is not None and not isinstance(value, str):
            raise UsageError(f"gate {name!r}: {key} must be a text (a glob), got {value!r}")
    return Gate(name, metric, hi, lo, bound, scenario, tag)


def parse_gates(tables: Mapping[str, Any], source: str) -> list[Gate]:
    """Every gate of a ``[gates]`` table, in the order written."""
    return [parse_gate(str(name), table, source) for name, table in tables.items()]


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "inf"
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _verdict(gate: Gate, value: float) -> tuple[bool, str]:
    if gate.max is not None and value > gate.max:
        return False, f"exceeds max {_fmt(gate.max)}"
    if gate.min is not None and value < gate.min:
        return False, f"below min {_fmt(gate.min)}"
    limits = [f"max {_fmt(gate.max)}" if gate.max is not None else ""]
    limits.append(f"min {_fmt(gate.min)}" if gate.min is not None else "")
    return True, "within " + " and ".join(x for x in limits if x)


def _events(events: Sequence[Event]) -> list[str]:
    lines = [f"  - {e.describe()}" for e in events[:MAX_LISTED]]
    if len(events) > MAX_LISTED:
        lines.append(f"  … and {len(events) - MAX_LISTED} more")
    return lines


def _rate(gate: Gate, facts: Sequence[RecordingFacts]) -> GateResult:
    which, per = RATE_METRICS[gate.metric]
    g = group_stats(gate.name, facts)
    rate = g.false_activations if which == "false_activations" else g.false_warnings
    exposure = rate.km / 1000.0 if per == "1000km" else rate.hours
    unit = "per 1000 km" if per == "1000km" else "per hour"
    kind = "false activations" if which == "false_activations" else "false warnings"
    props = {"metric": gate.metric, "events": str(rate.count), "km": f"{rate.km:.3f}"}
    props["hours"] = f"{rate.hours:.4f}"
    if exposure <= 0:
        text = (
            f"gate {gate.name}: no exposure to judge {kind} on ({gate.group}: no valid "
            "recording where none may occur) — failing, a gate never passes without data"
        )
        return GateResult(gate, False, text, props)
    value = rate.count / exposure
    upper = poisson_upper(rate.count, exposure)
    props.update(value=f"{value:.6g}", upper95=f"{upper:.6g}", bound=gate.bound)
    judged = upper if gate.bound == "upper95" else value
    ok, verdict = _verdict(gate, judged)
    text = (
        f"gate {gate.name}: {_fmt(value)} {unit} (upper 95 %: {_fmt(upper)}; "
        f"{rate.count} events in {rate.km:,.0f} km, {rate.hours:,.1f} h) {verdict}"
    )
    if gate.bound == "upper95":
        text += " (judged on the upper 95 % bound)"
        if not ok and gate.max is not None and gate.max > 0:
            need = poisson_upper(0, 1.0) / gate.max
            need_text = f"{need * 1000:,.0f} km" if per == "1000km" else f"{need:,.1f} h"
            text += (
                f"; with the upper bound even 0 events need {need_text} of eligible driving to pass"
            )
    lines = [text, *_events(rate.events)]
    return GateResult(gate, ok, "\n".join(lines), props)


def _pass_rate(gate: Gate, facts: Sequence[RecordingFacts]) -> GateResult:
    g = group_stats(gate.name, facts)
    pr = g.pass_rate
    props = {"metric": gate.metric, "passed": str(pr.passed), "runs": str(pr.runs)}
    if not pr.runs:
        text = (
            f"gate {gate.name}: no judged recordings in {gate.group} — failing, a gate "
            "never passes without data"
        )
        return GateResult(gate, False, text, props)
    rate, lower = pr.passed / pr.runs, pr.lower95
    props.update(value=f"{rate:.6g}", lower95=f"{lower:.6g}", bound=gate.bound)
    ok, verdict = _verdict(gate, lower if gate.bound == "lower95" else rate)
    text = (
        f"gate {gate.name}: pass rate {rate:.3f} (lower 95 %: {lower:.3f}; {pr.passed} of "
        f"{pr.runs} recordings in {gate.group}) {verdict}"
    )
    if gate.bound == "lower95":
        text += " (judged on the lower 95 % bound)"
    failing = [f for f in facts if f.valid and not f.passed]
    lines = [text]
    lines += [
        f"  - {f.recording} {'errored' if f.status == 'error' else 'failed'}"
        for f in failing[:MAX_LISTED]
    ]
    if len(failing) > MAX_LISTED:
        lines.append(f"  … and {len(failing) - MAX_LISTED} more")
    return GateResult(gate, ok, "\n".join(lines), props)


def evaluate(
    gate: Gate, facts: Sequence[RecordingFacts], *, narrowed: str | None = None
) -> GateResult:
    """The gate's verdict on the facts of the recordings it covers.

    ``narrowed`` says how a selection (``-k``, markers) narrowed the data; it is added to
    the text so a reader knows the gate did not see the whole set.
    """
    covered = select(facts, scenario=gate.scenario, tag=gate.tag)
    result = _rate(gate, covered) if gate.metric in RATE_METRICS else _pass_rate(gate, covered)
    props = dict(result.properties)
    props["recordings"] = str(len(covered))
    text = result.text
    if narrowed:
        first, sep, rest = text.partition("\n")
        text = f"{first} [narrowed: {narrowed}]{sep}{rest}"
        props["narrowed"] = narrowed
    return GateResult(gate, result.passed, text, props)

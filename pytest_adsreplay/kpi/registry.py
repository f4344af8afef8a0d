"""The KPI registry: one :class:`KpiSpec` per KPI, the single home of a KPI's identity.

Everything that names a KPI derives from ``KPIS``: the ``ReplayResult`` attributes, the
results-database columns, the baseline file and its tolerances, the data-quality gate's
target check, the terminal and HTML tables, JUnit properties. Adding a KPI is one spec here
plus one ``@kpi_function`` in :mod:`pytest_adsreplay.kpi.compute` (CONTRIBUTING.md shows a
worked example). Order matters: it is the order of the database columns and of every
listing of all KPIs, so a new KPI goes at the end.

Pure data; nothing here imports numpy.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "KPIS",
    "KPI_NAMES",
    "SCALAR_KPIS",
    "TARGET_KPIS",
    "Better",
    "KpiSpec",
    "ValueKind",
    "format_value",
    "get",
    "headings",
    "junit_value",
    "spec",
]

#: Which way a KPI improves against a baseline of the same recording: "higher", "lower", or
#: None (a change either way beyond the tolerance is a regression). Event times improve
#: when earlier: on a recording with a real threat an earlier warning or brake leaves more
#: margin. A false activation or a missed event shows as an event that appears or vanishes
#: (None on one side), which is always a regression whatever the direction.
Better = Literal["higher", "lower"] | None
#: What a KPI's value is: a float (None when the event never happened), a flag (bool) or a
#: list of events (counted where one number is needed).
ValueKind = Literal["number", "flag", "events"]
_COLUMN = {"number": "REAL", "flag": "INTEGER", "events": "TEXT"}
_KIND_UNIT = {"flag": "bool", "events": "count"}


@dataclass(frozen=True)
class KpiSpec:
    """Everything the package knows about one KPI besides how it is computed.

    ``unit`` is the SI unit of the stored value ("" when it has none); tables show it
    multiplied by ``scale`` in ``shown_unit`` (impact speed: m/s stored, km/h shown) with
    ``decimals`` decimals. ``digits`` is its resolution: the decimals of the SI value that
    carry information (JUnit properties are rounded to it). ``tolerance`` names the
    baseline tolerance kind (time, ttc, decel, speed, distance, exact, count);
    ``needs_target`` says a bound on it in a sidecar implies a target object;
    ``better`` is the direction in which a change is an improvement.
    """

    name: str
    label: str  # long, for the per-recording KPI table: "FCW lead time"
    heading: str  # short, for one-row-per-recording tables: "FCW lead"
    unit: str
    tolerance: str
    kind: ValueKind = "number"
    needs_target: bool = False
    better: Better = None
    decimals: int = 3
    digits: int = 3
    scale: float = 1.0
    shown_unit: str | None = None  # None: the SI unit

    @property
    def column(self) -> str:
        """The results-database column type (REAL is DOUBLE PRECISION on PostgreSQL)."""
        return _COLUMN[self.kind]

    @property
    def display_unit(self) -> str:
        return self.unit if self.shown_unit is None else self.shown_unit

    @property
    def file_unit(self) -> str:
        """The unit written to the baseline file: the SI unit, or what the value counts."""
        return self.unit or _KIND_UNIT.get(self.kind, "")

    @property
    def title(self) -> str:
        """``label [unit]``: the row label of the per-recording KPI table."""
        return _with_unit(self.label, self.display_unit)

    @property
    def si_name(self) -> str:
        """``name [SI unit]``: the KPI as sidecar bounds and stored values state it."""
        return _with_unit(self.name, self.unit)

    @property
    def column_heading(self) -> str:
        """``heading [unit]``: the column heading of one-row-per-recording tables."""
        return _with_unit(self.heading, self.display_unit)

    def shown(self, value: float) -> float:
        """The value in the unit tables show it in (``scale`` times the SI value)."""
        return value * self.scale

    def format(self, value: Any) -> str:
        """A table cell: '-' for None, yes/no for flags, scaled numbers with ``decimals``."""
        return _format(value, self.decimals, self.scale if self.scale != 1.0 else None)

    def junit(self, value: Any) -> Any:
        """The value for a JUnit XML property: floats rounded to ``digits`` (no float noise
        such as 5.3100000000000005), events counted; None, flags and infinities unchanged."""
        if self.kind == "events":
            return len(value) if isinstance(value, list | tuple) else value
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            return value
        x = float(value)
        if not math.isfinite(x):
            return x
        r = round(x, self.digits)
        return 0.0 if r == 0 else r

    def compare(self, delta: float, tolerance: float) -> Literal["same", "better", "worse"]:
        """Classify a change ``now - baseline``: within ``tolerance`` it is the same;
        beyond it better only in the direction of ``better``, else worse."""
        if math.isnan(delta):
            return "worse"
        if abs(delta) <= tolerance + 1e-9:
            return "same"
        if (self.better == "higher" and delta > 0) or (self.better == "lower" and delta < 0):
            return "better"
        return "worse"


def _with_unit(text: str, unit: str) -> str:
    return f"{text} [{unit}]" if unit else text


def _format(value: Any, decimals: int, scale: float | None) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if scale is not None and isinstance(value, int | float):
        return f"{float(value) * scale:.{decimals}f}"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        return f"{value:.{decimals}f}"
    return str(value)


_S = "s"
KPIS: tuple[KpiSpec, ...] = (
    KpiSpec("fcw_time", "FCW time", "fcw", _S, "time", better="lower"),
    KpiSpec("brake_time", "brake time", "brake", _S, "time", better="lower"),
    KpiSpec("ttc_at_fcw", "TTC at FCW", "TTC@fcw", _S, "ttc", needs_target=True, better="higher"),
    KpiSpec(
        "ttc_at_brake", "TTC at brake", "TTC@brake", _S, "ttc", needs_target=True, better="higher"
    ),
    KpiSpec(
        "fcw_lead_time", "FCW lead time", "FCW lead", _S, "time", needs_target=True, better="higher"
    ),
    KpiSpec("min_ttc", "min TTC", "min TTC", _S, "ttc", needs_target=True, better="higher"),
    KpiSpec("max_decel", "max requested decel", "max decel", "m/s²", "decel"),
    KpiSpec("activations", "activations", "activations", "", "count", kind="events"),
    KpiSpec(
        "collision", "collision (projected)", "collision", "", "exact", kind="flag", better="lower"
    ),
    KpiSpec(
        "impact_speed",
        "impact speed",
        "impact",
        "m/s",
        "speed",
        needs_target=True,
        better="lower",
        decimals=1,
        scale=3.6,
        shown_unit="km/h",
    ),
    KpiSpec(
        "min_distance",
        "min distance",
        "min dist",
        "m",
        "distance",
        needs_target=True,
        better="higher",
    ),
    KpiSpec("recorded_brake_time", "recorded brake onset", "rec. brake", _S, "time"),
    KpiSpec("target_id_at_brake", "KPI target id at brake", "target id", "", "exact", decimals=0),
    KpiSpec("reacted_to_at_brake", "braked for track id", "reacted to", "", "exact", decimals=0),
    KpiSpec(
        "braked_for_out_of_path",
        "braked for an out-of-path object",
        "out of path",
        "",
        "exact",
        kind="flag",
        better="lower",
    ),
)
_BY_NAME = {s.name: s for s in KPIS}

#: Every KPI name, in registry order (the order of ``compute_kpis`` and the database columns).
KPI_NAMES: tuple[str, ...] = tuple(_BY_NAME)
#: The KPIs with one value (all but the list of braking activations).
SCALAR_KPIS: tuple[str, ...] = tuple(s.name for s in KPIS if s.kind != "events")
#: The KPIs whose sidecar bounds imply that the recording has a target object.
TARGET_KPIS: frozenset[str] = frozenset(s.name for s in KPIS if s.needs_target)


def get(name: str) -> KpiSpec | None:
    """The spec of ``name``, or None when it is no KPI."""
    return _BY_NAME.get(name)


def spec(name: str) -> KpiSpec:
    """The spec of ``name``; an unknown name is a KeyError that suggests the closest KPI."""
    found = _BY_NAME.get(name)
    if found is None:
        close = difflib.get_close_matches(name, KPI_NAMES, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(KPI_NAMES)}"
        raise KeyError(f"no KPI {name!r}; {hint}")
    return found


def headings(names: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``(name, column heading)`` pairs of ``names`` for a one-row-per-recording table."""
    return tuple((n, spec(n).column_heading) for n in names)


def format_value(name: str, value: Any) -> str:
    """A table cell of ``name``: the KPI's own format, or 3 decimals for a name that is no
    KPI (a table may mix KPIs with other columns)."""
    found = _BY_NAME.get(name)
    return found.format(value) if found is not None else _format(value, 3, None)


def junit_value(name: str, value: Any) -> Any:
    """A JUnit XML property value of ``name``: rounded to the KPI's resolution (see
    ``KpiSpec.junit``); a name that is no KPI passes through unchanged."""
    found = _BY_NAME.get(name)
    return found.junit(value) if found is not None else value

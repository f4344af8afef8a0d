"""A sidecar's ``[expect]`` bounds: parsing them and checking a replay's KPIs against them."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_adsreplay.errors import SidecarError
from pytest_adsreplay.kpi.registry import KPIS

#: Boolean expectations that are not KPIs themselves.
EVENT_EXPECTATIONS = {"brake": "brake_time", "fcw": "fcw_time"}
#: KPIs whose bound is a count of list items rather than a value.
COUNT_KPIS = tuple(s.name for s in KPIS if s.kind == "events")
#: KPIs that are true or false (bounded only by ``true``/``false``).
FLAG_KPIS = tuple(s.name for s in KPIS if s.kind == "flag")
_SPECS = {s.name: s for s in KPIS}


def boundable_kpis() -> tuple[str, ...]:
    """Every name an ``[expect]`` table may bound."""
    return (*EVENT_EXPECTATIONS, *(s.name for s in KPIS))


@dataclass(frozen=True)
class Bound:
    """One expectation: ``lo <= value <= hi`` (either end may be None) or an exact value."""

    name: str
    lo: float | None = None
    hi: float | None = None
    exact: bool | float | None = None

    def describe(self) -> str:
        if self.exact is not None:
            return f"== {self.exact}"
        if self.lo is not None and self.hi is not None:
            return f"in [{self.lo:g}, {self.hi:g}]"
        if self.lo is not None:
            return f">= {self.lo:g}"
        return f"<= {self.hi:g}"


@dataclass(frozen=True)
class Violation:
    """A bound that a replay result broke, with the observed value and the distance."""

    bound: Bound
    observed: Any
    delta: float | None

    def describe(self) -> str:
        """``ttc_at_brake = 1.403 s, expected in [1.6, 1.8] s (off by -0.197 s)``: the
        values in the KPI's SI unit, the unit of sidecar bounds."""
        unit = _unit(self.bound.name)
        obs = format_observed(self.observed)
        if unit and _is_number(self.observed):
            obs += unit
        text = f"{self.bound.name} = {obs}, expected {self.bound.describe()}{unit}"
        if self.delta is not None:
            text += f" (off by {self.delta:+.3f}{unit})"
        return text


def _unit(name: str) -> str:
    """`` s``, `` m/s``: the SI unit of KPI ``name`` with a leading space, or ``""``."""
    spec = _SPECS.get(name)
    return f" {spec.unit}" if spec is not None and spec.unit else ""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def format_observed(value: Any) -> str:
    """A KPI value as a failure message shows it."""
    if value is None:
        return "None (never happened)"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}" if math.isfinite(value) else str(value)
    if isinstance(value, list):
        return f"{len(value)} events"
    return repr(value)


def _number(value: Any, what: str, side: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SidecarError(f"sidecar {side}: {what} must be a number, got {value!r}")
    return float(value)


def _range(spec: Any, where: str, side: Path) -> tuple[float | None, float | None]:
    """(lo, hi) of ``[min, max]`` or ``{min = …, max = …}``."""
    if isinstance(spec, list):
        if len(spec) != 2:
            raise SidecarError(f"sidecar {side}: {where} must be [min, max], got {spec!r}")
        lo: float | None = _number(spec[0], where, side)
        hi: float | None = _number(spec[1], where, side)
    else:
        extra = set(spec) - {"min", "max"}
        if extra or not spec:
            raise SidecarError(
                f"sidecar {side}: {where} takes {{min = …}} and/or {{max = …}}, got {spec!r}"
            )
        lo = _number(spec["min"], where, side) if "min" in spec else None
        hi = _number(spec["max"], where, side) if "max" in spec else None
    if lo is not None and hi is not None and lo > hi:
        raise SidecarError(f"sidecar {side}: {where} has min {lo} > max {hi}")
    return lo, hi


def _bound(name: str, spec: Any, side: Path) -> Bound:
    where = f"[expect] {name}"
    if isinstance(spec, bool):
        return Bound(name, exact=spec)
    if name in EVENT_EXPECTATIONS or name in FLAG_KPIS:
        raise SidecarError(f"sidecar {side}: {where} must be true or false, got {spec!r}")
    if isinstance(spec, int | float):
        return Bound(name, exact=float(spec))
    if isinstance(spec, list | dict):
        lo, hi = _range(spec, where, side)
        return Bound(name, lo=lo, hi=hi)
    raise SidecarError(
        f"sidecar {side}: {where} must be a bool, a number, [min, max] or "
        f"{{min = …, max = …}}, got {spec!r}"
    )


def parse_expect(table: Any, side: Path) -> tuple[Bound, ...]:
    """Bounds of an ``[expect]`` table; unknown KPI names or malformed bounds raise."""
    if not isinstance(table, dict):
        raise SidecarError(f"sidecar {side}: [expect] must be a table")
    known = boundable_kpis()
    bounds: list[Bound] = []
    for name, spec in table.items():
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            raise SidecarError(
                f"sidecar {side}: [expect] bounds unknown KPI {name!r}",
                hint=(f"did you mean {', '.join(close)}? " if close else "")
                + f"known: {', '.join(known)}",
            )
        bounds.append(_bound(name, spec, side))
    return tuple(bounds)


def _violation(b: Bound, kpis: Mapping[str, Any]) -> Violation | None:
    if b.name in EVENT_EXPECTATIONS:
        happened = kpis.get(EVENT_EXPECTATIONS[b.name]) is not None
        return Violation(b, happened, None) if happened != b.exact else None
    value = kpis.get(b.name)
    if b.name in COUNT_KPIS and isinstance(value, list):
        value = len(value)
    if isinstance(b.exact, bool):
        return Violation(b, value, None) if bool(value) != b.exact or value is None else None
    if value is None or isinstance(value, bool):
        bounded = b.exact is not None or b.lo is not None or b.hi is not None
        return Violation(b, value, None) if bounded else None
    v = float(value)
    if b.exact is not None:
        if not math.isclose(v, float(b.exact), rel_tol=1e-9, abs_tol=1e-9):
            return Violation(b, value, v - float(b.exact))
    elif b.lo is not None and not v >= b.lo:
        return Violation(b, value, v - b.lo)
    elif b.hi is not None and not v <= b.hi:
        return Violation(b, value, v - b.hi)
    return None


def check_expectations(bounds: Iterable[Bound], kpis: Mapping[str, Any]) -> list[Violation]:
    """Every violated bound with its observed value (an empty list means all hold)."""
    return [v for v in (_violation(b, kpis) for b in bounds) if v is not None]

"""The KPIs of a replay: one compute function per KPI of the registry. Pure numpy, no I/O.

``compute_kpis`` evaluates the function registered with ``@kpi_function(name)`` for every
KPI in ``registry.KPIS`` on a shared :class:`KpiInputs` (signals, outputs, settings and
the values several KPIs need: TTC series, first warning and braking cycles, projection).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from pytest_adsreplay.kpi.onset import recorded_brake_time
from pytest_adsreplay.kpi.projection import (
    COAST_HORIZON,
    LEAD_DECEL_MIN,
    LEAD_DECEL_WINDOW,
    MAX_EXTRAPOLATION,
    TARGET_END_TOLERANCE,
    KpiSettings,
    Projection,
    as_float,
    clean_request,
    project,
)
from pytest_adsreplay.kpi.registry import KPI_NAMES, SCALAR_KPIS
from pytest_adsreplay.kpi.target import kpi_signals

__all__ = [
    "COAST_HORIZON",
    "KPI_NAMES",
    "LEAD_DECEL_MIN",
    "LEAD_DECEL_WINDOW",
    "MAX_EXTRAPOLATION",
    "SCALAR_KPIS",
    "TARGET_END_TOLERANCE",
    "KpiInputs",
    "KpiSettings",
    "Projection",
    "compute_kpis",
    "kpi_function",
    "project",
    "recorded_brake_time",
    "ttc",
]


def ttc(distance: np.ndarray, rel_speed: np.ndarray) -> np.ndarray:
    """Time to collision d / -rel while closing (rel < 0), else +inf; NaN distance -> +inf.

    A negative distance counts as 0 (contact), so TTC is never negative.
    """
    d = np.asarray(distance, dtype=float)
    r = np.asarray(rel_speed, dtype=float)
    d, r = np.broadcast_arrays(d, r)
    out = np.full(d.shape, np.inf)
    closing = np.isfinite(d) & (r < 0)
    out[closing] = np.maximum(d[closing], 0.0) / -r[closing]
    return out


# --------------------------------------------------------------------------- inputs


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True as (first, last) index pairs, inclusive."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(i), int(j) - 1) for i, j in zip(edges[::2], edges[1::2], strict=True)]


@dataclass
class KpiInputs:
    """What the compute functions read: the replay on its ``t`` axis and the values several
    KPIs share, each computed once on first use."""

    t: np.ndarray
    signals: Mapping[str, np.ndarray]
    outputs: Mapping[str, np.ndarray]
    settings: KpiSettings

    @property
    def n(self) -> int:
        return int(self.t.size)

    @cached_property
    def ttc(self) -> np.ndarray:
        """Recorded TTC per cycle; +inf where the target is invalid or not closing."""
        distance = as_float(self.signals["target_distance"], self.n, "target_distance").copy()
        valid = self.signals.get("target_valid")
        if valid is not None:
            distance[as_float(valid, self.n, "target_valid") == 0] = np.nan
        rel = as_float(self.signals["target_rel_speed"], self.n, "target_rel_speed")
        return ttc(distance, rel)

    @cached_property
    def request(self) -> np.ndarray:
        """The requested deceleration as the actuator sees it (NaN -> 0, never negative)."""
        return clean_request(self.outputs["aeb_decel"], self.n)

    @cached_property
    def braking(self) -> np.ndarray:
        """Cycles whose request reaches the brake threshold."""
        return self.request >= self.settings.brake_threshold

    @cached_property
    def i_fcw(self) -> int | None:
        """First cycle with the warning on, or None."""
        fcw = np.nan_to_num(as_float(self.outputs["fcw"], self.n, "fcw"), nan=0.0) >= 0.5
        return _first(fcw)

    @cached_property
    def i_brake(self) -> int | None:
        """First braking cycle, or None."""
        return _first(self.braking)

    def time_of(self, i: int | None) -> float | None:
        return None if i is None else float(self.t[i])

    @cached_property
    def projection(self) -> Projection:
        """The projected outcome of braking from ``brake_time``."""
        brake_time = self.time_of(self.i_brake)
        return project(self.t, self.signals, self.request, brake_time, self.settings)


KpiFunction = Callable[[KpiInputs], Any]
_DEFAULT_SETTINGS = KpiSettings()
_FUNCTIONS: dict[str, KpiFunction] = {}


def kpi_function(name: str) -> Callable[[KpiFunction], KpiFunction]:
    """Register the compute function of the KPI ``name`` (which must have a spec in
    ``registry.KPIS``); it returns the KPI's JSON-able value."""
    if name not in KPI_NAMES:
        raise ValueError(f"@kpi_function({name!r}): add a KpiSpec for it to registry.KPIS first")

    def register(fn: KpiFunction) -> KpiFunction:
        if name in _FUNCTIONS:
            raise ValueError(f"@kpi_function({name!r}) is registered twice")
        _FUNCTIONS[name] = fn
        return fn

    return register


def compute_kpis(
    t: np.ndarray,
    signals: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
    settings: KpiSettings = _DEFAULT_SETTINGS,
) -> dict[str, Any]:
    """Every KPI of the registry as a JSON-able dict in ``KPI_NAMES`` order (times on ``t``).

    Without mapped target channels, the KPI target comes from the signals' object list
    (:func:`pytest_adsreplay.kpi.target.kpi_signals`)."""
    signals = kpi_signals(
        signals, path_half_width=settings.path_half_width, axle_to_front=settings.axle_to_front
    )
    inputs = KpiInputs(np.asarray(t, dtype=float).reshape(-1), signals, outputs, settings)
    missing = [name for name in KPI_NAMES if name not in _FUNCTIONS]
    if missing:
        raise RuntimeError(f"KPI(s) {', '.join(missing)} have a spec but no @kpi_function")
    inputs.ttc, inputs.i_fcw, inputs.request  # noqa: B018  (inputs checked in a fixed order)
    return {name: _FUNCTIONS[name](inputs) for name in KPI_NAMES}


# --------------------------------------------------------------------------- the KPIs


@kpi_function("fcw_time")
def fcw_time(k: KpiInputs) -> float | None:
    """First cycle with the warning on."""
    return k.time_of(k.i_fcw)


@kpi_function("brake_time")
def brake_time(k: KpiInputs) -> float | None:
    """First cycle whose request reaches the brake threshold."""
    return k.time_of(k.i_brake)


@kpi_function("ttc_at_fcw")
def ttc_at_fcw(k: KpiInputs) -> float | None:
    return None if k.i_fcw is None else float(k.ttc[k.i_fcw])


@kpi_function("ttc_at_brake")
def ttc_at_brake(k: KpiInputs) -> float | None:
    return None if k.i_brake is None else float(k.ttc[k.i_brake])


@kpi_function("fcw_lead_time")
def fcw_lead_time(k: KpiInputs) -> float | None:
    """How long the warning came before the braking: brake_time - fcw_time."""
    fcw, brake = k.time_of(k.i_fcw), k.time_of(k.i_brake)
    return None if fcw is None or brake is None else brake - fcw


@kpi_function("min_ttc")
def min_ttc(k: KpiInputs) -> float:
    """Smallest recorded TTC over the recording."""
    return float(k.ttc.min()) if k.n else math.inf


@kpi_function("max_decel")
def max_decel(k: KpiInputs) -> float:
    """Largest requested deceleration."""
    return float(k.request.max()) if k.n else 0.0


@kpi_function("activations")
def activations(k: KpiInputs) -> list[dict[str, float]]:
    """Each braking event: start, end, peak requested deceleration, TTC at its start."""
    return [
        {
            "start": float(k.t[i]),
            "end": float(k.t[j]),
            "peak_decel": float(k.request[i : j + 1].max()),
            "ttc_at_start": float(k.ttc[i]),
        }
        for i, j in _runs(k.braking)
    ]


@kpi_function("collision")
def collision(k: KpiInputs) -> bool:
    """Does the projected ego reach the lead?"""
    return bool(k.projection.collision)


@kpi_function("impact_speed")
def impact_speed(k: KpiInputs) -> float:
    """Relative speed at the projected contact (0 when avoided)."""
    return float(k.projection.impact_speed)


@kpi_function("min_distance")
def min_distance(k: KpiInputs) -> float:
    """Smallest projected in-path gap (0 on contact)."""
    return float(k.projection.min_distance)


@kpi_function("recorded_brake_time")
def recorded_brake_onset(k: KpiInputs) -> float | None:
    """Brake onset in the recording itself (the driver's or the vehicle's own AEB)."""
    return recorded_brake_time(k.t, k.signals.get("ego_accel"))


def _at_brake(k: KpiInputs, series: np.ndarray | None) -> float | None:
    """A track id at the first braking cycle (None without braking, id or series)."""
    if k.i_brake is None or series is None:
        return None
    value = float(np.asarray(series, dtype=float).reshape(-1)[k.i_brake])
    return value if math.isfinite(value) else None


@kpi_function("target_id_at_brake")
def target_id_at_brake(k: KpiInputs) -> float | None:
    """The KPI target's track id when braking starts (an object-list target)."""
    return _at_brake(k, k.signals.get("target_id"))


@kpi_function("reacted_to_at_brake")
def reacted_to_at_brake(k: KpiInputs) -> float | None:
    """The track id the function says it braked for (its ``reacted_to`` output)."""
    return _at_brake(k, k.outputs.get("reacted_to"))


@kpi_function("braked_for_out_of_path")
def braked_for_out_of_path(k: KpiInputs) -> bool | None:
    """Did the function brake for an object that was not the in-path KPI target? None
    when it does not output ``reacted_to`` or the target has no track ids."""
    if "reacted_to" not in k.outputs or "target_id" not in k.signals:
        return None
    if k.i_brake is None:
        return False
    reacted = reacted_to_at_brake(k)
    if reacted is None:
        return None
    return bool(reacted != target_id_at_brake(k))

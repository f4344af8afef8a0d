"""KPIs of a replay: the registry (one spec per KPI), their computation, the kinematic
projection of the outcome and the recorded brake onset."""

from __future__ import annotations

from pytest_adsreplay.kpi.compute import KpiInputs, compute_kpis, kpi_function, ttc
from pytest_adsreplay.kpi.onset import recorded_brake_time
from pytest_adsreplay.kpi.projection import KpiSettings, Projection, project
from pytest_adsreplay.kpi.registry import (
    KPI_NAMES,
    KPIS,
    SCALAR_KPIS,
    TARGET_KPIS,
    KpiSpec,
    format_value,
    spec,
)

__all__ = [
    "KPIS",
    "KPI_NAMES",
    "SCALAR_KPIS",
    "TARGET_KPIS",
    "KpiInputs",
    "KpiSettings",
    "KpiSpec",
    "Projection",
    "compute_kpis",
    "format_value",
    "kpi_function",
    "project",
    "recorded_brake_time",
    "spec",
    "ttc",
]

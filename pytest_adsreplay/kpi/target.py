"""The KPI target derived from an object list along the ego's predicted path.

When a recording maps no ``target_*`` channels but carries an object list, the KPI
target of each cycle is the valid object with the smallest ``obj_dx > 0`` whose lateral
offset from the predicted path is within ``± path_half_width``. The path is the arc of
curvature ``kappa = ego_yaw_rate / ego_speed`` through the rear axle, tangent to the
ego's heading (a straight line when the yaw rate is absent or NaN, or below
:data:`MIN_CURVATURE_SPEED`). Objects are placed from the rear axle:
``x = obj_dx + axle_to_front``, ``y = obj_dy``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

#: Below this ego speed (m/s) the path is a straight line: yaw rate / speed is noise.
MIN_CURVATURE_SPEED = 2.0

#: The signals a derived KPI target provides (``target_id``: the chosen track id).
DERIVED_SIGNALS = ("target_distance", "target_rel_speed", "target_valid", "target_lateral")


def path_offset(x: Any, y: Any, kappa: Any) -> np.ndarray:
    """Signed distance (m, positive left) of the point ``(x, y)`` from the circle of
    curvature ``kappa`` through the origin, tangent to the x axis.

    ``(2y - kappa (x² + y²)) / (1 + sqrt((kappa x)² + (1 - kappa y)²))``: exact on tight
    curves (it is ``R - |P - C|`` for the centre ``C = (0, 1/kappa)``, rearranged so no
    difference of large numbers appears) and equal to ``y`` at ``kappa = 0``.
    """
    x, y, k = (np.asarray(v, dtype=np.float64) for v in (x, y, kappa))
    with np.errstate(invalid="ignore"):
        num = 2.0 * y - k * (x * x + y * y)
        den = 1.0 + np.sqrt((k * x) ** 2 + (1.0 - k * y) ** 2)
        out: np.ndarray = num / den
    return out


def path_curvature(ego_speed: np.ndarray, yaw_rate: np.ndarray | None) -> np.ndarray:
    """``yaw_rate / ego_speed`` per cycle (1/m, positive left); 0 where the yaw rate is
    absent or NaN or the ego is slower than :data:`MIN_CURVATURE_SPEED`."""
    v = np.asarray(ego_speed, dtype=np.float64)
    kappa = np.zeros(v.shape)
    if yaw_rate is None:
        return kappa
    w = np.asarray(yaw_rate, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(w) & (v >= MIN_CURVATURE_SPEED)
    kappa[ok] = w[ok] / v[ok]
    return kappa


def derive_target(
    signals: Mapping[str, np.ndarray],
    objects: Mapping[str, np.ndarray],
    *,
    path_half_width: float = 1.0,
    axle_to_front: float = 0.0,
) -> dict[str, np.ndarray]:
    """The KPI target per cycle from the object matrices (cycles x count):
    ``target_distance``, ``target_rel_speed``, ``target_valid``, ``target_lateral`` (the
    path offset) and ``target_id`` (NaN where there is none or ids are not mapped)."""
    dx = objects["obj_dx"]
    n, count = dx.shape
    nan = np.full((n, count), np.nan)
    dy = objects.get("obj_dy")
    y = np.zeros((n, count)) if dy is None else dy
    speed = signals.get("ego_speed", np.full(n, np.nan))
    kappa = path_curvature(speed, signals.get("ego_yaw_rate"))
    offset = path_offset(dx + axle_to_front, y, kappa[:, None])
    valid = objects.get("obj_valid")
    with np.errstate(invalid="ignore"):
        ok = (dx > 0) & (np.abs(offset) <= path_half_width)
        if valid is not None:
            ok &= valid == 1
    gap = np.where(ok, dx, np.inf)
    slot = np.argmin(gap, axis=1)
    rows = np.arange(n)
    has = np.isfinite(gap[rows, slot])

    def pick(mat: np.ndarray | None) -> np.ndarray:
        src = nan if mat is None else mat
        return np.where(has, src[rows, slot], np.nan)

    return {
        "target_distance": pick(dx),
        "target_rel_speed": pick(objects.get("obj_vx")),
        "target_valid": has.astype(np.float64),
        "target_lateral": pick(offset),
        "target_id": pick(objects.get("obj_id")),
    }


def kpi_signals(
    signals: Mapping[str, np.ndarray], *, path_half_width: float, axle_to_front: float
) -> Mapping[str, np.ndarray]:
    """``signals`` with the KPI target derived from the object list when no target
    channel is mapped (no ``target_distance``) but the signals carry an object list;
    otherwise ``signals`` unchanged (mapped target channels win)."""
    if "target_distance" in signals or "obj_dx[0]" not in signals:
        return signals
    from pytest_adsreplay.signals.objects import object_matrices

    objects = object_matrices(signals)
    derived = derive_target(
        signals, objects, path_half_width=path_half_width, axle_to_front=axle_to_front
    )
    return {**signals, **derived}

"""Target signals before resampling: invalid samples masked, samples split by object.

A radar reports "no object" with a validity flag and placeholder values (often zeros),
and the object behind one slot changes when another car becomes the nearest. Resampling
must neither pull a placeholder into the grid nor blend two objects into a phantom one
in between, so before resampling:

- every target sample whose ``target_valid`` (the flag's last sample at or before it)
  is 0 becomes NaN;
- consecutive samples belong to one object unless the track id (``target_id``, when
  mapped) changes or one signal jumps further than an object can move in that interval
  (:data:`MAX_CHANGE`). :func:`pytest_adsreplay.signals.resample.resample_objects`
  interpolates only inside one object's run and holds the earlier sample otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pytest_adsreplay.signals.resample import TIME_TOL

#: Largest plausible change of a target signal between two samples of one object:
#: ``(rate per second, allowance for sensor noise)``. The distance covers closing on
#: oncoming traffic at 2 x 180 km/h, the relative speed 10 g, the lateral offset a car
#: crossing a lane in 0.35 s. A larger jump means the sensor now reports another object.
MAX_CHANGE: dict[str, tuple[float, float]] = {
    "target_distance": (100.0, 1.0),
    "target_rel_speed": (100.0, 2.0),
    "target_lateral": (10.0, 0.5),
}

Series = tuple[np.ndarray, np.ndarray]


def hold_at(source: Series, ts: np.ndarray) -> np.ndarray:
    """The values of a held (step) signal at times ``ts``: its last sample at or before
    each time (NaN before its first sample)."""
    src_ts, src_vs = source
    out = np.full(ts.shape, np.nan)
    if src_ts.size == 0:
        return out
    idx = np.searchsorted(src_ts, ts + TIME_TOL, side="right") - 1
    ok = idx >= 0
    out[ok] = src_vs[idx[ok]]
    return out


def mask_invalid(values: np.ndarray, ts: np.ndarray, valid: Series | None) -> np.ndarray:
    """``values`` with NaN where the validity flag says 0 at the sample's time (a copy)."""
    out = np.array(values, dtype=np.float64)
    if valid is None:
        return out
    out[hold_at(valid, ts) == 0] = np.nan
    return out


def jumps(name: str, ts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each interval ``i`` (samples i, i+1): does ``name`` change by more than one
    object can (:data:`MAX_CHANGE`)? False where either sample is NaN."""
    if values.size < 2 or name not in MAX_CHANGE:
        return np.zeros(max(values.size - 1, 0), dtype=bool)
    rate, slack = MAX_CHANGE[name]
    with np.errstate(invalid="ignore"):
        change = np.abs(np.diff(values))
        jump: np.ndarray = change > rate * np.diff(ts) + slack
    return jump


def object_segments(ts: np.ndarray, breaks: np.ndarray, track: Series | None) -> np.ndarray:
    """A run number per sample: it increases at every break and at every change of the
    track id (where both ids are known)."""
    cut = np.array(breaks, dtype=bool)
    if track is not None and ts.size >= 2:
        ids = hold_at(track, ts)
        with np.errstate(invalid="ignore"):
            cut |= np.isfinite(ids[:-1]) & np.isfinite(ids[1:]) & (ids[:-1] != ids[1:])
    segments: np.ndarray = np.r_[0, np.cumsum(cut)].astype(np.float64)
    return segments


def prepare_targets(
    series: Mapping[str, Series], valid: Series | None, track: Series | None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{name: (masked values, run numbers)}`` for target signals ``{name: (ts, values)}``.

    Signals that share one time axis (one radar message) share their breaks: when one of
    them jumps, all of them change object there.
    """
    masked = {n: mask_invalid(vs, ts, valid) for n, (ts, vs) in series.items()}
    axes: list[tuple[np.ndarray, list[str]]] = []
    for name, (ts, _) in series.items():
        for axis, names in axes:
            if axis is ts or (axis.shape == ts.shape and np.array_equal(axis, ts)):
                names.append(name)
                break
        else:
            axes.append((ts, [name]))
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for ts, names in axes:
        breaks = np.zeros(max(ts.size - 1, 0), dtype=bool)
        for name in names:
            breaks |= jumps(name, ts, masked[name])
        segments = object_segments(ts, breaks, track)
        for name in names:
            out[name] = (masked[name], segments)
    return out

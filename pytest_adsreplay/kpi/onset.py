"""Brake onset in the recording by the Euro NCAP C2C method (``recorded_brake_time``).

Pure numpy; scipy.signal is imported only when the acceleration may reach the detection level.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["recorded_brake_time"]

# Euro NCAP C2C brake-onset detection on measured acceleration.
_ONSET_CUTOFF_HZ = 10.0
_ONSET_ORDER = 6  # run forward and backward: a 12-pole phaseless Butterworth
_ONSET_DETECT = -1.0
_ONSET_TRACE = -0.3
_MAX_ACCEL_GAP = 0.1  # s; longer NaN gaps in ego_accel split the signal instead of bridging

# --------------------------------------------------------------------------- brake onset


def _finite_runs(t: np.ndarray, x: np.ndarray) -> list[tuple[int, int]]:
    """Bridge NaN gaps up to _MAX_ACCEL_GAP in place; return the finite runs [i, j)."""
    ok = np.isfinite(x)
    runs: list[tuple[int, int]] = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(np.int8), [0]])))
    for i, j in zip(edges[::2], edges[1::2], strict=True):
        if runs and t[i] - t[runs[-1][1] - 1] <= _MAX_ACCEL_GAP:
            k = runs[-1][0]
            seg = slice(runs[-1][1], i)
            x[seg] = np.interp(t[seg], [t[runs[-1][1] - 1], t[i]], [x[runs[-1][1] - 1], x[i]])
            runs[-1] = (k, int(j))
        else:
            runs.append((int(i), int(j)))
    return runs


def _onset_padlen() -> int:
    """sosfiltfilt's pad length for the onset filter: 3 * (2 * sections + 1)."""
    return 3 * (2 * ((_ONSET_ORDER + 1) // 2) + 1)


@functools.cache
def _onset_filter_gain(fs: float) -> float:
    """Upper bound of the L1 norm of the onset filter's impulse response at ``fs``.

    The filter is the digital Butterworth low-pass ``butter(_ONSET_ORDER,
    _ONSET_CUTOFF_HZ, fs=fs)`` (bilinear transform, prewarped, unit gain at DC),
    rebuilt here from its poles with numpy alone; its impulse response is summed until
    the decay of the slowest pole makes the rest negligible, and 1 % is added.
    """
    n = _ONSET_ORDER
    warped = 2.0 * fs * math.tan(math.pi * _ONSET_CUTOFF_HZ / fs)
    analog = -np.exp(1j * np.pi * np.arange(-n + 1, n, 2) / (2 * n)) * warped
    poles = (2.0 * fs + analog) / (2.0 * fs - analog)
    a = np.real(np.poly(poles))
    b = np.real(np.poly(-np.ones(n)))
    b *= a.sum() / b.sum()  # unit DC gain
    radius = float(np.abs(poles).max())
    length = int(math.log(1e-18) / math.log(radius)) + 10 * n if radius > 0 else 10 * n
    h = np.zeros(length)
    for k in range(length):
        acc = b[k] if k <= n else 0.0
        for m in range(1, min(k, n) + 1):
            acc -= a[m] * h[k - m]
        h[k] = acc
    return float(np.abs(h).sum()) * 1.01


def _may_reach(x: np.ndarray, runs: list[tuple[int, int]], fs: float, level: float) -> bool:
    """False when the zero-phase onset filter provably stays above ``level`` on every run.

    ``sosfiltfilt`` filters the run with odd extensions of ``_onset_padlen()`` samples at
    both ends, starting each pass in the steady state of its first input. Each pass maps
    a signal within ``c ± r`` (unit DC gain, impulse response of L1 norm ``L``) into
    ``c ± L·r``, so the result lies within ``c ± L²·r`` of the extended run's range.
    """
    gain = _onset_filter_gain(fs) ** 2
    for i, j in runs:
        seg = x[i:j]
        if seg.size < 2:
            continue
        pad = min(_onset_padlen(), seg.size - 1)
        lo, hi = float(seg.min()), float(seg.max())
        for edge, inner in ((seg[0], seg[1 : pad + 1]), (seg[-1], seg[-pad - 1 : -1])):
            ext = 2.0 * edge - inner
            lo, hi = min(lo, float(ext.min())), max(hi, float(ext.max()))
        centre, radius = (hi + lo) / 2.0, (hi - lo) / 2.0
        if centre - gain * radius <= level + 1e-6 * (1.0 + abs(centre) + radius):
            return True
    return False


def recorded_brake_time(t: np.ndarray, ego_accel: np.ndarray | None) -> float | None:
    """Brake onset in the recording by the Euro NCAP C2C method, or None.

    `ego_accel` is low-passed by a 12-pole phaseless Butterworth at 10 Hz (6th order, run
    forward and backward); the first downward crossing of -1 m/s² is traced back to the last
    crossing of -0.3 m/s² before it, linearly interpolated between samples. None when there is
    no acceleration signal, it never reaches -1 m/s², or the sample rate is at most 20 Hz.
    NaN gaps up to 0.1 s are bridged linearly; longer ones split the signal into parts.
    """
    if ego_accel is None:
        return None
    t = np.asarray(t, dtype=float).reshape(-1)
    x = np.asarray(ego_accel, dtype=float).reshape(-1).copy()
    if t.size < 2 or x.shape != t.shape:
        return None
    fs = 1.0 / float(t[1] - t[0])
    if not fs > 2.0 * _ONSET_CUTOFF_HZ:
        return None
    runs = _finite_runs(t, x)
    if not _may_reach(x, runs, fs, _ONSET_DETECT):
        return None  # what the filter below would find, without importing scipy.signal
    from scipy.signal import butter, sosfiltfilt

    sos = butter(_ONSET_ORDER, _ONSET_CUTOFF_HZ, btype="low", fs=fs, output="sos")
    for i, j in runs:
        seg_t, seg = t[i:j], x[i:j]
        if seg.size < 2:
            continue
        pad = min(_onset_padlen(), seg.size - 1)
        filt = sosfiltfilt(sos, seg, padlen=pad)
        below = filt <= _ONSET_DETECT
        for k in np.flatnonzero(below[1:] & ~below[:-1]) + 1:
            above = np.flatnonzero(filt[:k] > _ONSET_TRACE)
            if not above.size:
                continue
            m = int(above[-1])
            frac = (filt[m] - _ONSET_TRACE) / (filt[m] - filt[m + 1])
            return float(seg_t[m] + frac * (seg_t[m + 1] - seg_t[m]))
    return None

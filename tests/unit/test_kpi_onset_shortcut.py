"""recorded_brake_time skips scipy when the onset filter provably cannot reach -1 m/s².

The shortcut must never change a result: whenever it says "cannot reach", the filter
(run here with scipy) stays above the level.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, sosfilt, sosfiltfilt

from pytest_adsreplay.kpi import onset as kpi


@pytest.mark.parametrize("fs", [21.0, 25.0, 50.0, 100.0, 200.0, 1000.0])
def test_the_gain_bounds_the_filters_impulse_response(fs: float) -> None:
    sos = butter(6, 10.0, btype="low", fs=fs, output="sos")
    impulse = np.zeros(50_000)
    impulse[0] = 1.0
    l1 = float(np.abs(sosfilt(sos, impulse)).sum())
    assert l1 <= kpi._onset_filter_gain(fs) <= 1.02 * l1


def test_the_shortcut_never_hides_a_crossing() -> None:
    rng = np.random.default_rng(7)
    skipped = 0
    for _ in range(1500):
        fs = float(rng.choice([25.0, 50.0, 100.0, 200.0]))
        x = rng.normal(rng.uniform(-0.5, 0.5), rng.uniform(0.01, 0.6), int(rng.integers(2, 300)))
        if rng.random() < 0.3:
            x = np.cumsum(x) * 0.05
        if rng.random() < 0.2:
            x[rng.integers(0, x.size)] = rng.uniform(-2.0, 1.0)
        if kpi._may_reach(x, [(0, x.size)], fs, -1.0):
            continue
        skipped += 1
        sos = butter(6, 10.0, btype="low", fs=fs, output="sos")
        assert sosfiltfilt(sos, x, padlen=min(21, x.size - 1)).min() > -1.0
    assert skipped > 100  # the shortcut is taken for calm signals


def test_recorded_brake_time_is_unchanged_for_calm_and_braking_drives() -> None:
    t = np.arange(0.0, 20.0, 0.01)
    calm = 0.3 * np.sin(t)
    assert not kpi._may_reach(calm, [(0, t.size)], 100.0, -1.0)
    assert kpi.recorded_brake_time(t, calm) is None
    braking = np.where(t < 10.0, 0.0, -6.0)
    assert kpi._may_reach(braking, [(0, t.size)], 100.0, -1.0)
    assert kpi.recorded_brake_time(t, braking) == pytest.approx(9.97, abs=0.05)

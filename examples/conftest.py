"""Regulatory numbers the scenario tests share (UN R152, M1 vehicles)."""

from __future__ import annotations

import numpy as np

#: UN R152 M1: maximum relative impact speed (km/h) by test speed (km/h), stationary target.
R152_IMPACT_KPH = {20: 0.0, 40: 0.0, 42: 10.0, 45: 15.0, 50: 25.0, 55: 30.0, 60: 35.0}


def r152_max_impact_kph(speed_kph: float) -> float:
    """R152's limit at ``speed_kph`` (linear between table points; 0 up to 40 km/h)."""
    speeds = sorted(R152_IMPACT_KPH)
    return float(np.interp(speed_kph, speeds, [R152_IMPACT_KPH[s] for s in speeds]))

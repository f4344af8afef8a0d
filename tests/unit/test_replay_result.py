"""ReplayResult.deferred: the plugin's results load their arrays on first use."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pytest_adsreplay.replay import ReplayResult


def test_arrays_load_once_on_first_use_and_kpis_need_no_load() -> None:
    calls: list[int] = []

    def load() -> tuple[dict[str, Any], dict[str, Any]]:
        calls.append(1)
        t = np.arange(3) * 0.01
        return {"t": t, "ego_speed": np.ones(3)}, {"aeb_decel": np.zeros(3)}

    r = ReplayResult.deferred(load, recording="a.mf4", kpis={"brake_time": 1.5}, cycle_time=0.01)
    assert r.brake_time == 1.5 and "brake_time=1.5" in repr(r) and calls == []
    assert list(r.outputs) == ["aeb_decel"] and calls == [1]
    assert r.t is r.signals["t"] and r.t[2] == pytest.approx(0.02) and calls == [1]
    with pytest.raises(AttributeError, match="no attribute 'elsewhere'"):
        r.elsewhere  # noqa: B018

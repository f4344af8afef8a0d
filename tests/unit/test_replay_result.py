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


def test_a_failed_load_keeps_the_loader_and_never_looks_like_a_missing_attribute() -> None:
    import pickle

    attempts: list[int] = []

    def flaky() -> tuple[dict[str, Any], dict[str, Any]]:
        attempts.append(1)
        if len(attempts) == 1:
            raise AttributeError("'NoneType' object has no attribute 'hgetall'")
        return {"t": np.zeros(2)}, {"aeb_decel": np.zeros(2)}

    r = ReplayResult.deferred(flaky, recording="a.mf4", kpis={}, cycle_time=0.01)
    with pytest.raises(RuntimeError, match=r"loading the arrays of a\.mf4 failed"):
        r.signals  # noqa: B018
    copy = pickle.loads(pickle.dumps(r))  # the second attempt loads; the pickle has arrays
    assert len(copy.t) == 2 and len(r.outputs["aeb_decel"]) == 2 and len(attempts) == 2

"""Integer and Boolean FMU inputs cannot hold NaN: where the bound signal has no value
the input is 0/false and its ``NAME_valid`` input, when the FMU has one, is 0."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from native_build import build_fmu, build_library

from pytest_adsreplay.function.protocol import FunctionOptions

SOURCE = Path(__file__).resolve().parents[1] / "native" / "valid_inputs.c"
TYPES = {"driver_brake": "Integer", "driver_brake_valid": "Boolean"}


@pytest.fixture(scope="module", params=[2, 3], ids=["fmi2", "fmi3"])
def fmu(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp(f"valid{request.param}")
    lib = build_library(root / "libvalid.so", [SOURCE])
    return build_fmu(
        root / "valid.fmu", [SOURCE], lib, version=request.param, model="valid", types=TYPES
    )


def signals() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    t = np.arange(0.0, 1.0, 0.01)
    brake = np.where(t < 0.5, np.nan, 3.0)  # no value for the first half
    return t, {"ego_speed": np.full(t.size, 10.0), "driver_brake": brake}


def test_missing_integer_is_zero_and_its_valid_input_says_so(fmu: Path) -> None:
    """``driver_brake_valid`` is bound by nobody: the adapter sets it from whether
    ``driver_brake`` has a value."""
    from pytest_adsreplay.function.fmu import FmuAdapter

    t, sig = signals()
    adapter = FmuAdapter(str(fmu))
    try:
        out = adapter.run(t, sig)
    finally:
        adapter.close()
    early = t < 0.5
    np.testing.assert_array_equal(out["seen_brake"], np.where(early, 0.0, 3.0))
    np.testing.assert_array_equal(out["seen_valid"], np.where(early, 0.0, 1.0))


def test_valid_input_bound_to_a_signal_is_zero_where_the_value_is_missing(fmu: Path) -> None:
    from pytest_adsreplay.function.fmu import FmuAdapter

    t, sig = signals()
    sig["target_valid"] = np.where(t < 0.8, 1.0, 0.0)
    binding = {"inputs": {"driver_brake_valid": "target_valid"}}
    adapter = FmuAdapter(str(fmu), {}, FunctionOptions(binding=binding))
    try:
        out = adapter.run(t, sig)
    finally:
        adapter.close()
    expected = np.where(t < 0.5, 0.0, np.where(t < 0.8, 1.0, 0.0))
    np.testing.assert_array_equal(out["seen_valid"], expected)

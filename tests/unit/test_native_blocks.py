"""C functions step their inputs a block of cycles at a time (``InputBlocks``): the same
outputs for every block size, batch and per step, with and without a watching host;
errors at the right cycle in a later block; the input memory bounded by the block, not
the recording."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from native_build import Builds, build_all
from reference_scenarios import SLOTS, cut_out, random_list

from pytest_adsreplay.errors import FunctionError
from pytest_adsreplay.function.binding import InputBlocks, input_matrix
from pytest_adsreplay.function.native import NativeAdapter
from pytest_adsreplay.function.protocol import FunctionOptions

OUTPUTS = ("fcw", "aeb_decel", "ttc", "state", "reacted_to")


@pytest.fixture(scope="session")
def native_builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    return build_all(tmp_path_factory)


def run(
    adapter: NativeAdapter,
    t: np.ndarray,
    sig: dict[str, np.ndarray],
    block: int,
    hosted: bool = False,
) -> dict[str, np.ndarray]:
    adapter.input_block = block
    adapter.progress = np.zeros(1) if hosted else None
    return adapter.run(t, sig)


def long_random_list() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Four random lists one after the other (1200 cycles, several brakings)."""
    parts = [random_list(seed, n=300) for seed in range(4)]
    sig = {k: np.concatenate([p[1][k] for p in parts]) for k in parts[0][1]}
    return np.arange(1200) * 0.01, sig


@pytest.mark.parametrize("scenario", ["cut_out", "random"])
@pytest.mark.parametrize("kind", ["batch", "steps", "batch_hosted"])
def test_every_block_size_gives_the_same_outputs(
    native_builds: Builds, scenario: str, kind: str
) -> None:
    t, sig = cut_out() if scenario == "cut_out" else long_random_list()
    lib = native_builds.reference_steps if kind == "steps" else native_builds.reference
    adapter = NativeAdapter(str(lib))
    hosted = kind == "batch_hosted"
    whole = run(adapter, t, sig, len(t), hosted)
    if scenario == "cut_out":
        assert np.nanmax(whole["aeb_decel"]) > 0  # it brakes
    assert len(np.unique(whole["reacted_to"][np.isfinite(whole["reacted_to"])])) > 1
    for block in (1, 7, 255, 256, 300, len(t) - 1):
        got = run(adapter, t, sig, block, hosted)
        for name in OUTPUTS:
            np.testing.assert_array_equal(got[name], whole[name], err_msg=f"{block}: {name}")
    adapter.close()


def test_an_error_in_a_later_block_names_its_cycle(native_builds: Builds) -> None:
    binding = {"inputs": {"VehSpd_mps": "ego_speed"}, "outputs": {"AebDecelReq": "aeb_decel"}}
    fn = NativeAdapter(
        str(native_builds.custom), {"fail_at": 1.5}, FunctionOptions(binding=binding)
    )
    fn.input_block = 64  # cycle 150 is the 23rd of the third block
    t = np.arange(300) * 0.01
    sig = {"ego_speed": np.full(300, 15.0)}
    with pytest.raises(FunctionError, match=r"at t = 1\.500 s \(cycle 150\)"):
        fn.run(t, sig, recording="a.mf4")


def test_blocks_are_the_rows_of_the_whole_table(native_builds: Builds) -> None:
    t, sig = cut_out()
    binding = NativeAdapter(str(native_builds.reference)).binding
    whole = input_matrix(t, sig, binding)
    assert whole.shape == (len(t), len(binding.columns())) and whole.flags.c_contiguous
    assert np.isnan(whole[:, binding.columns().index("target_distance")]).all()  # absent
    blocks = InputBlocks(t, sig, binding, block=64)
    assert list(blocks.starts()) == list(range(0, len(t), 64))
    for start in blocks.starts():
        rows = blocks.rows(start, min(len(t), start + 64))
        assert rows.flags.c_contiguous
        np.testing.assert_array_equal(rows, whole[start : start + 64])
    with pytest.raises(ValueError, match="exceed the block"):
        blocks.rows(0, 65)
    with pytest.raises(ValueError, match="has shape"):
        InputBlocks(t, {"ego_speed": np.zeros(3)}, binding)


def test_input_memory_is_bounded_by_the_block(native_builds: Builds) -> None:
    """10 minutes at 100 Hz with a 32-slot list: the whole input table would be
    60 000 x 166 x 8 bytes = 80 MB; a 4096-cycle block is 5.4 MB."""
    n = 60_000
    rng = np.random.default_rng(0)
    t = np.arange(n) * 0.01
    sig: dict[str, np.ndarray] = {"ego_speed": np.full(n, 20.0), "ego_yaw_rate": np.zeros(n)}
    for j in range(SLOTS):
        sig[f"obj_dx[{j}]"] = rng.uniform(5.0, 100.0, n)
        sig[f"obj_dy[{j}]"] = rng.uniform(-5.0, 5.0, n)
        sig[f"obj_vx[{j}]"] = np.full(n, -1.0)
        sig[f"obj_valid[{j}]"] = np.ones(n)
        sig[f"obj_id[{j}]"] = np.full(n, float(j))
    adapter = NativeAdapter(str(native_builds.reference))
    columns = len(adapter.binding.columns())
    assert columns == 166
    tracemalloc.start()
    try:
        out = adapter.run(t, sig)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.isfinite(out["reacted_to"]).any()
    whole = n * columns * 8
    # the block (5.4 MB), the outputs (n x 5 values, then one array each: 4.8 MB) and
    # their checks; far below the whole table
    assert peak < whole / 5, (peak, whole)

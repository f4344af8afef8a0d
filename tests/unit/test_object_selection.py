"""``ObjectList.nearest_in_path``: the choice a replay works out for a chunk of cycles at
once equals a plain cycle-by-cycle oracle (nearest valid object ahead within the half
width of the path, the lower slot at equal distances) on random lists, ties, NaN and
infinite fields, an unmapped ``obj_dy``, other parameters and another curvature."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from reference_scenarios import SLOTS, random_list

from pytest_adsreplay.signals.objects import ObjectList, split_objects


def frames(sig: dict[str, np.ndarray], a: int = 0, b: int | None = None) -> list[ObjectList]:
    """The ObjectLists of cycles ``a`` … ``b - 1`` as a replay makes them (one chunk)."""
    _, objects = split_objects(sig)
    assert objects is not None
    n = sig["obj_dx[0]"].shape[0]
    return objects[a : n if b is None else b].tolist()


def curvature(sig: dict[str, np.ndarray], k: int) -> float:
    """The reference function's kappa at cycle ``k``."""
    speed = float(sig["ego_speed"][k])
    yaw = float(sig.get("ego_yaw_rate", np.full(k + 1, math.nan))[k])
    return yaw / speed if math.isfinite(yaw) and speed >= 2.0 else 0.0


def oracle(
    sig: dict[str, np.ndarray], k: int, kappa: float, half_width: float, front: float
) -> tuple[int, float, float, float, float] | None:
    """Every slot in Python floats; sorted by (distance, slot); the first in the path."""
    count = sum(1 for name in sig if name.startswith("obj_dx["))

    def get(field: str, j: int) -> float:
        column = sig.get(f"{field}[{j}]")
        return math.nan if column is None else float(column[k])

    ahead = sorted(
        (get("obj_dx", j), j)
        for j in range(count)
        if get("obj_dx", j) > 0.0 and get("obj_valid", j) != 0.0
    )
    for d, j in ahead:
        x = d + front
        y = get("obj_dy", j)
        y = 0.0 if math.isnan(y) else y
        offset = (2.0 * y - kappa * (x * x + y * y)) / (
            1.0 + math.sqrt((kappa * x) ** 2 + (1.0 - kappa * y) ** 2)
        )
        if abs(offset) <= half_width:
            return j, d, get("obj_vx", j), offset, get("obj_id", j)
    return None


def same(got: Any, want: Any) -> bool:
    if got is None or want is None:
        return got is want
    return bool(np.array_equal(np.array(got), np.array(want), equal_nan=True))


def check_every_cycle(
    sig: dict[str, np.ndarray], half_width: float = 1.0, front: float = 0.0
) -> int:
    """Assert the chunk's choice is the oracle's at every cycle; the cycles with a choice."""
    chosen = 0
    for k, objects in enumerate(frames(sig)):
        kappa = curvature(sig, k)
        got = objects.nearest_in_path(kappa, half_width, front)
        want = oracle(sig, k, kappa, half_width, front)
        assert same(got, want), (k, got, want)
        chosen += got is not None
    return chosen


@pytest.mark.parametrize("seed", range(6))
def test_chunk_choice_equals_the_oracle_on_random_lists(seed: int) -> None:
    _, sig = random_list(seed, n=300)
    assert check_every_cycle(sig) > 0


@pytest.mark.parametrize(("half_width", "front"), [(0.5, 0.0), (1.8, 3.7), (1.0, 3.7)])
def test_other_half_width_and_axle_to_front(half_width: float, front: float) -> None:
    _, sig = random_list(11, n=200)
    check_every_cycle(sig, half_width, front)


def test_parameters_changing_between_calls_work_the_chunk_out_again() -> None:
    _, sig = random_list(3, n=120)
    lists = frames(sig)
    for k, objects in enumerate(lists):
        kappa = curvature(sig, k)
        for half_width, front in ((1.0, 0.0), (2.5, 1.0)):
            got = objects.nearest_in_path(kappa, half_width, front)
            assert same(got, oracle(sig, k, kappa, half_width, front)), k


def test_another_curvature_than_the_replays_is_worked_out_for_the_cycle() -> None:
    _, sig = random_list(5, n=150)
    differ = 0
    for k, objects in enumerate(frames(sig)):
        kappa = curvature(sig, k) + 0.02
        got = objects.nearest_in_path(kappa, 1.0)
        assert same(got, oracle(sig, k, kappa, 1.0, 0.0)), k
        differ += not same(got, oracle(sig, k, curvature(sig, k), 1.0, 0.0))
    assert differ > 0  # the curvature matters on these lists


def edge_list(n: int = 8) -> dict[str, np.ndarray]:
    """Ties at equal distance, NaN and 0 obj_valid, an infinite and a negative obj_dx,
    NaN obj_dy (0: on the line), on a straight path."""
    sig: dict[str, np.ndarray] = {"ego_speed": np.full(n, 10.0), "ego_yaw_rate": np.zeros(n)}
    dx = [np.inf, 20.0, 20.0, 20.0, -3.0, 20.0, 30.0] + [math.nan] * (SLOTS - 7)
    dy = [0.0, 5.0, 0.5, -0.5, 0.0, 0.0, math.nan] + [math.nan] * (SLOTS - 7)
    valid = [1.0, 1.0, 0.0, math.nan, 1.0, 1.0, 1.0] + [0.0] * (SLOTS - 7)
    for j in range(SLOTS):
        sig[f"obj_dx[{j}]"] = np.full(n, dx[j])
        sig[f"obj_dy[{j}]"] = np.full(n, dy[j])
        sig[f"obj_valid[{j}]"] = np.full(n, valid[j])
        sig[f"obj_vx[{j}]"] = np.full(n, -float(j))
        sig[f"obj_id[{j}]"] = np.full(n, 100.0 + j)
    # cycle 3 on: the NaN-valid tie (slot 3) moves out of the path; slot 5 wins the tie
    sig["obj_dy[3]"][3:] = 1.5
    # cycle 5 on: only the far object with an unknown lateral offset is left
    for j in (3, 5):
        sig[f"obj_valid[{j}]"][5:] = 0.0
    return sig


def test_edge_cases_ties_nan_and_infinite_fields() -> None:
    sig = edge_list()
    check_every_cycle(sig)
    lists = frames(sig)
    slots = [None if (c := o.nearest_in_path(0.0, 1.0)) is None else c[0] for o in lists]
    # slot 3: NaN obj_valid counts, the lower of the 20 m ties in the path (slot 2: not
    # valid); then slot 5; then slot 6 (NaN obj_dy: on the line); never the inf or -3 m
    assert slots == [3, 3, 3, 5, 5, 6, 6, 6]
    assert lists[0].nearest_in_path(0.0, 1.0) == (3, 20.0, -3.0, -0.5, 103.0)


def test_without_obj_dy_mapped_and_without_ego_speed() -> None:
    sig = edge_list()
    for j in range(SLOTS):
        del sig[f"obj_dy[{j}]"]
    del sig["ego_speed"], sig["ego_yaw_rate"]
    sig["ego_speed"] = np.full(8, math.nan)  # the frame's NaN: a straight path
    check_every_cycle(sig)
    del sig["ego_speed"]
    lists = frames(sig)
    assert [o.nearest_in_path(0.0, 1.0) for o in lists] == [
        o.nearest_in_path(0.0, 1.0) for o in frames(edge_list_without_dy())
    ]


def edge_list_without_dy() -> dict[str, np.ndarray]:
    sig = edge_list()
    for j in range(SLOTS):
        sig[f"obj_dy[{j}]"][:] = math.nan
    return sig


def test_a_list_outside_a_chunk_gives_the_same_choice() -> None:
    _, sig = random_list(2, n=60)
    _, objects = split_objects(sig)
    assert objects is not None
    for k, chunked in enumerate(frames(sig)):
        alone = ObjectList(objects.rows, k)  # no chunk: worked out for this cycle
        kappa = curvature(sig, k)
        assert same(alone.nearest_in_path(kappa, 1.0), chunked.nearest_in_path(kappa, 1.0))


def test_a_chunk_in_the_middle_of_the_recording() -> None:
    _, sig = random_list(4, n=200)
    for k, objects in enumerate(frames(sig, 70, 150), start=70):
        kappa = curvature(sig, k)
        assert same(objects.nearest_in_path(kappa, 1.0), oracle(sig, k, kappa, 1.0, 0.0)), k


def any_valid_oracle(sig: dict[str, np.ndarray], k: int) -> bool:
    count = sum(1 for name in sig if name.startswith("obj_dx["))
    valid = [sig.get(f"obj_valid[{j}]", np.full(k + 1, math.nan))[k] for j in range(count)]
    return any(v != 0.0 and not math.isnan(sig[f"obj_dx[{j}]"][k]) for j, v in enumerate(valid))


@pytest.mark.parametrize("unmapped_valid", [False, True])
def test_any_valid_in_a_chunk_and_alone(unmapped_valid: bool) -> None:
    _, sig = random_list(7, n=200)
    # some cycles with a valid flag but no distance, some with a distance but not valid
    sig["obj_valid[0]"][:50] = 1.0
    sig["obj_dx[0]"][:50] = math.nan
    sig["obj_valid[1]"][50:100] = 0.0
    sig["obj_dx[1]"][50:100] = 10.0
    for j in range(SLOTS):  # cycles 150 … 169: an empty list
        sig[f"obj_dx[{j}]"][150:170] = math.nan
    sig["obj_valid[0]"][160:170] = 1.0
    if unmapped_valid:  # NaN: valid wherever obj_dx is a number
        for j in range(SLOTS):
            del sig[f"obj_valid[{j}]"]
    _, objects = split_objects(sig)
    assert objects is not None
    got = [o.any_valid() for o in frames(sig)]
    alone = [ObjectList(objects.rows, k).any_valid() for k in range(200)]
    want = [any_valid_oracle(sig, k) for k in range(200)]
    assert got == want == alone
    assert True in want and False in want

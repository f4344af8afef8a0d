"""Per-frame cost of the function under test in its three forms, on the same workload.

    python benchmarks/bench_functions.py            # 360 000 frames (1 h at 100 Hz)
    python benchmarks/bench_functions.py --frames 60000 --repeat 3

Builds the reference function from ``pytest_adsreplay/native/ttc_aeb.c`` with the
machine's C compiler (as the tests do) into a shared library with and without the batch
entry point and into FMI 2.0 / 3.0 co-simulation FMUs, then steps one synthetic workload
(a repeated approach that goes through warning, partial and full braking) through:

* Python: the reference class through the plugin's Python stepping loop;
* C per-step: the ctypes adapter calling ``adsreplay_step`` once per frame;
* C batch: the adapter with ``adsreplay_step_batch`` (one call per block of 4096 input
  rows), and the batch call alone — the library's own work per frame — on the whole
  table in memory (rows of 166 values: the 6 scalars and 5 fields x 32 object slots,
  478 MB at 360 000 frames) and on one 4096-row block in cache (what the adapter hands
  over); the same for a build without the object list (``-DTTC_AEB_SLOTS=0``: rows of
  6 values), whose difference is the cost of the list interface;
* C batch on a 32-slot object list (random objects, about 26 valid ahead per cycle):
  the selection's own cost;
* FMU: the fmpy-based adapter (set inputs, ``doStep``, get outputs per frame).

Each figure is the best of ``--repeat`` interleaved runs (the median is printed too).
Targets: the C per-step path costs <= 2 us per frame above the library's own work, the
batch entry point runs >= 20 million frames/s, the FMU path <= 10 us per frame.
Nothing here is a test: the numbers depend on the machine and what else runs on it.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(1, str(ROOT))

import native_build  # noqa: E402

from pytest_adsreplay import replay  # noqa: E402
from pytest_adsreplay.function.fmu import FmuAdapter  # noqa: E402
from pytest_adsreplay.function.native import NativeAdapter  # noqa: E402
from pytest_adsreplay.function.protocol import FunctionAdapter  # noqa: E402
from pytest_adsreplay.function.reference import TtcAeb  # noqa: E402


def workload(frames: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Ego at 15 m/s closing on a target from 60 m to 5 m, again and again."""
    t = np.arange(frames) * 0.01
    speed = np.full(frames, 15.0)
    return t, {
        "ego_speed": speed,
        "target_distance": 60.0 - np.mod(15.0 * t, 55.0),
        "target_rel_speed": -speed,
        "target_valid": np.ones(frames),
        "target_lateral": np.zeros(frames),
    }


def interleaved(
    runs: dict[str, Callable[[], object]], repeat: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per run of each: (best, median) over ``repeat`` rounds of every run in turn."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    best = {name: min(v) for name, v in times.items()}
    median = {name: float(np.median(v)) for name, v in times.items()}
    return best, median


def kernel(
    adapter: NativeAdapter, t: np.ndarray, sig: dict[str, np.ndarray], block: int | None = None
) -> Callable[[], object]:
    """The batch entry point alone on prepared arrays: the library's own work. With
    ``block``, the frames are ``len(t) / block`` calls on the same ``block`` rows (they
    stay in cache, as the adapter's block does right after it was filled)."""
    from pytest_adsreplay.function.binding import input_matrix

    rows = len(t) if block is None else min(block, len(t))
    table = input_matrix(t[:rows], {k: v[:rows] for k, v in sig.items()}, adapter.binding)
    out = np.zeros((rows, len(adapter.output_names)))
    lib, handle = adapter._lib, adapter._handle
    done = ctypes.c_size_t()
    calls = len(t) // rows

    def call() -> object:
        lib.adsreplay_reset(handle)
        for _ in range(calls):
            lib.adsreplay_step_batch(
                handle, rows, t.ctypes.data, table.ctypes.data, out.ctypes.data, done
            )
        return None

    return call


def object_workload(frames: int, slots: int = 32) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The ego at 15 m/s on a gentle curve among ``slots`` random objects (80 % valid,
    0.5 to 150 m ahead, +- 8 m aside)."""
    rng = np.random.default_rng(1)
    t = np.arange(frames) * 0.01
    sig = {"ego_speed": np.full(frames, 15.0), "ego_yaw_rate": np.full(frames, 0.01)}
    for j in range(slots):
        valid = rng.uniform(size=frames) < 0.8
        sig[f"obj_dx[{j}]"] = np.where(valid, rng.uniform(0.5, 150.0, frames), np.nan)
        sig[f"obj_dy[{j}]"] = np.where(valid, rng.uniform(-8.0, 8.0, frames), np.nan)
        sig[f"obj_vx[{j}]"] = np.where(valid, rng.uniform(-10.0, 2.0, frames), np.nan)
        sig[f"obj_valid[{j}]"] = valid.astype(np.float64)
        sig[f"obj_id[{j}]"] = np.where(valid, float(j + 1), np.nan)
    return t, sig


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=360_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if native_build.compiler() is None:
        print("no C compiler (cc, gcc or clang) on PATH: install one to run this benchmark")
        return 2
    root = Path(tempfile.mkdtemp(prefix="adsreplay-bench-functions-"))
    src = [native_build.NATIVE / "ttc_aeb.c"]
    lib = native_build.build_library(root / "libaeb.so", src)
    lib_steps = native_build.build_library(
        root / "libaeb_steps.so", src, defines=("ADSREPLAY_NO_BATCH",)
    )
    fmu2 = native_build.build_fmu(root / "aeb2.fmu", src, lib, version=2)
    fmu3 = native_build.build_fmu(root / "aeb3.fmu", src, lib, version=3)
    lib0 = native_build.build_library(root / "libaeb0.so", src, defines=("TTC_AEB_SLOTS=0",))

    t, sig = workload(args.frames)
    n = len(t)
    batch, steps = NativeAdapter(str(lib)), NativeAdapter(str(lib_steps))
    batch0 = NativeAdapter(str(lib0))
    t_obj, sig_obj = object_workload(n)
    fmus = {"FMU (FMI 2.0)": FmuAdapter(str(fmu2)), "FMU (FMI 3.0)": FmuAdapter(str(fmu3))}
    reference = replay.step(TtcAeb(), t, sig)
    adapters: list[tuple[str, FunctionAdapter]] = [("C batch", batch), ("C per-step", steps)]
    adapters.append(("C batch, 0-slot build", batch0))
    adapters += list(fmus.items())
    for name, adapter in adapters:
        out = adapter.run(t, sig)
        assert np.array_equal(out["aeb_decel"], reference["aeb_decel"]), name
    assert reference["aeb_decel"].max() == 9.0  # the workload reaches full braking

    runs: dict[str, Callable[[], object]] = {
        "Python reference": lambda: replay.step(TtcAeb(), t, sig),
        "C per-step (adapter)": lambda: steps.run(t, sig),
        "C batch (adapter)": lambda: batch.run(t, sig),
        "C batch call alone": kernel(batch, t, sig),
        "C batch call alone, in cache": kernel(batch, t, sig, block=4096),
        "0-slot build: batch (adapter)": lambda: batch0.run(t, sig),
        "0-slot build: call alone": kernel(batch0, t, sig),
        "0-slot build: call, in cache": kernel(batch0, t, sig, block=4096),
        "32-slot list: batch (adapter)": lambda: batch.run(t_obj, sig_obj),
        "32-slot list: call alone": kernel(batch, t_obj, sig_obj),
        "32-slot list: call, in cache": kernel(batch, t_obj, sig_obj, block=4096),
        **{f"{name} (adapter)": partial(a.run, t, sig) for name, a in fmus.items()},
    }
    fastest, middle = interleaved(runs, args.repeat)
    per_frame = {name: s / n * 1e6 for name, s in fastest.items()}

    print(f"{n} frames, {args.repeat} interleaved runs, per frame (best, median):")
    for name, us in per_frame.items():
        med = middle[name] / n * 1e6
        print(f"  {name:<30} {us:8.3f} us/frame  {1 / us:8.2f} M frames/s   median {med:8.3f}")
    own = per_frame["C batch call alone"]
    above = per_frame["C per-step (adapter)"] - own
    fps = 1 / own
    fmu_worst = max(per_frame[f"{name} (adapter)"] for name in fmus)
    print("targets:")
    print(
        f"  C per-step above the library's own work: {above:.3f} us/frame (target <= 2)"
        f"  {'ok' if above <= 2 else 'MISSED'}"
    )
    cached = 1 / per_frame["C batch call alone, in cache"]
    print(
        f"  C batch entry point: {fps:.1f} M frames/s on the whole table, {cached:.1f} M on"
        f" a block in cache as the adapter hands it over (target >= 20)"
        f"  {'ok' if fps >= 20 else 'MISSED'} / {'ok' if cached >= 20 else 'MISSED'}"
    )
    print(
        f"  FMU path: {fmu_worst:.3f} us/frame (target <= 10)"
        f"  {'ok' if fmu_worst <= 10 else 'MISSED'}"
    )
    speedup = per_frame["Python reference"] / per_frame["C batch (adapter)"]
    print(f"  C batch adapter vs Python: {speedup:.0f}x faster")
    for _, adapter in adapters:
        adapter.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

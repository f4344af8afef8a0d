"""Per-frame cost of the function under test in its three forms, on the same workload.

    python benchmarks/bench_functions.py            # 360 000 frames (1 h at 100 Hz)
    python benchmarks/bench_functions.py --frames 60000 --repeat 3

Builds the reference function from ``pytest_adsreplay/native/ttc_aeb.c`` with the
machine's C compiler (as the tests do) into a shared library with and without the batch
entry point and into FMI 2.0 / 3.0 co-simulation FMUs, then steps one synthetic workload
(a repeated approach that goes through warning, partial and full braking) through:

* Python: the reference class through the plugin's Python stepping loop;
* C per-step: the ctypes adapter calling ``adsreplay_step`` once per frame;
* C batch: the adapter with ``adsreplay_step_batch`` (one call per recording), and the
  batch call alone — the library's own work per frame;
* FMU: the fmpy-based adapter (set inputs, ``doStep``, get outputs per frame).

Each figure is the best of ``--repeat`` interleaved runs. Targets: the C per-step path
costs <= 2 us per frame above the library's own work, the batch entry point runs
>= 20 million frames/s, the FMU path <= 10 us per frame. Nothing here is a test: the
numbers depend on the machine and what else runs on it.
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


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def kernel(
    adapter: NativeAdapter, t: np.ndarray, sig: dict[str, np.ndarray]
) -> Callable[[], object]:
    """The batch entry point alone on prepared arrays: the library's own work."""
    from pytest_adsreplay.function.binding import input_matrix

    table = input_matrix(t, sig, adapter.binding)
    out = np.zeros((len(t), len(adapter.output_names)))
    lib, handle = adapter._lib, adapter._handle
    done = ctypes.c_size_t()

    def call() -> object:
        lib.adsreplay_reset(handle)
        return lib.adsreplay_step_batch(
            handle, len(t), t.ctypes.data, table.ctypes.data, out.ctypes.data, done
        )

    return call


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

    t, sig = workload(args.frames)
    n = len(t)
    batch, steps = NativeAdapter(str(lib)), NativeAdapter(str(lib_steps))
    fmus = {"FMU (FMI 2.0)": FmuAdapter(str(fmu2)), "FMU (FMI 3.0)": FmuAdapter(str(fmu3))}
    reference = replay.step(TtcAeb(), t, sig)
    adapters: list[tuple[str, FunctionAdapter]] = [("C batch", batch), ("C per-step", steps)]
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
        **{f"{name} (adapter)": partial(a.run, t, sig) for name, a in fmus.items()},
    }
    per_frame = {name: best(fn, args.repeat) / n * 1e6 for name, fn in runs.items()}

    print(f"{n} frames, best of {args.repeat} runs, per frame:")
    for name, us in per_frame.items():
        print(f"  {name:<28} {us:8.3f} us/frame  {1 / us:8.2f} M frames/s")
    own = per_frame["C batch call alone"]
    above = per_frame["C per-step (adapter)"] - own
    fps = 1 / own
    fmu_worst = max(per_frame[f"{name} (adapter)"] for name in fmus)
    print("targets:")
    print(
        f"  C per-step above the library's own work: {above:.3f} us/frame (target <= 2)"
        f"  {'ok' if above <= 2 else 'MISSED'}"
    )
    print(
        f"  C batch entry point: {fps:.1f} M frames/s (target >= 20)"
        f"  {'ok' if fps >= 20 else 'MISSED'}"
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

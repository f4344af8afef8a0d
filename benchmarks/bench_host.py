"""Cost of the supervised function host against stepping in the calling process.

    python benchmarks/bench_host.py                  # 20 recordings of 5 min at 100 Hz
    python benchmarks/bench_host.py --minutes 1 --recordings 40 --rounds 5

The same workload (canonical signals of a drive with a lead vehicle that comes and goes,
on a 10 ms grid) is stepped through the reference function ``TtcAeb`` in two ways,
interleaved round by round:

* in-process: the Python adapter in this process (``replay_file``'s default), as every
  stage stepped before the host existed;
* host: ``FunctionHost.run`` — the signals go to the child through a shared memory
  file, the child steps them (writing each cycle's time to the shared progress buffer)
  and puts the outputs back there: what every aeb stage does now.

Printed side by side: seconds per recording, microseconds per frame, their ratio and the
host's fixed cost per recording; the time to start a host (once per worker, and again
after a crash); and the cost of the progress buffer alone (in-process with and without
it). With ``--mf4`` one workload recording is also decoded, to put the host's cost per
recording next to a read stage. Nothing here is a test: the numbers depend on the
machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_adsreplay.function import host as function_host  # noqa: E402
from pytest_adsreplay.function import open_function  # noqa: E402
from pytest_adsreplay.function.stepping import run_function  # noqa: E402
from pytest_adsreplay.signals import CANONICAL_SIGNALS  # noqa: E402

FUNCTION = "pytest_adsreplay.reference:TtcAeb"
CYCLE = 0.01


def workload(minutes: float, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Canonical signals of one drive on the 10 ms grid (following, closing, cut-outs)."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, minutes * 60.0, CYCLE)
    v = 20.0 + 4.0 * np.sin(t / 45.0) + 1.5 * np.sin(t / 7.0)
    lead = 20.0 + 4.0 * np.sin(t / 45.0 + 0.3) + 2.5 * np.sin(t / 11.0)
    gap = 35.0 + 30.0 * np.sin(t / 23.0) + 0.05 * rng.standard_normal(t.size)
    valid = (np.sin(t / 13.0) > -0.6).astype(float)
    signals = {
        "ego_speed": v,
        "ego_accel": np.gradient(v, CYCLE),
        "target_distance": np.where(valid > 0, np.abs(gap) + 2.0, np.nan),
        "target_rel_speed": np.where(valid > 0, lead - v, np.nan),
        "target_lateral": np.where(valid > 0, 0.3 * np.sin(t / 5.0), np.nan),
        "target_valid": valid,
        "driver_brake": np.zeros(t.size),
    }
    return t, signals


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recordings", type=int, default=20, help="recordings per round")
    ap.add_argument("--minutes", type=float, default=5.0, help="minutes per recording")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    ap.add_argument("--starts", type=int, default=5, help="host starts to time")
    ap.add_argument("--mf4", action="store_true", help="also time one read stage")
    args = ap.parse_args(argv)

    recs = [workload(args.minutes, seed) for seed in range(args.recordings)]
    frames = sum(t.size for t, _ in recs)
    adapter = open_function(FUNCTION)
    host = function_host.acquire(FUNCTION)
    marker = memoryview(bytearray(8)).cast("d")

    def in_process() -> None:
        for t, sig in recs:
            adapter.run(t, sig, inputs=CANONICAL_SIGNALS)

    own: list[float] = []

    def hosted() -> None:
        seconds = 0.0
        for t, sig in recs:
            host.run(t, sig, inputs=CANONICAL_SIGNALS, timeout=600)
            seconds += host.step_seconds
        own.append(seconds)

    def in_process_marked() -> None:
        fn = adapter.fn  # type: ignore[attr-defined]
        for t, sig in recs:
            run_function(fn, t, sig, inputs=CANONICAL_SIGNALS, progress=marker)

    # the same outputs both ways
    t0, s0 = recs[0]
    a = adapter.run(t0, s0, inputs=CANONICAL_SIGNALS)
    b = host.run(t0, s0, inputs=CANONICAL_SIGNALS, timeout=600)
    assert all(np.array_equal(a[k], b[k], equal_nan=True) for k in a), "outputs differ"

    steps = {"in-process": in_process, "host": hosted, "in-process + progress": in_process_marked}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, fn in steps.items():
            times[name].append(timed(fn))
    starts = []
    for _ in range(args.starts):
        began = time.perf_counter()
        fresh = function_host.FunctionHost(FUNCTION).start()
        starts.append(time.perf_counter() - began)
        fresh.close()
    small_t, small_s = workload(10 / 60, 99)  # a 10 s recording: the fixed cost dominates
    small = {
        "in-process": [
            timed(lambda: adapter.run(small_t, small_s, inputs=CANONICAL_SIGNALS))
            for _ in range(20)
        ],
        "host": [
            timed(lambda: host.run(small_t, small_s, inputs=CANONICAL_SIGNALS, timeout=60))
            for _ in range(20)
        ],
    }
    function_host.shutdown()
    small_in, small_host = min(small["in-process"]), min(small["host"])

    n = args.recordings
    print(
        f"workload: {n} recordings x {args.minutes:g} min at 100 Hz = {frames} frames per round, "
        f"{args.rounds} interleaved rounds, function {FUNCTION}"
    )
    print(f"{'':24} {'s/recording':>12} {'us/frame':>9} {'best s':>8} {'median s':>9}")
    for name, ts in times.items():
        best = min(ts)
        print(
            f"{name:24} {best / n:12.4f} {best / frames * 1e6:9.3f} {best:8.3f} "
            f"{statistics.median(ts):9.3f}"
        )
    base, hosted_best = min(times["in-process"]), min(times["host"])
    pairs = [h / i for h, i in zip(times["host"], times["in-process"], strict=True)]
    print(
        f"host / in-process: best {hosted_best / base:.3f}, paired median "
        f"{statistics.median(pairs):.3f}; host cost per recording "
        f"{(hosted_best - base) / n * 1e3:+.1f} ms, per frame "
        f"{(hosted_best - base) / frames * 1e9:+.0f} ns"
    )
    print(
        f"of which the child's own stepping: best {min(own):.3f} s "
        f"({min(own) / base:.3f} x in-process); hand-over and scheduling "
        f"{(hosted_best - min(own)) / n * 1e3:+.1f} ms per recording"
    )
    marked = min(times["in-process + progress"])
    print(
        f"progress buffer alone: {marked / base:.3f} x in-process "
        f"({(marked - base) / frames * 1e9:+.0f} ns per frame)"
    )
    print(
        f"10 s recording (1000 frames): in-process {small_in * 1e3:.2f} ms, host "
        f"{small_host * 1e3:.2f} ms (fixed cost {(small_host - small_in) * 1e3:+.2f} ms per "
        "recording)"
    )
    print(
        f"host start (spawn, import, load): best {min(starts) * 1e3:.0f} ms, "
        f"median {statistics.median(starts) * 1e3:.0f} ms (once per worker and after a crash)"
    )
    if args.mf4:
        read_stage_share(args.minutes, (hosted_best - base) / n)
    return 0


def read_stage_share(minutes: float, host_cost: float) -> None:
    """Decode one workload recording: the host's cost per recording next to a read."""
    from workload import write_workload_recording

    from pytest_adsreplay import replay

    with tempfile.TemporaryDirectory() as tmp:
        path = write_workload_recording(Path(tmp) / "drive.mf4", minutes, 1)
        reads = [timed(lambda: replay.read(path, None, CYCLE, gate=False)) for _ in range(3)]
    print(
        f"read stage of one {minutes:g} min recording: {min(reads):.3f} s; the host adds "
        f"{host_cost / min(reads) * 100:+.1f} % of that"
    )


if __name__ == "__main__":
    sys.exit(main())

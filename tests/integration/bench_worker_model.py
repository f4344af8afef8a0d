"""Worker-model benchmark: forking ``Worker`` vs a long-lived ``SimpleWorker`` process.

Not a test (a timed test flakes): a script that prints both models side by side in one
run, on the real Redis of ``ADSREPLAY_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``)::

    .venv/bin/python tests/integration/bench_worker_model.py [CHAINS]

Each model gets the same CHAINS recordings (3 jobs each) on its own queues and one worker
process in burst mode. "startup" is process start to the worker being ready, "per job"
the mean wall time per job once the worker runs, "total" spawn to exit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

WORKER = r"""
import json, sys, time
t0 = time.perf_counter()
model, url, ns, preload = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
if preload:
    import asammdf, numpy, scipy.signal  # noqa: F401
    import pytest_adsreplay.queue.stages, pytest_adsreplay.replay, pytest_adsreplay.mdf.reader  # noqa: F401
    import pytest_adsreplay.kpi.compute, pytest_adsreplay.results.store, pytest_adsreplay.signals.resample  # noqa: F401
    import aebfn  # noqa: F401
from redis import Redis
from rq import SimpleWorker, Worker
from rq.serializers import JSONSerializer
from pytest_adsreplay.queue.broker import make_queues, worker_order
conn = Redis.from_url(url)
cls = SimpleWorker if model == "simple" else Worker
w = cls(worker_order(make_queues(conn, ns)), connection=conn, serializer=JSONSerializer)
t1 = time.perf_counter()
w.work(burst=True, logging_level="WARNING")
t2 = time.perf_counter()
print(json.dumps({"startup": t1 - t0, "work": t2 - t1}))
"""


def run_model(
    model: str, preload: bool, recs: list[Path], url: str, db: str, fndir: Path
) -> dict[str, float]:
    from integration_kit import enqueue_chains

    ns = f"bench-{uuid.uuid4().hex[:6]}"
    session = enqueue_chains(url, ns, recs, "aebfn:Ttc", db)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fndir), str(HERE), *sys.path]))
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", WORKER, model, url, ns, "1" if preload else "0"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    total = time.perf_counter() - t0
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    outcomes = [session.outcome(c).status for c in session.unfinished()]
    session.cleanup()
    for key in session.conn.scan_iter(match=f"*{ns}*"):
        session.conn.delete(key)
    session.conn.srem("rq:queues", *(q.key for q in session.queues.values()))
    assert outcomes == ["ok"] * len(recs), outcomes
    return {"startup": stats["startup"], "per_job": stats["work"] / (3 * len(recs)), "total": total}


def main() -> None:
    from integration_kit import write_function_module, write_scenario

    chains = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    url = os.environ.get("ADSREPLAY_REDIS_URL", "redis://127.0.0.1:6379/15")
    with tempfile.TemporaryDirectory() as tmp:
        recs = [write_scenario(Path(tmp) / f"r{i:02d}.mf4", dist0=50 + i) for i in range(chains)]
        db = str(Path(tmp) / "results.sqlite")
        fndir = write_function_module(Path(tmp) / "fn").parent
        sys.path.insert(0, str(fndir))
        models = [("simple", True), ("fork", True), ("fork", False), ("simple", False)]
        rows = {
            f"{m}{'+preload' if p else ''}": run_model(m, p, recs, url, db, fndir)
            for m, p in models
        }
    base = rows["simple+preload"]["per_job"]
    print(f"{chains} recordings x 3 jobs, 1 worker process, burst, {url.split('@')[-1]}")
    print(
        f"{'model':18} {'startup [s]':>11} {'per job [ms]':>12} {'total [s]':>9} {'vs simple':>9}"
    )
    for name, r in rows.items():
        print(
            f"{name:18} {r['startup']:11.2f} {1000 * r['per_job']:12.1f} {r['total']:9.2f} "
            f"{r['per_job'] / base:8.1f}x"
        )


if __name__ == "__main__":
    main()

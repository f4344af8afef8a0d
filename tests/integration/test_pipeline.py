"""The read → aeb → db chain on the embedded fakeredis, without pytest in the loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from adsreplay_testkit import write_approach

from pytest_adsreplay.queue import broker, stages
from pytest_adsreplay.queue.pipeline import Chain, ReplaySession, SessionConfig, recording_key
from pytest_adsreplay.recordings import Recording, discover
from pytest_adsreplay.results.store import open_store


def _session(tmp_path: Path, function: str = "pytest_adsreplay.reference:TtcAeb") -> ReplaySession:
    cfg = SessionConfig(
        run_id="run1",
        function=function,
        params={},
        channel_map=None,
        cycle_time=0.01,
        db=str(tmp_path / "r.sqlite"),
        timeout=30,
        namespace="adsreplay-run1",
        settings={"brake_threshold": 1.0, "actuator_delay": 0.2, "brake_jerk": 40.0},
    )
    return ReplaySession(cfg, broker.connect(None), embedded=True)


@pytest.fixture
def recs(tmp_path: Path) -> list[Recording]:
    write_approach(tmp_path / "recs" / "good 40.kph.mf4", ego_kph=40)
    (tmp_path / "recs" / "bad.mf4").write_bytes(b"\0" * 64)
    return discover([tmp_path / "recs"])


def test_good_and_bad_chains_each_end_in_one_row(tmp_path: Path, recs: list[Recording]) -> None:
    session = _session(tmp_path)
    chains = [Chain(r, {}) for r in recs]
    session.enqueue(chains)
    bad, good = (session.outcome(c) for c in chains)
    assert good.status == "ok" and good.kpis["brake_time"] is not None
    assert bad.status == "error" and bad.stage == "read" and "bad.mf4" in (bad.error or "")
    # nothing stays deferred: every job of both chains is terminal
    from rq.job import Job
    from rq.serializers import JSONSerializer

    for c in chains:
        ctx = session.context(c)
        for stage in ("read", "aeb", "db"):
            job = Job.fetch(
                stages.job_id(ctx, stage), connection=session.conn, serializer=JSONSerializer
            )
            assert job.get_status().value == "finished", (c.recording.id, stage)
    rows = open_store(session.cfg.db).results("run1")
    assert [(r.recording_id, r.status) for r in rows] == [
        ("bad.mf4", "error"),
        ("good 40.kph.mf4", "ok"),
    ]


def test_a_crashing_stage_is_reported_with_its_traceback(
    tmp_path: Path,
    recs: list[Recording],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pytest_adsreplay.replay as replay

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(replay, "step", explode)
    session = _session(tmp_path)
    good = next(r for r in recs if r.id.startswith("good"))
    out = session.outcome(Chain(good, {}))
    assert out.status == "error" and out.stage == "aeb"
    assert "aeb stage crashed" in (out.error or "")
    assert "RuntimeError: disk on fire" in (out.error or "")
    assert open_store(session.cfg.db).results("run1")[0].status == "error"


def test_signal_arrays_cross_redis_as_raw_float64(tmp_path: Path, recs: list[Recording]) -> None:
    session = _session(tmp_path)
    good = Chain(next(r for r in recs if r.id.startswith("good")), {})
    session.outcome(good)
    key = stages.data_key(session.context(good), "signals")
    raw = session.conn.hgetall(key)
    n = len(np.frombuffer(raw[b"t"], dtype="<f8"))
    assert n > 100 and all(len(v) == 8 * n for v in raw.values())
    assert not any(v.startswith(b"\x80") for v in raw.values())  # no pickle protocol header
    assert 0 < session.conn.ttl(key) <= session.cfg.ttl
    signals, outputs = session.arrays(good)
    assert signals["ego_speed"] == pytest.approx(40 / 3.6)
    assert set(outputs) >= {"fcw", "aeb_decel"}
    session.cleanup()
    assert not list(session.conn.scan_iter(match="adsreplay:run1:*"))


def test_job_ids_are_rq_safe_and_distinct() -> None:
    keys = {recording_key(r) for r in ("a b.mf4", "a_b.mf4", "dir/ä:ö.mf4", "x" * 300)}
    assert len(keys) == 4
    assert all(k.replace("-", "").replace("_", "").isalnum() and k.isascii() for k in keys)
    assert recording_key("a.mf4", "p1234").endswith("-p1234")


def test_jobs_use_the_json_serializer(tmp_path: Path, recs: list[Recording]) -> None:
    session = _session(tmp_path)
    chains = [Chain(r, {}) for r in recs]
    session.enqueue(chains)
    data = session.conn.hget(f"rq:job:{stages.job_id(session.context(chains[0]), 'read')}", "data")
    import zlib

    text = zlib.decompress(data).decode()
    assert text.startswith("[") and '"pytest_adsreplay.queue.stages.read_stage"' in text

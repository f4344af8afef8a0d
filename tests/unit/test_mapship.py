"""storage.mapship: the channel map and its DBC files travel through the broker,
content-addressed, and a worker without a copy rebuilds the same map (fakeredis)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import fakeredis
import pytest

from pytest_adsreplay.errors import ChannelMapError
from pytest_adsreplay.signals import ChannelMap
from pytest_adsreplay.storage import mapship

MAP = """
use_builtin = true
[signals.ego_speed]
channels = ["SpeedOnlyHere"]
unit = "km/h"
[can]
dbc = ["dbc/vehicle.dbc", { file = "radar.dbc", bus = 2 }]
"""


def _session_map(folder: Path) -> Path:
    (folder / "dbc").mkdir(parents=True)
    (folder / "dbc" / "vehicle.dbc").write_bytes(b'VERSION "vehicle"\n')
    (folder / "radar.dbc").write_bytes(b'VERSION "radar"\n')
    path = folder / "map.toml"
    path.write_text(MAP)
    return path


def test_round_trip_rebuilds_the_same_map_without_the_session_files(tmp_path: Path) -> None:
    conn = fakeredis.FakeStrictRedis()
    path = _session_map(tmp_path / "session")
    want = ChannelMap.load(path)
    ref = mapship.upload(conn, path, ttl=600)
    assert ref is not None and len(ref["dbc"]) == 2
    assert ref["key"] == mapship.key(hashlib.sha256(path.read_bytes()).hexdigest())
    assert 0 < conn.ttl(ref["key"]) <= 600
    assert all(0 < conn.ttl(d["key"]) <= 600 for d in ref["dbc"])
    worker = tmp_path / "worker-store"
    got = mapship.materialize(conn, ref, worker, source=str(path))
    assert got.fingerprint() == want.fingerprint()
    assert got.signals["ego_speed"].channels[0].name == "SpeedOnlyHere"
    assert [bus for _, bus in got.dbc_pairs()] == [0, 2]
    assert all(worker in p.parents for p, _ in got.dbc_pairs())
    # the local copies are used again without the broker
    conn.flushall()
    again = mapship.materialize(conn, ref, worker, source=str(path))
    assert again.fingerprint() == want.fingerprint()


def test_a_tampered_blob_is_refused_and_not_kept(tmp_path: Path) -> None:
    conn = fakeredis.FakeStrictRedis()
    path = _session_map(tmp_path / "session")
    ref = mapship.upload(conn, path, ttl=600)
    assert ref is not None
    conn.set(ref["dbc"][1]["key"], b'VERSION "evil"\n')
    worker = tmp_path / "worker-store"
    with pytest.raises(ChannelMapError, match="does not have the session's sha256"):
        mapship.materialize(conn, ref, worker, source=str(path))
    assert not (worker / ref["dbc"][1]["sha256"]).exists()


def test_an_expired_blob_says_what_to_do(tmp_path: Path) -> None:
    conn = fakeredis.FakeStrictRedis()
    path = _session_map(tmp_path / "session")
    ref = mapship.upload(conn, path, ttl=600)
    assert ref is not None
    conn.delete(ref["key"])
    with pytest.raises(ChannelMapError, match="no longer in the broker") as info:
        mapship.materialize(conn, ref, tmp_path / "w", source=str(path))
    assert str(path) in str(info.value)


def test_a_too_large_map_is_not_uploaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = fakeredis.FakeStrictRedis()
    path = _session_map(tmp_path / "session")
    monkeypatch.setattr(mapship, "MAX_BYTES", 10)
    ref = mapship.upload(conn, path, ttl=600)
    assert ref is not None and ref["too_large"]
    assert conn.dbsize() == 0
    with pytest.raises(ChannelMapError, match="too large"):
        mapship.materialize(conn, ref, tmp_path / "w", source=str(path))

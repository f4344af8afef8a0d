"""The decoded-signal cache: keys, entries on disk, and the read stage that uses them.

The read stage runs here with its Redis connection replaced by an in-memory fakeredis
(no queue, no worker); the pipeline and plugin wiring is tested in tests/plugin.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from adsreplay_testkit import write_approach

from pytest_adsreplay import cli
from pytest_adsreplay.errors import AdsReplayError
from pytest_adsreplay.queue import cache, stages
from pytest_adsreplay.signals import ChannelMap

T = np.arange(0.0, 1.0, 0.01)
VALUES = {
    "ego_speed": np.linspace(10.0, 11.0, T.size),
    "target_distance": np.where(T < 0.5, np.nan, 30.0 - T),
    "target_valid": (T >= 0.5).astype(np.float64),
}
SOURCES = {
    "ego_speed": "VehSpd@0/1 (km/h -> m/s)",
    "target_distance": "Radar@1/1",
    "target_valid": "Radar.Valid@1/3",
}

KEY_ARGS: dict[str, Any] = {
    "sha256": "a" * 64,
    "channel_map": "b" * 64,
    "cycle_time": 0.01,
    "max_gap": 0.2,
    "nominal_speed": None,
    "expect_target": None,
}


def _key(**changes: Any) -> str:
    return cache.key(**{**KEY_ARGS, **changes})


# ------------------------------------------------------------------------------ keys


def test_key_is_stable() -> None:
    assert _key() == _key() and len(_key()) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"sha256": "c" * 64},
        {"channel_map": "d" * 64},
        {"cycle_time": 0.02},
        {"cycle_time": 0.01 + 1e-15},
        {"max_gap": 0.3},
        {"nominal_speed": 40.0},
        {"expect_target": "scenario 'CCRs'"},
    ],
)
def test_every_input_of_a_read_changes_the_key(change: dict[str, Any]) -> None:
    assert _key(**change) != _key()


def test_plugin_version_and_format_are_part_of_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_adsreplay

    before = _key()
    monkeypatch.setattr(cache, "FORMAT", cache.FORMAT + 1)
    assert _key() != before
    monkeypatch.undo()
    monkeypatch.setattr(pytest_adsreplay, "__version__", "999.0")
    assert _key() != before


# --------------------------------------------------------------------------- entries


def test_round_trip_is_bit_identical(tmp_path: Path) -> None:
    assert cache.store(tmp_path, _key(), T, VALUES, SOURCES)
    entry = cache.load(tmp_path, _key())
    assert entry is not None
    assert entry.t.tobytes() == T.tobytes()
    assert list(entry.values) == list(VALUES)  # order kept
    for name, arr in VALUES.items():
        assert entry.values[name].dtype == np.float64
        assert entry.values[name].tobytes() == arr.tobytes(), name  # NaN bits too
    assert entry.sources == SOURCES
    assert cache.entry_path(tmp_path, _key()).parent.name == _key()[:2]
    assert entry.t.flags.c_contiguous and entry.values["ego_speed"].flags.c_contiguous


def test_missing_entry_is_a_miss(tmp_path: Path) -> None:
    assert cache.load(tmp_path, _key()) is None
    assert cache.load(tmp_path / "nowhere", _key()) is None


def _meta(path: Path) -> Path:
    return path.with_suffix(".json")


def _corrupt_truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _corrupt_garbage(path: Path) -> None:
    path.write_bytes(b"\x93NUMPY not really" * 10)


def _corrupt_bad_json(path: Path) -> None:
    _meta(path).write_text('{"key": ')


def _corrupt_other_key(path: Path) -> None:
    other = path.parent / "other"
    cache.store(other, _key(sha256="f" * 64), T, VALUES, SOURCES)
    _meta(path).write_bytes(_meta(cache.entry_path(other, _key(sha256="f" * 64))).read_bytes())


def _corrupt_pickled(path: Path) -> None:
    np.save(path, np.array([[{"evil": 1}] * T.size] * 4, dtype=object), allow_pickle=True)


def _corrupt_short_signal(path: Path) -> None:
    np.save(path, np.load(path)[:, :-1])


def _corrupt_float32(path: Path) -> None:
    np.save(path, np.load(path).astype(np.float32))


def _corrupt_names(path: Path) -> None:
    meta = json.loads(_meta(path).read_text())
    meta["names"] = meta["names"][:-1]
    _meta(path).write_text(json.dumps(meta))


def _corrupt_flipped_bit(path: Path) -> None:
    """One bit of the last sample: same size, same header, a plausible float."""
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01
    path.write_bytes(bytes(data))


def _corrupt_no_checksum(path: Path) -> None:
    meta = json.loads(_meta(path).read_text())
    del meta["crc32"]
    _meta(path).write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "corrupt",
    [
        _corrupt_flipped_bit,
        _corrupt_no_checksum,
        _corrupt_truncated,
        _corrupt_garbage,
        _corrupt_bad_json,
        _corrupt_other_key,
        _corrupt_pickled,
        _corrupt_short_signal,
        _corrupt_float32,
        _corrupt_names,
    ],
)
def test_a_corrupt_entry_is_a_miss_and_is_deleted(tmp_path: Path, corrupt: Any) -> None:
    cache.store(tmp_path, _key(), T, VALUES, SOURCES)
    path = cache.entry_path(tmp_path, _key())
    corrupt(path)
    assert cache.load(tmp_path, _key()) is None
    assert not path.exists() and not _meta(path).exists()
    assert cache.store(tmp_path, _key(), T, VALUES, SOURCES)
    assert cache.load(tmp_path, _key()) is not None


@pytest.mark.parametrize("half", [".npy", ".json"])
def test_half_an_entry_is_a_miss(tmp_path: Path, half: str) -> None:
    cache.store(tmp_path, _key(), T, VALUES, SOURCES)
    cache.entry_path(tmp_path, _key()).with_suffix(half).unlink()
    assert cache.load(tmp_path, _key()) is None
    assert cache.store(tmp_path, _key(), T, VALUES, SOURCES)
    assert cache.load(tmp_path, _key()) is not None


def test_entries_are_a_plain_npy_and_json(tmp_path: Path) -> None:
    cache.store(tmp_path, _key(), T, VALUES, SOURCES)
    path = cache.entry_path(tmp_path, _key())
    table = np.load(path, allow_pickle=False)
    assert table.dtype == np.float64 and table.shape == (1 + len(VALUES), T.size)
    meta = json.loads(_meta(path).read_text())
    assert meta["names"] == list(VALUES) and meta["sources"] == SOURCES
    assert sorted(p.name for p in path.parent.iterdir()) == [f"{_key()}.json", f"{_key()}.npy"]


def test_an_unwritable_cache_is_no_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert cache.store(blocker, _key(), T, VALUES, SOURCES) is False
    assert cache.load(blocker, _key()) is None


def test_signals_of_another_length_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one sample per grid point"):
        cache.store(tmp_path, _key(), T, {"ego_speed": T[:-1]}, {})


def test_writes_are_atomic_under_concurrent_writers(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            for _ in range(5):
                cache.store(tmp_path, _key(), T, VALUES, SOURCES)
                entry = cache.load(tmp_path, _key())
                assert entry is not None  # never a half-written file
                assert entry.values["ego_speed"].tobytes() == VALUES["ego_speed"].tobytes()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    left = sorted(p.name for p in cache.entry_path(tmp_path, _key()).parent.iterdir())
    assert left == [f"{_key()}.json", f"{_key()}.npy"]  # no temporary files


# ----------------------------------------------------------------------- maintenance


def test_stats_clear_and_prune(tmp_path: Path) -> None:
    keys = [_key(sha256=c * 64) for c in "123"]
    for k in keys:
        cache.store(tmp_path, k, T, VALUES, SOURCES)
    size = sum(
        cache.entry_path(tmp_path, keys[0]).with_suffix(x).stat().st_size for x in (".npy", ".json")
    )
    assert cache.stats(tmp_path).entries == 3
    assert cache.stats(tmp_path).size == pytest.approx(3 * size, rel=0.01)
    import os

    for i, k in enumerate(keys):  # keys[0] used longest ago
        os.utime(cache.entry_path(tmp_path, k).with_suffix(".json"), (1000 + i, 1000 + i))
    cache.load(tmp_path, keys[0])  # a hit makes it the most recently used
    gone = cache.prune(tmp_path, int(2.5 * size))
    assert gone.entries == 1 and not cache.entry_path(tmp_path, keys[1]).exists()
    assert cache.clear(tmp_path).entries == 2
    assert cache.stats(tmp_path).entries == 0
    assert cache.clear(tmp_path / "never-made").entries == 0


def test_prune_removes_what_killed_writers_left(tmp_path: Path) -> None:
    import os

    cache.store(tmp_path, _key(), T, VALUES, SOURCES)
    bucket = cache.entry_path(tmp_path, _key()).parent
    leftovers = [bucket / ".tmp-abc.npy", bucket / f"{'0' * 64}.npy"]
    fresh = bucket / ".tmp-new.json"
    for p in [*leftovers, fresh]:
        p.write_bytes(b"x")
    for p in leftovers:
        os.utime(p, (1000, 1000))
    assert cache.prune(tmp_path, 10**9).entries == 0
    assert not any(p.exists() for p in leftovers) and fresh.exists()
    assert cache.load(tmp_path, _key()) is not None


def test_prune_forgets_the_hashes_of_files_that_are_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "_RACY", 0.0)
    kept, gone = tmp_path / "kept.mf4", tmp_path / "gone.mf4"
    for f in (kept, gone):
        f.write_bytes(f.name.encode())
        cache.content_hash(f, tmp_path / "c")
    assert len(list((tmp_path / "c" / cache.HASHES).iterdir())) == 2
    gone.unlink()
    cache.prune(tmp_path / "c", 10**9)
    (memo,) = (tmp_path / "c" / cache.HASHES).iterdir()
    assert json.loads(memo.read_text())["path"] == str(kept)


@pytest.mark.parametrize(
    ("text", "size"), [("0", 0), ("500MB", 500 * 10**6), ("2GB", 2 * 10**9), ("1.5g", 1.5e9)]
)
def test_parse_size(text: str, size: int) -> None:
    assert cache.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MB", "2XB", "-1GB", "lots"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        cache.parse_size(text)


def test_cli_cache_info_clear_prune(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache.store(tmp_path, _key(), T, VALUES, SOURCES)
    assert cli.main(["cache", "info", "--cache-dir", str(tmp_path)]) == 0
    assert "1 entries" in capsys.readouterr().out
    assert cli.main(["cache", "prune", "--max-size", "1GB", "--cache-dir", str(tmp_path)]) == 0
    assert "removed 0 " in capsys.readouterr().out
    assert cli.main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("removed 1 entries")
    assert cache.stats(tmp_path).entries == 0


def test_cli_cache_dir_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADSREPLAY_CACHE_DIR", str(tmp_path / "c"))
    assert cli.main(["cache", "info"]) == 0
    assert str(tmp_path / "c") in capsys.readouterr().out


def test_cli_cache_covers_the_object_download_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """info counts the downloaded objects, prune bounds them (oldest first, temporary
    files of killed downloads too), clear empties them and the shipped channel maps."""
    objects = tmp_path / cache.OBJECTS
    (objects / ".locks").mkdir(parents=True)
    for i in range(3):
        entry = objects / f"{i:040x}.mf4"
        entry.write_bytes(b"x" * 1000)
        os.utime(entry, (1000 + i, 1000 + i))
        (objects / ".locks" / entry.name).write_bytes(b"")
    killed = objects / ".tmp-killed"
    killed.write_bytes(b"y")
    os.utime(killed, (1000, 1000))
    (tmp_path / cache.CHANNEL_MAPS / ("a" * 64)).mkdir(parents=True)
    (tmp_path / cache.CHANNEL_MAPS / ("a" * 64) / "map.toml").write_text("")
    assert cli.main(["cache", "info", "--cache-dir", str(tmp_path)]) == 0
    assert f"object downloads: {objects}: 3 entries" in capsys.readouterr().out
    assert cli.main(["cache", "prune", "--max-size", "2500", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "object downloads: removed 1 least recently used" in out
    assert f"{objects}: 2 entries" in out
    assert not (objects / f"{0:040x}.mf4").exists() and (objects / f"{2:040x}.mf4").exists()
    assert not killed.exists()
    assert cli.main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0
    assert "removed 2 downloaded objects" in capsys.readouterr().out
    assert cache.object_stats(tmp_path).entries == 0 and list(objects.iterdir()) == []
    assert not (tmp_path / cache.CHANNEL_MAPS).exists()
    # a cache folder without downloads
    assert cache.object_clear(tmp_path / "never-made").entries == 0
    assert cache.object_prune(tmp_path / "never-made", 0).entries == 0


# -------------------------------------------------------------------- the read stage


@pytest.fixture
def conn(monkeypatch: pytest.MonkeyPatch) -> Any:
    import fakeredis

    redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    monkeypatch.setattr(stages, "_connection", lambda: redis)
    return redis


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ctx(path: Path, cache_dir: Path | None, **changes: Any) -> dict[str, Any]:
    ctx = {
        "run": "r1",
        "rec": path.name,
        "key": "k1",
        "path": str(path),
        "sha256": changes.pop("sha256") if "sha256" in changes else _sha(path),
        "channel_map": None,
        "channel_map_sha": None,
        "max_gap": 0.2,
        "nominal_speed": None,
        "expect_target": None,
        "problem": None,
        "cycle_time": 0.01,
        "ttl": 600,
        "cache_dir": None if cache_dir is None else str(cache_dir),
    }
    ctx.update(changes)
    return ctx


def _stored(conn: Any, ctx: dict[str, Any], res: dict[str, Any]) -> dict[str, bytes]:
    """The signals the next stages get from read result ``res`` (Redis or cache entry)."""
    return {k: np.asarray(v).tobytes() for k, v in stages.load_signals(conn, ctx, res).items()}


def test_a_hit_gives_bit_identical_signals(tmp_path: Path, conn: Any) -> None:
    rec = write_approach(tmp_path / "a.mf4", ego_kph=40)
    plain = stages.read_stage(_ctx(rec, None))
    assert plain["cache"] == "off" and plain["signals_cache"] is None
    uncached = _stored(conn, _ctx(rec, None), plain)
    assert set(uncached) == {"t", *plain["sources"]}

    conn.flushall()
    cold = stages.read_stage(_ctx(rec, tmp_path / "c"))
    assert cold["cache"] == "miss" and cache.stats(tmp_path / "c").entries == 1
    warm = stages.read_stage(_ctx(rec, tmp_path / "c"))
    assert warm["cache"] == "hit"
    for res in (cold, warm):
        # handed over as the entry's key: nothing went through Redis
        assert res["signals_cache"] and not conn.keys("adsreplay:*")
        assert _stored(conn, _ctx(rec, tmp_path / "c"), res) == uncached
        assert {k: res[k] for k in ("ok", "n", "sources")} == {
            k: plain[k] for k in ("ok", "n", "sources")
        }


def test_an_entry_the_next_stage_cannot_find_is_decoded_again(tmp_path: Path, conn: Any) -> None:
    """A worker on another host (or a cleared cache) decodes the recording again."""
    rec = write_approach(tmp_path / "a.mf4", ego_kph=40)
    plain = stages.read_stage(_ctx(rec, None))
    want = _stored(conn, _ctx(rec, None), plain)
    ctx = _ctx(rec, tmp_path / "c")
    res = stages.read_stage(ctx)
    cache.clear(tmp_path / "c")
    assert _stored(conn, ctx, res) == want
    assert cache.stats(tmp_path / "c").entries == 1  # stored again for the next consumer
    elsewhere = _ctx(rec, tmp_path / "other-host")
    assert _stored(conn, elsewhere, res) == want
    rec.unlink()
    cache.clear(tmp_path / "other-host")
    with pytest.raises(AdsReplayError, match=r"a\.mf4.*cannot be read again"):
        stages.load_signals(conn, elsewhere, res)


def test_another_file_at_the_same_path_is_never_stored_under_the_key(
    tmp_path: Path, conn: Any
) -> None:
    """A host whose copy of the recording differs must not decode it under the read
    stage's key: the stage errors and the cache stays clean."""
    rec = write_approach(tmp_path / "a.mf4", ego_kph=50)
    res = stages.read_stage(_ctx(rec, tmp_path / "c"))
    write_approach(tmp_path / "a.mf4", ego_kph=25)  # what the other host has at that path
    other = _ctx(rec, tmp_path / "other-host")
    with pytest.raises(AdsReplayError, match="differs from the one the read stage read"):
        stages.load_signals(conn, other, res)
    assert cache.stats(tmp_path / "other-host").entries == 0
    for bad in ("../../etc/passwd", "A" * 64, 42):
        with pytest.raises(AdsReplayError, match="malformed cache key"):
            stages.load_signals(conn, other, {**res, "signals_cache": bad})


def _hit_after(tmp_path: Path, conn: Any, first: dict[str, Any], second: dict[str, Any]) -> str:
    assert stages.read_stage(first)["cache"] == "miss"
    return str(stages.read_stage(second)["cache"])


def test_a_changed_byte_of_the_file_is_a_miss(tmp_path: Path, conn: Any) -> None:
    rec = write_approach(tmp_path / "a.mf4", ego_kph=40.5)
    first = _ctx(rec, tmp_path / "c")
    speed = np.frombuffer(_stored(conn, first, stages.read_stage(first))["ego_speed"])
    data = bytearray(rec.read_bytes())
    at = data.find(np.float64(40.5).tobytes())  # the first VehSpd sample
    assert at > 0
    data[at] ^= 0x01  # its lowest mantissa bit
    rec.write_bytes(bytes(data))
    second = _ctx(rec, tmp_path / "c")
    assert second["sha256"] != first["sha256"]
    res = stages.read_stage(second)
    assert res["cache"] == "miss"
    changed = np.frombuffer(_stored(conn, second, res)["ego_speed"])
    assert changed[0] != speed[0] and changed[1] == speed[1]
    assert stages.read_stage(second)["cache"] == "hit"


def test_a_changed_channel_map_is_a_miss(tmp_path: Path, conn: Any) -> None:
    rec = write_approach(tmp_path / "a.mf4", ego_kph=40)
    cmap = tmp_path / "map.toml"
    cmap.write_text('[signals.ego_speed]\nchannels = ["VehSpd"]\nunit = "km/h"\n')
    first = _ctx(rec, tmp_path / "c", channel_map=str(cmap))
    speed = np.frombuffer(_stored(conn, first, stages.read_stage(first))["ego_speed"])
    cmap.write_text('[signals.ego_speed]\nchannels = ["VehSpd"]\nscale = 0.5\n')
    second = _ctx(rec, tmp_path / "c", channel_map=str(cmap))
    res = stages.read_stage(second)
    assert res["cache"] == "miss"
    assert np.frombuffer(_stored(conn, second, res)["ego_speed"])[0] == 0.5 * 40.0 != speed[0]


def test_a_changed_dbc_file_changes_the_map_fingerprint(tmp_path: Path) -> None:
    dbc = tmp_path / "v.dbc"
    dbc.write_text('VERSION ""\n')
    cmap = tmp_path / "map.toml"
    cmap.write_text('[can]\ndbc = ["v.dbc"]\n[signals.ego_speed]\nchannels = ["VehSpd"]\n')
    before = ChannelMap.load(cmap).fingerprint()
    dbc.write_text('VERSION "2"\n')
    assert ChannelMap.load(cmap).fingerprint() != before


@pytest.mark.parametrize(
    "change",
    [
        {"cycle_time": 0.02},
        {"max_gap": 0.5},
        {"nominal_speed": 40.0},
        {"expect_target": "scenario 'CCRs'"},
    ],
)
def test_changed_grid_or_gate_settings_are_a_miss(
    tmp_path: Path, conn: Any, change: dict[str, Any]
) -> None:
    rec = write_approach(tmp_path / "a.mf4", ego_kph=40)
    first = _ctx(rec, tmp_path / "c")
    assert _hit_after(tmp_path, conn, first, _ctx(rec, tmp_path / "c", **change)) == "miss"
    assert stages.read_stage(first)["cache"] == "hit"


def test_a_recording_the_gate_rejects_is_not_cached(tmp_path: Path, conn: Any) -> None:
    rec = write_approach(tmp_path / "a.mf4", ego_kph=40)
    bad = _ctx(rec, tmp_path / "c", nominal_speed=80.0)  # driven at 40 km/h
    for _ in range(2):
        res = stages.read_stage(bad)
        assert res["ok"] is False and res["outcome"] == "invalid"
    assert cache.stats(tmp_path / "c").entries == 0


def test_the_stage_hashes_the_file_itself(tmp_path: Path, conn: Any) -> None:
    rec = write_approach(tmp_path / "a.mf4", ego_kph=40)
    off = stages.read_stage(_ctx(rec, None, sha256=None))  # hashed in a thread beside the read
    cold = stages.read_stage(_ctx(rec, tmp_path / "c", sha256=None))
    warm = stages.read_stage(_ctx(rec, tmp_path / "c", sha256=None))
    assert (off["cache"], cold["cache"], warm["cache"]) == ("off", "miss", "hit")
    assert off["sha256"] == cold["sha256"] == warm["sha256"] == _sha(rec)


def test_an_unreadable_file_has_no_hash_and_no_entry(tmp_path: Path, conn: Any) -> None:
    for cache_dir in (None, tmp_path / "c"):
        res = stages.read_stage(_ctx(tmp_path / "gone.mf4", cache_dir, sha256=None))
        assert res["ok"] is False and res["sha256"] is None
        assert "gone.mf4" in res["error"]
    assert cache.stats(tmp_path / "c").entries == 0


def test_a_file_changed_in_place_is_hashed_again_and_misses(
    tmp_path: Path, conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same size, mtime set back: the ctime (which no user-space call can set back) and
    the content differ, so neither the remembered hash nor the old entry is used."""
    monkeypatch.setattr(cache, "_RACY", 0.2)
    rec = write_approach(tmp_path / "a.mf4", ego_kph=40.5)
    time.sleep(0.3)  # settled: its hash is remembered
    first = _ctx(rec, tmp_path / "c", sha256=None)
    before = stages.read_stage(first)
    assert before["cache"] == "miss" and before["sha256"] == _sha(rec)
    assert len(list((tmp_path / "c" / cache.HASHES).iterdir())) == 1
    speed = np.frombuffer(_stored(conn, first, before)["ego_speed"])
    st = rec.stat()
    data = bytearray(rec.read_bytes())
    data[data.find(np.float64(40.5).tobytes())] ^= 0x01  # lowest mantissa bit of a sample
    rec.write_bytes(bytes(data))
    os.utime(rec, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert rec.stat().st_size == st.st_size and rec.stat().st_mtime_ns == st.st_mtime_ns
    second = stages.read_stage(_ctx(rec, tmp_path / "c", sha256=None))
    assert second["cache"] == "miss" and second["sha256"] == _sha(rec) != before["sha256"]
    changed = np.frombuffer(_stored(conn, first, second)["ego_speed"])
    assert changed[0] != speed[0] and changed[1] == speed[1]


def test_remembered_hashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "_RACY", 0.2)
    rec = tmp_path / "r.mf4"
    rec.write_bytes(b"MDF     " + bytes(5000))
    digest = _sha(rec)
    # a file changed within _RACY of being hashed is not remembered ("racy clean")
    assert cache.content_hash(rec, tmp_path / "c") == digest
    assert not (tmp_path / "c" / cache.HASHES).exists()
    time.sleep(0.3)
    assert cache.content_hash(rec, tmp_path / "c") == digest
    (memo,) = (tmp_path / "c" / cache.HASHES).iterdir()

    import pytest_adsreplay.recordings as recordings

    def no_reading(fh: Any) -> str:
        raise AssertionError("the file was read again")

    monkeypatch.setattr(recordings, "stream_sha256", no_reading)
    assert cache.content_hash(rec, tmp_path / "c") == digest  # remembered: not read
    # a copy put in its place keeps size and mtime but is another inode: hashed again
    monkeypatch.undo()
    monkeypatch.setattr(cache, "_RACY", 0.2)
    copy = tmp_path / "copy.mf4"
    copy.write_bytes(b"MDF     " + bytes(4999) + b"\x01")
    os.utime(copy, ns=(rec.stat().st_atime_ns, rec.stat().st_mtime_ns))
    os.replace(copy, rec)
    assert cache.content_hash(rec, tmp_path / "c") == _sha(rec) != digest
    # a broken memo is ignored; clear removes the memos with the entries
    memo.write_text("{not json")
    assert cache.content_hash(rec, tmp_path / "c") == _sha(rec)
    cache.clear(tmp_path / "c")
    assert not (tmp_path / "c" / cache.HASHES).exists()
    assert cache.content_hash(rec, None) == _sha(rec)  # no cache dir: just hashed


def test_a_corrupt_entry_is_read_again_and_replaced(tmp_path: Path, conn: Any) -> None:
    rec = write_approach(tmp_path / "a.mf4", ego_kph=40)
    ctx = _ctx(rec, tmp_path / "c")
    good = _stored(conn, ctx, stages.read_stage(ctx))
    (entry,) = (tmp_path / "c").glob("*/*.npy")
    entry.write_bytes(entry.read_bytes()[:100])
    res = stages.read_stage(ctx)
    assert res["ok"] and res["cache"] == "miss"
    assert _stored(conn, ctx, res) == good
    assert stages.read_stage(ctx)["cache"] == "hit"


def test_an_unwritable_cache_dir_still_reads(tmp_path: Path, conn: Any) -> None:
    rec = write_approach(tmp_path / "a.mf4", ego_kph=40)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = stages.read_stage(_ctx(rec, blocker))
    assert res["ok"] and res["cache"] == "miss"
    assert res["signals_cache"] is None  # not stored: handed over through Redis instead
    assert set(_stored(conn, _ctx(rec, blocker), res)) == {"t", *res["sources"]}


@pytest.mark.parametrize("damage", [_corrupt_flipped_bit, _corrupt_truncated, _corrupt_bad_json])
def test_an_entry_damaged_after_the_hand_over_is_decoded_again(
    tmp_path: Path, conn: Any, damage: Any
) -> None:
    """The read stage handed over the entry's key; the entry is damaged before the aeb
    stage loads it: the next stage gets the recording's true signals (decoded again and
    stored again), never the damaged ones."""
    rec = write_approach(tmp_path / "a.mf4", ego_kph=40)
    want = _stored(conn, _ctx(rec, None), stages.read_stage(_ctx(rec, None)))
    conn.flushall()
    ctx = _ctx(rec, tmp_path / "c")
    res = stages.read_stage(ctx)
    assert res["signals_cache"] and not conn.keys("adsreplay:*")
    (entry,) = (tmp_path / "c").glob("*/*.npy")
    damage(entry)
    assert _stored(conn, ctx, res) == want
    assert cache.load(tmp_path / "c", res["signals_cache"]) is not None  # replaced
    assert _stored(conn, ctx, res) == want

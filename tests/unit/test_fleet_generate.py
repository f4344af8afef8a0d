"""The fleet suite of the generator: closed-form exposure, no activations, reproducible."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_adsreplay import cli, replay_file
from pytest_adsreplay.errors import UsageError
from pytest_adsreplay.fleet import exposure
from pytest_adsreplay.recordings import load_recording
from pytest_adsreplay.replay import ReplayResult
from pytest_adsreplay.scenarios import fleet, plan

REFERENCE = "pytest_adsreplay.reference:TtcAeb"
#: Short recordings so the test suite replays every kind in a few seconds.
SHORT = (40.0, 50.0)


def sidecar(path: Path) -> dict[str, Any]:
    with open(path.with_suffix(".toml"), "rb") as fh:
        return tomllib.load(fh)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Every kind once (0.05 h in recordings of 40-50 s)."""
    return fleet.generate_fleet(tmp_path_factory.mktemp("fleet"), 0.05, seed=1, lengths=SHORT)


@pytest.fixture(scope="module")
def replays(suite: list[Path]) -> dict[Path, ReplayResult]:
    return {p: replay_file(p, REFERENCE) for p in suite}


def test_the_short_suite_has_every_kind(suite: list[Path]) -> None:
    kinds = [sidecar(p)["tags"][2] for p in suite]
    assert sorted(kinds) == sorted(fleet.KINDS)
    for p in suite:
        side = sidecar(p)
        assert side["tags"][:2] == ["fleet", "false-activation"]
        assert side["expect"] == {"brake": False, "fcw": False}
        assert set(side["generator"]) == {"seed", "distance_m", "duration_s"}
        assert p.parent.name == "fleet" and p.stem.endswith(side["tags"][2])


def test_closed_form_distance_matches_the_replayed_exposure(
    replays: dict[Path, ReplayResult],
) -> None:
    for path, r in replays.items():
        gen = sidecar(path)["generator"]
        metres, seconds = exposure(r.t, r.signals["ego_speed"])
        assert metres == pytest.approx(gen["distance_m"], rel=1e-3), path.name
        assert seconds == pytest.approx(gen["duration_s"], rel=1e-3), path.name
        assert gen["distance_m"] > 50.0  # every kind drives (stop-and-go at least one cycle)


def test_the_reference_never_warns_nor_brakes(replays: dict[Path, ReplayResult]) -> None:
    for path, r in replays.items():
        assert r.fcw_time is None and r.brake_time is None, path.name
        assert r.activations == [], path.name
        assert not np.any(np.nan_to_num(r.outputs["fcw"]) > 0.5), path.name


def test_the_recordings_are_what_the_plugin_reads(suite: list[Path]) -> None:
    rec = load_recording(suite[0], suite[0].parents[1])
    assert rec.id.startswith("fleet/") and rec.scenario == "fleet"
    assert {b.name: b.exact for b in rec.expect} == {"brake": False, "fcw": False}


def test_generation_is_seeded_and_reproducible(tmp_path: Path) -> None:
    a = fleet.generate_fleet(tmp_path / "a", 0.03, seed=5, lengths=SHORT)
    b = fleet.generate_fleet(tmp_path / "b", 0.03, seed=5, lengths=SHORT)
    c = fleet.generate_fleet(tmp_path / "c", 0.03, seed=6, lengths=SHORT)
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    for pa, pb in zip(a, b, strict=True):
        assert pa.read_bytes() == pb.read_bytes()
        assert pa.with_suffix(".toml").read_bytes() == pb.with_suffix(".toml").read_bytes()
    assert [sidecar(p)["generator"] for p in a] != [sidecar(p)["generator"] for p in c]


def test_hours_add_up_in_recordings_of_a_few_minutes() -> None:
    scenarios = fleet.fleet_plan(2.0, seed=3)
    total = sum(sc.duration for sc in scenarios)
    assert total == pytest.approx(7200.0, abs=0.03 * len(scenarios))
    assert all(100.0 <= sc.duration <= 360.0 for sc in scenarios)
    kinds = {sc.tags[2] for sc in scenarios}
    assert kinds == set(fleet.KINDS)
    km = sum(sc.params["distance_m"] for sc in scenarios) / 1000.0
    assert 60.0 < km < 250.0  # a mix of queue traffic and highway speeds


def test_a_stop_and_go_drive_stops_and_pulls_away() -> None:
    rng = np.random.default_rng(0)
    ego, (lead,), _ = fleet.stop_and_go(rng, 120.0)
    t = np.arange(0.0, 120.0, 0.01)
    _, v, _ = ego.at(t)
    standing = v == 0.0
    assert standing[0] and (~standing).any()
    assert np.count_nonzero(np.diff(standing.astype(int)) == -1) >= 2  # pulls away twice
    assert (v >= 0.0).all()
    gap = lead.motion.at(t)[0] - ego.at(t)[0]
    assert gap.min() >= 7.0


def test_bad_hours_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError, match=r"--hours 0\.001 is too short"):
        fleet.fleet_plan(0.001)
    with pytest.raises(UsageError, match="planned by its length in hours"):
        plan("fleet")
    assert cli.main(["generate", str(tmp_path), "--suite", "fleet"]) == 2
    assert "--suite fleet needs --hours" in capsys.readouterr().err
    assert cli.main(["generate", str(tmp_path), "--hours", "1"]) == 2
    assert "--hours applies to --suite fleet" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_cli_writes_the_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["generate", str(tmp_path), "--suite", "fleet", "--hours", "0.05"]) == 0
    out, err = capsys.readouterr()
    paths = [Path(line) for line in out.splitlines()]
    assert len(paths) == 1 and paths[0].is_file() and paths[0].parent == tmp_path / "fleet"
    assert "wrote 1 fleet recordings" in err and "0.05 h, seed 0" in err


def test_no_expect_leaves_the_expect_table_out(tmp_path: Path) -> None:
    assert cli.main(["generate", str(tmp_path), "--suite", "fleet", "--hours", "0.05"]) == 0
    assert cli.main(["generate", str(tmp_path / "n"), "--suite", "fleet", "--hours", "0.05",
                     "--no-expect"]) == 0  # fmt: skip
    with_expect = sidecar(next((tmp_path / "fleet").glob("*.mf4")))
    without = sidecar(next((tmp_path / "n" / "fleet").glob("*.mf4")))
    assert "expect" not in without and with_expect["expect"] == {"brake": False, "fcw": False}
    assert (
        without["tags"] == with_expect["tags"] and without["generator"] == with_expect["generator"]
    )
    rec = load_recording(next((tmp_path / "n" / "fleet").glob("*.mf4")), tmp_path / "n")
    assert rec.expect == () and "false-activation" in rec.tags  # still eligible for the rates

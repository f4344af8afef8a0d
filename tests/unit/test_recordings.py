"""Discovery, ids, sidecars and expectation checking."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pytest_adsreplay.errors import SidecarError, UsageError
from pytest_adsreplay.recordings import (
    Bound,
    check_expectations,
    discover,
    glob_recordings,
    parse_expect,
)
from pytest_adsreplay.recordings.discovery import walk_once


def _touch(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_directory_is_searched_recursively_case_insensitive_and_sorted(tmp_path: Path) -> None:
    for name in ("b/z.mf4", "a/y.MF4", "a/x.mf4", "c/notes.txt", "top.Mf4"):
        _touch(tmp_path / name)
    recs = discover([tmp_path])
    assert [r.id for r in recs] == ["a/x.mf4", "a/y.MF4", "b/z.mf4", "top.Mf4"]
    assert all(r.root == tmp_path.resolve() for r in recs)


def test_file_glob_and_several_roots(tmp_path: Path) -> None:
    for name in ("s1/a.mf4", "s1/b.mf4", "s2/c.mf4"):
        _touch(tmp_path / name)
    assert [r.id for r in discover([tmp_path / "s1/a.mf4"])] == ["a.mf4"]
    assert [r.id for r in discover([Path(f"{tmp_path}/s*/[bc].mf4")])] == ["s1/b.mf4", "s2/c.mf4"]
    assert [r.id for r in discover([tmp_path / "s2", tmp_path / "s1"])] == [
        "s1/a.mf4",
        "s1/b.mf4",
        "s2/c.mf4",
    ]
    # the same file named twice is one recording
    assert len(discover([tmp_path / "s1", tmp_path / "s1/a.mf4"])) == 2


def test_nothing_found_and_missing_paths_are_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"no \*.mf4 recordings found in .*empty \(from ini\)"):
        discover([tmp_path / "empty"], source="ini")
    with pytest.raises(UsageError, match="does not exist"):
        discover([tmp_path / "nope"])
    with pytest.raises(UsageError, match="no recordings given"):
        discover([])


def test_sidecar_fields_and_selection(tmp_path: Path) -> None:
    _touch(tmp_path / "a.mf4")
    _touch(
        tmp_path / "a.toml",
        'scenario = "CCRs"\ntags = ["ncap", "ccrs"]\nnominal_speed = 40\n'
        'description = "d"\n[expect]\nbrake = true\nttc_at_brake = [1.0, 2.2]\n',
    )
    _touch(tmp_path / "b.mf4")
    a, b = discover([tmp_path])
    assert (a.scenario, a.tags, a.nominal_speed, a.description) == (
        "CCRs",
        ("ncap", "ccrs"),
        40.0,
        "d",
    )
    assert a.expect == (Bound("brake", exact=True), Bound("ttc_at_brake", lo=1.0, hi=2.2))
    assert b.sidecar is None and b.expect == ()
    assert a.matches(pattern="a.*") and not b.matches(pattern="a.*")
    assert a.matches(tags="ncap") and a.matches(tags=["ncap", "ccrs"])
    assert not a.matches(tags=["ncap", "ccrm"]) and not b.matches(tags="ncap")
    assert a.matches(scenario=["CCRm", "CCRs"]) and not a.matches(scenario="CCRm")


def test_broken_sidecar_flags_only_its_recording(tmp_path: Path) -> None:
    _touch(tmp_path / "a.mf4")
    _touch(tmp_path / "a.toml", "[expect]\nttc = [1, 2]\n")
    _touch(tmp_path / "b.mf4")
    a, b = discover([tmp_path])
    assert a.problem and "unknown KPI 'ttc'" in a.problem and b.problem is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"nope": 1}, "unknown KPI 'nope'"),
        ({"ttc_at_brake": [1]}, r"must be \[min, max\]"),
        ({"ttc_at_brake": [2, 1]}, "min 2.0 > max 1.0"),
        ({"ttc_at_brake": {"min": "a"}}, "must be a number"),
        ({"ttc_at_brake": {"low": 1}}, "takes {min"),
        ({"ttc_at_brake": "1.5"}, "must be a bool, a number"),
        ({"collision": 0}, "must be true or false"),
    ],
)
def test_parse_expect_errors(table: dict, message: str) -> None:
    with pytest.raises(SidecarError, match=message):
        parse_expect(table, Path("x.toml"))


def test_check_expectations_reports_every_violation() -> None:
    bounds = parse_expect(
        {
            "brake": True,
            "fcw": False,
            "ttc_at_brake": [1.0, 2.0],
            "fcw_lead_time": {"min": 0.8},
            "collision": False,
            "impact_speed": {"max": 1.0},
            "activations": {"max": 1},
            "min_ttc": 0.5,
        },
        Path("x.toml"),
    )
    kpis: dict[str, Any] = {
        "brake_time": None,
        "fcw_time": 1.0,
        "ttc_at_brake": None,
        "fcw_lead_time": 0.5,
        "collision": True,
        "impact_speed": 3.0,
        "activations": [{}, {}],
        "min_ttc": 0.5,
    }
    out = {v.bound.name: v for v in check_expectations(bounds, kpis)}
    assert set(out) == {
        "brake",
        "fcw",
        "ttc_at_brake",
        "fcw_lead_time",
        "collision",
        "impact_speed",
        "activations",
    }
    assert out["fcw_lead_time"].delta == pytest.approx(-0.3)
    assert out["impact_speed"].delta == pytest.approx(2.0)
    assert "None (never happened)" in out["ttc_at_brake"].describe()
    # in the KPI's SI unit, as the bounds are (no unit for flags, events and counts)
    assert out["ttc_at_brake"].describe().endswith("expected in [1, 2] s")
    assert out["impact_speed"].describe() == (
        "impact_speed = 3.000 m/s, expected <= 1 m/s (off by +2.000 m/s)"
    )
    assert out["fcw_lead_time"].describe() == (
        "fcw_lead_time = 0.500 s, expected >= 0.8 s (off by -0.300 s)"
    )
    assert out["brake"].describe() == "brake = False, expected == True"
    assert out["collision"].describe() == "collision = True, expected == False"
    assert out["activations"].observed == 2
    assert check_expectations(bounds[2:3], {"ttc_at_brake": 1.5}) == []


def test_fifo_and_other_non_regular_files_are_flagged_never_opened(tmp_path: Path) -> None:
    _touch(tmp_path / "ok.mf4")
    os.mkfifo(tmp_path / "pipe.mf4")  # opening it would block until someone writes
    (tmp_path / "loop.mf4").symlink_to("loop.mf4")
    (tmp_path / "dangling.mf4").symlink_to("gone.mf4")
    recs = {r.id: r for r in discover([tmp_path])}
    assert set(recs) == {"ok.mf4", "pipe.mf4", "loop.mf4", "dangling.mf4"}
    assert recs["ok.mf4"].rejected is None
    pipe = recs["pipe.mf4"]
    assert pipe.rejected is not None and "named pipe (FIFO)" in pipe.rejected
    assert "pipe.mf4" in pipe.rejected and pipe.error == pipe.rejected
    # a metadata selection never opens it either
    assert pipe.metadata == {} and not pipe.matches(metadata={"vehicle": "*"})
    loop = recs["loop.mf4"].rejected or ""
    assert "symlink loop" in loop and "re-export" not in loop
    assert "gone.mf4" in (recs["dangling.mf4"].rejected or "")
    # the FIFO named on its own is found (not "does not exist") and flagged
    (only,) = discover([tmp_path / "pipe.mf4"])
    assert only.rejected


def test_recursive_glob_with_symlinks_to_dot_is_linear(tmp_path: Path) -> None:
    d = tmp_path / "d"
    for i in range(3):
        _touch(d / f"s{i}" / "x.mf4")
    for i in range(4):  # each link back to "." doubled glob.glob's walk per level
        (d / f"loop{i}").symlink_to(".")
    # budget: entries visited, not seconds (glob.glob would visit millions here)
    visited = sum(1 for _ in walk_once(d, None))
    assert visited <= 3 * 2 + 4
    recs = discover([Path(f"{d}/**/*.mf4")])
    assert [r.id for r in recs] == ["s0/x.mf4", "s1/x.mf4", "s2/x.mf4"]


def test_glob_semantics_match_the_standard_glob(tmp_path: Path) -> None:
    import glob as std_glob

    for name in ("a/x.mf4", "a/b/y.mf4", "a/.hidden/z.mf4", "a/.w.mf4", "c/b/q.MF4", "r.mf4"):
        _touch(tmp_path / name)
    for pattern in ("**/*.mf4", "a/**/*.mf4", "*/b/*.mf4", "**/*.[mM][fF]4", "a/*.mf4", "*"):
        text = f"{tmp_path}/{pattern}"
        want = sorted(p for p in std_glob.glob(text, recursive=True) if p.lower().endswith(".mf4"))
        _, got = glob_recordings(text)
        assert sorted(str(p) for p in got) == want, pattern


def test_any_sidecar_parse_failure_flags_only_its_recording(tmp_path: Path) -> None:
    _touch(tmp_path / "deep.mf4")
    _touch(tmp_path / "deep.toml", "x = " + "{ a = " * 500 + "1" + " }" * 500 + "\n")
    _touch(tmp_path / "bin.mf4")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00bad")
    _touch(tmp_path / "good.mf4")
    recs = {r.id: r for r in discover([tmp_path])}
    assert recs["good.mf4"].problem is None
    assert "deep.toml" in (recs["deep.mf4"].problem or "")
    assert "bin.toml" in (recs["bin.mf4"].problem or "")


def test_a_glob_keeps_the_real_path_when_a_link_also_leads_there(tmp_path: Path) -> None:
    _touch(tmp_path / "real" / "x.mf4")
    (tmp_path / "alias").symlink_to("real")  # sorts before "real"
    _touch(tmp_path / ".git" / "y.mf4")  # hidden folders are not entered by ** or *
    recs = discover([Path(f"{tmp_path}/**/*.mf4")])
    assert [r.id for r in recs] == ["real/x.mf4"]

"""Discovery, ids, sidecars and expectation checking."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_adsreplay.errors import SidecarError, UsageError
from pytest_adsreplay.recordings import Bound, check_expectations, discover, parse_expect


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
    kpis = {
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
    assert out["activations"].observed == 2
    assert check_expectations(bounds[2:3], {"ttc_at_brake": 1.5}) == []

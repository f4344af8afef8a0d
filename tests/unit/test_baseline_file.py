"""Baseline file format, tolerances, comparison and messages (no pytest session)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from pytest_adsreplay.errors import UsageError
from pytest_adsreplay.results import baseline as bl

KPIS = {
    "fcw_time": 3.5,
    "brake_time": 4.5,
    "ttc_at_fcw": 2.4999999999999996,
    "ttc_at_brake": 1.4999999999999991,
    "fcw_lead_time": 1.0,
    "min_ttc": math.inf,
    "max_decel": 9.0,
    "activations": [{"start": 4.5, "end": 5.39, "peak_decel": 9.0, "ttc_at_start": 1.5}],
    "collision": False,
    "impact_speed": 0.0,
    "min_distance": 6.354718257030129,
    "recorded_brake_time": None,
    "target_id_at_brake": None,
    "reacted_to_at_brake": None,
    "braked_for_out_of_path": None,
}


def _now(**changes: object) -> dict[str, Any]:
    return bl.entry({**KPIS, **changes}, "a" * 64)


def test_entry_rounds_floats_and_spells_infinity_and_counts() -> None:
    e = bl.entry(KPIS, "abc")
    assert e["sha256"] == "abc"
    k = e["kpis"]
    assert k["ttc_at_fcw"] == 2.5 and k["ttc_at_brake"] == 1.5
    assert k["min_ttc"] == "inf"
    assert k["min_distance"] == 6.354718
    assert k["activations"] == 1
    assert k["collision"] is False and k["recorded_brake_time"] is None
    assert set(k) == set(bl.KIND)
    assert bl.encode("min_ttc", -math.inf) == "-inf"
    assert bl.encode("brake_time", -1e-9) == 0.0  # no "-0.0" in the file


def test_file_text_is_stable_for_review(tmp_path: Path) -> None:
    path = tmp_path / "b" / "baseline.json"
    bl.write(path, {"z/b.mf4": _now(), "a/a.mf4": _now(brake_time=4.6)})
    text = path.read_text()
    assert text.endswith("}\n") and "\n  " in text  # indent 2, trailing newline
    data = json.loads(text)  # strict JSON: no Infinity/NaN tokens
    assert list(data["recordings"]) == ["a/a.mf4", "z/b.mf4"]
    assert list(data["recordings"]["a/a.mf4"]["kpis"]) == sorted(bl.KIND)
    assert data["format"] == 1 and data["units"]["impact_speed"] == "m/s"
    # rewriting the same content gives the same bytes, and no temp file is left behind
    bl.write(path, {"a/a.mf4": _now(brake_time=4.6)})
    assert path.read_text() == text
    assert [p.name for p in path.parent.iterdir()] == ["baseline.json"]


def test_write_merges_and_removes(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    bl.write(path, {"a.mf4": _now(), "b.mf4": _now()})
    out = bl.write(path, {"c.mf4": _now()}, remove=["a.mf4"])
    assert sorted(out.entries) == ["b.mf4", "c.mf4"]
    assert sorted(bl.load(path).entries) == ["b.mf4", "c.mf4"]


def test_load_missing_malformed_and_foreign_files(tmp_path: Path) -> None:
    missing = bl.load(tmp_path / "none.json")
    assert not missing.exists and missing.entries == {}
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "format": 1,\n  "recordings": {,}\n}\n')
    with pytest.raises(UsageError, match=r"bad.json is not valid JSON \(line 3"):
        bl.load(bad)
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"a": 1}\n')
    with pytest.raises(UsageError, match="is not a pytest-adsreplay baseline"):
        bl.load(foreign)


def test_stale_entries_name_recordings_that_are_gone(tmp_path: Path) -> None:
    b = bl.Baseline(tmp_path, {"a.mf4": {}, "a.mf4 [p12345678]": {}, "gone.mf4": {}}, True)
    assert b.stale(["a.mf4", "new.mf4"]) == ["gone.mf4"]
    assert bl.recording_of("a.mf4 [p12345678]") == "a.mf4"
    assert bl.entry_key("a.mf4", "p1") == "a.mf4 [p1]"


# -- tolerances ---------------------------------------------------------------------------
def test_default_tolerances() -> None:
    tol = bl.Tolerances()
    assert tol.of("brake_time", 0.02) == 0.02  # one cycle
    assert tol.of("fcw_lead_time", 0.01) == 0.01
    assert tol.of("ttc_at_brake", 0.01) == 0.05
    assert tol.of("impact_speed", 0.01) == pytest.approx(0.5 / 3.6)
    assert tol.of("min_distance", 0.01) == 0.1
    assert tol.of("collision", 0.01) == 0.0
    assert tol.of("activations", 0.01) == 0.0


def test_parse_tolerances_numbers_units_and_ignore() -> None:
    tol = bl.parse_tolerances(
        '{ brake_time = 0.02, impact_speed = "1 km/h", min_distance = "30 cm", '
        'fcw_lead_time = "50 ms", recorded_brake_time = "ignore", activations = 1 }',
        "tox.ini",
    )
    assert tol.of("brake_time", 0.01) == 0.02
    assert tol.of("impact_speed", 0.01) == pytest.approx(1 / 3.6)
    assert tol.of("min_distance", 0.01) == pytest.approx(0.3)
    assert tol.of("fcw_lead_time", 0.01) == pytest.approx(0.05)
    assert tol.of("recorded_brake_time", 0.01) is None
    assert tol.of("activations", 0.01) == 1
    assert bl.parse_tolerances("", "ini") == bl.Tolerances()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{ brake_tme = 0.1 }", "unknown KPI; did you mean brake_time?"),
        ("{ collision = 0.5 }", "collision is compared exactly"),
        ("{ brake_time = -1 }", "must be a finite number >= 0"),
        ('{ impact_speed = "1 m" }', "'m' is not a unit of speed"),
        ('{ brake_time = "fast" }', "expected a number"),
        ("{ activations = 0.5 }", "use a whole number"),
        ("brake_time = 1", "is not a TOML inline table"),
    ],
)
def test_bad_tolerances_name_the_key_and_source(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        bl.parse_tolerances(text, "pytest.ini")
    assert "adsreplay_baseline_tolerances" in str(info.value)
    assert "pytest.ini" in str(info.value)
    assert message in str(info.value)


# -- comparison ---------------------------------------------------------------------------
def _check(base: dict | None, now: dict, tol: bl.Tolerances | None = None) -> bl.Check:
    return bl.check("a.mf4", base, now, tol or bl.Tolerances(), 0.01)


def test_within_tolerance_passes_and_beyond_regresses() -> None:
    base = _now()
    assert _check(base, _now(brake_time=4.51, ttc_at_brake=1.46)).verdict == "pass"
    c = _check(base, _now(brake_time=4.52))
    assert c.verdict == "regressed"
    assert [d.name for d in c.regressions] == ["brake_time"]
    assert c.regressions[0].delta == pytest.approx(0.02)
    loose = bl.parse_tolerances("{ brake_time = 0.05 }", "ini")
    assert _check(base, _now(brake_time=4.52), loose).verdict == "pass"


def test_events_booleans_counts_and_infinity_compare_exactly() -> None:
    base = _now()
    assert _check(base, _now(brake_time=None)).regressions[0].name == "brake_time"
    assert _check(base, _now(collision=True)).regressions[0].name == "collision"
    two = [KPIS["activations"][0]] * 2  # type: ignore[index]
    assert _check(base, _now(activations=two)).regressions[0].name == "activations"
    assert _check(base, _now(min_ttc=math.inf)).verdict == "pass"
    assert _check(base, _now(min_ttc=3.0)).regressions[0].name == "min_ttc"
    ignored = bl.parse_tolerances('{ min_ttc = "ignore" }', "ini")
    assert _check(base, _now(min_ttc=3.0), ignored).verdict == "pass"


def test_new_and_changed_recordings() -> None:
    assert _check(None, _now()).verdict == "new"
    moved = bl.entry(KPIS, "b" * 64)
    c = _check(_now(), moved)
    assert c.verdict == "changed" and c.sha_changed and not c.regressions


def test_outdated_entry_is_rewritten_only_when_asked() -> None:
    base = _now()
    del base["kpis"]["recorded_brake_time"]
    c = _check(base, _now())
    assert c.verdict == "pass" and c.entry_differs
    # a KPI the entry does not have yet (new in the registry) is not compared, even when
    # it has a value now: the entry is only outdated
    c = _check(base, _now(recorded_brake_time=4.4))
    assert c.verdict == "pass" and c.entry_differs
    assert "recorded_brake_time" not in [d.name for d in c.diffs]


def test_delta_table_shows_every_kpi_with_impact_in_kmh() -> None:
    c = _check(_now(), _now(brake_time=4.8, impact_speed=2.0, collision=True))
    text = "\n".join(bl.delta_table(c.diffs))
    lines = text.splitlines()
    assert lines[0].split() == ["KPI", "baseline", "now", "delta", "tolerance"]
    assert "brake_time [s]" in text
    row = next(line for line in lines if line.startswith("brake_time"))
    assert row.split() == [
        "brake_time",
        "[s]",
        "4.500",
        "4.800",
        "+0.300",
        "0.010",
        "<<",
        "regressed",
    ]
    row = next(line for line in lines if line.startswith("impact_speed"))
    assert row.split()[2:6] == ["0.000", "7.200", "+7.200", "0.500"]
    row = next(line for line in lines if line.startswith("collision"))
    assert row.split()[1:5] == ["no", "yes", "changed", "exact"]


def test_failure_texts_say_what_happened_and_what_next() -> None:
    c = _check(_now(), _now(brake_time=4.8))
    text = bl.failure_text(c, "tests/baseline.json", updated=False)
    assert text.startswith("a.mf4: 1 KPI(s) regressed against the baseline tests/baseline.json")
    assert "--adsreplay-update-baseline" in text
    text = bl.failure_text(c, "tests/baseline.json", updated=True)
    assert "the baseline entry was rewritten in tests/baseline.json" in text
    new = bl.failure_text(_check(None, _now()), "b.json", updated=False)
    assert "no entry in the baseline b.json" in new and "brake_time=4.500" in new
    added = bl.failure_text(_check(None, _now()), "b.json", updated=True)
    assert "added it to b.json" in added
    changed = bl.failure_text(_check(_now(), bl.entry(KPIS, "b" * 64)), "b.json", updated=False)
    assert "the recording changed since the baseline was written (sha256 aaaaaaaaaaaa…" in changed
    assert "its KPIs are within tolerance" in changed
    stale = bl.stale_text(["x.mf4"], "b.json", updated=False)
    assert "1 baseline entry of b.json name recordings that no longer exist" in stale


def test_session_writes_only_with_the_update_flag(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    bl.write(path, {"a.mf4": _now(), "gone.mf4": _now()})
    tol = bl.Tolerances()
    checking = bl.BaselineSession(path, tol, update=False, shown="baseline.json")
    v = checking.check("a.mf4", {**KPIS, "brake_time": 4.8}, "a" * 64, None, 0.01)
    assert v.verdict == "regressed" and v.update is None and v.message
    checking.record(v.key, v.verdict, v.update)
    checking.finish(["a.mf4"])
    assert sorted(bl.load(path).entries) == ["a.mf4", "gone.mf4"]
    summary = checking.summary(["a.mf4"])
    assert summary[0] == (
        "baseline baseline.json: 1 checked, 0 passed, 1 regressed, 0 new, "
        "0 changed recording(s), 1 stale entry"
    )
    assert "  stale (recording gone): gone.mf4" in summary

    updating = bl.BaselineSession(path, tol, update=True, shown="baseline.json")
    v = updating.check("a.mf4", {**KPIS, "brake_time": 4.8}, "a" * 64, None, 0.01)
    assert v.update is not None and "rewritten" in str(v.message)
    same = updating.check("b.mf4", KPIS, "a" * 64, {"late": 0.3}, 0.01)
    assert same.verdict == "new" and same.update == bl.entry(KPIS, "a" * 64, {"late": 0.3})
    updating.record(v.key, v.verdict, json.dumps(v.update))
    updating.record(same.key, same.verdict, same.update)
    updating.finish(["a.mf4", "b.mf4"])
    entries = bl.load(path).entries
    assert sorted(entries) == ["a.mf4", "b.mf4"]
    assert entries["a.mf4"]["kpis"]["brake_time"] == 4.8
    assert entries["b.mf4"]["params"] == {"late": 0.3}
    assert "  removed stale: gone.mf4" in updating.summary(["a.mf4", "b.mf4"])


def test_unchanged_entry_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    bl.write(path, {"a.mf4": _now()})
    session = bl.BaselineSession(path, bl.Tolerances(), update=True, shown="b")
    v = session.check("a.mf4", {**KPIS, "brake_time": 4.505}, "a" * 64, None, 0.01)
    assert v.verdict == "pass" and v.update is None and v.message is None


# -- direction of change ------------------------------------------------------------------
def test_improvement_beyond_tolerance_passes_and_is_reported_separately() -> None:
    c = _check(_now(), _now(fcw_time=3.2, fcw_lead_time=1.3))  # warning 0.3 s earlier
    assert c.verdict == "improved" and not c.regressions
    assert [d.name for d in c.improvements] == ["fcw_time", "fcw_lead_time"]
    assert bl.improvement_note(c) == "fcw_time -0.300 s, fcw_lead_time +0.300 s"
    row = next(line for line in bl.delta_table(c.diffs) if line.startswith("fcw_lead_time"))
    assert row.split()[2:] == ["1.000", "1.300", "+0.300", "0.010", "improved"]
    text = bl.failure_text(c, "b.json", updated=True)  # only shown when the entry is rewritten
    assert text.startswith("a.mf4: 2 KPI(s) improved against the baseline b.json (none regressed)")


def test_worsening_beyond_tolerance_regresses_in_the_kpis_direction() -> None:
    c = _check(_now(), _now(fcw_lead_time=0.7))
    assert c.verdict == "regressed" and [d.name for d in c.regressions] == ["fcw_lead_time"]
    assert not c.improvements
    assert _check(_now(), _now(fcw_lead_time=1.005)).verdict == "pass"  # within tolerance
    # lower is better for impact speed and collision, higher for the gap
    assert _check(_now(), _now(min_distance=7.0)).verdict == "improved"
    assert _check(_now(), _now(min_distance=6.0)).verdict == "regressed"
    hit = _now(collision=True, impact_speed=3.0, min_distance=0.0)
    c = _check(hit, _now())
    assert c.verdict == "improved"
    assert {d.name for d in c.improvements} == {"collision", "impact_speed", "min_distance"}
    assert bl.improvement_note(c).startswith("collision yes -> no, impact_speed -10.800 km/h")
    assert _check(_now(), hit).verdict == "regressed"
    # two-sided KPIs regress either way; an event that appears or vanishes always regresses
    assert _check(_now(), _now(max_decel=9.5)).verdict == "regressed"
    assert _check(_now(), _now(max_decel=8.5)).verdict == "regressed"
    assert _check(_now(), _now(activations=[])).verdict == "regressed"
    assert _check(_now(), _now(fcw_lead_time=None)).verdict == "regressed"
    assert _check(_now(fcw_time=None), _now()).verdict == "regressed"
    ignored = bl.parse_tolerances('{ min_distance = "ignore" }', "ini")
    assert _check(_now(), _now(min_distance=7.0), ignored).verdict == "pass"


def test_regression_with_improvements_lists_both() -> None:
    c = _check(_now(), _now(brake_time=4.8, fcw_lead_time=1.3))  # braking later
    assert c.verdict == "regressed"
    assert [d.name for d in c.regressions] == ["brake_time"]
    text = bl.failure_text(c, "b.json", updated=False)
    assert text.startswith("a.mf4: 1 KPI(s) regressed, 1 improved against the baseline b.json:")
    assert "<< regressed" in text and text.count("  improved") == 1


def test_session_reports_improvements_without_failing(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    bl.write(path, {"a.mf4": _now()})
    text = path.read_text()
    checking = bl.BaselineSession(path, bl.Tolerances(), update=False, shown="baseline.json")
    earlier = {**KPIS, "fcw_time": 3.2, "fcw_lead_time": 1.3}
    v = checking.check("a.mf4", earlier, "a" * 64, None, 0.01)
    assert (v.verdict, v.message, v.update) == ("improved", None, None)
    assert v.improved == "fcw_time -0.300 s, fcw_lead_time +0.300 s"
    owner = bl.BaselineSession(path, bl.Tolerances(), update=False, shown="baseline.json")
    owner.record(v.key, v.verdict, v.update, v.improved)  # as the xdist controller does
    owner.finish(["a.mf4"])
    assert path.read_text() == text
    summary = owner.summary(["a.mf4"])
    assert summary[0].startswith(
        "baseline baseline.json: 1 checked, 0 passed, 1 improved, 0 regressed"
    )
    assert "    a.mf4: fcw_time -0.300 s, fcw_lead_time +0.300 s" in summary
    # with the update flag the improvement becomes the new baseline (and the item fails)
    updating = bl.BaselineSession(path, bl.Tolerances(), update=True, shown="baseline.json")
    v = updating.check("a.mf4", earlier, "a" * 64, None, 0.01)
    assert v.verdict == "improved" and v.update is not None
    assert str(v.message).startswith("a.mf4: 2 KPI(s) improved against the baseline")


def test_file_is_byte_identical_to_the_format_before_the_registry(tmp_path: Path) -> None:
    two = {
        **KPIS,
        "collision": True,
        "impact_speed": 3.0000000000000004,
        "min_distance": 0.0,
        "fcw_time": None,
        "fcw_lead_time": None,
        "ttc_at_fcw": None,
        "recorded_brake_time": 4.123456789,
    }
    entries = {
        "a/a.mf4": bl.entry(KPIS, "a" * 64),
        "b/x.mf4 [p1234abcd]": bl.entry(two, "b" * 64, {"late": 0.3}),
    }
    assert bl.dumps(entries) == GOLDEN


GOLDEN = """{
  "about": "pytest-adsreplay KPI baseline: rewrite entries with --adsreplay-update-baseline and review the diff; floats rounded to 1e-6, infinity as \\"inf\\", null = never happened, activations = number of braking events",
  "format": 1,
  "recordings": {
    "a/a.mf4": {
      "kpis": {
        "activations": 1,
        "brake_time": 4.5,
        "braked_for_out_of_path": null,
        "collision": false,
        "fcw_lead_time": 1.0,
        "fcw_time": 3.5,
        "impact_speed": 0.0,
        "max_decel": 9.0,
        "min_distance": 6.354718,
        "min_ttc": "inf",
        "reacted_to_at_brake": null,
        "recorded_brake_time": null,
        "target_id_at_brake": null,
        "ttc_at_brake": 1.5,
        "ttc_at_fcw": 2.5
      },
      "sha256": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    },
    "b/x.mf4 [p1234abcd]": {
      "kpis": {
        "activations": 1,
        "brake_time": 4.5,
        "braked_for_out_of_path": null,
        "collision": true,
        "fcw_lead_time": null,
        "fcw_time": null,
        "impact_speed": 3.0,
        "max_decel": 9.0,
        "min_distance": 0.0,
        "min_ttc": "inf",
        "reacted_to_at_brake": null,
        "recorded_brake_time": 4.123457,
        "target_id_at_brake": null,
        "ttc_at_brake": 1.5,
        "ttc_at_fcw": null
      },
      "params": {
        "late": 0.3
      },
      "sha256": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
    }
  },
  "units": {
    "activations": "count",
    "brake_time": "s",
    "braked_for_out_of_path": "bool",
    "collision": "bool",
    "fcw_lead_time": "s",
    "fcw_time": "s",
    "impact_speed": "m/s",
    "max_decel": "m/s²",
    "min_distance": "m",
    "min_ttc": "s",
    "reacted_to_at_brake": "",
    "recorded_brake_time": "s",
    "target_id_at_brake": "",
    "ttc_at_brake": "s",
    "ttc_at_fcw": "s"
  }
}
"""

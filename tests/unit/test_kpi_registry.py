"""The KPI registry: every table that names a KPI derives from it; JUnit rounding; directions."""

from __future__ import annotations

import dataclasses
import math
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from pytest_adsreplay import kpi
from pytest_adsreplay.kpi import compute, registry
from pytest_adsreplay.replay import ReplayResult
from pytest_adsreplay.reporting import html, text
from pytest_adsreplay.results import baseline, history, store
from pytest_adsreplay.signals import quality


def _replay(n: int = 200) -> dict[str, object]:
    t = np.round(np.arange(n) * 0.01, 10)
    signals = {
        "ego_speed": np.full(n, 10.0),
        "target_distance": 30.0 - 10.0 * t,
        "target_rel_speed": np.full(n, -10.0),
    }
    outputs = {"fcw": (t >= 0.5).astype(float), "aeb_decel": np.where(t >= 1.0, 6.0, 0.0)}
    return compute.compute_kpis(t, signals, outputs)


def test_every_kpi_has_one_spec_and_one_compute_function() -> None:
    names = [s.name for s in registry.KPIS]
    assert len(names) == len(set(names))
    assert tuple(names) == registry.KPI_NAMES
    kpis = _replay()
    assert tuple(kpis) == registry.KPI_NAMES
    assert kpis["fcw_lead_time"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="add a KpiSpec"):
        compute.kpi_function("not_a_kpi")
    with pytest.raises(ValueError, match="registered twice"):
        compute.kpi_function("fcw_time")(lambda k: None)
    with pytest.raises(KeyError, match="did you mean brake_time"):
        registry.spec("brake_tme")


def test_every_kpi_table_derives_from_the_registry() -> None:
    assert tuple((s.name, s.column) for s in registry.KPIS) == store.KPI_COLUMNS
    assert dict(store.KPI_COLUMNS)["collision"] == "INTEGER"
    assert dict(store.KPI_COLUMNS)["activations"] == "TEXT"
    assert tuple(baseline.KIND) == registry.KPI_NAMES
    assert baseline.KIND["impact_speed"] == "speed"
    assert {s.name for s in registry.KPIS if s.needs_target} == quality.TARGET_KPIS
    assert [n for n, _ in html.KPI_ROWS] == list(registry.SCALAR_KPIS)
    assert dict(html.KPI_ROWS)["impact_speed"] == "impact speed [km/h]"
    assert set(history.HEADINGS) == set(registry.KPI_NAMES)
    summary = dict(text.SUMMARY_COLUMNS)
    assert summary["fcw_lead_time"] == "FCW lead [s]" and summary["impact_speed"] == "impact [km/h]"
    fields = {f.name for f in dataclasses.fields(ReplayResult)}
    assert set(registry.KPI_NAMES) <= fields  # each built-in KPI is a typed attribute
    for view in (history.TREND_KPIS, history.COMPARE_KPIS, text.SUMMARY_KPIS, html.INDEX_KPIS):
        assert set(view) <= set(registry.KPI_NAMES)
    assert kpi.KPI_NAMES is registry.KPI_NAMES and kpi.compute_kpis is compute.compute_kpis


def test_shown_units_and_formats() -> None:
    impact = registry.spec("impact_speed")
    assert (impact.unit, impact.display_unit, impact.column_heading) == (
        "m/s",
        "km/h",
        "impact [km/h]",
    )
    assert impact.format(2.0) == "7.2" and impact.format(0) == "0.0"
    assert registry.format_value("brake_time", 4.5) == "4.500"
    assert registry.format_value("min_ttc", math.inf) == "inf"
    assert registry.format_value("collision", True) == "yes"
    assert registry.format_value("brake_time", None) == "-"
    assert registry.format_value("scenario", "CCRs") == "CCRs"  # not a KPI: as is
    assert text.fmt_value("impact_speed", 1.0) == "3.6"
    assert registry.spec("collision").file_unit == "bool"
    assert registry.spec("activations").file_unit == "count"


def test_junit_values_are_rounded_to_the_kpis_resolution() -> None:
    lead = registry.spec("fcw_lead_time")
    noisy = 5.3100000000000005
    assert str(noisy) != "5.31"
    assert str(lead.junit(noisy)) == "5.31"
    assert str(lead.junit(4.51 - 3.5)) == "1.01"
    assert lead.junit(-1e-9) == 0.0 and str(lead.junit(-1e-9)) == "0.0"
    assert lead.junit(None) is None
    assert registry.junit_value("min_ttc", math.inf) == math.inf
    assert registry.junit_value("collision", True) is True
    assert registry.junit_value("activations", [{"start": 1.0}, {"start": 2.0}]) == 2
    assert registry.junit_value("not_a_kpi", 0.1 + 0.2) == 0.1 + 0.2


def test_better_directions() -> None:
    assert registry.spec("fcw_lead_time").better == "higher"
    assert registry.spec("impact_speed").better == "lower"
    assert registry.spec("min_distance").better == "higher"
    assert registry.spec("max_decel").better is None
    lead = registry.spec("fcw_lead_time")
    assert lead.compare(0.3, 0.01) == "better"
    assert lead.compare(-0.3, 0.01) == "worse"
    assert lead.compare(0.005, 0.01) == "same"
    assert lead.compare(math.nan, 0.01) == "worse"
    assert registry.spec("max_decel").compare(0.3, 0.1) == "worse"
    assert registry.spec("max_decel").compare(-0.3, 0.1) == "worse"


def test_junit_properties_carry_no_float_noise(project: pytest.Pytester) -> None:
    project.makepyfile(test_f="def test_f(replay):\n    assert replay.brake_time\n")
    late = "adsreplay_function_params={ late = 0.01 }"  # brake_time 4.51 on a 10 ms grid
    result = project.runpytest("--recordings=recs", "--junitxml=out.xml", "-o", late)
    result.assert_outcomes(passed=4)
    tree = ET.parse(project.path / "out.xml")
    case = next(c for c in tree.iter("testcase") if "a40" in c.get("name", ""))
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["adsreplay.brake_time"] == "4.51"
    assert props["adsreplay.fcw_lead_time"] == "1.01"
    for name, value in props.items():
        if name and name.startswith("adsreplay.") and value and value[0].isdigit():
            assert len(value.partition(".")[2]) <= 3, (name, value)


def test_a_database_made_before_a_kpi_existed_gets_its_column(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    store.open_store(str(db))
    with sqlite3.connect(db) as con:  # as if recorded_brake_time had been added since
        con.execute("ALTER TABLE results DROP COLUMN recorded_brake_time")
    results = store.open_store(str(db))
    results.start_run("r1", function="m:f")
    results.write_result("r1", "a.mf4", status="ok", kpis=_replay())
    (row,) = results.results("r1")
    assert row.kpis["fcw_time"] == pytest.approx(0.5)
    assert "recorded_brake_time" in row.kpis

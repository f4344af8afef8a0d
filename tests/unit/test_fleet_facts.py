"""A recording's fleet facts from its replay and sidecar; the fleet table of the HTML index."""

from __future__ import annotations

import html
import math
import re
from pathlib import Path

import numpy as np
import pytest

from pytest_adsreplay import replay_file
from pytest_adsreplay.fleet import facts_from_replay, fleet_stats
from pytest_adsreplay.fleet.stats import group_stats
from pytest_adsreplay.recordings import load_recording
from pytest_adsreplay.reporting.html import IndexRow, write_index

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings"
REFERENCE = "pytest_adsreplay.reference:TtcAeb"
#: One-sided 95 % Poisson upper bound of the mean for 0 events: -ln(0.05).
ZERO_EVENTS_UPPER = -math.log(0.05)


def test_facts_of_a_false_activation_drive() -> None:
    path = RECORDINGS / "false-activation" / "steady_following_2s.mf4"
    rec = load_recording(path, RECORDINGS)
    r = replay_file(path, REFERENCE)
    f = facts_from_replay(rec, "ok", True, r.kpis, r.t, r.signals, r.outputs)
    assert f.recording == "false-activation/steady_following_2s.mf4"
    assert f.scenario == "false-activation" and f.tags == ("false-activation", "following")
    assert f.expect_brake is False and f.expect_fcw is False
    assert f.no_activation_expected and f.no_warning_expected
    assert f.activations == () and f.warnings == ()
    # 30 s around 70 km/h (gentle changes of 0.8 m/s up and back down)
    assert f.duration_s == pytest.approx(30.0, abs=0.06)
    assert f.distance_m == pytest.approx(70 / 3.6 * 30.0, rel=0.03)


def test_facts_of_an_ncap_run_with_its_events() -> None:
    path = RECORDINGS / "ncap" / "CCRs_40kph.mf4"
    rec = load_recording(path, RECORDINGS)
    r = replay_file(path, REFERENCE)
    kpis = {**r.kpis, "target_id_at_brake": 7.0, "braked_for_out_of_path": True}
    f = facts_from_replay(rec, "ok", True, kpis, r.t, r.signals, r.outputs)
    assert f.scenario == "CCRs" and f.expect_brake is True and f.expect_fcw is True
    assert not f.no_activation_expected
    (act,) = f.activations
    assert act.t == pytest.approx(r.brake_time) and act.peak_decel == pytest.approx(9.0)
    assert act.target_id == 7 and act.out_of_path
    assert [w.t for w in f.warnings] == [pytest.approx(r.fcw_time)]
    # braking for an object out of the path is a false activation even where braking is due
    g = group_stats("all", [f])
    assert g.false_activations.count == 1 and g.activations == 1 and g.warnings == 1
    assert g.false_activations.km == 0.0  # no eligible exposure: it is not a fleet drive
    plain = facts_from_replay(rec, "ok", True, r.kpis, r.t, r.signals, r.outputs)
    assert plain.activations[0].target_id is None and not plain.activations[0].out_of_path


def test_facts_of_an_invalid_recording_without_arrays() -> None:
    rec = load_recording(RECORDINGS / "ncap" / "CCRs_40kph.mf4", RECORDINGS)
    f = facts_from_replay(rec, "invalid", False, {}, np.zeros(0), {}, {}, label="x [p1]")
    assert (f.recording, f.status, f.valid) == ("x [p1]", "invalid", False)
    assert (f.distance_m, f.duration_s, f.activations, f.warnings) == (0.0, 0.0, (), ())


def test_the_index_shows_the_fleet_statistics(tmp_path: Path) -> None:
    path = RECORDINGS / "false-activation" / "steady_following_2s.mf4"
    rec = load_recording(path, RECORDINGS)
    r = replay_file(path, REFERENCE)
    facts = [facts_from_replay(rec, "ok", True, r.kpis, r.t, r.signals, r.outputs)]
    rows = [IndexRow(rec.id, "passed", None, {"scenario": rec.scenario})]
    without = write_index(tmp_path / "a", rows, {"run": "r1"})
    assert "Fleet statistics" not in without.read_text(encoding="utf-8")
    index = write_index(tmp_path / "b", rows, {"run": "r1"}, fleet_stats(facts))
    text = index.read_text(encoding="utf-8")
    assert '<h2 id="fleet-statistics">Fleet statistics</h2>' in text
    table = text.split('id="fleet-statistics"', 1)[1].split("</table>", 1)[0]
    cells = [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", table)]
    groups = [c for c in cells if c.startswith(("all", "scenario ", "tag "))]
    assert groups == ["all", "scenario false-activation", "tag false-activation", "tag following"]
    km = facts[0].distance_m / 1000.0
    first = cells[: cells.index("scenario false-activation")]
    assert first[:8] == [
        "all",
        "1",
        "0",
        f"{km:,.1f}",
        f"{facts[0].duration_s / 3600:,.2f}",
        "0",
        "0",
        "0",
    ]
    # 0 events: the estimate is 0, the upper bound -ln(0.05) / exposure
    assert first[8] == f"{0:.2f} ({ZERO_EVENTS_UPPER / km * 1000:.2f})"
    hours = facts[0].duration_s / 3600.0
    assert first[9] == f"{0:.2f} ({ZERO_EVENTS_UPPER / hours:.2f})"
    assert first[11] == "1/1 = 1.00 [0.03, 1.00]"

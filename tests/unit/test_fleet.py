"""Fleet statistics, gates and the Markdown summary against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from markdown_it import MarkdownIt
from scipy.stats import binomtest

from pytest_adsreplay.errors import UsageError
from pytest_adsreplay.fleet import (
    Event,
    KpiChange,
    RecordingFacts,
    Summary,
    clopper_pearson,
    evaluate,
    exposure,
    fleet_stats,
    lower_bound,
    onsets,
    parse_gates,
    poisson_upper,
    render,
    stats_lines,
)
from pytest_adsreplay.fleet.stats import group_stats, merge


def test_exposure_of_a_constant_speed_drive() -> None:
    t = np.arange(0, 100.0 + 1e-9, 0.01)
    km, s = exposure(t, np.full_like(t, 20.0))
    assert km == pytest.approx(2000.0) and s == pytest.approx(100.0)


def test_exposure_skips_intervals_without_speed() -> None:
    t = np.arange(0, 10.0 + 1e-9, 1.0)
    v = np.full_like(t, 10.0)
    v[3] = np.nan  # the intervals 2-3 and 3-4 are unknown
    m, s = exposure(t, v)
    assert m == pytest.approx(80.0) and s == pytest.approx(8.0)


def test_onsets() -> None:
    t = np.arange(8) * 0.5
    assert onsets(t, np.array([0, 1, 1, 0, np.nan, 1, 0, 1])) == [0.5, 2.5, 3.5]


# Garwood's exact one-sided 95 % upper limits of a Poisson mean (published tables)
@pytest.mark.parametrize(
    ("k", "upper"),
    [(0, 2.996), (1, 4.744), (2, 6.296), (3, 7.754), (4, 9.154), (5, 10.513), (10, 16.962)],
)
def test_poisson_upper_bound_matches_the_tables(k: int, upper: float) -> None:
    assert poisson_upper(k, 1.0) == pytest.approx(upper, abs=1e-3)
    assert poisson_upper(k, 2.0) == pytest.approx(upper / 2, abs=1e-3)


@pytest.mark.parametrize(("x", "n"), [(0, 5), (3, 10), (9, 10), (10, 10), (47, 50), (1, 1)])
def test_clopper_pearson_matches_scipy(x: int, n: int) -> None:
    ci = binomtest(x, n).proportion_ci(confidence_level=0.95, method="exact")
    lo, hi = clopper_pearson(x, n)
    assert lo == pytest.approx(ci.low, abs=1e-12) and hi == pytest.approx(ci.high, abs=1e-12)


def test_one_sided_lower_bound() -> None:
    # 10 of 10 passed: the one-sided 95 % lower bound is 0.05 ** (1/10)
    assert lower_bound(10, 10) == pytest.approx(0.05**0.1)
    assert lower_bound(0, 10) == 0.0


def test_events_less_than_a_second_apart_are_one() -> None:
    ev = [Event("a", 1.0, 3.0), Event("a", 1.5, 9.0, 7), Event("a", 2.6, 4.0), Event("b", 2.7)]
    merged = merge(ev)
    assert [(e.recording, e.t, e.peak_decel) for e in merged] == [
        ("a", 1.0, 9.0),
        ("a", 2.6, 4.0),
        ("b", 2.7, None),
    ]
    assert merged[0].target_id == 7


def _fa(rec: str, km: float, *acts: Event, **kw: object) -> RecordingFacts:
    return RecordingFacts(
        recording=rec,
        tags=("false-activation",),
        distance_m=km * 1000,
        duration_s=km / 72.0 * 3600,  # at 72 km/h
        activations=acts,
        **kw,  # type: ignore[arg-type]
    )


def test_false_activations_and_their_exposure() -> None:
    facts = [
        _fa("fa/a.mf4", 100.0, Event("fa/a.mf4", 12.0, 9.0, 7)),
        _fa("fa/b.mf4", 300.0),
        # the sidecar says braking is expected: not eligible although tagged
        _fa("fa/c.mf4", 50.0, Event("fa/c.mf4", 3.0, 9.0), expect_brake=True),
        # invalid: excluded and counted apart
        _fa("fa/d.mf4", 500.0, Event("fa/d.mf4", 3.0, 9.0), status="invalid"),
        # an NCAP run that braked for an object out of the path
        RecordingFacts(
            "ncap/x.mf4",
            scenario="CCRs",
            expect_brake=True,
            distance_m=1000.0,
            duration_s=60.0,
            activations=(Event("ncap/x.mf4", 4.0, 9.0, 3, out_of_path=True),),
        ),
    ]
    g = group_stats("all", facts)
    assert g.invalid == 1 and g.recordings == 5
    assert g.false_activations.count == 2
    assert g.false_activations.km == pytest.approx(400.0)
    assert g.false_activations.per_1000km == pytest.approx(5.0)
    assert g.false_activations.upper95_per_1000km == pytest.approx(6.296 / 0.4, abs=1e-2)
    assert g.km == pytest.approx(451.0)


def test_groups_per_scenario_and_tag_and_the_table() -> None:
    facts = [
        RecordingFacts("a", scenario="CCRs", tags=("ncap",), passed=True),
        RecordingFacts("b", scenario="CCRs", tags=("ncap",), passed=False, status="failed"),
        RecordingFacts("c", scenario="CCRm", tags=("ncap",), status="error", passed=False),
    ]
    names = [g.name for g in fleet_stats(facts)]
    assert names == ["all", "scenario CCRm", "scenario CCRs", "tag ncap"]
    ccrs = fleet_stats(facts)[2]
    assert (ccrs.pass_rate.passed, ccrs.pass_rate.runs) == (1, 2)
    lines = stats_lines(fleet_stats(facts))
    assert lines[0].startswith("group") and "1/2 = 0.50" in lines[4]


GATES = {
    "false_activations_per_1000km": {"max": 0.5, "bound": "upper95"},
    "fa_estimate": {"metric": "false_activations_per_1000km", "max": 10},
    "ncap_pass_rate": {"metric": "pass_rate", "scenario": "CCR*", "min": 0.9},
}


def test_gates_pass_and_fail_with_their_numbers_and_events() -> None:
    facts = [_fa("fa/a.mf4", 1000.0, Event("fa/a.mf4", 312.4, 9.0, 7)), _fa("fa/b.mf4", 580.0)]
    facts += [RecordingFacts(f"ncap/{i}.mf4", scenario="CCRs") for i in range(9)]
    facts += [RecordingFacts("ncap/9.mf4", scenario="CCRs", passed=False, status="failed")]
    upper, estimate, pass_rate = (evaluate(g, facts) for g in parse_gates(GATES, "test"))
    assert not upper.passed
    assert upper.text.splitlines()[0].startswith(
        "gate false_activations_per_1000km: 0.633 per 1000 km (upper 95 %: 3; "
        "1 events in 1,580 km, 21.9 h) exceeds max 0.5"
    )
    assert "- fa/a.mf4 t=312.40 s, peak 9.0 m/s², target id 7" in upper.text
    assert "even 0 events need 5,991 km" in upper.text
    assert estimate.passed and "within max 10" in estimate.text
    assert pass_rate.passed and "pass rate 0.900" in pass_rate.text
    assert pass_rate.properties["runs"] == "10" and upper.properties["events"] == "1"


def test_a_gate_without_data_fails_and_a_narrowed_gate_says_so() -> None:
    (gate,) = parse_gates({"false_warnings_per_hour": {"max": 2}}, "test")
    result = evaluate(gate, [RecordingFacts("a")], narrowed="2 of 37 recordings selected")
    assert not result.passed and "no exposure" in result.text
    assert "[narrowed: 2 of 37 recordings selected]" in result.text


def test_pass_rate_lower_bound_is_stricter() -> None:
    facts = [RecordingFacts(f"{i}", scenario="CCRs") for i in range(10)]
    (gate,) = parse_gates({"p": {"metric": "pass_rate", "min": 0.9, "bound": "lower95"}}, "t")
    result = evaluate(gate, facts)
    assert not result.passed and "lower 95 %: 0.741" in result.text


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"nope": {"max": 1}}, "unknown metric 'nope'"),
        ({"false_warnings_per_hour": {"maximum": 1}}, "unknown key 'maximum'"),
        ({"false_warnings_per_hour": {"max": "low"}}, "max = 'low' is not a number"),
        ({"false_warnings_per_hour": {"max": 1, "bound": "lower95"}}, "does not apply"),
        ({"pass_rate": {"min": 0.9, "bound": "upper95"}}, "does not apply"),
        ({"pass_rate": {}}, "neither max nor min"),
        ({"pass_rate": 0.9}, "must be a table"),
    ],
)
def test_malformed_gates_are_usage_errors_naming_the_key(
    tables: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(")) as err:
        parse_gates(tables, "adsreplay_gates in pytest.ini")
    assert "pytest.ini" in str(err.value)


def test_markdown_summary_is_commonmark_with_tables() -> None:
    facts = [_fa("fa/a.mf4", 1000.0, Event("fa/a.mf4", 312.4, 9.0, 7))]
    gates = [evaluate(g, facts) for g in parse_gates(GATES, "test")[:2]]
    text = render(
        Summary(
            outcomes={"passed": 55, "failed": 2, "error": 1},
            gates=gates,
            failures=[("ncap/CCRs_40kph.mf4::expect", "brake_time 4.81 s above max 4.6 | late")],
            changes=[KpiChange("ncap/CCRs_40kph.mf4", "brake_time", "4.510", "4.810", "+0.300")],
            unchanged=55,
            compared_with="run 20261202T030000-abc123",
            stats=fleet_stats(facts),
        )
    )
    assert text.startswith("## AEB replay: FAILED\n")
    assert "1 changed, 55 unchanged" in text
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    kinds = [t.type for t in tokens]
    assert kinds.count("table_open") == 4  # gates, failures, fleet statistics, KPI changes
    cells = [t.content for t in tokens if t.type == "inline"]
    assert "false_activations_per_1000km" in cells and "**FAIL**" in cells
    assert "brake_time 4.81 s above max 4.6 | late" in cells  # the pipe escaped, not a column
    assert all(len(line) < 400 for line in text.splitlines())
    assert math.isfinite(len(text))


def test_an_errored_recording_is_a_run_that_did_not_pass() -> None:
    """A function that crashes on the recordings it would fail must not pass a pass-rate
    gate on the ones left."""
    facts = [
        RecordingFacts("a", scenario="CCRs", passed=True),
        RecordingFacts("b", scenario="CCRs", status="error", passed=False),
        RecordingFacts("c", scenario="CCRs", status="invalid", passed=False),
    ]
    g = fleet_stats(facts)[0]
    assert (g.pass_rate.passed, g.pass_rate.runs) == (1, 2)
    (gate,) = parse_gates({"pr": {"metric": "pass_rate", "min": 0.9}}, "test")
    result = evaluate(gate, facts)
    assert not result.passed
    assert "  - b errored" in result.text.splitlines()


@pytest.mark.parametrize("n", [1, 2, 7, 30, 250, 4000])
def test_the_pure_python_beta_and_gamma_quantiles_match_scipy(n: int) -> None:
    """The bounds' special functions (plain Python, so no session imports scipy) agree
    with scipy.special to far below the printed digits."""
    from scipy import special

    from pytest_adsreplay.fleet import stats

    for x in sorted({1, n // 3 or 1, n // 2 or 1, n}):
        for q in (0.025, 0.05, 0.5, 0.95, 0.975):
            for a, b in ((x, n - x + 1), (x + 1, n - x)):
                if b > 0:
                    want = special.betaincinv(a, b, q)
                    assert stats.betaincinv(a, b, q) == pytest.approx(want, rel=1e-9, abs=1e-300)
                    assert stats.betainc(a, b, want) == pytest.approx(q, rel=1e-9)
    for k in (0, 1, 5, n):
        for q in (0.05, 0.5, 0.95, 0.99):
            assert stats.gammaincinv(k + 1, q) == pytest.approx(
                special.gammaincinv(k + 1, q), rel=1e-10
            )
    assert stats.betaincinv(2, 3, 0.0) == 0.0 and stats.betaincinv(2, 3, 1.0) == 1.0
    assert stats.gammaincinv(3, 0.0) == 0.0

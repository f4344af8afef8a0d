"""Fleet gates as test outcomes, the statistics section and the Markdown summary."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from adsreplay_testkit import write_approach
from markdown_it import MarkdownIt

GATES = (
    "{ false_activations_per_1000km = { max = 0.0 }, "
    'ncap_pass_rate = { metric = "pass_rate", scenario = "CCR*", min = 0.5 } }'
)


@pytest.fixture
def fleet(project: pytest.Pytester) -> pytest.Pytester:
    """The three approach recordings plus one tagged false-activation drive on which the
    test function brakes: one false activation."""
    write_approach(
        project.path / "recs" / "fa" / "x.mf4",
        ego_kph=50,
        sidecar='scenario = "fleet"\ntags = ["false-activation"]\n',
    )
    project.makepyfile(test_all="def test_replayed(replay):\n    pass\n")
    return project


def _gates_ini(p: pytest.Pytester, gates: str = GATES) -> None:
    p.makeini(
        f"""
        [pytest]
        adsreplay_function = aebfn:Ttc
        adsreplay_db = results.sqlite
        adsreplay_gates = {gates}
        """
    )


def test_gates_are_outcomes_with_their_numbers(fleet: pytest.Pytester) -> None:
    _gates_ini(fleet)
    result = fleet.runpytest("--recordings=recs", "-v", "--junitxml=out.xml")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*adsreplay::gate?false_activations_per_1000km? FAILED*",
            "*adsreplay::gate?ncap_pass_rate? PASSED*",
            "*gate false_activations_per_1000km: * per 1000 km (upper 95 %: *; 1 events in *"
            " exceeds max 0*",
            "*- fa/x.mf4 t=*, peak 9.0 m/s²*",
            "*adsreplay fleet statistics*",
        ]
    )
    cases = {c.get("name"): c for c in ET.parse(fleet.path / "out.xml").iter("testcase")}
    gate = cases["gate[false_activations_per_1000km]"]
    assert gate.find("failure") is not None
    props = {p.get("name"): p.get("value") for p in gate.iter("property")}
    assert props["adsreplay.gate.events"] == "1"
    assert cases["gate[ncap_pass_rate]"].find("failure") is None


def test_gates_pass_and_the_run_passes(fleet: pytest.Pytester) -> None:
    _gates_ini(fleet, "{ false_activations_per_hour = { max = 10000 } }")
    result = fleet.runpytest("--recordings=recs", "-v")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*adsreplay::gate?false_activations_per_hour? PASSED*"])


def test_gates_under_xdist_are_evaluated_on_the_controller(fleet: pytest.Pytester) -> None:
    _gates_ini(fleet)
    result = fleet.runpytest_subprocess("--recordings=recs", "-n", "2", "-v")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["*gate?false_activations_per_1000km? FAILED*", "*1 events in*exceeds max 0*"]
    )
    result.stdout.no_fnmatch_line("*narrowed*")


def test_a_narrowed_selection_keeps_the_gate_and_says_so(fleet: pytest.Pytester) -> None:
    _gates_ini(fleet)
    result = fleet.runpytest("--recordings=recs", "-v", "-k", "x.mf4 and not expect")
    result.stdout.fnmatch_lines(["*gate false_activations_per_1000km:*[[]narrowed: 1 of 4 *"])


def test_a_malformed_gate_is_a_usage_error_naming_the_key(fleet: pytest.Pytester) -> None:
    _gates_ini(fleet, "{ false_activations_per_1000km = { maximum = 1 } }")
    result = fleet.runpytest("--recordings=recs")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*unknown key 'maximum'*adsreplay_gates*"])


def test_markdown_summary_and_github_step_summary(
    fleet: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _gates_ini(fleet)
    step = fleet.path / "step.md"
    step.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    fleet.runpytest("--recordings=recs", "--adsreplay-summary-md=summary.md")
    text = (fleet.path / "summary.md").read_text()
    assert text.startswith("## AEB replay: FAILED")
    assert step.read_text() == "earlier step\n" + text
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    cells = [t.content for t in tokens if t.type == "inline"]
    assert "false_activations_per_1000km" in cells and "**FAIL**" in cells
    assert any(c.startswith("adsreplay::gate[false_activations_per_1000km]") for c in cells)


def test_kpi_changes_against_the_previous_run(fleet: pytest.Pytester) -> None:
    fleet.runpytest("--recordings=recs")
    result = fleet.runpytest(
        "--recordings=recs",
        "--adsreplay-compare-run=previous",
        "--adsreplay-summary-md=summary.md",
        "-o",
        "adsreplay_function_params={ brake_ttc = 1.2 }",
    )
    assert result.ret in (0, 1)
    text = (fleet.path / "summary.md").read_text()
    assert "### KPI changes against run " in text
    assert "4 changed, 0 unchanged" in text
    assert "| ccrs/a40.mf4 | brake_time |" in text

"""The merge-request summary in CommonMark: outcomes, gates, failures and KPI changes.

Written to ``--adsreplay-summary-md FILE`` and appended to ``$GITHUB_STEP_SUMMARY`` when
that is set. Plain pipe tables and short lines, so the file reads well in a terminal too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pytest_adsreplay.fleet.gates import GateResult
from pytest_adsreplay.fleet.stats import GroupStats

#: Rows of a table before "… and N more".
MAX_ROWS = 50


@dataclass(frozen=True)
class KpiChange:
    """One KPI of one recording that differs from the reference run or baseline."""

    recording: str
    kpi: str
    before: str
    after: str
    delta: str = ""


@dataclass(frozen=True)
class Summary:
    """Everything the Markdown summary shows."""

    outcomes: Mapping[str, int]
    gates: Sequence[GateResult] = ()
    failures: Sequence[tuple[str, str]] = ()  # (test or recording id, message)
    changes: Sequence[KpiChange] = ()
    unchanged: int = 0
    compared_with: str | None = None  # "baseline FILE" or "run RUN_ID"; None: no comparison
    stats: Sequence[GroupStats] = field(default=())
    title: str = "AEB replay"
    #: pytest's exit status (None: not known): a non-zero one is never summarized as
    #: passed (collection errors, an interrupted run, a failing results database, …)
    exit_status: int | None = None


def cell(text: object) -> str:
    """Text safe inside a pipe-table cell: one line, pipes and backticks escaped."""
    line = str(text).splitlines()[0] if str(text) else ""
    return line.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`").strip()


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows[:MAX_ROWS]]
    if len(rows) > MAX_ROWS:
        lines.append("")
        lines.append(f"… and {len(rows) - MAX_ROWS} more rows.")
    return lines


def _verdict(s: Summary) -> str:
    bad = sum(s.outcomes.get(k, 0) for k in ("failed", "error", "errors"))
    gates_bad = sum(1 for g in s.gates if not g.passed)
    exit_bad = s.exit_status is not None and int(s.exit_status) != 0
    return "FAILED" if bad or gates_bad or exit_bad else "passed"


def _stats_section(stats: Sequence[GroupStats]) -> list[str]:
    rows = []
    for g in stats:
        fa = g.false_activations
        pr = g.pass_rate
        lo, hi = pr.interval95
        fa_text = "n/a" if fa.per_1000km is None else f"{fa.per_1000km:.2f}"
        if fa.upper95_per_1000km is not None:
            fa_text += f" (≤ {fa.upper95_per_1000km:.2f})"
        rate = "n/a" if pr.rate is None else f"{pr.passed}/{pr.runs} [{lo:.2f}, {hi:.2f}]"
        rows.append(
            (
                g.name,
                g.recordings,
                g.invalid,
                f"{g.km:.1f}",
                f"{g.hours:.2f}",
                fa.count,
                fa_text,
                rate,
            )
        )
    head = ("group", "recordings", "invalid", "km", "h", "false act.", "per 1000 km (up. 95 %)")
    return ["### Fleet statistics", "", *_table((*head, "pass rate [95 % CI]"), rows), ""]


def render(s: Summary) -> str:
    """The summary as CommonMark text."""
    counts = " · ".join(f"{n} {k}" for k, n in s.outcomes.items() if n)
    out = [f"## {s.title}: {_verdict(s)}", "", f"**Outcomes:** {counts or 'nothing ran'}", ""]
    if s.exit_status:
        out += [f"**pytest exit status:** {int(s.exit_status)}", ""]
    if s.gates:
        out += ["### Gates", ""]
        rows = [
            (g.gate.name, "pass" if g.passed else "**FAIL**", g.text.partition(": ")[2])
            for g in s.gates
        ]
        out += [*_table(("gate", "result", "figures"), rows), ""]
        for g in s.gates:
            events = g.text.splitlines()[1:]
            if not g.passed and events:
                out += [f"Events behind `{g.gate.name}`:", ""]
                out += [f"- {cell(e.strip().removeprefix('- '))}" for e in events]
                out.append("")
    if s.failures:
        out += ["### Failing recordings", ""]
        out += [*_table(("test", "message"), s.failures), ""]
    if s.stats:
        out += _stats_section(s.stats)
    if s.compared_with:
        out += [f"### KPI changes against {s.compared_with}", ""]
        out.append(f"{len({c.recording for c in s.changes})} changed, {s.unchanged} unchanged")
        out.append("")
        if s.changes:
            changes = [(c.recording, c.kpi, c.before, c.after, c.delta) for c in s.changes]
            out += [*_table(("recording", "KPI", "before", "after", "Δ"), changes), ""]
    return "\n".join(out).rstrip() + "\n"

"""Text formatting: the session header, the KPI summary table, failure messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_adsreplay.kpi.registry import format_value, headings
from pytest_adsreplay.recordings import Violation

#: The KPIs of the terminal summary, one row per recording (headings from the registry).
SUMMARY_KPIS = (
    "fcw_time",
    "brake_time",
    "ttc_at_brake",
    "fcw_lead_time",
    "collision",
    "impact_speed",
)
SUMMARY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("recording", "recording"),
    ("scenario", "scenario"),
    *headings(SUMMARY_KPIS),
    ("outcome", "outcome"),
)
PROPERTY_PREFIX = "adsreplay."
OUTCOME_RANK = {"passed": 0, "skipped": 1, "failed": 2, "invalid": 3, "error": 4}


def fmt_value(name: str, value: Any) -> str:
    """A KPI as a table cell in the KPI's shown unit and precision (seconds with 3
    decimals, impact speed in km/h with 1), '-' for None."""
    return format_value(name, value)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Plain fixed-width text table."""
    rows = [list(r) for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, r, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return out


def summary_lines(rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The terminal summary: one row per recording, sorted by id."""
    body = []
    for rid in sorted(rows):
        row = rows[rid]
        body.append(
            [
                rid if key == "recording" else fmt_value(key, row.get(key))
                for key, _ in SUMMARY_COLUMNS
            ]
        )
    return table([h for _, h in SUMMARY_COLUMNS], body)


def worst(a: str | None, b: str) -> str:
    if a is None:
        return b
    return a if OUTCOME_RANK.get(a, 0) >= OUTCOME_RANK.get(b, 0) else b


def expectation_failure(recording: str, sidecar: str, violations: Sequence[Violation]) -> str:
    """Every violated bound of a sidecar at once, with values, deltas and the next step."""
    lines = [f"{recording}: {len(violations)} expectation(s) of {sidecar} violated:"]
    lines += [f"  - {v.describe()}" for v in violations]
    lines.append(
        "  -> replay it alone with pytest_adsreplay.replay_file() and plot outputs['aeb_decel'] "
        "against signals['t']; if the new behaviour is intended, update the sidecar's [expect]"
    )
    return "\n".join(lines)


def outcome_failure(recording: str, status: str, stage: str | None, error: str | None) -> str:
    """Message for a replay that did not produce KPIs."""
    what = {
        "failed": "the function under test failed",
        "invalid": "invalid recording (data quality too poor to judge the function)",
        "error": "the replay could not run",
    }.get(status, status)
    where = f" in the {stage} stage" if stage else ""
    text = f"{recording}: {what}{where}"
    if error:
        body = error
        if body.startswith(f"{recording}: "):
            body = body[len(recording) + 2 :]
        text += f"\n{body}"
    return text

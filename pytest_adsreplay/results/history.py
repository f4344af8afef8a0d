"""Run history on the results database: KPI trends and run-to-run comparisons (text).

``adsreplay history`` lists the runs (or one recording's KPIs over the runs), newest first;
``adsreplay history --stats [RUN]`` shows a run's fleet statistics;
``adsreplay compare A B`` shows per-recording KPI deltas from run A to run B, new failures
and fixed failures. A recording *fails* in a run when its replay did not end ``ok``
(function failed, error, invalid recording) or when the projected outcome is a collision.
"""

from __future__ import annotations

import difflib
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

from pytest_adsreplay.errors import UsageError
from pytest_adsreplay.kpi.registry import KPIS, get
from pytest_adsreplay.reporting.text import fmt_value, table

TREND_KPIS = (
    "fcw_time",
    "brake_time",
    "ttc_at_brake",
    "fcw_lead_time",
    "min_distance",
    "collision",
    "impact_speed",
)
COMPARE_KPIS = (
    "fcw_time",
    "brake_time",
    "ttc_at_brake",
    "fcw_lead_time",
    "min_ttc",
    "max_decel",
    "min_distance",
    "impact_speed",
    "collision",
)
HEADINGS = {s.name: s.column_heading for s in KPIS}
EQUAL = 1e-9  # deltas below this are float noise


def _when(ts: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(float(ts))) if ts else "-"


def _commit(run: dict[str, Any]) -> str:
    """The commit, marked ``+dirty`` when the working tree had uncommitted changes."""
    commit = str(run.get("git_commit") or "-")[:10]
    return commit + ("+dirty" if run.get("git_dirty") else "")


def _build(run: dict[str, Any]) -> str:
    """The short fingerprint of the function under test the run tested."""
    return str(run.get("function_fingerprint") or "-")[:12]


def _rid(row: Any) -> str:
    return str(row.recording_id) + (f" [{row.variant}]" if row.variant else "")


def failing(row: Any) -> bool:
    """Not ``ok``, or a projected collision."""
    return row.status != "ok" or bool(row.kpis.get("collision"))


def _state(row: Any) -> str:
    if row is None:
        return "-"
    if row.status != "ok":
        return str(row.status)
    return "collision" if row.kpis.get("collision") else "ok"


def _cell(name: str, row: Any) -> str:
    value = row.kpis.get(name)
    spec = get(name)
    if spec is not None and spec.kind == "events":
        return str(len(value or []))
    return fmt_value(name, value)


def resolve_run(store: Any, ref: str) -> str:
    """A run id from ``ref``: an id, a unique prefix, ``latest`` or ``previous``."""
    runs = store.runs()
    if not runs:
        raise UsageError(f"no runs in the results database {store_label(store)}")
    if ref in ("latest", "last"):
        return str(runs[0]["run_id"])
    if ref == "previous":
        if len(runs) < 2:
            raise UsageError("there is no previous run (the database holds one run)")
        return str(runs[1]["run_id"])
    ids = [str(r["run_id"]) for r in runs]
    if ref in ids:
        return ref
    matches = [i for i in ids if i.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(f"run {ref!r} is ambiguous: {', '.join(matches[:5])}")
    close = difflib.get_close_matches(ref, ids, n=3)
    hint = f"did you mean {', '.join(close)}?" if close else "see 'adsreplay history' for run ids"
    raise UsageError(f"no run {ref!r} in the results database {store_label(store)}", hint=hint)


def store_label(store: Any) -> str:
    from pytest_adsreplay.urls import mask_url

    return mask_url(str(store.url))


# -- history ---------------------------------------------------------------------------------
def runs_lines(store: Any, limit: int = 20) -> list[str]:
    """One line per run, newest first: when, commit, function, counts per status."""
    runs = store.runs()[:limit]
    if not runs:
        return [f"no runs in the results database {store_label(store)}"]
    counts = store.status_counts()
    rows = []
    for run in runs:
        c = counts.get(run["run_id"], {})
        total = sum(v for k, v in c.items() if k != "collisions")
        rows.append(
            [
                str(run["run_id"]),
                _when(run.get("started_at")),
                _commit(run),
                str(run.get("function") or "-"),
                _build(run),
                str(total),
                str(c.get("ok", 0)),
                str(c.get("collisions", 0)),
                str(c.get("failed", 0)),
                str(c.get("error", 0)),
                str(c.get("invalid", 0)),
                "-" if run.get("exit_status") is None else str(run["exit_status"]),
            ]
        )
    head = [
        "run",
        "started",
        "commit",
        "function",
        "build",
        "recordings",
        "ok",
        "collisions",
        "failed",
        "error",
        "invalid",
        "exit",
    ]
    return [line.rstrip() for line in table(head, rows)]


def recording_lines(
    store: Any, recording: str, limit: int = 20, kpis: Sequence[str] = TREND_KPIS
) -> list[str]:
    """One recording's KPIs over the runs, newest first (a trend, one row per run)."""
    hist = store.history(recording, limit)
    if not hist:
        known = store.recording_ids()
        close = difflib.get_close_matches(recording, known, n=3, cutoff=0.5)
        hint = (
            f"did you mean {', '.join(close)}?"
            if close
            else (f"{len(known)} recordings have results; omit RECORDING to list the runs")
        )
        raise UsageError(
            f"no results for recording {recording!r} in {store_label(store)}", hint=hint
        )
    variants = any(row.variant for _, row in hist)
    head = ["run", "started", "commit", "build"] + (["variant"] if variants else [])
    head.append("status")
    head += [HEADINGS.get(k, k) for k in kpis]
    rows = []
    for run, row in hist:
        cells = [str(run["run_id"]), _when(run.get("started_at")), _commit(run), _build(run)]
        cells += [row.variant or "-"] if variants else []
        cells.append(row.status)
        cells += [_cell(k, row) for k in kpis]
        rows.append(cells)
    lines = [line.rstrip() for line in table(head, rows)]
    return [f"{recording}: {len(hist)} result(s), newest first", *lines]


# -- fleet statistics ------------------------------------------------------------------------
def stats_lines(store: Any, ref: str = "latest", listed: int = 10) -> list[str]:
    """A run's fleet statistics as stored with it (``ref``: id, prefix, latest, previous),
    and the false activations and warnings behind them."""
    from pytest_adsreplay.fleet.stats import stats_lines as table_lines

    run_id = resolve_run(store, ref)
    run = store.run(run_id) or {"run_id": run_id}
    groups = store.read_stats(run_id)
    head = (
        f"run {run_id} ({_when(run.get('started_at'))}, commit {_commit(run)}, "
        f"function {run.get('function') or '-'})"
    )
    if not groups:
        return [
            f"{head}: no fleet statistics stored",
            "  the run was made before they were stored, or ended before its summary; "
            "see 'adsreplay history' for other runs",
        ]
    lines = [f"{head}: fleet statistics", *table_lines(groups)]
    overall = groups[0]
    for kind, rate in (
        ("false activations", overall.false_activations),
        ("false warnings", overall.false_warnings),
    ):
        if rate.events:
            lines.append(f"{kind} ({overall.name}, {rate.count}):")
            lines += [f"  - {e.describe()}" for e in rate.events[:listed]]
            if len(rate.events) > listed:
                lines.append(f"  … and {len(rate.events) - listed} more")
    return lines


# -- compare ---------------------------------------------------------------------------------
def _delta(name: str, a: Any, b: Any) -> tuple[str, bool]:
    """(cell, changed): ``b (+delta)``, or ``a -> b`` for events appearing/vanishing."""
    va, vb = a.kpis.get(name), b.kpis.get(name)
    if isinstance(va, bool) or isinstance(vb, bool) or va is None or vb is None:
        changed = va != vb
        text = fmt_value(name, vb)
        return (f"{fmt_value(name, va)} -> {text}" if changed else text), changed
    fa, fb = float(va), float(vb)
    if math.isinf(fa) or math.isinf(fb):
        changed = fa != fb
        return (
            f"{fmt_value(name, fa)} -> {fmt_value(name, fb)}" if changed else fmt_value(name, fb)
        ), changed
    d = fb - fa
    if abs(d) <= EQUAL:
        return fmt_value(name, fb), False
    spec = get(name)
    if spec is not None:  # the change in the unit and precision the KPI is shown in
        return f"{fmt_value(name, fb)} ({spec.shown(d):+.{spec.decimals}f})", True
    return f"{fmt_value(name, fb)} ({d:+.3f})", True


def compare_lines(
    store: Any,
    run_a: str,
    run_b: str,
    *,
    show_all: bool = False,
    kpis: Sequence[str] = COMPARE_KPIS,
) -> list[str]:
    """Per-recording KPI deltas from run A to run B, then new and fixed failures."""
    a_id, b_id = resolve_run(store, run_a), resolve_run(store, run_b)
    runs = {r["run_id"]: r for r in store.runs()}
    rows_a = {_rid(r): r for r in store.results(a_id)}
    rows_b = {_rid(r): r for r in store.results(b_id)}
    lines = [
        _run_line("A", runs[a_id], len(rows_a)),
        _run_line("B", runs[b_id], len(rows_b)),
        *_build_notes(runs[a_id], runs[b_id]),
        "",
    ]
    body, unchanged = [], 0
    for rid in sorted(set(rows_a) & set(rows_b)):
        a, b = rows_a[rid], rows_b[rid]
        cells, changed = [], _state(a) != _state(b)
        for name in kpis:
            if a.status != "ok" or b.status != "ok":  # no KPIs on one side: B's values only
                text, moved = fmt_value(name, b.kpis.get(name)), False
            else:
                text, moved = _delta(name, a, b)
            cells.append(text)
            changed = changed or moved
        if not changed and not show_all:
            unchanged += 1
            continue
        state = _state(b) if _state(a) == _state(b) else f"{_state(a)} -> {_state(b)}"
        body.append([rid, state, *cells])
    head = ["recording", "A -> B", *(HEADINGS.get(k, k) for k in kpis)]
    if body:
        lines.append("KPIs of run B, (change from run A); impact speed in km/h")
        lines += [line.rstrip() for line in table(head, body)]
    else:
        lines.append("no KPI changed between the two runs")
    if unchanged:
        lines.append(f"({unchanged} recording(s) unchanged; --all lists them too)")
    common = sorted(set(rows_a) & set(rows_b))
    new = [r for r in common if failing(rows_b[r]) and not failing(rows_a[r])]
    fixed = [r for r in common if failing(rows_a[r]) and not failing(rows_b[r])]
    lines.append("")
    lines += _listing("new failures", new, rows_a, rows_b)
    lines += _listing("fixed failures", fixed, rows_a, rows_b)
    only_a = sorted(set(rows_a) - set(rows_b))
    only_b = sorted(set(rows_b) - set(rows_a))
    if only_a:
        lines.append(f"only in A ({len(only_a)}): {', '.join(only_a)}")
    if only_b:
        lines.append(f"only in B ({len(only_b)}): {', '.join(only_b)}")
    return lines


def _run_line(label: str, run: dict[str, Any], count: int) -> str:
    return (
        f"{label} = run {run['run_id']} ({_when(run.get('started_at'))}, commit {_commit(run)}, "
        f"function build {_build(run)}, {count} recordings)"
    )


def _build_notes(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """What to keep in mind about the two builds: uncommitted changes, same function."""
    notes = [
        f"note: run {label} was made from a working tree with uncommitted changes "
        f"(commit {str(run.get('git_commit') or '-')[:10]} does not describe it)"
        for label, run in (("A", a), ("B", b))
        if run.get("git_dirty")
    ]
    fa, fb = a.get("function_fingerprint"), b.get("function_fingerprint")
    if fa and fb:
        same = "the same build" if fa == fb else "different builds"
        notes.append(f"the two runs tested {same} of the function under test")
    return notes


def _listing(title: str, rids: Iterable[str], a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    rids = list(rids)
    if not rids:
        return [f"{title}: none"]
    return [f"{title} ({len(rids)}):"] + [
        f"  {r}: {_state(a[r])} -> {_state(b[r])}"
        + (f" ({_first_line(b[r].error)})" if b[r].error and b[r].status != "ok" else "")
        for r in rids
    ]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:120] if text.strip() else ""

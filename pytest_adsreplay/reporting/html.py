"""HTML report with plots (``--adsreplay-report DIR``): an index and one page per recording.

A recording's page (HTML + PNG) is written by the process that waited for its replay,
while the signals and outputs are still in Redis (the session deletes them at its end);
under pytest-xdist that is a worker. The index is written once at the end by the owner (a
plain session or the xdist controller) from the test reports' properties. matplotlib
(optional extra ``report``) is imported only here and only when a page is drawn; the
object-oriented API with the Agg canvas leaves pyplot's global state alone.
"""

from __future__ import annotations

import html
import math
import os
import re
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_adsreplay.kpi.registry import KPIS, headings
from pytest_adsreplay.reporting.text import OUTCOME_RANK, fmt_value

if TYPE_CHECKING:
    from pytest_adsreplay.fleet.stats import GroupStats

PAGES_DIR = "recordings"
INDEX = "index.html"
TTC_CLIP = 10.0  # s; larger TTCs (and +inf) are not drawn
#: The recording page's KPI table: every single-valued KPI of the registry, long labels.
KPI_ROWS: tuple[tuple[str, str], ...] = tuple((s.name, s.title) for s in KPIS if s.kind != "events")
#: The KPIs of the index, one row per recording (headings from the registry).
INDEX_KPIS = (
    "fcw_time",
    "brake_time",
    "ttc_at_brake",
    "fcw_lead_time",
    "min_distance",
    "collision",
    "impact_speed",
)
INDEX_COLUMNS: tuple[tuple[str, str], ...] = (
    ("scenario", "scenario"),
    ("outcome", "outcome"),
    *headings(INDEX_KPIS),
    ("baseline", "baseline"),
)
#: The plot's panels, top to bottom: y-axis labels (the page lists them under the image).
PANELS = (
    "speed [km/h]",
    "gap [m]",
    "TTC [s]",
    "decel [m/s²]",
    "target lateral offset [m]",
)
STATUS_START, STATUS_END = "<!--tests-->", "<!--/tests-->"
MARKERS = (("fcw_time", "FCW", "#e69f00"), ("brake_time", "brake", "#d55e00"))
PROJECTED = "#cc79a7"

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:20px 0 6px}
.meta{color:#555;margin:0 0 12px} table{border-collapse:collapse;margin:6px 0}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left} th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-weight:600}
.passed{background:#2e7d32}.failed{background:#c62828}.error{background:#6a1b9a}
.invalid{background:#ef6c00}.skipped{background:#757575}.none{background:#9e9e9e}
tr.bad td{background:#fff3f3} .caption{color:#555;font-size:12px}
pre{background:#f7f7f7;padding:8px;overflow-x:auto}
img{max-width:100%;border:1px solid #ddd}
"""


def page_name(key: str) -> str:
    """Path of a recording's page relative to the report directory (key: chain key)."""
    return f"{PAGES_DIR}/{key}.html"


def prepare(report_dir: Path, *, owner: bool) -> None:
    """Create the directory; the owner (before any xdist worker starts) deletes the index
    and pages of an earlier run, so the report never links a stale page. Other files in
    the directory are left alone."""
    (report_dir / PAGES_DIR).mkdir(parents=True, exist_ok=True)
    if not owner:
        return
    (report_dir / INDEX).unlink(missing_ok=True)
    for old in (report_dir / PAGES_DIR).iterdir():
        if old.suffix in (".html", ".png") and old.is_file():
            old.unlink()


def _write(path: Path, data: str | bytes) -> None:
    """Atomic: two xdist workers may write the same page; readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600: a web server as another user must read it
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _doc(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _badge(outcome: str | None, text: str | None = None) -> str:
    cls = outcome if outcome in OUTCOME_RANK else "none"
    return f'<span class="badge {cls}">{_e(text or outcome or "not run")}</span>'


def _table(
    headers: Iterable[str], rows: Iterable[Iterable[str]], *, row_class: Iterable[str] | None = None
) -> str:
    """Cells are HTML already (escape before)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    classes = list(row_class) if row_class is not None else None
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(body) + "</tbody></table>"


def _num(name: str, value: Any) -> str:
    return f'<td class="num">{_e(fmt_value(name, value))}</td>'


# -- recording page ----------------------------------------------------------------------------
@dataclass
class PageInput:
    """Everything a recording's page shows (arrays may be empty when the replay failed)."""

    key: str
    recording: str
    variant: str
    status: str
    kpis: Mapping[str, Any]
    stage: str | None = None
    error: str | None = None
    scenario: str | None = None
    tags: tuple[str, ...] = ()
    description: str | None = None
    #: Sidecar bounds: (KPI, bound, observed value, violated).
    bounds: Sequence[tuple[str, str, str, bool]] = ()
    #: Baseline comparison: (KPI, baseline, this run, delta, verdict regressed/improved/ok).
    baseline: Sequence[tuple[str, str, str, str, str]] = ()
    #: The baseline file and this recording's overall verdict (empty: no baseline).
    baseline_file: str = ""
    baseline_verdict: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    function: str = ""
    run_id: str = ""
    signals: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)
    kpi_settings: Mapping[str, float] = field(default_factory=dict)


def write_page(report_dir: Path, page: PageInput) -> Path:
    """Write ``recordings/<key>.html`` (and ``.png`` when there are arrays to plot)."""
    html_path = report_dir / page_name(page.key)
    png_path = html_path.with_suffix(".png")
    plot_note = ""
    has_plot = False
    if "t" in page.signals and len(page.signals["t"]) >= 2:
        try:
            _write(png_path, plot_png(page))
            has_plot = True
        except Exception as exc:  # a plotting bug must not fail the recording's tests
            plot_note = f"<p>plot could not be drawn: {_e(type(exc).__name__)}: {_e(exc)}</p>"
    else:
        plot_note = "<p>no signals to plot (the recording could not be read).</p>"
    _write(html_path, _page_html(page, png_path.name if has_plot else None, plot_note))
    return html_path


def _page_html(p: PageInput, png: str | None, plot_note: str) -> str:
    title = p.recording + (f" [{p.variant}]" if p.variant else "")
    parts = [
        f'<p><a href="../{INDEX}">&larr; all recordings</a></p>',
        f"<h1>{_e(title)} {STATUS_START}{_badge(None, 'tests not finished')}{STATUS_END}</h1>",
        f'<p class="meta">replay {_status_badge(p.status)} &middot; '
        f"scenario {_e(p.scenario or '-')}"
        + (f" &middot; tags {_e(', '.join(p.tags))}" if p.tags else "")
        + f" &middot; function <code>{_e(p.function)}</code>"
        + (f" &middot; params <code>{_e(dict(p.params))}</code>" if p.params else "")
        + f" &middot; run {_e(p.run_id)}</p>",
    ]
    if p.description:
        parts.append(f"<p>{_e(p.description)}</p>")
    if p.error:
        where = f" in the {p.stage} stage" if p.stage else ""
        parts.append(f"<h2>{_e(p.status)}{_e(where)}</h2><pre>{_e(p.error)}</pre>")
    if png:
        parts.append("<h2>Signals, outputs and projection</h2>")
        panels = ", ".join(PANELS)
        parts.append(f'<img src="{_e(png)}" alt="plots of {_e(title)}: {_e(panels)}">')
        parts.append(f'<p class="caption">panels over t [s]: {_e(panels)}</p>')
    parts.append(plot_note)
    if p.kpis:
        rows = [[f"<td>{_e(label)}</td>", _num(name, p.kpis.get(name))] for name, label in KPI_ROWS]
        parts.append("<h2>KPIs</h2>" + _table(["KPI", "value"], rows))
        acts = p.kpis.get("activations") or []
        if acts:
            arows = [
                [
                    _num("start", a.get("start")),
                    _num("end", a.get("end")),
                    _num("peak_decel", a.get("peak_decel")),
                    _num("ttc", a.get("ttc_at_start")),
                ]
                for a in acts
            ]
            parts.append(
                "<h2>Braking activations</h2>"
                + _table(["start [s]", "end [s]", "peak decel [m/s²]", "TTC at start [s]"], arows)
            )
    parts += _bounds_html(p)
    parts += _baseline_html(p)
    if p.sources:
        rows = [[f"<td>{_e(k)}</td>", f"<td>{_e(v)}</td>"] for k, v in sorted(p.sources.items())]
        parts.append("<h2>Signal sources</h2>" + _table(["signal", "channel"], rows))
    return _doc(f"{title} - adsreplay", "\n".join(parts))


def _bounds_html(p: PageInput) -> list[str]:
    if not p.bounds:
        return []
    rows = [
        [
            f"<td>{_e(name)}</td>",
            f"<td>{_e(bound)}</td>",
            f'<td class="num">{_e(observed)}</td>',
            f"<td>{_badge('failed', 'violated') if bad else 'holds'}</td>",
        ]
        for name, bound, observed, bad in p.bounds
    ]
    classes = ["bad" if bad else "" for *_, bad in p.bounds]
    return [
        "<h2>Sidecar [expect]</h2>"
        + _table(["KPI", "bound", "observed", "verdict"], rows, row_class=classes)
    ]


_VERDICT_CLASS = {"regressed": "failed", "improved": "passed"}


def _baseline_html(p: PageInput) -> list[str]:
    if not p.baseline_file:
        return []
    head = (
        f"<h2>Baseline</h2><p>{_e(p.baseline_file)}: "
        f"{_e(p.baseline_verdict or 'not compared (the replay did not finish)')}</p>"
    )
    if not p.baseline:
        return [head]
    rows = [
        [
            f"<td>{_e(kpi)}</td>",
            f'<td class="num">{_e(base)}</td>',
            f'<td class="num">{_e(now)}</td>',
            f'<td class="num">{_e(delta)}</td>',
            f"<td>{_badge(_VERDICT_CLASS[v], v) if v in _VERDICT_CLASS else _e(v)}</td>",
        ]
        for kpi, base, now, delta, v in p.baseline
    ]
    classes = ["bad" if row[4] == "regressed" else "" for row in p.baseline]
    table = _table(["KPI", "baseline", "this run", "delta", "verdict"], rows, row_class=classes)
    return [head + table]


def set_outcome(report_dir: Path, page: str, outcome: str) -> bool:
    """Put the recording's test outcome (worst of its tests) into its written page; False
    when the page does not exist or has no outcome placeholder."""
    path = report_dir / page
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return False
    pattern = re.compile(re.escape(STATUS_START) + ".*?" + re.escape(STATUS_END), re.S)
    badge = STATUS_START + _badge(outcome, f"tests {outcome}") + STATUS_END
    new, n = pattern.subn(lambda _m: badge, text, count=1)
    if n:
        _write(path, new)
    return bool(n)


#: The replay's status (not the tests' outcome, which the index shows): badge class, text.
REPLAY_STATUS = {
    "ok": ("passed", "replay ok"),
    "failed": ("failed", "function failed"),
    "error": ("error", "replay error"),
    "invalid": ("invalid", "invalid recording"),
}


def _status_badge(status: str) -> str:
    cls, text = REPLAY_STATUS.get(status, ("none", status))
    return _badge(cls, text)


def plot_png(p: PageInput) -> bytes:  # noqa: PLR0915 - one figure, drawn panel by panel
    """Speed, gap (recorded and projected), TTC, fcw/aeb_decel over time, event markers."""
    import io

    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from pytest_adsreplay.kpi.compute import project, ttc
    from pytest_adsreplay.kpi.target import kpi_signals
    from pytest_adsreplay.replay import kpi_settings

    settings = kpi_settings(**p.kpi_settings) if p.kpi_settings else kpi_settings()
    sig = {k: np.asarray(v, dtype=float) for k, v in p.signals.items()}
    derived = "target_distance" not in sig and "obj_dx[0]" in sig
    # An object-list recording: the panels show the KPI target of each cycle, derived
    # exactly as for the KPIs (mapped target channels win).
    sig = dict(
        kpi_signals(
            sig, path_half_width=settings.path_half_width, axle_to_front=settings.axle_to_front
        )
    )
    out = {k: np.asarray(v, dtype=float) for k, v in p.outputs.items()}
    t = sig["t"]
    nan = np.full(t.size, np.nan)
    ego = sig.get("ego_speed", nan)
    dist = sig.get("target_distance", nan).copy()
    rel = sig.get("target_rel_speed", nan)
    if "target_valid" in sig:
        dist[sig["target_valid"] == 0] = np.nan
    decel = out.get("aeb_decel", nan)
    fcw = np.nan_to_num(out.get("fcw", np.zeros(t.size)), nan=0.0)
    lead = "in-path object (derived)" if derived else "lead (recorded)"
    gap = "gap to the in-path object (derived)" if derived else "gap (recorded)"
    brake_time = p.kpis.get("brake_time")
    proj = None
    if "aeb_decel" in out:
        try:
            signals = {k: v for k, v in sig.items() if k != "t"}
            proj = project(t, signals, decel, brake_time, settings)
        except (ValueError, KeyError):
            proj = None

    fig = Figure(figsize=(10, 11.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax_v, ax_d, ax_ttc, ax_a, ax_y = fig.subplots(len(PANELS), 1, sharex=True)
    title = p.recording + (f" [{p.variant}]" if p.variant else "")
    outcome = "no collision"
    if p.kpis.get("collision"):
        outcome = (
            f"collision at {fmt_value('impact_speed', p.kpis.get('impact_speed') or 0.0)} km/h"
        )
    fig.suptitle(
        f"{title} - {p.scenario or 'no scenario'} - {p.status} - {outcome} (projected)",
        fontsize=11,
    )

    ax_v.plot(t, ego * 3.6, color="#0072b2", label="ego (recorded)")
    ax_v.plot(t, (ego + rel) * 3.6, color="#009e73", ls="--", label=lead)
    if proj is not None and proj.t.size:
        ax_v.plot(
            proj.t,
            proj.ego_speed * 3.6,
            color=PROJECTED,
            ls=":",
            lw=2,
            label="ego after braking (projected)",
        )
    ax_v.set_ylabel(PANELS[0])

    ax_d.plot(t, dist, color="#0072b2", label=gap)
    if derived:
        _switch_marks(ax_d, t, sig.get("target_id"), dist)
    if proj is not None and proj.t.size:
        ax_d.plot(
            proj.t, proj.gap, color=PROJECTED, ls=":", lw=2, label="gap after braking (projected)"
        )
    ax_d.axhline(0.0, color="#999", lw=0.8)
    ax_d.set_ylabel(PANELS[1])

    ttcs = ttc(dist, rel)
    ax_ttc.plot(t, np.where(ttcs <= TTC_CLIP, ttcs, np.nan), color="#0072b2", label="TTC")
    ax_ttc.set_ylim(0.0, TTC_CLIP)
    ax_ttc.set_ylabel(PANELS[2])

    ax_a.step(t, decel, where="post", color="#0072b2", label="aeb_decel request")
    ax_a.axhline(
        settings.brake_threshold,
        color="#999",
        ls="--",
        lw=0.8,
        label=f"brake threshold {settings.brake_threshold:g} m/s²",
    )
    top = max(float(np.nanmax(decel)) if np.isfinite(decel).any() else 0.0, 1.0) * 1.1
    ax_a.fill_between(
        t, 0, top, where=fcw >= 0.5, step="post", color="#e69f00", alpha=0.25, label="fcw active"
    )
    ax_a.set_ylim(0.0, top)
    ax_a.set_ylabel(PANELS[3])
    _lateral_panel(ax_y, t, sig, settings.lateral_overlap)

    marks = [(p.kpis.get(name), label, color) for name, label, color in MARKERS]
    contact = proj.contact_time if proj is not None else None
    marks.append((contact, "contact", "#000000"))
    for when, label, color in marks:
        if when is None or not math.isfinite(float(when)):
            continue
        for ax in (ax_v, ax_d, ax_ttc, ax_a, ax_y):
            ax.axvline(
                float(when),
                color=color,
                lw=1.2,
                ls="-.",
                label=f"{label} {float(when):.2f} s" if ax is ax_v else None,
            )
    if contact is not None:
        ax_d.plot([contact], [0.0], marker="X", color="#000000", ms=9)
    for ax in (ax_v, ax_d, ax_ttc, ax_a, ax_y):
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _switch_marks(ax: Any, t: Any, ids: Any, dist: Any) -> None:
    """Mark the cycles where the derived in-path object changes (a cut-in, a cut-out, a
    target lost or found) with the new track id."""
    import numpy as np

    if ids is None:
        return
    key = np.where(np.isfinite(ids), ids, -1.0)
    if not key.size:
        return
    for i in np.flatnonzero(np.diff(key, prepend=-1.0) != 0):
        label = "none" if key[i] < 0 else f"id {key[i]:g}"
        ax.axvline(float(t[i]), color="#cc79a7", lw=0.8, ls=":")
        y = dist[i] if np.isfinite(dist[i]) else 0.0
        ax.annotate(label, (float(t[i]), float(y)), fontsize=7, color="#cc79a7")


def _lateral_panel(ax: Any, t: Any, sig: Mapping[str, Any], overlap: float) -> None:
    """The target's lateral offset (hidden while no target is valid) and the overlap band
    inside which the projection counts a contact."""
    import numpy as np

    lat = np.asarray(sig.get("target_lateral", np.full(t.size, np.nan)), dtype=float).copy()
    if "target_valid" in sig:
        lat[sig["target_valid"] == 0] = np.nan
    label = "target lateral offset" + ("" if np.isfinite(lat).any() else " (not recorded)")
    ax.plot(t, lat, color="#0072b2", label=label)
    ax.axhspan(-overlap, overlap, color="#999", alpha=0.15, label=f"overlap ±{overlap:g} m")
    ax.set_ylabel(PANELS[4])
    ax.set_xlabel("t [s]")


# -- index -------------------------------------------------------------------------------------
@dataclass
class IndexRow:
    """One recording (chain) in the index, from its tests' report properties."""

    key: str
    outcome: str | None = None
    page: str | None = None
    values: dict[str, Any] = field(default_factory=dict)


def sort_rows(rows: Iterable[IndexRow]) -> list[IndexRow]:
    """Errors, invalid recordings and failures first, then skipped, then passed; by id."""
    return sorted(rows, key=lambda r: (-OUTCOME_RANK.get(r.outcome or "", 0), r.key))


#: Columns of the index's fleet statistics table.
STATS_HEADERS = (
    "group",
    "recordings",
    "invalid",
    "km",
    "h",
    "activations",
    "warnings",
    "false activations",
    "per 1000 km (upper 95 %)",
    "per h (upper 95 %)",
    "false warnings per h (upper 95 %)",
    "pass rate [95 % CI]",
)


def _figure(value: float | None, upper: float | None) -> str:
    if value is None:
        return '<td class="num">n/a</td>'
    bound = "inf" if upper is None or math.isinf(upper) else f"{upper:.2f}"
    return f'<td class="num">{value:.2f} ({bound})</td>'


def stats_table(groups: Sequence[GroupStats]) -> str:
    """The fleet statistics as an HTML table: exposure, events, rates with their one-sided
    95 % Poisson upper bounds, pass rates with their 95 % Clopper-Pearson intervals."""
    rows = []
    for g in groups:
        fa, fw, pr = g.false_activations, g.false_warnings, g.pass_rate
        lo, hi = pr.interval95
        rate = "n/a" if pr.rate is None else f"{pr.passed}/{pr.runs} = {pr.rate:.2f} "
        rate += "" if pr.rate is None else f"[{lo:.2f}, {hi:.2f}]"
        rows.append(
            [
                f"<td>{_e(g.name)}</td>",
                f'<td class="num">{g.recordings}</td>',
                f'<td class="num">{g.invalid}</td>',
                f'<td class="num">{g.km:,.1f}</td>',
                f'<td class="num">{g.hours:,.2f}</td>',
                f'<td class="num">{g.activations}</td>',
                f'<td class="num">{g.warnings}</td>',
                f'<td class="num">{fa.count}</td>',
                _figure(fa.per_1000km, fa.upper95_per_1000km),
                _figure(fa.per_hour, fa.upper95_per_hour),
                _figure(fw.per_hour, fw.upper95_per_hour),
                f'<td class="num">{_e(rate)}</td>',
            ]
        )
    return '<h2 id="fleet-statistics">Fleet statistics</h2>\n' + _table(STATS_HEADERS, rows)


def write_index(
    report_dir: Path,
    rows: Iterable[IndexRow],
    meta: Mapping[str, Any],
    stats: Sequence[GroupStats] | None = None,
) -> Path:
    """index.html: run facts, counts and the summary table linking every recording's page;
    with ``stats``, the fleet statistics table below it."""
    rows = sort_rows(rows)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.outcome or "not run"] = counts.get(r.outcome or "not run", 0) + 1
    facts = " &middot; ".join(f"{_e(k)} <code>{_e(v)}</code>" for k, v in meta.items() if v)
    tally = ", ".join(
        f"{n} {_e(o)}"
        for o, n in sorted(counts.items(), key=lambda kv: -OUTCOME_RANK.get(kv[0], -1))
    )
    table_rows, classes = [], []
    for r in rows:
        name = _e(r.key)
        link = f'<td><a href="{_e(r.page)}">{name}</a></td>' if r.page else f"<td>{name}</td>"
        cells = [link]
        for col, _ in INDEX_COLUMNS:
            value = r.values.get(col)
            if col == "outcome":
                cells.append(f"<td>{_badge(r.outcome)}</td>")
            elif col in ("scenario", "baseline"):
                cells.append(f"<td>{_e(value or '-')}</td>")
            else:
                cells.append(_num(col, value))
        table_rows.append(cells)
        classes.append("bad" if OUTCOME_RANK.get(r.outcome or "", 0) >= 2 else "")
    body = "\n".join(
        [
            "<h1>AEB replay report</h1>",
            f'<p class="meta">{facts}</p>',
            f"<p>{len(rows)} recording(s): {tally or 'none'} &middot; written "
            f"{_e(time.strftime('%Y-%m-%d %H:%M:%S'))}</p>",
            _table(["recording"] + [h for _, h in INDEX_COLUMNS], table_rows, row_class=classes),
            stats_table(stats) if stats else "",
        ]
    )
    path = report_dir / INDEX
    _write(path, _doc("adsreplay report", body))
    return path

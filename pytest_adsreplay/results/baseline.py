"""KPI regression baseline: a JSON file of each recording's accepted KPIs.

The file lives in the user's repository and is reviewed in pull requests, so its text is
stable: sorted keys, indent 2, a trailing newline, floats rounded to 1e-6 (far below any
tolerance; it hides float noise such as 1.4999999999999991), infinities as the strings
``"inf"``/``"-inf"``, events that never happened as ``null``, activations as their count::

    {
      "about": "pytest-adsreplay KPI baseline: ...",
      "format": 1,
      "recordings": {
        "ccrs/a40.mf4": {"kpis": {"activations": 1, "brake_time": 4.5, ...}, "sha256": "..."},
        "ccrs/a40.mf4 [p1a2b3c4d]": {"kpis": {...}, "params": {"late": 0.3}, "sha256": "..."}
      },
      "units": {"brake_time": "s", ...}
    }

An entry is keyed by recording id, plus `` [variant]`` for calibration variants (a hash of
the marker's function parameters, which the entry keeps under ``params`` for reviewers).

Each KPI's tolerance kind, unit and better direction come from the KPI registry: a change
within tolerance passes, a change beyond it in the KPI's better direction is an improvement
(reported, never a failure), any other change beyond it is a regression. Nothing here
imports pytest; the plugin turns a ``Check`` into a test item's verdict.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_adsreplay.errors import UsageError
from pytest_adsreplay.kpi.registry import KPIS, KpiSpec
from pytest_adsreplay.kpi.registry import spec as kpi_spec

FORMAT = 1
ABOUT = (
    "pytest-adsreplay KPI baseline: rewrite entries with --adsreplay-update-baseline and "
    'review the diff; floats rounded to 1e-6, infinity as "inf", null = never happened, '
    "activations = number of braking events"
)
DIGITS = 6

#: Which tolerance applies to each compared KPI (from the registry, in its order). "time"
#: defaults to one cycle of the session.
KIND: dict[str, str] = {s.name: s.tolerance for s in KPIS}
#: The SI unit of each tolerance kind (a tolerance given as a bare number is in it).
UNIT = {
    "time": "s",
    "ttc": "s",
    "decel": "m/s²",
    "speed": "m/s",
    "distance": "m",
    "exact": "",
    "count": "",
}
#: Defaults in the KPI's own (SI) unit; speeds are 0.5 km/h, booleans and counts exact.
DEFAULT_TOLERANCE = {
    "ttc": 0.05,
    "decel": 0.1,
    "speed": 0.5 / 3.6,
    "distance": 0.1,
    "exact": 0.0,
    "count": 0.0,
}
_DIMENSION = {
    "time": "time",
    "ttc": "time",
    "decel": "acceleration",
    "speed": "speed",
    "distance": "length",
}
IGNORE = "ignore"


def entry_key(recording: str, variant: str = "") -> str:
    """The baseline key of a recording (and of a calibration variant when not default)."""
    return f"{recording} [{variant}]" if variant else recording


def recording_of(key: str) -> str:
    return key.rsplit(" [", 1)[0] if key.endswith("]") and " [" in key else key


# -- values ----------------------------------------------------------------------------------
def encode(name: str, value: Any) -> Any:
    """A KPI as it is stored: rounded float, "inf", bool, activation count, or None."""
    kind = kpi_spec(name).kind
    if kind == "events":
        return len(value) if isinstance(value, list | tuple) else int(value or 0)
    if value is None or isinstance(value, bool):
        return value
    if kind == "flag":
        return bool(value)
    x = float(value)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    r = round(x, DIGITS)
    return 0.0 if r == 0 else r


def decode(value: Any) -> Any:
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    return value


def entry(
    kpis: Mapping[str, Any], sha256: str | None, params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The baseline entry of one replay."""
    out: dict[str, Any] = {
        "kpis": {name: encode(name, kpis.get(name)) for name in KIND},
        "sha256": sha256,
    }
    if params:
        out["params"] = dict(params)
    return out


# -- tolerances ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tolerances:
    """Per-KPI absolute tolerances (SI units); ``None`` = not compared (``"ignore"``)."""

    overrides: Mapping[str, float | None] = field(default_factory=dict)

    def of(self, name: str, cycle_time: float) -> float | None:
        if name in self.overrides:
            return self.overrides[name]
        kind = KIND[name]
        return cycle_time if kind == "time" else DEFAULT_TOLERANCE[kind]


def parse_tolerances(text: str | Mapping[str, Any], source: str) -> Tolerances:
    """``{ brake_time = 0.02, impact_speed = "1 km/h", recorded_brake_time = "ignore" }``.

    Numbers are in the KPI's SI unit (s, m, m/s, m/s²); a string may name its unit.
    ``collision`` is always exact; ``activations`` takes a whole number.
    """
    if isinstance(text, Mapping):
        table = dict(text)
    else:
        raw = str(text).strip()
        if not raw:
            return Tolerances()
        try:
            table = dict(tomllib.loads(f"t = {raw}")["t"])
        except (tomllib.TOMLDecodeError, TypeError, ValueError) as exc:
            raise UsageError(
                f"adsreplay_baseline_tolerances = {raw!r} (from {source}) is not a TOML "
                f"inline table like {{ brake_time = 0.02 }}: {exc}"
            ) from None
    out: dict[str, float | None] = {}
    for name, value in table.items():
        out[name] = _tolerance(name, value, source)
    return Tolerances(out)


def _tolerance(name: str, value: Any, source: str) -> float | None:
    where = f"adsreplay_baseline_tolerances: {name} = {value!r} (from {source})"
    if name not in KIND:
        close = difflib.get_close_matches(name, list(KIND), n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; known: {', '.join(KIND)}"
        raise UsageError(f"{where}: unknown KPI{hint}")
    if value == IGNORE:
        return None
    kind = KIND[name]
    if kind == "exact":
        raise UsageError(f'{where}: {name} is compared exactly (only "ignore" is allowed)')
    if isinstance(value, str) and kind != "count":
        number, _, unit = value.strip().partition(" ")
        try:
            from pytest_adsreplay.signals.units import unit_info

            scale, offset, dim = unit_info(unit.strip() or UNIT[kind])
            tol = float(number) * scale + offset
        except ValueError as exc:
            raise UsageError(f'{where}: expected a number or "<number> <unit>" ({exc})') from None
        if dim != _DIMENSION[kind]:
            raise UsageError(f"{where}: {unit.strip()!r} is not a unit of {_DIMENSION[kind]}")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        tol = float(value)
    else:
        raise UsageError(f'{where}: expected a number, "<number> <unit>" or "ignore"')
    if not tol >= 0 or math.isinf(tol):
        raise UsageError(f"{where}: must be a finite number >= 0")
    if kind == "count" and tol != int(tol):
        raise UsageError(f"{where}: activations are counted, use a whole number")
    return tol


# -- comparison ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Diff:
    """One KPI compared with the baseline."""

    name: str
    base: Any
    now: Any
    tolerance: float | None

    @property
    def delta(self) -> float | None:
        b, n = decode(self.base), decode(self.now)
        if isinstance(b, bool) or isinstance(n, bool):
            return None
        if not isinstance(b, int | float) or not isinstance(n, int | float):
            return None
        if math.isinf(b) and math.isinf(n) and (b > 0) == (n > 0):
            return 0.0
        return float(n) - float(b)

    @property
    def spec(self) -> KpiSpec:
        return kpi_spec(self.name)

    @property
    def change(self) -> str:
        """same (within tolerance, or not compared), better (beyond tolerance in the KPI's
        better direction) or worse. An event that appears or vanishes is worse."""
        if self.tolerance is None:
            return "same"
        b, n = decode(self.base), decode(self.now)
        if b is None or n is None:
            return "same" if b == n else "worse"
        if isinstance(b, bool) or isinstance(n, bool):
            if b == n:
                return "same"
            if not isinstance(b, int | float) or not isinstance(n, int | float):
                return "worse"
            return self.spec.compare(float(n) - float(b), 0.0)
        d = self.delta
        return "worse" if d is None else self.spec.compare(d, self.tolerance)

    @property
    def ok(self) -> bool:
        """Not a regression: within tolerance or improved."""
        return self.change != "worse"

    @property
    def improved(self) -> bool:
        return self.change == "better"


@dataclass(frozen=True)
class Check:
    """A replay compared with its baseline entry (``base`` is None for a new recording)."""

    key: str
    base: Mapping[str, Any] | None
    now: dict[str, Any]
    diffs: tuple[Diff, ...]

    @property
    def new(self) -> bool:
        return self.base is None

    @property
    def sha_changed(self) -> bool:
        if self.base is None:
            return False
        old, new = self.base.get("sha256"), self.now.get("sha256")
        return bool(old and new and old != new)

    @property
    def regressions(self) -> list[Diff]:
        return [d for d in self.diffs if not d.ok]

    @property
    def improvements(self) -> list[Diff]:
        return [d for d in self.diffs if d.improved]

    @property
    def verdict(self) -> str:
        """pass | new | changed (recording's sha256) | regressed | improved (no regression,
        at least one KPI better beyond tolerance: passes, reported separately)."""
        if self.new:
            return "new"
        if self.sha_changed:
            return "changed"
        if self.regressions:
            return "regressed"
        return "improved" if self.improvements else "pass"

    @property
    def entry_differs(self) -> bool:
        """The stored entry is not what a rewrite would write (KPIs beyond tolerance,
        sha256, missing KPIs or params); a passing entry is never rewritten."""
        if self.verdict != "pass":
            return True
        assert self.base is not None
        base_kpis = self.base.get("kpis") or {}
        return set(base_kpis) != set(self.now["kpis"]) or (
            self.base.get("params") != self.now.get("params")
        )


def check(
    key: str,
    base: Mapping[str, Any] | None,
    now: dict[str, Any],
    tolerances: Tolerances,
    cycle_time: float,
) -> Check:
    """Compare the entry ``now`` (see ``entry``) with the baseline entry ``base``.

    A KPI the entry does not have (added to the registry after the entry was written) is
    not compared; the entry is outdated and ``--adsreplay-update-baseline`` adds it."""
    diffs: list[Diff] = []
    if base is not None:
        base_kpis = base.get("kpis") or {}
        for name in KIND:
            if name not in base_kpis:
                continue
            diffs.append(
                Diff(
                    name,
                    base_kpis.get(name),
                    now["kpis"].get(name),
                    tolerances.of(name, cycle_time),
                )
            )
    return Check(key, base, now, tuple(diffs))


# -- messages --------------------------------------------------------------------------------
def _cell(name: str, value: Any) -> str:
    value = decode(value)
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{kpi_spec(name).shown(value):.3f}"


def _delta_cell(d: Diff) -> str:
    delta = d.delta
    if delta is None:
        return "changed" if decode(d.base) != decode(d.now) else "="
    if math.isnan(delta):
        return "nan"
    if math.isinf(delta):
        return "+inf" if delta > 0 else "-inf"
    if isinstance(decode(d.base), int) and isinstance(decode(d.now), int):
        return f"{int(delta):+d}"
    return f"{d.spec.shown(delta):+.3f}"


def _tol_cell(d: Diff) -> str:
    if d.tolerance is None:
        return "ignored"
    kind = KIND[d.name]
    if kind in ("exact", "count") and d.tolerance == 0:
        return "exact"
    if kind == "count":
        return f"{int(d.tolerance)}"
    return f"{d.spec.shown(d.tolerance):.3f}"


def _label(name: str) -> str:
    unit = kpi_spec(name).display_unit
    return f"{name} [{unit}]" if unit else name


_MARK = {"same": "", "better": "  improved", "worse": "  << regressed"}


def delta_table(diffs: Iterable[Diff]) -> list[str]:
    """KPI | baseline | now | delta | tolerance, impact speed in km/h; regressions and
    improvements marked."""
    from pytest_adsreplay.reporting.text import table

    diffs = list(diffs)
    rows = [
        [_label(d.name), _cell(d.name, d.base), _cell(d.name, d.now), _delta_cell(d), _tol_cell(d)]
        for d in diffs
    ]
    head, rule, *body = table(["KPI", "baseline", "now", "delta", "tolerance"], rows)
    marked = [line + _MARK[d.change] for line, d in zip(body, diffs, strict=True)]
    return [line.rstrip() for line in (head, rule, *marked)]


def improvement_note(c: Check) -> str:
    """The improved KPIs in one line: ``fcw_lead_time +0.300 s, collision yes -> no``."""
    parts = []
    for d in c.improvements:
        cell = _delta_cell(d)
        if cell == "changed":
            parts.append(f"{d.name} {_cell(d.name, d.base)} -> {_cell(d.name, d.now)}")
        else:
            unit = d.spec.display_unit
            parts.append(f"{d.name} {cell}" + (f" {unit}" if unit else ""))
    return ", ".join(parts)


UPDATE_HINT = "run with --adsreplay-update-baseline and review the diff of {path}"


def failure_text(c: Check, path: str, *, updated: bool) -> str:
    """The baseline item's message (it always fails when the entry was rewritten)."""
    rid = c.key
    lines: list[str] = []
    if c.new:
        if updated:
            lines.append(
                f"{rid}: not in the baseline yet; added it to {path} "
                "(review and commit the file; the next run compares against it)"
            )
        else:
            lines.append(f"{rid}: no entry in the baseline {path} (a new recording?)")
            lines.append("  -> to accept its KPIs, " + UPDATE_HINT.format(path=path))
        lines += ["  " + s for s in _kpi_listing(c.now)]
        return "\n".join(lines)
    assert c.base is not None
    bad = c.regressions
    if c.sha_changed:
        old, new = str(c.base.get("sha256"))[:12], str(c.now.get("sha256"))[:12]
        lines.append(
            f"{rid}: the recording changed since the baseline was written "
            f"(sha256 {old}… in {path}, now {new}…)"
        )
        lines.append(f"  its KPIs {'differ' if bad else 'are within tolerance'}:")
    elif bad:
        better = c.improvements
        also = f", {len(better)} improved" if better else ""
        lines.append(f"{rid}: {len(bad)} KPI(s) regressed{also} against the baseline {path}:")
    elif c.improvements:
        lines.append(
            f"{rid}: {len(c.improvements)} KPI(s) improved against the baseline {path} "
            "(none regressed):"
        )
    else:
        lines.append(f"{rid}: the baseline entry is outdated (KPI set or parameters changed)")
    lines += ["  " + s for s in delta_table(c.diffs)]
    if updated:
        lines.append(
            f"  -> the baseline entry was rewritten in {path}: review and commit the "
            "diff; the next run compares against the new values"
        )
    else:
        lines.append(
            "  -> if the change is intended, "
            + UPDATE_HINT.format(path=path)
            + "; otherwise fix the function (replay it alone with "
            "pytest_adsreplay.replay_file())"
        )
    return "\n".join(lines)


def _kpi_listing(now: Mapping[str, Any]) -> list[str]:
    kpis = now.get("kpis") or {}
    return [", ".join(f"{n}={_cell(n, kpis.get(n))}" for n in KIND)]


def stale_text(keys: Iterable[str], path: str, *, updated: bool) -> str:
    keys = sorted(keys)
    head = (
        f"{len(keys)} baseline entr{'y' if len(keys) == 1 else 'ies'} of {path} "
        "name recordings that no longer exist:"
    )
    lines = [head] + [f"  - {k}" for k in keys]
    if updated:
        lines.append(f"  -> removed from {path}: review and commit the diff")
    else:
        lines.append(
            "  -> if the recordings were removed or renamed on purpose, "
            + UPDATE_HINT.format(path=path)
            + " (it drops stale entries)"
        )
    return "\n".join(lines)


# -- file ------------------------------------------------------------------------------------
@dataclass
class Baseline:
    """The baseline file's entries (empty when the file does not exist yet)."""

    path: Path
    entries: dict[str, dict[str, Any]]
    exists: bool

    def stale(
        self, recording_ids: Iterable[str], outside: Callable[[str], bool] | None = None
    ) -> list[str]:
        """Entries whose recording is not among ``recording_ids`` (it is gone); an entry
        whose recording ``outside`` says lies outside this run's selection is kept."""
        ids = set(recording_ids)
        return sorted(
            k
            for k in self.entries
            if recording_of(k) not in ids and not (outside and outside(recording_of(k)))
        )


def load(path: Path) -> Baseline:
    """Read the baseline; a malformed file is a usage error naming the file and line."""
    if not path.exists():
        return Baseline(path, {}, exists=False)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"baseline {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            hint="fix the file, or delete it and re-run with --adsreplay-update-baseline",
        ) from None
    except OSError as exc:
        raise UsageError(f"baseline {path} cannot be read: {exc}") from None
    recs = data.get("recordings") if isinstance(data, dict) else None
    if not isinstance(recs, dict) or data.get("format") != FORMAT:
        raise UsageError(
            f"baseline {path} is not a pytest-adsreplay baseline (format {FORMAT}: an object "
            'with "format" and "recordings")',
            hint="delete it and re-run with --adsreplay-update-baseline",
        )
    return Baseline(path, {str(k): dict(v) for k, v in recs.items()}, exists=True)


def dumps(entries: Mapping[str, Mapping[str, Any]]) -> str:
    """The file's text: stable for review (sorted keys, indent 2, trailing newline)."""
    data = {
        "about": ABOUT,
        "format": FORMAT,
        "recordings": {k: entries[k] for k in sorted(entries)},
        "units": {s.name: s.file_unit for s in KPIS},
    }
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False) + "\n"


def write(
    path: Path, updates: Mapping[str, Mapping[str, Any]], remove: Iterable[str] = ()
) -> Baseline:
    """Merge ``updates`` into the file and drop ``remove``; written atomically (one writer:
    the plain session or the xdist controller, from its workers' report properties)."""
    current = load(path)
    entries = dict(current.entries)
    for key in remove:
        entries.pop(key, None)
    entries.update({k: dict(v) for k, v in updates.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(dumps(entries))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Baseline(path, entries, exists=True)


# -- one session -----------------------------------------------------------------------------
@dataclass
class Verdict:
    """What a baseline item reports: pass or not, the message, a rewritten entry, and the
    improved KPIs in one line (see ``improvement_note``)."""

    key: str
    verdict: str
    message: str | None
    update: dict[str, Any] | None
    improved: str | None = None


class BaselineSession:
    """Baseline checks of one pytest session (or xdist worker) and, on the owner, the write.

    Workers only check; the owner (plain session or xdist controller) collects the entries
    to rewrite from the items' report properties and writes the file once at the end.
    """

    def __init__(self, path: Path, tolerances: Tolerances, *, update: bool, shown: str):
        self.path = path
        self.shown = shown  # the path as the user should read it
        self.tolerances = tolerances
        self.update = update
        self.baseline = load(path)
        self.verdicts: dict[str, str] = {}
        self.improved: dict[str, str] = {}
        self.updates: dict[str, dict[str, Any]] = {}
        self.written: list[str] = []
        self.removed: list[str] = []

    def check(
        self,
        key: str,
        kpis: Mapping[str, Any],
        sha256: str | None,
        params: Mapping[str, Any] | None,
        cycle_time: float,
    ) -> Verdict:
        now = entry(kpis, sha256, params)
        c = check(key, self.baseline.entries.get(key), now, self.tolerances, cycle_time)
        rewrite = self.update and c.entry_differs
        note = improvement_note(c) if c.improvements else None
        if note:
            self.improved[key] = note
        if c.verdict in ("pass", "improved") and not rewrite:
            return Verdict(key, c.verdict, None, None, note)
        verdict = c.verdict if c.verdict != "pass" else "outdated"
        return Verdict(
            key,
            verdict,
            failure_text(c, self.shown, updated=rewrite),
            now if rewrite else None,
            note,
        )

    def record(
        self,
        key: str,
        verdict: str,
        update: str | Mapping[str, Any] | None,
        improved: str | None = None,
    ) -> None:
        """Owner side: one baseline item's result (from its report properties)."""
        self.verdicts[key] = verdict
        if improved:
            self.improved[key] = improved
        if update is not None:
            self.updates[key] = json.loads(update) if isinstance(update, str) else dict(update)

    def finish(
        self, recording_ids: Iterable[str], outside: Callable[[str], bool] | None = None
    ) -> None:
        """Owner side: with --adsreplay-update-baseline, write the collected entries and drop
        stale ones (recording gone); never writes without the flag."""
        if not self.update:
            return
        stale = self.baseline.stale(recording_ids, outside)
        if not self.updates and not stale:
            return
        self.baseline = write(self.path, self.updates, stale)
        self.written, self.removed = sorted(self.updates), stale
        self.updates = {}

    def summary(
        self, recording_ids: Iterable[str], outside: Callable[[str], bool] | None = None
    ) -> list[str]:
        """Terminal summary lines: counts per verdict, new/changed/stale, what was written."""
        ids = list(recording_ids)
        stale = self.removed or self.baseline.stale(ids, outside)
        counts = {
            v: sum(1 for x in self.verdicts.values() if x == v)
            for v in ("pass", "improved", "regressed", "changed", "new", "outdated")
        }
        improved = f"{counts['improved']} improved, " if counts["improved"] else ""
        head = (
            f"baseline {self.shown}: {len(self.verdicts)} checked, {counts['pass']} passed, "
            f"{improved}{counts['regressed']} regressed, {counts['new']} new, "
            f"{counts['changed']} changed recording(s), {len(stale)} stale entr"
            f"{'y' if len(stale) == 1 else 'ies'}"
        )
        lines = [head]
        better = sorted(k for k, v in self.verdicts.items() if v == "improved")
        if better:
            lines.append("  improved (better than the baseline beyond tolerance; not a failure):")
            lines += [f"    {k}: {self.improved.get(k, 'improved')}" for k in better]
        for label, verdict in (
            ("regressed", "regressed"),
            ("new (not in the baseline)", "new"),
            ("changed (sha256 differs)", "changed"),
        ):
            keys = sorted(k for k, v in self.verdicts.items() if v == verdict)
            if keys:
                lines.append(f"  {label}: {', '.join(keys)}")
        if stale:
            what = "removed stale" if self.removed else "stale (recording gone)"
            lines.append(f"  {what}: {', '.join(stale)}")
        if self.written:
            lines.append(
                f"  rewritten: {len(self.written)} entr"
                f"{'y' if len(self.written) == 1 else 'ies'} in {self.shown}; "
                "review and commit the diff"
            )
        elif not self.update and (stale or any(counts[v] for v in counts if v != "pass")):
            lines.append("  -> " + UPDATE_HINT.format(path=self.shown) + " if this is intended")
        return lines

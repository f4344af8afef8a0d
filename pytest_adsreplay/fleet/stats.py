"""Fleet statistics over a session's recordings: exposure, events, rates and pass rates.

AEB functions are released on fleet figures: false activations per 1000 km and per hour
over hours of normal driving, and pass rates over scenario groups. This module turns one
:class:`RecordingFacts` per recording into those figures, with exact confidence bounds:

- a rate of ``k`` events in ``exposure`` has the one-sided 95 % Poisson upper bound
  ``chi2.ppf(0.95, 2k + 2) / 2 / exposure`` (Garwood's exact interval);
- a pass rate of ``x`` passes in ``n`` runs has the two-sided 95 % Clopper-Pearson
  interval ``[beta.ppf(0.025, x, n - x + 1), beta.ppf(0.975, x + 1, n - x)]``, and the
  one-sided lower bound used by gates is ``beta.ppf(0.05, x, n - x + 1)``.

Invalid recordings (data too poor to judge the function) are excluded from every figure
and counted apart.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Activations (or warnings) that start less than this apart count as one event.
MERGE_WINDOW = 1.0
#: The tag that marks a recording where no activation may occur (unless its sidecar
#: says ``brake = true``).
FALSE_ACTIVATION_TAG = "false-activation"


@dataclass(frozen=True)
class Event:
    """One activation or warning: where, when, how hard and for which object."""

    recording: str
    t: float
    peak_decel: float | None = None
    target_id: int | None = None
    out_of_path: bool = False

    def describe(self) -> str:
        text = f"{self.recording} t={self.t:.2f} s"
        if self.peak_decel is not None:
            text += f", peak {self.peak_decel:.1f} m/s²"
        if self.target_id is not None:
            text += f", target id {self.target_id}"
        if self.out_of_path:
            text += ", braked for an object out of the path"
        return text


@dataclass(frozen=True)
class RecordingFacts:
    """What the statistics need of one replayed recording.

    ``status`` is the results database's status (ok, failed, error, invalid); ``passed``
    whether every test of the recording passed. ``expect_brake``/``expect_fcw`` come from
    the sidecar's ``[expect]`` (None when it says nothing). ``activations`` and
    ``warnings`` are the function's braking and warning onsets.
    """

    recording: str
    scenario: str | None = None
    tags: tuple[str, ...] = ()
    status: str = "ok"
    passed: bool = True
    expect_brake: bool | None = None
    expect_fcw: bool | None = None
    distance_m: float = 0.0
    duration_s: float = 0.0
    activations: tuple[Event, ...] = ()
    warnings: tuple[Event, ...] = ()

    @property
    def valid(self) -> bool:
        return self.status != "invalid"

    @property
    def no_activation_expected(self) -> bool:
        """No braking may occur: ``[expect] brake = false``, or the false-activation tag
        unless the sidecar says ``brake = true``."""
        if self.expect_brake is not None:
            return not self.expect_brake
        return FALSE_ACTIVATION_TAG in self.tags

    @property
    def no_warning_expected(self) -> bool:
        return self.expect_fcw is False

    def to_json(self) -> dict[str, Any]:
        def ev(e: Event) -> list[Any]:
            return [e.t, e.peak_decel, e.target_id, e.out_of_path]

        return {
            "recording": self.recording,
            "scenario": self.scenario,
            "tags": list(self.tags),
            "status": self.status,
            "passed": self.passed,
            "expect_brake": self.expect_brake,
            "expect_fcw": self.expect_fcw,
            "distance_m": self.distance_m,
            "duration_s": self.duration_s,
            "activations": [ev(e) for e in self.activations],
            "warnings": [ev(e) for e in self.warnings],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RecordingFacts:
        rec = str(data["recording"])

        def ev(row: Sequence[Any]) -> Event:
            t, peak, target, oop = row
            return Event(
                rec,
                float(t),
                None if peak is None else float(peak),
                None if target is None else int(target),
                bool(oop),
            )

        return cls(
            recording=rec,
            scenario=data.get("scenario"),
            tags=tuple(data.get("tags") or ()),
            status=str(data.get("status", "ok")),
            passed=bool(data.get("passed", True)),
            expect_brake=data.get("expect_brake"),
            expect_fcw=data.get("expect_fcw"),
            distance_m=float(data.get("distance_m", 0.0)),
            duration_s=float(data.get("duration_s", 0.0)),
            activations=tuple(ev(r) for r in data.get("activations") or ()),
            warnings=tuple(ev(r) for r in data.get("warnings") or ()),
        )


def exposure(t: np.ndarray, ego_speed: np.ndarray) -> tuple[float, float]:
    """Distance (m) and driving time (s) over the cycles where ``ego_speed`` is known.

    The distance is the trapezoidal integral of the speed between neighbouring cycles
    that both have a speed; the time counts the same intervals.
    """
    t = np.asarray(t, dtype=np.float64)
    v = np.asarray(ego_speed, dtype=np.float64)
    if len(t) < 2:
        return 0.0, 0.0
    dt = np.diff(t)
    both = np.isfinite(v[:-1]) & np.isfinite(v[1:])
    distance = float(np.sum(0.5 * (v[:-1] + v[1:])[both] * dt[both]))
    return distance, float(np.sum(dt[both]))


def onsets(t: np.ndarray, flag: np.ndarray) -> list[float]:
    """Times where ``flag`` turns on (a NaN counts as off)."""
    on = np.nan_to_num(np.asarray(flag, dtype=np.float64), nan=0.0) > 0.5
    if not len(on):
        return []
    starts = np.flatnonzero(on & ~np.concatenate(([False], on[:-1])))
    return [float(t[i]) for i in starts]


def merge(events: Iterable[Event], window: float = MERGE_WINDOW) -> list[Event]:
    """Events of one recording less than ``window`` apart counted as one (the first,
    with the largest peak of the merged ones)."""
    merged: list[Event] = []
    for e in sorted(events, key=lambda e: (e.recording, e.t)):
        last = merged[-1] if merged else None
        if last is not None and last.recording == e.recording and e.t - last.t < window:
            peaks = [p for p in (last.peak_decel, e.peak_decel) if p is not None]
            merged[-1] = Event(
                last.recording,
                last.t,
                max(peaks) if peaks else None,
                last.target_id if last.target_id is not None else e.target_id,
                last.out_of_path or e.out_of_path,
            )
        else:
            merged.append(e)
    return merged


def poisson_upper(k: int, exposure: float, confidence: float = 0.95) -> float:
    """Exact one-sided upper confidence bound of a Poisson rate: k events in exposure.

    ``chi2.ppf(q, 2k + 2) / 2`` is the inverse of the regularized lower incomplete gamma
    function, ``gammaincinv(k + 1, q)`` (:func:`gammaincinv`: pure Python, so that the
    session's summary does not import scipy)."""
    if exposure <= 0:
        return math.inf
    return gammaincinv(k + 1, confidence) / exposure


def clopper_pearson(x: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided exact (Clopper-Pearson) interval of a binomial proportion x / n
    (``beta.ppf(q, a, b)`` is ``betaincinv(a, b, q)``, see :func:`betaincinv`)."""
    if n <= 0:
        return 0.0, 1.0
    alpha = 1.0 - confidence
    lo = 0.0 if x == 0 else betaincinv(x, n - x + 1, alpha / 2)
    hi = 1.0 if x == n else betaincinv(x + 1, n - x, 1 - alpha / 2)
    return lo, hi


def lower_bound(x: int, n: int, confidence: float = 0.95) -> float:
    """One-sided exact lower confidence bound of a pass rate: ``beta.ppf(0.05, x, n-x+1)``."""
    if n <= 0 or x == 0:
        return 0.0
    return betaincinv(x, n - x + 1, 1.0 - confidence)


# The two special functions the bounds need, in plain Python (the textbook continued
# fractions and series, inverted by bisection to the last bit): scipy.special would cost
# a third of a second of import in every session that prints the fleet statistics.
_EPS = 1e-16
_TINY = 1e-300


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        for num in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + num / c
            c = c if abs(c) > _TINY else _TINY
            step = d * c
            h *= step
        if abs(step - 1.0) < _EPS:
            break
    return h


def gammainc(a: float, x: float) -> float:
    """Regularized lower incomplete gamma function P(a, x) for a > 0, x >= 0."""
    if x <= 0.0:
        return 0.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:  # the series
        term = total = 1.0 / a
        ap = a
        for _ in range(100_000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * _EPS:
                break
        return total * math.exp(log_front)
    b = x + 1.0 - a  # the continued fraction of Q(a, x) (modified Lentz)
    c, d = 1.0 / _TINY, 1.0 / b
    h = d
    for i in range(1, 100_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = b + an / c
        c = c if abs(c) > _TINY else _TINY
        step = d * c
        h *= step
        if abs(step - 1.0) < _EPS:
            break
    return 1.0 - math.exp(log_front) * h


def _bisect(f: Callable[[float], float], lo: float, hi: float) -> float:
    """The x in [lo, hi] where the increasing ``f`` crosses 0, to the last bit."""
    for _ in range(2000):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if f(mid) < 0.0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def betaincinv(a: float, b: float, p: float) -> float:
    """The x with I_x(a, b) = p (the quantile of the Beta(a, b) distribution)."""
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    return _bisect(lambda x: betainc(a, b, x) - p, 0.0, 1.0)


def gammaincinv(a: float, p: float) -> float:
    """The x with P(a, x) = p (the quantile of the Gamma(a, 1) distribution)."""
    if p <= 0.0:
        return 0.0
    hi = max(1.0, 2.0 * a)
    while gammainc(a, hi) < p:
        hi *= 2.0
    return _bisect(lambda x: gammainc(a, x) - p, 0.0, hi)


@dataclass(frozen=True)
class Rate:
    """``count`` events over ``km`` and ``hours`` of exposure, with Poisson upper bounds."""

    count: int
    km: float
    hours: float
    events: tuple[Event, ...] = ()

    @property
    def per_1000km(self) -> float | None:
        return self.count / self.km * 1000.0 if self.km > 0 else None

    @property
    def per_hour(self) -> float | None:
        return self.count / self.hours if self.hours > 0 else None

    @property
    def upper95_per_1000km(self) -> float | None:
        return poisson_upper(self.count, self.km) * 1000.0 if self.km > 0 else None

    @property
    def upper95_per_hour(self) -> float | None:
        return poisson_upper(self.count, self.hours) if self.hours > 0 else None


@dataclass(frozen=True)
class PassRate:
    """``passed`` of ``runs`` recordings passed, with the 95 % Clopper-Pearson interval."""

    passed: int
    runs: int

    @property
    def rate(self) -> float | None:
        return self.passed / self.runs if self.runs else None

    @property
    def interval95(self) -> tuple[float, float]:
        return clopper_pearson(self.passed, self.runs)

    @property
    def lower95(self) -> float:
        return lower_bound(self.passed, self.runs)


@dataclass(frozen=True)
class GroupStats:
    """The figures of one group of recordings (all, one scenario or one tag)."""

    name: str
    recordings: int
    invalid: int
    outcomes: Mapping[str, int]
    km: float
    hours: float
    activations: int
    warnings: int
    false_activations: Rate
    false_warnings: Rate
    pass_rate: PassRate
    recording_ids: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The figures as plain JSON (the results database stores them with the run)."""

        def rate(r: Rate) -> dict[str, Any]:
            events = [
                [e.recording, e.t, e.peak_decel, e.target_id, e.out_of_path] for e in r.events
            ]
            return {"count": r.count, "km": r.km, "hours": r.hours, "events": events}

        return {
            "name": self.name,
            "recordings": self.recordings,
            "invalid": self.invalid,
            "outcomes": dict(self.outcomes),
            "km": self.km,
            "hours": self.hours,
            "activations": self.activations,
            "warnings": self.warnings,
            "false_activations": rate(self.false_activations),
            "false_warnings": rate(self.false_warnings),
            "pass_rate": {"passed": self.pass_rate.passed, "runs": self.pass_rate.runs},
            "recording_ids": list(self.recording_ids),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GroupStats:
        def rate(d: Mapping[str, Any]) -> Rate:
            events = tuple(
                Event(
                    str(rec),
                    float(t),
                    None if peak is None else float(peak),
                    None if target is None else int(target),
                    bool(oop),
                )
                for rec, t, peak, target, oop in d.get("events") or ()
            )
            return Rate(int(d["count"]), float(d["km"]), float(d["hours"]), events)

        pr = data["pass_rate"]
        return cls(
            name=str(data["name"]),
            recordings=int(data["recordings"]),
            invalid=int(data["invalid"]),
            outcomes={str(k): int(v) for k, v in (data.get("outcomes") or {}).items()},
            km=float(data["km"]),
            hours=float(data["hours"]),
            activations=int(data["activations"]),
            warnings=int(data["warnings"]),
            false_activations=rate(data["false_activations"]),
            false_warnings=rate(data["false_warnings"]),
            pass_rate=PassRate(int(pr["passed"]), int(pr["runs"])),
            recording_ids=tuple(str(r) for r in data.get("recording_ids") or ()),
        )


def group_stats(name: str, facts: Sequence[RecordingFacts]) -> GroupStats:
    """Statistics of one group; invalid recordings are counted apart and excluded."""
    valid = [f for f in facts if f.valid]
    outcomes: dict[str, int] = {}
    for f in facts:
        outcomes[f.status] = outcomes.get(f.status, 0) + 1
    fa_events: list[Event] = []
    fa_km = fa_h = fw_km = fw_h = 0.0
    fw_events: list[Event] = []
    for f in valid:
        acts = merge(f.activations)
        if f.no_activation_expected:
            fa_events += acts
            fa_km += f.distance_m / 1000.0
            fa_h += f.duration_s / 3600.0
        else:
            fa_events += [e for e in acts if e.out_of_path]
        if f.no_warning_expected:
            fw_events += merge(f.warnings)
            fw_km += f.distance_m / 1000.0
            fw_h += f.duration_s / 3600.0
    # an errored recording (the function crashed, a stage failed) is a run that did not
    # pass: leaving it out would let a function that crashes where it fails pass the gate
    judged = valid
    return GroupStats(
        name=name,
        recordings=len(facts),
        invalid=len(facts) - len(valid),
        outcomes=outcomes,
        km=sum(f.distance_m for f in valid) / 1000.0,
        hours=sum(f.duration_s for f in valid) / 3600.0,
        activations=sum(len(merge(f.activations)) for f in valid),
        warnings=sum(len(merge(f.warnings)) for f in valid),
        false_activations=Rate(len(fa_events), fa_km, fa_h, tuple(fa_events)),
        false_warnings=Rate(len(fw_events), fw_km, fw_h, tuple(fw_events)),
        pass_rate=PassRate(sum(1 for f in judged if f.passed), len(judged)),
        recording_ids=tuple(f.recording for f in facts),
    )


def select(
    facts: Sequence[RecordingFacts], *, scenario: str | None = None, tag: str | None = None
) -> list[RecordingFacts]:
    """The recordings whose scenario matches the glob ``scenario`` and that carry ``tag``."""
    out = list(facts)
    if scenario is not None:
        out = [f for f in out if f.scenario and fnmatch.fnmatchcase(f.scenario, scenario)]
    if tag is not None:
        out = [f for f in out if any(fnmatch.fnmatchcase(t, tag) for t in f.tags)]
    return out


def fleet_stats(facts: Sequence[RecordingFacts]) -> list[GroupStats]:
    """Overall, per scenario and per tag statistics (groups sorted by name)."""
    groups = [group_stats("all", facts)]
    for scenario in sorted({f.scenario for f in facts if f.scenario}):
        groups.append(group_stats(f"scenario {scenario}", select(facts, scenario=scenario)))
    for tag in sorted({t for f in facts for t in f.tags}):
        groups.append(group_stats(f"tag {tag}", [f for f in facts if tag in f.tags]))
    return groups


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "inf"
    return f"{value:,.{digits}f}"


def stats_lines(groups: Sequence[GroupStats]) -> list[str]:
    """A fixed-width table of the groups for the terminal summary."""
    head = (
        "group",
        "recs",
        "invalid",
        "km",
        "h",
        "act",
        "warn",
        "FA/1000km (up95)",
        "FA/h (up95)",
        "FW/h (up95)",
        "pass rate [95 % CI]",
    )
    rows = [head]
    for g in groups:
        fa, fw, pr = g.false_activations, g.false_warnings, g.pass_rate
        lo, hi = pr.interval95
        rows.append(
            (
                g.name,
                str(g.recordings),
                str(g.invalid),
                _fmt(g.km, 1),
                _fmt(g.hours, 2),
                str(g.activations),
                str(g.warnings),
                f"{_fmt(fa.per_1000km)} ({_fmt(fa.upper95_per_1000km)})",
                f"{_fmt(fa.per_hour)} ({_fmt(fa.upper95_per_hour)})",
                f"{_fmt(fw.per_hour)} ({_fmt(fw.upper95_per_hour)})",
                "n/a"
                if pr.rate is None
                else f"{pr.passed}/{pr.runs} = {pr.rate:.2f} [{lo:.2f}, {hi:.2f}]",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines

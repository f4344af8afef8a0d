"""Scenario recordings: Euro NCAP car-to-car rear, false-activation and object-list drives.

``generate(out_dir, suite)`` writes each scenario as ``ncap/<name>.mf4``,
``false-activation/<name>.mf4`` or ``objects/<name>.mf4`` (laid out like a logger's file,
not with canonical names; the object-list folder also gets its ``channel_map.toml``)
plus a ``<name>.toml`` sidecar whose ``[expect]`` bounds are the reference function's
(:class:`~pytest_adsreplay.function.reference.TtcAeb` with its defaults), derived from
closed-form kinematics (``docs/physics.md``). ``expect=False`` leaves the bounds out;
``speeds``, ``gaps``, ``decels`` and ``overlaps`` replace the NCAP grid.

Noise and timestamp jitter come from a generator seeded by the scenario name, and the
MF4 header times are pinned, so reruns are byte-identical.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from pytest_adsreplay.errors import UsageError
from pytest_adsreplay.scenarios import false_activation as fa
from pytest_adsreplay.scenarios import objects as obj
from pytest_adsreplay.scenarios.fleet import fleet_plan, generate_fleet
from pytest_adsreplay.scenarios.ncap import (
    CCRM_MIN_CLOSING_KPH,
    CCRM_TARGET_KPH,
    ccrb,
    ccrm,
    ccrs,
    expectations,
)
from pytest_adsreplay.scenarios.synthesis import (
    Motion,
    Scenario,
    Target,
    sidecar_text,
    write_scenario,
)

__all__ = [
    "SCENARIOS",
    "SUITES",
    "Grid",
    "Motion",
    "Scenario",
    "Target",
    "expectations",
    "fleet_plan",
    "generate",
    "generate_fleet",
    "plan",
    "scenario",
    "sidecar_text",
    "write_scenario",
]

#: The default NCAP grid: CCRs and CCRm ego speeds (km/h), CCRb (deceleration, gap) cases.
CCRS_SPEEDS: tuple[float, ...] = tuple(range(10, 85, 5))
CCRM_SPEEDS: tuple[float, ...] = tuple(range(30, 85, 5))
CCRB_CASES = ((2.0, 12.0), (2.0, 40.0), (6.0, 12.0), (6.0, 40.0))

#: Accepted ranges of the scenario parameters (inclusive).
SPEED_RANGE = (10.0, 130.0)  # km/h: the radar's 160 m still covers TTC 4 s at 130 km/h
GAP_RANGE = (2.0, 150.0)  # m, CCRb
DECEL_RANGE = (0.5, 10.0)  # m/s², CCRb target

_FALSE_ACTIVATION: dict[str, Callable[[], Scenario]] = {
    "false-activation/no_target": fa.fa_no_target,
    "false-activation/lead_accelerating_away": fa.fa_lead_accelerating,
    "false-activation/adjacent_lane_slower_car": fa.fa_adjacent_lane,
    "false-activation/steady_following_2s": fa.fa_following,
    "false-activation/parked_cars_passing": fa.fa_parked_cars,
    "false-activation/lead_stops_gently": fa.fa_lead_stops,
    "false-activation/faster_car_cuts_in": fa.fa_cut_in,
}


@dataclass(frozen=True)
class Grid:
    """The NCAP scenario parameters; None keeps the default grid for that parameter.

    ``speeds``: ego km/h of CCRs and CCRm (CCRm from 25 km/h, 5 above its target);
    ``decels`` and ``gaps``: every combination is a CCRb case (both at 50 km/h);
    ``overlaps``: percent, each applied to every NCAP case (100 = centred, the default).
    """

    speeds: tuple[float, ...] | None = None
    gaps: tuple[float, ...] | None = None
    decels: tuple[float, ...] | None = None
    overlaps: tuple[float, ...] | None = None

    @property
    def is_default(self) -> bool:
        return self == Grid()

    def check(self) -> None:
        """UsageError naming the first value outside its accepted range."""
        for what, values, (lo, hi), unit in (
            ("--speeds", self.speeds, SPEED_RANGE, "km/h"),
            ("--gaps", self.gaps, GAP_RANGE, "m"),
            ("--decels", self.decels, DECEL_RANGE, "m/s^2"),
        ):
            for v in values or ():
                if not lo <= v <= hi:
                    raise UsageError(
                        f"{what} {v:g} {unit} is outside {lo:g}..{hi:g} {unit}",
                        hint=f"pass values from {lo:g} to {hi:g} {unit}, e.g. {what} 20,40",
                    )
        for p in self.overlaps or ():
            if not 0.0 < abs(p) <= 100.0:
                raise UsageError(
                    f"--overlap {p:g} % is outside 0 < |overlap| <= 100",
                    hint="100 is centred; 50 puts the target half a car to the right, "
                    "-50 to the left",
                )

    def ncap_builders(self) -> dict[str, Callable[[], Scenario]]:
        """Scenario name -> builder for every NCAP case of this grid."""
        out: dict[str, Callable[[], Scenario]] = {}
        speeds_s = _unique(self.speeds or CCRS_SPEEDS)
        speeds_m = _unique(self.speeds or CCRM_SPEEDS)
        if self.decels is None and self.gaps is None:
            cases: Sequence[tuple[float, float]] = CCRB_CASES
        else:
            cases = [
                (d, g)
                for d in _unique(self.decels or sorted({d for d, _ in CCRB_CASES}))
                for g in _unique(self.gaps or sorted({g for _, g in CCRB_CASES}))
            ]
        for o in _unique(self.overlaps or (100.0,)):
            sfx = "" if o == 100.0 else f"_o{o:g}"
            for v in speeds_s:
                out[f"ncap/CCRs_{v:g}kph{sfx}"] = partial(ccrs, v, overlap=o)
            for v in speeds_m:
                if v >= CCRM_TARGET_KPH + CCRM_MIN_CLOSING_KPH:
                    out[f"ncap/CCRm_{v:g}kph{sfx}"] = partial(ccrm, v, overlap=o)
            for d, g in cases:
                out[f"ncap/CCRb_d{d:g}_g{g:g}m{sfx}"] = partial(ccrb, d, g, overlap=o)
        return out


def _unique(values: Iterable[float]) -> list[float]:
    return list(dict.fromkeys(values))


_BUILDERS: dict[str, Callable[[], Scenario]] = {
    **Grid().ncap_builders(),
    **_FALSE_ACTIVATION,
    **obj.BUILDERS,
}

#: Every scenario name of the default grid (``<folder>/<file stem>``), sorted.
SCENARIOS: tuple[str, ...] = tuple(sorted(_BUILDERS))

#: Suites for ``adsreplay generate --suite``; ``bundled`` is what ``recordings/`` holds.
SUITES: dict[str, tuple[str, ...]] = {
    "ncap": tuple(n for n in SCENARIOS if n.startswith("ncap/")),
    "false-activation": tuple(n for n in SCENARIOS if n.startswith("false-activation/")),
    # Object lists (32 slots): every scenario in both layouts, with its channel map.
    "objects": tuple(n for n in SCENARIOS if n.startswith("objects/")),
    "all": SCENARIOS,
    "bundled": tuple(
        sorted(
            (
                *(f"ncap/CCRs_{v}kph" for v in (20, 40, 50, 60, 80)),
                *(f"ncap/CCRm_{v}kph" for v in (50, 70)),
                "ncap/CCRb_d6_g12m",
                "ncap/CCRb_d2_g40m",
                *(n for n in SCENARIOS if n.startswith("false-activation/")),
                "objects/cut_in",
                "objects/cut_out",
                "objects/curve_adjacent_lane_car",
            )
        )
    ),
    # Hours of normal driving whose recordings depend on --hours and --seed:
    # see generate_fleet.
    "fleet": (),
}


def _finish(sc: Scenario, expect: bool) -> Scenario:
    """``sc`` with the reference's ``[expect]`` bounds and its avoidance/mitigation tag."""
    if not expect:
        return sc
    bounds = obj.expectations(sc) if isinstance(sc, obj.ObjectScenario) else expectations(sc)
    tags = sc.tags
    if sc.kind != "false-activation" and bounds.get("brake") is not False and bounds:
        tags = (*tags, "avoidance" if bounds.get("collision") is False else "mitigation")
    return replace(sc, tags=tags, expect=bounds)


def _build(name: str, builders: dict[str, Callable[[], Scenario]], expect: bool) -> Scenario:
    sc = builders[name]()
    if sc.name != name:
        raise RuntimeError(f"scenario builder for {name!r} made {sc.name!r}")
    return _finish(sc, expect)


def scenario(name: str, *, expect: bool = True) -> Scenario:
    """The scenario called ``name`` (e.g. ``"ncap/CCRs_40kph"``) with its expectations."""
    if name not in _BUILDERS:
        raise UsageError(f"unknown scenario {name!r}", hint=f"known: {', '.join(SCENARIOS)}")
    return _build(name, _BUILDERS, expect)


def plan(suite: str = "all", grid: Grid | None = None, *, expect: bool = True) -> list[Scenario]:
    """The scenarios of ``suite`` (see ``SUITES``), on ``grid`` for the NCAP ones, by name."""
    grid = grid or Grid()
    if suite == "fleet":
        raise UsageError(
            "the fleet suite is planned by its length in hours",
            hint="use generate_fleet(out_dir, hours, seed) or adsreplay generate OUT "
            "--suite fleet --hours H",
        )
    if suite not in SUITES:
        raise UsageError(f"unknown suite {suite!r}", hint=f"choose one of: {', '.join(SUITES)}")
    if grid.is_default:
        return [_build(n, _BUILDERS, expect) for n in SUITES[suite]]
    if suite not in ("ncap", "all"):
        raise UsageError(
            f"scenario parameters (speeds, gaps, decels, overlap) do not apply to suite {suite!r}",
            hint="use --suite ncap or --suite all, or drop the parameters",
        )
    grid.check()
    builders = grid.ncap_builders()
    if suite == "all":
        builders.update(_FALSE_ACTIVATION)
        builders.update(obj.BUILDERS)
    return [_build(n, builders, expect) for n in sorted(builders)]


def generate(
    out_dir: str | Path,
    suite: str = "all",
    grid: Grid | None = None,
    *,
    expect: bool = True,
) -> list[Path]:
    """Write the scenarios of ``suite`` below ``out_dir``; the MF4 paths, sorted.

    Every scenario is built (and its bounds derived) before the first file is written,
    so a bad parameter leaves ``out_dir`` untouched.
    """
    scenarios = plan(suite, grid, expect=expect)
    out = Path(out_dir)
    return sorted(write_scenario(sc, out) for sc in scenarios)

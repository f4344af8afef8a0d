"""``adsreplay generate``: scenario recordings (MF4 + sidecar TOML) from closed-form physics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: ``--suite`` choices (the keys of ``pytest_adsreplay.scenarios.SUITES``; listed here so
#: building the parser does not import numpy).
SUITE_NAMES = ("all", "bundled", "false-activation", "fleet", "ncap", "objects")


def _numbers(text: str) -> tuple[float, ...]:
    """``"20,40"`` -> (20.0, 40.0); an argparse error naming the bad item otherwise."""
    out: list[float] = []
    for item in text.split(","):
        try:
            out.append(float(item))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{item.strip()!r} is not a number (give a comma-separated list, e.g. 20,40)"
            ) from None
    return tuple(out)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "generate",
        help="write scenario recordings (MF4 + sidecar TOML)",
        description="Write Euro NCAP car-to-car rear (CCRs, CCRm, CCRb), false-activation and "
        "object-list (--suite objects: cut-in, cut-out, curve, parked cars, overtaking traffic; "
        "32 slots, with their channel_map.toml) recordings with sidecars, or (--suite fleet "
        "--hours H) hours of normal driving for "
        "the fleet statistics and gates. The sidecars' [expect] bounds are those of the reference "
        "function pytest_adsreplay.reference:TtcAeb with its defaults; pass --no-expect for "
        "sidecars without bounds (add your function's own). The physics is in docs/physics.md.",
    )
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--suite", default="all", choices=SUITE_NAMES, help="default: all")
    p.add_argument(
        "--no-expect",
        dest="expect",
        action="store_false",
        help="write sidecars without [expect] bounds (no generated test items)",
    )
    fleet = p.add_argument_group("fleet suite (--suite fleet)")
    fleet.add_argument(
        "--hours",
        type=float,
        metavar="H",
        help="hours of normal driving (highway, stop-and-go, curves, overtaking) in "
        "recordings of 2-5 minutes; required with --suite fleet",
    )
    fleet.add_argument(
        "--seed", type=int, default=0, metavar="N", help="seed of the fleet suite (default: 0)"
    )
    grid = p.add_argument_group(
        "NCAP scenario parameters (comma-separated lists; --suite ncap or all)"
    )
    grid.add_argument(
        "--speeds",
        type=_numbers,
        metavar="KPH,...",
        help="ego speeds of CCRs and CCRm, km/h (default: 10..80 and 30..80 in 5 km/h steps; "
        "CCRm from 25 km/h: 5 above its 20 km/h target)",
    )
    grid.add_argument(
        "--gaps", type=_numbers, metavar="M,...", help="CCRb gaps, m (default: 12,40)"
    )
    grid.add_argument(
        "--decels",
        type=_numbers,
        metavar="MPS2,...",
        help="CCRb target decelerations, m/s^2 (default: 2,6); every gap with every deceleration",
    )
    grid.add_argument(
        "--overlap",
        type=_numbers,
        metavar="PCT,...",
        help="lateral overlap, %% (default: 100 = centred; 50 puts the target 0.9 m to the "
        "right, -50 to the left)",
    )
    p.set_defaults(func=run)


def run_fleet(args: argparse.Namespace) -> int:
    """``--suite fleet``: hours of normal driving where no function may warn or brake."""
    from pytest_adsreplay.errors import UsageError
    from pytest_adsreplay.scenarios.fleet import fleet_plan, write_fleet

    if args.hours is None:
        raise UsageError(
            "--suite fleet needs --hours",
            hint="e.g. adsreplay generate OUT --suite fleet --hours 1",
        )
    if any(x is not None for x in (args.speeds, args.gaps, args.decels, args.overlap)):
        raise UsageError(
            "scenario parameters (speeds, gaps, decels, overlap) do not apply to suite 'fleet'",
            hint="drop them; the fleet suite takes --hours and --seed",
        )
    scenarios = fleet_plan(args.hours, args.seed, expect=args.expect)
    out = Path(args.out_dir)
    for sc in scenarios:
        print(write_fleet(sc, out).as_posix())
    km = sum(sc.params["distance_m"] for sc in scenarios) / 1000.0
    hours = sum(sc.duration for sc in scenarios) / 3600.0
    print(
        f"wrote {len(scenarios)} fleet recordings (+ sidecars) to {out}: {km:,.1f} km in "
        f"{hours:.2f} h, seed {args.seed}; "
        + ("[expect] brake = false, fcw = false" if args.expect else "no [expect] tables"),
        file=sys.stderr,
    )
    return 0


def run(args: argparse.Namespace) -> int:
    from pytest_adsreplay.scenarios import Grid, plan, write_scenario

    if args.suite == "fleet":
        return run_fleet(args)
    if args.hours is not None:
        from pytest_adsreplay.errors import UsageError

        raise UsageError(
            f"--hours applies to --suite fleet, not {args.suite!r}",
            hint="add --suite fleet, or drop --hours",
        )

    grid = Grid(speeds=args.speeds, gaps=args.gaps, decels=args.decels, overlaps=args.overlap)
    scenarios = plan(args.suite, grid, expect=args.expect)
    out = Path(args.out_dir)
    for path in sorted(write_scenario(sc, out) for sc in scenarios):
        print(path.as_posix())
    note = (
        "[expect] bounds are the reference function's (pytest_adsreplay.reference:TtcAeb, "
        "defaults); --no-expect leaves them out"
        if args.expect
        else "sidecars without [expect] bounds"
    )
    print(f"wrote {len(scenarios)} recordings (+ sidecars) to {out}; {note}", file=sys.stderr)
    maps = sorted({(out / sc.name).parent / n for sc in scenarios for n in sc.extra_files()})
    for m in maps:
        print(
            f"replay the object-list recordings with --channel-map {m.as_posix()}", file=sys.stderr
        )
    unbounded = [sc.name for sc in scenarios if args.expect and not sc.expect]
    if unbounded:
        print(
            f"no [expect] bounds for {len(unbounded)} scenario(s) whose target the reference's "
            f"lateral gate does not reliably keep in path: {', '.join(unbounded)}",
            file=sys.stderr,
        )
    return 0

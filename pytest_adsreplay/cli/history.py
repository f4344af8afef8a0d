"""``adsreplay history`` and ``adsreplay compare``: the results database's runs and deltas."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

DEFAULT_DB = ".adsreplay/results.sqlite"


def _kpi_name(text: str) -> str:
    from pytest_adsreplay.results.store import KPI_COLUMNS

    names = [n for n, _ in KPI_COLUMNS]
    if text not in names:
        raise argparse.ArgumentTypeError(f"unknown KPI {text!r} (one of {', '.join(names)})")
    return text


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db_help = "results database: SQLite path or postgresql://… (default: $ADSREPLAY_DB, else "
    db_help += f"{DEFAULT_DB})"
    hist = subparsers.add_parser(
        "history", help="runs, newest first; with RECORDING its KPI trend over the runs"
    )
    hist.add_argument("recording", nargs="?", metavar="RECORDING", help="recording id")
    hist.add_argument("--db", metavar="URL", default=None, help=db_help)
    hist.add_argument("--limit", type=int, default=20, metavar="N", help="runs shown (20)")
    hist.add_argument(
        "--kpi", action="append", type=_kpi_name, metavar="NAME", help="KPI column (repeatable)"
    )
    hist.add_argument(
        "--stats",
        nargs="?",
        const="latest",
        metavar="RUN",
        help="fleet statistics of a run (id, unique prefix, latest or previous; default: "
        "the latest run)",
    )
    hist.set_defaults(func=run)

    cmp = subparsers.add_parser(
        "compare", help="per-recording KPI deltas between two runs, new and fixed failures"
    )
    cmp.add_argument("run_a", metavar="RUN_A", help="run id, unique prefix, latest or previous")
    cmp.add_argument("run_b", metavar="RUN_B", help="run id, unique prefix, latest or previous")
    cmp.add_argument("--db", metavar="URL", default=None, help=db_help)
    cmp.add_argument("--all", action="store_true", help="also list unchanged recordings")
    cmp.set_defaults(func=run)


def open_db(url: str | None) -> Any:
    """The results store for history/compare; a missing SQLite file is an error, not a new
    empty database."""
    from pytest_adsreplay.errors import UsageError
    from pytest_adsreplay.results.store import is_postgres, open_store

    url = url or os.environ.get("ADSREPLAY_DB", "").strip() or DEFAULT_DB
    if not is_postgres(url):
        path = Path(url[len("sqlite:///") :] if url.startswith("sqlite:///") else url)
        if not path.exists():
            raise UsageError(
                f"no results database at {path}",
                hint="run pytest with the plugin first, or pass --db (a SQLite path or "
                "postgresql://…; default: $ADSREPLAY_DB, else .adsreplay/results.sqlite)",
            )
    try:
        return open_store(url)
    except UsageError as exc:
        from pytest_adsreplay.urls import mask_url

        raise UsageError(
            f"results database {mask_url(url)}: {exc.message}", hint=exc.hint
        ) from None


def run(args: argparse.Namespace) -> int:
    from pytest_adsreplay.errors import UsageError
    from pytest_adsreplay.results.history import (
        TREND_KPIS,
        compare_lines,
        recording_lines,
        runs_lines,
    )

    store = open_db(args.db)
    if args.command == "compare":
        lines = compare_lines(store, args.run_a, args.run_b, show_all=args.all)
    elif args.stats is not None:
        from pytest_adsreplay.results.history import stats_lines

        if args.recording:
            raise UsageError(
                f"--stats shows a run, not recording {args.recording!r}",
                hint="adsreplay history --stats [RUN]",
            )
        lines = stats_lines(store, args.stats)
    elif args.recording:
        lines = recording_lines(store, args.recording, args.limit, args.kpi or TREND_KPIS)
    else:
        lines = runs_lines(store, args.limit)
    print("\n".join(lines))
    return 0

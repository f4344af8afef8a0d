"""The ``adsreplay`` command: generate, inspect, worker, history, compare, cache."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_adsreplay.errors import AdsReplayError


def _cmd_generate(args: argparse.Namespace) -> int:
    from pytest_adsreplay.scenarios.generate import generate

    paths = generate(Path(args.out_dir), args.suite)
    for p in paths:
        print(p.as_posix())
    print(f"wrote {len(paths)} recordings (+ sidecars) to {args.out_dir}", file=sys.stderr)
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from pytest_adsreplay.cli.inspect import inspect_recording
    from pytest_adsreplay.signals import load_channel_map

    cmap = load_channel_map(args.channel_map) if args.channel_map else None
    print(inspect_recording(Path(args.file), cmap))
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from pytest_adsreplay.queue.worker import run_worker

    return run_worker(args.redis_url, burst=args.burst, namespace=args.namespace)


DEFAULT_DB = ".adsreplay/results.sqlite"


def _open_db(url: str | None) -> object:
    """The results store for history/compare; a missing SQLite file is an error, not a new
    empty database."""
    from pathlib import Path

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


def _cmd_history(args: argparse.Namespace) -> int:
    from pytest_adsreplay.results.history import TREND_KPIS, recording_lines, runs_lines

    store = _open_db(args.db)
    if args.recording:
        lines = recording_lines(store, args.recording, args.limit, args.kpi or TREND_KPIS)
    else:
        lines = runs_lines(store, args.limit)
    print("\n".join(lines))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from pytest_adsreplay.results.history import compare_lines

    store = _open_db(args.db)
    print("\n".join(compare_lines(store, args.run_a, args.run_b, show_all=args.all)))
    return 0


def _cache_dir(given: str | None) -> Path:
    from pytest_adsreplay.queue.cache import DEFAULT_DIR

    return Path(given or os.environ.get("ADSREPLAY_CACHE_DIR", "").strip() or DEFAULT_DIR)


def _cmd_cache(args: argparse.Namespace) -> int:
    from pytest_adsreplay.queue import cache

    where = _cache_dir(args.cache_dir)
    if args.action == "info":
        print(cache.stats(where).text())
    elif args.action == "clear":
        gone = cache.clear(where)
        print(f"removed {gone.entries} entries ({gone.size / 1e6:.1f} MB) from {where}")
    else:
        gone = cache.prune(where, args.max_size)
        left = cache.stats(where)
        print(
            f"removed {gone.entries} least recently used entries ({gone.size / 1e6:.1f} MB); "
            f"{left.text()}"
        )
    return 0


def _size(text: str) -> int:
    from pytest_adsreplay.queue.cache import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _kpi_name(text: str) -> str:
    from pytest_adsreplay.results.store import KPI_COLUMNS

    names = [n for n, _ in KPI_COLUMNS]
    if text not in names:
        raise argparse.ArgumentTypeError(f"unknown KPI {text!r} (one of {', '.join(names)})")
    return text


def build_parser() -> argparse.ArgumentParser:
    from pytest_adsreplay.scenarios.generate import SUITES

    parser = argparse.ArgumentParser(
        prog="adsreplay",
        description="pytest-adsreplay tools: scenario recordings, inspection, workers, run history",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write scenario recordings (MF4 + sidecar TOML)")
    gen.add_argument("out_dir", metavar="OUT_DIR")
    gen.add_argument("--suite", default="all", choices=sorted(SUITES), help="default: all")
    gen.set_defaults(func=_cmd_generate)

    ins = sub.add_parser("inspect", help="groups, channels, units, rates, map resolution, findings")
    ins.add_argument("file", metavar="FILE.mf4")
    ins.add_argument("--channel-map", metavar="MAP", default=None)
    ins.set_defaults(func=_cmd_inspect)

    wk = sub.add_parser("worker", help="run a worker on the plugin's queues (distributed mode)")
    wk.add_argument(
        "--redis-url",
        default=None,
        metavar="URL",
        help="default: $ADSREPLAY_REDIS_URL (keeps a password out of the process list)",
    )
    wk.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    wk.add_argument("--namespace", default="adsreplay", help="queue prefix (default: adsreplay)")
    wk.set_defaults(func=_cmd_worker)

    db_help = "results database: SQLite path or postgresql://… (default: $ADSREPLAY_DB, else "
    db_help += f"{DEFAULT_DB})"
    hist = sub.add_parser(
        "history", help="runs, newest first; with RECORDING its KPI trend over the runs"
    )
    hist.add_argument("recording", nargs="?", metavar="RECORDING", help="recording id")
    hist.add_argument("--db", metavar="URL", default=None, help=db_help)
    hist.add_argument("--limit", type=int, default=20, metavar="N", help="runs shown (20)")
    hist.add_argument(
        "--kpi", action="append", type=_kpi_name, metavar="NAME", help="KPI column (repeatable)"
    )
    hist.set_defaults(func=_cmd_history)

    cmp = sub.add_parser(
        "compare", help="per-recording KPI deltas between two runs, new and fixed failures"
    )
    cmp.add_argument("run_a", metavar="RUN_A", help="run id, unique prefix, latest or previous")
    cmp.add_argument("run_b", metavar="RUN_B", help="run id, unique prefix, latest or previous")
    cmp.add_argument("--db", metavar="URL", default=None, help=db_help)
    cmp.add_argument("--all", action="store_true", help="also list unchanged recordings")
    cmp.set_defaults(func=_cmd_compare)

    from pytest_adsreplay.queue.cache import DEFAULT_DIR

    cache_help = f"cache directory (default: $ADSREPLAY_CACHE_DIR, else {DEFAULT_DIR})"
    cch = sub.add_parser("cache", help="the decoded-signal cache: size, clear, prune")
    csub = cch.add_subparsers(dest="action", required=True)
    for action, text in (("info", "entries and size"), ("clear", "delete every entry")):
        p = csub.add_parser(action, help=text)
        p.add_argument("--cache-dir", metavar="DIR", default=None, help=cache_help)
    prn = csub.add_parser("prune", help="delete least recently used entries down to a size")
    prn.add_argument(
        "--max-size",
        type=_size,
        required=True,
        metavar="SIZE",
        help="size to keep, e.g. 500MB or 2GB",
    )
    prn.add_argument("--cache-dir", metavar="DIR", default=None, help=cache_help)
    cch.set_defaults(func=_cmd_cache)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except AdsReplayError as exc:
        print(f"adsreplay {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

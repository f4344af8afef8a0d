"""``adsreplay cache``: size, clear and prune the decoded-signal cache and the download
cache of recordings in object storage (``objects/``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _size(text: str) -> int:
    from pytest_adsreplay.queue.cache import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _cache_dir(given: str | None) -> Path:
    from pytest_adsreplay.queue.cache import DEFAULT_DIR

    return Path(given or os.environ.get("ADSREPLAY_CACHE_DIR", "").strip() or DEFAULT_DIR)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cache_help = "cache directory (default: $ADSREPLAY_CACHE_DIR, else .adsreplay/cache)"
    cch = subparsers.add_parser(
        "cache", help="the decoded-signal and object download caches: size, clear, prune"
    )
    actions = cch.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("info", "entries and size"), ("clear", "delete every entry")):
        p = actions.add_parser(action, help=text)
        p.add_argument("--cache-dir", metavar="DIR", default=None, help=cache_help)
    prn = actions.add_parser(
        "prune",
        help="forget the hashes of files that are gone and leftovers of killed writers; "
        "with --max-size also delete least recently used entries down to that size",
    )
    prn.add_argument(
        "--max-size",
        type=_size,
        default=None,
        metavar="SIZE",
        help="size to keep, e.g. 500MB or 2GB (default: keep every entry)",
    )
    prn.add_argument("--cache-dir", metavar="DIR", default=None, help=cache_help)
    cch.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Each action covers the decoded-signal entries and the object download cache
    (``objects/``); ``prune --max-size`` bounds each of the two to that size."""
    from pytest_adsreplay.queue import cache

    where = _cache_dir(args.cache_dir)
    if args.action == "info":
        print(cache.stats(where).text())
        print(f"object downloads: {cache.object_stats(where).text()}")
    elif args.action == "clear":
        gone = cache.clear(where)
        print(f"removed {gone.entries} entries ({gone.size / 1e6:.1f} MB) from {where}")
        objs = cache.object_clear(where)
        print(
            f"removed {objs.entries} downloaded objects ({objs.size / 1e6:.1f} MB) from {objs.path}"
        )
    else:
        limit = sys.maxsize if args.max_size is None else args.max_size
        gone = cache.prune(where, limit)
        objs = cache.object_prune(where, limit)
        left = cache.stats(where)
        kept = "" if args.max_size is not None else " (no --max-size: every entry kept)"
        print(
            f"forgot the hashes of files that are gone; removed {gone.entries} least recently "
            f"used entries ({gone.size / 1e6:.1f} MB){kept}; {left.text()}"
        )
        print(
            f"object downloads: removed {objs.entries} least recently used "
            f"({objs.size / 1e6:.1f} MB); {cache.object_stats(where).text()}"
        )
    return 0

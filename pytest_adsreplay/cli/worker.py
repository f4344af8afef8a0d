"""``adsreplay worker``: a worker on the plugin's queues, on any machine (distributed mode)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "worker", help="run a worker on the plugin's queues (distributed mode)"
    )
    p.add_argument(
        "--redis-url",
        default=None,
        metavar="URL",
        help="default: $ADSREPLAY_REDIS_URL (keeps a password out of the process list)",
    )
    p.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    p.add_argument("--namespace", default="adsreplay", help="queue prefix (default: adsreplay)")
    p.add_argument(
        "--functions",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder holding copies of FMU / shared-library functions under test, found "
        "by their sha256 when the session's path has no such file (repeatable)",
    )
    p.add_argument(
        "--trust-shipped-functions",
        action="store_true",
        help="fetch a missing FMU / shared-library function from the broker (uploaded by "
        "the session, verified by sha256) and run it: only for a Redis whose writers you trust",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pytest_adsreplay.queue.worker import run_worker

    return run_worker(
        args.redis_url,
        burst=args.burst,
        namespace=args.namespace,
        functions=args.functions,
        trust_shipped_functions=args.trust_shipped_functions,
    )

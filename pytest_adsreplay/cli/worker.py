"""``adsreplay worker``: a worker on the plugin's queues, on any machine (distributed mode)."""

from __future__ import annotations

import argparse
import os

FUNCTIONS_ENV = "ADSREPLAY_WORKER_FUNCTIONS"  # same name as queue.trust.FUNCTIONS_ENV


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
    p.add_argument(
        "--function",
        action="append",
        default=[],
        metavar="FUNCTION",
        dest="allowed_functions",
        help="a function under test this worker may run: module:attr, or the path of an "
        "FMU / shared library (or sha256:HEX of a shipped one); repeatable, also "
        f"${FUNCTIONS_ENV} (comma-separated). Without it (or --trust-any-function) the "
        "worker refuses every recording",
    )
    p.add_argument(
        "--trust-any-function",
        action="store_true",
        help="run whatever function a job names: only for a Redis whose writers you fully "
        "trust (anyone who can write to it can run code on this worker)",
    )
    p.set_defaults(func=run)


def allowed_functions(args: argparse.Namespace) -> list[str]:
    """The --function specs, then those of ``$ADSREPLAY_WORKER_FUNCTIONS``."""
    env = os.environ.get(FUNCTIONS_ENV, "")
    return [*args.allowed_functions, *(s.strip() for s in env.split(",") if s.strip())]


def run(args: argparse.Namespace) -> int:
    from pytest_adsreplay.queue.worker import run_worker

    return run_worker(
        args.redis_url,
        burst=args.burst,
        namespace=args.namespace,
        functions=args.functions,
        trust_shipped_functions=args.trust_shipped_functions,
        allowed_functions=allowed_functions(args),
        trust_any_function=args.trust_any_function,
    )

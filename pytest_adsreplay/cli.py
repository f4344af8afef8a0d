"""The ``adsreplay`` command: generate, inspect, worker."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import AdsReplayError


def _cmd_generate(args: argparse.Namespace) -> int:
    from .generate import generate

    paths = generate(Path(args.out_dir), args.suite)
    for p in paths:
        print(p.as_posix())
    print(f"wrote {len(paths)} recordings (+ sidecars) to {args.out_dir}", file=sys.stderr)
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .inspect import inspect_recording
    from .signals import load_channel_map

    cmap = load_channel_map(args.channel_map) if args.channel_map else None
    print(inspect_recording(Path(args.file), cmap))
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from .worker import run_worker

    return run_worker(args.redis_url, burst=args.burst, namespace=args.namespace)


def build_parser() -> argparse.ArgumentParser:
    from .generate import SUITES

    parser = argparse.ArgumentParser(
        prog="adsreplay",
        description="pytest-adsreplay tools: scenario recordings, inspection, workers",
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
    wk.add_argument("--redis-url", required=True, metavar="URL")
    wk.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    wk.add_argument("--namespace", default="adsreplay", help="queue prefix (default: adsreplay)")
    wk.set_defaults(func=_cmd_worker)
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

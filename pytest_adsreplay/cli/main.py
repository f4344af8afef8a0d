"""The ``adsreplay`` command: builds the parser from one module per subcommand, dispatches.

Each subcommand module has ``register(subparsers)`` (adds its parser(s) and sets
``func=run``) and ``run(args) -> int``. Modules are imported when the parser is built;
each one imports what its command needs only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from pytest_adsreplay import __version__
from pytest_adsreplay.errors import AdsReplayError

#: Subcommand modules of ``pytest_adsreplay.cli``, in the order ``--help`` lists them.
SUBCOMMANDS = ("generate", "inspect", "function", "worker", "history", "cache")
#: Modules the command works without (not installed in every checkout yet).
OPTIONAL = frozenset({"function"})


def _load(name: str) -> ModuleType | None:
    module = f"pytest_adsreplay.cli.{name}"
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if name in OPTIONAL and exc.name == module:
            return None
        raise


def _inspect_register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``inspect`` for a ``cli.inspect`` module that only offers ``inspect_recording``."""
    ins = subparsers.add_parser(
        "inspect", help="groups, channels, units, rates, map resolution, findings"
    )
    ins.add_argument("file", metavar="FILE.mf4")
    ins.add_argument("--channel-map", metavar="MAP", default=None)
    ins.set_defaults(func=_inspect_run)


def _inspect_run(args: argparse.Namespace) -> int:
    from pytest_adsreplay.cli.inspect import inspect_recording
    from pytest_adsreplay.signals import load_channel_map

    cmap = load_channel_map(args.channel_map) if args.channel_map else None
    print(inspect_recording(Path(args.file), cmap))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adsreplay",
        description="pytest-adsreplay tools: scenario recordings, inspection, workers, run "
        "history, the decoded-signal cache",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s (pytest-adsreplay) {__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = _load(name)
        if module is None:
            continue
        register = getattr(module, "register", None)
        if register is None and name == "inspect":
            register = _inspect_register
        if register is None:
            raise RuntimeError(f"pytest_adsreplay.cli.{name} has no register(subparsers)")
        register(sub)
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

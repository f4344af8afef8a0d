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
from types import ModuleType

from pytest_adsreplay import __version__
from pytest_adsreplay.errors import AdsReplayError

#: Subcommand modules of ``pytest_adsreplay.cli``, in the order ``--help`` lists them.
SUBCOMMANDS = ("generate", "inspect", "function", "worker", "history", "cache")
#: Modules the command may do without (skipped when absent); every module is required today.
OPTIONAL: frozenset[str] = frozenset()


def _load(name: str) -> ModuleType | None:
    module = f"pytest_adsreplay.cli.{name}"
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if name in OPTIONAL and exc.name == module:
            return None
        raise


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

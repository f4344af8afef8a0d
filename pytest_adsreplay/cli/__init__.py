"""The ``adsreplay`` command line: one module per subcommand."""

from __future__ import annotations

from pytest_adsreplay.cli.main import main

__all__ = ["main"]

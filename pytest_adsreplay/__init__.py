"""pytest-adsreplay: replay MF4 drive recordings through an AEB function and test its timing.

The package imports nothing heavy at import time: the pytest plugin loads in every pytest
run of the environment, so numpy, asammdf and rq are imported where they are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["ReplayResult", "__version__", "replay_file"]

if TYPE_CHECKING:
    from pytest_adsreplay.replay import ReplayResult, replay_file


def __getattr__(name: str) -> Any:
    if name in ("replay_file", "ReplayResult"):
        from pytest_adsreplay import replay

        return getattr(replay, name)
    raise AttributeError(name)

"""Small helpers around asammdf shared by the reader and the CAN decoder."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def quiet_asammdf() -> Iterator[list[bool]]:
    """Silence asammdf's own error log while we turn its failures into RecordingErrors.

    Also swallows the AttributeError ``MDF4.__del__`` raises for a file it failed to
    open: without this the garbage collector reports it later, at a random place (under
    pytest ``-W error`` that fails an unrelated test). A caller that caught such a
    failure appends to the yielded list; only then (or when an exception leaves the
    block) is the garbage collected here, since a full collection costs ~0.2 s.
    """
    import gc
    import sys
    import warnings

    logger = logging.getLogger("asammdf")
    level = logger.level
    old_hook = sys.unraisablehook

    def hook(u: Any) -> None:
        if isinstance(u.exc_value, AttributeError) and "MDF" in repr(u.object):
            return
        if isinstance(u.exc_value, ResourceWarning):  # its open file handles (-W error)
            return
        old_hook(u)

    logger.setLevel(logging.CRITICAL + 1)
    sys.unraisablehook = hook
    failed: list[bool] = []
    try:
        yield failed
    finally:
        logger.setLevel(level)
        if failed or sys.exc_info()[0] is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                gc.collect()
        sys.unraisablehook = old_hook


def is_v4(mdf: Any) -> bool:
    return str(mdf.version).startswith("4")

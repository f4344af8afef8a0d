"""Raw CAN bus logging: recognizing bus-event groups and decoding them with DBC files."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_adsreplay.mdf.support import is_v4, quiet_asammdf


@dataclass(frozen=True)
class CanInfo:
    """What decoding raw CAN frames with the channel map's DBC files found.

    IDs are ``(can_id, bus_channel)`` pairs as asammdf reports them (bus 0 = any).
    """

    dbc: tuple[str, ...]
    frames: int
    found: tuple[tuple[int, str], ...] = ()
    unknown: tuple[tuple[int, int], ...] = ()
    error: str = ""

    def unknown_text(self, limit: int = 10) -> str:
        ids = [f"0x{i:X} (bus {b})" for i, b in self.unknown[:limit]]
        more = f" (+{len(self.unknown) - limit} more)" if len(self.unknown) > limit else ""
        return ", ".join(ids) + more


def is_can_logging(mdf: Any, grp: Any) -> bool:
    if not is_v4(mdf):
        return False
    from asammdf.blocks import v4_constants as v4c

    flagged = bool(grp.channel_group.flags & v4c.FLAG_CG_BUS_EVENT)
    return flagged and any(ch.name == "CAN_DataFrame" for ch in grp.channels)


def decode_can(mdf: Any, dbc: Sequence[tuple[str | Path, int]], frames: int) -> tuple[Any, CanInfo]:
    """``(decoded MDF or None, what decoding found)`` for the bus-logging groups of ``mdf``.

    The decoded messages come back as an asammdf MDF whose channels are ``Message.Signal``;
    it is None when decoding failed or matched no frame (the caller closes it).
    """
    files = tuple(str(p) for p, _ in dbc)
    try:
        with quiet_asammdf(), contextlib.redirect_stdout(io.StringIO()):
            decoded = mdf.extract_bus_logging(
                database_files={"CAN": [(str(p), int(bus)) for p, bus in dbc]}
            )
    except Exception as exc:
        return None, CanInfo(files, frames, error=f"{type(exc).__name__}: {exc}")
    call = (getattr(mdf, "last_call_info", None) or {}).get("CAN", {}) or {}
    found: list[tuple[int, str]] = []
    for ids in (call.get("found_ids") or {}).values():
        for key, message in ids:
            can_id = key[0] if isinstance(key, tuple) else key
            found.append((int(can_id), str(message)))
    unknown = sorted((int(i), int(b)) for i, b in call.get("unknown_ids") or ())
    if decoded is not None and not decoded.groups:
        decoded.close()
        decoded = None
    return decoded, CanInfo(files, frames, tuple(sorted(set(found))), tuple(unknown))

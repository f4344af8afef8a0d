"""Writing MDF files with asammdf: channel groups of samples, and raw CAN bus logging."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class ChannelData:
    """One channel to write: samples on its group's timestamps (2-D samples: an array
    channel with one row of elements per timestamp)."""

    name: str
    samples: np.ndarray
    unit: str = ""
    comment: str = ""
    conversion: dict[str, Any] | None = None


@dataclass
class GroupData:
    """One channel group to write (one acquisition rate, e.g. a bus or a sensor)."""

    name: str
    timestamps: np.ndarray
    channels: Sequence[ChannelData] = field(default_factory=list)


def write_recording(
    path: str | Path,
    groups: Sequence[GroupData],
    *,
    header_comment: str | None = None,
    version: str = "4.10",
) -> Path:
    """Write ``groups`` as an uncompressed MDF file (one channel group per GroupData).

    ``version`` "4.10" writes MF4; "3.30" (or another 3.x/2.x) writes classic MDF for
    ``.mdf``/``.dat`` files. ``header_comment`` is plain text or an ``<HDcomment>`` XML
    with ``<common_properties>`` (see :func:`parse_header_comment`).
    """
    from asammdf import MDF, Signal

    path = Path(path)
    mdf = MDF(version=version)
    try:
        if header_comment is not None:
            mdf.header.comment = header_comment
        for group in groups:
            ts = np.asarray(group.timestamps, dtype=np.float64)
            sigs = [
                Signal(
                    _samples(ch),
                    ts,
                    name=ch.name,
                    unit=ch.unit,
                    comment=ch.comment,
                    conversion=ch.conversion,
                )
                for ch in group.channels
            ]
            mdf.append(sigs, acq_name=group.name, comment=group.name)
        saved = Path(mdf.save(path, overwrite=True, compression=0))
    finally:
        mdf.close()
    if saved != path:  # asammdf picks the suffix (.dat -> .mdf, .MF4 -> .mf4)
        saved.replace(path)
    return path


def _samples(ch: ChannelData) -> np.ndarray:
    """A channel's samples as asammdf takes them: 2-D samples (one row of ``k`` elements
    per timestamp) become an MF4 array channel of ``k`` elements."""
    samples = np.asarray(ch.samples)
    if samples.ndim == 2:
        dtype = np.dtype([(ch.name, samples.dtype, (samples.shape[1],))])
        return np.rec.fromarrays([samples], dtype=dtype)
    return samples


def write_can_recording(
    path: str | Path,
    frames: Sequence[tuple[float, int, bytes]],
    *,
    bus: int = 1,
    name: str = "CAN1",
    header_comment: str | None = None,
) -> Path:
    """Write raw CAN bus logging (``(t, can_id, payload)`` frames) as an MF4 file.

    One bus-event channel group with a ``CAN_DataFrame`` structure channel, as CAN loggers
    write it; decode it with a DBC through the channel map's ``[can]`` table.
    """
    from asammdf import MDF, Signal
    from asammdf.blocks import v4_constants as v4c
    from asammdf.blocks.source_utils import Source

    path = Path(path)
    ordered = sorted(frames, key=lambda f: f[0])
    n = len(ordered)
    rec = np.zeros(
        n,
        dtype=[
            ("CAN_DataFrame.BusChannel", "u1"),
            ("CAN_DataFrame.ID", "<u4"),
            ("CAN_DataFrame.IDE", "u1"),
            ("CAN_DataFrame.DLC", "u1"),
            ("CAN_DataFrame.DataLength", "u1"),
            ("CAN_DataFrame.DataBytes", "u1", (8,)),
        ],
    )
    rec["CAN_DataFrame.BusChannel"] = bus
    rec["CAN_DataFrame.ID"] = [f[1] for f in ordered]
    rec["CAN_DataFrame.IDE"] = [int(f[1] > 0x7FF) for f in ordered]
    sizes = [min(len(f[2]), 8) for f in ordered]
    rec["CAN_DataFrame.DLC"] = sizes
    rec["CAN_DataFrame.DataLength"] = sizes
    payload = b"".join(f[2][:8].ljust(8, b"\0") for f in ordered)
    rec["CAN_DataFrame.DataBytes"] = np.frombuffer(payload, dtype="u1").reshape(n, 8)
    ts = np.array([f[0] for f in ordered], dtype=np.float64)
    src = Source(
        name=name,
        path=name,
        comment="",
        source_type=Source.SOURCE_BUS,
        bus_type=Source.BUS_TYPE_CAN,
    )
    mdf: Any = MDF(version="4.10")
    try:
        if header_comment is not None:
            mdf.header.comment = header_comment
        mdf.append(
            [Signal(rec, ts, name="CAN_DataFrame", source=src)], acq_name=name, acq_source=src
        )
        mdf.groups[0].channel_group.flags |= v4c.FLAG_CG_BUS_EVENT
        saved = Path(mdf.save(path, overwrite=True, compression=0))
    finally:
        mdf.close()
    if saved != path:
        saved.replace(path)
    return path

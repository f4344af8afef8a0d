"""MDF files (MF4 and classic MDF 3/2): the only subpackage that imports asammdf.

asammdf itself is imported lazily, when a file is opened or written.
"""

from __future__ import annotations

from pytest_adsreplay.mdf.can import CanInfo
from pytest_adsreplay.mdf.metadata import SUPPORTED_VERSIONS, parse_header_comment, read_metadata
from pytest_adsreplay.mdf.reader import (
    ChannelInfo,
    ChannelSamples,
    GroupInfo,
    Mf4Reader,
    RecordingInfo,
    open_recording,
)
from pytest_adsreplay.mdf.writer import (
    ChannelData,
    GroupData,
    write_can_recording,
    write_recording,
)

__all__ = [
    "SUPPORTED_VERSIONS",
    "CanInfo",
    "ChannelData",
    "ChannelInfo",
    "ChannelSamples",
    "GroupData",
    "GroupInfo",
    "Mf4Reader",
    "RecordingInfo",
    "open_recording",
    "parse_header_comment",
    "read_metadata",
    "write_can_recording",
    "write_recording",
]

"""Recordings: discovery and test ids, sidecar files, and their ``[expect]`` bounds.

No asammdf and no pytest here: this package decides *which* recordings exist and what
they are expected to do, not how they are read.
"""

from __future__ import annotations

from pytest_adsreplay.recordings.discovery import (
    RECORDING_SUFFIXES,
    discover,
    glob_recordings,
    is_recording_name,
    rejection,
)
from pytest_adsreplay.recordings.expectations import (
    COUNT_KPIS,
    EVENT_EXPECTATIONS,
    Bound,
    Violation,
    boundable_kpis,
    check_expectations,
    format_observed,
    parse_expect,
)
from pytest_adsreplay.recordings.recording import (
    Recording,
    absolute_path,
    file_sha256,
    metadata_matches,
    recording_id,
    stream_sha256,
)
from pytest_adsreplay.recordings.sidecar import load_recording, read_sidecar, sidecar_path

__all__ = [
    "COUNT_KPIS",
    "EVENT_EXPECTATIONS",
    "RECORDING_SUFFIXES",
    "Bound",
    "Recording",
    "Violation",
    "absolute_path",
    "boundable_kpis",
    "check_expectations",
    "discover",
    "file_sha256",
    "format_observed",
    "glob_recordings",
    "is_recording_name",
    "load_recording",
    "metadata_matches",
    "parse_expect",
    "read_sidecar",
    "recording_id",
    "rejection",
    "sidecar_path",
    "stream_sha256",
]

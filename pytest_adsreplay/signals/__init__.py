"""Canonical signals: units, the channel map, channel resolution, resampling, data quality.

``read_signals`` turns a recording into :class:`Signals` on the cycle grid; the gate in
:mod:`.quality` judges whether they are good enough to test a function on.
"""

from __future__ import annotations

from pytest_adsreplay.signals.channel_map import (
    CANONICAL_SIGNALS,
    FLAG_SIGNALS,
    HELD_SIGNALS,
    REQUIRED_SIGNALS,
    SIGNAL_DIMENSIONS,
    TARGET_SIGNALS,
    ChannelMap,
    ChannelRef,
    DbcFile,
    SignalSpec,
    load_channel_map,
)
from pytest_adsreplay.signals.quality import (
    Finding,
    GateSettings,
    assess,
    expects_target,
    gate,
)
from pytest_adsreplay.signals.read import can_notes, check_timestamps, read_signals
from pytest_adsreplay.signals.resample import (
    DEFAULT_CYCLE_TIME,
    GAP_THRESHOLD,
    Signals,
    Trace,
    find_gaps,
    make_grid,
    resample,
)
from pytest_adsreplay.signals.resolve import Resolution, resolve_channels
from pytest_adsreplay.signals.units import SI_UNITS, known_units, to_si, unit_info

__all__ = [
    "CANONICAL_SIGNALS",
    "DEFAULT_CYCLE_TIME",
    "FLAG_SIGNALS",
    "GAP_THRESHOLD",
    "HELD_SIGNALS",
    "REQUIRED_SIGNALS",
    "SIGNAL_DIMENSIONS",
    "SI_UNITS",
    "TARGET_SIGNALS",
    "ChannelMap",
    "ChannelRef",
    "DbcFile",
    "Finding",
    "GateSettings",
    "Resolution",
    "SignalSpec",
    "Signals",
    "Trace",
    "assess",
    "can_notes",
    "check_timestamps",
    "expects_target",
    "find_gaps",
    "gate",
    "known_units",
    "load_channel_map",
    "make_grid",
    "read_signals",
    "resample",
    "resolve_channels",
    "to_si",
    "unit_info",
]

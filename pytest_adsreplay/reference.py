"""The reference AEB function under its public path: ``pytest_adsreplay.reference:TtcAeb``."""

from __future__ import annotations

from pytest_adsreplay.function.reference import FULL, IDLE, PARTIAL, WARNING, TtcAeb

__all__ = ["FULL", "IDLE", "PARTIAL", "WARNING", "TtcAeb"]

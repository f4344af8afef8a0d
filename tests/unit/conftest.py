"""Fixtures of the unit tests: results-store backends."""

from __future__ import annotations

from store_backends import postgres_url, store_url

__all__ = ["postgres_url", "store_url"]

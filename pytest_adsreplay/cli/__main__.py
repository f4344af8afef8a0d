"""``python -m pytest_adsreplay.cli``."""

from __future__ import annotations

import sys

from pytest_adsreplay.cli.main import main

sys.exit(main())

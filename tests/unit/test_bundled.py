"""Every bundled recording, replayed inline through the reference function, meets its sidecar."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_adsreplay import replay_file
from pytest_adsreplay.recordings import check_expectations, discover

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings"
BUNDLED = discover([RECORDINGS])
#: The map written beside the object-list recordings; it reads the others too.
OBJECTS_MAP = RECORDINGS / "objects" / "channel_map.toml"


def test_bundled_set_is_complete() -> None:
    assert len(BUNDLED) == 19
    assert all(r.expect for r in BUNDLED)


@pytest.mark.parametrize("rec", BUNDLED, ids=[r.id for r in BUNDLED])
def test_reference_function_meets_sidecar(rec) -> None:
    cmap = OBJECTS_MAP if rec.id.startswith("objects/") else None
    result = replay_file(
        rec.path, "pytest_adsreplay.reference:TtcAeb", recording_id=rec.id, channel_map=cmap
    )
    violations = check_expectations(rec.expect, result.kpis)
    assert not violations, "\n".join(v.describe() for v in violations)

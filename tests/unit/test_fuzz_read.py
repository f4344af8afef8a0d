"""Bounded fuzzing: mutated and truncated recordings only ever raise the project's errors.

The read stage (``replay.read``: asammdf, the layout checks of ``mf4``, resampling and the
data-quality gate) gets the bytes of a small valid recording with bytes flipped, 8-byte
words overwritten (sizes, links, offsets) and the tail cut off. It must return signals or
raise an ``AdsReplayError`` subclass, within a time bound: no other exception, no hang, no
crash (before the layout checks, a corrupt record offset made asammdf's C extension
corrupt the heap and kill the process). A fixed, derandomized example budget keeps CI
stable and fast.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_adsreplay.errors import AdsReplayError
from pytest_adsreplay.mdf import ChannelData, GroupData, write_recording
from pytest_adsreplay.replay import read

#: How many clean reads of the same kind of file one mutated read may take: a clean read
#: takes ~20 ms, a hang is unbounded; the bound scales with the machine's current speed.
TIME_BOUND_READS = 200
#: ... and never less than this many seconds.
TIME_BOUND_FLOOR = 10.0
_CLEAN_READ: list[float] = []


def _clean_read_seconds() -> float:
    """Seconds of one clean read of a small valid recording, measured once per process."""
    if not _CLEAN_READ:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "clean.mf4"
            path.write_bytes(_valid(Path(d) / "v.mf4", "4.10"))
            start = time.monotonic()
            read(path, None, 0.01, recording_id="clean", expect_target="fuzzing")
            _CLEAN_READ.append(time.monotonic() - start)
    return _CLEAN_READ[0]


INTERESTING_WORDS = (0, 1, 8, 64, 2**31 - 1, 2**32, 2**40, 2**63 - 1, 2**64 - 1)


def _valid(path: Path, version: str) -> bytes:
    t = np.arange(0, 1.0, 0.01)
    tr = np.arange(0, 1.0, 0.05)
    write_recording(
        path,
        [
            GroupData(
                "Vehicle",
                t,
                [
                    ChannelData("VehSpd", np.full(t.size, 36.0), "km/h"),
                    ChannelData("DrvBrkPdl", (t > 0.5).astype(np.uint8)),
                    ChannelData(
                        "VehAccX",
                        (np.sin(t) * 1000).astype(np.int16),
                        "m/s^2",
                        conversion={"a": 0.001, "b": 0.0},
                    ),
                ],
            ),
            GroupData(
                "Radar",
                tr,
                [
                    ChannelData("ObjDist", 40.0 - tr, "m"),
                    ChannelData("ObjRelSpd", np.full(tr.size, -1.0), "m/s"),
                ],
            ),
        ],
        header_comment='<HDcomment><TX>fuzz</TX><common_properties><e name="driver">x</e>'
        "</common_properties></HDcomment>",
        version=version,
    )
    return path.read_bytes()


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, bytes]]:
    root = tmp_path_factory.mktemp("fuzz")
    return {
        "4.10": (root / "fuzzed.mf4", _valid(root / "valid.mf4", "4.10")),
        "3.30": (root / "fuzzed.mdf", _valid(root / "valid.mdf", "3.30")),
    }


@st.composite
def mutations(draw: st.DrawFn, size: int) -> tuple[int, list[tuple[int, bytes]]]:
    """(length to keep, [(offset, bytes to write)]) for a file of ``size`` bytes."""
    keep = draw(st.one_of(st.just(size), st.integers(0, size)))
    edits: list[tuple[int, bytes]] = []
    for _ in range(draw(st.integers(0, 6))):
        offset = draw(st.integers(0, size - 8))
        if draw(st.booleans()):
            edits.append((offset, bytes([draw(st.integers(0, 255))])))
        else:
            word = draw(st.one_of(st.sampled_from(INTERESTING_WORDS), st.integers(0, 2**64 - 1)))
            edits.append((offset, word.to_bytes(8, "little")))
    return keep, edits


def _mutate(data: bytes, keep: int, edits: list[tuple[int, bytes]]) -> bytes:
    out = bytearray(data)
    for offset, chunk in edits:
        out[offset : offset + len(chunk)] = chunk
    return bytes(out[:keep])


def _read_only_project_errors(path: Path) -> None:
    start = time.monotonic()
    try:
        sig = read(path, None, 0.01, recording_id="fuzzed", expect_target="fuzzing")
    except AdsReplayError as exc:
        assert exc.recording == "fuzzed"
    else:
        assert sig.t.size >= 2 and all(v.shape == sig.t.shape for v in sig.values.values())
    elapsed = time.monotonic() - start
    if elapsed > TIME_BOUND_FLOOR:  # only then is the machine's speed worth measuring
        bound = max(TIME_BOUND_FLOOR, TIME_BOUND_READS * _clean_read_seconds())
        assert elapsed < bound, f"reading a mutated file took {elapsed:.1f} s (bound {bound:.1f})"


FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(data=st.data())
def test_mutated_mf4_raises_only_project_errors(
    originals: dict[str, tuple[Path, bytes]], data: st.DataObject
) -> None:
    path, valid = originals["4.10"]
    keep, edits = data.draw(mutations(len(valid)))
    path.write_bytes(_mutate(valid, keep, edits))
    _read_only_project_errors(path)


@settings(FUZZ, max_examples=30)
@given(data=st.data())
def test_mutated_mdf3_raises_only_project_errors(
    originals: dict[str, tuple[Path, bytes]], data: st.DataObject
) -> None:
    path, valid = originals["3.30"]
    keep, edits = data.draw(mutations(len(valid)))
    path.write_bytes(_mutate(valid, keep, edits))
    _read_only_project_errors(path)


def test_every_truncation_of_the_header_region(originals: dict[str, tuple[Path, bytes]]) -> None:
    """Cut points through the whole metadata region, in steps (not left to chance)."""
    path, valid = originals["4.10"]
    for keep in range(0, len(valid), 211):
        path.write_bytes(valid[:keep])
        _read_only_project_errors(path)


def test_the_unmutated_files_read(originals: dict[str, tuple[Path, bytes]]) -> None:
    for path, valid in originals.values():
        path.write_bytes(valid)
        sig = read(path, None, 0.01)
        assert sig.values["ego_speed"][0] == pytest.approx(10.0)

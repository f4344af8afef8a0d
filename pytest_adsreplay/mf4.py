"""The only module that touches asammdf: reading mapped channels and writing recordings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class ChannelData:
    """One channel to write: samples on its group's timestamps."""

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
    path: str | Path, groups: Sequence[GroupData], *, header_comment: str | None = None
) -> Path:
    """Write ``groups`` as an uncompressed MDF 4.10 file (one channel group per GroupData)."""
    from asammdf import MDF, Signal

    path = Path(path)
    mdf = MDF(version="4.10")
    try:
        if header_comment is not None:
            mdf.header.comment = header_comment
        for group in groups:
            ts = np.asarray(group.timestamps, dtype=np.float64)
            sigs = [
                Signal(
                    np.asarray(ch.samples),
                    ts,
                    name=ch.name,
                    unit=ch.unit,
                    comment=ch.comment,
                    conversion=ch.conversion,
                )
                for ch in group.channels
            ]
            mdf.append(sigs, acq_name=group.name, comment=group.name)
        mdf.save(path, overwrite=True, compression=0)
    finally:
        mdf.close()
    return path


# ----------------------------------------------------------------------------- reading

_INT_TYPES = (0, 1, 2, 3)  # v4 data types: unsigned/signed, Intel/Motorola
_FLOAT_TYPES = (4, 5)
_CONVERSION_KINDS = {
    0: "none",
    1: "linear",
    2: "rational",
    3: "algebraic",
    4: "table (interpolated)",
    5: "table",
    6: "range table",
    7: "value-to-text",
    8: "range-to-text",
    9: "text-to-value",
    10: "text-to-text",
    11: "bitfield-to-text",
}
#: Conversions whose physical values stay discrete: integer channels keep previous-value hold.
_DISCRETE_CONVERSIONS = frozenset(
    {"none", "table", "range table", "value-to-text", "range-to-text", "bitfield-to-text"}
)
_MASTER_TYPES = (2, 3)  # master, virtual master
_READ_HINT = "re-export it from the logger, or check that the file was copied completely"


@dataclass(frozen=True)
class ChannelInfo:
    """Metadata of one channel in a recording (no samples)."""

    name: str
    group: int
    index: int
    unit: str
    dtype: str
    conversion: str
    comment: str = ""

    @property
    def ref(self) -> str:
        """``Name@group/index`` as a channel map accepts it."""
        return f"{self.name}@{self.group}/{self.index}"

    @property
    def numeric(self) -> bool:
        return self.dtype.startswith(("uint", "int", "float"))

    @property
    def discrete(self) -> bool:
        """Integer-valued physical values (ints without a scaling conversion, enums)."""
        return self.dtype.startswith(("uint", "int")) and self.conversion in _DISCRETE_CONVERSIONS


@dataclass(frozen=True)
class GroupInfo:
    """Metadata of one channel group (one acquisition rate)."""

    index: int
    name: str
    samples: int
    channels: tuple[ChannelInfo, ...]


@dataclass(frozen=True)
class RecordingInfo:
    """What a recording contains, read from its metadata blocks only."""

    path: str
    size: int
    version: str
    start_time: str
    groups: tuple[GroupInfo, ...]

    def channels(self) -> list[ChannelInfo]:
        return [c for g in self.groups for c in g.channels]

    @cached_property
    def _by_name(self) -> dict[str, list[ChannelInfo]]:
        index: dict[str, list[ChannelInfo]] = {}
        for c in self.channels():
            index.setdefault(c.name, []).append(c)
        return index

    def occurrences(self, name: str) -> list[ChannelInfo]:
        """Every channel called ``name`` (several when the name is duplicated)."""
        return list(self._by_name.get(name, ()))

    def channel_names(self) -> list[str]:
        return sorted(self._by_name)

    def duplicates(self) -> dict[str, list[ChannelInfo]]:
        return {n: list(cs) for n, cs in sorted(self._by_name.items()) if len(cs) > 1}


@dataclass
class ChannelSamples:
    """One channel's samples (float64, NaN where invalidation bits say invalid)."""

    channel: ChannelInfo
    timestamps: np.ndarray
    samples: np.ndarray


def _subject(path: Path, recording: str | None) -> str:
    """The path, or "the file" when the error's recording id already is that path."""
    return "the file" if recording is not None and Path(recording) == path else str(path)


def _recording_error(path: Path, what: str, recording: str | None) -> Any:
    from .errors import RecordingError

    return RecordingError(
        f"{_subject(path, recording)} {what}", recording=recording, hint=_READ_HINT
    )


def _check_header(path: Path, recording: str | None) -> None:
    """Cheap checks before asammdf: exists, not empty, MDF magic, version 4.x."""
    from .errors import RecordingError

    if not path.exists():
        raise RecordingError(
            f"{_subject(path, recording)} does not exist",
            recording=recording,
            hint="check the --recordings path; the file may have been moved or deleted",
        )
    if path.is_dir():
        raise _recording_error(path, "is a directory, not an MF4 file", recording)
    size = path.stat().st_size
    if size == 0:
        raise _recording_error(path, "is empty (0 bytes)", recording)
    with path.open("rb") as fh:
        head = fh.read(16)
    if not head.startswith((b"MDF ", b"UnFinMF ")):
        raise _recording_error(
            path, f"is not an MF4 file (it starts with {head[:8]!r}, not b'MDF     ')", recording
        )
    version = head[8:16].decode("ascii", "replace").strip(" \0")
    if not version.startswith("4"):
        raise RecordingError(
            f"{_subject(path, recording)} is MDF version {version!r}, not MF4 (4.x)",
            recording=recording,
            hint="convert it with asammdf: MDF(path).convert('4.10').save('out.mf4')",
        )
    if size < 64 + 104:
        raise _recording_error(path, f"is truncated ({size} bytes, no header block)", recording)


class _QuietHalfBuiltMdf:
    """Swallow the AttributeError asammdf's ``MDF4.__del__`` raises for a file it failed to open.

    Without this the garbage collector reports it as an unraisable exception later, at a
    random place (under pytest ``-W error`` that fails an unrelated test).
    """

    def __enter__(self) -> _QuietHalfBuiltMdf:
        import sys

        self._old = sys.unraisablehook

        def hook(u: Any) -> None:
            if isinstance(u.exc_value, AttributeError) and "MDF" in repr(u.object):
                return
            self._old(u)

        sys.unraisablehook = hook
        return self

    def __exit__(self, *exc: object) -> None:
        import gc
        import sys

        gc.collect()
        sys.unraisablehook = self._old


def _dtype_text(channel: Any) -> str:
    dt, bits = channel.data_type, channel.bit_count
    if dt in (0, 1):
        return f"uint{bits}"
    if dt in (2, 3):
        return f"int{bits}"
    if dt in _FLOAT_TYPES:
        return f"float{bits}"
    if dt in (6, 7, 8, 9, 17):
        return "string"
    if dt == 10:
        return "bytes"
    return f"data type {dt}"


def _conversion_text(channel: Any) -> str:
    conv = channel.conversion
    if conv is None:
        return "none"
    kind = _CONVERSION_KINDS.get(conv.conversion_type, f"type {conv.conversion_type}")
    if kind == "linear" and float(conv.a) == 1.0 and float(conv.b) == 0.0:
        return "none"
    return kind


class Mf4Reader:
    """An open MF4 file: metadata in :attr:`info`, samples read on demand.

    Use :func:`open_recording`; every failure is a RecordingError naming the file.
    """

    def __init__(self, path: str | Path, *, recording: str | None = None) -> None:
        from .errors import AdsReplayError

        self.path = Path(path)
        self.recording = recording
        _check_header(self.path, recording)
        from asammdf import MDF

        failure = ""
        with _QuietHalfBuiltMdf():
            try:
                self._mdf: Any = MDF(self.path)
            except Exception as exc:
                failure = f"{type(exc).__name__}: {exc}"
        if failure:
            raise _recording_error(
                self.path,
                f"cannot be read ({failure}); it is probably truncated or corrupt",
                recording,
            )
        try:
            self.info = self._build_info()
        except AdsReplayError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise _recording_error(
                self.path, f"has unreadable metadata ({type(exc).__name__}: {exc})", recording
            ) from None

    def _build_info(self) -> RecordingInfo:
        mdf = self._mdf
        groups = []
        for gi, grp in enumerate(mdf.groups):
            cg = grp.channel_group
            name = (getattr(cg, "acq_name", "") or "").strip() or (cg.comment or "").strip()
            chans = []
            for ci, ch in enumerate(grp.channels):
                if ch.channel_type in _MASTER_TYPES:
                    continue
                conv = ch.conversion
                unit = (conv and conv.unit) or ch.unit or ""
                chans.append(
                    ChannelInfo(
                        name=ch.name,
                        group=gi,
                        index=ci,
                        unit=unit,
                        dtype=_dtype_text(ch),
                        conversion=_conversion_text(ch),
                        comment=(ch.comment or "").strip(),
                    )
                )
            groups.append(GroupInfo(gi, name or f"group {gi}", int(cg.cycles_nr), tuple(chans)))
        start = mdf.header.start_time
        return RecordingInfo(
            path=str(self.path),
            size=self.path.stat().st_size,
            version=str(mdf.version),
            start_time=start.isoformat() if start is not None else "",
            groups=tuple(groups),
        )

    def read(self, channels: Sequence[ChannelInfo]) -> list[ChannelSamples]:
        """Samples of exactly these channels; numeric conversions applied, enums kept raw."""
        from .errors import RecordingError

        if not channels:
            return []
        items = [(c.name, c.group, c.index) for c in channels]
        try:
            sigs = self._mdf.select(items, ignore_value2text_conversions=True)
        except Exception as exc:
            raise _recording_error(
                self.path,
                f"cannot read channels {', '.join(c.ref for c in channels)} "
                f"({type(exc).__name__}: {exc}); the data blocks are probably corrupt",
                self.recording,
            ) from None
        out = []
        for info, sig in zip(channels, sigs, strict=True):
            try:
                samples = np.array(sig.samples, dtype=np.float64)  # own copy, not a file view
            except (TypeError, ValueError):
                raise RecordingError(
                    f"channel {info.ref} holds {sig.samples.dtype} samples, not numbers",
                    recording=self.recording,
                    hint="map a numeric channel in the channel map",
                ) from None
            if samples.ndim != 1:
                raise RecordingError(
                    f"channel {info.ref} is an array channel (shape {samples.shape[1:]} per "
                    "sample); only scalar channels can be mapped",
                    recording=self.recording,
                    hint="map a scalar channel in the channel map",
                )
            bits = sig.invalidation_bits
            if bits is not None:
                samples[np.asarray(bits, dtype=bool)] = np.nan
            ts = np.array(sig.timestamps, dtype=np.float64)
            out.append(ChannelSamples(info, ts, samples))
        return out

    def master(self, group: int) -> np.ndarray:
        """The timestamps of one channel group (float64 seconds)."""
        try:
            return np.asarray(self._mdf.get_master(group), dtype=np.float64)
        except Exception as exc:
            raise _recording_error(
                self.path,
                f"cannot read the time channel of group {group} ({type(exc).__name__}: {exc})",
                self.recording,
            ) from None

    def close(self) -> None:
        mdf, self._mdf = getattr(self, "_mdf", None), None
        if mdf is not None:
            mdf.close()

    def __enter__(self) -> Mf4Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_recording(path: str | Path, *, recording: str | None = None) -> Mf4Reader:
    """Open an MF4 file for reading; a RecordingError names the file and what to do."""
    return Mf4Reader(path, recording=recording)

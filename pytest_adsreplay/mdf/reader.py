"""The only module that touches asammdf: opening recordings and reading their channels.

Reads MDF 4 (``.mf4``) and MDF 3/2 (``.mdf``, ``.dat``) through asammdf. Every problem
with a file is a :class:`~pytest_adsreplay.errors.RecordingError` naming it; a file that
reads but has no usable time base is an :class:`~pytest_adsreplay.errors.InvalidRecordingError`.

asammdf trusts a file's block layout: a corrupt record size or byte offset makes its C
extension read (and write) outside its buffers, which crashes the worker. So before any
sample is read, :meth:`Mf4Reader.read` checks that every channel it reads lies inside its
group's record and that the data blocks hold as many records as the group declares.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from pytest_adsreplay.errors import InvalidRecordingError, RecordingError
from pytest_adsreplay.mdf.can import CanInfo, decode_can, is_can_logging
from pytest_adsreplay.mdf.metadata import SUPPORTED_VERSIONS, parse_header_comment
from pytest_adsreplay.mdf.support import is_v4, quiet_asammdf

#: asammdf reads the mapped channels of a group in fragments of this many bytes of records
#: (its defaults read 64-256 MB or whole groups at a time: memory would grow with the file).
READ_FRAGMENT_SIZE = 8 * 2**20

_V4 = {
    "master": (2, 3),
    "virtual": (3, 6),
    "uint": (0, 1),
    "int": (2, 3),
    "float": (4, 5),
    "string": (6, 7, 8, 9, 17),
    "bytes": (10,),
}
_V3 = {
    "master": (1,),
    "virtual": (),
    "uint": (0, 9, 13),
    "int": (1, 10, 14),
    "float": (2, 3, 11, 12, 15, 16),
    "string": (7,),
    "bytes": (8,),
}
_CONVERSION_KINDS_V4 = {
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
_CONVERSION_KINDS_V3 = {
    65535: "none",
    0: "linear",
    1: "table (interpolated)",
    2: "table",
    6: "polynomial",
    7: "exponential",
    8: "logarithmic",
    9: "rational",
    10: "formula",
    11: "value-to-text",
    12: "range-to-text",
    132: "date",
    133: "time",
}
#: Conversions whose physical values stay discrete: integer channels keep previous-value hold.
_DISCRETE_CONVERSIONS = frozenset(
    {"none", "table", "range table", "value-to-text", "range-to-text", "bitfield-to-text"}
)
_READ_HINT = "re-export it from the logger, or check that the file was copied completely"
_SYNC_TYPES = {0: "none", 1: "time", 2: "angle", 3: "distance", 4: "index"}
#: MF4 channel-group flag of a group holding variable-length signal data (VLSD/VLSC).
_FLAG_CG_VLSD = 1
#: A channel decoded from a bus by another tool is often named ``CAN2.Message.Signal``.
_BUS_PREFIX = re.compile(r"^(?:CAN|CANFD|LIN|FLX|ETH)\d*\.(?=[^.]+\.[^.])")
#: zlib cannot expand data more than about 1032:1; a DZ block claiming more is corrupt.
_MAX_INFLATE_RATIO = 1100


@dataclass(frozen=True)
class ChannelInfo:
    """Metadata of one channel in a recording (no samples).

    ``kind`` is "scalar", "array" (an MF4 array channel) or "structure" (a composed
    channel such as a raw CAN frame); only scalars can feed a canonical signal.
    ``aliases`` are other names the channel answers to (MF4 display names; for a signal
    decoded from raw CAN, the bare DBC signal name and ``Bus.Message.Signal``).
    """

    name: str
    group: int
    index: int
    unit: str
    dtype: str
    conversion: str
    comment: str = ""
    kind: str = "scalar"
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """``Name@group/index`` as a channel map accepts it."""
        return f"{self.name}@{self.group}/{self.index}"

    @property
    def numeric(self) -> bool:
        return self.kind == "scalar" and self.dtype.startswith(("uint", "int", "float"))

    @property
    def discrete(self) -> bool:
        """Integer-valued physical values (ints without a scaling conversion, enums)."""
        return self.dtype.startswith(("uint", "int")) and self.conversion in _DISCRETE_CONVERSIONS


@dataclass(frozen=True)
class GroupInfo:
    """Metadata of one channel group (one acquisition rate).

    ``time`` is False when the group has no time master channel (asammdf would then
    number the samples 0, 1, 2, … as if they were seconds). ``bus`` is "CAN" for a raw
    CAN bus-logging group, ``decoded`` the DBC file a decoded message group came from.
    ``payload`` marks a group that only stores the variable-length bytes of another
    group's channel (an MF4 VLSD group, as CAN loggers write for frame payloads): it has
    no time channel of its own and needs none.
    """

    index: int
    name: str
    samples: int
    channels: tuple[ChannelInfo, ...]
    time: bool = True
    bus: str = ""
    decoded: str = ""
    master: str = ""
    payload: bool = False


@dataclass(frozen=True)
class RecordingInfo:
    """What a recording contains, read from its metadata blocks only."""

    path: str
    size: int
    version: str
    start_time: str
    groups: tuple[GroupInfo, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    can: CanInfo | None = None

    def channels(self) -> list[ChannelInfo]:
        return [c for g in self.groups for c in g.channels]

    @cached_property
    def _by_name(self) -> dict[str, list[ChannelInfo]]:
        index: dict[str, list[ChannelInfo]] = {}
        for c in self.channels():
            for name in (c.name, *c.aliases):
                if c not in index.setdefault(name, []):
                    index[name].append(c)
        return index

    def occurrences(self, name: str) -> list[ChannelInfo]:
        """Every channel called ``name`` (several when the name is duplicated)."""
        return list(self._by_name.get(name, ()))

    def channel_names(self) -> list[str]:
        return sorted({c.name for c in self.channels()})

    def duplicates(self) -> dict[str, list[ChannelInfo]]:
        by_name: dict[str, list[ChannelInfo]] = {}
        for c in self.channels():
            by_name.setdefault(c.name, []).append(c)
        return {n: cs for n, cs in sorted(by_name.items()) if len(cs) > 1}

    def raw_bus_groups(self) -> list[GroupInfo]:
        return [g for g in self.groups if g.bus]


@dataclass
class ChannelSamples:
    """One channel's samples (float64, NaN where invalidation bits say invalid)."""

    channel: ChannelInfo
    timestamps: np.ndarray
    samples: np.ndarray


def _subject(path: Path, recording: str | None) -> str:
    """The path, or "the file" when the error's recording id already is that path."""
    return "the file" if recording is not None and Path(recording) == path else str(path)


def _recording_error(
    path: Path, what: str, recording: str | None, hint: str = _READ_HINT
) -> RecordingError:
    return RecordingError(f"{_subject(path, recording)} {what}", recording=recording, hint=hint)


def _check_file(path: Path, recording: str | None) -> tuple[int, str]:
    """Cheap checks before asammdf: exists, readable, not empty, MDF magic and version."""
    try:
        is_dir = path.is_dir()
        exists = is_dir or path.exists() or path.is_symlink()
    except OSError:
        is_dir, exists = False, True
    if not exists:
        raise RecordingError(
            f"{_subject(path, recording)} does not exist",
            recording=recording,
            hint="check the path and its spelling; the file may have been moved or deleted",
        )
    if is_dir:
        raise _recording_error(
            path,
            "is a directory, not an MDF file",
            recording,
            hint="rename the directory (a recording is a file ending in .mf4, .mdf or .dat) "
            "or move it out of the recordings folder",
        )
    try:
        with path.open("rb") as fh:
            size = path.stat().st_size
            head = fh.read(64)
    except PermissionError:
        raise _recording_error(
            path,
            "cannot be opened: permission denied",
            recording,
            hint="make the file readable for the user running pytest and the workers "
            "(e.g. chmod a+r), or remove it from the recordings",
        ) from None
    except OSError as exc:
        raise _recording_error(
            path, f"cannot be opened: {exc.strerror or exc}", recording
        ) from None
    if size == 0 or not head:
        raise _recording_error(path, "is empty (0 bytes)", recording)
    if not head.startswith((b"MDF ", b"UnFinMF ")):
        raise _recording_error(
            path,
            f"is not an MF4/MDF file (it starts with {head[:8]!r}, not b'MDF     ')",
            recording,
            hint="only ASAM MDF recordings (.mf4, .mdf, .dat) can be replayed; " + _READ_HINT,
        )
    version = head[8:16].decode("ascii", "replace").strip(" \0")
    if not version.startswith(SUPPORTED_VERSIONS):
        raise RecordingError(
            f"{_subject(path, recording)} is MDF version {version!r}, which cannot be read "
            "(asammdf reads MDF 2.x, 3.x and 4.x)",
            recording=recording,
            hint=_READ_HINT,
        )
    minimum = 64 + (104 if version.startswith("4") else 164)
    if size < minimum:
        raise _recording_error(
            path, f"is truncated ({size} bytes, the header block is incomplete)", recording
        )
    return size, version


def _codes(mdf: Any) -> dict[str, tuple[int, ...]]:
    return _V4 if is_v4(mdf) else _V3


def _dtype_text(channel: Any, codes: Mapping[str, tuple[int, ...]]) -> str:
    dt, bits = channel.data_type, channel.bit_count
    for kind in ("uint", "int", "float"):
        if dt in codes[kind]:
            return f"{kind}{bits}"
    if dt in codes["string"]:
        return "string"
    if dt in codes["bytes"]:
        return "bytes"
    return f"data type {dt}"


def _conversion_text(channel: Any, v4: bool) -> str:
    conv = channel.conversion
    if conv is None:
        return "none"
    kinds = _CONVERSION_KINDS_V4 if v4 else _CONVERSION_KINDS_V3
    kind = kinds.get(conv.conversion_type, f"type {conv.conversion_type}")
    if kind == "linear" and _is_identity(conv):
        return "none"
    if kind == "value-to-text" and v4:
        default: Any = (getattr(conv, "referenced_blocks", None) or {}).get("default_addr")
        numeric = type(default).__name__ == "ChannelConversion" and default.conversion_type in (
            1,
            2,
            3,
        )
        if numeric and not (default.conversion_type == 1 and _is_identity(default)):
            return "value-to-text, numeric default"  # physical values: not an enum
    return kind


def _is_identity(conv: Any) -> bool:
    """A linear conversion's factors are ``1 * x + 0`` (False when they cannot be read)."""
    try:
        return float(conv.a) == 1.0 and float(conv.b) == 0.0
    except (AttributeError, TypeError, ValueError):
        return False


def _kind(deps: Any) -> str:
    if not deps:
        return "scalar"
    return "array" if any(type(d).__name__ == "ChannelArrayBlock" for d in deps) else "structure"


def _unit(channel: Any) -> str:
    conv = channel.conversion
    unit = (getattr(conv, "unit", "") if conv is not None else "") or getattr(channel, "unit", "")
    return str(unit or "").strip()


def _display_names(channel: Any) -> dict[str, str]:
    """Other names of a channel (``{name: kind}``; kind "message" for a decoded CAN signal)."""
    names = getattr(channel, "display_names", None) or {}
    return {str(n): str(k) for n, k in names.items() if n and n != channel.name}


class Mf4Reader:
    """An open MDF file: metadata in :attr:`info`, samples read on demand.

    Use :func:`open_recording`; every failure is a RecordingError naming the file. With
    ``dbc`` (``(file, bus channel)`` pairs, bus 0 = any), raw CAN bus-logging groups are
    decoded through asammdf's ``extract_bus_logging``; the decoded messages appear as
    extra groups whose channels are named ``Message.Signal``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        recording: str | None = None,
        dbc: Sequence[tuple[str | Path, int]] = (),
    ) -> None:
        self.path = Path(path)
        self.recording = recording
        self._mdf: Any = None
        self._decoded: Any = None
        self._fh: Any = None
        self._blocks_checked: set[int] = set()  # raw groups whose data blocks passed
        self._masters: dict[int, list[int]] = {}  # raw group -> its master channels
        self._size, _ = _check_file(self.path, recording)
        from asammdf import MDF

        failure = ""
        with quiet_asammdf() as failed:
            try:
                self._mdf = self._open(MDF)
                self._mdf.configure(read_fragment_size=READ_FRAGMENT_SIZE)
            except Exception as exc:
                failure = f"{type(exc).__name__}: {exc}"
                failed.append(True)
                self._close_file()
        if failure:
            with self.path.open("rb") as fh:
                unfinished = fh.read(8) == b"UnFinMF "
            why = (
                "the logger did not finalize it (UnFinMF: power loss or a crash while recording?)"
                if unfinished
                else "it is probably truncated or corrupt"
            )
            raise _recording_error(self.path, f"cannot be read ({failure}); {why}", recording)
        try:
            self.info = self._build_info(dbc)
        except RecordingError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise _recording_error(
                self.path, f"has unreadable metadata ({type(exc).__name__}: {exc})", recording
            ) from None

    def _open(self, mdf_class: Any) -> Any:
        """A finalized file is read through a plain file object: asammdf then reads the
        mapped channels fragment by fragment (``READ_FRAGMENT_SIZE``) instead of mapping
        the file and reading whole groups, so memory stays flat for any file size. An
        unfinalized one (``UnFinMF``) needs asammdf's own path handling, which repairs
        a copy."""
        with self.path.open("rb") as probe:
            unfinished = probe.read(8) == b"UnFinMF "
        if unfinished:
            return mdf_class(self.path)
        self._fh = self.path.open("rb")
        return mdf_class(self._fh)

    def _close_file(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.close()

    # -- metadata --------------------------------------------------------------------
    def _groups_of(self, mdf: Any, offset: int, decoded: str = "") -> list[GroupInfo]:
        v4 = is_v4(mdf)
        codes = _codes(mdf)
        groups = []
        for gi, grp in enumerate(mdf.groups):
            cg = grp.channel_group
            name = (getattr(cg, "acq_name", "") or "").strip() or (cg.comment or "").strip()
            deps = list(getattr(grp, "channel_dependencies", []) or [])
            chans = []
            master = ""
            for ci, ch in enumerate(grp.channels):
                if ch.channel_type in codes["master"]:
                    sync = getattr(ch, "sync_type", 1) if v4 else 1
                    master = _SYNC_TYPES.get(sync, f"sync type {sync}")
                    continue
                cname, names = ch.name, _display_names(ch)
                aliases = tuple(names)
                bare = _BUS_PREFIX.sub("", cname)
                if bare != cname and bare not in aliases:
                    aliases = (*aliases, bare)
                message = next((n for n, k in names.items() if k == "message"), None)
                if decoded and message:
                    aliases = (cname, *(a for a in aliases if a != message))
                    cname = message
                chans.append(
                    ChannelInfo(
                        name=cname,
                        group=offset + gi,
                        index=ci,
                        unit=_unit(ch),
                        dtype=_dtype_text(ch, codes),
                        conversion=_conversion_text(ch, v4),
                        comment=(ch.comment or "").strip(),
                        kind=_kind(deps[ci] if ci < len(deps) else None),
                        aliases=aliases,
                    )
                )
            groups.append(
                GroupInfo(
                    offset + gi,
                    name or f"group {offset + gi}",
                    int(cg.cycles_nr),
                    tuple(chans),
                    time=master == "time",
                    bus="CAN" if not decoded and is_can_logging(mdf, grp) else "",
                    decoded=decoded,
                    master=master,
                    payload=v4 and bool(cg.flags & _FLAG_CG_VLSD),
                )
            )
        return groups

    def _build_info(self, dbc: Sequence[tuple[str | Path, int]]) -> RecordingInfo:
        mdf = self._mdf
        groups = self._groups_of(mdf, 0)
        can: CanInfo | None = None
        bus_groups = [g for g in groups if g.bus == "CAN"]
        if bus_groups and dbc:
            can = self._decode_can(dbc, sum(g.samples for g in bus_groups))
            if self._decoded is not None:
                label = ", ".join(Path(p).name for p, _ in dbc)
                groups += self._groups_of(self._decoded, len(groups), decoded=label)
        start = mdf.header.start_time
        return RecordingInfo(
            path=str(self.path),
            size=self._size,
            version=str(mdf.version),
            start_time=start.isoformat() if start is not None else "",
            groups=tuple(groups),
            metadata=parse_header_comment(mdf.header.comment or ""),
            can=can,
        )

    def _decode_can(self, dbc: Sequence[tuple[str | Path, int]], frames: int) -> CanInfo:
        for i, grp in enumerate(self._mdf.groups):
            if is_can_logging(self._mdf, grp):
                self._check_layout(i, [ci for ci, _ in enumerate(grp.channels)])
        self._decoded, can = decode_can(self._mdf, dbc, frames)
        return can

    # -- layout checks ---------------------------------------------------------------
    def _corrupt(self, what: str) -> RecordingError:
        return _recording_error(
            self.path, f"is corrupt: {what}; it is probably truncated or damaged", self.recording
        )

    def _check_layout(self, gi: int, channel_indexes: Sequence[int]) -> None:
        """Raise RecordingError unless asammdf can read these channels of raw group ``gi``
        without reading outside its buffers (see the module docstring)."""
        mdf = self._mdf
        grp = mdf.groups[gi]
        cg = grp.channel_group
        v4 = is_v4(mdf)
        record = int(cg.samples_byte_nr)
        inval = int(getattr(cg, "invalidation_bytes_nr", 0) or 0) if v4 else 0
        cycles = int(cg.cycles_nr)
        where = f"group {gi}"
        if cycles < 0 or record < 0 or inval < 0:
            raise self._corrupt(f"{where} has a negative size")
        if v4 and cg.flags & 1:  # VLSD channel group: variable-length data, no records
            return
        if cycles and record + inval == 0:
            raise self._corrupt(f"{where} declares {cycles} samples of 0 bytes each")
        if gi not in self._blocks_checked:
            self._check_blocks(gi, grp, cycles * (record + inval))
            self._blocks_checked.add(gi)
        self._check_channel_bounds(gi, channel_indexes, record, inval)

    def _check_blocks(self, gi: int, grp: Any, need: int) -> None:
        """Raise RecordingError unless the data blocks of raw group ``gi`` lie inside the
        file, inflate plausibly and hold the ``need`` bytes its records take (checked once
        per group: the channels of a group share its blocks)."""
        where = f"group {gi}"
        have = 0
        try:
            for block in grp.get_data_blocks():
                original = int(block.original_size or 0)
                compressed = int(block.compressed_size or 0)
                in_file = getattr(block, "location", 0) == 0
                if in_file and block.block_type == 0 and block.address + original > self._size:
                    raise self._corrupt(
                        f"{where}'s data block at byte {block.address} ends after the end of "
                        f"the file ({self._size} bytes)"
                    )
                if block.block_type != 0 and original > max(compressed, 1) * _MAX_INFLATE_RATIO:
                    raise self._corrupt(
                        f"{where}'s compressed data block claims {original} bytes from {compressed}"
                    )
                have += original
        except RecordingError:
            raise
        except Exception as exc:
            raise self._corrupt(f"{where}'s data blocks cannot be listed ({exc})") from None
        if need > have:
            cycles = int(grp.channel_group.cycles_nr)
            raise self._corrupt(
                f"{where} declares {cycles} samples ({need} bytes) but its data blocks "
                f"hold only {have} bytes"
            )

    def _check_channel_bounds(
        self, gi: int, channel_indexes: Sequence[int], record: int, inval: int
    ) -> None:
        """Raise RecordingError unless each channel lies inside the ``record``-byte record."""
        mdf = self._mdf
        grp = mdf.groups[gi]
        v4 = is_v4(mdf)
        for ci in channel_indexes:
            ch = grp.channels[ci]
            if v4 and ch.channel_type in _V4["virtual"]:
                continue
            if v4:
                byte_offset, bit_offset = int(ch.byte_offset), int(ch.bit_offset)
            else:
                byte_offset, bit_offset = divmod(int(ch.start_offset), 8)
                byte_offset += int(getattr(ch, "additional_byte_offset", 0) or 0)
            bits = int(ch.bit_count)
            numeric = _dtype_text(ch, _codes(mdf)).startswith(("uint", "int", "float"))
            if bits <= 0 or (numeric and bits > 64):
                raise self._corrupt(f"channel {ch.name}@{gi}/{ci} has {bits} bits")
            end = byte_offset + math.ceil((bit_offset + bits) / 8)
            if byte_offset < 0 or end > record:
                raise self._corrupt(
                    f"channel {ch.name}@{gi}/{ci} lies at bytes {byte_offset}..{end} outside "
                    f"its group's {record}-byte record"
                )
            if v4 and ch.flags & 2 and int(ch.pos_invalidation_bit) >= inval * 8:
                raise self._corrupt(
                    f"channel {ch.name}@{gi}/{ci}'s invalidation bit lies outside the record"
                )

    def _group_of(self, group: int) -> tuple[Any, int, bool]:
        """(asammdf object, its group index, is raw) for a group index of :attr:`info`."""
        n_raw = len(self._mdf.groups)
        if group < n_raw:
            return self._mdf, group, True
        return self._decoded, group - n_raw, False

    def _require_time(self, group: int) -> None:
        g = self.info.groups[group]
        if not g.time:
            what = "no master channel" if not g.master else f"a {g.master} master"
            raise InvalidRecordingError(
                f"group {g.index} ({g.name}) has no time channel ({what}); its "
                f"{g.samples} samples cannot be placed in time",
                recording=self.recording,
                hint="re-export the recording with the logger's timestamps (a time master "
                "channel per group)",
            )

    # -- samples ---------------------------------------------------------------------
    def read(self, channels: Sequence[ChannelInfo]) -> list[ChannelSamples]:
        """Samples of exactly these channels; numeric conversions applied, enums kept raw."""
        if not channels:
            return []
        for c in channels:
            if c.kind != "scalar":
                raise RecordingError(
                    f"channel {c.ref} is an {c.kind} channel; only scalar channels can be mapped",
                    recording=self.recording,
                    hint="map a scalar channel (e.g. one element Name[0] of an array)",
                )
            self._require_time(c.group)
        by_source: dict[int, list[ChannelInfo]] = {}
        for c in channels:
            mdf, gi, raw = self._group_of(c.group)
            by_source.setdefault(id(mdf), []).append(c)
            if raw:
                self._check_layout(gi, [c.index, *self._master_indexes(gi)])
        # One group at a time, each converted before the next is read: memory holds the
        # float64 results plus one group's worth of asammdf's intermediate arrays.
        by_group: dict[int, list[ChannelInfo]] = {}
        for c in channels:
            by_group.setdefault(c.group, []).append(c)
        out: dict[tuple[int, int], ChannelSamples] = {}
        for group, chans in by_group.items():
            mdf, gi, raw = self._group_of(group)
            items = [(c.name if raw else None, gi, c.index) for c in chans]
            try:
                with quiet_asammdf():
                    got = mdf.select(items, ignore_value2text_conversions=True)
            except Exception as exc:
                raise _recording_error(
                    self.path,
                    f"cannot read channels {', '.join(c.ref for c in chans)} "
                    f"({type(exc).__name__}: {exc}); the data blocks are probably corrupt",
                    self.recording,
                ) from None
            master: np.ndarray | None = None
            for c in chans:
                sig = got.pop(0)
                cs = self._samples(c, sig, master)
                master = cs.timestamps
                out[(c.group, c.index)] = cs
            del got
        return [out[(c.group, c.index)] for c in channels]

    def _samples(self, info: ChannelInfo, sig: Any, master: np.ndarray | None) -> ChannelSamples:
        """Float64 samples and timestamps the caller owns (never a view into asammdf's
        buffers or a file map); ``master`` is the group's time already read, reused when
        this channel's is the same."""
        try:
            samples = _owned_float64(sig.samples)
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
        stamps = sig.timestamps
        if (
            master is not None
            and np.shape(stamps) == master.shape
            and np.array_equal(stamps, master)
        ):
            ts = master  # the group's time, shared by its channels
        else:
            ts = _owned_float64(stamps)
        if ts.shape != samples.shape:
            raise _recording_error(
                self.path,
                f"has {ts.size} timestamps for {samples.size} samples of channel {info.ref}",
                self.recording,
            )
        return ChannelSamples(info, ts, samples)

    def _master_indexes(self, gi: int) -> list[int]:
        found = self._masters.get(gi)
        if found is None:
            codes = _codes(self._mdf)
            found = self._masters[gi] = [
                i
                for i, ch in enumerate(self._mdf.groups[gi].channels)
                if ch.channel_type in codes["master"]
            ]
        return found

    def master(self, group: int) -> np.ndarray:
        """The timestamps of one channel group (float64 seconds; empty without a time
        channel, see :attr:`GroupInfo.time`)."""
        if not self.info.groups[group].time:
            return np.zeros(0)
        mdf, gi, raw = self._group_of(group)
        if raw:
            self._check_layout(gi, self._master_indexes(gi))
        try:
            with quiet_asammdf():
                return np.array(mdf.get_master(gi), dtype=np.float64)
        except Exception as exc:
            raise _recording_error(
                self.path,
                f"cannot read the time channel of group {group} ({type(exc).__name__}: {exc})",
                self.recording,
            ) from None

    def close(self) -> None:
        for attr in ("_decoded", "_mdf"):
            mdf = getattr(self, attr, None)
            setattr(self, attr, None)
            if mdf is not None:
                with contextlib.suppress(Exception):
                    mdf.close()
        self._close_file()

    def __enter__(self) -> Mf4Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _owned_float64(values: Any) -> np.ndarray:
    """``values`` as a float64 array that owns its memory (a copy only when needed)."""
    arr = np.asarray(values)
    owned = arr.base is None and arr.flags.c_contiguous and arr.flags.writeable
    if arr.dtype == np.float64 and owned:
        return arr
    return np.array(arr, dtype=np.float64)


def open_recording(
    path: str | Path,
    *,
    recording: str | None = None,
    dbc: Sequence[tuple[str | Path, int]] = (),
) -> Mf4Reader:
    """Open an MDF file (4.x, 3.x or 2.x) for reading; a RecordingError names the file and
    what to do. ``dbc`` decodes raw CAN bus logging (see :class:`Mf4Reader`)."""
    return Mf4Reader(path, recording=recording, dbc=dbc)

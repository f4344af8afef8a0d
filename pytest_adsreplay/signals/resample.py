"""Canonical signals (SPEC §2): channel map, units, resampling and ``read_signals``.

A recording's channels are found through a :class:`ChannelMap`, converted to SI and
resampled onto the uniform cycle grid ``t_k = k * cycle_time`` of the file's own time axis.
asammdf is never imported here; :mod:`pytest_adsreplay.mdf.reader` does the reading.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import tomllib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_adsreplay.errors import (
    AmbiguousChannelError,
    ChannelMapError,
    InvalidRecordingError,
    MissingChannelError,
    RecordingError,
    UnitError,
)

if TYPE_CHECKING:
    from pytest_adsreplay.mdf.reader import ChannelInfo, ChannelSamples, RecordingInfo

CANONICAL_SIGNALS: tuple[str, ...] = (
    "ego_speed",
    "ego_accel",
    "target_distance",
    "target_rel_speed",
    "target_lateral",
    "target_valid",
    "driver_brake",
)
REQUIRED_SIGNALS: tuple[str, ...] = ("ego_speed", "target_distance", "target_rel_speed")
FLAG_SIGNALS: frozenset[str] = frozenset({"target_valid", "driver_brake"})
DEFAULT_CYCLE_TIME = 0.01

#: A sampling interval longer than this (and than twice the channel's median interval)
#: is a gap: continuous signals are NaN inside it and ``adsreplay inspect`` reports it.
GAP_THRESHOLD = 0.2

#: Signals that the target_valid flag masks with NaN where it says "no object".
TARGET_SIGNALS: tuple[str, ...] = ("target_distance", "target_rel_speed", "target_lateral")

_TIME_TOL = 1e-9

# --------------------------------------------------------------------------- units

SPEED = "speed"
ACCELERATION = "acceleration"
LENGTH = "length"
TIME = "time"
DIMENSIONLESS = "dimensionless"

SIGNAL_DIMENSIONS: dict[str, str] = {
    "ego_speed": SPEED,
    "ego_accel": ACCELERATION,
    "target_distance": LENGTH,
    "target_rel_speed": SPEED,
    "target_lateral": LENGTH,
    "target_valid": DIMENSIONLESS,
    "driver_brake": DIMENSIONLESS,
}
SI_UNITS: dict[str, str] = {
    SPEED: "m/s",
    ACCELERATION: "m/s²",
    LENGTH: "m",
    TIME: "s",
    DIMENSIONLESS: "0/1",
}

# (scale, offset, dimension, spellings): SI value = raw * scale + offset
_UNIT_TABLE: tuple[tuple[float, float, str, tuple[str, ...]], ...] = (
    (
        1.0,
        0.0,
        SPEED,
        (
            "m/s",
            "m s-1",
            "m*s-1",
            "m/sec",
            "mps",
            "meter/second",
            "metre/second",
            "meters per second",
            "metres per second",
        ),
    ),
    (
        1 / 3.6,
        0.0,
        SPEED,
        (
            "km/h",
            "kph",
            "kmh",
            "km h-1",
            "km*h-1",
            "km/hr",
            "kmph",
            "kilometer/hour",
            "kilometre/hour",
            "kilometers per hour",
            "kilometres per hour",
        ),
    ),
    (0.44704, 0.0, SPEED, ("mph", "mi/h", "miles/h", "miles per hour")),
    (0.3048, 0.0, SPEED, ("ft/s", "fps")),
    (
        1.0,
        0.0,
        ACCELERATION,
        ("m/s²", "m/s^2", "m/s2", "m s-2", "m*s-2", "m/s/s", "mps2", "m/sec2", "m/sec/sec", "mpss"),
    ),
    (9.80665, 0.0, ACCELERATION, ("g", "gn", "g0")),
    (1.0, 0.0, LENGTH, ("m", "meter", "metre", "meters", "metres")),
    (1000.0, 0.0, LENGTH, ("km", "kilometer", "kilometre")),
    (0.01, 0.0, LENGTH, ("cm",)),
    (0.001, 0.0, LENGTH, ("mm",)),
    (0.3048, 0.0, LENGTH, ("ft", "feet")),
    (1.0, 0.0, TIME, ("s", "sec", "second", "seconds")),
    (0.001, 0.0, TIME, ("ms", "msec", "millisecond", "milliseconds")),
    (1e-6, 0.0, TIME, ("us", "µs", "μs", "microsecond", "microseconds")),
    (60.0, 0.0, TIME, ("min", "minute", "minutes")),
    (3600.0, 0.0, TIME, ("h", "hr", "hour", "hours")),
    (1.0, 0.0, DIMENSIONLESS, ("0/1", "bool", "boolean", "flag", "on/off", "true/false")),
)

#: Spellings that mean "the logger did not state a unit".
_NO_UNIT = frozenset({"", "-", "1", "[]", "[-]", "n/a", "na", "none", "()"})


def _norm_unit(unit: str) -> str:
    u = unit.strip().lower()
    if len(u) >= 2 and u[0] + u[-1] in ("[]", "()"):
        u = u[1:-1].strip()
    u = u.replace("²", "2").replace("**", "").replace("^", "").replace("·", "*")
    u = re.sub(r"\s*/\s*", "/", u)
    u = re.sub(r"\s*\*\s*", "*", u)
    u = re.sub(r"(?<=[a-z])\.(?=[a-z])", "*", u)  # m.s-1
    u = re.sub(r"\s+", " ", u)
    return u.replace(" ", "*") if re.fullmatch(r"[a-zµμ]+ [a-z]+-\d", u) else u


_UNITS: dict[str, tuple[float, float, str]] = {
    _norm_unit(spelling): (scale, offset, dim)
    for scale, offset, dim, spellings in _UNIT_TABLE
    for spelling in spellings
}


def _is_no_unit(unit: str | None) -> bool:
    return unit is None or _norm_unit(unit) in _NO_UNIT


def unit_info(unit: str) -> tuple[float, float, str]:
    """``(scale, offset, dimension)`` of ``unit``; raises ValueError for an unknown unit."""
    key = _norm_unit(unit)
    if key in _NO_UNIT:
        return 1.0, 0.0, DIMENSIONLESS
    try:
        return _UNITS[key]
    except KeyError:
        raise ValueError(f"unknown unit {unit!r}") from None


def to_si(unit: str) -> tuple[float, float]:
    """``(scale, offset)`` converting a value in ``unit`` to SI (``si = v * scale + offset``).

    Spellings are case-insensitive ("km/h", "KPH", "km h-1", "m/s^2", "m/s2" …); an empty
    or "-" unit is dimensionless. Raises ValueError for a unit not in the table.
    """
    scale, offset, _ = unit_info(unit)
    return scale, offset


def known_units(dimension: str) -> list[str]:
    """The first spelling of each known unit of ``dimension`` (for error messages)."""
    return [spellings[0] for _, _, dim, spellings in _UNIT_TABLE if dim == dimension]


def _same_unit(a: tuple[float, float, str], b: tuple[float, float, str]) -> bool:
    return (
        a[2] == b[2]
        and math.isclose(a[0], b[0], rel_tol=1e-9)
        and math.isclose(a[1], b[1], rel_tol=1e-9, abs_tol=1e-12)
    )


# --------------------------------------------------------------------- channel map


@dataclass(frozen=True)
class ChannelRef:
    """A candidate channel: ``Name``, ``Name@group`` or ``Name@group/index``.

    ``group`` and ``index`` are asammdf's 0-based channel-group and channel indexes (the
    master/time channel of a group is usually index 0); ``adsreplay inspect`` lists them.
    """

    name: str
    group: int | None = None
    index: int | None = None

    @classmethod
    def parse(cls, text: str) -> ChannelRef:
        """Parse ``Name``, ``Name@2`` or ``Name@2/5``; raises ValueError when malformed."""
        if not text.strip():
            raise ValueError("empty channel name")
        if "@" not in text:
            return cls(text)
        name, _, where = text.rpartition("@")
        m = re.fullmatch(r"(\d+)(?:/(\d+))?", where.strip())
        if not name or m is None:
            raise ValueError(
                f"bad channel reference {text!r}: write Name, Name@group or Name@group/index"
            )
        return cls(name, int(m.group(1)), None if m.group(2) is None else int(m.group(2)))

    def __str__(self) -> str:
        if self.group is None:
            return self.name
        if self.index is None:
            return f"{self.name}@{self.group}"
        return f"{self.name}@{self.group}/{self.index}"


@dataclass(frozen=True)
class SignalSpec:
    """How one canonical signal is found (candidates, first match wins) and converted."""

    name: str
    channels: tuple[ChannelRef, ...]
    unit: str | None = None
    scale: float | None = None
    offset: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"channels": [str(c) for c in self.channels]}
        if self.unit is not None:
            out["unit"] = self.unit
        if self.scale is not None:
            out["scale"] = self.scale
            out["offset"] = self.offset
        return out


_DEFAULT_CANDIDATES: dict[str, tuple[str, ...]] = {
    "ego_speed": (
        "VehSpd",
        "VehicleSpeed",
        "ESP_v_Signal",
        "v_ego",
        "VehSpeed",
        "EgoSpeed",
        "Vehicle_Speed",
        "vehicle_speed",
        "VehV",
        "ego_speed",
    ),
    "ego_accel": (
        "VehAccX",
        "AccX",
        "a_x",
        "LongAccel",
        "VehAccel",
        "VehicleAccelX",
        "ESP_a_x",
        "EgoAccel",
        "ax",
        "ego_accel",
    ),
    "target_distance": (
        "Radar.Obj0.DistX",
        "ObjDist",
        "ObjDistX",
        "Obj0_DistX",
        "Obj0.DistX",
        "TargetDistance",
        "LeadDist",
        "target_distance",
    ),
    "target_rel_speed": (
        "Radar.Obj0.VrelX",
        "ObjRelSpd",
        "ObjVrelX",
        "Obj0_VrelX",
        "Obj0.VrelX",
        "TargetRelSpeed",
        "LeadRelSpd",
        "target_rel_speed",
    ),
    "target_lateral": (
        "Radar.Obj0.DistY",
        "ObjLatPos",
        "ObjDistY",
        "Obj0_DistY",
        "Obj0.DistY",
        "TargetLateral",
        "LeadLatPos",
        "target_lateral",
    ),
    "target_valid": (
        "Radar.Obj0.Valid",
        "ObjValid",
        "Obj0_Valid",
        "Obj0.Valid",
        "ObjExist",
        "TargetValid",
        "LeadValid",
        "target_valid",
    ),
    "driver_brake": (
        "DrvBrkPdl",
        "BrkPdlSts",
        "BrakePedal",
        "BrkPedPressed",
        "DriverBrake",
        "DrvBrk",
        "driver_brake",
    ),
}

_MAP_HINT = (
    'the channel map format is [signals.<canonical name>] with channels = ["Name", '
    '"Name@group", …] and either unit = "km/h" or scale = 0.2778 (+ offset = 0.0)'
)
_CAN_HINT = (
    'write [can] dbc = ["vehicle.dbc"] (paths relative to the channel map), optionally '
    "bus = 1 (the CAN channel the DBC applies to; 0 = any), or per file "
    'dbc = [{ file = "radar.dbc", bus = 2 }]; map signals as channels = ["Message.Signal"]'
)
_TOP_KEYS = ("signals", "use_builtin", "description", "can")
_SIGNAL_KEYS = ("channels", "unit", "scale", "offset")


@dataclass(frozen=True)
class DbcFile:
    """A DBC file of the channel map's ``[can]`` table and the CAN bus it decodes (0 = any)."""

    path: Path
    bus: int = 0


@dataclass(frozen=True)
class ChannelMap:
    """Which channels feed each canonical signal, with unit conversion (SPEC §2).

    A map file overrides the built-in candidates signal by signal; signals it does not
    mention keep the built-in candidates unless the file says ``use_builtin = false``.
    ``dbc`` lists the DBC files that decode raw CAN bus logging (``[can]`` table): the
    decoded signals are channels named ``Message.Signal`` (and the bare signal name).
    """

    signals: Mapping[str, SignalSpec]
    source: str = "built-in"
    dbc: tuple[DbcFile, ...] = ()

    @classmethod
    def default(cls) -> ChannelMap:
        """The built-in map of common channel names (units taken from the file)."""
        return cls(
            {
                name: SignalSpec(name, tuple(ChannelRef(c) for c in cands))
                for name, cands in _DEFAULT_CANDIDATES.items()
            },
            "built-in",
        )

    @classmethod
    def load(cls, path: str | Path) -> ChannelMap:
        """Read a channel-map TOML file; every problem is a ChannelMapError naming it.

        DBC paths in its ``[can]`` table are relative to the map file's folder.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ChannelMapError(
                f"channel map {path} does not exist",
                hint="check the --channel-map / adsreplay_channel_map path "
                "(ini paths are relative to the ini file)",
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ChannelMapError(
                f"channel map {path} cannot be read: {exc}", hint="check the file"
            ) from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ChannelMapError(
                f"channel map {path}: TOML syntax error: {exc}", hint=_MAP_HINT
            ) from None
        return cls.from_dict(data, source=str(path), base=path.parent)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, source: str = "<dict>", base: Path | None = None
    ) -> ChannelMap:
        """Build a map from the parsed TOML structure (validated like :meth:`load`).

        ``base`` is the folder relative DBC paths start from (default: the current one).
        """

        def fail(msg: str, hint: str = _MAP_HINT) -> ChannelMapError:
            return ChannelMapError(f"channel map {source}: {msg}", hint=hint)

        if not isinstance(data, Mapping):
            raise fail(f"expected a table, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_TOP_KEYS))
        if unknown:
            raise fail(
                f"unknown top-level key(s) {', '.join(unknown)}; allowed: {', '.join(_TOP_KEYS)}"
            )
        use_builtin = data.get("use_builtin", True)
        if not isinstance(use_builtin, bool):
            raise fail(f"use_builtin must be true or false, got {use_builtin!r}")
        dbc = _parse_can(data.get("can"), base or Path.cwd(), fail)
        table = data.get("signals")
        if not isinstance(table, Mapping) or not table:
            raise fail("no [signals.<name>] tables found")
        specs: dict[str, SignalSpec] = {}
        for name, entry in table.items():
            specs[name] = _parse_spec(name, entry, fail)
        merged = dict(cls.default().signals) if use_builtin else {}
        merged.update(specs)
        ordered = {n: merged[n] for n in CANONICAL_SIGNALS if n in merged}
        return cls(ordered, source, dbc)

    def to_dict(self) -> dict[str, Any]:
        """Normalized plain structure (``use_builtin = false``: complete by itself)."""
        out: dict[str, Any] = {
            "use_builtin": False,
            "signals": {
                n: self.signals[n].to_dict() for n in CANONICAL_SIGNALS if n in self.signals
            },
        }
        if self.dbc:
            out["can"] = {"dbc": [{"file": str(d.path), "bus": d.bus} for d in self.dbc]}
        return out

    def dbc_pairs(self) -> list[tuple[Path, int]]:
        """``(file, bus)`` pairs as the MDF reader takes them."""
        return [(d.path, d.bus) for d in self.dbc]

    def fingerprint(self) -> str:
        """sha256 hex of the normalized map and its DBC files' contents (independent of
        the map's source path and spelling)."""
        norm: dict[str, Any] = {}
        for name, spec in sorted(self.signals.items()):
            entry: dict[str, Any] = {"channels": [str(c) for c in spec.channels]}
            if spec.scale is not None:
                entry["scale"] = float(spec.scale)
                entry["offset"] = float(spec.offset)
            elif spec.unit is not None:
                scale, offset, _ = unit_info(spec.unit)
                entry["unit"] = [scale, offset]
            norm[name] = entry
        if self.dbc:
            norm["[can]"] = [[_file_sha256(d.path), d.bus] for d in self.dbc]
        blob = json.dumps(norm, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _file_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return f"unreadable:{path.name}"


def _parse_can(table: Any, base: Path, fail: Any) -> tuple[DbcFile, ...]:
    """The ``[can]`` table: ``dbc`` = file or list of files / ``{file, bus}`` tables."""
    if table is None:
        return ()
    if not isinstance(table, Mapping):
        raise fail(f"[can] must be a table, got {type(table).__name__}", _CAN_HINT)
    unknown = sorted(set(table) - {"dbc", "bus"})
    if unknown:
        raise fail(f"[can]: unknown key(s) {', '.join(unknown)}; allowed: dbc, bus", _CAN_HINT)

    def bus_of(value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise fail(
                f"{where}: bus must be a CAN channel number >= 0 (0 = any), got {value!r}",
                _CAN_HINT,
            )
        return value

    default_bus = bus_of(table.get("bus", 0), "[can]")
    entries = table.get("dbc")
    if entries is None:
        raise fail("[can] has no dbc = [...] list", _CAN_HINT)
    if isinstance(entries, str | Mapping):
        entries = [entries]
    if not isinstance(entries, list) or not entries:
        raise fail(f"[can] dbc must be a non-empty list, got {entries!r}", _CAN_HINT)
    out = []
    for entry in entries:
        if isinstance(entry, Mapping):
            extra = sorted(set(entry) - {"file", "bus"})
            if extra or not isinstance(entry.get("file"), str):
                raise fail(
                    f'[can] dbc entry {dict(entry)!r}: write {{ file = "x.dbc", bus = 1 }}',
                    _CAN_HINT,
                )
            file, bus = entry["file"], bus_of(entry.get("bus", default_bus), "[can] dbc")
        elif isinstance(entry, str):
            file, bus = entry, default_bus
        else:
            raise fail(f"[can] dbc entries are file names or tables, got {entry!r}", _CAN_HINT)
        path = Path(file).expanduser()
        path = path if path.is_absolute() else (base / path).absolute()
        if not path.is_file():
            raise fail(
                f"[can] DBC file {file!r} not found (looked for {path})",
                "DBC paths are relative to the channel map's folder",
            )
        out.append(DbcFile(path, bus))
    return tuple(out)


def _parse_spec(name: Any, entry: Any, fail: Any) -> SignalSpec:
    if name not in CANONICAL_SIGNALS:
        close = difflib.get_close_matches(str(name), CANONICAL_SIGNALS, n=1)
        also = f" (did you mean {close[0]!r}?)" if close else ""
        why = " ('t' is built by resampling, it cannot be mapped)" if name == "t" else ""
        raise fail(
            f"unknown signal [signals.{name}]{also}{why}; canonical signals are "
            f"{', '.join(CANONICAL_SIGNALS)}"
        )
    where = f"[signals.{name}]"
    if not isinstance(entry, Mapping):
        raise fail(f"{where} must be a table, got {type(entry).__name__}")
    unknown = sorted(set(entry) - set(_SIGNAL_KEYS))
    if unknown:
        raise fail(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_SIGNAL_KEYS)}"
        )
    chans = entry.get("channels")
    if chans is None:
        raise fail(f"{where} has no channels = [...] list")
    if not isinstance(chans, list) or not all(isinstance(c, str) for c in chans):
        raise fail(
            f'{where}: channels must be a list of strings, e.g. channels = ["VehSpd"],'
            f" got {chans!r}"
        )
    if not chans:
        raise fail(f"{where}: channels is empty; list at least one candidate channel name")
    refs = []
    for c in chans:
        try:
            refs.append(ChannelRef.parse(c))
        except ValueError as exc:
            raise fail(f"{where}: {exc}") from None
    unit = entry.get("unit")
    scale = entry.get("scale")
    offset = entry.get("offset")
    if unit is not None and (scale is not None or offset is not None):
        raise fail(f"{where}: give either unit or scale (+ offset), not both")
    dim = SIGNAL_DIMENSIONS[name]
    if unit is not None:
        if not isinstance(unit, str):
            raise fail(f"{where}: unit must be a string, got {unit!r}")
        try:
            _, _, udim = unit_info(unit)
        except ValueError:
            raise fail(
                f"{where}: unknown unit {unit!r}; known {dim} units: "
                f"{', '.join(known_units(dim))} (or give scale = … to convert to "
                f"{SI_UNITS[dim]})"
            ) from None
        if udim != dim:
            raise fail(
                f"{where}: unit {unit!r} is a {udim} unit but {name} is a {dim} "
                f"(SI {SI_UNITS[dim]}); known {dim} units: {', '.join(known_units(dim))}"
            )
    if offset is not None and scale is None:
        raise fail(f"{where}: offset needs a scale (add scale = 1.0)")
    for key, val in (("scale", scale), ("offset", offset)):
        if val is not None and (
            isinstance(val, bool) or not isinstance(val, int | float) or not math.isfinite(val)
        ):
            raise fail(f"{where}: {key} must be a finite number, got {val!r}")
    if scale == 0:
        raise fail(f"{where}: scale must not be 0")
    return SignalSpec(
        name,
        tuple(refs),
        unit=unit,
        scale=None if scale is None else float(scale),
        offset=0.0 if offset is None else float(offset),
    )


def load_channel_map(path: str | Path | None) -> ChannelMap:
    """The map at ``path``, or the built-in map for None."""
    return ChannelMap.default() if path is None else ChannelMap.load(path)


# ---------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class Resolution:
    """How one canonical signal resolved in one recording.

    ``channel`` is None when no candidate exists (``close_matches`` then lists similar
    names of the file) or when ``error`` says why the chosen candidate cannot be used.
    """

    signal: str
    spec: SignalSpec
    channel: ChannelInfo | None = None
    scale: float = 1.0
    offset: float = 0.0
    hold: bool = False
    conversion: str = ""
    error: RecordingError | None = None
    close_matches: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        return self.channel is not None and self.error is None

    @property
    def source(self) -> str:
        """Human text, e.g. ``VehSpd@0 [km/h -> m/s]``."""
        if self.channel is None:
            return "not found"
        extra = f", {'hold' if self.hold else 'linear'}"
        return f"{self.channel.ref} [{self.conversion}{extra}]"


def resolve_channels(
    channel_map: ChannelMap, info: RecordingInfo, *, recording: str | None = None
) -> dict[str, Resolution]:
    """Resolve every signal of the map against a file's channels (no data is read).

    Ambiguity and unit contradictions are stored in ``Resolution.error`` rather than
    raised, so ``adsreplay inspect`` can show all of them; ``read_signals`` raises.
    """
    rec = recording or info.path
    names = info.channel_names()
    out: dict[str, Resolution] = {}
    for name, spec in channel_map.signals.items():
        chosen: ChannelInfo | None = None
        error: RecordingError | None = None
        for ref in spec.channels:
            occ = [
                c
                for c in info.occurrences(ref.name)
                if (ref.group is None or c.group == ref.group)
                and (ref.index is None or c.index == ref.index)
            ]
            if not occ:
                continue
            if len(occ) > 1:
                error = _ambiguous(name, ref, occ, info, rec, channel_map.source)
            else:
                chosen = occ[0]
            break
        if error is not None:
            out[name] = Resolution(name, spec, error=error)
            continue
        if chosen is None:
            out[name] = Resolution(name, spec, close_matches=_close_matches(spec, names))
            continue
        try:
            scale, offset, text = _conversion(name, spec, chosen, rec, channel_map.source)
        except RecordingError as exc:
            out[name] = Resolution(name, spec, channel=chosen, error=exc)
            continue
        if not chosen.numeric:
            err = RecordingError(
                f"channel {chosen.ref} for {name} holds {chosen.dtype} data, not numbers",
                recording=rec,
                hint=f"map {name} to a numeric channel in the channel map ({channel_map.source})",
            )
            out[name] = Resolution(name, spec, channel=chosen, error=err)
            continue
        out[name] = Resolution(
            name,
            spec,
            channel=chosen,
            scale=scale,
            offset=offset,
            hold=name in FLAG_SIGNALS or chosen.discrete,
            conversion=text,
        )
    return out


def _ambiguous(
    signal: str,
    ref: ChannelRef,
    occ: Sequence[ChannelInfo],
    info: RecordingInfo,
    rec: str,
    source: str,
) -> AmbiguousChannelError:
    listing = ", ".join(
        f"{c.ref} (group {info.groups[c.group].name!r}, {info.groups[c.group].samples} samples)"
        for c in occ
    )
    return AmbiguousChannelError(
        f"channel {ref.name!r} for {signal} occurs {len(occ)} times: {listing}",
        recording=rec,
        hint=f"say which one in the channel map ({source}): [signals.{signal}] channels = "
        f'["{occ[0].ref}"] (Name@group or Name@group/index)',
    )


def _close_matches(spec: SignalSpec, names: Sequence[str]) -> tuple[str, ...]:
    found: list[str] = []
    lower = {n.lower(): n for n in names}
    for ref in spec.channels:
        for cand in (
            lower.get(ref.name.lower()),
            *difflib.get_close_matches(ref.name, names, n=3, cutoff=0.6),
        ):
            if cand and cand not in found:
                found.append(cand)
        tail = ref.name.rsplit(".", 1)[-1].lower()
        for n in names:
            if n.rsplit(".", 1)[-1].lower() == tail and n not in found:
                found.append(n)
    return tuple(found[:6])


def _conversion(
    signal: str, spec: SignalSpec, ch: ChannelInfo, rec: str, source: str
) -> tuple[float, float, str]:
    dim = SIGNAL_DIMENSIONS[signal]
    si = SI_UNITS[dim]
    file_unit = ch.unit
    if spec.scale is not None:
        return spec.scale, spec.offset, f"map scale {spec.scale:g}, offset {spec.offset:g}"
    file_info: tuple[float, float, str] | None = None
    if not _is_no_unit(file_unit):
        try:
            file_info = unit_info(file_unit)
        except ValueError:
            file_info = None
    if spec.unit is not None:
        map_info = unit_info(spec.unit)
        if _is_no_unit(file_unit) or (file_info is not None and _same_unit(file_info, map_info)):
            if map_info[0] == 1.0 and map_info[1] == 0.0:
                return 1.0, 0.0, si
            return map_info[0], map_info[1], f"{spec.unit} -> {si}"
        raise UnitError(
            f"unit contradiction for {signal}: channel {ch.ref} says {file_unit!r} in the file, "
            f"the channel map ({source}) says {spec.unit!r}",
            recording=rec,
            hint=f"fix unit in [signals.{signal}] if the file is right, or use scale = … to "
            f"override the file's unit deliberately",
        )
    if _is_no_unit(file_unit):
        return 1.0, 0.0, si if dim == DIMENSIONLESS else f"no unit in file, taken as {si}"
    if file_info is None:
        return 1.0, 0.0, f"unknown unit {file_unit!r}, taken as {si}"
    if file_info[2] != dim:
        raise UnitError(
            f"channel {ch.ref} for {signal} has unit {file_unit!r} ({file_info[2]}), but "
            f"{signal} is a {dim} in {si}",
            recording=rec,
            hint=f"map {signal} to the right channel in the channel map ({source}), or give "
            f"scale = … to override the file's unit",
        )
    if file_info[0] == 1.0 and file_info[1] == 0.0:
        return 1.0, 0.0, si if _norm_unit(file_unit) == _norm_unit(si) else f"{file_unit} = {si}"
    return file_info[0], file_info[1], f"{file_unit} -> {si}"


# ---------------------------------------------------------------------- resampling


def make_grid(t_min: float, t_max: float, cycle_time: float) -> np.ndarray:
    """Exact grid ``k * cycle_time`` for every k with t_min <= k*cycle_time <= t_max."""
    k0 = math.ceil(t_min / cycle_time - _TIME_TOL)
    k1 = math.floor(t_max / cycle_time + _TIME_TOL)
    return np.arange(k0, k1 + 1, dtype=np.int64) * cycle_time


def find_gaps(timestamps: np.ndarray, threshold: float = GAP_THRESHOLD) -> np.ndarray:
    """Indexes i where ``timestamps[i+1] - timestamps[i]`` is a gap.

    A gap is longer than ``threshold`` and than twice the median sampling interval (so a
    slow but regular channel is not one long series of gaps).
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    if ts.size < 2:
        return np.zeros(0, dtype=np.int64)
    return gaps_and_median(np.diff(ts), threshold)[0]


def gaps_and_median(dt: np.ndarray, threshold: float) -> tuple[np.ndarray, float | None]:
    """``(i where dt[i] > max(threshold, 2 * median), median)`` of sampling intervals
    ``dt``, the median taken over the finite positive ones (None if there is none).

    ``dt`` is consumed (reordered in place): a long recording's interval array is not
    copied again for the median. The candidates above ``threshold`` are kept first.
    """
    over = np.flatnonzero(dt > threshold)
    over_dt = dt[over]
    usable = np.isfinite(dt) & (dt > 0)
    pos = dt if usable.all() else dt[usable]
    del usable
    med = float(np.median(pos, overwrite_input=True)) if pos.size else None
    limit = max(threshold, 2.0 * (med or 0.0))
    return over[over_dt > limit], med


#: Grid points resampled per step: bounds the temporary arrays of a long recording.
RESAMPLE_CHUNK = 1 << 20


def resample(
    timestamps: np.ndarray,
    samples: np.ndarray,
    grid: np.ndarray,
    *,
    hold: bool,
    max_gap: float | None = None,
) -> np.ndarray:
    """Samples on ``grid``: previous-value hold (``hold``) or linear interpolation.

    Timestamps must be finite and non-decreasing; for equal timestamps the last sample
    wins. Grid points outside the channel's own span are NaN (no extrapolation); with
    ``max_gap``, so are grid points strictly inside a gap found by :func:`find_gaps`.
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    vs = np.asarray(samples, dtype=np.float64)
    grid = np.asarray(grid, dtype=np.float64)
    if ts.shape != vs.shape or ts.ndim != 1:
        raise ValueError(f"timestamps {ts.shape} and samples {vs.shape} must be equal 1-D shapes")
    out = np.full(grid.shape, np.nan)
    if ts.size == 0:
        return out
    first, last = ts[0] - _TIME_TOL, ts[-1] + _TIME_TOL
    if not hold:
        keep = np.r_[ts[1:] != ts[:-1], True]
        if not keep.all():
            ts, vs = ts[keep], vs[keep]
        del keep
    flat_grid, flat_out = grid.reshape(-1), out.reshape(-1)
    for a in range(0, flat_grid.size, RESAMPLE_CHUNK):
        g = flat_grid[a : a + RESAMPLE_CHUNK]
        inside = (g >= first) & (g <= last)
        g = g[inside]
        if hold:
            idx = np.searchsorted(ts, g + _TIME_TOL, side="right") - 1
            flat_out[a : a + RESAMPLE_CHUNK][inside] = vs[np.clip(idx, 0, None)]
        else:
            flat_out[a : a + RESAMPLE_CHUNK][inside] = np.interp(np.clip(g, ts[0], ts[-1]), ts, vs)
    if max_gap is not None:
        for i in find_gaps(ts, max_gap):
            out[(grid > ts[i] + _TIME_TOL) & (grid < ts[i + 1] - _TIME_TOL)] = np.nan
    return out


# ----------------------------------------------------------------------- reading


@dataclass
class Trace:
    """The samples behind one canonical signal: SI values on the channel's own timestamps.

    Kept next to the resampled signals so the data-quality gate (:mod:`.quality`) can judge
    the logger's real sampling (rates, gaps, non-finite values), not the grid's.
    """

    channel: str
    timestamps: np.ndarray
    values: np.ndarray


@dataclass
class Signals:
    """Canonical signals of one recording on the uniform cycle grid ``t``.

    ``traces`` holds the raw samples of each mapped signal (see :class:`Trace`).
    """

    t: np.ndarray
    values: dict[str, np.ndarray]
    cycle_time: float
    sources: dict[str, str] = field(default_factory=dict)
    traces: dict[str, Trace] = field(default_factory=dict)


def _to_si(samples: np.ndarray, scale: float, offset: float, *, in_place: bool) -> np.ndarray:
    """``samples * scale + offset`` (the same float operations), in place when the caller
    owns ``samples`` and nothing else reads them."""
    out = np.multiply(samples, scale, out=samples if in_place else None)
    out += offset
    return out


def check_timestamps(ts: np.ndarray, where: str, *, recording: str) -> None:
    """Raise InvalidRecordingError for NaN/inf or decreasing timestamps of a channel/group.

    Equal consecutive timestamps are tolerated (resampling keeps the last sample).
    """
    from pytest_adsreplay.signals.quality import invalid_error, time_findings

    findings = time_findings(where, ts)
    if findings:
        raise invalid_error(findings, recording)


def read_signals(
    path: str | Path,
    channel_map: ChannelMap,
    cycle_time: float = DEFAULT_CYCLE_TIME,
    *,
    recording_id: str | None = None,
    max_gap: float = GAP_THRESHOLD,
) -> Signals:
    """Read the mapped channels of ``path`` and resample them onto the cycle grid.

    Only the channels the map resolves are read. The grid spans from the earliest start
    to the latest end of those channels; a signal is NaN outside its channel's span and,
    for continuous signals, inside gaps longer than ``max_gap`` (see :func:`find_gaps`).
    Flags are 0/1 (any non-zero value is 1) and held; where ``target_valid`` is 0 the
    target signals are NaN. The data-quality gate is *not* applied here (see
    :func:`pytest_adsreplay.signals.quality.gate`), except for what resampling cannot do without:
    finite, non-decreasing timestamps and a time channel.
    """
    from pytest_adsreplay.mdf import reader as mf4

    if not (cycle_time > 0 and math.isfinite(cycle_time)):
        raise ValueError(f"cycle_time must be a positive number of seconds, got {cycle_time!r}")
    if not (max_gap > 0 and math.isfinite(max_gap)):
        raise ValueError(f"max_gap must be a positive number of seconds, got {max_gap!r}")
    rec = recording_id or str(path)
    with mf4.open_recording(path, recording=rec, dbc=channel_map.dbc_pairs()) as reader:
        info = reader.info
        if info.can is not None and info.can.error:
            raise ChannelMapError(
                f"decoding raw CAN with {', '.join(info.can.dbc)} failed: {info.can.error}",
                recording=rec,
                hint=f"check the [can] DBC files of the channel map ({channel_map.source})",
            )
        resolved = resolve_channels(channel_map, info, recording=rec)
        for res in resolved.values():
            if res.error is not None:
                raise res.error
        _raise_missing(resolved, info, rec, channel_map.source)
        usable = {n: r for n, r in resolved.items() if r.found}
        wanted: list[ChannelInfo] = []
        for r in usable.values():
            assert r.channel is not None
            if r.channel not in wanted:
                wanted.append(r.channel)
        data = {(c.channel.group, c.channel.index): c for c in reader.read(wanted)}
    return _assemble(usable, data, cycle_time, rec, max_gap)


def can_notes(info: RecordingInfo, source: str) -> list[str]:
    """What raw CAN bus logging in a file means for the channel map (for messages)."""
    raw = info.raw_bus_groups()
    if not raw:
        return []
    groups = ", ".join(f"group {g.index} ({g.name}, {g.samples} frames)" for g in raw)
    can = info.can
    if can is None:
        return [
            f"the file holds raw CAN bus logging in {groups}; add [can] dbc = "
            f'["….dbc"] to the channel map ({source}) to decode it'
        ]
    notes = []
    if can.found:
        msgs = ", ".join(f"{m} (0x{i:X})" for i, m in can.found)
        notes.append(
            f"decoded CAN messages with {', '.join(Path(d).name for d in can.dbc)}: {msgs}"
        )
    else:
        notes.append(f"no CAN frame matched the DBC file(s) {', '.join(can.dbc)}")
    if can.unknown:
        notes.append(f"CAN IDs not in the DBC: {can.unknown_text()}")
    return notes


def _raise_missing(
    resolved: Mapping[str, Resolution], info: RecordingInfo, rec: str, source: str
) -> None:
    missing = [n for n in REQUIRED_SIGNALS if n not in resolved or not resolved[n].found]
    if not missing:
        return
    lines = []
    for n in missing:
        res = resolved.get(n)
        if res is None:
            lines.append(f"{n}: the channel map has no [signals.{n}] entry")
            continue
        tried = ", ".join(str(c) for c in res.spec.channels)
        close = ", ".join(res.close_matches) if res.close_matches else "none"
        lines.append(f"{n}: tried {tried}; close matches in the file: {close}")
    lines += can_notes(info, source)
    raise MissingChannelError(
        f"required signal(s) not found in the recording ({len(info.channel_names())} "
        "channels):\n    " + "\n    ".join(lines),
        recording=rec,
        hint=f"add the file's channel name to channels = [...] of the signal in the channel map"
        f" ({source}); `adsreplay inspect {info.path}` lists every channel",
    )


def _assemble(
    usable: Mapping[str, Resolution],
    data: Mapping[tuple[int, int], ChannelSamples],
    cycle_time: float,
    rec: str,
    max_gap: float = GAP_THRESHOLD,
) -> Signals:
    chans: dict[str, ChannelSamples] = {}
    for name, res in usable.items():
        assert res.channel is not None
        cs = data[(res.channel.group, res.channel.index)]
        check_timestamps(cs.timestamps, f"channel {res.channel.ref} ({name})", recording=rec)
        if cs.timestamps.size == 0:
            if name in REQUIRED_SIGNALS:
                raise InvalidRecordingError(
                    f"channel {res.channel.ref} ({name}) has no samples",
                    recording=rec,
                    hint="check that the logger recorded this bus/sensor; re-record or "
                    "map another channel",
                )
            continue
        chans[name] = cs
    t_min = min(float(c.timestamps[0]) for c in chans.values())
    t_max = max(float(c.timestamps[-1]) for c in chans.values())
    grid = make_grid(t_min, t_max, cycle_time)
    if grid.size < 2:
        raise InvalidRecordingError(
            f"data-quality check 'duration' failed: the recording spans {t_max - t_min:.6g} s "
            f"({t_min:.6g} .. {t_max:.6g} s), shorter than one cycle of {cycle_time:g} s",
            recording=rec,
            hint="check that the file is complete; a replay needs at least two cycles",
        )
    values: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    traces: dict[str, Trace] = {}
    uses = Counter(id(cs.samples) for cs in chans.values())
    for name, cs in chans.items():
        res = usable[name]
        assert res.channel is not None
        raw = _to_si(cs.samples, res.scale, res.offset, in_place=uses[id(cs.samples)] == 1)
        traces[name] = Trace(res.channel.ref, cs.timestamps, raw)
        vals = resample(
            cs.timestamps, raw, grid, hold=res.hold, max_gap=None if res.hold else max_gap
        )
        if name in FLAG_SIGNALS:  # 0/1, NaN kept (in place: the grid arrays are large)
            nan = np.isnan(vals)
            np.copyto(vals, vals != 0, casting="unsafe")
            vals[nan] = np.nan
            del nan
        values[name] = vals
        sources[name] = res.source
    if "target_valid" in values:
        invalid = values["target_valid"] == 0
        for name in TARGET_SIGNALS:
            if name in values:
                values[name][invalid] = np.nan
    else:
        dist = values.get("target_distance", np.full(grid.shape, np.nan))
        values["target_valid"] = np.isfinite(dist).astype(np.float64)
        sources["target_valid"] = "derived: isfinite(target_distance)"
    ordered = {n: values[n] for n in CANONICAL_SIGNALS if n in values}
    return Signals(
        t=grid,
        values=ordered,
        cycle_time=cycle_time,
        sources={n: sources[n] for n in ordered},
        traces=traces,
    )

"""The channel map: which recording channels feed each canonical signal, and how to
convert them to SI (the built-in candidates, a TOML file merged over them, ``[can]`` DBCs).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_adsreplay.errors import ChannelMapError
from pytest_adsreplay.signals.resample import RESAMPLING_RULES
from pytest_adsreplay.signals.units import (
    ACCELERATION,
    ANGLE,
    ANGULAR_RATE,
    DIMENSIONLESS,
    LENGTH,
    SI_UNITS,
    SPEED,
    known_units,
    unit_info,
)

CANONICAL_SIGNALS: tuple[str, ...] = (
    "ego_speed",
    "ego_accel",
    "target_distance",
    "target_rel_speed",
    "target_lateral",
    "target_valid",
    "driver_brake",
    "ego_yaw_rate",
    "steering_wheel_angle",
    "driver_throttle",
    "turn_indicator",
)
REQUIRED_SIGNALS: tuple[str, ...] = ("ego_speed", "target_distance", "target_rel_speed")
FLAG_SIGNALS: frozenset[str] = frozenset({"target_valid", "driver_brake"})
#: Signals resampled by previous-value hold, never interpolated: the flags and the
#: turn indicator (-1 right, 0 off, 1 left).
HELD_SIGNALS: frozenset[str] = FLAG_SIGNALS | {"turn_indicator"}

#: Signals that the target_valid flag masks with NaN where it says "no object".
TARGET_SIGNALS: tuple[str, ...] = ("target_distance", "target_rel_speed", "target_lateral")

#: Signals a map may name that steer resampling but are not inputs of the function:
#: ``target_id`` is the lead object's track id (a new id is another object).
AUXILIARY_SIGNALS: tuple[str, ...] = ("target_id",)
#: The fields of an object list (``[objects]`` table), one matrix of cycles x slots each.
OBJECT_FIELDS: tuple[str, ...] = (
    "obj_dx",
    "obj_dy",
    "obj_vx",
    "obj_vy",
    "obj_ax",
    "obj_valid",
    "obj_id",
    "obj_class",
)
#: Object fields resampled by previous-value hold (the flag, the track id, the class).
HELD_OBJECT_FIELDS: frozenset[str] = frozenset({"obj_valid", "obj_id", "obj_class"})
#: The largest object list a map may declare.
MAX_OBJECT_SLOTS = 1024

#: Every name a ``[signals.<name>]`` table may have.
MAPPABLE_SIGNALS: tuple[str, ...] = CANONICAL_SIGNALS + AUXILIARY_SIGNALS

SIGNAL_DIMENSIONS: dict[str, str] = {
    "ego_speed": SPEED,
    "ego_accel": ACCELERATION,
    "target_distance": LENGTH,
    "target_rel_speed": SPEED,
    "target_lateral": LENGTH,
    "target_valid": DIMENSIONLESS,
    "driver_brake": DIMENSIONLESS,
    "target_id": DIMENSIONLESS,
    "ego_yaw_rate": ANGULAR_RATE,
    "steering_wheel_angle": ANGLE,
    "driver_throttle": DIMENSIONLESS,
    "turn_indicator": DIMENSIONLESS,
    "obj_dx": LENGTH,
    "obj_dy": LENGTH,
    "obj_vx": SPEED,
    "obj_vy": SPEED,
    "obj_ax": ACCELERATION,
    "obj_valid": DIMENSIONLESS,
    "obj_id": DIMENSIONLESS,
    "obj_class": DIMENSIONLESS,
}


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


@dataclass(frozen=True)
class ObjectSpec:
    """The ``[objects]`` table: ``count`` slots numbered from ``index_base`` in the file,
    and per field its candidates (a name with ``{i}`` is one channel per slot, formatted
    with the slot's number; a name without is an array channel of ``count`` elements)."""

    count: int
    fields: Mapping[str, SignalSpec]
    index_base: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"count": self.count, "index_base": self.index_base}
        for name in OBJECT_FIELDS:
            if name in self.fields:
                out[name] = self.fields[name].to_dict()
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
    "target_id": (
        "Radar.Obj0.ID",
        "Radar.Obj0.Id",
        "ObjID",
        "ObjId",
        "Obj0_ID",
        "Obj0.ID",
        "TargetId",
        "TargetID",
        "target_id",
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
    "ego_yaw_rate": (
        "YawRate",
        "VehYawRate",
        "ESP_YawRate",
        "YawRt",
        "yaw_rate",
        "ego_yaw_rate",
    ),
    "steering_wheel_angle": (
        "SteerWhlAng",
        "SteeringWheelAngle",
        "SteerAngle",
        "LWI_Lenkradwinkel",
        "StrWhlAng",
        "steering_wheel_angle",
    ),
    "driver_throttle": (
        "AccPdlPos",
        "AccelPedal",
        "ThrottlePos",
        "AccPedal",
        "GasPedal",
        "driver_throttle",
    ),
    "turn_indicator": (
        "TurnIndicator",
        "TurnSignal",
        "BlinkerSts",
        "TurnIndSts",
        "turn_indicator",
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
_TOP_KEYS = ("signals", "use_builtin", "description", "can", "objects")
_OBJECTS_HINT = (
    "write [objects] count = 32 (slots), index_base = 0 (1 when the logger numbers objects "
    'from 1) and per field [objects.obj_dx] channels = ["Radar.Obj{i:02d}.DistX"] (one '
    'channel per slot) or channels = ["ObjList.DistX"] (an array channel); fields: '
    + ", ".join(OBJECT_FIELDS)
)
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
    mention keep the built-in candidates unless the file says ``use_builtin = false``
    (a map with only a ``[can]`` table adds its DBC files to the built-in map).
    ``dbc`` lists the DBC files that decode raw CAN bus logging (``[can]`` table): the
    decoded signals are channels named ``Message.Signal`` (and the bare signal name).
    """

    signals: Mapping[str, SignalSpec]
    source: str = "built-in"
    dbc: tuple[DbcFile, ...] = ()
    objects: ObjectSpec | None = None

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
        objects = _parse_objects(data.get("objects"), fail)
        table = data.get("signals", {} if dbc or objects else None)
        if not isinstance(table, Mapping) or not (table or dbc or objects):
            raise fail("no [signals.<name>] tables (and no [can] or [objects] table) found")
        specs: dict[str, SignalSpec] = {}
        for name, entry in table.items():
            specs[name] = _parse_spec(name, entry, fail)
        merged = dict(cls.default().signals) if use_builtin else {}
        merged.update(specs)
        ordered = {n: merged[n] for n in MAPPABLE_SIGNALS if n in merged}
        return cls(ordered, source, dbc, objects)

    def to_dict(self) -> dict[str, Any]:
        """Normalized plain structure (``use_builtin = false``: complete by itself)."""
        out: dict[str, Any] = {
            "use_builtin": False,
            "signals": {
                n: self.signals[n].to_dict() for n in MAPPABLE_SIGNALS if n in self.signals
            },
        }
        if self.dbc:
            out["can"] = {"dbc": [{"file": str(d.path), "bus": d.bus} for d in self.dbc]}
        if self.objects is not None:
            out["objects"] = self.objects.to_dict()
        return out

    def dbc_pairs(self) -> list[tuple[Path, int]]:
        """``(file, bus)`` pairs as the MDF reader takes them."""
        return [(d.path, d.bus) for d in self.dbc]

    def fingerprint(self) -> str:
        """sha256 hex of the normalized map, its DBC files' contents and the version of
        the resampling rules (independent of the map's source path and spelling): the
        signals read through a map change with any of them."""
        norm: dict[str, Any] = {"[rules]": RESAMPLING_RULES}
        for name, spec in sorted(self.signals.items()):
            norm[name] = _spec_fingerprint(spec)
        if self.objects is not None:
            norm["[objects]"] = {
                "count": self.objects.count,
                "index_base": self.objects.index_base,
                **{n: _spec_fingerprint(s) for n, s in sorted(self.objects.fields.items())},
            }
        if self.dbc:
            norm["[can]"] = [[_file_sha256(d.path), d.bus] for d in self.dbc]
        blob = json.dumps(norm, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _spec_fingerprint(spec: SignalSpec) -> dict[str, Any]:
    entry: dict[str, Any] = {"channels": [str(c) for c in spec.channels]}
    if spec.scale is not None:
        entry["scale"] = float(spec.scale)
        entry["offset"] = float(spec.offset)
    elif spec.unit is not None:
        scale, offset, _ = unit_info(spec.unit)
        entry["unit"] = [scale, offset]
    return entry


def _parse_objects(table: Any, fail: Any) -> ObjectSpec | None:
    """The ``[objects]`` table (None when absent)."""
    if table is None:
        return None
    if not isinstance(table, Mapping):
        raise fail(f"[objects] must be a table, got {type(table).__name__}", _OBJECTS_HINT)
    unknown = sorted(set(table) - {"count", "index_base", *OBJECT_FIELDS})
    if unknown:
        close = difflib.get_close_matches(unknown[0], OBJECT_FIELDS, n=1)
        also = f" (did you mean {close[0]!r}?)" if close else ""
        raise fail(f"[objects]: unknown key(s) {', '.join(unknown)}{also}", _OBJECTS_HINT)
    count, base = table.get("count"), table.get("index_base", 0)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_OBJECT_SLOTS:
        raise fail(
            f"[objects] count must be a whole number of slots 1..{MAX_OBJECT_SLOTS}, got {count!r}",
            _OBJECTS_HINT,
        )
    if isinstance(base, bool) or not isinstance(base, int) or base < 0:
        raise fail(f"[objects] index_base must be 0 or 1 (or more), got {base!r}", _OBJECTS_HINT)
    if "obj_dx" not in table:
        raise fail("[objects] has no [objects.obj_dx] table (the field every list needs)")
    fields = {}
    for name in OBJECT_FIELDS:
        if name in table:
            spec = _parse_spec(name, table[name], fail, where=f"[objects.{name}]")
            for ref in spec.channels:
                _check_pattern(ref.name, f"[objects.{name}]", fail)
            fields[name] = spec
    return ObjectSpec(count, fields, base)


def _check_pattern(name: str, where: str, fail: Any) -> None:
    """A slot pattern must format with ``i`` alone (``"Radar.Obj{i:02d}.DistX"``)."""
    if "{" not in name:
        return
    try:
        name.format(i=0)
    except (KeyError, IndexError, ValueError) as exc:
        raise fail(
            f"{where}: bad slot pattern {name!r} ({type(exc).__name__}: {exc}); use Python "
            'format syntax on i, e.g. "Radar.Obj{i:02d}.DistX"',
            _OBJECTS_HINT,
        ) from None


def _file_sha256(path: Path) -> str:
    from pytest_adsreplay.hashing import file_sha256

    try:
        return file_sha256(path)
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


def _parse_spec(name: Any, entry: Any, fail: Any, *, where: str | None = None) -> SignalSpec:
    if where is None and name not in MAPPABLE_SIGNALS:
        close = difflib.get_close_matches(str(name), MAPPABLE_SIGNALS, n=1)
        also = f" (did you mean {close[0]!r}?)" if close else ""
        why = " ('t' is built by resampling, it cannot be mapped)" if name == "t" else ""
        raise fail(
            f"unknown signal [signals.{name}]{also}{why}; canonical signals are "
            f"{', '.join(CANONICAL_SIGNALS)} (and {', '.join(AUXILIARY_SIGNALS)}, the lead "
            "object's track id)"
        )
    where = where or f"[signals.{name}]"
    if not isinstance(entry, Mapping):
        raise fail(f"{where} must be a table, got {type(entry).__name__}")
    unknown = sorted(set(entry) - set(_SIGNAL_KEYS))
    if unknown:
        raise fail(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_SIGNAL_KEYS)}"
        )
    refs = _parse_refs(entry.get("channels"), where, fail)
    unit = entry.get("unit")
    scale = entry.get("scale")
    offset = entry.get("offset")
    if unit is not None and (scale is not None or offset is not None):
        raise fail(f"{where}: give either unit or scale (+ offset), not both")
    if unit is not None:
        _check_unit(name, unit, where, fail)
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


def _parse_refs(chans: Any, where: str, fail: Any) -> list[ChannelRef]:
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
    return refs


def _check_unit(name: str, unit: Any, where: str, fail: Any) -> None:
    dim = SIGNAL_DIMENSIONS[name]
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


def load_channel_map(path: str | Path | None) -> ChannelMap:
    """The map at ``path``, or the built-in map for None."""
    return ChannelMap.default() if path is None else ChannelMap.load(path)

"""How channels are found in a recording: candidates, duplicates, units (no data read)."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_adsreplay.errors import AmbiguousChannelError, RecordingError, UnitError
from pytest_adsreplay.signals.channel_map import (
    HELD_SIGNALS,
    SIGNAL_DIMENSIONS,
    ChannelMap,
    ChannelRef,
    SignalSpec,
)
from pytest_adsreplay.signals.units import (
    DIMENSIONLESS,
    SI_UNITS,
    is_no_unit,
    norm_unit,
    same_unit,
    unit_info,
)

if TYPE_CHECKING:
    from pytest_adsreplay.mdf.reader import ChannelInfo, RecordingInfo


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
    channel_map: ChannelMap,
    info: RecordingInfo,
    *,
    recording: str | None = None,
    suggest: Collection[str] | None = None,
) -> dict[str, Resolution]:
    """Resolve every signal of the map against a file's channels (no data is read).

    Ambiguity and unit contradictions are stored in ``Resolution.error`` rather than
    raised, so ``adsreplay inspect`` can show all of them; ``read_signals`` raises.
    """
    rec = recording or info.path
    names = info.channel_names()
    return {
        name: resolve_spec(
            name,
            spec,
            info,
            names,
            rec,
            channel_map.source,
            suggest=suggest is None or name in suggest,
        )
        for name, spec in channel_map.signals.items()
    }


def resolve_spec(
    name: str,
    spec: SignalSpec,
    info: RecordingInfo,
    names: Sequence[str],
    rec: str,
    source: str,
    *,
    kind: str | None = None,
    hold: bool | None = None,
    suggest: bool = True,
) -> Resolution:
    """Resolve one signal's candidates (``kind``: the canonical name whose unit applies,
    default ``name``; ``hold``: resample by hold, default for flags and discrete channels;
    ``suggest``: list close matches when not found, which costs a fuzzy search through
    every channel name of the file)."""
    kind = kind or name
    table = f"[signals.{name}]" if kind == name else f"[objects.{kind}]"
    chosen: ChannelInfo | None = None
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
            err = _ambiguous(name, ref, occ, info, rec, source, table=table)
            return Resolution(name, spec, error=err)
        chosen = occ[0]
        break
    if chosen is None:
        close = _close_matches(spec, names) if suggest else ()
        return Resolution(name, spec, close_matches=close)
    try:
        scale, offset, text = _conversion(kind, spec, chosen, rec, source, label=name, table=table)
    except RecordingError as exc:
        return Resolution(name, spec, channel=chosen, error=exc)
    if not chosen.numeric:
        bad = _not_numeric(name, chosen, info, rec, source, table=table)
        return Resolution(name, spec, channel=chosen, error=bad)
    return Resolution(
        name,
        spec,
        channel=chosen,
        scale=scale,
        offset=offset,
        hold=(name in HELD_SIGNALS if hold is None else hold) or chosen.discrete,
        conversion=text,
    )


def _not_numeric(
    signal: str, ch: ChannelInfo, info: RecordingInfo, rec: str, source: str, *, table: str
) -> RecordingError:
    if ch.kind == "array":
        elements = [
            c.name
            for c in info.groups[ch.group].channels
            if c.name.startswith(f"{ch.name}[") and c.kind == "scalar"
        ]
        example = elements[0] if elements else f"{ch.name}[0][0]"
        more = f" ({len(elements)} elements: {', '.join(elements[:3])}, …)" if elements else ""
        return RecordingError(
            f"channel {ch.ref} for {signal} is an array channel{more}; a signal takes one "
            "number per sample",
            recording=rec,
            hint=f'map one element in the channel map ({source}): {table} channels = ["{example}"]',
        )
    what = f"a {ch.kind} channel" if ch.kind != "scalar" else f"{ch.dtype} data"
    return RecordingError(
        f"channel {ch.ref} for {signal} holds {what}, not numbers",
        recording=rec,
        hint=f"map {signal} to a numeric channel in the channel map ({source})",
    )


def _ambiguous(
    signal: str,
    ref: ChannelRef,
    occ: Sequence[ChannelInfo],
    info: RecordingInfo,
    rec: str,
    source: str,
    *,
    table: str,
) -> AmbiguousChannelError:
    listing = ", ".join(
        f"{c.ref} (group {info.groups[c.group].name!r}, {info.groups[c.group].samples} samples)"
        for c in occ
    )
    return AmbiguousChannelError(
        f"channel {ref.name!r} for {signal} occurs {len(occ)} times: {listing}",
        recording=rec,
        hint=f"say which one in the channel map ({source}): {table} channels = "
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
    kind: str,
    spec: SignalSpec,
    ch: ChannelInfo,
    rec: str,
    source: str,
    *,
    label: str,
    table: str,
) -> tuple[float, float, str]:
    """Scale, offset and text converting ``ch`` to the SI unit of the canonical ``kind``
    (``label`` names the signal in messages, ``table`` the channel map's table)."""
    signal = label
    dim = SIGNAL_DIMENSIONS[kind]
    si = SI_UNITS[dim]
    file_unit = ch.unit
    if spec.scale is not None:
        return spec.scale, spec.offset, f"map scale {spec.scale:g}, offset {spec.offset:g}"
    file_info: tuple[float, float, str] | None = None
    if not is_no_unit(file_unit):
        try:
            file_info = unit_info(file_unit)
        except ValueError:
            file_info = None
    if spec.unit is not None:
        map_info = unit_info(spec.unit)
        if is_no_unit(file_unit) or (file_info is not None and same_unit(file_info, map_info)):
            if map_info[0] == 1.0 and map_info[1] == 0.0:
                return 1.0, 0.0, si
            return map_info[0], map_info[1], f"{spec.unit} -> {si}"
        raise UnitError(
            f"unit contradiction for {signal}: channel {ch.ref} says {file_unit!r} in the file, "
            f"the channel map ({source}) says {spec.unit!r}",
            recording=rec,
            hint=f"fix unit in {table} if the file is right, or use scale = … to "
            f"override the file's unit deliberately",
        )
    if is_no_unit(file_unit):
        return 1.0, 0.0, si if dim == DIMENSIONLESS else f"no unit in file, taken as {si}"
    if file_info is None:
        return 1.0, 0.0, f"unknown unit {file_unit!r}, taken as {si}"
    if file_info[2] != dim:
        raise UnitError(
            f"channel {ch.ref} for {signal} has unit {file_unit!r} ({file_info[2]}), but "
            f"{signal} is a {dim} in {si}",
            recording=rec,
            hint=f"map {signal} to the right channel in {table} of the channel map "
            f"({source}), or give scale = … to override the file's unit",
        )
    if file_info[0] == 1.0 and file_info[1] == 0.0:
        return 1.0, 0.0, si if norm_unit(file_unit) == norm_unit(si) else f"{file_unit} = {si}"
    return file_info[0], file_info[1], f"{file_unit} -> {si}"

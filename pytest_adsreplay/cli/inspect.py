"""``adsreplay inspect``: what a recording contains, how a channel map resolves in it, and
what the data-quality gate says about it.

Exit codes: 0 the file was read (the report says how the map resolves and whether the
gate passes), 1 the file cannot be read or the gate finds it an invalid recording,
4 usage (bad arguments, a channel map that is missing or malformed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from pytest_adsreplay import mdf as mf4
from pytest_adsreplay.errors import AdsReplayError, ChannelMapError, InvalidRecordingError
from pytest_adsreplay.signals import (
    CANONICAL_SIGNALS,
    REQUIRED_SIGNALS,
    TARGET_SIGNALS,
    ChannelMap,
    Resolution,
    can_notes,
    find_gaps,
    load_channel_map,
    read_signals,
    resolve_channels,
)
from pytest_adsreplay.signals.channel_map import OBJECT_FIELDS
from pytest_adsreplay.signals.objects import resolve_objects
from pytest_adsreplay.signals.quality import (
    DEFAULT_MAX_GAP,
    GateSettings,
    assess,
    describe_settings,
    time_findings,
)
from pytest_adsreplay.signals.read import plural

_MAX_LISTED = 5
EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 4


@dataclass(frozen=True)
class Inspection:
    """The report of :func:`inspect` and what it found.

    ``valid`` is the gate's verdict, None when the gate could not run (e.g. a required
    signal is not found: the map, not the file, needs work).
    """

    text: str
    readable: bool
    valid: bool | None

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.readable and self.valid is not False else EXIT_INVALID


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="groups, channels, units, rates, map resolution, findings",
        description="What a recording contains, how the channel map resolves in it and what "
        "the data-quality gate says. Exit codes: 0 readable, 1 unreadable or an invalid "
        "recording, 4 usage.",
    )
    p.add_argument("file", metavar="FILE.mf4")
    p.add_argument("--channel-map", metavar="MAP", default=None)
    p.add_argument(
        "--max-gap",
        type=float,
        default=None,
        metavar="S",
        help=f"longest gap between samples the gate accepts (default {DEFAULT_MAX_GAP} s)",
    )
    p.set_defaults(func=run)
    p.error = _usage_error(p)  # type: ignore[method-assign,assignment]  # usage: exit 4


def _usage_error(parser: argparse.ArgumentParser) -> Callable[[str], NoReturn]:
    def error(message: str) -> NoReturn:
        parser.print_usage(sys.stderr)
        parser.exit(EXIT_USAGE, f"{parser.prog}: error: {message}\n")

    return error


def run(args: argparse.Namespace) -> int:
    """Print the report; the exit code says whether the recording can be replayed."""
    max_gap = DEFAULT_MAX_GAP if args.max_gap is None else args.max_gap
    if not max_gap > 0:
        print(f"adsreplay inspect: error: --max-gap must be > 0 s, got {max_gap}", file=sys.stderr)
        return EXIT_USAGE
    try:
        cmap = load_channel_map(args.channel_map) if args.channel_map else None
    except ChannelMapError as exc:
        print(f"adsreplay inspect: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    result = inspect(Path(args.file), cmap, max_gap=max_gap)
    print(result.text, end="")
    return result.exit_code


def inspect_recording(
    path: str | Path,
    channel_map: ChannelMap | None = None,
    *,
    max_gap: float = DEFAULT_MAX_GAP,
    settings: GateSettings | None = None,
) -> str:
    """Plain-text report of :func:`inspect` (never raises for a bad recording)."""
    return inspect(path, channel_map, max_gap=max_gap, settings=settings).text


def inspect(
    path: str | Path,
    channel_map: ChannelMap | None = None,
    *,
    max_gap: float = DEFAULT_MAX_GAP,
    settings: GateSettings | None = None,
) -> Inspection:
    """Report: file, metadata, groups, channels, raw CAN decoding, map resolution, the
    data-quality gate's verdict and other findings.

    The gate uses ``settings`` or, by default, ``max_gap`` and what the recording's
    sidecar says (``nominal_speed``, whether a target is expected). Never raises for a
    bad recording: a RecordingError's text becomes the report.
    """
    from pytest_adsreplay.recordings import rejection

    path = Path(path)
    cmap = channel_map if channel_map is not None else ChannelMap.default()
    lines = [f"Recording: {path}"]
    # a named pipe would block the open for ever; a missing file gets the reader's message
    refused = rejection(path) if path.exists() or path.is_symlink() else None
    if refused is not None:
        lines.append(f"ERROR: {refused}")
        return Inspection("\n".join(lines) + "\n", readable=False, valid=None)
    notes: list[str] = []
    if settings is None:
        settings = _sidecar_settings(path, max_gap, notes)
    try:
        with mf4.open_recording(path, recording=str(path), dbc=cmap.dbc_pairs()) as reader:
            findings = _report(reader, cmap, lines)
    except AdsReplayError as exc:
        lines.append(f"ERROR: {exc}")
        return Inspection("\n".join(lines) + "\n", readable=False, valid=None)
    gate_lines, valid = _gate_section(path, cmap, settings)
    lines += gate_lines
    findings = notes + findings
    lines.append("Findings:")
    lines.extend(f"  - {f}" for f in findings)
    if not findings:
        lines.append("  none")
    return Inspection("\n".join(lines) + "\n", readable=True, valid=valid)


def _sidecar_settings(path: Path, max_gap: float, notes: list[str]) -> GateSettings:
    from pytest_adsreplay.errors import SidecarError
    from pytest_adsreplay.recordings import load_recording, sidecar_path
    from pytest_adsreplay.signals.quality import expects_target

    if not sidecar_path(path).is_file():
        return GateSettings(max_gap=max_gap)
    try:
        rec = load_recording(path)
    except SidecarError as exc:
        notes.append(f"sidecar: {exc.message}")
        return GateSettings(max_gap=max_gap)
    return GateSettings(
        max_gap=max_gap,
        nominal_speed=rec.nominal_speed,
        expect_target=expects_target(rec.scenario, rec.expect, rec.meta),
    )


def _span(ts: np.ndarray) -> str:
    finite = ts[np.isfinite(ts)]
    if finite.size == 0:
        return "no samples"
    return f"t {finite.min():.3f} .. {finite.max():.3f} s"


def _rate(ts: np.ndarray) -> str:
    dt = np.diff(ts[np.isfinite(ts)])
    dt = dt[dt > 0]
    if dt.size == 0:
        return "rate n/a"
    return f"~{1.0 / float(np.median(dt)):.4g} Hz"


def _frame_rate(ts: np.ndarray) -> str:
    """Average frames per second: bus frames come in bursts, a median interval misleads."""
    finite = ts[np.isfinite(ts)]
    span = float(finite.max() - finite.min()) if finite.size else 0.0
    if finite.size < 2 or span <= 0:
        return "rate n/a"
    return f"~{(finite.size - 1) / span:.4g} frames/s on average"


def _group_line(g: mf4.GroupInfo, ts: np.ndarray) -> str:
    what = f"  [{g.index}] {g.name}: {g.samples} samples, "
    if g.payload:
        return what + "variable-length payload bytes of another group (VLSD), no time needed"
    if g.bus:
        what += f"{_frame_rate(ts)}, {_span(ts)}, raw {g.bus} bus logging"
    elif not g.time:
        master = f"a {g.master} master" if g.master else "no master channel"
        what += f"NO TIME CHANNEL ({master})"
    else:
        what += f"{_rate(ts)}, {_span(ts)}"
    if g.decoded:
        what += f", decoded from {g.decoded}"
    return what


def _channel_line(c: mf4.ChannelInfo, width: int) -> str:
    unit = repr(c.unit) if c.unit else "-"
    text = f"  {c.ref:<{width}}  unit {unit}  {c.dtype}  conversion {c.conversion}"
    if c.kind != "scalar":
        text += f"  ({c.kind} channel, not mappable)"
    if c.aliases:
        text += f"  aka {', '.join(c.aliases[:3])}"
    return text


def _report(reader: mf4.Mf4Reader, cmap: ChannelMap, lines: list[str]) -> list[str]:
    info = reader.info
    lines.append(f"  size {info.size} bytes, MDF {info.version}, start {info.start_time or '?'}")
    meta = ", ".join(f"{k} = {v!r}" for k, v in info.metadata.items())
    lines.append(f"Metadata: {meta or 'none'}")
    findings = _groups_section(reader, lines)
    channels = info.channels()
    lines.append(f"Channels ({len(channels)}):")
    width = max((len(c.ref) for c in channels), default=0)
    lines.extend(_channel_line(c, width) for c in channels)
    findings += _can_section(info, cmap, lines)
    lines.append(f"Channel map: {cmap.source} (fingerprint {cmap.fingerprint()[:12]})")
    resolved = resolve_channels(cmap, info, recording=info.path)
    names = [*CANONICAL_SIGNALS, *(n for n in cmap.signals if n not in CANONICAL_SIGNALS)]
    width = min(max(len(n) for n in names), _NAME_WIDTH)
    for name in names:
        lines.append(f"  {name:<{width}} <- {_resolution_text(name, resolved.get(name))}")
    findings += _mapped_findings(reader, resolved)
    objects, more = _objects_section(cmap, info, lines)
    findings += more
    for name, occ in info.duplicates().items():
        findings.append(
            f"duplicate channel name {name!r}: {', '.join(c.ref for c in occ)} "
            "(address one as Name@group/index in the channel map)"
        )
    for name in REQUIRED_SIGNALS:
        if objects and name in TARGET_SIGNALS:
            continue  # the KPI target is derived from the object list
        res = resolved.get(name)
        if res is None or not res.found:
            findings.append(f"required signal {name} cannot be resolved: replay will fail")
    return findings


#: Signal names are padded to this width (a longer one, like steering_wheel_angle, overflows).
_NAME_WIDTH = len("target_rel_speed")
#: Slots listed one by one in the object-list section (the first ones and the last).
_SLOTS_SHOWN = 3


def _objects_section(
    cmap: ChannelMap, info: mf4.RecordingInfo, lines: list[str]
) -> tuple[bool, list[str]]:
    """How the ``[objects]`` table resolves, field by field and slot by slot; returns
    whether the list is present, and findings."""
    if cmap.objects is None:
        return False, []
    res = resolve_objects(cmap.objects, info, recording=info.path, source=cmap.source)
    dx = res.fields.get("obj_dx")
    present = dx is not None and bool(dx.candidate)  # matched, perhaps with an error
    lines.append(
        f"Object list: {res.count} slots, numbered from {res.index_base} in the file"
        + ("" if present else " (obj_dx not found: no object list in this recording)")
    )
    findings: list[str] = []
    for name in OBJECT_FIELDS:
        fr = res.fields.get(name)
        if fr is None:
            text = "derived: isfinite(obj_dx)" if name == "obj_valid" else "not mapped (NaN)"
        elif fr.error is not None:
            text = f"ERROR: {str(fr.error).splitlines()[0]}"
            findings.append(f"{name}: {fr.error}")
        elif fr.found:
            text = fr.source
        else:
            text = f"not found (tried {', '.join(fr.tried)})"
        lines.append(f"  {name:<9} <- {text}")
    if res.found:
        found = [f for f in res.fields.values() if f.found]
        shown = sorted({*range(min(_SLOTS_SHOWN, res.count)), res.count - 1})
        for j in shown:
            if j == res.count - 1 and j > _SLOTS_SHOWN:
                lines.append("    …")
            refs = ", ".join(
                f"{f.field}={f.slots[j].channel.ref}" for f in found if f.slots[j].channel
            )
            lines.append(f"    slot {j} (file {res.index_base + j}): {refs}")
    return present, findings


def _groups_section(reader: mf4.Mf4Reader, lines: list[str]) -> list[str]:
    groups = reader.info.groups
    findings: list[str] = []
    lines.append(f"Groups ({len(groups)}):")
    for g in groups:
        where = f"group {g.index} ({g.name})"
        if g.payload or not g.time:
            lines.append(_group_line(g, np.zeros(0)))
            if not g.payload:
                findings.append(f"{where} has no time channel: its channels cannot be replayed")
            continue
        try:
            ts = reader.master(g.index)
        except AdsReplayError as exc:
            lines.append(f"  [{g.index}] {g.name}: {g.samples} samples, time unreadable")
            findings.append(f"{where}: {exc.message}")
            continue
        lines.append(_group_line(g, ts))
        if not g.bus:  # bus frames are events: bursts and pauses are no gaps
            findings.extend(_time_findings(where, ts))
    return findings


def _can_section(info: mf4.RecordingInfo, cmap: ChannelMap, lines: list[str]) -> list[str]:
    can = can_notes(info, cmap.source)
    if not can:
        return []
    findings: list[str] = []
    lines.append("CAN bus logging:")
    lines.extend(f"  {n}" for n in can)
    if info.can is not None and info.can.unknown:
        findings.append(
            f"CAN IDs not in the DBC ({', '.join(info.can.dbc)}): {info.can.unknown_text()}"
        )
    if info.can is not None and info.can.error:
        findings.append(f"decoding raw CAN failed: {info.can.error}")
    if info.can is None:
        findings.append(can[0])
    return findings


def _mapped_findings(reader: mf4.Mf4Reader, resolved: dict[str, Resolution]) -> list[str]:
    wanted: list[mf4.ChannelInfo] = []
    for r in resolved.values():
        if r.found and r.channel is not None and r.channel not in wanted:
            wanted.append(r.channel)
    findings: list[str] = []
    try:
        for cs in reader.read(wanted):
            findings.extend(_nan_findings(cs.channel.ref, cs.timestamps, cs.samples))
    except AdsReplayError as exc:
        findings.append(f"mapped channels cannot be read: {exc.message}")
    return findings


def _gate_section(
    path: Path, cmap: ChannelMap, settings: GateSettings
) -> tuple[list[str], bool | None]:
    """The data-quality gate as the read stage runs it: its lines and verdict (True valid,
    False invalid, None not run)."""
    head = f"Data-quality gate ({describe_settings(settings)}):"
    try:
        sig = read_signals(path, cmap, recording_id=str(path), max_gap=settings.max_gap)
    except InvalidRecordingError as exc:
        return [head, *_indented("FAIL", exc), "  verdict: invalid recording"], False
    except AdsReplayError as exc:
        return [
            head,
            *_indented("not run:", exc),
            "  verdict: the replay cannot run (see above)",
        ], None
    found = assess(sig, settings)
    out = [head]
    out += [f"  {'FAIL' if f.fatal else 'note'} {f.text()}" for f in found]
    fatal = sum(f.fatal for f in found)
    out.append(
        f"  verdict: invalid recording ({plural(fatal, 'failed check')})"
        if fatal
        else "  verdict: valid"
    )
    return out, not fatal


def _indented(label: str, exc: AdsReplayError) -> list[str]:
    """The whole message (every line) and its hint, indented under the gate's heading."""
    first, *rest = exc.message.splitlines() or [""]
    out = [f"  {label} {first}"]
    out += [f"    {line.strip()}" for line in rest if line.strip()]
    if exc.hint:
        out.append(f"    -> {exc.hint}")
    return out


def _resolution_text(name: str, res: Resolution | None) -> str:
    if res is None:
        return "not in the channel map"
    if res.error is not None:
        return f"ERROR: {res.error.message}"
    if res.channel is not None:
        return res.source
    tried = ", ".join(str(c) for c in res.spec.channels)
    close = ", ".join(res.close_matches) if res.close_matches else "none"
    derived = " (derived: isfinite(target_distance))" if name == "target_valid" else ""
    return f"not found{derived}; tried {tried}; close matches: {close}"


def _time_findings(where: str, ts: np.ndarray) -> list[str]:
    out = [f.message for f in time_findings(where, ts)]
    finite = ts[np.isfinite(ts)]
    if out and any("backwards" in m for m in out):
        return out
    gaps = find_gaps(finite, DEFAULT_MAX_GAP)
    if gaps.size:
        listed = ", ".join(
            f"{finite[i + 1] - finite[i]:.3f} s at t={finite[i]:.3f} s" for i in gaps[:_MAX_LISTED]
        )
        more = f" (+{gaps.size - _MAX_LISTED} more)" if gaps.size > _MAX_LISTED else ""
        out.append(f"{where}: {gaps.size} gap(s) longer than {DEFAULT_MAX_GAP} s: {listed}{more}")
    return out


def _nan_findings(ref: str, ts: np.ndarray, samples: np.ndarray) -> list[str]:
    nan = ~np.isfinite(samples)
    if not nan.any():
        return []
    edges = np.diff(np.r_[0, nan.astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    listed = ", ".join(
        f"t {ts[s]:.3f} .. {ts[e]:.3f} s" for s, e in zip(starts[:_MAX_LISTED], ends, strict=False)
    )
    more = f" (+{starts.size - _MAX_LISTED} more)" if starts.size > _MAX_LISTED else ""
    return [f"{ref}: {int(nan.sum())} NaN sample(s) in {starts.size} span(s): {listed}{more}"]

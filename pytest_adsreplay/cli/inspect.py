"""``adsreplay inspect``: what a recording contains, how a channel map resolves in it, and
what the data-quality gate says about it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pytest_adsreplay import mdf as mf4
from pytest_adsreplay.errors import AdsReplayError, InvalidRecordingError
from pytest_adsreplay.signals import (
    CANONICAL_SIGNALS,
    REQUIRED_SIGNALS,
    ChannelMap,
    Resolution,
    can_notes,
    find_gaps,
    read_signals,
    resolve_channels,
)
from pytest_adsreplay.signals.quality import (
    DEFAULT_MAX_GAP,
    GateSettings,
    assess,
    describe_settings,
    time_findings,
)

_MAX_LISTED = 5


def inspect_recording(
    path: str | Path,
    channel_map: ChannelMap | None = None,
    *,
    max_gap: float = DEFAULT_MAX_GAP,
    settings: GateSettings | None = None,
) -> str:
    """Plain-text report: file, metadata, groups, channels, raw CAN decoding, map
    resolution, the data-quality gate's verdict and other findings.

    The gate uses ``settings`` or, by default, ``max_gap`` and what the recording's
    sidecar says (``nominal_speed``, whether a target is expected). Never raises for a
    bad recording: a RecordingError's text becomes the report.
    """
    path = Path(path)
    cmap = channel_map if channel_map is not None else ChannelMap.default()
    lines = [f"Recording: {path}"]
    notes: list[str] = []
    if settings is None:
        settings = _sidecar_settings(path, max_gap, notes)
    try:
        with mf4.open_recording(path, recording=str(path), dbc=cmap.dbc_pairs()) as reader:
            findings = _report(reader, cmap, lines)
    except AdsReplayError as exc:
        lines.append(f"ERROR: {exc}")
        return "\n".join(lines) + "\n"
    lines += _gate_section(path, cmap, settings, notes)
    findings = notes + findings
    lines.append("Findings:")
    lines.extend(f"  - {f}" for f in findings)
    if not findings:
        lines.append("  none")
    return "\n".join(lines) + "\n"


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


def _group_line(g: mf4.GroupInfo, ts: np.ndarray) -> str:
    what = f"  [{g.index}] {g.name}: {g.samples} samples, "
    if not g.time:
        master = f"a {g.master} master" if g.master else "no master channel"
        what += f"NO TIME CHANNEL ({master})"
    else:
        what += f"{_rate(ts)}, {_span(ts)}"
    if g.bus:
        what += f", raw {g.bus} bus logging"
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
    findings: list[str] = []

    lines.append(f"Groups ({len(info.groups)}):")
    for g in info.groups:
        where = f"group {g.index} ({g.name})"
        if not g.time:
            lines.append(_group_line(g, np.zeros(0)))
            findings.append(f"{where} has no time channel: its channels cannot be replayed")
            continue
        try:
            ts = reader.master(g.index)
        except AdsReplayError as exc:
            lines.append(f"  [{g.index}] {g.name}: {g.samples} samples, time unreadable")
            findings.append(f"{where}: {exc.message}")
            continue
        lines.append(_group_line(g, ts))
        findings.extend(_time_findings(where, ts))

    channels = info.channels()
    lines.append(f"Channels ({len(channels)}):")
    width = max((len(c.ref) for c in channels), default=0)
    lines.extend(_channel_line(c, width) for c in channels)

    can = can_notes(info, cmap.source)
    if can:
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

    lines.append(f"Channel map: {cmap.source} (fingerprint {cmap.fingerprint()[:12]})")
    resolved = resolve_channels(cmap, info, recording=info.path)
    width = max(len(n) for n in CANONICAL_SIGNALS)
    for name in CANONICAL_SIGNALS:
        lines.append(f"  {name:<{width}} <- {_resolution_text(name, resolved.get(name))}")

    wanted: list[mf4.ChannelInfo] = []
    for r in resolved.values():
        if r.found and r.channel is not None and r.channel not in wanted:
            wanted.append(r.channel)
    try:
        for cs in reader.read(wanted):
            findings.extend(_nan_findings(cs.channel.ref, cs.timestamps, cs.samples))
    except AdsReplayError as exc:
        findings.append(f"mapped channels cannot be read: {exc.message}")

    for name, occ in info.duplicates().items():
        findings.append(
            f"duplicate channel name {name!r}: {', '.join(c.ref for c in occ)} "
            "(address one as Name@group/index in the channel map)"
        )
    for name in REQUIRED_SIGNALS:
        res = resolved.get(name)
        if res is None or not res.found:
            findings.append(f"required signal {name} cannot be resolved: replay will fail")
    return findings


def _gate_section(
    path: Path, cmap: ChannelMap, settings: GateSettings, notes: list[str]
) -> list[str]:
    """The data-quality gate as the read stage runs it: verdict and each finding."""
    head = f"Data-quality gate ({describe_settings(settings)}):"
    try:
        sig = read_signals(path, cmap, recording_id=str(path), max_gap=settings.max_gap)
    except InvalidRecordingError as exc:
        return [head, f"  FAIL {exc.message}", "  verdict: invalid recording"]
    except AdsReplayError as exc:
        return [
            head,
            f"  not run: {exc.message.splitlines()[0]}",
            "  verdict: the replay cannot run (see above)",
        ]
    found = assess(sig, settings)
    out = [head]
    out += [f"  {'FAIL' if f.fatal else 'note'} {f.text()}" for f in found]
    fatal = sum(f.fatal for f in found)
    out.append(
        f"  verdict: invalid recording ({fatal} failed check(s))" if fatal else "  verdict: valid"
    )
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

"""``adsreplay inspect``: what a recording contains and how a channel map resolves in it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import mf4
from .errors import AdsReplayError
from .signals import (
    CANONICAL_SIGNALS,
    GAP_THRESHOLD,
    REQUIRED_SIGNALS,
    ChannelMap,
    Resolution,
    find_gaps,
    resolve_channels,
)

_MAX_LISTED = 5


def inspect_recording(path: str | Path, channel_map: ChannelMap | None = None) -> str:
    """Plain-text report: file, groups, channels, map resolution and data-quality findings.

    Never raises for a bad recording: a RecordingError's text becomes the report.
    """
    path = Path(path)
    cmap = channel_map if channel_map is not None else ChannelMap.default()
    lines = [f"Recording: {path}"]
    try:
        with mf4.open_recording(path, recording=str(path)) as reader:
            _report(reader, cmap, lines)
    except AdsReplayError as exc:
        lines.append(f"ERROR: {exc}")
    return "\n".join(lines) + "\n"


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


def _report(reader: mf4.Mf4Reader, cmap: ChannelMap, lines: list[str]) -> None:
    info = reader.info
    lines.append(f"  size {info.size} bytes, MDF {info.version}, start {info.start_time or '?'}")
    findings: list[str] = []

    lines.append(f"Groups ({len(info.groups)}):")
    for g in info.groups:
        ts = reader.master(g.index)
        lines.append(f"  [{g.index}] {g.name}: {g.samples} samples, {_rate(ts)}, {_span(ts)}")
        findings.extend(_time_findings(f"group {g.index} ({g.name})", ts))

    channels = info.channels()
    lines.append(f"Channels ({len(channels)}):")
    width = max((len(c.ref) for c in channels), default=0)
    for c in channels:
        unit = repr(c.unit) if c.unit else "-"
        lines.append(f"  {c.ref:<{width}}  unit {unit}  {c.dtype}  conversion {c.conversion}")

    lines.append(f"Channel map: {cmap.source} (fingerprint {cmap.fingerprint()[:12]})")
    resolved = resolve_channels(cmap, info, recording=info.path)
    width = max(len(n) for n in CANONICAL_SIGNALS)
    for name in CANONICAL_SIGNALS:
        lines.append(f"  {name:<{width}} <- {_resolution_text(name, resolved.get(name))}")

    usable = [r for r in resolved.values() if r.found]
    wanted = []
    for r in usable:
        if r.channel is not None and r.channel not in wanted:
            wanted.append(r.channel)
    for cs in reader.read(wanted):
        findings.extend(_nan_findings(cs.channel.ref, cs.timestamps, cs.samples))

    for name, occ in info.duplicates().items():
        findings.append(
            f"duplicate channel name {name!r}: {', '.join(c.ref for c in occ)} "
            "(address one as Name@group/index in the channel map)"
        )
    for name in REQUIRED_SIGNALS:
        res = resolved.get(name)
        if res is None or not res.found:
            findings.append(f"required signal {name} cannot be resolved: replay will fail")

    lines.append("Findings:")
    lines.extend(f"  - {f}" for f in findings)
    if not findings:
        lines.append("  none")


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
    out = []
    nan = np.flatnonzero(~np.isfinite(ts))
    if nan.size:
        out.append(f"{where}: {nan.size} non-finite timestamp(s), first at sample {nan[0]}")
    finite = ts[np.isfinite(ts)]
    dec = np.flatnonzero(np.diff(finite) < 0)
    if dec.size:
        i = int(dec[0]) + 1
        out.append(
            f"{where}: non-monotonic time, {dec.size} backward step(s), first at sample {i} "
            f"(t={finite[i]:.6g} s after {finite[i - 1]:.6g} s)"
        )
    gaps = find_gaps(finite, GAP_THRESHOLD) if not dec.size else np.zeros(0, dtype=np.int64)
    if gaps.size:
        listed = ", ".join(
            f"{finite[i + 1] - finite[i]:.3f} s at t={finite[i]:.3f} s" for i in gaps[:_MAX_LISTED]
        )
        more = f" (+{gaps.size - _MAX_LISTED} more)" if gaps.size > _MAX_LISTED else ""
        out.append(f"{where}: {gaps.size} gap(s) longer than {GAP_THRESHOLD} s: {listed}{more}")
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

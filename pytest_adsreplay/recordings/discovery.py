"""Recording discovery, test ids, sidecar TOML files and their ``[expect]`` bounds.

No asammdf and no pytest here: this module decides *which* recordings exist and what
they are expected to do, not how they are read.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import math
import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

from pytest_adsreplay.errors import SidecarError, UsageError

#: MF4, and classic MDF 3/2 files (read through asammdf like MF4).
RECORDING_SUFFIXES = (".mf4", ".mdf", ".dat")
#: Boolean expectations that are not KPIs themselves.
EVENT_EXPECTATIONS = {"brake": "brake_time", "fcw": "fcw_time"}
#: KPIs whose bound is a count of list items rather than a value.
COUNT_KPIS = ("activations",)


def boundable_kpis() -> tuple[str, ...]:
    """Every name an ``[expect]`` table may bound."""
    from pytest_adsreplay.kpi.compute import KPI_NAMES

    return (*EVENT_EXPECTATIONS, *KPI_NAMES)


def file_sha256(path: str | Path) -> str:
    """sha256 hex of a file, streamed in 1 MiB blocks (hashlib releases the GIL for
    each block, so a hash in a thread runs beside Python code on another core)."""
    with open(path, "rb") as fh:
        return stream_sha256(fh)


def stream_sha256(fh: BinaryIO) -> str:
    """sha256 hex of what is left to read in the open binary file ``fh``."""
    h = hashlib.sha256()
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Bound:
    """One expectation: ``lo <= value <= hi`` (either end may be None) or an exact value."""

    name: str
    lo: float | None = None
    hi: float | None = None
    exact: bool | float | None = None

    def describe(self) -> str:
        if self.exact is not None:
            return f"== {self.exact}"
        if self.lo is not None and self.hi is not None:
            return f"in [{self.lo:g}, {self.hi:g}]"
        if self.lo is not None:
            return f">= {self.lo:g}"
        return f"<= {self.hi:g}"


@dataclass(frozen=True)
class Violation:
    """A bound that a replay result broke, with the observed value and the distance."""

    bound: Bound
    observed: Any
    delta: float | None

    def describe(self) -> str:
        obs = _fmt(self.observed)
        text = f"{self.bound.name} = {obs}, expected {self.bound.describe()}"
        if self.delta is not None:
            text += f" (off by {self.delta:+.3f})"
        return text


def _fmt(value: Any) -> str:
    if value is None:
        return "None (never happened)"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}" if math.isfinite(value) else str(value)
    if isinstance(value, list):
        return f"{len(value)} events"
    return repr(value)


@dataclass(frozen=True)
class Recording:
    """One recording: its file, test id, and what its sidecar says about it."""

    path: Path
    id: str
    root: Path
    sidecar: Path | None = None
    scenario: str | None = None
    tags: tuple[str, ...] = ()
    description: str = ""
    nominal_speed: float | None = None
    expect: tuple[Bound, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)
    #: Why the sidecar could not be used (its tests error with this text), or None.
    problem: str | None = None

    def sha256(self) -> str:
        """Content hash of the recording file (streamed, never fully in memory)."""
        return file_sha256(self.path)

    @cached_property
    def metadata(self) -> dict[str, Any]:
        """The file header's metadata: ``description`` (the header comment text) and its
        common properties, e.g. ``{"vehicle": "…", "driver": "…"}`` (nested ``<tree>``
        elements are dicts). Read lazily from the header only; ``{}`` for an unreadable
        file (its replay reports why)."""
        from pytest_adsreplay.mdf import read_metadata

        return read_metadata(self.path)

    def matches(
        self,
        pattern: str | Sequence[str] | None = None,
        tags: str | Sequence[str] | None = None,
        scenario: str | Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> bool:
        """Selection of ``@pytest.mark.recordings``: id glob(s), all tags, scenario name(s),
        header metadata (every key must match, see :func:`metadata_matches`)."""
        if pattern is not None:
            pats = [pattern] if isinstance(pattern, str) else list(pattern)
            if not any(fnmatch.fnmatchcase(self.id, p) for p in pats):
                return False
        if tags is not None:
            wanted = [tags] if isinstance(tags, str) else list(tags)
            if not set(wanted) <= set(self.tags):
                return False
        if scenario is not None:
            names = [scenario] if isinstance(scenario, str) else list(scenario)
            if self.scenario not in names:
                return False
        return metadata is None or metadata_matches(self.metadata, metadata)


def _lookup(meta: Mapping[str, Any], key: str) -> Any:
    """``meta[key]``, or a nested value for a dotted key ("vehicle.model")."""
    if key in meta:
        return meta[key]
    node: Any = meta
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def metadata_matches(meta: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Every ``key: value`` of ``wanted`` matches the recording's header metadata.

    A value is compared as text with glob patterns (``"ID.*"``); a list matches when any
    of its items does; ``True`` only asks for the key to be present and non-empty.
    """
    for key, want in wanted.items():
        have = _lookup(meta, str(key))
        if have is None:
            return False
        if want is True:
            continue
        options = list(want) if isinstance(want, list | tuple | set) else [want]
        text = str(have)
        if not any(fnmatch.fnmatchcase(text, str(o)) for o in options):
            return False
    return True


def _is_recording(path: Path) -> bool:
    return path.suffix.lower() in RECORDING_SUFFIXES


def _has_magic(text: str) -> bool:
    return glob.has_magic(text)


def _expand(spec: Path) -> tuple[Path, list[Path]]:
    """(root, files) for one ``--recordings`` value: a file, a directory or a glob."""
    text = str(spec)
    if _has_magic(text):
        parts = Path(text).parts
        fixed: list[str] = []
        for part in parts:
            if _has_magic(part):
                break
            fixed.append(part)
        root = Path(*fixed) if fixed else Path(".")
        files = [Path(p) for p in glob.glob(text, recursive=True)]
        return root, [p for p in files if _is_recording(p)]
    if spec.is_dir():
        files = [p for p in spec.rglob("*") if _is_recording(p)]
        return spec, files
    return spec.parent, [spec]


def discover(specs: Sequence[Path], *, source: str = "--recordings") -> list[Recording]:
    """Find the recordings named by ``specs``, sorted, with POSIX ids relative to the root.

    The root is the single directory given (or a file's folder, or a glob's fixed prefix);
    with several specs it is their common folder. Zero recordings is a usage error. A
    directory named like a recording (``x.mf4``) that holds no recordings is kept as one:
    its replay errors with "is a directory" instead of it silently vanishing.
    """
    if not specs:
        raise UsageError(
            "no recordings given",
            hint="pass --recordings PATH (file, directory or glob) or set adsreplay_recordings",
        )
    roots: list[Path] = []
    found: dict[Path, None] = {}
    for spec in specs:
        if not _has_magic(str(spec)) and not spec.exists():
            raise UsageError(
                f"recordings path {str(spec)!r} (from {source}) does not exist",
                hint="check the path; relative paths in an ini file are relative to its folder",
            )
        root, files = _expand(spec)
        roots.append(root.resolve())
        for f in files:
            if f.is_dir() and _holds_recordings(f):
                continue  # a folder that happens to be named like a recording
            found[_absolute(f)] = None
    if not found:
        given = ", ".join(str(s) for s in specs)
        raise UsageError(
            f"no *.mf4 recordings found in {given} (from {source})",
            hint="point --recordings at a folder of .mf4 (or .mdf/.dat) files, or create "
            "some with 'adsreplay generate DIR'",
        )
    root = roots[0] if len(set(roots)) == 1 else Path(os.path.commonpath(roots))
    recs = [_load_or_flag(p, root) for p in found]
    recs.sort(key=lambda r: r.id)
    return recs


def _load_or_flag(path: Path, root: Path) -> Recording:
    """load_recording, but a broken sidecar only flags its own recording."""
    try:
        return load_recording(path, root)
    except SidecarError as exc:
        return Recording(
            path=path,
            id=recording_id(path, root),
            root=root,
            sidecar=sidecar_path(path),
            problem=str(exc),
        )


def _absolute(path: Path) -> Path:
    """``path`` with its folders resolved but not a symlink in its own name (so a linked
    recording keeps its name in the test id)."""
    return path.parent.resolve() / path.name


def _holds_recordings(folder: Path) -> bool:
    return any(_is_recording(p) and not p.is_dir() for p in folder.rglob("*"))


def recording_id(path: Path, root: Path) -> str:
    """POSIX path of ``path`` relative to ``root`` (the test id)."""
    try:
        return _absolute(path).relative_to(root.resolve()).as_posix()
    except ValueError:
        return _absolute(path).as_posix()


def sidecar_path(path: Path) -> Path:
    return path.with_suffix(".toml")


def load_recording(path: Path, root: Path | None = None) -> Recording:
    """A Recording with its sidecar parsed (when ``NAME.toml`` exists beside ``NAME.mf4``)."""
    path = Path(path)
    root = root if root is not None else path.parent
    rid = recording_id(path, root)
    side = sidecar_path(path)
    if not side.is_file():
        return Recording(path=path, id=rid, root=root)
    data = read_sidecar(side)
    tags = data.get("tags", [])
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise SidecarError(f"sidecar {side}: 'tags' must be a list of strings, got {tags!r}")
    scenario = data.get("scenario")
    if scenario is not None and not isinstance(scenario, str):
        raise SidecarError(f"sidecar {side}: 'scenario' must be a string, got {scenario!r}")
    nominal = data.get("nominal_speed")
    if nominal is not None and (isinstance(nominal, bool) or not isinstance(nominal, int | float)):
        raise SidecarError(f"sidecar {side}: 'nominal_speed' must be a number (km/h)")
    expect = parse_expect(data.get("expect", {}), side)
    return Recording(
        path=path,
        id=rid,
        root=root,
        sidecar=side,
        scenario=scenario,
        tags=tuple(tags),
        description=str(data.get("description", "")),
        nominal_speed=None if nominal is None else float(nominal),
        expect=expect,
        meta=data,
    )


def read_sidecar(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SidecarError(
            f"sidecar {path} is not valid TOML: {exc}",
            hint="fix the syntax at that line (TOML: key = value, strings in quotes)",
        ) from None
    except OSError as exc:
        raise SidecarError(f"sidecar {path} cannot be read: {exc}") from None


def _number(value: Any, what: str, side: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SidecarError(f"sidecar {side}: {what} must be a number, got {value!r}")
    return float(value)


def parse_expect(table: Any, side: Path) -> tuple[Bound, ...]:
    """Bounds of an ``[expect]`` table; unknown KPI names or malformed bounds raise."""
    if not isinstance(table, dict):
        raise SidecarError(f"sidecar {side}: [expect] must be a table")
    known = boundable_kpis()
    bounds: list[Bound] = []
    for name, spec in table.items():
        if name not in known:
            import difflib

            close = difflib.get_close_matches(name, known, n=3)
            raise SidecarError(
                f"sidecar {side}: [expect] bounds unknown KPI {name!r}",
                hint=(f"did you mean {', '.join(close)}? " if close else "")
                + f"known: {', '.join(known)}",
            )
        where = f"[expect] {name}"
        if isinstance(spec, bool):
            bounds.append(Bound(name, exact=spec))
        elif name in EVENT_EXPECTATIONS or name == "collision":
            raise SidecarError(f"sidecar {side}: {where} must be true or false, got {spec!r}")
        elif isinstance(spec, int | float):
            bounds.append(Bound(name, exact=float(spec)))
        elif isinstance(spec, list):
            if len(spec) != 2:
                raise SidecarError(f"sidecar {side}: {where} must be [min, max], got {spec!r}")
            lo, hi = (_number(v, where, side) for v in spec)
            if lo > hi:
                raise SidecarError(f"sidecar {side}: {where} has min {lo} > max {hi}")
            bounds.append(Bound(name, lo=lo, hi=hi))
        elif isinstance(spec, dict):
            extra = set(spec) - {"min", "max"}
            if extra or not spec:
                raise SidecarError(
                    f"sidecar {side}: {where} takes {{min = …}} and/or {{max = …}}, got {spec!r}"
                )
            lo_ = _number(spec["min"], where, side) if "min" in spec else None
            hi_ = _number(spec["max"], where, side) if "max" in spec else None
            if lo_ is not None and hi_ is not None and lo_ > hi_:
                raise SidecarError(f"sidecar {side}: {where} has min {lo_} > max {hi_}")
            bounds.append(Bound(name, lo=lo_, hi=hi_))
        else:
            raise SidecarError(
                f"sidecar {side}: {where} must be a bool, a number, [min, max] or "
                f"{{min = …, max = …}}, got {spec!r}"
            )
    return tuple(bounds)


def check_expectations(bounds: Iterable[Bound], kpis: Mapping[str, Any]) -> list[Violation]:
    """Every violated bound with its observed value (an empty list means all hold)."""
    out: list[Violation] = []
    for b in bounds:
        if b.name in EVENT_EXPECTATIONS:
            observed: Any = kpis.get(EVENT_EXPECTATIONS[b.name]) is not None
            if observed != b.exact:
                out.append(Violation(b, observed, None))
            continue
        value = kpis.get(b.name)
        if b.name in COUNT_KPIS and isinstance(value, list):
            value = len(value)
        if isinstance(b.exact, bool):
            if bool(value) != b.exact or value is None:
                out.append(Violation(b, value, None))
            continue
        if value is None or isinstance(value, bool):
            if b.exact is not None or b.lo is not None or b.hi is not None:
                out.append(Violation(b, value, None))
            continue
        v = float(value)
        if b.exact is not None:
            if not math.isclose(v, float(b.exact), rel_tol=1e-9, abs_tol=1e-9):
                out.append(Violation(b, value, v - float(b.exact)))
        elif b.lo is not None and not v >= b.lo:
            out.append(Violation(b, value, v - b.lo))
        elif b.hi is not None and not v <= b.hi:
            out.append(Violation(b, value, v - b.hi))
    return out

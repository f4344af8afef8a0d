"""One recording: its file, test id, sidecar data and header metadata (no I/O at import)."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_adsreplay.hashing import file_sha256 as file_sha256
from pytest_adsreplay.hashing import stream_sha256 as stream_sha256
from pytest_adsreplay.recordings.expectations import Bound

if TYPE_CHECKING:
    from pytest_adsreplay.storage import RemoteObject


def absolute_path(path: Path) -> Path:
    """``path`` with its folders resolved but not a symlink in its own name (so a linked
    recording keeps its name in the test id)."""
    return path.parent.resolve() / path.name


def recording_id(path: Path, root: Path) -> str:
    """POSIX path of ``path`` relative to ``root`` (the test id)."""
    try:
        return absolute_path(path).relative_to(root.resolve()).as_posix()
    except ValueError:
        return absolute_path(path).as_posix()


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
    #: Why the file itself is never opened (not a regular file, a symlink loop), or None.
    #: Such a recording is not replayed; its tests error with this text.
    rejected: str | None = None
    #: A recording in object storage: its URL, ETag and size as listed (``path`` is
    #: then only a label); workers read it through their download cache. None: a file.
    remote: RemoteObject | None = None

    def sha256(self) -> str:
        """Content hash of the recording file (streamed, never fully in memory)."""
        return file_sha256(self.path)

    @property
    def error(self) -> str | None:
        """Why this recording's tests error before any replay (rejected file or broken
        sidecar), or None."""
        return self.rejected or self.problem

    @cached_property
    def metadata(self) -> dict[str, Any]:
        """The file header's metadata: ``description`` (the header comment text) and its
        common properties, e.g. ``{"vehicle": "…", "driver": "…"}`` (nested ``<tree>``
        elements are dicts). Read lazily from the header only; ``{}`` for an unreadable
        or rejected file (its tests report why)."""
        if self.rejected:
            return {}
        from pytest_adsreplay.mdf import read_metadata

        if self.remote is not None:
            from pytest_adsreplay.errors import StorageError
            from pytest_adsreplay.storage import local_copy

            try:
                with local_copy(self.remote) as local:
                    return read_metadata(local)
            except StorageError:
                return {}
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

"""Recording discovery: which files a ``--recordings`` value names, sorted, with test ids.

No asammdf and no pytest here, and no recording file is opened: a file that is not a
regular file (a named pipe, a device, a symlink loop) is flagged, never read.
"""

from __future__ import annotations

import errno
import fnmatch
import glob
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pytest_adsreplay.errors import SidecarError, UsageError
from pytest_adsreplay.recordings.recording import (
    Recording,
    absolute_path,
    recording_id,
)
from pytest_adsreplay.recordings.remote import discover_remote
from pytest_adsreplay.recordings.sidecar import load_recording, sidecar_path
from pytest_adsreplay.storage import StoreSettings, as_url

#: MF4, and classic MDF 3/2 files (read through asammdf like MF4).
RECORDING_SUFFIXES = (".mf4", ".mdf", ".dat")
_NOT_REPLAYED = "it is not opened and not replayed"


def is_recording_name(path: Path) -> bool:
    """Whether ``path`` is named like a recording (``.mf4``, ``.mdf``, ``.dat``)."""
    return path.suffix.lower() in RECORDING_SUFFIXES


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _match_parts(parts: Sequence[str], pats: Sequence[str]) -> bool:
    """glob semantics for one relative path: ``**`` spans any number of folders, other
    segments are fnmatch patterns; names starting with a dot match only a pattern that
    starts with one. Dynamic programming: linear in len(parts) x len(pats)."""
    n, m = len(parts), len(pats)
    # ok[i][j]: parts[i:] matches pats[j:]
    ok = [[False] * (m + 1) for _ in range(n + 1)]
    ok[n][m] = True
    for j in range(m - 1, -1, -1):
        ok[n][j] = pats[j] == "**" and ok[n][j + 1]
    for i in range(n - 1, -1, -1):
        name = parts[i]
        for j in range(m - 1, -1, -1):
            pat = pats[j]
            if pat == "**":
                ok[i][j] = ok[i][j + 1] or (not _hidden(name) and ok[i + 1][j])
            elif _hidden(name) and not _hidden(pat):
                ok[i][j] = False
            else:
                ok[i][j] = fnmatch.fnmatchcase(name, pat) and ok[i + 1][j + 1]
    return ok[0][0]


def walk_once(
    root: Path, max_depth: int | None, *, hidden: bool = True
) -> Iterator[tuple[str, ...]]:
    """Relative parts of every file and folder under ``root``, following symlinked
    folders but entering each real folder once: a link back to ``.`` costs nothing
    instead of doubling the walk at every level. Folders reached without a symlink are
    entered first, so a recording keeps its real path when a link also leads to it;
    ``hidden=False`` does not enter folders whose name starts with a dot."""
    seen: set[tuple[int, int]] = set()
    plain: list[tuple[Path, tuple[str, ...]]] = [(root, ())]
    linked: list[tuple[Path, tuple[str, ...]]] = []
    while plain or linked:
        folder, rel = plain.pop() if plain else linked.pop()
        try:
            st = folder.stat()
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            parts = (*rel, entry.name)
            yield parts
            if max_depth is not None and len(parts) >= max_depth:
                continue
            if not hidden and entry.name.startswith("."):
                continue
            try:
                if entry.is_dir():
                    (linked if entry.is_symlink() else plain).append((Path(entry.path), parts))
            except OSError:
                continue


def glob_recordings(text: str) -> tuple[Path, list[Path]]:
    """(root, paths) of a glob: the root is its fixed prefix; ``**`` is recursive."""
    parts = Path(text).parts
    fixed: list[str] = []
    for part in parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    root = Path(*fixed) if fixed else Path(".")
    pats = list(parts[len(fixed) :])
    depth = None if "**" in pats else len(pats)
    found = [
        root.joinpath(*rel)
        for rel in walk_once(root, depth, hidden=any(p.startswith(".") for p in pats))
        if is_recording_name(Path(rel[-1])) and _match_parts(rel, pats)
    ]
    return root, found


def _expand(spec: Path) -> tuple[Path, list[Path]]:
    """(root, files) for one ``--recordings`` value: a file, a directory or a glob."""
    text = str(spec)
    if glob.has_magic(text):
        return glob_recordings(text)
    if spec.is_dir():
        return spec, [p for p in spec.rglob("*") if is_recording_name(p)]
    return spec.parent, [spec]


def rejection(path: Path) -> str | None:
    """Why ``path`` must not be opened as a recording, or None for a regular file (or a
    folder: its replay says "is a directory"). Only ``stat`` is used: opening a named
    pipe blocks until someone writes to it."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return (
                f"{path} is a symlink loop (the link leads back to itself); {_NOT_REPLAYED}"
                " -> point the link at the recording file, or remove it"
            )
        if exc.errno == errno.ENOENT and os.path.islink(path):
            return (
                f"{path} is a symlink to {os.readlink(path)}, which does not exist; "
                f"{_NOT_REPLAYED} -> restore the target or remove the link"
            )
        return f"{path} cannot be examined ({exc.strerror}); {_NOT_REPLAYED}"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    kind = (
        "a named pipe (FIFO)"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "not a regular file"
    )
    return (
        f"{path} is {kind}, not a regular file; {_NOT_REPLAYED}"
        " -> replace it with the recording file itself, or remove it from the recordings"
    )


def discover(
    specs: Sequence[Path | str],
    *,
    source: str = "--recordings",
    store: Any = None,
    id_root: Path | None = None,
) -> list[Recording]:
    """Find the recordings named by ``specs``, sorted, with POSIX ids relative to the root.

    The root is ``id_root`` when given (``adsreplay_recordings_root``: ids stay the same
    whatever part of the tree is selected; a local recording outside it is a usage error),
    else the single directory given (or a file's folder, or a glob's fixed prefix); with
    several specs it is their common folder. Zero recordings is a usage error. A
    directory named like a recording (``x.mf4``) that holds no recordings is kept as one:
    its replay errors with "is a directory" instead of it silently vanishing. A file that
    is not a regular file is kept but flagged (``Recording.rejected``): its tests error.
    """
    if not specs:
        raise UsageError(
            "no recordings given",
            hint="pass --recordings PATH (file, directory or glob) or set adsreplay_recordings",
        )
    roots: list[Path] = []
    found: dict[Path, None] = {}
    remote: dict[str, Recording] = {}
    for given in specs:
        url = as_url(str(given))
        if url is not None:  # s3://bucket/prefix/ or another fsspec URL
            remote.update((str(r.path), r) for r in _listed(url, store, source))
            continue
        spec = Path(given)
        if not glob.has_magic(str(spec)) and not spec.exists() and not spec.is_symlink():
            raise UsageError(
                f"recordings path {str(spec)!r} (from {source}) does not exist",
                hint="check the path; relative paths in an ini file are relative to its folder",
            )
        root, files = _expand(spec)
        roots.append(root.resolve())
        for f in files:
            if f.is_dir() and _holds_recordings(f):
                continue  # a folder that happens to be named like a recording
            found[absolute_path(f)] = None
    if not found and not remote:
        given = ", ".join(str(s) for s in specs)
        raise UsageError(
            f"no *.mf4 recordings found in {given} (from {source})",
            hint="point --recordings at a folder of .mf4 (or .mdf/.dat) files, or create "
            "some with 'adsreplay generate DIR'",
        )
    root = roots[0] if len(set(roots)) == 1 else Path(os.path.commonpath(roots or [Path(".")]))
    if id_root is not None:
        root = _inside(id_root.resolve(), found, source)
    recs = [_load_or_flag(p, root) for p in found] + list(remote.values())
    recs.sort(key=lambda r: r.id)
    return recs


def _inside(id_root: Path, found: dict[Path, None], source: str) -> Path:
    """``id_root`` when every found recording lies below it; else a usage error naming
    the first recording outside it and the root."""
    for path in found:
        try:
            path.relative_to(id_root)
        except ValueError:
            raise UsageError(
                f"recording {path} (from {source}) is outside adsreplay_recordings_root "
                f"{id_root}: recording ids are paths relative to that root",
                hint="point adsreplay_recordings_root at a folder that holds every recording "
                "(relative paths in an ini file are relative to its folder), or select "
                "recordings below it",
            ) from None
    return id_root


def _listed(url: str, store: Any, source: str) -> list[Recording]:
    """The recordings at an fsspec URL; a store that cannot be listed is a usage error."""
    from pytest_adsreplay.errors import StorageError

    try:
        return discover_remote(url, store or StoreSettings())
    except StorageError as exc:
        raise UsageError(
            f"cannot list the recordings: {exc.message} (from {source})", hint=exc.hint
        ) from None


def _load_or_flag(path: Path, root: Path) -> Recording:
    """load_recording, but a rejected file or a broken sidecar only flags its own
    recording (any failure while parsing the sidecar counts as broken)."""
    rid = recording_id(path, root)
    rejected = rejection(path)
    if rejected is not None:
        return Recording(path=path, id=rid, root=root, rejected=rejected)
    try:
        return load_recording(path, root)
    except SidecarError as exc:
        problem = str(exc)
    except Exception as exc:  # a sidecar must never end the session
        problem = f"sidecar {sidecar_path(path)} cannot be used ({type(exc).__name__}: {exc})"
    return Recording(path=path, id=rid, root=root, sidecar=sidecar_path(path), problem=problem)


def _holds_recordings(folder: Path) -> bool:
    return any(is_recording_name(p) and not p.is_dir() for p in folder.rglob("*"))


def _in_spec(path: Path, spec: Path) -> bool:
    """Whether the local recording ``path`` is one ``spec`` (a file, folder or glob) names."""
    text = str(spec)
    if glob.has_magic(text):
        parts = spec.parts
        fixed = list(parts[: next(i for i, p in enumerate(parts) if glob.has_magic(p))])
        prefix = Path(*fixed).resolve() if fixed else Path(".").resolve()
        try:
            rel = path.relative_to(prefix).parts
        except ValueError:
            return False
        return _match_parts(rel, parts[len(fixed) :])
    target = absolute_path(spec)
    return path == target or target in path.parents


def outside_selection(
    rid: str, specs: Sequence[Path | str], root: Path, id_root: Path | None
) -> bool:
    """Whether the recording id ``rid`` (a baseline key's recording that this run did not
    find) names a recording outside this selection, rather than one that is gone.

    With ``id_root``: outside when ``id_root/rid`` is not named by any local spec, or
    exists but was not selected. Without it (ids relative to ``root``, the selection's
    folder): outside when a file ``rid`` exists below ``root`` or any folder above it,
    i.e. the id was made from a wider or different ``--recordings`` folder. Recordings
    in object storage are never called outside (their ids are their URL's path)."""
    local = [Path(s) for s in specs if as_url(str(s)) is None]
    if not local:
        return False
    if id_root is not None:
        path = absolute_path(id_root.resolve() / rid)
        return path.exists() or not any(_in_spec(path, s) for s in local)
    base = root.resolve()
    return any((folder / rid).is_file() for folder in (base, *base.parents))

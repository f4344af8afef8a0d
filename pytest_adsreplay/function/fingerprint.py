"""Which build of the function under test a process would run: its fingerprint.

- A Python spec ``pkg.mod:Attr``: sha256 over the sources of the top-level package that
  defines it (every ``.py`` and extension module under it, by relative path), or of the
  module file when it is not in a package, plus the installed versions of the
  distributions that package comes from. A function bundled with the plugin (the
  reference) counts the plugin's ``function`` subpackage and its own module.
- A file spec (``*.fmu``, ``*.so``, ``*.dylib``, ``*.dll``): the file's sha256 plus the
  binding file's contents.

Nothing is imported to compute it (``importlib.util.find_spec`` of the top-level name
only), so a session, a worker and the results database can all ask. The session puts
its fingerprint into every aeb job; a worker compares it with its own before it runs
the function (``queue.stages``), so a worker with other code never produces a result.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_adsreplay.hashing import memo_sha256

FILE_SUFFIXES = (".fmu", ".so", ".dylib", ".dll")
#: Files of a package that are code: sources and extension modules.
CODE_SUFFIXES = (".py", ".so", ".pyd", ".dylib")
PLUGIN = "pytest_adsreplay"
MAX_FILES = 20000  # a package this large is hashed by its first MAX_FILES code files


@dataclass(frozen=True)
class Build:
    """A fingerprint (``digest``, sha256 hex) and what it was computed from (``source``)."""

    digest: str
    source: str
    found: bool = True  # False: the function is not here (its digest says only that)

    @property
    def short(self) -> str:
        return self.digest[:12]

    def describe(self) -> str:
        return f"{self.source}, fingerprint {self.short}"


def is_file_spec(spec: str) -> bool:
    return spec.lower().endswith(FILE_SUFFIXES)


def of_function(spec: str, binding: Mapping[str, Any] | str | None = None) -> Build:
    """The fingerprint of what this process would run for ``spec`` (never raises: a
    function that cannot be found here gets a fingerprint saying so)."""
    if is_file_spec(spec):
        return _of_file(spec, binding)
    return _of_python(spec.partition(":")[0])


def digest_of(spec: str | None, binding: Mapping[str, Any] | str | None = None) -> str | None:
    """The fingerprint's digest for ``spec`` (None without a function): what the run row
    stores, equal to what the session's jobs carry for the same spec and binding."""
    build = of_function(spec, binding) if spec else None
    return build.digest if build is not None and build.found else None


def _of_file(spec: str, binding: Mapping[str, Any] | str | None) -> Build:
    path = Path(spec).resolve()
    h = hashlib.sha256(b"adsreplay-function-file\0")
    found = True
    try:
        h.update(memo_sha256(path).encode())
        where = f"{path.name} at {path.parent}"
    except OSError as exc:
        h.update(f"missing:{spec}".encode())
        where = f"{spec} (not readable here: {exc.strerror or exc})"
        found = False
    if binding is not None:
        text = binding if isinstance(binding, str) else json.dumps(binding, sort_keys=True)
        h.update(b"\0binding\0" + text.encode())
        where += " with its binding"
    return Build(h.hexdigest(), where, found)


def _of_python(module: str) -> Build:
    h = hashlib.sha256(b"adsreplay-function-python\0")
    root, top = _code_root(module)
    if root is None:
        h.update(f"missing:{module}".encode())
        return Build(h.hexdigest(), f"module {module} (not importable here)", found=False)
    files = _bundled(module, root) if top == PLUGIN else list(_code_files(root))
    count = 0
    for rel, path in files:
        try:
            digest = memo_sha256(path)
        except OSError:
            digest = "unreadable"
        h.update(f"{rel}\0{digest}\n".encode())
        count += 1
    versions = _distribution_versions(top)
    for name, version in versions:
        h.update(f"dist\0{name}\0{version}\n".encode())
    kind = "package" if root.is_dir() else "module"
    dists = ", ".join(f"{n} {v}" for n, v in versions) or "no installed distribution"
    return Build(h.hexdigest(), f"{kind} {top} at {root} ({count} files; {dists})")


def _bundled(module: str, root: Path) -> list[tuple[str, str]]:
    """A function bundled with the plugin (the reference): the ``function`` subpackage
    and the spec's own module, not the whole plugin (its other modules are the test
    harness, whose version counts through the distribution)."""
    files = [(f"function/{rel}", p) for rel, p in _code_files(root / "function")]
    own = module.removeprefix(PLUGIN + ".").replace(".", "/")
    for rel in (f"{own}.py", f"{own}/__init__.py"):
        if not rel.startswith("function/") and (root / rel).is_file():
            files.append((rel, str(root / rel)))
    return sorted(files)


def _code_root(module: str) -> tuple[Path | None, str]:
    """(the folder of the top-level package defining ``module``, or its file; its dotted
    name). Namespace packages are descended until a regular package or module."""
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError, AttributeError):
            return None, name
        if spec is None:
            return None, name
        if spec.origin not in (None, "namespace") and spec.has_location:
            origin = Path(spec.origin)
            if spec.submodule_search_locations is not None:  # a regular package
                return origin.parent, name
            return origin, name
    return None, module


def _code_files(root: Path) -> Iterator[tuple[str, str]]:
    """(relative POSIX path, path) of the code files under ``root`` (or ``root`` itself),
    sorted; caches and hidden folders skipped. Plain strings: this runs on every job."""
    if not root.is_dir():
        yield root.name, str(root)
        return
    top = str(root)
    cut = len(top) + 1
    found: list[tuple[str, str]] = []
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for f in files:
            if f.endswith(CODE_SUFFIXES):
                path = os.path.join(folder, f)
                found.append((path[cut:].replace(os.sep, "/"), path))
        if len(found) > MAX_FILES:
            break
    yield from sorted(found)[:MAX_FILES]


@functools.cache
def _packages_distributions() -> Mapping[str, list[str]]:
    from importlib.metadata import packages_distributions

    return packages_distributions()


@functools.lru_cache(maxsize=64)
def _distribution_versions(top: str) -> list[tuple[str, str]]:
    """(name, version) of the installed distributions that provide package ``top``
    (looked up once per process: an upgrade also changes the package's files)."""
    from importlib.metadata import PackageNotFoundError, distribution

    base = top.partition(".")[0]

    def versions(names: list[str]) -> list[tuple[str, str]]:
        found: dict[str, str] = {}
        for name in names:
            try:
                dist = distribution(name)
            except PackageNotFoundError:
                continue
            found[str(dist.metadata["Name"])] = str(dist.version)
        return sorted(found.items())

    # a distribution named like its package is found directly; the map of every installed
    # distribution (about 0.3 s to build) only for packages named otherwise. An editable
    # install maps no top-level name: then the package's own name is tried too.
    direct = versions([base])
    if direct:
        return direct
    return versions(_packages_distributions().get(base) or [base])


def git_dirty(path: str | Path) -> bool | None:
    """Whether the git working tree at ``path`` has uncommitted changes to tracked files
    (untracked files do not count); None outside git or without git."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return bool(out.stdout.strip())


class BuildTracker:
    """The build of each function spec this process last ran, to notice a change.

    A long-lived worker keeps the function loaded (in its host) across sessions; when
    the files on disk change to what the next session runs, the loaded copy is stale.
    :meth:`changed` says so once per change, so the caller restarts what holds it.
    """

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def changed(self, spec: str, build: Build) -> bool:
        before = self._seen.get(spec)
        self._seen[spec] = build.digest
        return before is not None and before != build.digest

    def note(self, spec: str, build: Build) -> None:
        self._seen.setdefault(spec, build.digest)


TRACKER = BuildTracker()

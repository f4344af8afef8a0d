"""Python functions under test: resolving ``module:attr``, building the object, and the
:class:`PythonAdapter` that steps it (the loop itself is in :mod:`.stepping`)."""

from __future__ import annotations

import importlib
import inspect
import math
import os
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pytest_adsreplay.errors import FunctionLoadError
from pytest_adsreplay.function.protocol import OUTPUTS, FunctionInfo, FunctionOptions, Port
from pytest_adsreplay.function.stepping import run_function

__all__ = [
    "OUTPUTS",
    "AebFunction",
    "FunctionSpec",
    "PythonAdapter",
    "declared_cycle_time",
    "describe",
    "load_function",
    "open_adapter",
    "resolve",
    "run_function",
]


class AebFunction(Protocol):
    """What the function under test provides (``reset`` and ``cycle_time`` are optional)."""

    def step(self, frame: Mapping[str, float]) -> Mapping[str, float]: ...


FunctionSpec = str | Callable[..., Any]


def describe(spec: FunctionSpec) -> str:
    """``module:attr`` text for a spec (string or the class/factory itself)."""
    if isinstance(spec, str):
        return spec
    return f"{getattr(spec, '__module__', '?')}:{getattr(spec, '__qualname__', repr(spec))}"


def resolve(spec: FunctionSpec) -> Callable[..., Any]:
    """Import ``module:attr`` (or pass a class/factory through) without instantiating it."""
    if not isinstance(spec, str):
        if not callable(spec):
            raise FunctionLoadError(
                f"function under test {spec!r} is neither 'module:attr' nor a class/factory"
            )
        return spec
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise FunctionLoadError(
            f"function under test {spec!r} is not of the form 'module:attr'",
            hint="e.g. --aeb-function=pytest_adsreplay.reference:TtcAeb",
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise FunctionLoadError(
            f"cannot import module {module_name!r} of function under test {spec!r}: {exc}",
            hint=import_hint(module_name),
        ) from exc
    except Exception as exc:
        tb = "".join(traceback.format_exception(exc))
        raise FunctionLoadError(
            f"importing module {module_name!r} of function under test {spec!r} raised "
            f"{type(exc).__name__}: {exc}\n{tb}"
        ) from exc
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            names = ", ".join(n for n in dir(module) if not n.startswith("_"))
            raise FunctionLoadError(
                f"module {module_name!r} has no attribute {attr!r} (function under test {spec!r})",
                hint=f"public names there: {names}",
            ) from None
    if not callable(target):
        raise FunctionLoadError(
            f"{spec!r} is a {type(target).__name__}, not a class or zero-argument factory"
        )
    factory: Callable[..., Any] = target
    return factory


def load_function(spec: FunctionSpec, params: Mapping[str, Any] | None = None) -> AebFunction:
    """Build the function under test: resolve ``spec`` and call it with ``params``."""
    factory = resolve(spec)
    params = dict(params or {})
    try:
        obj = factory(**params)
    except TypeError as exc:
        try:
            sig = f"{factory.__name__}{inspect.signature(factory)}"
        except (TypeError, ValueError):
            sig = describe(spec)
        raise FunctionLoadError(
            f"cannot build function under test {describe(spec)} with params {params}: {exc}",
            hint=f"its signature is {sig}; check adsreplay_function_params / the marker",
        ) from exc
    except Exception as exc:
        tb = "".join(traceback.format_exception(exc))
        raise FunctionLoadError(
            f"building function under test {describe(spec)} raised {type(exc).__name__}: {exc}\n"
            f"{tb}"
        ) from exc
    if not callable(getattr(obj, "step", None)):
        raise FunctionLoadError(
            f"{describe(spec)} returned a {type(obj).__name__} without a step(frame) method",
            hint="the object must have step(frame) -> {'fcw': 0/1, 'aeb_decel': m/s²}",
        )
    built: AebFunction = obj
    return built


def import_hint(module_name: str, cwd: Path | None = None) -> str:
    """What to add so that ``module_name`` imports: the ini line or PYTHONPATH entry for
    the folder that holds it when it is found below ``cwd``, else the general advice."""
    cwd = cwd or Path.cwd()
    top = module_name.split(".")[0]
    folder = _module_folder(top, cwd)
    if folder is not None:
        rel = os.path.relpath(folder, cwd)
        where = "." if rel == "." else rel.replace(os.sep, "/")
        return (
            f"{top!r} is in {folder}, which is not on sys.path: add `pythonpath = {where}` "
            "to the [pytest] section of pytest.ini (or [tool.pytest.ini_options] in "
            f"pyproject.toml; the path is relative to that file), or run with "
            f"PYTHONPATH={where}"
        )
    return (
        f"install the package that provides {top!r} (pip install -e .), or add the folder "
        "that holds it to the ini file as `pythonpath = <folder>` (relative to the ini "
        "file) or to PYTHONPATH; pytest does not import from the rootdir by itself"
    )


def _module_folder(top: str, cwd: Path) -> Path | None:
    """The folder under ``cwd`` (itself, or one or two levels down) holding ``top``."""
    candidates = [cwd]
    try:
        children = sorted(p for p in cwd.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        children = []
    candidates += children
    for child in children:
        if child.name in ("src", "lib", "python"):
            candidates += sorted(p for p in child.iterdir() if p.is_dir())
    for folder in candidates:
        if (folder / f"{top}.py").is_file() or (folder / top / "__init__.py").is_file():
            return folder
    return None


def declared_cycle_time(fn: Any) -> float | None:
    """The function's own ``cycle_time`` in seconds, validated, or None."""
    value = getattr(fn, "cycle_time", None)
    if value is None:
        return None
    try:
        ct = float(value)
    except (TypeError, ValueError):
        raise FunctionLoadError(f"function's cycle_time {value!r} is not a number") from None
    if not math.isfinite(ct) or ct <= 0:
        raise FunctionLoadError(f"function's cycle_time {value!r} must be a positive number")
    return ct


class PythonAdapter:
    """A Python ``step(frame)`` object behind the :class:`FunctionAdapter` protocol.

    ``progress`` may be set to a one-element float64 buffer (see :mod:`.stepping`); the
    supervised host does, so that it can tell where a process that died had got to.
    """

    kind = "python"

    def __init__(self, spec: FunctionSpec, params: Mapping[str, Any] | None = None):
        self.spec = describe(spec)
        self.params = dict(params or {})
        self.fn = load_function(spec, self.params)
        self._cycle_time = declared_cycle_time(self.fn)
        self.progress: Any = None

    @property
    def cycle_time(self) -> float | None:
        return self._cycle_time

    def info(self) -> FunctionInfo:
        return FunctionInfo(
            spec=self.spec,
            kind=self.kind,
            outputs=tuple(Port(name, binds_to=name) for name in OUTPUTS),
            parameters=tuple(Port(name, start=_number(v)) for name, v in self.params.items()),
            cycle_time=self._cycle_time,
            notes=("step(frame) reads any canonical signal by name from the frame",),
        )

    def run(
        self,
        t: np.ndarray,
        signals: Mapping[str, np.ndarray],
        *,
        inputs: tuple[str, ...] = (),
        recording: str | None = None,
    ) -> dict[str, np.ndarray]:
        return run_function(
            self.fn, t, signals, inputs=inputs, recording=recording, progress=self.progress
        )

    def close(self) -> None:
        close = getattr(self.fn, "close", None)
        if callable(close):
            close()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def open_adapter(
    spec: FunctionSpec, params: Mapping[str, Any], options: FunctionOptions
) -> PythonAdapter:
    """The :data:`~.protocol.AdapterFactory` of Python functions (``options`` unused:
    a Python function reads its inputs from the frame by their canonical names)."""
    return PythonAdapter(spec, params)

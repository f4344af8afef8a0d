"""Loading the function under test (``module:attr``) and stepping it over a recording."""

from __future__ import annotations

import importlib
import inspect
import math
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import numpy as np

from .errors import FunctionError, FunctionLoadError

OUTPUTS: tuple[str, ...] = ("fcw", "aeb_decel")


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
            hint="install the package that provides it, or put its folder on PYTHONPATH "
            "(pytest's rootdir/conftest folders are importable too)",
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
    return target


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
    return obj


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


class Frame(Mapping[str, float]):
    """Read-only view of one cycle: ``t`` and every canonical signal as a float.

    One Frame is reused for the whole recording (only the cycle index moves), so a
    function that wants to keep a frame must copy it: ``dict(frame)``.
    """

    __slots__ = ("_cols", "_i", "_keys")

    def __init__(self, columns: dict[str, list[float]]):
        self._cols = columns
        self._keys = tuple(columns)
        self._i = 0

    def __getitem__(self, key: str) -> float:
        return self._cols[key][self._i]

    def get(self, key: str, default: Any = None) -> Any:
        col = self._cols.get(key)
        return default if col is None else col[self._i]

    def __contains__(self, key: object) -> bool:
        return key in self._cols

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"Frame({dict(self)!r})"


def _user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` without this module's own frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool | int | float | np.integer | np.floating):
        return float(value)
    return None


def run_function(
    fn: AebFunction,
    t: np.ndarray,
    signals: Mapping[str, np.ndarray],
    *,
    inputs: tuple[str, ...] = (),
    recording: str | None = None,
) -> dict[str, np.ndarray]:
    """Call ``fn.step`` once per cycle in time order; return its outputs as arrays on ``t``.

    ``inputs`` lists the canonical signal names every frame carries (NaN where absent).
    ``aeb_decel`` is required and must be a finite number ≥ 0; ``fcw`` defaults to 0;
    extra numeric keys are kept as additional output arrays.
    """
    n = len(t)
    columns: dict[str, list[float]] = {"t": np.asarray(t, dtype=np.float64).tolist()}
    nan_col = [math.nan] * n
    for name in inputs:
        columns[name] = nan_col
    for name, arr in signals.items():
        columns[name] = np.asarray(arr, dtype=np.float64).tolist()
    frame = Frame(columns)
    times = columns["t"]

    reset = getattr(fn, "reset", None)
    if callable(reset):
        try:
            reset()
        except Exception as exc:
            raise FunctionError(
                f"the function's reset() raised {type(exc).__name__}: {exc}",
                t=None,
                traceback=_user_traceback(exc),
                recording=recording,
                hint="fix reset(); it is called once before each recording",
            ) from None

    out: dict[str, list[float]] = {"fcw": [0.0] * n, "aeb_decel": [0.0] * n}
    step = fn.step
    extras: set[str] = set()
    for i in range(n):
        frame._i = i
        try:
            result = step(frame)
        except Exception as exc:
            raise FunctionError(
                f"the function under test raised {type(exc).__name__}: {exc} "
                f"at t = {times[i]:.3f} s (cycle {i})",
                t=times[i],
                traceback=_user_traceback(exc),
                recording=recording,
                hint="reproduce with pytest_adsreplay.replay_file(path, function) "
                "and a breakpoint at that t",
            ) from None
        _collect(result, i, times[i], out, extras, n, recording)
    return {name: np.asarray(col, dtype=np.float64) for name, col in out.items()}


def _collect(
    result: Any,
    i: int,
    t: float,
    out: dict[str, list[float]],
    extras: set[str],
    n: int,
    recording: str | None,
) -> None:
    """Store one step's outputs, rejecting a missing or non-numeric ``aeb_decel``."""
    where = f"at t = {t:.3f} s (cycle {i})"
    if not isinstance(result, Mapping):
        raise FunctionError(
            f"step() returned {type(result).__name__} {result!r:.80} {where}; expected a mapping "
            "with 'aeb_decel' (m/s²) and 'fcw' (0/1)",
            t=t,
            recording=recording,
        )
    if "aeb_decel" not in result:
        raise FunctionError(
            f"step() returned no 'aeb_decel' {where} (keys: {sorted(map(str, result))})",
            t=t,
            recording=recording,
            hint="return the requested deceleration magnitude in m/s², 0 for no request",
        )
    for key, raw in result.items():
        value = _as_float(raw)
        if key == "aeb_decel":
            if value is None or not math.isfinite(value) or value < 0:
                raise FunctionError(
                    f"step() returned aeb_decel = {raw!r} {where}; expected a finite number "
                    "≥ 0 (m/s², magnitude)",
                    t=t,
                    recording=recording,
                )
        elif key == "fcw":
            if value is None or value not in (0.0, 1.0):
                raise FunctionError(
                    f"step() returned fcw = {raw!r} {where}; expected 0 or 1",
                    t=t,
                    recording=recording,
                )
        elif value is None:
            raise FunctionError(
                f"step() returned a non-numeric extra output {key!r} = {raw!r:.80} {where}",
                t=t,
                recording=recording,
                hint="extra outputs are stored as signals and must be numbers",
            )
        col = out.get(key)
        if col is None:
            col = out[key] = [math.nan] * n
            extras.add(key)
        col[i] = value

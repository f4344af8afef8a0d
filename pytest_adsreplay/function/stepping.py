"""Stepping a Python function under test over a whole recording, cycle by cycle.

The inner loop of every replay: :func:`run_function` calls ``step(frame)`` once per cycle
in time order and returns the outputs as arrays. A supervised host passes ``progress``
(a one-element float64 buffer it can read after the process died) and the loop writes
the time of each cycle into it before stepping that cycle.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Mapping
from operator import itemgetter
from types import MappingProxyType
from typing import Any

import numpy as np

from pytest_adsreplay.errors import FunctionError


def _user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` without this module's own frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename in (__file__, _GENERATED):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _as_float(value: Any) -> float | None:
    """A number as float (bool, int, float, numpy scalars and 0-d arrays), else None."""
    if isinstance(value, bool | int | float | np.integer | np.floating | np.bool_):
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "biuf":
        return float(value)
    return None


def run_function(
    fn: Any,
    t: np.ndarray,
    signals: Mapping[str, np.ndarray],
    *,
    inputs: tuple[str, ...] = (),
    recording: str | None = None,
    progress: Any = None,
) -> dict[str, np.ndarray]:
    """Call ``fn.step`` once per cycle in time order; return its outputs as arrays on ``t``.

    Each frame is a fresh read-only mapping of ``t`` and the signals at that cycle (so a
    function may keep it); ``inputs`` lists the canonical signal names every frame carries
    (NaN where absent). ``aeb_decel`` is required and must be a finite number ≥ 0; ``fcw`` defaults
    to 0; extra numeric keys are kept as additional output arrays.

    The recording is stepped in chunks of :data:`CHUNK` cycles: each chunk's signals
    become Python floats just before they are needed and its outputs become arrays
    right after, so the float objects of one chunk reuse the memory of the last
    (converting whole recordings made the allocator map and unmap about 3 000 fresh
    pages per recording, some 15 % of the loop's time). Within a chunk the loop only
    calls ``step`` and appends each result's values to one flat list (no container
    survives a cycle, so the garbage collector has nothing to scan) while the results
    are dicts with the first result's keys; they are checked column-wise per chunk, and
    any irregularity is reported by the cycle-by-cycle check (:func:`_collect`) exactly
    as if it had run all along.

    ``progress``, when given, is a writable one-element float64 buffer (a memoryview of
    format ``d``): the time of each cycle is written into it just before that cycle is
    stepped, so a supervisor can tell where a process that died had got to.
    """
    t, arrays = _arrays(t, signals, inputs)
    _reset(fn, recording)
    return _Stepper(fn.step, t, arrays, recording, progress).run()


def _arrays(
    t: np.ndarray, signals: Mapping[str, np.ndarray], inputs: tuple[str, ...]
) -> tuple[np.ndarray, dict[str, Any]]:
    """``t`` as float64 and the frame's columns: ``t`` first, then ``inputs`` (None:
    NaN throughout), ``objects`` (the object list's frames, when the signals carry its
    columns ``obj_dx[0]`` …) and the signals."""
    from pytest_adsreplay.signals.objects import split_objects

    t = np.asarray(t, dtype=np.float64).reshape(-1)
    n = len(t)
    arrays: dict[str, Any] = {"t": t}
    for name in inputs:
        arrays[name] = None  # NaN throughout
    signals, objects = split_objects(signals)
    if objects is not None:
        arrays["objects"] = objects  # objects[a:b].tolist(): one view per field and cycle
    for name, arr in signals.items():
        values = np.asarray(arr, dtype=np.float64)
        if values.shape != (n,):
            raise ValueError(f"signal {name!r} has shape {values.shape}; t has {n} samples")
        arrays[name] = values
    return t, arrays


def _reset(fn: Any, recording: str | None) -> None:
    """Call the function's optional ``reset()``."""
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


class _Stepper:
    """One recording's stepping: the fast loop per chunk while results are regular,
    then the cycle-by-cycle check (see :func:`run_function`)."""

    def __init__(
        self,
        step: Callable[[Any], Any],
        t: np.ndarray,
        arrays: dict[str, Any],
        recording: str | None,
        progress: Any,
    ):
        self.step = step
        self.t = t
        self.n = len(t)
        self.arrays = arrays
        self.recording = recording
        self.make_frame, self.fast_loop = _frame_builder(tuple(arrays), progress)
        self.mark: Any = progress if progress is not None else [math.nan]
        self.nan_chunk = [math.nan] * min(self.n, CHUNK)
        self.names: tuple[str, ...] = ()  # the keys of the first result
        self.get: Callable[[Any], tuple[Any, ...]] = _getter(("aeb_decel",))
        self.tables: list[np.ndarray] = []  # the checked outputs of each chunk so far
        self.slow: _Outputs | None = None  # once set, every later cycle is checked one by one

    def chunk(self, a: int) -> Any:
        """The cycles ``a`` … ``a + CHUNK - 1`` as tuples of floats."""
        m = min(CHUNK, self.n - a)
        nan = self.nan_chunk
        return zip(
            *[nan[:m] if v is None else v[a : a + m].tolist() for v in self.arrays.values()],
            strict=True,
        )

    def run(self) -> dict[str, np.ndarray]:
        for a in range(0, self.n, CHUNK):
            cycles = self.chunk(a)  # shared: the slow loop goes on where the fast one stopped
            at: int | None = a if self.slow is not None else self._fast(a, cycles)
            if at is not None:
                self._slow(cycles, at)
        if self.slow is not None:
            return self.slow.arrays()
        return _columns(self.tables, self.names, self.n)

    def _fast(self, a: int, cycles: Any) -> int | None:
        """Step the chunk from cycle ``a`` in the fast loop; None when it is done, else
        the cycle where the cycle-by-cycle loop goes on (``self.slow`` is then set)."""
        rows: list[Any] = []  # the values of each result in ``names`` order
        irregular: Any = _DONE
        t, names = self.t, self.names
        try:
            if not names:
                self.mark[0] = float(t[a])
                result = self.step(self.make_frame(*next(cycles)))
                if _regular(result):
                    names = self.names = tuple(result)
                    self.get = _getter(names)
                    rows.extend(self.get(result))
                else:
                    irregular = result
            if irregular is _DONE:
                irregular = self.fast_loop(self.step, cycles, self.get, len(names), rows)
        except Exception as exc:
            i = a + (len(rows) // len(names) if names else 0)
            # an earlier bad result wins
            _Outputs.seeded(self.tables, names, self.n, self.recording).replay(rows, names, t, a)
            raise _raised(exc, i, float(t[i]), self.recording) from None
        if irregular is _DONE:
            table = _table(rows, names)
            if table is not None:
                self.tables.append(table)
                return None
        # a result the fast path does not take: check what it kept, then go on cycle by cycle
        slow = self.slow = _Outputs.seeded(self.tables, names, self.n, self.recording)
        slow.replay(rows, names, t, a)
        if irregular is _DONE:
            return None
        at = a + (len(rows) // len(names) if names else 0)
        slow.collect(irregular, at, float(t[at]))
        return at + 1

    def _slow(self, cycles: Any, at: int) -> None:
        """Step the rest of the chunk from cycle ``at``, checking each result."""
        step, make_frame, mark, t = self.step, self.make_frame, self.mark, self.t
        slow = self.slow
        assert slow is not None
        for i, values in enumerate(cycles, start=at):
            try:
                mark[0] = values[0]
                result = step(make_frame(*values))
            except Exception as exc:
                raise _raised(exc, i, float(t[i]), self.recording) from None
            slow.collect(result, i, float(t[i]))


#: Cycles per chunk: 4096 cycles of 8 signals are about 0.8 MB of float objects.
CHUNK = 4096

#: The file name of the generated frame builder and fast loop (kept out of tracebacks).
_GENERATED = "<pytest_adsreplay fast loop>"

#: Returned by the fast loop when every cycle ran.
_DONE: Any = object()

#: The fast loop (see :func:`_frame_builder`): step the remaining ``cycles`` while each
#: result is a dict with the first result's ``width`` keys, appending its values to
#: ``rows``; return the first result that is not (the caller checks it), or ``_DONE``.
#: The cycle index is ``len(rows) // width``. ``FRAME`` stands for the frame expression.
_FAST_LOOP = """
def fast_loop(step, cycles, get, width, rows):
    extend = rows.extend
    for VALUES in cycles:
        MARK
        result = step(FRAME)
        if type(result) is dict and len(result) == width:
            try:
                extend(get(result))
                continue
            except KeyError:
                pass
        return result
    return _DONE
"""


def _raised(exc: Exception, i: int, t: float, recording: str | None) -> FunctionError:
    """The FunctionError for an exception that ``step`` raised at cycle ``i``."""
    return FunctionError(
        f"the function under test raised {type(exc).__name__}: {exc} at t = {t:.3f} s (cycle {i})",
        t=t,
        traceback=_user_traceback(exc),
        recording=recording,
        hint="reproduce with pytest_adsreplay.replay_file(path, function) "
        "and a breakpoint at that t",
    )


def _frame_builder(
    keys: tuple[str, ...], progress: Any = None
) -> tuple[Callable[..., Mapping[str, float]], Any]:
    """``(make_frame, fast_loop)`` for frames with ``keys``: a function of one value per
    key that returns the read-only frame, and the innermost loop of every
    replay (``_FAST_LOOP``) with that frame built inline.

    Generated like a dataclass ``__init__``: a dict display is about twice as fast as
    ``dict(zip(keys, values))``, and building it inline saves a call per cycle (about
    7 % of a loop over the reference function). The dict is wrapped in a
    ``MappingProxyType``: the function cannot write to it, and since each cycle gets its
    own, it may keep one.
    """
    namespace: dict[str, Any] = {"_proxy": MappingProxyType, "_DONE": _DONE, "_mark": progress}
    if keys and all(type(k) is str for k in keys):
        args = ", ".join(f"_{i}" for i in range(len(keys)))
        items = ", ".join(f"{k!r}: _{i}" for i, k in enumerate(keys))
        frame = f"_proxy({{{items}}})"
        code = f"def make_frame({args}):\n    return {frame}\n"
        loop = _FAST_LOOP.replace("VALUES", args + ",").replace("FRAME", frame)
        mark = "_mark[0] = _0"
    else:
        namespace["_keys"] = keys
        code = "def make_frame(*values):\n    return _proxy(dict(zip(_keys, values, strict=True)))"
        code += "\n"
        loop = _FAST_LOOP.replace("VALUES", "values").replace("FRAME", "make_frame(*values)")
        mark = "_mark[0] = values[0]"
    # the first key is always ``t``: the cycle time goes to the progress buffer
    code += loop.replace("MARK", mark if progress is not None and keys else "pass")
    exec(compile(code, _GENERATED, "exec"), namespace)
    return namespace["make_frame"], namespace["fast_loop"]


def _regular(result: Any) -> bool:
    return type(result) is dict and "aeb_decel" in result and all(type(k) is str for k in result)


def _getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    if len(names) == 1:
        (only,) = names
        return lambda result: (result[only],)
    return itemgetter(*names)


def _table(rows: list[Any], names: tuple[str, ...]) -> np.ndarray | None:
    """One chunk's outputs from the fast loop as a (cycles, names) float64 table, or None
    when any value needs the cycle-by-cycle check (not a number, a bad ``aeb_decel`` or
    ``fcw``).

    One conversion of the flat list: numpy makes it numeric only when every value is a
    number :func:`_as_float` accepts (bool, int, float, numpy scalars, 0-d arrays).
    """
    if not names:
        return None
    try:
        flat = np.array(rows)
    except (ValueError, TypeError, OverflowError):
        return None
    if flat.ndim != 1 or flat.dtype.kind not in "biuf" or flat.size % len(names):
        return None
    table = flat.astype(np.float64, copy=False).reshape(-1, len(names))
    for j, name in enumerate(names):
        col = table[:, j]
        if name == "aeb_decel" and not (np.isfinite(col) & (col >= 0)).all():
            return None
        if name == "fcw" and not ((col == 0.0) | (col == 1.0)).all():
            return None
    return table


def _columns(tables: list[np.ndarray], names: tuple[str, ...], n: int) -> dict[str, np.ndarray]:
    """The checked tables of every chunk as one array per output."""
    out: dict[str, np.ndarray] = {"fcw": np.zeros(n), "aeb_decel": np.zeros(n)}
    if names:
        table = np.concatenate(tables) if len(tables) > 1 else tables[0]
        for j, name in enumerate(names):
            out[name] = np.ascontiguousarray(table[:, j])
    return out


class _Outputs:
    """Outputs collected cycle by cycle, each result checked by :func:`_collect`."""

    def __init__(self, n: int, recording: str | None):
        self.n = n
        self.recording = recording
        self.out: dict[str, list[float]] = {"fcw": [0.0] * n, "aeb_decel": [0.0] * n}
        self.extras: set[str] = set()

    @classmethod
    def seeded(
        cls, tables: list[np.ndarray], names: tuple[str, ...], n: int, recording: str | None
    ) -> _Outputs:
        """Outputs holding the checked ``tables`` of the chunks before this one."""
        outputs = cls(n, recording)
        done = sum(len(tb) for tb in tables)
        if done:
            table = np.concatenate(tables)
            for j, name in enumerate(names):
                col = outputs.out.get(name)
                if col is None:
                    col = outputs.out[name] = [math.nan] * n
                    outputs.extras.add(name)
                col[:done] = table[:, j].tolist()
        return outputs

    def replay(self, rows: list[Any], names: tuple[str, ...], t: np.ndarray, a: int) -> None:
        """Check and collect the results the fast loop kept for the chunk from cycle ``a``
        (raises at the first bad one)."""
        width = len(names)
        for k in range(len(rows) // width if width else 0):
            i = a + k
            self.collect(
                dict(zip(names, rows[k * width : (k + 1) * width], strict=True)), i, float(t[i])
            )

    def collect(self, result: Any, i: int, t: float) -> None:
        _collect(result, i, t, self.out, self.extras, self.n, self.recording)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(col, dtype=np.float64) for name, col in self.out.items()}


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

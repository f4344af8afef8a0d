"""An FMU (FMI 2.0 or 3.0 co-simulation) as the function under test, through fmpy.

Per recording: instantiate (or reset) → set parameters → ``setupExperiment(t_0)`` without
a stop time (FMI 2) → enter initialization → set the cycle-0 inputs → exit
initialization → per cycle k: set the inputs at ``t_k``, ``doStep(t_k, cycle_time)``, read
the outputs and store them at ``t_k`` (the outputs of cycle k, as a Python ``step`` would
return them). fmpy loads the FMU's binary into the calling process, so the plugin runs
this adapter inside its supervised host process.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pytest_adsreplay.errors import FunctionError, FunctionLoadError
from pytest_adsreplay.function.binding import (
    Binding,
    bind,
    check_object_sizes,
    check_outputs,
    check_parameters,
    flatten_params,
    input_matrix,
)
from pytest_adsreplay.function.protocol import FunctionInfo, FunctionOptions, Port

_FLOAT_TYPES = {"Real", "Float64"}
_STATUS = ("OK", "Warning", "Discard", "Error", "Fatal", "Pending")
_OK_OR_WARNING = 1
_FMI2_TERMINATED = 3  # fmi2StatusKind fmi2Terminated


def _fmpy() -> Any:
    try:
        import fmpy
    except ImportError:
        raise FunctionLoadError(
            "an FMU as the function under test needs fmpy, which is not installed",
            hint="pip install 'pytest-adsreplay[fmu]'",
        ) from None
    return fmpy


def _describe(path: Path) -> Any:
    fmpy = _fmpy()
    if not path.is_file():
        raise FunctionLoadError(
            f"FMU {path} does not exist",
            hint="fix --aeb-function (paths are relative to the current folder, or to the "
            "ini file's folder in the ini)",
        )
    try:
        return fmpy.read_model_description(str(path), validate=False)
    except Exception as exc:
        raise FunctionLoadError(
            f"FMU {path} cannot be read: {exc}",
            hint="check that it is an FMI 2.0 or 3.0 FMU (a zip with modelDescription.xml)",
        ) from None


def _check_kind(path: Path, md: Any) -> int:
    """The FMI major version; a usage error for what this adapter cannot run."""
    version = str(md.fmiVersion or "")
    major = version.split(".")[0]
    if major not in ("2", "3"):
        raise FunctionLoadError(
            f"FMU {path} is FMI {version}; only FMI 2.0 and 3.0 co-simulation FMUs are supported",
            hint="export the model as an FMI 2.0 or 3.0 co-simulation FMU",
        )
    cs = md.coSimulation
    if cs is None:
        kinds = [k for k in ("modelExchange", "scheduledExecution") if getattr(md, k, None)]
        raise FunctionLoadError(
            f"FMU {path} is a {' and '.join(kinds) or 'non-co-simulation'} FMU without "
            "co-simulation; the function under test must be a co-simulation FMU",
            hint="export it with co-simulation (the FMU then brings its own solver)",
        )
    if cs.needsExecutionTool:
        raise FunctionLoadError(
            f"FMU {path} needs an execution tool (needsExecutionTool=true), which cannot run here",
            hint="export a standalone co-simulation FMU",
        )
    clocks = [v.name for v in md.modelVariables if v.type == "Clock"]
    if clocks:
        raise FunctionLoadError(
            f"FMU {path} has clocks ({', '.join(clocks)}); clocked and scheduled execution "
            "are not supported",
            hint="export a co-simulation FMU without clocks",
        )
    return int(major)


def _check_platform(path: Path) -> None:
    fmpy = _fmpy()
    platforms = fmpy.supported_platforms(str(path))
    if fmpy.platform in platforms:
        return
    has = [p for p in platforms if p != "c-code"]
    sources = " It ships C sources: compile them (fmpy.util.compile_platform_binary)." * (
        "c-code" in platforms
    )
    raise FunctionLoadError(
        f"FMU {path} has no binary for this machine ({fmpy.platform_tuple}); it has "
        f"{', '.join(has) or 'no binaries'}.{sources}",
        hint="export the FMU for this platform, or run on a machine it was built for",
    )


def _start(v: Any) -> float | None:
    try:
        return float(v.start) if v.start is not None else None
    except (TypeError, ValueError):
        return None


class FmuAdapter:
    """An FMI 2.0 / 3.0 co-simulation FMU (see :mod:`.protocol`)."""

    kind = "fmu"

    def __init__(
        self,
        spec: str,
        params: Mapping[str, Any] | None = None,
        options: FunctionOptions | None = None,
    ) -> None:
        self.spec = spec
        options = options or FunctionOptions()
        path = Path(spec)
        self.md = md = _describe(path)
        self.major = _check_kind(path, md)
        _check_platform(path)
        variables = md.modelVariables
        self.inputs = [v for v in variables if v.causality == "input"]
        self.outputs = [v for v in variables if v.causality == "output"]
        self.parameters = {
            v.name: v
            for v in variables
            if v.causality == "parameter" and v.variability in ("fixed", "tunable")
        }
        #: ``NAME_valid`` inputs set from whether Integer/Boolean input ``NAME`` has a value
        self._derived = _derived_valid(self.inputs, options.binding)
        self.binding: Binding = bind(
            spec,
            [v.name for v in self.inputs],
            [v.name for v in self.outputs],
            _with_start(options.binding, self._derived),
            allow_start=True,
            sizes=_array_sizes(path, self.inputs),
        )
        #: the first column of each input in the input table (arrays: one per element)
        self._offsets = self.binding.offsets()
        self._valid_pairs = self._pair_valid()
        self.params = flatten_params(params)
        check_parameters(spec, self.params, self.parameters)
        experiment = md.defaultExperiment
        step = float(experiment.stepSize) if experiment and experiment.stepSize else math.nan
        self._cycle_time = step if math.isfinite(step) and step > 0 else None
        self._fallback_cycle = options.cycle_time
        self.log: deque[str] = deque(maxlen=50)
        self._dir = tempfile.mkdtemp(prefix="adsreplay-fmu-")
        self._fmu: Any = None
        self._fresh = True
        #: a writable one-element float64 buffer a supervised host reads after a crash:
        #: the time of the cycle about to be stepped
        self.progress: Any = None
        try:
            self._instantiate(path)
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise

    # ---- loading ---------------------------------------------------------------------

    def _instantiate(self, path: Path) -> None:
        fmpy = _fmpy()
        unzipped = fmpy.extract(str(path), unzipdir=self._dir)
        kwargs = {
            "guid": self.md.guid,
            "unzipDirectory": unzipped,
            "modelIdentifier": self.md.coSimulation.modelIdentifier,
            "instanceName": "adsreplay",
        }
        try:
            if self.major == 2:
                from fmpy.fmi2 import FMU2Slave

                self._fmu = FMU2Slave(**kwargs)
                self._fmu.instantiate(callbacks=self._fmi2_callbacks())
            else:
                from fmpy.fmi3 import FMU3Slave

                self._fmu = FMU3Slave(**kwargs)
                self._fmu.instantiate(logMessage=self._fmi3_logger)
        except Exception as exc:
            raise FunctionLoadError(
                f"FMU {path} cannot be instantiated: {exc}{self._log_text()}",
                hint="check that the FMU runs in another tool (e.g. fmpy simulate) on this machine",
            ) from None
        self._bind_calls()

    def _fmi2_callbacks(self) -> Any:
        from fmpy import calloc, free
        from fmpy.fmi2 import (
            fmi2CallbackAllocateMemoryTYPE,
            fmi2CallbackFreeMemoryTYPE,
            fmi2CallbackFunctions,
            fmi2CallbackLoggerTYPE,
        )
        from fmpy.logging import addLoggerProxy

        callbacks = fmi2CallbackFunctions()
        callbacks.logger = fmi2CallbackLoggerTYPE(self._fmi2_logger)
        callbacks.allocateMemory = fmi2CallbackAllocateMemoryTYPE(calloc)
        callbacks.freeMemory = fmi2CallbackFreeMemoryTYPE(free)
        addLoggerProxy(ctypes.byref(callbacks))
        self._callbacks = callbacks  # kept alive as long as the instance
        return callbacks

    def _fmi2_logger(
        self, component: Any, name: bytes, status: int, category: bytes, message: bytes
    ) -> None:
        self._record(status, category, message)

    def _fmi3_logger(self, env: Any, status: int, category: bytes, message: bytes) -> None:
        self._record(status, category, message)

    def _record(self, status: int, category: bytes | None, message: bytes | None) -> None:
        label = _STATUS[status] if 0 <= status < len(_STATUS) else str(status)
        text = (message or b"").decode("utf-8", "replace")
        cat = (category or b"").decode("utf-8", "replace")
        self.log.append(f"[{label}] {cat + ': ' if cat else ''}{text}")

    def _log_text(self) -> str:
        if not self.log:
            return ""
        return "\nFMU log:\n  " + "\n  ".join(self.log)

    def _bind_calls(self) -> None:
        """Raw ctypes entry points of the per-cycle calls (no Python wrapper per call)."""
        dll = self._fmu.dll
        c_int, c_void_p, c_size_t, c_double = (
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_double,
        )

        def raw(name: str, *argtypes: Any) -> Callable[..., int]:
            address = ctypes.cast(getattr(dll, name), c_void_p).value or 0
            fn: Callable[..., int] = ctypes.CFUNCTYPE(c_int, *argtypes)(address)
            return fn

        v = "fmi2" if self.major == 2 else "fmi3"
        real = "Real" if self.major == 2 else "Float64"
        extra = () if self.major == 2 else (c_size_t,)
        self._set = raw(f"{v}Set{real}", c_void_p, c_void_p, c_size_t, c_void_p, *extra)
        self._get = raw(f"{v}Get{real}", c_void_p, c_void_p, c_size_t, c_void_p, *extra)
        if self.major == 2:
            self._do_step = raw("fmi2DoStep", c_void_p, c_double, c_double, c_int)
        else:
            self._do_step = raw(
                "fmi3DoStep",
                c_void_p,
                c_double,
                c_double,
                ctypes.c_bool,
                c_void_p,
                c_void_p,
                c_void_p,
                c_void_p,
            )
        fast_in = [
            (j, v)
            for j, v in enumerate(self.inputs)
            if self.binding.inputs[j][1] is not None or v.name in self._derived
        ]
        self._real_in = [(j, v) for j, v in fast_in if v.type in _FLOAT_TYPES]
        self._other_in = [(j, v) for j, v in fast_in if v.type not in _FLOAT_TYPES]
        off = self._offsets
        #: the input table's columns of the 64-bit float inputs, in ``_in_vr`` order
        self._real_cols = [c for j, _ in self._real_in for c in range(off[j], off[j + 1])]
        self._real_out = [(j, v) for j, v in enumerate(self.outputs) if v.type in _FLOAT_TYPES]
        self._other_out = [(j, v) for j, v in enumerate(self.outputs) if v.type not in _FLOAT_TYPES]
        vr_type = ctypes.c_uint32
        self._in_vr = (vr_type * max(1, len(self._real_in)))(
            *[v.valueReference for _, v in self._real_in]
        )
        self._out_vr = (vr_type * max(1, len(self._real_out)))(
            *[v.valueReference for _, v in self._real_out]
        )

    def _pair_valid(self) -> list[tuple[int, int, bool]]:
        """(Integer/Boolean scalar input, its ``NAME_valid`` input) pairs as columns of
        the input table, and whether the adapter sets the ``NAME_valid`` input itself."""
        column = {v.name: j for j, v in enumerate(self.inputs)}
        off, pairs = self._offsets, []
        for j, v in enumerate(self.inputs):
            k = column.get(f"{v.name}_valid")
            if k is None or _kind(v) not in ("bool", "int") or self.binding.inputs[j][1] is None:
                continue
            if self.binding.size_of(j) != 1 or self.binding.size_of(k) != 1:
                continue
            derived = self.inputs[k].name in self._derived
            if self.binding.inputs[k][1] is not None or derived:
                pairs.append((off[j], off[k], derived))
        return pairs

    def _mark_missing(self, table: np.ndarray) -> None:
        """An Integer/Boolean input cannot hold NaN (it is set as 0/false): its
        ``NAME_valid`` input is 0 where it has no value (1 elsewhere when that input is
        not bound to a signal of its own)."""
        for j, k, derived in self._valid_pairs:
            missing = np.isnan(table[:, j])
            if derived:
                table[:, k] = np.where(missing, 0.0, 1.0)
            else:
                table[missing, k] = 0.0

    def _values(self, table: np.ndarray, i: int, j: int) -> float | list[float]:
        """Input ``j``'s value at cycle ``i`` (an array input: its elements)."""
        a, b = self._offsets[j], self._offsets[j + 1]
        if self.binding.size_of(j) == 1:
            return float(table[i, a])
        values: list[float] = table[i, a:b].tolist()
        return values

    # ---- protocol --------------------------------------------------------------------

    @property
    def cycle_time(self) -> float | None:
        return self._cycle_time

    def info(self) -> FunctionInfo:
        md = self.md
        notes = [f"FMI {md.fmiVersion} co-simulation, model {md.modelName!r}"]
        if md.generationTool:
            notes.append(f"generated by {md.generationTool}")
        if md.coSimulation.canBeInstantiatedOnlyOncePerProcess:
            notes.append("may be instantiated only once per process (one host per instance)")
        inputs = []
        for j, v in enumerate(self.inputs):
            canonical = self.binding.inputs[j][1]
            size = self.binding.size_of(j)
            kind = "array" if v.dimensions else _kind(v)
            inputs.append(Port(v.name, binds_to=canonical, kind=kind, size=size, start=_start(v)))
        return FunctionInfo(
            spec=self.spec,
            kind=self.kind,
            inputs=tuple(inputs),
            outputs=tuple(
                Port(v.name, binds_to=self.binding.outputs[j][1], kind=_kind(v))
                for j, v in enumerate(self.outputs)
            ),
            parameters=tuple(
                Port(name, kind=_kind(v), start=_param_value(self.params.get(name), v))
                for name, v in self.parameters.items()
            ),
            cycle_time=self._cycle_time,
            notes=tuple(notes),
        )

    def run(
        self,
        t: np.ndarray,
        signals: Mapping[str, np.ndarray],
        *,
        inputs: tuple[str, ...] = (),
        recording: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Reset, initialize at ``t[0]``, then one ``doStep`` per cycle."""
        if self._fmu is None:
            raise RuntimeError(f"FMU {self.spec} is closed")
        t = np.ascontiguousarray(t, dtype=np.float64).reshape(-1)
        n = len(t)
        check_object_sizes(self.spec, self.binding, signals, recording)
        table = input_matrix(t, signals, self.binding)
        self._mark_missing(table)
        real_in = np.ascontiguousarray(table[:, self._real_cols])
        out = np.zeros((n, len(self.outputs)))
        real_out = np.zeros((n, len(self._real_out)))
        h = self._step_size(t)
        if n:
            self.log.clear()
            self._initialize(float(t[0]), real_in, table, recording)
            self._cycles(t, h, real_in, table, real_out, out, recording)
        for k, (j, _) in enumerate(self._real_out):
            out[:, j] = real_out[:, k]
        outputs = {"fcw": np.zeros(n)}
        for j, (_, stored) in enumerate(self.binding.outputs):
            outputs[stored] = np.ascontiguousarray(out[:, j])
        check_outputs(outputs, t, self.spec, recording)
        return outputs

    def _step_size(self, t: np.ndarray) -> float:
        if self._cycle_time is not None:
            return self._cycle_time
        if self._fallback_cycle:
            return float(self._fallback_cycle)
        return float(t[1] - t[0]) if len(t) > 1 else 0.01

    def _initialize(
        self, t0: float, real_in: np.ndarray, table: np.ndarray, recording: str | None
    ) -> None:
        fmu = self._fmu
        try:
            if not self._fresh:
                fmu.reset()
            self._fresh = False
            self._set_parameters()
            if self.major == 2:
                fmu.setupExperiment(startTime=t0)
                fmu.enterInitializationMode()
            else:
                fmu.enterInitializationMode(startTime=t0)
            self._set_inputs(0, real_in, table)
            fmu.exitInitializationMode()
        except FunctionError:
            raise
        except Exception as exc:
            raise self._error(f"initialization failed ({exc})", None, t0, recording) from None

    def _set_parameters(self) -> None:
        for name, value in self.params.items():
            v = self.parameters[name]
            self._set_value(v, value)

    def _set_value(self, v: Any, value: Any) -> None:
        """Set one variable: a number, or a list for an array variable (NaN is 0/false
        in Integer and Boolean variables)."""
        fmu, vr = self._fmu, [v.valueReference]
        values = value if isinstance(value, list) else [value]
        kind = _kind(v)
        if kind == "float":
            setter = fmu.setReal if self.major == 2 else getattr(fmu, f"set{v.type}")
            setter(vr, [float(x) for x in values])
        elif kind == "bool":
            fmu.setBoolean(vr, [bool(x) and x == x for x in values])
        elif kind == "int":
            setter = fmu.setInteger if self.major == 2 else getattr(fmu, f"set{v.type}")
            setter(
                vr,
                [int(x) if isinstance(x, int | float) and math.isfinite(x) else 0 for x in values],
            )
        else:
            fmu.setString(vr, [str(x) for x in values])

    def _set_inputs(self, i: int, real_in: np.ndarray, table: np.ndarray) -> None:
        if self._real_in:
            m = len(self._real_in)
            row = real_in.ctypes.data + i * real_in.strides[0]
            extra = () if self.major == 2 else (len(self._real_cols),)
            status = self._set(self._fmu.component, self._in_vr, m, row, *extra)
            if status > _OK_OR_WARNING:
                raise RuntimeError(f"setting the inputs returned {_STATUS[status]}")
        for j, v in self._other_in:
            self._set_value(v, self._values(table, i, j))

    def _cycles(
        self,
        t: np.ndarray,
        h: float,
        real_in: np.ndarray,
        table: np.ndarray,
        real_out: np.ndarray,
        out: np.ndarray,
        recording: str | None,
    ) -> None:
        comp, set_in, get_out, do_step = self._fmu.component, self._set, self._get, self._do_step
        m, k = len(self._real_in), len(self._real_out)
        in_vr, out_vr = self._in_vr, self._out_vr
        in_ptr, in_row = real_in.ctypes.data, real_in.strides[0]
        out_ptr, out_row = real_out.ctypes.data, real_out.strides[0]
        extra_in = () if self.major == 2 else (len(self._real_cols),)
        extra_out = () if self.major == 2 else (k,)
        flags = [ctypes.c_bool(), ctypes.c_bool(), ctypes.c_bool()]
        last = ctypes.c_double()
        step_args = (
            ()
            if self.major == 2
            else (*(ctypes.addressof(f) for f in flags), ctypes.addressof(last))
        )
        slow = bool(self._other_in or self._other_out)
        mark = self.progress if self.progress is not None else [0.0]
        for i, ti in enumerate(t.tolist()):
            mark[0] = ti
            if m and set_in(comp, in_vr, m, in_ptr + i * in_row, *extra_in) > _OK_OR_WARNING:
                raise self._error("setting the inputs failed", i, ti, recording)
            if slow:
                self._slow_io(i, table, out, before=True)
            status = do_step(comp, ti, h, 1, *step_args)
            if status > _OK_OR_WARNING:
                raise self._error(self._step_failure(status), i, ti, recording)
            if self.major == 3 and flags[1].value:
                raise self._error(
                    "the FMU ended the simulation (doStep set terminateSimulation)",
                    i,
                    ti,
                    recording,
                )
            if k and get_out(comp, out_vr, k, out_ptr + i * out_row, *extra_out) > 1:
                raise self._error("reading the outputs failed", i, ti, recording)
            if slow:
                self._slow_io(i, table, out, before=False)

    def _step_failure(self, status: int) -> str:
        """What a failed ``doStep`` means: FMI 2 ``Discard`` with ``fmi2Terminated`` is
        the FMU ending the simulation."""
        label = _STATUS[status] if 0 <= status < len(_STATUS) else str(status)
        if self.major == 2 and label == "Discard" and self._terminated():
            return "the FMU ended the simulation (doStep returned Discard, fmi2Terminated)"
        return f"doStep returned {label}"

    def _terminated(self) -> bool:
        """FMI 2 ``fmi2GetBooleanStatus(fmi2Terminated)`` (False when not supported)."""
        try:
            return bool(self._fmu.getBooleanStatus(_FMI2_TERMINATED))
        except Exception:
            return False

    def _slow_io(self, i: int, table: np.ndarray, out: np.ndarray, *, before: bool) -> None:
        """Inputs and outputs that are not 64-bit floats, through fmpy's typed calls."""
        if before:
            for j, v in self._other_in:
                self._set_value(v, self._values(table, i, j))
            return
        fmu = self._fmu
        for j, v in self._other_out:
            if _kind(v) == "bool":
                out[i, j] = float(fmu.getBoolean([v.valueReference])[0])
            elif self.major == 2:
                out[i, j] = float(fmu.getInteger([v.valueReference])[0])
            else:
                out[i, j] = float(getattr(fmu, f"get{v.type}")([v.valueReference])[0])

    def _error(self, what: str, i: int | None, t: float, recording: str | None) -> FunctionError:
        where = f"at t = {t:.3f} s (cycle {i})" if i is not None else f"at t = {t:.3f} s"
        return FunctionError(
            f"the FMU {self.spec}: {what} {where}{self._log_text()}",
            t=t,
            recording=recording,
            hint="the FMU's log above says why; reproduce with "
            "pytest_adsreplay.replay_file(path, function) and the FMU's own debug logging",
        )

    def close(self) -> None:
        fmu, self._fmu = self._fmu, None
        if fmu is not None:
            with contextlib.suppress(Exception):
                fmu.terminate()
            with contextlib.suppress(Exception):
                fmu.freeInstance()
        shutil.rmtree(self._dir, ignore_errors=True)


def _array_sizes(path: Path, inputs: list[Any]) -> dict[str, int]:
    """The number of elements of each array input (FMI 3 variables with a fixed
    Dimension); a usage error for arrays of more than one dimension."""
    sizes: dict[str, int] = {}
    for v in inputs:
        if not v.dimensions:
            continue
        shape = tuple(getattr(v, "shape", None) or ())
        if len(shape) != 1 or shape[0] < 1:
            raise FunctionLoadError(
                f"FMU {path} has the array input {v.name!r} of shape {shape or '(unknown)'}; "
                "an array input takes one object field and must have one Dimension of "
                "fixed size",
                hint='give it one <Dimension start="N"/> (N = the object list\'s count), '
                "or flatten it into scalar inputs obj_dx[0] … obj_dx[N-1]",
            )
        sizes[v.name] = int(shape[0])
    return sizes


def _kind(v: Any) -> str:
    if v.type in ("Real", "Float64", "Float32"):
        return "float"
    if v.type == "Boolean":
        return "bool"
    if v.type == "String":
        return "string"
    return "int"


def _derived_valid(inputs: list[Any], binding: Mapping[str, Any] | None) -> frozenset[str]:
    """``NAME_valid`` inputs of Integer/Boolean inputs ``NAME`` that neither their name
    nor the binding file binds: they say whether ``NAME`` has a value."""
    from pytest_adsreplay.function.binding import canonical_inputs

    listed = dict((binding or {}).get("inputs", {}))
    names = {v.name: v for v in inputs}
    canonical = canonical_inputs()
    return frozenset(
        f"{v.name}_valid"
        for v in inputs
        if _kind(v) in ("bool", "int")
        and f"{v.name}_valid" in names
        and f"{v.name}_valid" not in listed
        and f"{v.name}_valid" not in canonical
    )


def _with_start(binding: Mapping[str, Any] | None, names: frozenset[str]) -> Any:
    """``binding`` with ``names`` bound to ``"start"`` (they are set by the adapter)."""
    if not names:
        return binding
    table = dict((binding or {}).get("inputs", {}))
    table.update({name: "start" for name in names})
    return {**(binding or {}), "inputs": table}


def _param_value(given: Any, v: Any) -> float | None:
    if isinstance(given, bool | int | float):
        return float(given)
    return _start(v)


def describe(spec: str) -> FunctionInfo:
    """The FMU's ports without binding or instantiating it (``binds_to`` by name only):
    what ``adsreplay function`` shows when the binding is incomplete."""
    from pytest_adsreplay.function.binding import unbound_info

    md = _describe(Path(spec))
    variables = md.modelVariables
    step = md.defaultExperiment.stepSize if md.defaultExperiment else None
    inputs = [v for v in variables if v.causality == "input"]
    try:
        sizes = _array_sizes(Path(spec), inputs)
    except FunctionLoadError:
        sizes = {}
    return unbound_info(
        spec,
        "fmu",
        [v.name for v in inputs],
        [v.name for v in variables if v.causality == "output"],
        {
            v.name: _start(v)
            for v in variables
            if v.causality == "parameter" and v.variability in ("fixed", "tunable")
        },
        float(step) if step else None,
        sizes,
    )


def open_adapter(spec: str, params: Mapping[str, Any], options: FunctionOptions) -> FmuAdapter:
    """The adapter factory for ``*.fmu`` (see :data:`.protocol.AdapterFactory`)."""
    return FmuAdapter(spec, params, options)

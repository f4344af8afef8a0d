"""A C shared library (``.so``, ``.dylib``, ``.dll``) as the function under test.

The library implements the C ABI of ``pytest_adsreplay/native/adsreplay_function.h``
(``adsreplay function --header`` prints it). It is loaded with ctypes into the calling
process, so the plugin runs it inside its supervised host process.
"""

from __future__ import annotations

import ctypes
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pytest_adsreplay.errors import FunctionError, FunctionLoadError
from pytest_adsreplay.function.binding import (
    INPUT_BLOCK,
    Binding,
    InputBlocks,
    bind,
    check_object_sizes,
    check_outputs,
    check_parameters,
    flatten_params,
)
from pytest_adsreplay.function.protocol import FunctionInfo, FunctionOptions, Port

#: The ABI version this adapter speaks (``ADSREPLAY_ABI_VERSION`` of the header).
ABI_VERSION = 1

#: Suffixes of shared libraries.
SUFFIXES = (".so", ".dylib", ".dll")

_REQUIRED = (
    "adsreplay_abi_version",
    "adsreplay_input_count",
    "adsreplay_input_name",
    "adsreplay_output_count",
    "adsreplay_output_name",
    "adsreplay_create",
    "adsreplay_reset",
    "adsreplay_step",
    "adsreplay_free",
    "adsreplay_last_error",
)

#: Cycles per batch call when a host watches the progress (a crash is placed within one).
BATCH_CYCLES = 256

_HINT = "see the C ABI with `adsreplay function --header`"


def header_path() -> Path:
    """The C header shipped with the package."""
    return Path(__file__).resolve().parent.parent / "native" / "adsreplay_function.h"


def _declare(lib: ctypes.CDLL) -> None:
    """Argument and result types of every ABI function the library has."""
    c_int, c_double, c_char_p, c_void_p = (
        ctypes.c_int,
        ctypes.c_double,
        ctypes.c_char_p,
        ctypes.c_void_p,
    )
    c_size_t = ctypes.c_size_t
    types: dict[str, tuple[Any, list[Any]]] = {
        "adsreplay_abi_version": (c_int, []),
        "adsreplay_input_count": (c_int, []),
        "adsreplay_input_name": (c_char_p, [c_int]),
        "adsreplay_output_count": (c_int, []),
        "adsreplay_output_name": (c_char_p, [c_int]),
        "adsreplay_parameter_count": (c_int, []),
        "adsreplay_parameter_name": (c_char_p, [c_int]),
        "adsreplay_parameter_default": (c_double, [c_int]),
        "adsreplay_cycle_time": (c_double, []),
        "adsreplay_create": (c_void_p, [c_char_p]),
        "adsreplay_reset": (c_int, [c_void_p]),
        "adsreplay_step": (c_int, [c_void_p, c_double, c_void_p, c_void_p]),
        "adsreplay_step_batch": (
            c_int,
            [c_void_p, c_size_t, c_void_p, c_void_p, c_void_p, ctypes.POINTER(c_size_t)],
        ),
        "adsreplay_free": (None, [c_void_p]),
        "adsreplay_last_error": (c_char_p, [c_void_p]),
    }
    for name, (restype, argtypes) in types.items():
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype, fn.argtypes = restype, argtypes


def _names(lib: ctypes.CDLL, what: str) -> list[str]:
    count = int(getattr(lib, f"adsreplay_{what}_count")())
    get = getattr(lib, f"adsreplay_{what}_name")
    names = []
    for i in range(count):
        raw = get(i)
        if not raw:
            raise FunctionLoadError(f"adsreplay_{what}_name({i}) returned NULL", hint=_HINT)
        names.append(raw.decode("utf-8", "replace"))
    if len(set(names)) != len(names):
        raise FunctionLoadError(f"the library declares duplicate {what} names: {names}")
    return names


def load_library(path: str | Path) -> ctypes.CDLL:
    """Load a shared library and check that it implements the ABI."""
    p = Path(path)
    if not p.is_file():
        raise FunctionLoadError(
            f"C function library {p} does not exist",
            hint="build it first, or fix --aeb-function (paths are relative to the current "
            "folder, or to the ini file's folder in the ini)",
        )
    try:
        lib = ctypes.CDLL(str(p.resolve()))
    except OSError as exc:
        raise FunctionLoadError(
            f"cannot load C function library {p}: {exc}",
            hint="check that it is built for this machine and its dependencies are installed",
        ) from None
    missing = [name for name in _REQUIRED if getattr(lib, name, None) is None]
    if missing:
        raise FunctionLoadError(
            f"C function library {p} does not export {', '.join(missing)}",
            hint=f"implement every required function of adsreplay_function.h; {_HINT}",
        )
    _declare(lib)
    version = int(lib.adsreplay_abi_version())
    if version != ABI_VERSION:
        raise FunctionLoadError(
            f"C function library {p} was built for ABI version {version}; this plugin speaks "
            f"version {ABI_VERSION}",
            hint="rebuild it against the header of this plugin version (adsreplay function "
            "--header)",
        )
    return lib


class NativeAdapter:
    """A C library implementing ``adsreplay_function.h`` (see :mod:`.protocol`)."""

    kind = "c"

    def __init__(
        self,
        spec: str,
        params: Mapping[str, Any] | None = None,
        options: FunctionOptions | None = None,
    ) -> None:
        self.spec = spec
        options = options or FunctionOptions()
        self._lib = lib = load_library(spec)
        self.input_names = _names(lib, "input")
        self.output_names = _names(lib, "output")
        self.parameters: dict[str, float] | None = None
        if getattr(lib, "adsreplay_parameter_count", None) is not None:
            names = _names(lib, "parameter")
            default = getattr(lib, "adsreplay_parameter_default", None)
            self.parameters = {
                n: (float(default(i)) if default is not None else math.nan)
                for i, n in enumerate(names)
            }
        declared = getattr(lib, "adsreplay_cycle_time", None)
        ct = float(declared()) if declared is not None else math.nan
        self._cycle_time = ct if math.isfinite(ct) and ct > 0 else None
        self.binding: Binding = bind(
            spec, self.input_names, self.output_names, options.binding, allow_start=False
        )
        self.params = flatten_params(params)
        if self.parameters is not None:
            check_parameters(spec, self.params, self.parameters)
        self._batch = getattr(lib, "adsreplay_step_batch", None)
        self.use_batch = self._batch is not None
        #: a writable one-element float64 buffer a supervised host reads after a crash:
        #: the time of the cycle about to be stepped (batch calls mark their first cycle)
        self.progress: Any = None
        #: cycles per block of the input table (its memory: block x inputs x 8 bytes)
        self.input_block = INPUT_BLOCK
        self._handle: int | None = self._create()

    def _create(self) -> int:
        text = json.dumps(self.params)
        handle = self._lib.adsreplay_create(text.encode("utf-8"))
        if not handle:
            why = self._error(None) or "(the library gave no error text)"
            raise FunctionLoadError(
                f"C function {self.spec} could not be created with parameters {text}: {why}",
                hint="check adsreplay_function_params / the adsreplay_params marker",
            )
        return int(handle)

    def _error(self, handle: int | None) -> str:
        raw = self._lib.adsreplay_last_error(handle)
        return raw.decode("utf-8", "replace") if raw else ""

    @property
    def cycle_time(self) -> float | None:
        return self._cycle_time

    def info(self) -> FunctionInfo:
        notes = [f"C ABI version {ABI_VERSION}"]
        notes.append(
            "batch entry point: adsreplay_step_batch (used)"
            if self._batch is not None
            else "no batch entry point: one adsreplay_step call per cycle"
        )
        if self.parameters is None:
            notes.append("declares no parameter list: parameters go to the library unchecked")
        return FunctionInfo(
            spec=self.spec,
            kind=self.kind,
            inputs=tuple(Port(n, binds_to=c) for n, c in self.binding.inputs),
            outputs=tuple(Port(n, binds_to=s) for n, s in self.binding.outputs),
            parameters=tuple(
                Port(n, start=self.params.get(n, d)) for n, d in (self.parameters or {}).items()
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
        """Reset, then step every cycle (one batch call per block of :attr:`input_block`
        cycles when the library has one). The input table is built a block at a time
        in one reused buffer, so its memory does not grow with the recording."""
        if self._handle is None:
            raise RuntimeError(f"C function {self.spec} is closed")
        t = np.ascontiguousarray(t, dtype=np.float64).reshape(-1)
        n = len(t)
        check_object_sizes(self.spec, self.binding, signals, recording)
        blocks = InputBlocks(t, signals, self.binding, block=self.input_block)
        out = np.zeros((n, len(self.output_names)))
        status = self._lib.adsreplay_reset(self._handle)
        if status:
            self._fail(status, None, None, recording, "adsreplay_reset")
        run = self._run_batch if self.use_batch else self._run_steps
        for start in blocks.starts():
            stop = min(n, start + blocks.block)
            run(t, start, blocks.rows(start, stop), out, recording)
        outputs = {"fcw": np.zeros(n)}
        for j, (_, stored) in enumerate(self.binding.outputs):
            outputs[stored] = np.ascontiguousarray(out[:, j])
        check_outputs(outputs, t, self.spec, recording)
        return outputs

    def _run_batch(
        self, t: np.ndarray, first: int, table: np.ndarray, out: np.ndarray, recording: str | None
    ) -> None:
        """Step the cycles ``first`` … whose inputs are ``table``'s rows."""
        assert self._batch is not None
        mark, n, stop = self.progress, len(t), first + len(table)
        # under a host, batches of BATCH_CYCLES so a crash is placed within one batch
        chunk = len(table) if mark is None else BATCH_CYCLES
        done = ctypes.c_size_t(0)
        t_ptr, in_ptr, out_ptr = t.ctypes.data, table.ctypes.data, out.ctypes.data
        in_row, out_row = table.strides[0], out.strides[0]
        for start in range(first, stop, chunk):
            count = min(chunk, stop - start)
            if mark is not None:
                mark[0] = t[start]
            done.value = 0
            status = self._batch(
                self._handle,
                count,
                t_ptr + 8 * start,
                in_ptr + (start - first) * in_row,
                out_ptr + start * out_row,
                done,
            )
            if status:
                i = min(start + int(done.value), n - 1)
                self._fail(status, i, float(t[i]), recording, "adsreplay_step_batch")

    def _run_steps(
        self, t: np.ndarray, first: int, table: np.ndarray, out: np.ndarray, recording: str | None
    ) -> None:
        """Step the cycles ``first`` … whose inputs are ``table``'s rows, one call each."""
        step, handle = self._lib.adsreplay_step, self._handle
        in_ptr, out_ptr = table.ctypes.data, out.ctypes.data
        in_row, out_row = table.strides[0], out.strides[0]
        mark = self.progress if self.progress is not None else [0.0]
        times = t[first : first + len(table)].tolist()
        for k, ti in enumerate(times):
            mark[0] = ti
            status = step(handle, ti, in_ptr + k * in_row, out_ptr + (first + k) * out_row)
            if status:
                self._fail(status, first + k, ti, recording, "adsreplay_step")

    def _fail(
        self, status: int, i: int | None, t: float | None, recording: str | None, call: str
    ) -> None:
        text = self._error(self._handle) or "(the library gave no error text)"
        where = f" at t = {t:.3f} s (cycle {i})" if t is not None else " before the first cycle"
        raise FunctionError(
            f"the function under test {self.spec} returned status {status} from {call}{where}: "
            f"{text}",
            t=t,
            recording=recording,
            hint="reproduce with pytest_adsreplay.replay_file(path, function) and a breakpoint "
            "in the library at that t",
        )

    def close(self) -> None:
        if self._handle is not None:
            self._lib.adsreplay_free(self._handle)
            self._handle = None


def describe(spec: str) -> FunctionInfo:
    """The library's ports without binding them (``binds_to`` by name only): what
    ``adsreplay function`` shows when the binding is incomplete."""
    from pytest_adsreplay.function.binding import unbound_info

    lib = load_library(spec)
    params: dict[str, float | None] = {}
    if getattr(lib, "adsreplay_parameter_count", None) is not None:
        default = getattr(lib, "adsreplay_parameter_default", None)
        for i, name in enumerate(_names(lib, "parameter")):
            params[name] = float(default(i)) if default is not None else None
    declared = getattr(lib, "adsreplay_cycle_time", None)
    ct = float(declared()) if declared is not None else None
    return unbound_info(spec, "c", _names(lib, "input"), _names(lib, "output"), params, ct)


def open_adapter(spec: str, params: Mapping[str, Any], options: FunctionOptions) -> NativeAdapter:
    """The adapter factory for shared libraries (see :data:`.protocol.AdapterFactory`)."""
    return NativeAdapter(spec, params, options)

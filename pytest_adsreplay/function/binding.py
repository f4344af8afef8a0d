"""Binding a native function's inputs and outputs to canonical names, and its parameters.

FMU and C functions name their own inputs and outputs. An input whose name is a
canonical signal is bound to it; other names are bound in the binding file
(``adsreplay_function_binding``)::

    [inputs]                     # function input = canonical signal
    VehSpd_mps = "ego_speed"
    [outputs]                    # function output = canonical output
    AebDecelReq = "aeb_decel"

``NAME = "start"`` keeps an FMU input at its start value on purpose. Parameters arrive as a
(possibly nested) mapping and are flattened with ``.`` (``{ctrl = {gain = 2}}`` sets
``ctrl.gain``).
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pytest_adsreplay.errors import ConfigError, FunctionError, FunctionLoadError
from pytest_adsreplay.function.protocol import OUTPUTS, FunctionInfo, Port

#: The binding value that keeps an FMU input at its start value.
START = "start"


def canonical_inputs() -> tuple[str, ...]:
    """The canonical signal names an input can be bound to."""
    from pytest_adsreplay.signals import CANONICAL_SIGNALS

    return tuple(CANONICAL_SIGNALS)


def load_binding(path: str | Path) -> dict[str, Any]:
    """Read a binding TOML file into ``{"inputs": {...}, "outputs": {...}}``."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"function binding file {p} does not exist",
            hint="fix adsreplay_function_binding (paths in the ini are relative to its folder)",
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"function binding file {p} cannot be read: {exc}") from None
    unknown = sorted(set(data) - {"inputs", "outputs"})
    if unknown:
        raise ConfigError(
            f"function binding file {p} has unknown table(s) {unknown}",
            hint="a binding file has only [inputs] and [outputs]",
        )
    for table in ("inputs", "outputs"):
        if not isinstance(data.get(table, {}), dict):
            raise ConfigError(f"function binding file {p}: '{table}' must be a table")
    return {"inputs": dict(data.get("inputs", {})), "outputs": dict(data.get("outputs", {}))}


def flatten_params(params: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """Nested parameter tables flattened with ``.``: ``{"a": {"b": 1}}`` → ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in (params or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def check_parameters(spec: str, params: Mapping[str, Any], known: Iterable[str]) -> None:
    """Raise a usage error for a parameter name the function does not have."""
    names = list(known)
    unknown = [name for name in params if name not in names]
    if not unknown:
        return
    close = [m for name in unknown for m in difflib.get_close_matches(name, names, n=1)]
    also = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    raise FunctionLoadError(
        f"function under test {spec} has no parameter(s) {', '.join(map(repr, unknown))}{also}",
        hint=f"its parameters: {', '.join(names) or '(none)'}; "
        "fix adsreplay_function_params or the adsreplay_params marker",
    )


@dataclass(frozen=True)
class Binding:
    """How a function's ports bind: ``inputs`` pairs each function input with its
    canonical signal (None: keep the start value), ``outputs`` each function output with
    the name it is stored under."""

    inputs: tuple[tuple[str, str | None], ...]
    outputs: tuple[tuple[str, str], ...]

    def input_of(self, name: str) -> str | None:
        return dict(self.inputs).get(name)

    def output_of(self, name: str) -> str:
        return dict(self.outputs).get(name, name)


def bind(
    spec: str,
    inputs: Iterable[str],
    outputs: Iterable[str],
    binding: Mapping[str, Any] | None,
    *,
    allow_start: bool,
) -> Binding:
    """Bind every input (by name or by the binding file) and name every output.

    Raises a usage error naming each unbound input, with the function's inputs and the
    canonical names, and for binding entries that name no port of the function.
    """
    inputs, outputs = list(inputs), list(outputs)
    table_in = dict((binding or {}).get("inputs", {}))
    table_in.pop("index_base", None)  # array element naming; scalars ignore it
    table_out = dict((binding or {}).get("outputs", {}))
    canonical = canonical_inputs()
    _check_entries(spec, "inputs", table_in, inputs)
    _check_entries(spec, "outputs", table_out, outputs)
    bound: list[tuple[str, str | None]] = []
    unbound: list[str] = []
    for name in inputs:
        target = table_in.get(name, name if name in canonical else None)
        if target is None:
            unbound.append(name)
        elif target == START and allow_start:
            bound.append((name, None))
        elif target not in canonical:
            start = ' or "start" (keep the start value)' if allow_start else ""
            raise FunctionLoadError(
                f"binding of input {name!r} of {spec}: {target!r} is not a canonical signal",
                hint=f"bind it to one of {', '.join(canonical)}{start}",
            )
        else:
            bound.append((name, str(target)))
    if unbound:
        start = '; NAME = "start" keeps an FMU input at its start value' if allow_start else ""
        raise FunctionLoadError(
            f"input(s) {', '.join(map(repr, unbound))} of function under test {spec} are not "
            f"bound to any canonical signal (the function's inputs: {', '.join(inputs)})",
            hint="name them in [inputs] of the adsreplay_function_binding file, e.g. "
            f'{unbound[0]} = "ego_speed"; canonical signals: {", ".join(canonical)}{start}',
        )
    named: list[tuple[str, str]] = []
    for name in outputs:
        target = table_out.get(name, name)
        if name in table_out and target not in OUTPUTS:
            raise FunctionLoadError(
                f"binding of output {name!r} of {spec}: {target!r} is not a canonical output",
                hint=f"canonical outputs: {', '.join(OUTPUTS)}; other outputs are kept as they are",
            )
        named.append((name, str(target)))
    if "aeb_decel" not in (n for _, n in named):
        raise FunctionLoadError(
            f"function under test {spec} has no output bound to 'aeb_decel' "
            f"(its outputs: {', '.join(outputs) or '(none)'})",
            hint='bind its deceleration request in [outputs], e.g. AebDecelReq = "aeb_decel"',
        )
    return Binding(tuple(bound), tuple(named))


def _check_entries(spec: str, table: str, entries: Mapping[str, Any], ports: list[str]) -> None:
    for name, value in entries.items():
        if name not in ports:
            close = difflib.get_close_matches(name, ports, n=1)
            also = f" (did you mean {close[0]!r}?)" if close else ""
            raise FunctionLoadError(
                f"the binding file's [{table}] names {name!r}, which is not one of the "
                f"{table} of {spec}{also}",
                hint=f"its {table}: {', '.join(ports) or '(none)'}",
            )
        if not isinstance(value, str):
            raise FunctionLoadError(
                f"the binding file's [{table}] {name} = {value!r} must be a name in quotes"
            )


def input_matrix(t: np.ndarray, signals: Mapping[str, np.ndarray], binding: Binding) -> np.ndarray:
    """The inputs as one C-contiguous (cycles x inputs) float64 table; an unbound input or
    an absent signal is NaN."""
    n = len(t)
    table = np.full((n, len(binding.inputs)), math.nan)
    for j, (_, canonical) in enumerate(binding.inputs):
        if canonical is None or canonical not in signals:
            continue
        values = np.asarray(signals[canonical], dtype=np.float64)
        if values.shape != (n,):
            raise ValueError(f"signal {canonical!r} has shape {values.shape}; t has {n} samples")
        table[:, j] = values
    return table


def check_outputs(
    outputs: Mapping[str, np.ndarray], t: np.ndarray, spec: str, recording: str | None
) -> None:
    """Raise FunctionError at the first cycle whose ``aeb_decel`` is not a finite number
    ≥ 0 or whose ``fcw`` is not 0/1."""
    decel = outputs["aeb_decel"]
    bad = ~(np.isfinite(decel) & (decel >= 0))
    fcw = outputs.get("fcw")
    bad_fcw = ~((fcw == 0.0) | (fcw == 1.0)) if fcw is not None else np.zeros(len(t), bool)
    if not (bad.any() or bad_fcw.any()):
        return
    i = int(np.flatnonzero(bad | bad_fcw)[0])
    if bad[i]:
        what = f"aeb_decel = {float(decel[i])!r}; expected a finite number ≥ 0 (m/s², magnitude)"
    else:
        what = f"fcw = {float(fcw[i])!r}; expected 0 or 1" if fcw is not None else "fcw"
    raise FunctionError(
        f"the function under test {spec} returned {what} at t = {t[i]:.3f} s (cycle {i})",
        t=float(t[i]),
        recording=recording,
    )


def unbound_info(
    spec: str,
    kind: str,
    inputs: Iterable[str],
    outputs: Iterable[str],
    parameters: Mapping[str, float | None],
    cycle_time: float | None,
) -> FunctionInfo:
    """A function's ports with the bindings that follow from the names alone."""
    canonical = canonical_inputs()
    return FunctionInfo(
        spec=spec,
        kind=kind,
        inputs=tuple(Port(n, binds_to=n if n in canonical else None) for n in inputs),
        outputs=tuple(Port(n, binds_to=n) for n in outputs),
        parameters=tuple(Port(n, start=v) for n, v in parameters.items()),
        cycle_time=cycle_time if cycle_time and cycle_time > 0 else None,
    )

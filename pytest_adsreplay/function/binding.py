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

Object lists: an input named ``obj_dx[i]`` (a field of the object list and a slot) binds
by name to slot ``i - index_base`` of that field (``[inputs] index_base = 1`` when the
function numbers its slots from 1); the binding file binds any input to one slot
(``Radar_dx_3 = "obj_dx[3]"``, slots counted from 0 like the plugin's columns), and
elements ``RadarDx[0]`` … ``RadarDx[n-1]`` to a whole field with one entry
``RadarDx = "obj_dx"``. An array input (an FMI 3 variable with a fixed ``Dimension``,
given to :func:`bind` in ``sizes``) takes a whole field: its name is the field's, or the
binding file names the field. Slot columns a recording lacks are NaN; a recording whose
list has another number of slots than the function takes is a usage error
(:func:`check_object_sizes`).
"""

from __future__ import annotations

import difflib
import math
import re
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


#: ``NAME[i]``: one element of an array the function names element by element.
_ELEMENT = re.compile(r"(.+)\[(\d+)\]")


def canonical_inputs() -> tuple[str, ...]:
    """The canonical signal names an input can be bound to."""
    from pytest_adsreplay.signals import CANONICAL_SIGNALS

    return tuple(CANONICAL_SIGNALS)


def object_fields() -> tuple[str, ...]:
    """The fields of the object list (``obj_dx`` …): an array input or one slot binds to one."""
    from pytest_adsreplay.signals.channel_map import OBJECT_FIELDS

    return tuple(OBJECT_FIELDS)


def object_slot(target: str) -> tuple[str, int] | None:
    """``("obj_dx", 3)`` for the slot column ``obj_dx[3]``, else None."""
    m = _ELEMENT.fullmatch(target)
    if m is None or m.group(1) not in object_fields():
        return None
    return m.group(1), int(m.group(2))


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
            hint="a binding file has only [inputs] and [outputs] (the numbering of the "
            "function's object slots is index_base in [inputs])",
        )
    for table in ("inputs", "outputs"):
        if not isinstance(data.get(table, {}), dict):
            raise ConfigError(f"function binding file {p}: '{table}' must be a table")
    base = data.get("inputs", {}).get("index_base", 0)
    if type(base) is not int or base < 0:
        raise ConfigError(
            f"function binding file {p}: [inputs] index_base = {base!r} must be 0 or 1",
            hint="index_base = 1 when the function names its object slots obj_dx[1] … "
            "obj_dx[count]; 0 (the default) when it counts from obj_dx[0]",
        )
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
    canonical signal, object slot column (``obj_dx[3]``) or, for an array input, object
    field (None: keep the start value), ``outputs`` each function output with the name it
    is stored under; ``sizes`` the number of values of each input (empty: all 1)."""

    inputs: tuple[tuple[str, str | None], ...]
    outputs: tuple[tuple[str, str], ...]
    sizes: tuple[int, ...] = ()

    def input_of(self, name: str) -> str | None:
        return dict(self.inputs).get(name)

    def output_of(self, name: str) -> str:
        return dict(self.outputs).get(name, name)

    def size_of(self, j: int) -> int:
        """The number of values of input ``j`` (1 unless it is an array)."""
        return self.sizes[j] if self.sizes else 1

    def offsets(self) -> list[int]:
        """The first column of each input in :func:`input_matrix`'s table (one more entry:
        the table's width)."""
        out = [0]
        for j in range(len(self.inputs)):
            out.append(out[-1] + self.size_of(j))
        return out

    def columns(self) -> list[str | None]:
        """The signal each column of the input table holds (an array input: one column
        per slot of its field)."""
        cols: list[str | None] = []
        for j, (_, target) in enumerate(self.inputs):
            size = self.size_of(j)
            if size == 1 and (target is None or target not in object_fields()):
                cols.append(target)
            else:
                cols.extend(None if target is None else f"{target}[{k}]" for k in range(size))
        return cols

    def object_slots(self) -> dict[str, tuple[int, str]]:
        """``{field: (slots the function takes, the input that says so)}`` for every
        object field an input binds: an array input's size, or one more than the highest
        slot bound element by element."""
        out: dict[str, tuple[int, str]] = {}
        fields = object_fields()
        for j, (name, target) in enumerate(self.inputs):
            if target is None:
                continue
            if target in fields:
                need, field = self.size_of(j), target
            else:
                slot = object_slot(target)
                if slot is None:
                    continue
                field, need = slot[0], slot[1] + 1
            if field not in out or need > out[field][0]:
                out[field] = (need, name)
        return out


def bind(
    spec: str,
    inputs: Iterable[str],
    outputs: Iterable[str],
    binding: Mapping[str, Any] | None,
    *,
    allow_start: bool,
    sizes: Mapping[str, int] | None = None,
) -> Binding:
    """Bind every input (by name or by the binding file) and name every output.

    ``sizes`` gives the number of elements of array inputs (FMI 3 variables with a
    fixed Dimension); they bind to a whole object field. Raises a usage error naming
    each unbound input, with the function's inputs and the canonical names, and for
    binding entries that name no port of the function.
    """
    inputs, outputs = list(inputs), list(outputs)
    sizes = dict(sizes or {})
    table_in = dict((binding or {}).get("inputs", {}))
    base = table_in.pop("index_base", 0)  # the function's own slot numbering
    if type(base) is not int or base < 0:
        raise FunctionLoadError(
            f"the binding's [inputs] index_base = {base!r} must be 0 or 1",
            hint="1 when the function names its object slots obj_dx[1] … obj_dx[count]",
        )
    table_out = dict((binding or {}).get("outputs", {}))
    canonical = canonical_inputs()
    _check_entries(spec, "inputs", table_in, inputs)
    _check_entries(spec, "outputs", table_out, outputs)
    bound: list[tuple[str, str | None]] = []
    unbound: list[str] = []
    for name in inputs:
        target = _input_target(spec, name, table_in, base, sizes, canonical)
        if target is None:
            unbound.append(name)
        elif target == START and allow_start:
            bound.append((name, None))
        else:
            _check_target(spec, name, target, name in sizes, allow_start)
            bound.append((name, target))
    if unbound:
        start = '; NAME = "start" keeps an FMU input at its start value' if allow_start else ""
        raise FunctionLoadError(
            f"input(s) {', '.join(map(repr, unbound))} of function under test {spec} are not "
            f"bound to any canonical signal (the function's inputs: {', '.join(inputs)})",
            hint="name them in [inputs] of the adsreplay_function_binding file, e.g. "
            f"{_example(unbound[0], sizes)}; canonical signals: {', '.join(canonical)}; "
            f'object list slots: "obj_dx[0]" … (fields {", ".join(object_fields())}){start}',
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
    in_sizes = tuple(sizes.get(n, 1) for n in inputs) if sizes else ()
    return Binding(tuple(bound), tuple(named), in_sizes)


def _example(name: str, sizes: Mapping[str, int]) -> str:
    """A binding file entry for input ``name``: an array takes a field."""
    if name in sizes:
        return f'{name} = "obj_dx"'
    element = _ELEMENT.fullmatch(name)
    if element is not None:
        return f'{element.group(1)} = "obj_dx" (all its elements) or {name} = "ego_speed"'
    return f'{name} = "ego_speed"'


def _input_target(
    spec: str,
    name: str,
    table: Mapping[str, Any],
    base: int,
    sizes: Mapping[str, int],
    canonical: tuple[str, ...],
) -> str | None:
    """What input ``name`` binds to before checking: the binding file's entry for it, for
    the array it is an element of, or its own name (a canonical signal, an object field
    for an array input, an object slot for ``obj_dx[i]``); None when nothing binds it."""
    if name in table:
        return str(table[name])
    element = _ELEMENT.fullmatch(name)
    if element is not None:
        array, index = element.group(1), int(element.group(2))
        field = str(table.get(array, array))
        if array in table and field not in object_fields():
            if field == START:
                return START
            raise FunctionLoadError(
                f"the binding file's [inputs] {array} = {field!r} binds the elements "
                f"{array}[…] of an array of {spec}, and {field!r} is not an object field",
                hint=f"bind the array to one of {', '.join(object_fields())}, or its elements "
                f'one by one ({name} = "ego_speed")',
            )
        if field in object_fields():
            if index < base:
                raise FunctionLoadError(
                    f"input {name!r} of {spec} names object slot {index}, below "
                    f"index_base = {base} of the binding file",
                    hint="index_base = 0 when the function counts its slots from [0]",
                )
            return f"{field}[{index - base}]"
    if name in canonical or (name in sizes and name in object_fields()):
        return name
    return None


def _check_target(spec: str, name: str, target: str, array: bool, allow_start: bool) -> None:
    """A usage error unless ``target`` is something input ``name`` can take."""
    fields = object_fields()
    if array:
        if target not in fields:
            raise FunctionLoadError(
                f"binding of array input {name!r} of {spec}: {target!r} is not an object "
                "field; an array input takes the whole field, one element per slot",
                hint=f"bind it to one of {', '.join(fields)}",
            )
        return
    if target in canonical_inputs() or object_slot(target) is not None:
        return
    start = ' or "start" (keep the start value)' if allow_start else ""
    if target in fields:
        raise FunctionLoadError(
            f"binding of input {name!r} of {spec}: {target!r} is a whole object field, and "
            "the input is a single value",
            hint=f'bind one slot, e.g. {name} = "{target}[0]", or bind the elements '
            f'{name}[0] … {name}[n-1] of an array with {name} = "{target}"',
        )
    raise FunctionLoadError(
        f"binding of input {name!r} of {spec}: {target!r} is not a canonical signal",
        hint=f"bind it to one of {', '.join(canonical_inputs())}, an object slot such as "
        f'"obj_dx[0]"{start}',
    )


def _check_entries(spec: str, table: str, entries: Mapping[str, Any], ports: list[str]) -> None:
    arrays = {m.group(1) for m in map(_ELEMENT.fullmatch, ports) if m is not None}
    for name, value in entries.items():
        if name not in ports and not (table == "inputs" and name in arrays):
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
    """The inputs as one C-contiguous (cycles x values) float64 table, one column per
    value (an array input has one per element, see :meth:`Binding.columns`); an unbound
    input, an absent signal or a slot the recording's object list lacks is NaN.

    The whole recording at once (cycles x values x 8 bytes: 80 MB for 10 minutes of a
    166-value input row); :class:`InputBlocks` gives the same table a block at a time."""
    n = len(t)
    return InputBlocks(t, signals, binding, block=n).rows(0, n)


#: Cycles per block of :class:`InputBlocks`: 4096 rows of 166 values are 5.4 MB.
INPUT_BLOCK = 4096


class InputBlocks:
    """The table of :func:`input_matrix` a block of cycles at a time, in one reused
    (``block`` x values) buffer: the memory of a replay's inputs is bounded by the block,
    not the recording. The signals are checked when it is made; unbound and absent
    columns are NaN once and never written again."""

    def __init__(
        self,
        t: np.ndarray,
        signals: Mapping[str, np.ndarray],
        binding: Binding,
        *,
        block: int = INPUT_BLOCK,
    ) -> None:
        n = len(t)
        columns = binding.columns()
        self.n = n
        self.block = max(1, block)
        self.sources: list[tuple[int, np.ndarray]] = []
        for j, name in enumerate(columns):
            if name is None or name not in signals:
                continue
            values = np.asarray(signals[name], dtype=np.float64)
            if values.shape != (n,):
                raise ValueError(f"signal {name!r} has shape {values.shape}; t has {n} samples")
            self.sources.append((j, values))
        self._buffer = np.full((min(self.block, n), len(columns)), math.nan)

    def starts(self) -> range:
        """The first cycle of each block."""
        return range(0, self.n, self.block)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """The C-contiguous table of the cycles ``start`` … ``stop - 1`` (at most
        ``block`` of them), valid until the next call (it reuses the buffer)."""
        if stop - start > len(self._buffer):
            raise ValueError(f"rows {start}:{stop} exceed the block of {len(self._buffer)}")
        table = self._buffer[: stop - start]
        for j, values in self.sources:
            table[:, j] = values[start:stop]
        return table


def object_count(signals: Mapping[str, Any]) -> int | None:
    """The number of slots of the recording's object list (its ``obj_dx`` columns), or
    None when the signals carry no object list."""
    slots = [s[1] for s in map(object_slot, signals) if s is not None and s[0] == "obj_dx"]
    return max(slots) + 1 if slots else None


def check_object_sizes(
    spec: str, binding: Binding, signals: Mapping[str, Any], recording: str | None
) -> None:
    """A usage error, before the first cycle, when the function takes another number of
    slots of an object field than the recording's object list has. Without an object
    list the slot inputs are NaN and nothing is checked."""
    count = object_count(signals)
    if count is None:
        return
    for field, (need, name) in sorted(binding.object_slots().items()):
        if need == count:
            continue
        more = need > count
        hint = (
            f"make them agree: [objects] count = {need} in the channel map, or "
            f"{'fewer' if more else 'more'} slots in the function (bind {field}[0] … "
            f"{field}[{count - 1}] in the adsreplay_function_binding file)"
        )
        if need == count + 1 and f"{field}[0]" not in binding.columns():
            hint = (
                f"the function has no slot 0 of {field}: it counts its slots from 1, so set "
                f"index_base = 1 in [inputs] of the adsreplay_function_binding file; or {hint}"
            )
        raise FunctionLoadError(
            f"the function under test {spec} takes {need} slots of the object list's {field} "
            f"(input {name!r}), and the recording's object list has {count}",
            recording=recording,
            hint=hint,
        )


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
    sizes: Mapping[str, int] | None = None,
) -> FunctionInfo:
    """A function's ports with the bindings that follow from the names alone (``sizes``:
    the number of elements of array inputs)."""
    canonical, sizes = canonical_inputs(), dict(sizes or {})
    return FunctionInfo(
        spec=spec,
        kind=kind,
        inputs=tuple(
            Port(n, binds_to=_by_name(n, canonical, sizes), kind="array", size=sizes[n])
            if n in sizes
            else Port(n, binds_to=_by_name(n, canonical, sizes))
            for n in inputs
        ),
        outputs=tuple(Port(n, binds_to=n) for n in outputs),
        parameters=tuple(Port(n, start=v) for n, v in parameters.items()),
        cycle_time=cycle_time if cycle_time and cycle_time > 0 else None,
    )


def _by_name(name: str, canonical: tuple[str, ...], sizes: Mapping[str, int]) -> str | None:
    """What input ``name`` binds to by its name alone (slots counted from 0)."""
    try:
        return _input_target("", name, {}, 0, sizes, canonical)
    except FunctionLoadError:
        return None

"""``adsreplay function SPEC``: a function's inputs, outputs, parameters, cycle time and how
each binds; ``adsreplay function --header`` prints the C ABI header."""

from __future__ import annotations

import argparse
import sys
from typing import Any

_KINDS = {"python": "Python function", "fmu": "FMU", "c": "C shared library"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fn = subparsers.add_parser(
        "function",
        help="a function's inputs, outputs, parameters, cycle time and binding; --header: "
        "the C ABI",
        description="Show how a function under test (module:attr, x.fmu or a shared library) "
        "binds to the canonical signals and outputs.",
    )
    fn.add_argument("spec", nargs="?", metavar="PATH_OR_SPEC", help="module:attr, x.fmu or lib.so")
    fn.add_argument(
        "--binding", metavar="FILE", default=None, help="binding TOML ([inputs], [outputs])"
    )
    fn.add_argument(
        "--params",
        metavar="TOML",
        default=None,
        help="parameters as a TOML inline table, e.g. '{full_ttc = 1.0}'",
    )
    fn.add_argument(
        "--header", action="store_true", help="print the C ABI header adsreplay_function.h"
    )
    fn.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pytest_adsreplay.errors import FunctionLoadError, UsageError
    from pytest_adsreplay.function import function_kind, open_function
    from pytest_adsreplay.function.binding import load_binding
    from pytest_adsreplay.function.native import header_path
    from pytest_adsreplay.function.protocol import FunctionOptions

    if args.header:
        sys.stdout.write(header_path().read_text(encoding="utf-8"))
        return 0
    if not args.spec:
        raise UsageError(
            "adsreplay function needs PATH_OR_SPEC (or --header)",
            hint="e.g. adsreplay function build/libaeb.so --binding binding.toml",
        )
    binding = load_binding(args.binding) if args.binding else None
    params = _params(args.params)
    kind = function_kind(args.spec)
    try:
        adapter = open_function(args.spec, params, FunctionOptions(binding=binding))
    except FunctionLoadError as exc:
        if kind == "python":
            raise
        print(format_info(_describe(args.spec, kind)))
        print(f"\nadsreplay function: error: {exc}", file=sys.stderr)
        return 2
    try:
        print(format_info(adapter.info()))
    finally:
        adapter.close()
    return 0


def _describe(spec: str, kind: str) -> Any:
    if kind == "fmu":
        from pytest_adsreplay.function.fmu import describe

        return describe(spec)
    from pytest_adsreplay.function.native import describe as describe_c

    return describe_c(spec)


def _params(text: str | None) -> dict[str, Any]:
    import tomllib

    from pytest_adsreplay.errors import UsageError

    if not text:
        return {}
    try:
        value = tomllib.loads(f"params = {text}")["params"]
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(
            f"--params {text!r} is not a TOML inline table: {exc}",
            hint="e.g. --params '{full_ttc = 1.0, ctrl = {gain = 2}}'",
        ) from None
    if not isinstance(value, dict):
        raise UsageError(f"--params {text!r} is not a TOML inline table", hint="wrap it in {}")
    return value


def format_info(info: Any) -> str:
    """The text ``adsreplay function`` prints for a FunctionInfo."""
    lines = [f"function: {info.spec} ({_KINDS.get(info.kind, info.kind)})"]
    ct = (
        f"{info.cycle_time:g} s (declared by the function)"
        if info.cycle_time
        else ("not declared (adsreplay_cycle_time, default 0.01 s)")
    )
    lines.append(f"cycle time: {ct}")
    rows = _input_rows(info.inputs)
    names = [name for name, _ in rows] + [p.name for p in (*info.outputs, *info.parameters)]
    width = max([len(n) for n in names] + [4])
    lines.append(f"inputs ({len(info.inputs)}):")
    for name, how in rows:
        lines.append(f"  {name:<{width}}  <- {how}")
    lines.append(f"outputs ({len(info.outputs)}):")
    for p in info.outputs:
        target = p.binds_to or p.name
        how = f"-> {target}" if target in ("fcw", "aeb_decel") else f"-> kept as output {target!r}"
        lines.append(f"  {p.name:<{width}}  {how}")
    lines.append(f"parameters ({len(info.parameters)}):")
    for p in info.parameters:
        value = "" if p.start is None else f" = {p.start:g}"
        lines.append(f"  {p.name}{value}")
    lines.extend(f"note: {note}" for note in info.notes)
    lines.extend(f"note: {note}" for note in _object_notes(info.inputs))
    return "\n".join(lines)


def _input_rows(inputs: Any) -> list[tuple[str, str]]:
    """One row per input, except that a run of elements bound to consecutive slots of
    one object field (``obj_dx[0]`` … ``obj_dx[31]``) is one row."""
    from pytest_adsreplay.function.binding import object_slot

    rows: list[tuple[str, str]] = []
    run: list[tuple[str, int, str, int]] = []  # (array name, index, field, slot)

    def flush() -> None:
        if not run:
            return
        (array, first, field, slot), (_, last, _, end) = run[0], run[-1]
        how = "by name" if array == field and first == slot else "binding file"
        if first != slot:
            how += f", index_base {first - slot}"
        name = f"{array}[{first}]" if len(run) == 1 else f"{array}[{first}] … {array}[{last}]"
        span = f"slot {slot}" if len(run) == 1 else f"slots {slot} … {end}"
        rows.append((name, f"{field} {span} of the object list ({how})"))
        run.clear()

    for p in inputs:
        element, target = _element(p.name), object_slot(p.binds_to or "")
        if element is not None and target is not None:
            item = (*element, *target)
            if run and not _continues(run[-1], item):
                flush()
            run.append(item)
            continue
        flush()
        rows.append((p.name, _input_binding(p)))
    flush()
    return rows


def _element(name: str) -> tuple[str, int] | None:
    import re

    m = re.fullmatch(r"(.+)\[(\d+)\]", name)
    return (m.group(1), int(m.group(2))) if m else None


def _continues(a: tuple[str, int, str, int], b: tuple[str, int, str, int]) -> bool:
    return a[0] == b[0] and a[2] == b[2] and b[1] == a[1] + 1 and b[3] == a[3] + 1


def _object_notes(inputs: Any) -> list[str]:
    """How many slots of each object field the inputs take."""
    from pytest_adsreplay.function.binding import object_fields, object_slot

    slots: dict[str, int] = {}
    for p in inputs:
        target = p.binds_to or ""
        slot = object_slot(target)
        if slot is not None:
            slots[slot[0]] = max(slots.get(slot[0], 0), slot[1] + 1)
        elif target in object_fields() and p.size > 1:
            slots[target] = max(slots.get(target, 0), p.size)
    if not slots:
        return []
    counts = sorted(set(slots.values()))
    need = " or ".join(map(str, counts))
    if len(counts) == 1:
        taken = f"{counts[0]} slots of {', '.join(slots)}"
    else:
        taken = ", ".join(f"{n} slots of {f}" for f, n in slots.items())
    return [
        f"object list: takes {taken}; a recording's list must have exactly that many "
        f"([objects] count = {need} in the channel map), one without a list gives NaN"
    ]


def _input_binding(port: Any) -> str:
    if port.binds_to is None:
        if port.start is not None:
            return f"start value {port.start:g} (bound to nothing)"
        return "UNBOUND: name it in [inputs] of the binding file"
    how = "by name" if port.binds_to == port.name else "binding file"
    if port.kind == "array":
        span = f"slots 0 … {port.size - 1}"
        return f"{port.binds_to} {span} of the object list ({how}, an array of {port.size})"
    return f"{port.binds_to} ({how})"

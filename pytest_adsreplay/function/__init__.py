"""The function under test, in any of its forms, behind one protocol.

:func:`open_function` chooses the adapter from the form of the spec: a path ending in
``.fmu`` is an FMU, one ending in ``.so``, ``.dylib`` or ``.dll`` a C shared library,
anything else ``module:attr`` (or a class/factory object) a Python function. Stages,
the supervised host and ``replay_file`` use only this and
:class:`~pytest_adsreplay.function.protocol.FunctionAdapter`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from pytest_adsreplay.errors import FunctionLoadError
from pytest_adsreplay.function.protocol import FunctionAdapter, FunctionOptions

__all__ = ["FunctionAdapter", "FunctionOptions", "function_kind", "open_function"]

#: Adapter module per function kind; each exposes ``open_adapter(spec, params, options)``.
ADAPTERS = {
    "python": "pytest_adsreplay.function.python",
    "fmu": "pytest_adsreplay.function.fmu",
    "c": "pytest_adsreplay.function.native",
}
NATIVE_SUFFIXES = (".so", ".dylib", ".dll")
_FORMS = {"python": "a Python function", "fmu": "an FMU", "c": "a C shared library"}


def function_kind(spec: str | Callable[..., Any]) -> str:
    """``"fmu"``, ``"c"`` or ``"python"``, from the form of ``spec``."""
    if isinstance(spec, str):
        lowered = spec.strip().lower()
        if lowered.endswith(".fmu"):
            return "fmu"
        if lowered.endswith(NATIVE_SUFFIXES):
            return "c"
    return "python"


def open_function(
    spec: str | Callable[..., Any],
    params: Mapping[str, Any] | None = None,
    options: FunctionOptions | None = None,
) -> FunctionAdapter:
    """Load the function under test in this process, as the adapter its form needs.

    Raises FunctionLoadError when it cannot be loaded (or its form is not available).
    """
    kind = function_kind(spec)
    name = ADAPTERS[kind]
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise FunctionLoadError(
            f"function under test {spec!r} is {_FORMS[kind]}, and this installation of "
            "pytest-adsreplay cannot load that form",
            hint="use a Python function (module:attr), or upgrade pytest-adsreplay",
        ) from None
    adapter: FunctionAdapter = module.open_adapter(
        spec, dict(params or {}), options or FunctionOptions()
    )
    return adapter

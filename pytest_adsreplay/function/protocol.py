"""The seam for every kind of function under test: Python, FMU, C shared library.

A :class:`FunctionAdapter` is a loaded function that steps whole recordings. The stages,
the supervised host and ``replay_file`` only ever see this protocol; which adapter serves
a ``--aeb-function`` value is decided by :func:`pytest_adsreplay.function.open_function`
from the value's form (``module:attr``, a path ending in ``.fmu``, or a shared library).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

#: The canonical outputs every function form produces.
OUTPUTS: tuple[str, ...] = ("fcw", "aeb_decel")


@dataclass(frozen=True)
class Port:
    """One input, output or parameter of a function under test, as the function names it."""

    name: str
    binds_to: str | None = None  # canonical signal/output it is bound to; None when unbound
    kind: str = "float"  # "float", "int", "bool" or "array"
    size: int = 1
    start: float | None = None


@dataclass(frozen=True)
class FunctionInfo:
    """What ``adsreplay function SPEC`` prints: the function's interface and its binding."""

    spec: str
    kind: str  # "python", "fmu" or "c"
    inputs: tuple[Port, ...] = ()
    outputs: tuple[Port, ...] = ()
    parameters: tuple[Port, ...] = ()
    cycle_time: float | None = None
    notes: tuple[str, ...] = field(default=())


class FunctionAdapter(Protocol):
    """A loaded function under test that steps whole recordings.

    ``run`` resets the function, steps it once per cycle of ``t`` in time order with the
    canonical ``signals`` (arrays on ``t``; a name in ``inputs`` that is absent is NaN) and
    returns the outputs as arrays on ``t``: always ``fcw`` and ``aeb_decel``, plus every
    other numeric output. A bad result or a failure inside the function raises
    :class:`~pytest_adsreplay.errors.FunctionError` naming the cycle time.

    In the supervised host (:mod:`pytest_adsreplay.function.host`) the adapter's
    ``progress`` attribute is set, when the adapter allows it, to a writable one-element
    float64 buffer (``progress[0] = t``): an adapter writes the time of each cycle (or
    of the first cycle of each batch) into it before stepping it, so that a crash in the
    function can be reported "at or after t = …". Without it a crash is reported as
    "before its first cycle".
    """

    kind: str
    spec: str

    @property
    def cycle_time(self) -> float | None:
        """The function's own cycle time in seconds, or None when it declares none."""
        ...

    def info(self) -> FunctionInfo:
        """Inputs, outputs, parameters, cycle time and binding."""
        ...

    def run(
        self,
        t: np.ndarray,
        signals: Mapping[str, np.ndarray],
        *,
        inputs: tuple[str, ...] = (),
        recording: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Reset, then step every cycle; the outputs as arrays on ``t``."""
        ...

    def close(self) -> None:
        """Release what the function holds (a native library, an FMU instance)."""
        ...


@dataclass(frozen=True)
class FunctionOptions:
    """Settings every adapter receives besides the spec and the parameters.

    ``binding`` is the parsed ``adsreplay_function_binding`` TOML (``{"inputs": {...},
    "outputs": {...}}``) or None; ``cycle_time`` the configured ``adsreplay_cycle_time``
    (used when the function declares none); ``object_count`` the object-list size when the
    recording has one.
    """

    binding: Mapping[str, Any] | None = None
    cycle_time: float | None = None
    object_count: int | None = None


#: How an adapter is built: ``factory(spec, params, options)``. Python specs are served by
#: ``pytest_adsreplay.function.python``, ``*.fmu`` by ``pytest_adsreplay.function.fmu``,
#: shared libraries (``.so``, ``.dylib``, ``.dll``) by ``pytest_adsreplay.function.native``;
#: each module exposes ``open_adapter(spec, params, options) -> FunctionAdapter``.
AdapterFactory = Callable[[str, Mapping[str, Any], FunctionOptions], FunctionAdapter]

"""One replay, inline: read → step → KPIs, with each stage callable on its own.

The RQ stages (``stages.py``) call the same three functions one by one, so a function bug
found in CI reproduces here without any queue::

    from pytest_adsreplay import replay_file
    r = replay_file("recordings/ncap/CCRs_40kph.mf4", "pytest_adsreplay.reference:TtcAeb")
    r.brake_time, r.ttc_at_brake, r.outputs["aeb_decel"]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_adsreplay.errors import AdsReplayError
from pytest_adsreplay.function.python import FunctionSpec, declared_cycle_time, describe
from pytest_adsreplay.kpi.registry import KPI_NAMES

if TYPE_CHECKING:
    from pytest_adsreplay.kpi.compute import KpiSettings
    from pytest_adsreplay.signals import ChannelMap, Signals

KPI_SETTING_NAMES = (
    "brake_threshold",
    "actuator_delay",
    "brake_jerk",
    "path_half_width",
    "axle_to_front",
)


@dataclass
class ReplayResult:
    """What one replay produced: the §4 KPIs as attributes, signals and outputs on ``t``."""

    recording: str
    t: np.ndarray
    signals: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    kpis: dict[str, Any]
    cycle_time: float
    function: str = ""
    sources: dict[str, str] = field(default_factory=dict)

    fcw_time: float | None = None
    brake_time: float | None = None
    ttc_at_fcw: float | None = None
    ttc_at_brake: float | None = None
    fcw_lead_time: float | None = None
    min_ttc: float | None = None
    max_decel: float | None = None
    activations: list[dict[str, float]] = field(default_factory=list)
    collision: bool = False
    impact_speed: float | None = None
    min_distance: float | None = None
    recorded_brake_time: float | None = None
    target_id_at_brake: float | None = None
    reacted_to_at_brake: float | None = None
    braked_for_out_of_path: bool | None = None

    def __post_init__(self) -> None:
        for name, value in self.kpis.items():
            if name in _KPI_FIELDS:
                setattr(self, name, value)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.kpis.items() if k != "activations")
        return f"ReplayResult({self.recording!r}, {shown})"

    @classmethod
    def deferred(
        cls, load: Callable[[], tuple[dict[str, Any], dict[str, Any]]], **fields: Any
    ) -> ReplayResult:
        """A result whose ``t``, ``signals`` and ``outputs`` come from ``load()`` (signals
        with ``t``, outputs) on first use: the plugin's, as most tests read only KPIs
        (the plugin loads the ones still referenced before its session ends)."""
        result = cls(t=np.zeros(0), signals={}, outputs={}, **fields)
        for name in _ARRAYS:
            del result.__dict__[name]
        result.__dict__["_load"] = load
        return result

    def load(self) -> None:
        """Load deferred arrays now (nothing to do for a result that has them)."""
        load = self.__dict__.get("_load")
        if load is None:
            return
        try:
            signals, outputs = load()
        except AttributeError as exc:  # would read as "no such attribute" to the caller
            raise RuntimeError(f"loading the arrays of {self.recording} failed: {exc}") from exc
        self.__dict__.pop("_load", None)
        self.t, self.signals, self.outputs = signals.get("t"), signals, outputs

    def __getattr__(self, name: str) -> Any:
        if name in _ARRAYS and "_load" in self.__dict__:
            self.load()
            return getattr(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getstate__(self) -> dict[str, Any]:
        self.load()  # a pickle carries the arrays, not the loader
        return self.__dict__


_ARRAYS = ("t", "signals", "outputs")

#: Every KPI of the registry is an attribute (the typed fields above document the built-in
#: ones; a KPI added to the registry becomes an attribute without a field).
_KPI_FIELDS = frozenset(KPI_NAMES)


def kpi_settings(**settings: float) -> KpiSettings:
    """KpiSettings from the SPEC §4 knob names; an unknown name is a TypeError."""
    from pytest_adsreplay.kpi.compute import KpiSettings

    unknown = set(settings) - set(KPI_SETTING_NAMES)
    if unknown:
        raise TypeError(
            f"unknown replay setting(s) {sorted(unknown)}; known: {', '.join(KPI_SETTING_NAMES)}"
        )
    return KpiSettings(**{k: float(v) for k, v in settings.items()})


def resolve_cycle_time(fn: Any, cycle_time: float | None) -> float:
    """Explicit cycle time, else the function's declared one, else 10 ms (``fn``: an
    adapter, a function host or a Python function object)."""
    from pytest_adsreplay.signals import DEFAULT_CYCLE_TIME

    if cycle_time is not None:
        return float(cycle_time)
    return declared_cycle_time(fn) or DEFAULT_CYCLE_TIME


def read(
    path: str | Path,
    channel_map: ChannelMap | str | Path | None,
    cycle_time: float,
    *,
    recording_id: str | None = None,
    max_gap: float = 0.2,
    nominal_speed: float | None = None,
    expect_target: str | None = None,
    gate: bool = True,
) -> Signals:
    """Stage 1: MF4 → canonical signals on the cycle grid, through the data-quality gate.

    A recording the gate rejects raises InvalidRecordingError (see :mod:`.quality`:
    ``max_gap`` in s, the sidecar's ``nominal_speed`` in km/h, ``expect_target`` the
    reason a target object must be present, or None); ``gate=False`` only reads.
    """
    from pytest_adsreplay.signals import ChannelMap, load_channel_map, read_signals
    from pytest_adsreplay.signals.quality import GateSettings
    from pytest_adsreplay.signals.quality import gate as run_gate

    cmap = channel_map if isinstance(channel_map, ChannelMap) else load_channel_map(channel_map)
    rid = recording_id or str(path)
    try:
        sig = read_signals(path, cmap, cycle_time, recording_id=rid, max_gap=max_gap)
        if gate:
            settings = GateSettings(max_gap, nominal_speed, expect_target)
            run_gate(sig, settings, recording=rid)
    except AdsReplayError as exc:
        raise exc.with_recording(rid) from None
    return sig


def step(
    fn: Any,
    t: np.ndarray,
    values: Mapping[str, np.ndarray],
    *,
    recording_id: str | None = None,
    timeout: float | None = None,
    timeout_label: str | None = None,
) -> dict[str, np.ndarray]:
    """Stage 2: signals → function outputs (``fcw``, ``aeb_decel`` and extras).

    ``fn`` is a supervised :class:`~pytest_adsreplay.function.host.FunctionHost` (the
    stages' case: ``timeout`` bounds the run, ``timeout_label`` names that timeout in
    the error), a loaded adapter (stepped in this
    process), or a Python object with ``step(frame)``.
    """
    from pytest_adsreplay.function.host import FunctionHost
    from pytest_adsreplay.function.stepping import run_function
    from pytest_adsreplay.signals import CANONICAL_SIGNALS

    if isinstance(fn, FunctionHost):
        return fn.run(
            t,
            values,
            inputs=CANONICAL_SIGNALS,
            recording=recording_id,
            timeout=timeout,
            timeout_label=timeout_label,
        )
    if callable(getattr(fn, "run", None)) and isinstance(getattr(fn, "kind", None), str):
        outputs: dict[str, np.ndarray] = fn.run(
            t, values, inputs=CANONICAL_SIGNALS, recording=recording_id
        )
        return outputs
    return run_function(fn, t, values, inputs=CANONICAL_SIGNALS, recording=recording_id)


def open_for_replay(
    function: FunctionSpec,
    params: Mapping[str, Any] | None,
    cycle_time: float | None,
    host: bool | None,
    binding: Mapping[str, Any] | str | Path | None = None,
) -> Any:
    """The function for :func:`replay_file`: a supervised host (``host=True``; the
    default for FMU and C functions, whose crash must not end this process), else an
    adapter loaded in this process (a breakpoint in a Python function works).
    ``binding`` is a binding TOML file or its parsed contents (FMU and C functions)."""
    from pytest_adsreplay.function import function_kind, open_function
    from pytest_adsreplay.function.binding import load_binding
    from pytest_adsreplay.function.protocol import FunctionOptions

    if isinstance(binding, str | Path):
        binding = load_binding(binding)
    options = FunctionOptions(binding=binding, cycle_time=cycle_time)
    if host is None:
        host = function_kind(function) != "python"
    if not host:
        return open_function(function, params, options)
    from pytest_adsreplay.function.host import acquire

    return acquire(describe(function), params, options)


def kpis(
    t: np.ndarray,
    values: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
    settings: KpiSettings | None = None,
) -> dict[str, Any]:
    """Stage 3: outputs → the SPEC §4 KPIs (a JSON-able dict)."""
    from pytest_adsreplay.kpi.compute import KpiSettings, compute_kpis

    return compute_kpis(t, values, outputs, settings or KpiSettings())


def replay_file(
    path: str | Path,
    function: FunctionSpec,
    *,
    channel_map: ChannelMap | str | Path | None = None,
    params: Mapping[str, Any] | None = None,
    cycle_time: float | None = None,
    recording_id: str | None = None,
    max_gap: float = 0.2,
    nominal_speed: float | None = None,
    expect_target: bool | None = None,
    sidecar: bool = True,
    host: bool | None = None,
    binding: Mapping[str, Any] | str | Path | None = None,
    **settings: float,
) -> ReplayResult:
    """Replay one recording through ``function`` (``module:attr`` or the class/factory).

    ``settings`` takes the SPEC §4 knobs by name: ``brake_threshold`` (m/s²),
    ``actuator_delay`` (s) and ``brake_jerk`` (m/s³, ``math.inf`` for an ideal step).
    The data-quality gate runs as in the read stage: ``max_gap`` (s), and the sidecar's
    ``nominal_speed`` and target expectation unless given here (``sidecar=False``
    ignores the sidecar); an invalid recording raises InvalidRecordingError.

    A Python function is stepped in this process (a breakpoint in it works);
    ``host=True`` steps it in the supervised host process the stages use, where a crash
    or ``os._exit`` becomes a FunctionError. FMU and C functions always run there unless
    ``host=False``; ``binding`` (a TOML file or its contents) binds their ports whose
    names are not canonical.
    """
    ks = kpi_settings(**settings)
    fn = open_for_replay(function, params, cycle_time, host, binding)
    ct = resolve_cycle_time(fn, cycle_time)
    rid = recording_id or Path(path).name
    target = "replay_file(expect_target=True)" if expect_target else None
    if sidecar:
        from pytest_adsreplay.recordings import load_recording, sidecar_path
        from pytest_adsreplay.signals.quality import expects_target

        if sidecar_path(Path(path)).is_file():
            rec = load_recording(Path(path))
            if nominal_speed is None:
                nominal_speed = rec.nominal_speed
            if expect_target is None:
                target = expects_target(rec.scenario, rec.expect, rec.meta)
    sig = read(
        path,
        channel_map,
        ct,
        recording_id=rid,
        max_gap=max_gap,
        nominal_speed=nominal_speed,
        expect_target=target,
    )
    outputs = step(fn, sig.t, sig.values, recording_id=rid)
    result = kpis(sig.t, sig.values, outputs, ks)
    return ReplayResult(
        recording=rid,
        t=sig.t,
        signals={"t": sig.t, **sig.values},
        outputs=outputs,
        kpis=result,
        cycle_time=ct,
        function=describe(function),
        sources=dict(sig.sources),
    )

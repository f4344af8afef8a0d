"""One recording's fleet facts from what a replay produced and what its sidecar says."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_adsreplay.fleet.stats import Event, RecordingFacts, exposure, onsets

if TYPE_CHECKING:
    from pytest_adsreplay.recordings.recording import Recording


def _expected(recording: Recording, name: str) -> bool | None:
    """The sidecar's ``[expect] brake``/``fcw`` (True/False), or None when it says nothing."""
    for bound in recording.expect:
        if bound.name == name and isinstance(bound.exact, bool):
            return bound.exact
    return None


def _optional_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if np.isfinite(number) else None


def activation_events(rid: str, kpis: Mapping[str, Any]) -> tuple[Event, ...]:
    """The braking activations of the KPIs as events; the first one carries the KPI
    target's id at brake time and whether the function braked for an object out of the
    path (both known only at ``brake_time``, the first activation's start)."""
    acts: Sequence[Mapping[str, Any]] = kpis.get("activations") or ()
    events = []
    for i, act in enumerate(acts):
        peak = act.get("peak_decel")
        first = i == 0
        events.append(
            Event(
                rid,
                float(act["start"]),
                None if peak is None else float(peak),
                _optional_int(kpis.get("target_id_at_brake")) if first else None,
                bool(kpis.get("braked_for_out_of_path")) if first else False,
            )
        )
    return tuple(events)


def facts_from_replay(
    recording: Recording,
    status: str,
    passed: bool,
    kpis: Mapping[str, Any],
    t: np.ndarray | None,
    signals: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
    *,
    label: str | None = None,
) -> RecordingFacts:
    """The :class:`RecordingFacts` of one replayed recording.

    Distance and driving time are the exposure of ``signals["ego_speed"]`` on ``t``;
    warnings are the onsets of the ``fcw`` output; activations come from the
    ``activations`` KPI. ``label`` replaces the recording id in the events (e.g. with a
    calibration variant); an invalid recording or a failed replay may pass empty arrays.
    """
    rid = label or recording.id
    distance = duration = 0.0
    speed = signals.get("ego_speed")
    if t is not None and speed is not None and len(t) == len(speed):
        distance, duration = exposure(np.asarray(t), np.asarray(speed))
    fcw = outputs.get("fcw")
    warnings: tuple[Event, ...] = ()
    if t is not None and fcw is not None and len(t) == len(fcw):
        warnings = tuple(Event(rid, at) for at in onsets(np.asarray(t), np.asarray(fcw)))
    return RecordingFacts(
        recording=rid,
        scenario=recording.scenario,
        tags=tuple(recording.tags),
        status=status,
        passed=passed,
        expect_brake=_expected(recording, "brake"),
        expect_fcw=_expected(recording, "fcw"),
        distance_m=distance,
        duration_s=duration,
        activations=activation_events(rid, kpis),
        warnings=warnings,
    )


def facts_from_outcome(
    recording: Recording,
    status: str,
    kpis: Mapping[str, Any],
    exposed: Mapping[str, Any],
    *,
    label: str | None = None,
) -> RecordingFacts:
    """The facts of a recording from its pipeline outcome, without its arrays.

    ``exposed`` is what the db stage measured: ``distance_m``, ``duration_s`` and the
    ``warnings`` onsets. ``passed`` is left True: the session knows whether the
    recording's tests passed only once they ran (:func:`with_outcome`).
    """
    rid = label or recording.id
    return RecordingFacts(
        recording=rid,
        scenario=recording.scenario,
        tags=tuple(recording.tags),
        status=status,
        passed=status == "ok",
        expect_brake=_expected(recording, "brake"),
        expect_fcw=_expected(recording, "fcw"),
        distance_m=float(exposed.get("distance_m", 0.0)),
        duration_s=float(exposed.get("duration_s", 0.0)),
        activations=activation_events(rid, kpis),
        warnings=tuple(Event(rid, float(at)) for at in exposed.get("warnings") or ()),
    )

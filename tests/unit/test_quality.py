"""The data-quality gate (SPEC §8): each check, its message, where and what to do."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_adsreplay.errors import InvalidRecordingError
from pytest_adsreplay.mdf import ChannelData, GroupData, write_recording
from pytest_adsreplay.recordings import Bound
from pytest_adsreplay.replay import read
from pytest_adsreplay.signals import (
    FLAG_SIGNALS,
    Signals,
    Trace,
    make_grid,
    quality,
    resample,
)
from pytest_adsreplay.signals.quality import Finding, GateSettings, assess, expects_target, gate

CT = 0.01


def build(traces: dict[str, tuple[np.ndarray, np.ndarray]], max_gap: float = 0.2) -> Signals:
    """Signals as the read stage makes them, from raw (timestamps, SI values) per signal."""
    t0 = min(float(ts[0]) for ts, _ in traces.values())
    t1 = max(float(ts[-1]) for ts, _ in traces.values())
    grid = make_grid(t0, t1, CT)
    values, trs = {}, {}
    for i, (name, (ts, vs)) in enumerate(traces.items()):
        ts, vs = np.asarray(ts, float), np.asarray(vs, float)
        hold = name in FLAG_SIGNALS
        values[name] = resample(ts, vs, grid, hold=hold, max_gap=None if hold else max_gap)
        trs[name] = Trace(f"{name}@0/{i + 1}", ts, vs)
    return Signals(grid, values, CT, {n: f"{n}@0/{i + 1}" for i, n in enumerate(values)}, trs)


def approach(kph: float = 40.0, duration: float = 4.0, **override: object) -> Signals:
    """Ego at ``kph`` closing on a stationary target, TTC 4 s at t = 0 (100 Hz / 20 Hz)."""
    v = kph / 3.6
    tv = np.arange(round(duration / CT) + 1) * CT
    tr = np.arange(round(duration / 0.05) + 1) * 0.05
    traces: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "ego_speed": (tv, np.full(tv.size, v)),
        "target_distance": (tr, 4.0 * v - v * tr),
        "target_rel_speed": (tr, np.full(tr.size, -v)),
    }
    for name, value in override.items():
        if value is None:
            traces.pop(name, None)
        else:
            traces[name] = value  # type: ignore[assignment]
    return build(traces)


def fatal(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.fatal]


# ------------------------------------------------------------------------------ pass


def test_a_clean_approach_passes_every_check() -> None:
    sig = approach(40.0)
    assert assess(sig, GateSettings(nominal_speed=40.0, expect_target="scenario 'CCRs'")) == []
    assert gate(sig, GateSettings()) == []


def test_checks_are_documented_in_order() -> None:
    doc = quality.__doc__ or ""
    positions = [doc.index(f"``{c}``") for c in quality.CHECKS]
    assert positions == sorted(positions)


# ------------------------------------------------------------------------ rate, gaps


def test_rate_below_the_minimum() -> None:
    t5 = np.arange(0, 4.01, 0.2)  # 5 Hz
    sig = approach(target_distance=(t5, 44.4 - 11.1 * t5), target_rel_speed=(t5, -11.1 + 0 * t5))
    (f, *_) = fatal(assess(sig))
    assert f.check == "rate" and f.t == 0.0
    assert f.message == (
        "channel target_distance@0/2 (target_distance) is sampled at 5 Hz (median interval "
        "0.2 s), below the minimum of 10 Hz (intervals up to 5% longer are accepted for "
        "logger jitter)"
    )
    assert "10 Hz or faster" in f.hint


def test_a_single_instant_has_no_rate() -> None:
    one = (np.array([1.0, 1.0]), np.array([3.0, 3.0]))
    (f,) = [f for f in assess(approach(ego_accel=one)) if f.check == "rate"]
    assert "ego_accel@0/4 (ego_accel) has 2 sample(s) at one instant" in f.message


@pytest.mark.parametrize(
    ("gap", "fails"), [(0.19, False), (0.21, False), (0.215, False), (0.23, True), (0.5, True)]
)
def test_gap_threshold(gap: float, fails: bool) -> None:
    tv = np.r_[np.arange(0, 2.0, CT), np.arange(2.0 + gap - CT, 4.0, CT)]
    sig = approach(ego_speed=(tv, np.full(tv.size, 11.1)))
    gaps = [f for f in assess(sig) if f.check == "gap"]
    assert bool(gaps) is fails
    if fails:
        assert gaps[0].t == pytest.approx(1.99)
        assert "up to 10 % longer than the limit" in gaps[0].hint
        assert (
            f"has no samples for {gap:.3f} s (t = 1.990 .. {1.99 + gap:.3f} s); the longest "
            "allowed gap is 0.2 s (adsreplay_max_gap)" in gaps[0].message
        )


def test_max_gap_setting_and_slow_regular_channels() -> None:
    tv = np.r_[np.arange(0, 2.0, CT), np.arange(2.3, 4.0, CT)]  # 0.31 s gap
    sig = approach(ego_speed=(tv, np.full(tv.size, 11.1)))
    assert [f.check for f in fatal(assess(sig, GateSettings(max_gap=0.2)))] == ["gap", "presence"]
    assert (
        fatal(
            assess(
                build({k: (tr.timestamps, tr.values) for k, tr in sig.traces.items()}, max_gap=0.4),
                GateSettings(max_gap=0.4),
            )
        )
        == []
    )
    # a regular 20 Hz radar is not a series of gaps under a max_gap below its interval
    assert fatal(assess(approach(), GateSettings(max_gap=0.04))) == []


# ----------------------------------------------------------------------- finite, NaN


def test_infinite_values() -> None:
    tv = np.arange(401) * CT
    speed = np.full(tv.size, 11.1)
    speed[123] = np.inf
    (f,) = fatal(assess(approach(ego_speed=(tv, speed))))
    assert f.check == "finite" and f.t == pytest.approx(1.23)
    assert "has 1 infinite sample(s), the first is inf" in f.message


@pytest.mark.parametrize(
    ("speed_t", "nan", "why"),
    [
        (np.arange(0, 301) * CT, None, "channel ego_speed@0/1 ends at t = 3.000 s"),
        (np.arange(50, 401) * CT, None, "channel ego_speed@0/1 starts only at t = 0.500 s"),
        (np.arange(401) * CT, slice(100, 130), "channel ego_speed@0/1 has invalid (NaN) samples"),
    ],
)
def test_ego_speed_must_be_present(speed_t: np.ndarray, nan: slice | None, why: str) -> None:
    speed = np.full(speed_t.size, 11.1)
    if nan is not None:
        speed[nan] = np.nan
    (f,) = fatal(assess(approach(ego_speed=(speed_t, speed))))
    assert f.check == "presence" and why in f.message
    assert "ego_speed is missing (NaN) for" in f.message
    assert "map a channel that does, or cut" in f.hint


def test_short_nan_spans_are_tolerated() -> None:
    tv = np.arange(401) * CT
    speed = np.full(tv.size, 11.1)
    speed[100:115] = np.nan  # 0.15 s
    assert fatal(assess(approach(ego_speed=(tv, speed)))) == []


# --------------------------------------------------------------------------- target


def test_no_target_is_fine_unless_one_is_expected() -> None:
    tr = np.arange(81) * 0.05
    nan = (tr, np.full(tr.size, np.nan))
    sig = approach(target_distance=nan, target_rel_speed=nan)
    assert fatal(assess(sig)) == []
    (f,) = fatal(assess(sig, GateSettings(expect_target="scenario 'CCRs'")))
    assert f.check == "target" and f.t is None
    assert f.message == (
        "target_distance (target_distance@0/2) is NaN over the whole recording "
        "(no target object), but a target is expected (scenario 'CCRs')"
    )


def test_target_present_but_rel_speed_missing() -> None:
    tr = np.arange(81) * 0.05
    rel = np.full(tr.size, -11.1)
    rel[20:40] = np.nan  # 1 s while the distance is there
    (f,) = fatal(assess(approach(target_rel_speed=(tr, rel))))
    assert f.check == "target" and f.t == pytest.approx(0.96)
    assert "target_rel_speed is missing (NaN) for" in f.message
    assert "while target_distance shows a target" in f.message


def test_valid_flag_says_present_but_distance_missing() -> None:
    tr = np.arange(81) * 0.05
    dist = 44.4 - 11.1 * tr
    dist[40:60] = np.nan
    sig = approach(target_distance=(tr, dist), target_valid=(tr, np.ones(tr.size)))
    msgs = [f.message for f in fatal(assess(sig))]
    assert any(
        m.startswith("target_valid says a target is present but target_distance is missing for")
        for m in msgs
    ), msgs


@pytest.mark.parametrize(
    ("scenario", "expect", "meta", "why"),
    [
        ("CCRs", (), {}, "scenario 'CCRs'"),
        ("ccrm", (), {}, "scenario 'ccrm'"),
        (None, (Bound("brake", exact=True),), {}, "[expect] brake = true"),
        (None, (Bound("brake", exact=False),), {}, None),
        (None, (Bound("ttc_at_brake", lo=1.0),), {}, "[expect] bounds ttc_at_brake"),
        (None, (Bound("max_decel", lo=1.0),), {}, None),
        ("false-activation", (), {}, None),
        ("CCRs", (), {"target": False}, None),
        (None, (), {"target": True}, "the sidecar says target = true"),
    ],
)
def test_expects_target(
    scenario: str | None, expect: tuple[Bound, ...], meta: dict[str, object], why: str | None
) -> None:
    assert expects_target(scenario, expect, meta) == why


# -------------------------------------------------------------------- nominal speed


def test_nominal_speed_band_passes_with_logger_noise() -> None:
    rng = np.random.default_rng(1)
    tv = np.arange(401) * CT
    speed = (40.0 + rng.normal(0, 0.05, tv.size)) / 3.6
    sig = approach(ego_speed=(tv, speed))
    assert assess(sig, GateSettings(nominal_speed=40.0)) == []


@pytest.mark.parametrize(("kph", "shown"), [(39.5, "39.79"), (41.5, "41.20")])
def test_nominal_speed_outside_the_band(kph: float, shown: str) -> None:
    tv = np.arange(401) * CT
    drift = np.interp(tv, [1.0, 3.0], [40.3, kph])  # slow drift, not a braking
    (f,) = fatal(assess(approach(ego_speed=(tv, drift / 3.6)), GateSettings(nominal_speed=40.0)))
    assert f.check == "nominal_speed"
    assert f.t == pytest.approx(1.0 + 2.0 * (abs(40.3 - float(shown)) / abs(40.3 - kph)), abs=0.02)
    assert f"ego speed {shown}" in f.message
    assert "km/h is outside the Euro NCAP band 40 +0 … +1 km/h" in f.message
    assert "39.80 … 41.20 km/h" in f.message
    assert "checked from T0 = 0.000 s (TTC 4 s) to the end of the recording" in f.message


def test_nominal_speed_window_starts_at_ttc_4s_and_ends_at_recorded_braking() -> None:
    v = 40 / 3.6
    tv = np.arange(0, 901) * CT
    # out of the band before T0 (TTC 4 s at t = 2 s), in the band until the braking at 7 s
    kph = np.interp(tv, [0.0, 1.0, 1.8], [41.5, 41.5, 40.2])
    brake_at = 7.0
    speed = np.where(tv >= brake_at, v - 6.0 * (tv - brake_at), kph / 3.6)
    tr = np.arange(0, 181) * 0.05
    sig = approach(
        ego_speed=(tv, speed),
        target_distance=(tr, np.clip(6.0 * v - v * tr, 0.0, None)),
        target_rel_speed=(tr, np.full(tr.size, -v)),
    )
    assert assess(sig, GateSettings(nominal_speed=40.0)) == []
    onset, what = quality.braking_onset(sig)
    assert onset is not None and brake_at - 0.15 <= onset <= brake_at  # a little early
    assert what == "deceleration onset in the ego_speed slope"
    raw = {k: (tr_.timestamps, tr_.values) for k, tr_ in sig.traces.items()}
    # an ego_accel channel, or the brake pedal, shows the braking too
    accel = build({**raw, "ego_accel": (tv, np.where(tv >= brake_at, -6.0, 0.0))})
    onset, what = quality.braking_onset(accel)
    assert onset == pytest.approx(brake_at, abs=0.06)
    assert what == "deceleration onset in ego_accel"
    pedal = build({**raw, "driver_brake": (tv, (tv >= 6.5).astype(float))})
    onset, what = quality.braking_onset(pedal)
    assert onset == pytest.approx(6.5) and what == "driver brake pedal"
    # the same speeds judged from the start would be invalid
    early = approach(
        ego_speed=(tv, speed),
        target_distance=(tr, np.clip(4.0 * v - v * tr, 0.0, None)),
        target_rel_speed=(tr, np.full(tr.size, -v)),
    )
    (f,) = fatal(assess(early, GateSettings(nominal_speed=40.0)))
    assert f.t == 0.0 and f.message.endswith(
        "to 6.890 s (first recorded braking: deceleration onset in the ego_speed slope)"
    )


def test_nominal_speed_without_t0_is_a_note() -> None:
    tr = np.arange(81) * 0.05
    far = approach(target_distance=(tr, np.full(tr.size, 150.0)))
    (f,) = assess(far, GateSettings(nominal_speed=80.0))
    assert not f.fatal and f.check == "nominal_speed"
    assert "not checked: the recorded TTC never falls to 4 s, so there is no T0" in f.message
    assert gate(far, GateSettings(nominal_speed=80.0)) == [f]


# ---------------------------------------------------------------- error and helpers


def test_invalid_error_names_recording_check_time_and_next_step() -> None:
    tv = np.r_[np.arange(0, 2.0, CT), np.arange(2.5, 4.0, CT)]
    sig = approach(ego_speed=(tv, np.full(tv.size, 11.1)))
    with pytest.raises(InvalidRecordingError) as info:
        gate(sig, GateSettings(), recording="track/run7.mf4")
    err = info.value
    assert err.outcome == "invalid" and err.recording == "track/run7.mf4"
    text = str(err)
    assert text.startswith("track/run7.mf4: data-quality check 'gap' failed at t = 1.990 s: ")
    assert "\n    also presence at t = 2.000 s: ego_speed is missing" in text
    assert text.endswith(
        "-> re-record, cut the recording before the gap, or raise "
        "adsreplay_max_gap if such gaps are acceptable for this data (an interval up to 10 % "
        "longer than the limit, or than twice the channel's median interval, passes as "
        "logger jitter)"
    )


def test_many_findings_are_summarized() -> None:
    findings = [Finding("gap", f"g{i}", t=float(i), hint="h") for i in range(8)]
    text = str(quality.invalid_error(findings, "r"))
    assert text.count("\n    also ") == 4 and "(+3 more findings)" in text


def test_time_findings() -> None:
    ts = np.array([0.0, 0.01, np.nan, 0.03, 0.02])
    nan, back = quality.time_findings("channel X", ts)
    assert nan.message == (
        "channel X: timestamp is nan at sample 2 (after t=0.01 s); 1 of 5 timestamps are not finite"
    )
    assert back.message.startswith(
        "channel X: time goes backwards at sample 3 (t=0.02 s after t=0.03 s)"
    )


def test_smooth_skips_nan() -> None:
    x = np.array([1.0, np.nan, 3.0, np.nan, np.nan, np.nan])
    out = quality.smooth(x, 3)
    assert out[0] == 1.0 and out[1] == 2.0 and math.isnan(out[-1])


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=3, max_size=60),
    st.floats(min_value=0.05, max_value=2.0),
    st.one_of(st.none(), st.floats(min_value=5, max_value=130)),
)
def test_the_gate_only_ever_raises_invalid_recording(
    samples: list[float], max_gap: float, nominal: float | None
) -> None:
    """Whatever the data, the gate returns notes or raises InvalidRecordingError."""
    ts = np.arange(len(samples)) * 0.05
    vals = np.asarray(samples, dtype=float)
    sig = build(
        {"ego_speed": (ts, vals), "target_distance": (ts, vals), "target_rel_speed": (ts, -vals)},
        max_gap=max_gap,
    )
    try:
        notes = gate(sig, GateSettings(max_gap, nominal, "x"), recording="r")
    except InvalidRecordingError as exc:
        assert exc.recording == "r" and "data-quality check '" in exc.message
    else:
        assert all(not f.fatal for f in notes)


# ------------------------------------------------------------ through the read stage


def test_read_runs_the_gate_with_the_sidecar_settings(tmp_path: Path) -> None:
    t = np.arange(401) * CT
    path = write_recording(
        tmp_path / "r.mf4",
        [
            GroupData(
                "G",
                t,
                [
                    ChannelData("VehSpd", np.full(t.size, 50.0), "km/h"),
                    ChannelData("ObjDist", 55.5 - 13.9 * t, "m"),
                    ChannelData("ObjRelSpd", np.full(t.size, -13.9), "m/s"),
                ],
            )
        ],
    )
    assert read(path, None, CT).t.size == 401
    with pytest.raises(InvalidRecordingError, match=r"check 'nominal_speed' failed at t = 0\.000"):
        read(path, None, CT, recording_id="r.mf4", nominal_speed=40.0)
    assert read(path, None, CT, nominal_speed=40.0, gate=False).t.size == 401


class _Never:
    def step(self, frame: object) -> dict[str, float]:
        return {"fcw": 0.0, "aeb_decel": 0.0}


def test_replay_file_takes_the_gate_settings_from_the_sidecar(tmp_path: Path) -> None:
    from pytest_adsreplay.replay import replay_file

    t = np.arange(401) * CT
    path = write_recording(
        tmp_path / "r.mf4",
        [
            GroupData(
                "G",
                t,
                [
                    ChannelData("VehSpd", np.full(t.size, 50.0), "km/h"),
                    ChannelData("ObjDist", np.full(t.size, np.nan), "m"),
                    ChannelData("ObjRelSpd", np.full(t.size, np.nan), "m/s"),
                ],
            )
        ],
    )
    (tmp_path / "r.toml").write_text('scenario = "CCRs"\n')
    with pytest.raises(InvalidRecordingError, match=r"r\.mf4: data-quality check 'target'"):
        replay_file(path, _Never)
    assert replay_file(path, _Never, sidecar=False).brake_time is None
    with pytest.raises(InvalidRecordingError, match=r"expected \(replay_file\(expect_target"):
        replay_file(path, _Never, sidecar=False, expect_target=True)


def test_negative_target_distance_is_a_finding() -> None:
    """A distance channel with the wrong sign or offset must not pass (min_ttc would be 0)."""
    t5 = np.arange(0, 4.01, 0.05)
    sig = approach(target_distance=(t5, 10.0 - 11.1 * t5))
    (f,) = [f for f in fatal(assess(sig)) if f.check == "target"]
    assert f.message.startswith("target_distance is negative (")
    assert "scale = -1.0" in f.hint
    noisy = approach(target_distance=(t5, np.clip(44.4 - 11.1 * t5, -0.3, None)))
    assert not [f for f in assess(noisy) if f.check == "target"]  # sensor noise near 0 m

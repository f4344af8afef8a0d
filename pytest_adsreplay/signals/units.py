"""Physical units of channels: spellings loggers use, their SI scale and dimension."""

from __future__ import annotations

import math
import re

SPEED = "speed"
ACCELERATION = "acceleration"
LENGTH = "length"
TIME = "time"
DIMENSIONLESS = "dimensionless"
ANGLE = "angle"
ANGULAR_RATE = "angular rate"

SI_UNITS: dict[str, str] = {
    SPEED: "m/s",
    ACCELERATION: "m/s²",
    LENGTH: "m",
    TIME: "s",
    DIMENSIONLESS: "0/1",
    ANGLE: "rad",
    ANGULAR_RATE: "rad/s",
}

# (scale, offset, dimension, spellings): SI value = raw * scale + offset
_UNIT_TABLE: tuple[tuple[float, float, str, tuple[str, ...]], ...] = (
    (
        1.0,
        0.0,
        SPEED,
        (
            "m/s",
            "m s-1",
            "m*s-1",
            "m/sec",
            "mps",
            "meter/second",
            "metre/second",
            "meters per second",
            "metres per second",
        ),
    ),
    (
        1 / 3.6,
        0.0,
        SPEED,
        (
            "km/h",
            "kph",
            "kmh",
            "km h-1",
            "km*h-1",
            "km/hr",
            "kmph",
            "kilometer/hour",
            "kilometre/hour",
            "kilometers per hour",
            "kilometres per hour",
        ),
    ),
    (0.44704, 0.0, SPEED, ("mph", "mi/h", "miles/h", "miles per hour")),
    (0.3048, 0.0, SPEED, ("ft/s", "fps")),
    (
        1.0,
        0.0,
        ACCELERATION,
        ("m/s²", "m/s^2", "m/s2", "m s-2", "m*s-2", "m/s/s", "mps2", "m/sec2", "m/sec/sec", "mpss"),
    ),
    (9.80665, 0.0, ACCELERATION, ("g", "gn", "g0")),
    (1.0, 0.0, LENGTH, ("m", "meter", "metre", "meters", "metres")),
    (1000.0, 0.0, LENGTH, ("km", "kilometer", "kilometre")),
    (0.01, 0.0, LENGTH, ("cm",)),
    (0.001, 0.0, LENGTH, ("mm",)),
    (0.3048, 0.0, LENGTH, ("ft", "feet")),
    (1.0, 0.0, TIME, ("s", "sec", "second", "seconds")),
    (0.001, 0.0, TIME, ("ms", "msec", "millisecond", "milliseconds")),
    (1e-6, 0.0, TIME, ("us", "µs", "μs", "microsecond", "microseconds")),
    (60.0, 0.0, TIME, ("min", "minute", "minutes")),
    (3600.0, 0.0, TIME, ("h", "hr", "hour", "hours")),
    (1.0, 0.0, DIMENSIONLESS, ("0/1", "bool", "boolean", "flag", "on/off", "true/false")),
    (0.01, 0.0, DIMENSIONLESS, ("%", "percent", "pct")),
    (1.0, 0.0, ANGLE, ("rad", "radian", "radians")),
    (math.pi / 180.0, 0.0, ANGLE, ("deg", "°", "degree", "degrees")),
    (1.0, 0.0, ANGULAR_RATE, ("rad/s", "rad s-1", "rad*s-1", "rad/sec", "radian/second")),
    (
        math.pi / 180.0,
        0.0,
        ANGULAR_RATE,
        ("deg/s", "°/s", "deg s-1", "deg*s-1", "deg/sec", "dps", "degree/second"),
    ),
)

#: Spellings that mean "the logger did not state a unit".
_NO_UNIT = frozenset({"", "-", "1", "[]", "[-]", "n/a", "na", "none", "()"})


def norm_unit(unit: str) -> str:
    u = unit.strip().lower()
    if len(u) >= 2 and u[0] + u[-1] in ("[]", "()"):
        u = u[1:-1].strip()
    u = u.replace("²", "2").replace("**", "").replace("^", "").replace("·", "*")
    u = re.sub(r"\s*/\s*", "/", u)
    u = re.sub(r"\s*\*\s*", "*", u)
    u = re.sub(r"(?<=[a-z])\.(?=[a-z])", "*", u)  # m.s-1
    u = re.sub(r"\s+", " ", u)
    return u.replace(" ", "*") if re.fullmatch(r"[a-zµμ]+ [a-z]+-\d", u) else u


_UNITS: dict[str, tuple[float, float, str]] = {
    norm_unit(spelling): (scale, offset, dim)
    for scale, offset, dim, spellings in _UNIT_TABLE
    for spelling in spellings
}


def is_no_unit(unit: str | None) -> bool:
    return unit is None or norm_unit(unit) in _NO_UNIT


def unit_info(unit: str) -> tuple[float, float, str]:
    """``(scale, offset, dimension)`` of ``unit``; raises ValueError for an unknown unit."""
    key = norm_unit(unit)
    if key in _NO_UNIT:
        return 1.0, 0.0, DIMENSIONLESS
    try:
        return _UNITS[key]
    except KeyError:
        raise ValueError(f"unknown unit {unit!r}") from None


def to_si(unit: str) -> tuple[float, float]:
    """``(scale, offset)`` converting a value in ``unit`` to SI (``si = v * scale + offset``).

    Spellings are case-insensitive ("km/h", "KPH", "km h-1", "m/s^2", "m/s2" …); an empty
    or "-" unit is dimensionless. Raises ValueError for a unit not in the table.
    """
    scale, offset, _ = unit_info(unit)
    return scale, offset


def known_units(dimension: str) -> list[str]:
    """The first spelling of each known unit of ``dimension`` (for error messages)."""
    return [spellings[0] for _, _, dim, spellings in _UNIT_TABLE if dim == dimension]


def same_unit(a: tuple[float, float, str], b: tuple[float, float, str]) -> bool:
    return (
        a[2] == b[2]
        and math.isclose(a[0], b[0], rel_tol=1e-9)
        and math.isclose(a[1], b[1], rel_tol=1e-9, abs_tol=1e-12)
    )

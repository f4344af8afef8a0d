"""One frozen settings object: CLI > environment > ini > default, validated at parse time.

Every value remembers where it came from, so a bad one is reported as e.g.
``adsreplay_timeout = 'soon' (from pyproject.toml [tool.pytest.ini_options])``.
No pytest import: the plugin hands in ``getoption``/``getini`` callables.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_adsreplay.errors import UsageError

INVALID_MODES = ("error", "skip", "fail")


@dataclass(frozen=True)
class Option:
    """One setting: its CLI dest/flag, ini key, environment variable and default."""

    name: str
    flag: str | None
    ini: str | None
    help: str
    default: Any = None
    env: str | None = None
    metavar: str | None = None
    const: Any = None  # a flag without argument that stores this value

    @property
    def env_var(self) -> str | None:
        if self.env:
            return self.env
        return self.ini.upper() if self.ini else None


OPTIONS: tuple[Option, ...] = (
    Option(
        "recordings",
        "--recordings",
        "adsreplay_recordings",
        "MF4 recordings to replay: a file, a directory (searched recursively) or a glob; "
        "repeatable",
        metavar="PATH",
    ),
    Option(
        "recordings_root",
        "--adsreplay-recordings-root",
        "adsreplay_recordings_root",
        "folder the recording ids (test ids, baseline keys) are relative to, whatever "
        "--recordings selects below it (default: the --recordings folder)",
        metavar="DIR",
    ),
    Option(
        "function",
        "--aeb-function",
        "adsreplay_function",
        "function under test: module:attr (class or zero-argument factory), an FMU "
        "(x.fmu) or a C shared library (.so, .dylib, .dll)",
        metavar="MOD:ATTR",
    ),
    Option(
        "channel_map",
        "--channel-map",
        "adsreplay_channel_map",
        "channel map TOML (MF4 channel -> canonical signal); default: built-in common names",
        metavar="FILE",
    ),
    Option(
        "redis_url",
        "--redis-url",
        "adsreplay_redis_url",
        "Redis URL (redis:// or rediss://); default: embedded fakeredis, no server",
        env="ADSREPLAY_REDIS_URL",
        metavar="URL",
    ),
    Option(
        "workers",
        "--adsreplay-workers",
        "adsreplay_workers",
        "real Redis: local worker processes (default: CPU count; 0 = only external workers); "
        "embedded: stepping threads with a function host each (default: CPU count, 1 per "
        "xdist worker)",
        metavar="N",
    ),
    Option(
        "read_ahead",
        "--adsreplay-read-ahead",
        "adsreplay_read_ahead",
        "embedded: recordings read ahead, waiting for a function host, while the hosts step "
        "(default: one per host, 0 in a pytest-xdist worker; 0 = no read-ahead thread: with "
        "--adsreplay-workers 1 the waiting test runs each chain itself, one at a time)",
        metavar="N",
    ),
    Option(
        "timeout",
        "--adsreplay-timeout",
        "adsreplay_timeout",
        "per-stage job timeout in seconds",
        default=300.0,
        metavar="S",
    ),
    Option(
        "db",
        "--adsreplay-db",
        "adsreplay_db",
        "results database: a SQLite path or URL",
        default=".adsreplay/results.sqlite",
        metavar="URL",
    ),
    Option(
        "baseline",
        "--adsreplay-baseline",
        "adsreplay_baseline",
        "KPI regression baseline JSON file",
        metavar="FILE",
    ),
    Option(
        "update_baseline",
        "--adsreplay-update-baseline",
        None,
        "rewrite the baseline entries of this run (the affected tests still fail)",
        default=False,
    ),
    Option(
        "report",
        "--adsreplay-report",
        "adsreplay_report",
        "write an HTML report with plots to this directory",
        metavar="DIR",
    ),
    Option(
        "cycle_time",
        None,
        "adsreplay_cycle_time",
        "resampling grid in seconds (default: the function's cycle_time, else 0.01)",
    ),
    Option(
        "brake_threshold",
        None,
        "adsreplay_brake_threshold",
        "aeb_decel (m/s²) at or above which the function counts as braking",
        default=1.0,
    ),
    Option(
        "actuator_delay",
        None,
        "adsreplay_actuator_delay",
        "dead time (s) from brake request to deceleration onset in the projection",
        default=0.2,
    ),
    Option(
        "brake_jerk",
        None,
        "adsreplay_brake_jerk",
        "jerk limit (m/s³) of the projected deceleration; inf = ideal step",
        default=40.0,
    ),
    Option(
        "path_half_width",
        None,
        "adsreplay_path_half_width",
        "half width (m) of the predicted path an object-list KPI target must be within",
        default=1.0,
    ),
    Option(
        "axle_to_front",
        None,
        "adsreplay_axle_to_front",
        "rear axle to front bumper (m): where object-list positions are measured from",
        default=0.0,
    ),
    Option(
        "function_params",
        None,
        "adsreplay_function_params",
        "keyword parameters for the function's factory, a TOML inline table",
        default="{}",
    ),
    Option(
        "max_gap",
        None,
        "adsreplay_max_gap",
        "longest allowed gap (s) in a required signal before the recording is invalid",
        default=0.2,
    ),
    Option(
        "invalid",
        None,
        "adsreplay_invalid",
        "what an invalid recording does to its tests: error | skip | fail",
        default="error",
    ),
    Option(
        "cache_dir",
        "--adsreplay-cache-dir",
        "adsreplay_cache_dir",
        "decoded-signal cache directory (local workers of one host share it); "
        "`adsreplay cache clear` empties it",
        default=".adsreplay/cache",
        metavar="DIR",
    ),
    Option(
        "cache",
        "--adsreplay-no-cache",
        "adsreplay_cache",
        "do not use the decoded-signal cache (ini/env: adsreplay_cache = false)",
        default=True,
        const="false",
    ),
    Option(
        "function_memory",
        None,
        "adsreplay_function_memory",
        "address-space limit of the process that runs the function under test, e.g. 4GB, "
        "512MB; 0 = no limit",
        default="4GB",
    ),
    Option(
        "function_output",
        None,
        "adsreplay_function_output",
        "how much of the function's stdout/stderr is kept per recording (the tail, shown "
        "in its error), e.g. 1MB",
        default="1MB",
    ),
    Option(
        "binding",
        None,
        "adsreplay_function_binding",
        "TOML file binding an FMU's or C library's inputs ([inputs]) and outputs "
        "([outputs]) to canonical names",
    ),
    # recordings in object storage (--recordings s3://bucket/prefix/)
    Option(
        "cache_max",
        None,
        "adsreplay_cache_max",
        "size bound of the local download cache of recordings in object storage, e.g. "
        "20GB (oldest entries evicted)",
        default="20GB",
    ),
    Option(
        "s3_endpoint",
        None,
        "adsreplay_s3_endpoint",
        "S3 endpoint URL (default: AWS_ENDPOINT_URL, else the public cloud)",
    ),
    Option(
        "s3_path_style",
        None,
        "adsreplay_s3_path_style",
        "path-style S3 addressing (http://host/bucket/key), as most local stores need",
        default=False,
    ),
    # fleet statistics, release gates and the merge-request summary
    Option(
        "gates",
        None,
        "adsreplay_gates",
        "release gates on fleet figures, a TOML inline table such as "
        '{ false_activations_per_1000km = { max = 0.5, bound = "upper95" } }',
    ),
    Option(
        "gates_file",
        None,
        "adsreplay_gates_file",
        "TOML file with a [tool.adsreplay.gates] (or [gates]) table of release gates",
    ),
    Option(
        "summary_md",
        "--adsreplay-summary-md",
        "adsreplay_summary_md",
        "write a Markdown summary for merge requests (also appended to $GITHUB_STEP_SUMMARY "
        "when that is set)",
        metavar="FILE",
    ),
    Option(
        "compare_run",
        "--adsreplay-compare-run",
        "adsreplay_compare_run",
        "the run the Markdown summary compares KPIs with: a run id (prefix) or 'previous' "
        "(default: the baseline, when there is one)",
        metavar="RUN",
    ),
)

OPTIONS_BY_NAME = {o.name: o for o in OPTIONS}


@dataclass(frozen=True)
class Settings:
    """Every plugin setting, resolved and validated. ``sources`` says where each came from."""

    recordings: tuple[str, ...] = ()
    recordings_root: Path | None = None
    function: str | None = None
    channel_map: Path | None = None
    redis_url: str | None = None
    workers: int | None = None
    read_ahead: int | None = None
    timeout: float = 300.0
    db: str = ".adsreplay/results.sqlite"
    baseline: Path | None = None
    update_baseline: bool = False
    report: Path | None = None
    cycle_time: float | None = None
    brake_threshold: float = 1.0
    actuator_delay: float = 0.2
    brake_jerk: float = 40.0
    path_half_width: float = 1.0
    axle_to_front: float = 0.0
    function_params: Mapping[str, Any] = field(default_factory=dict)
    max_gap: float = 0.2
    invalid: str = "error"
    cache_dir: Path = Path(".adsreplay/cache")
    cache: bool = True
    function_memory: int | None = 4 * 1024**3  # bytes; None: no limit
    function_output: int = 1024**2  # bytes
    binding: Mapping[str, Any] | None = None  # the parsed adsreplay_function_binding file
    cache_max: int = 20 * 1024**3  # bytes of the download cache of object-storage recordings
    s3_endpoint: str | None = None
    s3_path_style: bool = False
    gates: tuple[Any, ...] = ()  # fleet.Gate, from adsreplay_gates and adsreplay_gates_file
    gates_file: tuple[Any, ...] = ()
    summary_md: Path | None = None
    compare_run: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict)

    def source(self, name: str) -> str:
        return self.sources.get(name, "default")

    def kpi_settings(self) -> dict[str, float]:
        return {
            "brake_threshold": self.brake_threshold,
            "actuator_delay": self.actuator_delay,
            "brake_jerk": self.brake_jerk,
            "path_half_width": self.path_half_width,
            "axle_to_front": self.axle_to_front,
        }


@dataclass
class _Raw:
    value: Any
    source: str
    base: Path


def _bad(opt: Option, raw: _Raw, why: str) -> UsageError:
    label = opt.flag if raw.source.startswith("command line") and opt.flag else opt.ini or opt.flag
    return UsageError(f"{label} = {raw.value!r} (from {raw.source}) {why}")


def _float(opt: Option, raw: _Raw, *, positive: bool = True, allow_inf: bool = False) -> float:
    try:
        value = float(raw.value)
    except (TypeError, ValueError):
        raise _bad(opt, raw, "is not a number") from None
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise _bad(opt, raw, "must be a finite number")
    if positive and value <= 0:
        raise _bad(opt, raw, "must be > 0")
    if not positive and value < 0:
        raise _bad(opt, raw, "must be >= 0")
    return value


def _bool(opt: Option, raw: _Raw) -> bool:
    if isinstance(raw.value, bool):
        return raw.value
    text = str(raw.value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise _bad(opt, raw, "must be true or false")


def _path(raw: _Raw) -> Path:
    p = Path(os.path.expanduser(str(raw.value)))
    return p if p.is_absolute() else raw.base / p


def _db_url(raw: _Raw) -> str:
    text = str(raw.value)
    if "://" in text:
        if text.startswith("sqlite:///"):
            p = Path(text[len("sqlite:///") :])
            return str(p if p.is_absolute() else raw.base / p)
        return text
    return str(_path(raw))


def _function(opt: Option, raw: _Raw) -> Any:
    """``adsreplay_function`` (module:attr, or an FMU/shared-library path resolved like every
    path) and ``adsreplay_function_binding`` (the parsed TOML)."""
    if opt.name == "binding":
        from pytest_adsreplay.function.binding import load_binding

        return load_binding(_path(raw))
    text = str(raw.value).strip()
    if text.lower().endswith((".fmu", ".so", ".dylib", ".dll")):
        return str(_path(_Raw(text, raw.source, raw.base)))
    mod, sep, attr = text.partition(":")
    if not sep or not mod or not attr:
        raise _bad(
            opt, raw, "is not of the form module:attr, an FMU (.fmu) or a shared library (.so)"
        )
    return text


def build_settings(
    getoption: Callable[[str], Any],
    getini: Callable[[str], Any],
    *,
    ini_base: Path,
    ini_label: str,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve every option (CLI > environment > ini > default) and validate it."""
    environ = os.environ if environ is None else environ
    cwd = cwd or Path.cwd()
    raws: dict[str, _Raw] = {}
    for opt in OPTIONS:
        cli = getoption(opt.name) if opt.flag else None
        if cli not in (None, [], False):
            raws[opt.name] = _Raw(cli, f"command line {opt.flag}", cwd)
            continue
        env_var = opt.env_var
        if env_var and environ.get(env_var, "").strip():
            value: Any = environ[env_var].strip()
            if opt.name == "recordings":
                # a separator never splits a URL's "://" (s3://bucket/prefix/)
                value = [v for v in re.split(re.escape(os.pathsep) + "(?!//)", value) if v]
            raws[opt.name] = _Raw(value, f"environment {env_var}", cwd)
            continue
        if opt.ini:
            ini = getini(opt.ini)
            if ini not in (None, "", []):
                raws[opt.name] = _Raw(ini, f"{ini_label} {opt.ini}", ini_base)
                continue
        if opt.default is not None:
            raws[opt.name] = _Raw(opt.default, "default", cwd)

    kw: dict[str, Any] = {}
    for name, raw in raws.items():
        opt = OPTIONS_BY_NAME[name]
        kw[name] = _convert(opt, raw)
    kw["sources"] = {name: raw.source for name, raw in raws.items()}
    return Settings(**kw)


def _redis_url(opt: Option, raw: _Raw) -> str:
    url = str(raw.value).strip()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        from pytest_adsreplay.urls import mask_url

        raise UsageError(
            f"{opt.flag} = {mask_url(url)!r} (from {raw.source}) must start with "
            "redis://, rediss:// or unix://"
        )
    return url


def _count(opt: Option, raw: _Raw, zero: str = "") -> int:
    """A whole number >= 0 (``zero``: what 0 means, for the message)."""
    try:
        n = int(str(raw.value))
    except ValueError:
        raise _bad(opt, raw, "is not a whole number") from None
    if n < 0:
        raise _bad(opt, raw, "must be >= 0" + (f" (0 = {zero})" if zero else ""))
    return n


def _workers(opt: Option, raw: _Raw) -> int:
    return _count(opt, raw, "only external workers")


def _invalid_mode(opt: Option, raw: _Raw) -> str:
    mode = str(raw.value).strip().lower()
    if mode not in INVALID_MODES:
        raise _bad(opt, raw, f"must be one of {', '.join(INVALID_MODES)}")
    return mode


def _recordings(opt: Option, raw: _Raw) -> tuple[str, ...]:
    items = raw.value if isinstance(raw.value, list | tuple) else str(raw.value).split()
    return tuple(_recording_spec(v, raw) for v in items)


def _sized(opt: Option, raw: _Raw) -> int | None:
    """Bytes; a memory limit of 0 is none."""
    return _size(opt, raw) or (None if opt.name == "function_memory" else 0)


#: How each setting's raw value becomes its typed value (validated, naming its source).
_CONVERTERS: dict[str, Callable[[Option, _Raw], Any]] = {
    "recordings": _recordings,
    "s3_endpoint": lambda opt, raw: _s3_endpoint(opt, raw),
    "function": lambda opt, raw: _function(opt, raw),
    "binding": lambda opt, raw: _function(opt, raw),
    **{
        n: (lambda opt, raw: _path(raw))
        for n in ("channel_map", "baseline", "report", "cache_dir", "recordings_root")
    },
    "redis_url": _redis_url,
    "workers": _workers,
    "read_ahead": _count,
    "db": lambda opt, raw: _db_url(raw),
    "update_baseline": lambda opt, raw: bool(raw.value),
    "cache": _bool,
    "s3_path_style": _bool,
    **{n: (lambda opt, raw: _float(opt, raw)) for n in ("timeout", "cycle_time", "max_gap")},
    "brake_threshold": lambda opt, raw: _float(opt, raw),
    "actuator_delay": lambda opt, raw: _float(opt, raw, positive=False),
    "brake_jerk": lambda opt, raw: _float(opt, raw, allow_inf=True),
    "path_half_width": lambda opt, raw: _float(opt, raw),
    "axle_to_front": lambda opt, raw: _float(opt, raw, positive=False),
    "function_params": lambda opt, raw: _params(opt, raw),
    "invalid": _invalid_mode,
    "gates": lambda opt, raw: _gates(opt, raw),
    "gates_file": lambda opt, raw: _gates(opt, raw),
    "summary_md": lambda opt, raw: _path(raw),
    "compare_run": lambda opt, raw: str(raw.value).strip(),
}


def _gates(opt: Option, raw: _Raw) -> tuple[Any, ...]:
    """``adsreplay_gates`` (an inline TOML table) or ``adsreplay_gates_file`` (a TOML file
    with ``[tool.adsreplay.gates]`` or ``[gates]``), parsed into fleet gates."""
    import tomllib

    from pytest_adsreplay.fleet.gates import parse_gates

    label = opt.ini or opt.name
    if opt.name == "gates_file":
        path = _path(raw)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise _bad(opt, raw, f"cannot be read: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise _bad(opt, raw, f"is not valid TOML: {exc}") from None
        tables = data.get("tool", {}).get("adsreplay", {}).get("gates", data.get("gates"))
        if not isinstance(tables, dict):
            raise _bad(opt, raw, "has no [tool.adsreplay.gates] or [gates] table")
        return tuple(parse_gates(tables, f"{path} ({raw.source})"))
    try:
        tables = tomllib.loads(f"gates = {raw.value}")["gates"]
    except tomllib.TOMLDecodeError as exc:
        raise _bad(opt, raw, f"is not a TOML inline table: {exc}") from None
    if not isinstance(tables, dict):
        raise _bad(opt, raw, "must be a TOML inline table of gates")
    return tuple(parse_gates(tables, f"{label} from {raw.source}"))


def _convert(opt: Option, raw: _Raw) -> Any:
    if opt.name in _SIZES:
        return _sized(opt, raw)
    return _CONVERTERS[opt.name](opt, raw)


_SIZE = re.compile(r"(\d+(?:\.\d*)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    """Bytes from ``4GB``, ``512 MB``, ``1.5GiB``, ``64k`` or a plain number (powers of
    1024); ValueError when it is not a size."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(text)
    return int(float(match[1]) * _SIZE_UNITS[match[2].lower()])


_SIZES = ("function_memory", "function_output", "cache_max")


def _recording_spec(value: Any, raw: _Raw) -> str:
    """A ``--recordings`` value: a URL (``s3://bucket/prefix/``) as given, else a path."""
    text = str(value)
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]+://", text):
        return text
    return str(_path(_Raw(value, raw.source, raw.base)))


def _s3_endpoint(opt: Option, raw: _Raw) -> str:
    """``adsreplay_s3_endpoint``: an http(s) URL without credentials (it travels in
    every job; credentials come from each worker's own AWS configuration)."""
    url = str(raw.value).strip()
    if not re.match(r"https?://[^/@]+(/.*)?$", url):
        from pytest_adsreplay.urls import mask_url

        raise UsageError(
            f"{opt.ini} = {mask_url(url)!r} (from {raw.source}) must be an http:// or "
            "https:// URL without user or password, e.g. http://127.0.0.1:9000",
            hint="credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE",
        )
    return url


def _size(opt: Option, raw: _Raw) -> int:
    try:
        return parse_size(str(raw.value))
    except ValueError:
        raise _bad(opt, raw, "is not a size like 512MB, 4GB or 0") from None


def _params(opt: Option, raw: _Raw) -> dict[str, Any]:
    if isinstance(raw.value, Mapping):
        return dict(raw.value)
    text = str(raw.value).strip()
    try:
        return dict(tomllib.loads(f"params = {text}")["params"])
    except (tomllib.TOMLDecodeError, TypeError, ValueError) as exc:
        raise _bad(
            opt, raw, f"is not a TOML inline table like {{ fcw_ttc = 2.6 }}: {exc}"
        ) from None

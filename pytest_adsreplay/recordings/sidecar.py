"""Sidecar TOML files (``NAME.toml`` beside ``NAME.mf4``): scenario, tags, expectations."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pytest_adsreplay.errors import SidecarError
from pytest_adsreplay.recordings.expectations import parse_expect
from pytest_adsreplay.recordings.recording import Recording, recording_id


def sidecar_path(path: Path) -> Path:
    return path.with_suffix(".toml")


def read_sidecar(path: Path) -> dict[str, Any]:
    """The sidecar's table; any failure to read or parse it is a SidecarError naming it
    (a table nested too deep for the parser included)."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SidecarError(
            f"sidecar {path} is not valid TOML: {exc}",
            hint="fix the syntax at that line (TOML: key = value, strings in quotes)",
        ) from None
    except OSError as exc:
        raise SidecarError(f"sidecar {path} cannot be read: {exc}") from None
    except RecursionError:
        raise SidecarError(
            f"sidecar {path} nests tables or arrays too deeply to be parsed",
            hint="flatten it: a sidecar needs only a few top-level keys and an [expect] table",
        ) from None
    except (UnicodeDecodeError, ValueError, MemoryError) as exc:
        raise SidecarError(f"sidecar {path} cannot be parsed: {exc}") from None


def _fields(data: dict[str, Any], side: Path) -> tuple[list[str], str | None, float | None]:
    tags = data.get("tags", [])
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise SidecarError(f"sidecar {side}: 'tags' must be a list of strings, got {tags!r}")
    scenario = data.get("scenario")
    if scenario is not None and not isinstance(scenario, str):
        raise SidecarError(f"sidecar {side}: 'scenario' must be a string, got {scenario!r}")
    nominal = data.get("nominal_speed")
    if nominal is not None and (isinstance(nominal, bool) or not isinstance(nominal, int | float)):
        raise SidecarError(f"sidecar {side}: 'nominal_speed' must be a number (km/h)")
    return tags, scenario, None if nominal is None else float(nominal)


def load_recording(path: Path, root: Path | None = None) -> Recording:
    """A Recording with its sidecar parsed (when ``NAME.toml`` exists beside ``NAME.mf4``)."""
    path = Path(path)
    root = root if root is not None else path.parent
    rid = recording_id(path, root)
    side = sidecar_path(path)
    if not side.is_file():
        return Recording(path=path, id=rid, root=root)
    data = read_sidecar(side)
    tags, scenario, nominal = _fields(data, side)
    expect = parse_expect(data.get("expect", {}), side)
    return Recording(
        path=path,
        id=rid,
        root=root,
        sidecar=side,
        scenario=scenario,
        tags=tuple(tags),
        description=str(data.get("description", "")),
        nominal_speed=nominal,
        expect=expect,
        meta=data,
    )

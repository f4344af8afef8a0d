"""The object list as inputs of C functions and FMUs: element inputs ``obj_dx[0]`` … bound
by name, slots bound in the binding file, a bound array name, ``index_base``, FMI 2
flattened names and FMI 3 array variables, the size-mismatch usage error, recordings
without an object list (NaN inputs) and what ``adsreplay function`` shows."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from native_build import build_fmu, build_library

from pytest_adsreplay.errors import ConfigError, FunctionLoadError
from pytest_adsreplay.function.binding import bind, load_binding
from pytest_adsreplay.function.native import NativeAdapter
from pytest_adsreplay.function.protocol import FunctionOptions
from pytest_adsreplay.mdf import ChannelData, GroupData, write_recording
from pytest_adsreplay.signals import ChannelMap, read_signals

SOURCE = Path(__file__).resolve().parents[1] / "native" / "object_inputs.c"
COUNT = 4


def library(root: Path, name: str = "obj_dx", base: int = 0, slots: int = COUNT) -> Path:
    """tests/native/object_inputs.c built with inputs ``name[base]`` … (cached per build)."""
    out = root / f"libobj_{name}_{base}_{slots}.so"
    if out.exists():
        return out
    defines = (f'OBJ_NAME="{name}"', f"OBJ_BASE={base}", f"OBJ_SLOTS={slots}")
    return build_library(out, [SOURCE], defines=defines)


def fmu(
    root: Path,
    version: int,
    name: str = "obj_dx",
    base: int = 0,
    slots: int = COUNT,
    integer: bool = False,
) -> Path:
    """tests/native/object_inputs.c as an FMI ``version`` co-simulation FMU (FMI 2: scalar
    inputs ``name[base]`` …; FMI 3: one array input ``name`` of ``slots`` elements;
    ``integer``: Integer / Int32 inputs instead of 64-bit floats)."""
    out = root / f"obj_{name}_{base}_{slots}_{integer:d}_fmi{version}.fmu"
    if out.exists():
        return out
    defines = (f'OBJ_NAME="{name}"', f"OBJ_BASE={base}", f"OBJ_SLOTS={slots}")
    lib = library(root, name, base, slots)
    names = [name] + [f"{name}[{base + k}]" for k in range(slots)]
    types = dict.fromkeys(names, "Integer") if integer else None
    model = f"obj{version}"
    return build_fmu(out, [SOURCE], lib, version=version, model=model, types=types, defines=defines)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("object_inputs")


def radar_recording(path: Path, *, count: int = COUNT, base: int = 0) -> tuple[Path, ChannelMap]:
    """A 2 s recording at 100 Hz with a ``count``-slot list at 10 Hz: slot 0 closes from
    50 m at 20 m/s, slot 1 holds 30 m from t = 1 s on (NaN before), slot 2 is 60 m, the
    others are empty (NaN)."""
    ts = np.round(np.arange(0.0, 2.0 + 1e-9, 0.1), 9)
    dx = np.full((ts.size, count), math.nan)
    dx[:, 0] = 50.0 - 20.0 * ts
    dx[ts >= 1.0, 1] = 30.0
    dx[:, 2] = 60.0
    ego_t = np.arange(0.0, 2.0 + 1e-9, 0.01)
    vx = np.where(np.isnan(dx), math.nan, 0.0)
    vx[:, 0] = -20.0
    chans = [
        ChannelData(f"Radar.Obj{j + base:02d}.{name}", values[:, j], unit=unit)
        for name, values, unit in (("DistX", dx, "m"), ("VrelX", vx, "m/s"))
        for j in range(count)
    ]
    write_recording(
        path,
        [
            GroupData("ego", ego_t, [ChannelData("VehSpd", np.full(ego_t.size, 20.0), unit="m/s")]),
            GroupData("radar", ts, chans),
        ],
    )
    cmap = ChannelMap.from_dict(
        {
            "objects": {
                "count": count,
                "index_base": base,
                "obj_dx": {"channels": ["Radar.Obj{i:02d}.DistX"], "unit": "m"},
                "obj_vx": {"channels": ["Radar.Obj{i:02d}.VrelX"], "unit": "m/s"},
            }
        }
    )
    return path, cmap


def at(t: np.ndarray, time: float) -> int:
    return int(np.argmin(np.abs(t - time)))


def expected(dx: np.ndarray) -> tuple[float, float, float]:
    """nearest_dx, slot_code, nan_slots of one cycle's slot values (as the C source)."""
    finite = ~np.isnan(dx)
    nearest = float(dx[finite].min()) if finite.any() else -1.0
    code = float(sum((k + 1) * x for k, x in enumerate(dx) if not math.isnan(x)))
    return nearest, code, float((~finite).sum())


def run(adapter: Any, sig: Any) -> dict[str, np.ndarray]:
    try:
        out: dict[str, np.ndarray] = adapter.run(sig.t, sig.values, recording="r")
    finally:
        adapter.close()
    return out


def check_outputs(out: dict[str, np.ndarray], sig: Any) -> None:
    dx = sig.objects["obj_dx"]
    for time in (0.05, 0.5, 1.2, 1.95):
        k = at(sig.t, time)
        nearest, code, nans = expected(dx[k])
        assert out["nearest_dx"][k] == pytest.approx(nearest), time
        assert out["slot_code"][k] == pytest.approx(code), time
        assert out["nan_slots"][k] == nans, time
    assert out["aeb_decel"][at(sig.t, 1.9)] == 4.0  # slot 0 at 12 m
    assert out["aeb_decel"][at(sig.t, 0.5)] == 0.0


# ---------------------------------------------------------------------------- binding


def test_element_inputs_bind_by_name_to_slots() -> None:
    b = bind("f", ["ego_speed", "obj_dx[0]", "obj_vy[3]"], ["aeb_decel"], None, allow_start=False)
    assert b.inputs == (
        ("ego_speed", "ego_speed"),
        ("obj_dx[0]", "obj_dx[0]"),
        ("obj_vy[3]", "obj_vy[3]"),
    )
    assert b.object_slots() == {"obj_dx": (1, "obj_dx[0]"), "obj_vy": (4, "obj_vy[3]")}


def test_binding_file_binds_own_names_to_slots_and_arrays_to_fields() -> None:
    table = {"inputs": {"Radar_dx_3": "obj_dx[3]", "RdrDy": "obj_dy"}}
    names = ["Radar_dx_3", "RdrDy[0]", "RdrDy[1]"]
    b = bind("f", names, ["aeb_decel"], table, allow_start=False)
    assert b.inputs == (
        ("Radar_dx_3", "obj_dx[3]"),
        ("RdrDy[0]", "obj_dy[0]"),
        ("RdrDy[1]", "obj_dy[1]"),
    )


def test_index_base_one_shifts_the_function_s_names() -> None:
    table = {"inputs": {"index_base": 1, "RdrDy": "obj_dy"}}
    b = bind("f", ["obj_dx[1]", "obj_dx[2]", "RdrDy[1]"], ["aeb_decel"], table, allow_start=False)
    assert b.inputs == (
        ("obj_dx[1]", "obj_dx[0]"),
        ("obj_dx[2]", "obj_dx[1]"),
        ("RdrDy[1]", "obj_dy[0]"),
    )
    with pytest.raises(
        FunctionLoadError, match=r"'obj_dx\[0\]' of f names object slot 0, below index_base = 1"
    ):
        bind("f", ["obj_dx[0]"], ["aeb_decel"], {"inputs": {"index_base": 1}}, allow_start=False)


def test_array_inputs_take_a_whole_field() -> None:
    b = bind(
        "f",
        ["obj_dx", "Dy"],
        ["aeb_decel"],
        {"inputs": {"Dy": "obj_dy"}},
        allow_start=True,
        sizes={"obj_dx": 3, "Dy": 3},
    )
    assert b.columns() == [
        "obj_dx[0]",
        "obj_dx[1]",
        "obj_dx[2]",
        "obj_dy[0]",
        "obj_dy[1]",
        "obj_dy[2]",
    ]
    assert b.offsets() == [0, 3, 6]
    with pytest.raises(
        FunctionLoadError, match=r"array input 'Dy'.*'ego_speed' is not an object field"
    ):
        bind(
            "f",
            ["Dy"],
            ["aeb_decel"],
            {"inputs": {"Dy": "ego_speed"}},
            allow_start=False,
            sizes={"Dy": 3},
        )


@pytest.mark.parametrize(
    ("names", "table", "match"),
    [
        (
            ["Dx"],
            {"Dx": "obj_dx"},
            "'obj_dx' is a whole object field, and the input is a single value",
        ),
        (["Dx[0]"], {"Dx": "ego_speed"}, r"binds the elements Dx\[…\] of an array"),
        (["Dx[0]"], {"Dy": "obj_dy"}, "names 'Dy', which is not one of the inputs"),
        (["Dx[0]"], {}, r"input\(s\) 'Dx\[0\]' .* are not bound"),
        (["obj_speed[0]"], {}, "are not bound"),
    ],
)
def test_bad_object_bindings_are_usage_errors(
    names: list[str], table: dict[str, str], match: str
) -> None:
    with pytest.raises(FunctionLoadError, match=match):
        bind("f", names, ["aeb_decel"], {"inputs": table}, allow_start=False)


def test_index_base_in_the_binding_file_is_checked(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[inputs]\nindex_base = 1\nRdrDx = "obj_dx"\n')
    assert load_binding(good)["inputs"]["index_base"] == 1
    bad = tmp_path / "bad.toml"
    bad.write_text('[inputs]\nindex_base = "one"\n')
    with pytest.raises(ConfigError, match="index_base = 'one' must be 0 or 1"):
        load_binding(bad)
    with pytest.raises(FunctionLoadError, match="index_base = -1 must be 0 or 1"):
        bind("f", ["obj_dx[0]"], ["aeb_decel"], {"inputs": {"index_base": -1}}, allow_start=False)
    other = tmp_path / "objects.toml"
    other.write_text("[objects]\nindex_base = 1\n")
    with pytest.raises(ConfigError, match="index_base in \\[inputs\\]"):
        load_binding(other)


# ---------------------------------------------------------------------------- C functions


def test_c_function_receives_the_slots_by_name(root: Path, tmp_path: Path) -> None:
    path, cmap = radar_recording(tmp_path / "r.mf4")
    sig = read_signals(path, cmap)
    out = run(NativeAdapter(str(library(root))), sig)
    check_outputs(out, sig)


def test_c_function_with_its_own_array_name_bound_to_a_field(root: Path, tmp_path: Path) -> None:
    path, cmap = radar_recording(tmp_path / "r.mf4")
    sig = read_signals(path, cmap)
    lib = library(root, "RadarDx")
    binding = {"inputs": {"RadarDx": "obj_dx"}}
    adapter = NativeAdapter(str(lib), options=FunctionOptions(binding=binding))
    assert adapter.binding.input_of("RadarDx[3]") == "obj_dx[3]"
    check_outputs(run(adapter, sig), sig)


def test_c_function_numbering_its_slots_from_one(root: Path, tmp_path: Path) -> None:
    path, cmap = radar_recording(tmp_path / "r.mf4", base=1)  # the logger counts from 1 too
    sig = read_signals(path, cmap)
    lib = library(root, "obj_dx", base=1)
    binding = {"inputs": {"index_base": 1}}
    adapter = NativeAdapter(str(lib), options=FunctionOptions(binding=binding))
    assert adapter.binding.input_of("obj_dx[1]") == "obj_dx[0]"
    check_outputs(run(adapter, sig), sig)
    with pytest.raises(FunctionLoadError, match="names object slot 0, below index_base = 1"):
        NativeAdapter(str(library(root)), options=FunctionOptions(binding=binding))
    forgotten = NativeAdapter(str(lib))  # without index_base = 1: slots 1 … 4 of 4
    try:
        with pytest.raises(FunctionLoadError, match="takes 5 slots") as info:
            forgotten.run(sig.t, sig.values, recording="r")
    finally:
        forgotten.close()
    assert "it counts its slots from 1, so set index_base = 1 in [inputs]" in str(info.value)


@pytest.mark.parametrize("count", [2, 6])
def test_slot_count_mismatch_is_a_usage_error_before_the_first_cycle(
    root: Path, tmp_path: Path, count: int
) -> None:
    path, cmap = radar_recording(tmp_path / "r.mf4", count=max(count, 3))
    sig = read_signals(path, cmap)
    values = {
        k: v for k, v in sig.values.items() if not k.startswith("obj_dx[") or int(k[7:-1]) < count
    }
    adapter = NativeAdapter(str(library(root)))
    try:
        with pytest.raises(FunctionLoadError) as info:
            adapter.run(sig.t, values, recording="rec-7")
    finally:
        adapter.close()
    text = str(info.value)
    assert text.startswith("rec-7: the function under test")
    assert "takes 4 slots of the object list's obj_dx (input 'obj_dx[3]')" in text
    assert f"the recording's object list has {count}" in text
    assert "[objects] count = 4 in the channel map" in text
    assert ("fewer" if count < 4 else "more") + " slots in the function" in text


def test_recording_without_an_object_list_gives_nan_slots(root: Path) -> None:
    t = np.arange(50) * 0.01
    adapter = NativeAdapter(str(library(root)))
    try:
        out = adapter.run(t, {"ego_speed": np.full(50, 20.0)}, recording="r")
    finally:
        adapter.close()
    assert (out["nan_slots"] == COUNT).all()
    assert (out["nearest_dx"] == -1.0).all() and (out["aeb_decel"] == 0.0).all()


# ---------------------------------------------------------------------------- FMUs


def test_fmi2_fmu_receives_the_slots_as_flattened_inputs(root: Path, tmp_path: Path) -> None:
    from pytest_adsreplay.function.fmu import FmuAdapter

    path, cmap = radar_recording(tmp_path / "r.mf4")
    sig = read_signals(path, cmap)
    adapter = FmuAdapter(str(fmu(root, 2)))
    assert [p.name for p in adapter.info().inputs][1:] == [f"obj_dx[{k}]" for k in range(COUNT)]
    check_outputs(run(adapter, sig), sig)


def test_fmi2_fmu_with_slots_numbered_from_one(root: Path, tmp_path: Path) -> None:
    from pytest_adsreplay.function.fmu import FmuAdapter

    path, cmap = radar_recording(tmp_path / "r.mf4")
    sig = read_signals(path, cmap)
    binding = {"inputs": {"index_base": 1}}
    adapter = FmuAdapter(str(fmu(root, 2, base=1)), options=FunctionOptions(binding=binding))
    assert adapter.binding.input_of("obj_dx[4]") == "obj_dx[3]"
    check_outputs(run(adapter, sig), sig)


def test_fmi3_fmu_receives_an_array_variable(root: Path, tmp_path: Path) -> None:
    from pytest_adsreplay.function.fmu import FmuAdapter

    path, cmap = radar_recording(tmp_path / "r.mf4")
    sig = read_signals(path, cmap)
    adapter = FmuAdapter(str(fmu(root, 3)))
    port = adapter.info().inputs[1]
    assert (port.name, port.kind, port.size, port.binds_to) == ("obj_dx", "array", COUNT, "obj_dx")
    assert len(adapter.info().inputs) == 2
    check_outputs(run(adapter, sig), sig)


def test_fmi3_array_bound_to_a_field_in_the_binding_file(root: Path, tmp_path: Path) -> None:
    from pytest_adsreplay.function.fmu import FmuAdapter

    path, cmap = radar_recording(tmp_path / "r.mf4")
    sig = read_signals(path, cmap)
    binding = {"inputs": {"RdrObjDx": "obj_dx"}}
    adapter = FmuAdapter(str(fmu(root, 3, "RdrObjDx")), options=FunctionOptions(binding=binding))
    check_outputs(run(adapter, sig), sig)
    with pytest.raises(
        FunctionLoadError,
        match=r"input\(s\) 'RdrObjDx' .* are not bound(.|\n)*e\.g\. RdrObjDx = \"obj_dx\"",
    ):
        FmuAdapter(str(fmu(root, 3, "RdrObjDx")))


def test_fmi3_array_of_another_size_than_the_list_is_a_usage_error(
    root: Path, tmp_path: Path
) -> None:
    from pytest_adsreplay.function.fmu import FmuAdapter

    path, cmap = radar_recording(tmp_path / "r.mf4", count=6)
    sig = read_signals(path, cmap)
    adapter = FmuAdapter(str(fmu(root, 3)))
    try:
        with pytest.raises(
            FunctionLoadError,
            match="takes 4 slots of the object list's obj_dx "
            r"\(input 'obj_dx'\), and the recording's object list has 6",
        ):
            adapter.run(sig.t, sig.values, recording="r")
        t = np.arange(30) * 0.01
        out = adapter.run(t, {"ego_speed": np.full(30, 20.0)}, recording="r")  # no list: NaN
    finally:
        adapter.close()
    assert (out["nan_slots"] == COUNT).all() and (out["nearest_dx"] == -1.0).all()


@pytest.mark.parametrize("version", [2, 3])
def test_fmu_wrappers_take_a_list_of_300_slots(root: Path, version: int) -> None:
    from pytest_adsreplay.function.fmu import FmuAdapter

    slots, n = 300, 20
    t = np.arange(n) * 0.01
    values = {"ego_speed": np.full(n, 20.0)}
    for k in range(slots):
        values[f"obj_dx[{k}]"] = np.full(n, 100.0 + k) if k % 7 else np.full(n, math.nan)
    values["obj_dx[150]"] = 20.0 + t  # the nearest, and below 25 m
    adapter = FmuAdapter(str(fmu(root, version, slots=slots)))
    assert len(adapter.info().inputs) == (1 + slots if version == 2 else 2)
    try:
        out = adapter.run(t, values, recording="r")
    finally:
        adapter.close()
    row = np.array([values[f"obj_dx[{k}]"][3] for k in range(slots)])
    nearest, code, nans = expected(row)
    assert out["nearest_dx"][3] == pytest.approx(nearest) and nearest == pytest.approx(20.03)
    assert out["slot_code"][3] == pytest.approx(code)
    assert out["nan_slots"][3] == nans == len(range(0, slots, 7))
    assert (out["aeb_decel"] == 4.0).all()


@pytest.mark.parametrize("version", [2, 3])
def test_integer_slot_inputs_get_zero_for_empty_slots(root: Path, version: int) -> None:
    from pytest_adsreplay.function.fmu import FmuAdapter

    n = 10
    t = np.arange(n) * 0.01
    values = {"ego_speed": np.full(n, 20.0)}
    ids = [7.0, math.nan, 12.0, 3.0]
    for k, track in enumerate(ids):
        values[f"obj_dx[{k}]"] = np.full(n, 40.0)
        values[f"obj_id[{k}]"] = np.full(n, track)
    adapter = FmuAdapter(str(fmu(root, version, "obj_id", integer=True)))
    assert adapter.info().inputs[1].kind == ("int" if version == 2 else "array")
    try:
        out = adapter.run(t, values, recording="r")
    finally:
        adapter.close()
    assert (out["nan_slots"] == 0).all()  # an Integer input cannot hold NaN: 0
    assert (out["nearest_dx"] == 0.0).all()
    assert (out["slot_code"] == 1 * 7 + 2 * 0 + 3 * 12 + 4 * 3).all()


# ---------------------------------------------------------------------------- adsreplay function


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    from pytest_adsreplay.cli.main import main

    assert main(["function", *args]) == 0
    return capsys.readouterr().out


def test_cli_function_shows_the_object_inputs_bound(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = cli(capsys, str(library(root)))
    assert "inputs (5):" in text
    assert "obj_dx[0] … obj_dx[3]  <- obj_dx slots 0 … 3 of the object list (by name)" in text
    assert "note: object list: takes 4 slots of obj_dx;" in text
    assert "[objects] count = 4 in the channel map" in text

    binding = tmp_path / "binding.toml"
    binding.write_text('[inputs]\nindex_base = 1\nRadarDx = "obj_dx"\n')
    text = cli(capsys, str(library(root, "RadarDx", base=1)), "--binding", str(binding))
    assert (
        "RadarDx[1] … RadarDx[4]  <- obj_dx slots 0 … 3 of the object list "
        "(binding file, index_base 1)"
    ) in text

    text = cli(capsys, str(fmu(root, 3)))
    assert "inputs (2):" in text
    assert re.search(
        r"obj_dx +<- obj_dx slots 0 … 3 of the object list \(by name, an array of 4\)", text
    )
    assert "note: object list: takes 4 slots of obj_dx;" in text


# ---------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("form", ["c", "fmi3"])
def test_replay_file_feeds_the_list_to_the_function_in_its_host(
    root: Path, tmp_path: Path, form: str
) -> None:
    from pytest_adsreplay import replay_file
    from pytest_adsreplay.errors import UsageError

    path, cmap = radar_recording(tmp_path / "r.mf4")
    spec = library(root) if form == "c" else fmu(root, 3)
    result = replay_file(path, str(spec), channel_map=cmap, sidecar=False, expect_target=False)
    sig = read_signals(path, cmap)
    k = at(sig.t, 1.2)
    nearest, code, nans = expected(sig.objects["obj_dx"][k])
    assert result.outputs["slot_code"][k] == pytest.approx(code)
    assert result.outputs["nearest_dx"][k] == pytest.approx(nearest)
    assert result.outputs["nan_slots"][k] == nans

    six, cmap6 = radar_recording(tmp_path / "six.mf4", count=6)
    with pytest.raises(UsageError, match="takes 4 slots of the object list's obj_dx"):
        replay_file(six, str(spec), channel_map=cmap6, sidecar=False, expect_target=False)


def test_cli_function_without_a_complete_binding_shows_arrays_by_name(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_adsreplay.cli.main import main

    binding = tmp_path / "binding.toml"
    binding.write_text('[inputs]\nNoSuchInput = "ego_speed"\n')
    assert main(["function", str(fmu(root, 3)), "--binding", str(binding)]) == 2
    captured = capsys.readouterr()
    assert re.search(r"obj_dx +<- obj_dx slots 0 … 3 of the object list \(by name", captured.out)
    assert "'NoSuchInput', which is not one of the inputs" in captured.err
    assert main(["function", str(fmu(root, 3, "RdrObjDx"))]) == 2
    captured = capsys.readouterr()
    assert re.search(r"RdrObjDx +<- UNBOUND", captured.out)
    assert 'e.g. RdrObjDx = "obj_dx"' in captured.err

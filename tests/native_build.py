"""Builds of native functions for the tests: the C reference as a shared library and as
FMI 2.0 / 3.0 co-simulation FMUs, compiled with the machine's C compiler once per session.

Tests that need them call :func:`build_all` from a fixture; without a C compiler they skip
with a message that says how to get one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest

NATIVE = Path(__file__).resolve().parents[1] / "pytest_adsreplay" / "native"
FLAGS = ["-O2", "-ffp-contract=off", "-shared", "-fPIC"]

#: A C function with its own port names, a failure switch and no batch entry point.
CUSTOM_C = r"""
#include "adsreplay_function.h"
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static const char *IN[] = {"VehSpd_mps", "target_distance", "target_rel_speed"};
static const char *OUT[] = {"AebDecelReq", "FcwReq", "ttc_est"};
static const char *PAR[] = {"ctrl.brake_ttc", "ctrl.decel", "fail_at"};
static const double DEF[] = {1.5, 6.0, INFINITY};
struct adsreplay_instance { double p[3]; char err[200]; };
static char create_err[200];

int adsreplay_abi_version(void) { return ADSREPLAY_ABI_VERSION; }
int adsreplay_input_count(void) { return 3; }
const char *adsreplay_input_name(int i) { return IN[i]; }
int adsreplay_output_count(void) { return 3; }
const char *adsreplay_output_name(int i) { return OUT[i]; }
int adsreplay_parameter_count(void) { return 3; }
const char *adsreplay_parameter_name(int i) { return PAR[i]; }
double adsreplay_parameter_default(int i) { return DEF[i]; }
const char *adsreplay_last_error(const adsreplay_instance *f) { return f ? f->err : create_err; }

adsreplay_instance *adsreplay_create(const char *json) {
    adsreplay_instance *f = calloc(1, sizeof *f);
    memcpy(f->p, DEF, sizeof DEF);
    for (int i = 0; i < 3; i++) {
        char key[64];
        snprintf(key, sizeof key, "\"%s\":", PAR[i]);
        const char *at = strstr(json, key);
        if (at) f->p[i] = strtod(at + strlen(key), NULL);
    }
    if (f->p[1] < 0) {
        snprintf(create_err, sizeof create_err, "ctrl.decel must be >= 0");
        free(f);
        return NULL;
    }
    return f;
}
int adsreplay_reset(adsreplay_instance *f) { f->err[0] = 0; return 0; }
void adsreplay_free(adsreplay_instance *f) { free(f); }
int adsreplay_step(adsreplay_instance *f, double t, const double *in, double *out) {
    if (t >= f->p[2]) {
        snprintf(f->err, sizeof f->err, "radar plausibility check failed (speed %.1f m/s)", in[0]);
        return 7;
    }
    double ttc = in[2] < 0 && in[1] > 0 ? in[1] / -in[2] : INFINITY;
    out[0] = ttc <= f->p[0] && in[0] > 1.0 ? f->p[1] : 0.0;
    out[1] = ttc <= f->p[0] + 1.0 ? 1.0 : 0.0;
    out[2] = ttc;
    return 0;
}
"""


def compiler() -> str | None:
    """The machine's C compiler, or None."""
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_compiler() -> str:
    cc = compiler()
    if cc is None:
        pytest.skip(
            "no C compiler (cc, gcc or clang) on PATH: install one (e.g. apt-get install gcc) "
            "to build the C and FMU forms of the reference function"
        )
    return cc


def compile_c(cmd: list[str]) -> None:
    """Run the compiler; a failure shows its command line and its messages."""
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr}{done.stdout}")


def fmi_headers() -> Path:
    fmpy = pytest.importorskip("fmpy", reason="pip install 'pytest-adsreplay[fmu]'")
    return Path(fmpy.__file__).parent / "c-code"


def build_library(out: Path, sources: list[Path], *, defines: tuple[str, ...] = ()) -> Path:
    """Compile ``sources`` with the ABI header into the shared library ``out``."""
    cc = require_compiler()
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [cc, *FLAGS, f"-I{NATIVE}", *(f"-D{d}" for d in defines), *map(str, sources)]
    compile_c([*cmd, "-o", str(out), "-lm"])
    return out


def _variables(library: Path) -> tuple[list[tuple[str, float]], list[str], list[str], float]:
    from pytest_adsreplay.function.native import _names, load_library

    lib = load_library(library)
    names = _names(lib, "parameter")
    params = [(n, float(lib.adsreplay_parameter_default(i))) for i, n in enumerate(names)]
    step = float(lib.adsreplay_cycle_time()) if hasattr(lib, "adsreplay_cycle_time") else 0.01
    return params, _names(lib, "input"), _names(lib, "output"), step


#: ``x[12]``: an element of an array the library names element by element.
_ELEMENT = re.compile(r"(.+)\[(\d+)\]")


def array_inputs(inputs: list[str]) -> list[tuple[str, int]]:
    """The FMI 3 input variables of a library's inputs, as ``fmi3_cs.c`` numbers them:
    each run of inputs ``x[k]``, ``x[k+1]`` … (consecutive, consecutive indices) is one
    array variable ``(x, n)``, every other input ``(name, 0)`` a scalar."""
    out: list[tuple[str, int]] = []
    previous: tuple[str, int] | None = None
    for name in inputs:
        m = _ELEMENT.fullmatch(name)
        element = (m.group(1), int(m.group(2))) if m else None
        if element and previous and element == (previous[0], previous[1] + 1):
            out[-1] = (out[-1][0], out[-1][1] + 1)
        elif element:
            out.append((element[0], 1))
        else:
            out.append((name, 0))
        previous = element
    return out


def model_description(
    library: Path, version: int, model: str, types: Mapping[str, str] | None = None
) -> str:
    """modelDescription.xml of the FMU around ``library`` (value references as in
    ``adsreplay_fmu_core.h``: FMI 3 declares inputs ``x[0]`` … ``x[n-1]`` as one array
    variable ``x`` with a Dimension of n); ``types`` makes ports ``"Boolean"`` or
    ``"Integer"`` instead of 64-bit floats."""
    params, inputs, outputs, step = _variables(library)
    token = "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"adsreplay:{model}:{version}")) + "}"
    rows: list[tuple[str, str, float | None]] = [(n, "parameter", d) for n, d in params]
    sizes: dict[str, int] = {}
    if version == 2:
        rows += [(n, "input", 0.0) for n in inputs]
    else:
        for name, size in array_inputs(inputs):
            rows.append((name, "input", 0.0))
            if size:
                sizes[name] = size
    rows += [(n, "output", None) for n in outputs]
    out_refs = [i for i, (_, c, _) in enumerate(rows) if c == "output"]
    lines = ['<?xml version="1.0" encoding="UTF-8"?>']
    if version == 2:
        lines.append(
            f'<fmiModelDescription fmiVersion="2.0" modelName="{model}" guid="{token}" '
            'generationTool="pytest-adsreplay tests" variableNamingConvention="structured">'
        )
    else:
        lines.append(
            f'<fmiModelDescription fmiVersion="3.0" modelName="{model}" '
            f'instantiationToken="{token}" generationTool="pytest-adsreplay tests">'
        )
    lines.append(
        f'  <CoSimulation modelIdentifier="{model}" canHandleVariableCommunicationStepSize="true"/>'
    )
    lines.append(f'  <DefaultExperiment startTime="0" stepSize="{step!r}"/>')
    lines.append("  <ModelVariables>")
    for vr, (name, causality, start) in enumerate(rows):
        kind = (types or {}).get(name, "Real")
        var = "fixed" if causality == "parameter" else "continuous"
        var = "discrete" if kind != "Real" and causality != "parameter" else var
        text = "false" if kind == "Boolean" else "0" if kind == "Integer" else repr(start)
        start_attr = f' start="{text}"' if start is not None else ""
        attrs = f'name={quoteattr(name)} valueReference="{vr}" causality="{causality}" variability="{var}"'
        if causality == "output":
            attrs += ' initial="calculated"' if version == 2 else ""
        if version == 2:
            lines.append(f"    <ScalarVariable {attrs}><{kind}{start_attr}/></ScalarVariable>")
        elif name in sizes:
            element = {"Real": "Float64", "Integer": "Int32"}.get(kind, kind)
            start_attr = f' start="{" ".join([text] * sizes[name])}"'
            lines.append(f"    <{element} {attrs}{start_attr}>")
            lines.append(f'      <Dimension start="{sizes[name]}"/>')
            lines.append(f"    </{element}>")
        else:
            element = {"Real": "Float64", "Integer": "Int32"}.get(kind, kind)
            lines.append(f"    <{element} {attrs}{start_attr}/>")
    lines.append("  </ModelVariables>")
    lines.append("  <ModelStructure>")
    if version == 2:
        unknowns = "".join(f'<Unknown index="{i + 1}"/>' for i in out_refs)
        lines.append(f"    <Outputs>{unknowns}</Outputs>")
        lines.append(f"    <InitialUnknowns>{unknowns}</InitialUnknowns>")
    else:
        lines += [f'    <Output valueReference="{i}"/>' for i in out_refs]
        lines += [f'    <InitialUnknown valueReference="{i}"/>' for i in out_refs]
    lines.append("  </ModelStructure>")
    lines.append("</fmiModelDescription>")
    return "\n".join(lines) + "\n"


def build_fmu(
    out: Path,
    sources: list[Path],
    library: Path,
    *,
    version: int = 2,
    model: str = "aeb",
    types: Mapping[str, str] | None = None,
    defines: tuple[str, ...] = (),
) -> Path:
    """An FMI ``version`` co-simulation FMU of the C function in ``sources`` (whose
    metadata is read from the already built ``library``; ``types`` as in
    :func:`model_description`; ``defines`` as ``-D`` flags)."""
    import fmpy

    cc = require_compiler()
    work = out.parent / f"{out.stem}.build"
    platform = fmpy.platform if version == 2 else fmpy.platform_tuple
    binary = work / "binaries" / platform / f"{model}.so"
    binary.parent.mkdir(parents=True, exist_ok=True)
    wrapper = NATIVE / ("fmi2_cs.c" if version == 2 else "fmi3_cs.c")
    cmd = [cc, *FLAGS, f"-I{NATIVE}", f"-I{fmi_headers()}", *(f"-D{d}" for d in defines)]
    cmd += [str(wrapper), *map(str, sources)]
    compile_c([*cmd, "-o", str(binary), "-lm"])
    (work / "modelDescription.xml").write_text(model_description(library, version, model, types))
    with zipfile.ZipFile(out, "w") as zf:
        for path in sorted(work.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(work).as_posix())
    return out


def write_fmu(out: Path, xml: str, binaries: dict[str, bytes] | None = None) -> Path:
    """A hand-made FMU: ``xml`` as modelDescription.xml plus the given archive members."""
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("modelDescription.xml", xml)
        for name, data in (binaries or {}).items():
            zf.writestr(name, data)
    return out


@dataclass(frozen=True)
class Builds:
    """Paths of the session's native builds."""

    root: Path
    reference: Path  # the C reference with the batch entry point
    reference_steps: Path  # the same without it (one call per cycle)
    reference_fmu2: Path
    reference_fmu3: Path | None
    custom: Path  # CUSTOM_C: its own names, fail_at, no batch
    custom_fmu2: Path


_BUILT: list[Builds] = []


def build_all(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    """Every build, once per session (test modules wrap this in a ``native_builds``
    fixture)."""
    if _BUILT:
        return _BUILT[0]
    require_compiler()
    fmi_headers()
    root = tmp_path_factory.mktemp("native")
    ref_src = [NATIVE / "ttc_aeb.c"]
    reference = build_library(root / "libaeb_reference.so", ref_src)
    steps = build_library(
        root / "libaeb_reference_steps.so", ref_src, defines=("ADSREPLAY_NO_BATCH",)
    )
    custom_src = root / "custom.c"
    custom_src.write_text(CUSTOM_C)
    custom = build_library(root / "libcustom.so", [custom_src])
    fmu2 = build_fmu(root / "aeb2.fmu", ref_src, reference, version=2)
    fmu3 = None
    if (NATIVE / "fmi3_cs.c").is_file():
        fmu3 = build_fmu(root / "aeb3.fmu", ref_src, reference, version=3)
    custom_fmu = build_fmu(root / "custom2.fmu", [custom_src], custom, version=2, model="custom")
    _BUILT.append(Builds(root, reference, steps, fmu2, fmu3, custom, custom_fmu))
    return _BUILT[0]

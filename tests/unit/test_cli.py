"""The ``adsreplay`` command: subcommand modules, --version, generate's options, cache prune."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from pytest_adsreplay import cli
from pytest_adsreplay.queue import cache

MODULES = ("generate", "inspect", "function", "worker", "history", "cache")
cli_main = importlib.import_module("pytest_adsreplay.cli.main")  # `cli.main` is the function


def sidecar(path: Path) -> dict[str, Any]:
    with open(path.with_suffix(".toml"), "rb") as fh:
        return tomllib.load(fh)


# ----------------------------------------------------------------------- the parser


@pytest.mark.parametrize("name", MODULES)
def test_each_subcommand_module_has_register_and_run(name: str) -> None:
    module = importlib.import_module(f"pytest_adsreplay.cli.{name}")
    assert callable(module.register) and callable(module.run)


def test_every_subcommand_is_registered() -> None:
    parser = cli_main.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    names = set(sub.choices or ())
    assert {"generate", "inspect", "worker", "history", "compare", "cache"} <= names
    for name in names:
        args = parser.parse_args(_minimal(name))
        assert callable(args.func), name


def _minimal(name: str) -> list[str]:
    return {
        "generate": ["generate", "out"],
        "inspect": ["inspect", "f.mf4"],
        "compare": ["compare", "a", "b"],
        "cache": ["cache", "info"],
    }.get(name, [name])


def test_a_missing_optional_module_is_skipped_a_missing_required_one_is_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli_main, "SUBCOMMANDS", (*cli_main.SUBCOMMANDS, "not_there"))
    with pytest.raises(ModuleNotFoundError, match="not_there"):
        cli_main.build_parser()
    monkeypatch.setattr(cli_main, "OPTIONAL", cli_main.OPTIONAL | {"not_there"})
    parser = cli_main.build_parser()
    assert parser.parse_args(["cache", "info"]).command == "cache"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    version = importlib.metadata.version("pytest-adsreplay")
    assert capsys.readouterr().out.strip() == f"adsreplay (pytest-adsreplay) {version}"


def test_module_and_console_script_entry_points() -> None:
    runs = [[sys.executable, "-m", "pytest_adsreplay.cli", "--version"]]
    script = shutil.which("adsreplay", path=str(Path(sys.executable).parent))
    assert script is not None, "the adsreplay console script is not installed beside python"
    runs.append([script, "--version"])
    for cmd in runs:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("adsreplay (pytest-adsreplay) "), cmd


def test_usage_error_is_exit_2_with_the_command_and_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["history", "--db", str(tmp_path / "none.sqlite")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("adsreplay history: error: no results database at ")
    assert "run pytest with the plugin first" in err


# ------------------------------------------------------------------------- generate


def test_generate_suite_choices_match_the_scenarios() -> None:
    from pytest_adsreplay.cli.generate import SUITE_NAMES
    from pytest_adsreplay.scenarios import SUITES

    assert sorted(SUITE_NAMES) == sorted(SUITES)


def test_generate_no_expect_writes_sidecars_without_bounds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_adsreplay.recordings import load_recording

    assert (
        cli.main(["generate", str(tmp_path), "--suite", "ncap", "--no-expect", "--speeds", "40"])
        == 0
    )
    out, err = capsys.readouterr()
    paths = [Path(line) for line in out.splitlines()]
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "ncap/CCRb_d2_g12m.mf4",
        "ncap/CCRb_d2_g40m.mf4",
        "ncap/CCRb_d6_g12m.mf4",
        "ncap/CCRb_d6_g40m.mf4",
        "ncap/CCRm_40kph.mf4",
        "ncap/CCRs_40kph.mf4",
    ]
    assert "without [expect] bounds" in err
    for path in paths:
        data = sidecar(path)
        assert "expect" not in data
        assert not {"avoidance", "mitigation"} & set(data["tags"])
        assert "no [expect] bounds" in path.with_suffix(".toml").read_text().splitlines()[0]
        rec = load_recording(path, tmp_path)
        assert rec.expect == () and rec.scenario == data["scenario"]


def test_generate_with_expect_says_whose_bounds_they_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["generate", str(tmp_path), "--suite", "false-activation"]) == 0
    err = capsys.readouterr().err
    assert "bounds are the reference function's (pytest_adsreplay.reference:TtcAeb" in err
    assert sidecar(tmp_path / "false-activation" / "no_target.mf4")["expect"] == {
        "fcw": False,
        "brake": False,
    }


def test_generate_parameters_shape_the_ncap_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", str(tmp_path), "--suite", "ncap", "--speeds", "15,45"]
    argv += ["--gaps", "20", "--decels", "3,5", "--overlap", "100,-50"]
    assert cli.main(argv) == 0
    names = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.mf4"))
    assert names == sorted(
        f"ncap/{stem}{sfx}.mf4"
        for sfx in ("", "_o-50")
        for stem in ("CCRs_15kph", "CCRs_45kph", "CCRm_45kph", "CCRb_d3_g20m", "CCRb_d5_g20m")
    )  # CCRm from 25 km/h: 5 km/h above its target
    gen = sidecar(tmp_path / "ncap" / "CCRb_d5_g20m_o-50.mf4")["generator"]
    assert gen["gap_t0"] == 20.0 and gen["target_decel"] == 5.0 and gen["overlap"] == -50.0
    assert "overlap" not in sidecar(tmp_path / "ncap" / "CCRs_45kph.mf4")["generator"]
    assert capsys.readouterr().out.count(".mf4") == 10


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--speeds", "200"], "--speeds 200 km/h is outside 10..130 km/h"),
        (["--decels", "0"], "--decels 0 m/s^2 is outside 0.5..10 m/s^2"),
        (["--gaps", "1"], "--gaps 1 m is outside 2..150 m"),
        (["--overlap", "0"], "--overlap 0 % is outside 0 < |overlap| <= 100"),
        (["--suite", "bundled", "--speeds", "40"], "do not apply to suite 'bundled'"),
        (["--suite", "false-activation", "--overlap", "50"], "do not apply to suite"),
    ],
)
def test_generate_rejects_bad_parameters_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert cli.main(["generate", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("adsreplay generate: error: ") and message in err
    assert "\n  -> " in err  # what to do instead
    assert not (tmp_path / "out").exists()


def test_generate_list_that_is_not_numbers_is_an_argparse_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["generate", str(tmp_path), "--speeds", "20,fast"])
    assert exc.value.code == 2
    assert "'fast' is not a number" in capsys.readouterr().err


def test_overlapped_bounds_hold_for_the_reference_and_an_outside_target_gets_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """At 50 % overlap the target is 0.9 m off centre, inside the reference's 1.0 m lateral
    gate: the generated bounds hold for it. At 25 % (1.35 m) the reference never reacts,
    so the generator writes no bounds rather than requiring that."""
    from pytest_adsreplay import replay_file

    argv = ["generate", str(tmp_path), "--suite", "ncap", "--speeds", "40", "--gaps", "40"]
    assert cli.main([*argv, "--decels", "2", "--overlap", "50,25"]) == 0
    assert "no [expect] bounds for 3 scenario(s)" in capsys.readouterr().err
    inside = tmp_path / "ncap" / "CCRs_40kph_o50.mf4"
    expect = sidecar(inside)["expect"]
    r = replay_file(inside, "pytest_adsreplay.reference:TtcAeb")
    lo, hi = expect["ttc_at_brake"]
    assert r.ttc_at_brake is not None and lo <= r.ttc_at_brake <= hi
    assert r.collision is expect["collision"] is False
    outside = tmp_path / "ncap" / "CCRs_40kph_o25.mf4"
    assert "expect" not in sidecar(outside)
    assert replay_file(outside, "pytest_adsreplay.reference:TtcAeb").brake_time is None


def test_bounds_on_a_non_default_grid_hold_for_the_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The closed forms behind the bounds are not tuned to the default grid: off-grid
    speeds, a CCRb case and a left-side overlap all pass with the reference."""
    from pytest_adsreplay import replay_file
    from pytest_adsreplay.recordings import check_expectations, load_recording

    argv = ["generate", str(tmp_path), "--suite", "ncap", "--speeds", "35,75"]
    assert cli.main([*argv, "--decels", "4", "--gaps", "25", "--overlap", "100,-70"]) == 0
    paths = [Path(line) for line in capsys.readouterr().out.splitlines()]
    assert len(paths) == 10
    for path in paths:
        rec = load_recording(path, tmp_path)
        assert rec.expect, path
        result = replay_file(path, "pytest_adsreplay.reference:TtcAeb")
        violations = check_expectations(rec.expect, result.kpis)
        assert [v.describe() for v in violations] == [], path


# ---------------------------------------------------------------------------- cache


def test_cache_prune_without_max_size_forgets_gone_files_and_keeps_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np

    monkeypatch.setattr(cache, "_RACY", 0.0)  # remember hashes of files written just now
    where = tmp_path / "c"
    kept, gone = tmp_path / "kept.mf4", tmp_path / "gone.mf4"
    for f in (kept, gone):
        f.write_bytes(f.name.encode())
        cache.content_hash(f, where)
    t = np.arange(0.0, 1.0, 0.01)
    entry_key = "ab" * 32
    cache.store(where, entry_key, t, {"ego_speed": t}, {"ego_speed": "VehSpd"})
    gone.unlink()
    assert cli.main(["cache", "prune", "--cache-dir", str(where)]) == 0
    out = capsys.readouterr().out
    assert "forgot the hashes of files that are gone" in out and "every entry kept" in out
    (memo,) = (where / cache.HASHES).iterdir()
    assert json.loads(memo.read_text())["path"] == str(kept)
    assert cache.stats(where).entries == 1
    assert cli.main(["cache", "prune", "--max-size", "0", "--cache-dir", str(where)]) == 0
    assert "removed 1 least recently used entries" in capsys.readouterr().out
    assert cache.stats(where).entries == 0


# ------------------------------------------------------------------------- the docs

ROOT = Path(__file__).resolve().parents[2]


def _docs() -> list[Path]:
    names = ["README.md", "CHANGELOG.md", "CONTRIBUTING.md", "recordings/README.md"]
    found = [ROOT / n for n in names if (ROOT / n).is_file()]
    return found + sorted((ROOT / "docs").glob("*.md"))


def test_docs_cite_nothing_outside_the_repository() -> None:
    import re

    outside = re.compile(r"\bSPEC\b|§|AEB_REFERENCE|(?i:\bissue \d+)")
    hits = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
        for path in _docs()
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if outside.search(line)
    ]
    assert hits == []


def test_relative_links_in_the_docs_resolve() -> None:
    import re

    link = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
    broken = [
        f"{path.relative_to(ROOT)}: {target}"
        for path in _docs()
        for target in link.findall(path.read_text(encoding="utf-8"))
        if "://" not in target and not (path.parent / target).exists()
    ]
    assert broken == []


def test_quick_start_names_the_command_it_describes() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block, prose = section.split("```bash\n", 1)[1].split("```", 1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    ordinals = ("first", "second", "third", "fourth")
    described = [c for c in commands if f"`{c}`" in prose]
    assert described, "the quick start prose names none of its commands"
    for command in described:
        position = ordinals[commands.index(command)]
        for word in ordinals:
            if f"{word} command" in prose.lower():
                assert word == position, f"{command!r} is the {position} command"

"""The HTML report: every linked page and image exists, failures first; Chromium renders it."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest


class _Page(HTMLParser):
    """Links, images and table rows (as lists of cell texts) of an HTML page."""

    def __init__(self, path: Path):
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []
        self.rows: list[list[str]] = []
        self.table_starts: list[int] = []  # index in ``rows`` where each table starts
        self._cell: list[str] | None = None
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(str(a["href"]))
        elif tag == "img" and a.get("src"):
            self.images.append(str(a["src"]))
        elif tag == "table":
            self.table_starts.append(len(self.rows))
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _broken_project(project: pytest.Pytester) -> None:
    """b60 violates its expectation (failed), recs/bad/corrupt.mf4 cannot be read (error)."""
    (project.path / "recs/ccrs/b60.toml").write_text('scenario = "CCRs"\n[expect]\nbrake = false\n')
    (project.path / "recs/bad").mkdir()
    (project.path / "recs/bad/corrupt.mf4").write_bytes(b"MDF     4.10    " + b"\0" * 48)


def _check_report(report: Path) -> list[list[str]]:
    index = report / "index.html"
    assert index.exists()
    page = _Page(index)
    assert len(page.links) == 4
    for link in page.links:
        target = (report / link).resolve()
        assert target.is_file(), link
        sub = _Page(target)
        assert "../index.html" in sub.links
        assert (target.parent / "../index.html").resolve() == index.resolve()
        for img in sub.images:
            png = target.parent / img
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", img
            assert png.stat().st_size > 20_000  # four panels of curves, not an empty canvas
    ends = [*page.table_starts[1:], len(page.rows)]
    return page.rows[: ends[0]]  # the recordings table (fleet statistics may follow)


@pytest.mark.parametrize("xdist", [False, True], ids=["plain", "xdist"])
def test_report_links_every_page_and_image(project: pytest.Pytester, xdist: bool) -> None:
    _broken_project(project)
    project.makepyfile(test_r="def test_r(replay):\n    pass\n")
    old = project.path / "report/recordings/gone_mf4-12345678.html"  # an earlier run's page
    old.parent.mkdir(parents=True)
    old.write_text("<html></html>")
    (project.path / "report/notes.txt").write_text("mine")
    args = ["--recordings=recs", "--adsreplay-report=report"]
    run = project.runpytest_subprocess if xdist else project.runpytest
    result = run(*args, *(["-n", "2"] if xdist else []))
    result.stdout.fnmatch_lines(["adsreplay report: report/index.html"])
    rows = _check_report(project.path / "report")
    assert not old.exists() and (project.path / "report/notes.txt").read_text() == "mine"
    header, body = rows[0], rows[1:]
    assert header[:3] == ["recording", "scenario", "outcome"]
    assert [(r[0], r[2]) for r in body] == [
        ("bad/corrupt.mf4", "error"),
        ("ccrs/b60.mf4", "failed"),
        ("ccrm/c50.mf4", "passed"),
        ("ccrs/a40.mf4", "passed"),
    ]
    a40 = body[3]
    assert a40[3:6] == ["3.500", "4.500", "1.500"]

    pages = project.path / "report/recordings"
    assert len(list(pages.glob("*.png"))) == 3  # the corrupt recording has nothing to plot
    written = [project.path / "report/index.html", *pages.iterdir()]
    # readable by a web server running as another user
    assert {oct(p.stat().st_mode & 0o777) for p in written} == {oct(0o644)}
    corrupt = next(pages.glob("bad_corrupt*.html")).read_text()
    assert "no signals to plot" in corrupt and "read stage" in corrupt
    a40_page = _Page(next(pages.glob("ccrs_a40*.html")))
    kpis = {r[0]: r[1] for r in a40_page.rows if len(r) == 2}
    assert kpis["brake time [s]"] == "4.500" and kpis["collision (projected)"] == "no"
    assert a40_page.images == [next(pages.glob("ccrs_a40*.png")).name]


def test_report_without_recordings_needs_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--adsreplay-report=report")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "report").exists()


def _not_blank(png: Path) -> None:
    import matplotlib.image
    import numpy as np

    img = matplotlib.image.imread(png)
    assert img.shape[0] >= 600 and img.shape[1] >= 1000
    rgb = (img[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    colors = np.unique(rgb, axis=0)
    assert len(colors) > 50, f"{png} looks blank ({len(colors)} colours)"
    assert rgb.std() > 10


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not on PATH")
def test_chromium_renders_the_report(project: pytest.Pytester) -> None:
    _broken_project(project)
    project.runpytest("--recordings=recs", "--adsreplay-report=report")
    report = project.path / "report"
    page = next((report / "recordings").glob("ccrs_b60*.html"))
    for name, target in (("index.png", report / "index.html"), ("page.png", page)):
        shot = project.path / name
        subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1200,900",
                f"--screenshot={shot}",
                target.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        _not_blank(shot)


def _h1(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return text[text.index("<h1>") : text.index("</h1>")]


def test_page_shows_the_tests_outcome_and_violated_bounds(project: pytest.Pytester) -> None:
    _broken_project(project)  # b60 replays fine but breaks its sidecar bound
    project.makepyfile(test_r="def test_r(replay):\n    pass\n")
    project.runpytest("--recordings=recs", "--adsreplay-report=report")
    pages = project.path / "report/recordings"
    b60 = next(pages.glob("ccrs_b60*.html"))
    assert "tests failed" in _h1(b60) and "replay ok" not in _h1(b60)
    a40 = next(pages.glob("ccrs_a40*.html"))
    assert "tests passed" in _h1(a40)
    # bounds are in SI units, which the table names (the KPI table may show others)
    assert ["ttc_at_brake [s]", "in [1.4, 1.6]"] in [r[:2] for r in _Page(a40).rows]
    assert "tests error" in _h1(next(pages.glob("bad_corrupt*.html")))
    bounds = [r for r in _Page(b60).rows if r[:2] == ["brake", "== False"]]
    assert bounds == [["brake", "== False", "True", "violated"]]
    text = b60.read_text(encoding="utf-8")
    # the plot's panels, the target's lateral offset among them, are named under the image
    assert "target lateral offset [m]" in text.split('class="caption"')[1]


def test_page_shows_the_baseline_table(project: pytest.Pytester) -> None:
    baseline = "--adsreplay-baseline=baseline.json"
    project.runpytest("--recordings=recs", baseline, "--adsreplay-update-baseline")
    late = "adsreplay_function_params={ late = 0.3 }"
    project.runpytest("--recordings=recs", baseline, "-o", late, "--adsreplay-report=report")
    a40 = next((project.path / "report/recordings").glob("ccrs_a40*.html"))
    page = _Page(a40)
    start = next(i for i, r in enumerate(page.rows) if r[:2] == ["KPI", "baseline"])
    assert page.rows[start] == ["KPI", "baseline", "this run", "delta", "verdict"]
    rows = {r[0]: r[1:] for r in page.rows[start + 1 :] if len(r) == 5}
    assert rows["brake_time [s]"] == ["4.500", "4.800", "+0.300", "regressed"]
    assert rows["fcw_lead_time [s]"][-1] == "improved"
    assert rows["fcw_time [s]"][-1] == "ok"
    assert "baseline.json: regressed" in a40.read_text(encoding="utf-8")
    assert "tests failed" in _h1(a40)


def test_plot_has_a_lateral_offset_panel(monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    from pytest_adsreplay.reporting import html

    drawn: list[list[str]] = []
    savefig = Figure.savefig

    def spy(fig: Figure, *args: Any, **kwargs: Any) -> None:
        drawn.append([ax.get_ylabel() for ax in fig.axes])
        savefig(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    t = [i * 0.1 for i in range(50)]
    page = html.PageInput(
        key="k",
        recording="r.mf4",
        variant="",
        status="ok",
        kpis={},
        signals={"t": t, "ego_speed": [10.0] * 50, "target_lateral": [0.5] * 50},
    )
    png = html.plot_png(page)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert drawn == [list(html.PANELS)] and drawn[0][-1] == "target lateral offset [m]"


def test_plot_of_an_object_list_shows_the_derived_in_path_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No target channels, two slots: the gap panel shows the in-path object of each
    cycle (the cut-in car from t = 2 s, the lead before) and marks the switch."""
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from pytest_adsreplay.reporting import html

    gaps: list[Any] = []
    notes: list[str] = []
    savefig = Figure.savefig
    annotate = Axes.annotate

    def spy(fig: Figure, *args: Any, **kwargs: Any) -> None:
        gap_ax = fig.axes[1]
        gaps.extend(
            line.get_ydata() for line in gap_ax.get_lines() if "derived" in str(line.get_label())
        )
        savefig(fig, *args, **kwargs)

    def note(ax: Axes, text: str, *args: Any, **kwargs: Any) -> Any:
        notes.append(text)
        return annotate(ax, text, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    monkeypatch.setattr(Axes, "annotate", note)
    n = 40
    t = [i * 0.1 for i in range(n)]
    lead_dx = [40.0] * n
    cut_dx = [20.0] * n
    cut_dy = [3.5 if ti < 2.0 else 0.0 for ti in t]
    page = html.PageInput(
        key="k",
        recording="cut_in.mf4",
        variant="",
        status="ok",
        kpis={},
        signals={
            "t": t,
            "ego_speed": [15.0] * n,
            "obj_dx[0]": lead_dx,
            "obj_dy[0]": [0.0] * n,
            "obj_vx[0]": [0.0] * n,
            "obj_id[0]": [7.0] * n,
            "obj_dx[1]": cut_dx,
            "obj_dy[1]": cut_dy,
            "obj_vx[1]": [-2.0] * n,
            "obj_id[1]": [9.0] * n,
        },
    )
    assert html.plot_png(page)[:8] == b"\x89PNG\r\n\x1a\n"
    [gap] = gaps
    assert list(gap[:20]) == [40.0] * 20 and list(gap[20:]) == [20.0] * 20
    assert notes == ["id 7", "id 9"]

"""The HTML reports in real headless Chromium: no console error, every chart rendered with the points its
figure holds (read back from the page), and no request leaving the machine. PNG and SVG of every chart.

CI installs Debian's ``chromium`` and sets DSE_REQUIRE_BROWSER=1, so these tests run there; elsewhere they are
skipped when no Chrome or Chromium is found."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from chromium_page import BROWSER, open_page

import dse
from dse.report import (
    IMAGE_WIDTH,
    PNG_SCALE,
    Chart,
    RunResults,
    analysis_report,
    load_results,
    report,
    run_charts,
)

pytestmark = pytest.mark.skipif(
    BROWSER is None and not os.environ.get("DSE_REQUIRE_BROWSER"), reason="no Chrome/Chromium on this machine"
)


def _expected(chart: Chart) -> list[tuple[str, int]]:
    out = []
    for trace in chart.figure.data:
        if trace.type == "parcoords":
            out.append(("parcoords", len(trace.dimensions[0]["values"])))
        else:
            out.append((trace.type, len(trace.x) if trace.x is not None else 0))
    return out


def _svg_markers(chart: Chart) -> int:
    """Markers an SVG scatter draws: every point of a trace with markers, but the legend-only traces' None."""
    return sum(
        sum(v is not None for v in t.x)
        for t in chart.figure.data
        if t.type == "scatter" and "markers" in (t.mode or "") and t.meta["role"] not in ("roof",)
    )


def _check_run(run_dir: Path) -> None:
    results = load_results(run_dir)
    assert isinstance(results, RunResults)
    written = report(run_dir)
    plots, errors, outside = open_page(written.html)
    assert not errors and not outside
    charts = run_charts(results)[0]
    assert [p["id"] for p in plots] == [f"chart-{c.name}" for c in charts]
    for plot, chart in zip(plots, charts, strict=True):
        assert [tuple(t) for t in plot["traces"]] == _expected(chart), chart.name
        if all(t.type == "scatter" for t in chart.figure.data):
            assert plot["svgMarkers"] == _svg_markers(chart), chart.name
        if any(t.type == "scattergl" for t in chart.figure.data):
            assert plot["glCanvases"] > 0
        if chart.name == "best-per-hardware":
            assert plot["bars"] == len(results.hardware)


def test_run_report_renders_offline_with_every_point(exhaustive_dir: Path) -> None:
    _check_run(exhaustive_dir)


def test_optuna_report_with_its_hypervolume_history(optuna_dir: Path) -> None:
    _check_run(optuna_dir)


def test_sweep_and_analysis_reports_render(sweep_dir: Path, tmp_path: Path) -> None:
    for html in (
        report(sweep_dir).html,
        analysis_report(
            dse.analyze("deepseek-v3", "dgx-h200", quant="fp8", tp=8, ep=8).to_dict(), tmp_path / "a.html"
        ).html,
    ):
        plots, errors, outside = open_page(html)
        assert not errors and not outside
        assert plots and all(sum(n for _, n in p["traces"]) > 0 for p in plots)


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_png_and_svg_of_every_chart(exhaustive_dir: Path, tmp_path: Path) -> None:
    results = load_results(exhaustive_dir)
    assert isinstance(results, RunResults)
    written = report(exhaustive_dir, out=tmp_path, formats=("html", "png", "svg"))
    charts = run_charts(results)[0]
    assert written.html == tmp_path / "report.html" and written.html.stat().st_size > 1_000_000
    assert sorted(p.name for p in written.images) == sorted(f"{c.name}.{f}" for c in charts for f in ("png", "svg"))
    for chart in charts:
        png = tmp_path / "figures" / f"{chart.name}.png"
        assert _png_size(png) == (IMAGE_WIDTH * PNG_SCALE, chart.figure.layout.height * PNG_SCALE)
        svg = (tmp_path / "figures" / f"{chart.name}.svg").read_text()
        assert svg.startswith("<svg") and f'width="{IMAGE_WIDTH}"' in svg[:400]

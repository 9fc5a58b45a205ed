"""``dse validate --report``: each chart against the ``Validation.rows`` it draws (the scatter's points are the
rows' measured and predicted values, the ±20 % band and y = x frame them, one marker per hardware, each
hardware's errors sorted by their median), the page (self-contained, escaped), the page in real headless
Chromium, and the CLI."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from chromium_page import BROWSER, open_page

from dse.calibrate import Validation, read_measurements, summarise, validate
from dse.catalog import catalog_root
from dse.cli import main
from dse.errors import InputError
from dse.report import (
    error_by_hardware_chart,
    predicted_vs_measured_chart,
    validation_charts,
    validation_markers,
    validation_report,
)

FIXTURE = Path(__file__).resolve().parents[1] / "calibrate" / "published_fixture.csv"
SHIPPED = catalog_root() / "calibration" / "measurements.csv"
EVIL = "x</script><b>y"
"""A hardware name a page must escape: inside a <script> and in the HTML."""


@pytest.fixture(scope="module", params=["fixture", "shipped"])
def validation(request: pytest.FixtureRequest) -> Validation:
    return validate(read_measurements(FIXTURE if request.param == "fixture" else SHIPPED))


@pytest.fixture(scope="module")
def shipped() -> Validation:
    return validate(read_measurements(SHIPPED), profile="default")


def _traces(fig: Any, role: str) -> list[Any]:
    return [t for t in fig.data if t.meta["role"] == role]


def _metrics(validation: Validation) -> list[str]:
    return list(dict.fromkeys(validation.rows["metric"]))


def test_scatter_points_are_the_rows_measured_and_predicted(validation: Validation) -> None:
    rows = validation.rows
    scales = {"tpot_s": 1e3, "ttft_s": 1e3}  # latencies are drawn in ms
    for metric in _metrics(validation):
        fig = predicted_vs_measured_chart(rows, metric)
        points = _traces(fig, "points")
        drawn = {i: (x, y) for t in points for i, x, y in zip(t.meta["id"], t.x, t.y, strict=True)}
        part = rows[(rows["metric"] == metric) & rows["feasible"]].set_index("id")
        assert set(drawn) == set(part.index)
        scale = scales.get(metric, 1.0)
        for row_id, (x, y) in drawn.items():
            assert x == pytest.approx(part.loc[row_id, "measured"] * scale, rel=1e-12)
            assert y == pytest.approx(part.loc[row_id, "predicted"] * scale, rel=1e-12)
        for trace in points:  # one trace per hardware, its hover naming each row
            assert set(part.loc[list(trace.meta["id"]), "hardware"]) == {trace.meta["hardware"]}
            assert all(f"row {i}</span>" in text for i, text in zip(trace.meta["id"], trace.hovertext, strict=True))
        assert fig.layout.xaxis.type == fig.layout.yaxis.type == "log"
        assert fig.layout.xaxis.title.text.startswith("measured ") and "(" in fig.layout.xaxis.title.text


def test_the_band_is_twenty_percent_around_y_equals_x_and_spans_every_point(validation: Validation) -> None:
    for metric in _metrics(validation):
        fig = predicted_vs_measured_chart(validation.rows, metric)
        (line,) = _traces(fig, "identity")
        (band,) = _traces(fig, "band")
        assert list(line.x) == list(line.y)
        assert band.fill == "toself"
        xs, ys = np.asarray(band.x), np.asarray(band.y)
        assert sorted(set(np.round(ys / xs, 12))) == [0.8, 1.2]
        values = np.concatenate([np.asarray(t.x) for t in _traces(fig, "points")])
        values = np.concatenate([values, *(np.asarray(t.y) for t in _traces(fig, "points"))])
        low, high = 10.0 ** np.asarray(fig.layout.xaxis.range)
        assert low < values.min() and values.max() < high and fig.layout.yaxis.range == fig.layout.xaxis.range
        assert (line.x[0], line.x[1]) == pytest.approx((low, high))


def test_one_marker_per_hardware_the_same_in_every_chart(validation: Validation) -> None:
    rows = validation.rows
    markers = validation_markers(rows)
    assert set(markers) == set(rows["hardware"])
    for metric in _metrics(validation):
        scatter = _traces(predicted_vs_measured_chart(rows, metric), "points")
        strips = _traces(error_by_hardware_chart(rows, metric), "errors")
        assert len({(t.marker.color, t.marker.symbol) for t in scatter}) == len(scatter)  # distinct within a chart
        for trace in [*scatter, *strips]:
            assert (trace.marker.color, trace.marker.symbol) == markers[trace.meta["hardware"]]
        assert {t.meta["hardware"] for t in scatter} == {t.meta["hardware"] for t in strips}


def test_the_eleventh_hardware_of_a_chart_takes_a_new_symbol_not_a_darker_tone() -> None:
    """Ten hardware take the ten most distinct colours as circles; the eleventh the first colour again, as a
    diamond; a hardware keeps its marker in a second quantity's charts, whose others avoid it."""
    names = [f"gpu-{i}" for i in range(12)]
    rows = pd.DataFrame({"metric": ["tpot_s"] * 12 + ["ttft_s"] * 2, "hardware": [*names, "gpu-11", "new"]})
    markers = validation_markers(rows)
    first = [markers[n] for n in names[:10]]
    assert len({colour for colour, _ in first}) == 10 and {symbol for _, symbol in first} == {"circle"}
    assert markers["gpu-10"] == (markers["gpu-0"][0], "diamond")
    assert markers["gpu-11"] == (markers["gpu-1"][0], "diamond")
    assert markers["new"] == markers["gpu-0"]  # the first pair gpu-11 does not use in the TTFT charts


def test_error_strips_are_each_hardwares_errors_sorted_by_median(validation: Validation) -> None:
    rows = validation.rows
    for metric in _metrics(validation):
        fig = error_by_hardware_chart(rows, metric)
        strips = _traces(fig, "errors")
        part = rows[(rows["metric"] == metric) & rows["feasible"]]
        medians = []
        for strip in strips:
            errors = part.loc[part["hardware"] == strip.meta["hardware"], "error"].to_numpy()
            assert np.sort(np.asarray(strip.y) - 1) == pytest.approx(np.sort(errors), rel=1e-9, abs=1e-12)
            assert strip.boxpoints == "all" and set(strip.x) == {strip.meta["hardware"]}
            medians.append(float(np.median(errors)))
            assert strip.meta["median"] == pytest.approx(medians[-1])
        assert medians == sorted(medians)
        assert list(fig.layout.xaxis.categoryarray) == [s.meta["hardware"] for s in strips]
        zero = [s for s in fig.layout.shapes if s.type == "line"]
        assert [(s.y0, s.y1) for s in zero] == [(1.0, 1.0)]  # error 0: predicted = measured
        assert "0" in fig.layout.yaxis.ticktext and fig.layout.yaxis.type == "log"


def test_hardware_strips_run_from_most_pessimistic_to_most_optimistic(shipped: Validation) -> None:
    strips = _traces(error_by_hardware_chart(shipped.rows, "throughput_tokens_per_s_per_device"), "errors")
    medians = [s.meta["median"] for s in strips]
    assert (
        medians == sorted(medians)
        and len(strips)
        == shipped.rows["hardware"][shipped.rows["metric"] == "throughput_tokens_per_s_per_device"].nunique()
    )


def test_the_fitted_profiles_leave_no_split_by_number_format() -> None:
    """docs/validation.md: with the calibrated profiles (per-format efficiencies) neither FP8 nor NVFP4
    throughput leans more than 15 % either way."""
    rows = validate(read_measurements(SHIPPED)).rows
    by_format = rows[rows["metric"] == "throughput_tokens_per_s_per_device"].groupby("quant")["error"].median()
    assert set(by_format.index) == {"fp8", "nvfp4"} and by_format.abs().max() < 0.15


def test_a_quantity_without_a_scored_row_says_why(shipped: Validation) -> None:
    rows = shipped.rows.copy()
    rows.loc[rows["metric"] == "tpot_s", "feasible"] = False
    for fig in (predicted_vs_measured_chart(rows, "tpot_s"), error_by_hardware_chart(rows, "tpot_s")):
        assert not fig.data and "No scored row of tpot_s" in fig.layout.annotations[0].text


def test_the_report_is_one_escaped_self_contained_file(tmp_path: Path) -> None:
    base = validate(read_measurements(FIXTURE))
    rows = base.rows.copy()
    rows["hardware"] = rows["hardware"].replace("rtx-4090", EVIL)
    rows.loc[rows["id"] == "max-1", ["feasible", "infeasible_reason", "model"]] = [False, "memory: <none> fits", "a&b"]
    evil = summarise(rows, base.profile)
    written = validation_report(evil, tmp_path / "deep" / "validation.html", measurements="<mine>.csv")
    assert written.html == tmp_path / "deep" / "validation.html" and written.images == []
    page = written.html.read_text()
    assert "<script src=" not in page and "<link" not in page  # plotly.js embedded, nothing fetched
    assert EVIL not in page  # neither in the HTML nor inside a <script>
    charts = validation_charts(evil.rows)
    assert [c.name for c in charts] == [
        "tpot-s-vs-measured",
        "tpot-s-error",
        "throughput-tokens-per-s-per-device-vs-measured",
        "throughput-tokens-per-s-per-device-error",
    ]
    assert page.count("<script>") == page.count("</script>") == 1 + len(charts)
    assert "measurements: <b>&lt;mine&gt;.csv</b>" in page and "profile: <b>calibrated</b>" in page
    assert "rows: <b>6</b>" in page and "scored: <b>5</b>" in page
    assert "<td class='left'>time per output token (tpot_s)</td><td class='left'>batch</td><td>5</td><td>5</td>" in page
    assert "Measured deployments that do not fit (1)" in page
    assert "memory: &lt;none&gt; fits" in page and "a&amp;b" in page
    assert "x\\u003c\\u002fscript\\u003e\\u003cb\\u003ey" in page  # in the figures' JSON (trace names)
    assert "&lt;b&gt;y, fp16" in page  # in the hover text, which plotly reads as HTML
    (tpot,) = [s for s in evil.summary if s["metric"] == "tpot_s"]
    cells = [f"{tpot[k]:.0%}" for k in ("median_abs_error", "p90_abs_error")] + [f"{tpot['bias']:+.0%}"]
    assert "".join(f"<td>{c}</td>" for c in cells) in page
    assert "<td>1</td><td>0</td><td>—</td><td>—</td><td>—</td>" in page  # max-throughput: nothing scored
    with pytest.raises(InputError, match="unknown format pdf"):
        validation_report(evil, tmp_path / "v.html", formats=("pdf",))


def test_the_shipped_report_lists_the_rank_correlations(shipped: Validation, tmp_path: Path) -> None:
    page = validation_report(shipped, tmp_path / "v.html").html.read_text()
    assert len(shipped.ranks) >= 4  # llama.cpp's groups of >= 4 devices
    for rank in shipped.ranks:
        assert f"<td>{rank['spearman']:.2f}</td>" in page
    assert "None: every measured deployment fits" in page
    assert page.count("<div class='chart'") == 2 * len(set(shipped.rows["metric"]))


@pytest.mark.skipif(
    BROWSER is None and not os.environ.get("DSE_REQUIRE_BROWSER"), reason="no Chrome/Chromium on this machine"
)
def test_the_report_renders_offline_in_chromium(shipped: Validation, tmp_path: Path) -> None:
    page = validation_report(shipped, tmp_path / "validation.html").html
    plots, errors, outside = open_page(page)
    assert not errors and not outside
    charts = validation_charts(shipped.rows)
    assert [p["id"] for p in plots] == [f"chart-{c.name}" for c in charts]
    for plot, chart in zip(plots, charts, strict=True):
        expected = [(t.type, len(t.x)) for t in chart.figure.data]
        assert [tuple(t) for t in plot["traces"]] == expected, chart.name
        if chart.name.endswith("-vs-measured"):  # every scored row is a drawn marker
            assert plot["svgMarkers"] == sum(len(t.x) for t in _traces(chart.figure, "points")), chart.name
    scored = shipped.rows[shipped.rows["feasible"]]
    drawn = sum(n for p in plots if p["id"].endswith("-vs-measured") for kind, n in p["traces"] if kind == "scatter")
    assert drawn == len(scored) + (5 + 2) * len(set(scored["metric"]))  # plus the band's and the line's vertices


def test_cli_writes_the_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "x" / "validation.html"
    code = main(["validate", "--measurements", str(FIXTURE), "--report", str(target)])
    out, err = capsys.readouterr()
    assert code == 0 and f"report: {target}" in out and "Traceback" not in err
    page = target.read_text()
    assert f"measurements: <b>{html.escape(str(FIXTURE))}</b>" in page and "Error per hardware" in page
    code = main(["validate", "--measurements", str(FIXTURE), "--json", "--report", str(tmp_path / "j.html")])
    out, err = capsys.readouterr()
    assert code == 0 and "report: " in err and "report: " not in out
    assert (tmp_path / "j.html").exists()

"""``dse recommend``'s report: each chart against the ``recommendation.json`` document it draws (the step lines
are the document's curves, crossovers sit at their loads, the tornado is anchored at the nominal and widest on
top, win-rates sum to 1, rent and buy cross at the break-even month), the page (self-contained, escaped), and
the page in real headless Chromium."""

from __future__ import annotations

import copy
import html
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from chromium_page import BROWSER, open_page

import dse
from dse.errors import InputError
from dse.report import (
    cost_vs_load_chart,
    format_usd,
    hardware_colours,
    recommendation_charts,
    recommendation_report,
    rent_vs_buy_chart,
    tornado_chart,
    win_rate_chart,
)

EVIL = "x</script><b>y"
"""A hardware name a page must escape: inside a <script> and in the HTML."""


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    """Llama-3.1-70B at 50 requests/s under TTFT 1 s and TPOT 50 ms, rented on demand (200 draws: ~1 s), served
    in static batches: a slower model then misses the TTFT SLO at the chosen batch, which the tornado marks
    (under continuous batching the fleet grows instead)."""
    result = dse.recommend(
        model="llama-3.1-70b",
        prompt_tokens=1000,
        output_tokens=300,
        rate=50,
        ttft_s=1.0,
        tpot_s=0.05,
        samples=200,
        scheduler="static",
    )
    return json.loads(json.dumps(result.to_dict()))  # as a reader of recommendation.json gets it


@pytest.fixture(scope="module")
def turning() -> dict[str, Any]:
    """The same question under continuous batching (the default), whose two cheapest options take turns at low
    loads (9 and 13 requests/s today: a replica of each costs about the same), so its cost-against-load chart
    has crossovers."""
    result = dse.recommend(
        model="llama-3.1-70b", prompt_tokens=1000, output_tokens=300, rate=50, ttft_s=1.0, tpot_s=0.05, samples=200
    )
    return json.loads(json.dumps(result.to_dict()))


def _traces(fig: Any, role: str) -> list[Any]:
    return [t for t in fig.data if t.meta["role"] == role]


def test_cost_lines_are_the_documents_curves_as_steps(doc: dict[str, Any]) -> None:
    fig = cost_vs_load_chart(doc)
    curves = doc["cost_vs_load"]
    lines = _traces(fig, "cost")
    assert [t.meta["hardware"] for t in lines] == [o["hardware"] for o in doc["options"]]
    for line, curve in zip(lines, curves["options"], strict=True):
        assert line.line.shape == "hv"
        assert list(line.x) == curves["rate_rps"] and list(line.y) == curve["usd_per_month"]
    (load,) = [s for s in fig.layout.shapes if s.type == "line"]
    assert load.x0 == load.x1 == doc["load"]["rate_rps"]
    assert fig.layout.xaxis.title.text == "average load (requests/s)"
    assert fig.layout.yaxis.title.text == "fleet cost ($/month)"


def test_crossovers_are_drawn_where_the_cheapest_option_changes(turning: dict[str, Any]) -> None:
    doc = turning
    crossovers = doc["cost_vs_load"]["crossovers"]
    assert crossovers  # the first two options take turns below the load (a replica of each costs about the same)
    first_two = {o["hardware"] for o in doc["options"][:2]}
    assert all({c["from"], c["to"]} == first_two and c["rate_rps"] < doc["load"]["rate_rps"] for c in crossovers)
    (marks,) = _traces(cost_vs_load_chart(doc), "crossover")
    rates = np.asarray(doc["cost_vs_load"]["rate_rps"])
    costs = np.asarray([c["usd_per_month"] for c in doc["cost_vs_load"]["options"]])
    names = [c["hardware"] for c in doc["cost_vs_load"]["options"]]
    for x, y, text, c in zip(marks.x, marks.y, marks.hovertext, crossovers, strict=True):
        assert x == c["rate_rps"]
        i = int(np.flatnonzero(rates == x)[0])
        assert names[int(np.argmin(costs[:, i]))] == c["to"] and names[int(np.argmin(costs[:, i - 1]))] == c["from"]
        assert y == costs[:, i].min()
        assert text == f"{c['from']} -> {c['to']} at {x:.3g} req/s"


def test_tornado_bars_start_at_the_nominal_widest_on_top(doc: dict[str, Any]) -> None:
    shuffled = copy.deepcopy(doc)
    shuffled["robustness"]["tornado"].reverse()  # the chart sorts; the document's order does not matter
    fig = tornado_chart(shuffled)
    bars = {b["input"]: b for b in doc["robustness"]["tornado"]}
    nominal = doc["options"][0]["usd_per_month"]
    low, high = _traces(fig, "tornado")
    assert (low.meta["end"], high.meta["end"]) == ("low", "high")
    assert low.base == high.base == nominal
    assert list(low.y) == list(high.y) and set(low.y) == set(bars)
    reach = []
    for i, name in enumerate(low.y):
        assert nominal + low.x[i] == pytest.approx(bars[name]["low"], rel=1e-12)
        assert nominal + high.x[i] == pytest.approx(bars[name]["high"], rel=1e-12)
        ends = (nominal, nominal + low.x[i], nominal + high.x[i])
        reach.append(max(ends) - min(ends))
    assert reach == sorted(reach, reverse=True)  # the widest on top (the y axis runs top-down)
    assert fig.layout.yaxis.autorange == "reversed"
    for trace in (low, high):  # an end that misses an SLO: hatched and labelled
        end = trace.meta["end"]
        for name, shape, text in zip(trace.y, trace.marker.pattern.shape, trace.text, strict=True):
            misses = not bars[name][f"{end}_serves"]
            assert (shape == "/") == misses
            assert ("misses SLO" in text) == (misses and bars[name][end] != nominal)
    assert any("misses SLO" in t for t in (*low.text, *high.text))  # the 1.15 x slower model misses TTFT
    assert fig.layout.shapes[0].x0 == nominal


def test_ends_on_one_side_of_the_nominal_both_stay_visible(doc: dict[str, Any]) -> None:
    one_side = copy.deepcopy(doc)
    bar = one_side["robustness"]["tornado"][0]
    bar["low"] = bar["nominal"] + 0.1 * (bar["high"] - bar["nominal"])  # both ends above the nominal
    low, high = _traces(tornado_chart(one_side), "tornado")
    i = list(low.y).index(bar["input"])
    assert low.width[i] > high.width[i]  # the wider low bar peeks out around the high one drawn on top
    assert low.text[i] == "" and high.text[i].startswith(bar["high_setting"])  # one label, naming both ends
    assert bar["low_setting"] in high.text[i]


def test_win_rates_with_the_others_sum_to_one(doc: dict[str, Any]) -> None:
    fig = win_rate_chart(doc)
    (bars,) = _traces(fig, "win_rate")
    names = [o["hardware"] for o in doc["options"]]
    assert list(bars.x)[: len(names)] == names
    assert sum(bars.y) == pytest.approx(1.0, abs=1e-12)
    # a frequent winner beyond the shortlist has a bar of its own, named with its rank; the rest are "others"
    frequent = [o for o in doc["win_rates_beyond_shortlist"] if o["win_rate"] >= 0.05]
    assert list(bars.x)[len(names) :][: len(frequent)] == [f"{o['hardware']} (#{o['rank']})" for o in frequent]
    rest = sum(o["win_rate"] for o in doc["win_rates_beyond_shortlist"]) - sum(o["win_rate"] for o in frequent)
    assert (list(bars.x)[-1] == "others") == (rest > 1e-12)
    assert sum(o["win_rate"] for o in doc["win_rates_beyond_shortlist"]) == pytest.approx(doc["win_rate_others"])
    first = doc["options"][0]
    assert f"expected regret {format_usd(first['expected_regret_usd_per_month'])}/month" in bars.hovertext[0]
    assert f"misses an SLO in {first['slo_risk']:.1%}" in bars.hovertext[0]
    (risk,) = _traces(fig, "slo_risk")
    assert list(risk.y) == [o["slo_risk"] for o in doc["options"]]
    assert fig.layout.yaxis.tickformat == ".0%"


def test_rent_and_buy_cross_at_the_break_even_month(doc: dict[str, Any]) -> None:
    fig = rent_vs_buy_chart(doc)
    entries = doc["rent_vs_buy"]
    assert entries  # on demand, two of the shortlist also have a purchase price
    rent, buy = _traces(fig, "rent"), _traces(fig, "buy")
    (marks,) = _traces(fig, "break_even")
    for entry, r, b in zip(entries, rent, buy, strict=True):
        assert r.meta["hardware"] == b.meta["hardware"] == entry["hardware"]
        assert (r.line.dash, b.line.dash) == ("solid", "dash") and r.line.color == b.line.color
        cheaper = np.flatnonzero(np.asarray(b.y) <= np.asarray(r.y))
        assert b.y[0] > r.y[0]  # buying costs more on day one
        months = entry["break_even_months"]
        if months is None or months > r.x[-1]:  # never, or beyond the chart: renting stays cheaper, no mark
            assert not cheaper.size and entry["hardware"] not in marks.meta["hardware"]
            continue
        first_month = r.x[int(cheaper[0])]  # ... and less from some month on
        assert first_month - 1 <= entry["break_even_months"] <= first_month
        i = marks.meta["hardware"].index(entry["hardware"])
        assert marks.x[i] == entry["break_even_months"]
    assert fig.layout.xaxis.title.text == "months from now"


def test_one_colour_per_hardware_in_every_chart(doc: dict[str, Any]) -> None:
    colours = hardware_colours(doc)
    assert len(set(colours.values())) == len(colours)
    for trace in _traces(cost_vs_load_chart(doc), "cost"):
        assert trace.line.color == colours[trace.meta["hardware"]]
    for trace in _traces(rent_vs_buy_chart(doc), "rent"):
        assert trace.line.color == colours[trace.meta["hardware"]]
    (bars,) = _traces(win_rate_chart(doc), "win_rate")
    assert list(bars.marker.color[: len(doc["options"])]) == [colours[o["hardware"]] for o in doc["options"]]
    for end in _traces(tornado_chart(doc), "tornado"):  # the winner's, in a lighter shade for the low ends
        assert end.marker.line.color == colours[doc["options"][0]["hardware"]]


def test_charts_without_data_say_why(doc: dict[str, Any]) -> None:
    bare = copy.deepcopy(doc) | {"robustness": None, "rent_vs_buy": []}
    for option in bare["options"]:
        option |= {"win_rate": None, "expected_regret_usd_per_month": None, "slo_risk": None}
    nothing = copy.deepcopy(bare) | {"options": [], "cost_vs_load": {"rate_rps": [], "options": [], "crossovers": []}}
    for fig, words in (
        (rent_vs_buy_chart(bare), "both a rent and a purchase price"),
        (tornado_chart(bare), "No robustness analysis"),
        (win_rate_chart(bare), "No robustness draws"),
        (cost_vs_load_chart(nothing), "No priced option"),
    ):
        assert not fig.data and words in fig.layout.annotations[0].text


def test_a_purchase_without_draws_still_reports(tmp_path: Path) -> None:
    result = dse.recommend(
        model="llama-3.1-8b", prompt_tokens=2000, output_tokens=200, rate=5, tpot_s=0.05, pricing="buy", samples=0
    )
    doc = json.loads(json.dumps(result.to_dict()))
    page = recommendation_report(doc, tmp_path / "buy.html").html.read_text()
    assert "buy (electricity $0.08/kWh, PUE 1.3)" in page and "No robustness" in page
    assert "continuous batching with chunked prefill (8192-token steps)" in page  # the default
    assert f"max {doc['options'][0]['max_num_seqs']} seqs" in page
    assert rent_vs_buy_chart(doc).data  # bought options have a rent price too: the lines are drawn
    assert f"<td class='left'>{html.escape(doc['options'][0]['target'])}</td>" in page


def _renamed(doc: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """``doc`` with hardware ``old`` called ``new`` wherever it is named."""
    text = json.dumps(doc).replace(json.dumps(old), json.dumps(new))
    return json.loads(text)  # type: ignore[no-any-return]


def test_the_report_is_one_escaped_self_contained_file(doc: dict[str, Any], tmp_path: Path) -> None:
    winner = doc["options"][0]["hardware"]
    evil = _renamed(doc, winner, EVIL)
    evil["infeasible"].append({"hardware": "a&b", "reason": "memory: <none> fits"})
    written = recommendation_report(evil, tmp_path / "deep" / "recommend.html")
    assert written.html == tmp_path / "deep" / "recommend.html" and written.images == []
    page = written.html.read_text()
    assert "<script src=" not in page and "<link" not in page  # plotly.js embedded, nothing fetched
    assert EVIL not in page  # neither in the HTML nor inside a <script>
    assert page.count("<script>") == page.count("</script>") == 1 + 4  # plotly.js, then one per chart
    assert "x&lt;/script&gt;&lt;b&gt;y" in page  # in the tables
    assert '"x\\u003c\\u002fscript\\u003e\\u003cb\\u003ey"' in page  # in the figures' JSON
    assert "memory: &lt;none&gt; fits" in page and "a&amp;b" in page
    for sentence in [t["sentence"] for t in evil["thresholds"]]:
        assert f"<li>{html.escape(sentence)}</li>" in page
    for item in evil["infeasible"] + evil["unpriced"]:
        assert html.escape(item["hardware"]) in page
    for option in evil["options"]:
        assert f"<td class='left'>{html.escape(option['target'])}</td>" in page
    assert [c.name for c in recommendation_charts(doc)] == ["cost-vs-load", "win-rate", "tornado", "rent-vs-buy"]
    with pytest.raises(InputError, match="unknown format pdf"):
        recommendation_report(doc, tmp_path / "r.html", formats=("pdf",))


@pytest.mark.skipif(
    BROWSER is None and not os.environ.get("DSE_REQUIRE_BROWSER"), reason="no Chrome/Chromium on this machine"
)
def test_the_report_renders_offline_in_chromium(turning: dict[str, Any], tmp_path: Path) -> None:
    doc = turning  # with crossovers to draw
    page = recommendation_report(doc, tmp_path / "recommend.html").html
    plots, errors, outside = open_page(page)
    assert not errors and not outside
    charts = recommendation_charts(doc)
    assert [p["id"] for p in plots] == [f"chart-{c.name}" for c in charts]
    for plot, chart in zip(plots, charts, strict=True):
        expected = [(t.type, len(t.x)) for t in chart.figure.data]
        assert [tuple(t) for t in plot["traces"]] == expected, chart.name
        bars = sum(
            sum(v is not None for v in (t.x if t.orientation == "h" else t.y))
            for t in chart.figure.data
            if t.type == "bar"
        )
        assert plot["bars"] == bars, chart.name
    traces = {p["id"]: len(p["traces"]) for p in plots}
    assert traces == {
        "chart-cost-vs-load": len(doc["options"]) + 1,  # a step line per option, the crossovers
        "chart-win-rate": 2,  # the win rates, the SLO risks
        "chart-tornado": 2,  # low ends, high ends
        "chart-rent-vs-buy": 2 * len(doc["rent_vs_buy"]) + 1,  # rent and buy per option, the break-evens
    }


def test_dollars_read_as_people_write_them() -> None:
    assert [format_usd(x) for x in (1.0, 2.95, 0.1026, 99.99, 25842.3)] == [
        "$1.00",
        "$2.95",
        "$0.103",
        "$100",
        "$25,842",
    ]
    assert format_usd(None) == format_usd(float("nan")) == "—"

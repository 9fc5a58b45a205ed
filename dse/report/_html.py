"""The HTML writer: one self-contained file (plotly.js embedded once, figures as JSON, no network), a header
with the question, a summary table, then the charts."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from dse.report._answer import Pick
from dse.report._labels import DISPLAY, config_labels, format_number
from dse.results import write_text_durably
from dse.version import __version__


@dataclass(frozen=True)
class Chart:
    """A figure of a report: ``name`` is its file stem (``figures/<name>.png``) and its element id."""

    name: str
    title: str
    figure: Any
    note: str = ""


PLOT_CONFIG = {"responsive": True, "displaylogo": False, "toImageButtonOptions": {"format": "svg", "scale": 1}}
"""plotly.js options: the camera button saves SVG; no logo link (a click would leave the machine)."""

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1280px;
       padding: 1.5rem 2rem 4rem; color: #1d2733; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { font-size: 1.2rem; margin-top: 2.2rem; }
.question { color: #44505c; margin-top: 0; } .facts { display: flex; flex-wrap: wrap; gap: 0.4rem 1.6rem;
  font-size: 0.92rem; margin: 0.8rem 0; } .facts b { color: #1d2733; } .warn { color: #a00; font-weight: 600; }
table { border-collapse: collapse; font-size: 0.86rem; margin: 0.6rem 0; width: 100%; }
th, td { border-bottom: 1px solid #e3e7eb; padding: 0.3rem 0.55rem; text-align: right; white-space: nowrap; }
th:first-child, td:first-child, th:nth-child(2) { text-align: left; }
td.config { white-space: normal; min-width: 22rem; text-align: left; }
th { background: #f4f6f8; font-weight: 600; } tr.group td { background: #fafbfc; font-weight: 600; text-align: left; }
.note { color: #5b6670; font-size: 0.86rem; margin: 0.2rem 0 0.4rem; } .chart { width: 100%; min-height: 300px; }
nav a { margin-right: 1rem; font-size: 0.9rem; } footer { color: #8a949c; font-size: 0.8rem; margin-top: 3rem; }
td.left, th.left { text-align: left; } td.wrap, th.wrap { white-space: normal; text-align: left; min-width: 12rem; }
.scroll { overflow-x: auto; } table.wide th { white-space: normal; vertical-align: bottom; }
table.wide th, table.wide td { padding: 0.3rem 0.4rem; }
ul.sentences { margin: 0.4rem 0; padding-left: 1.2rem; } ul.sentences li { margin: 0.15rem 0; }
details { font-size: 0.86rem; margin: 0.4rem 0; } details li { margin: 0.2rem 0; overflow-wrap: anywhere; }
"""


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def answer_table(
    sections: Sequence[tuple[str, Sequence[Pick]]], metrics: Sequence[str], parameters: Sequence[str]
) -> str:
    """A table of picks: one header row per section (best per objective, knee, best per hardware), one row per
    pick with its configuration and ``metrics`` in display units."""
    head = "".join(f"<th>{html.escape(DISPLAY[m].column)}</th>" for m in metrics)
    body = []
    for title, picks in sections:
        body.append(f'<tr class="group"><td colspan="{len(metrics) + 2}">{html.escape(title)}</td></tr>')
        for pick in picks:
            if pick.row is None:
                body.append(
                    f"<tr><td>{html.escape(pick.role)}</td><td class='config' colspan='{len(metrics) + 1}'>"
                    f"{html.escape(pick.note)}</td></tr>"
                )
                continue
            config = config_labels(pd.DataFrame([pick.row]), parameters).iloc[0]
            cells = "".join(f"<td>{format_number(m, float(pick.row[m]))}</td>" for m in metrics)
            body.append(
                f"<tr><td>{html.escape(pick.role)}</td><td class='config'>{html.escape(config)}</td>{cells}</tr>"
            )
    return f"<table><tr><th>pick</th><th>configuration</th>{head}</tr>{''.join(body)}</table>"


def table_html(
    header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1, wrap: Sequence[int] = (), wide: bool = False
) -> str:
    """A plain table of text (every cell escaped here): the first ``left`` columns left-aligned, the columns
    in ``wrap`` wrapped; a ``wide`` table wraps its headers, and scrolls sideways on a narrow screen."""

    def cell(tag: str, i: int, text: str) -> str:
        css = "wrap" if i in wrap else "left" if i < left else ""
        return f"<{tag} class='{css}'>{html.escape(text)}</{tag}>" if css else f"<{tag}>{html.escape(text)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    if wide:
        return f"<div class='scroll'><table class='wide'><tr>{head}</tr>{body}</table></div>"
    return f"<table><tr>{head}</tr>{body}</table>"


def sentences_html(sentences: Sequence[str], css: str = "sentences") -> str:
    """Sentences as a list (escaped)."""
    return f"<ul class='{css}'>" + "".join(f"<li>{html.escape(s)}</li>" for s in sentences) + "</ul>"


def facts_html(facts: Sequence[tuple[str, str]]) -> str:
    """``label: value`` pairs as one wrapped line of facts."""
    return (
        "<div class='facts'>"
        + "".join(f"<span>{html.escape(k)}: <b>{html.escape(v)}</b></span>" for k, v in facts)
        + "</div>"
    )


def write_html(path: Path, title: str, intro: str, summary: str, charts: Sequence[Chart]) -> Path:
    """Write the report to ``path`` atomically; ``intro`` and ``summary`` are HTML made by this package
    (their text escaped). Returns ``path``."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style><script>{_plotly_js()}</script></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        intro,
        summary,
        "<nav>" + "".join(f"<a href='#{c.name}'>{html.escape(c.title)}</a>" for c in charts) + "</nav>",
    ]
    for chart in charts:
        parts.append(f"<h2 id='{chart.name}-title'><a id='{chart.name}'></a>{html.escape(chart.title)}</h2>")
        if chart.note:
            parts.append(f"<p class='note'>{html.escape(chart.note)}</p>")
        parts.append(f"<div class='chart' id='chart-{chart.name}'></div>")
        parts.append(
            f"<script>(function () {{ const f = {_script_safe(chart.figure.to_json())};"
            f" Plotly.newPlot('chart-{chart.name}', f.data, f.layout, {_json(PLOT_CONFIG)}); }})();</script>"
        )
    parts.append(f"<footer>dse {__version__} · charts by plotly.js, embedded; this file needs no network</footer>")
    parts.append("</body></html>")
    return write_text_durably(path, "\n".join(parts))  # a failed write leaves the old report, and no .tmp


def _json(value: Any) -> str:
    import json

    return _script_safe(json.dumps(value))


def _script_safe(text: str) -> str:
    """JSON inside a ``<script>``: a ``</`` in a string (a hardware name, say) must not end the script."""
    return text.replace("</", "<\\/")

"""The text of ``dse validate``'s report, from a ``Validation``: the facts, the error summary per quantity and
scenario, the hardware rank correlations, and the measured deployments the cost model says do not fit."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dse.calibrate import BREAKDOWN_COLUMNS, group_label
from dse.report._html import table_html
from dse.report._validation import QUANTITIES

if TYPE_CHECKING:
    from dse.calibrate import Validation

SUMMARY_HEADER = ("quantity", "scenario", "rows", "scored", "median |error|", "p90 |error|", "bias")
RANKS_HEADER = (
    "model", "quantization", "engine", "quantity", "scenario", "prompt + output", "batch", "hardware", "Spearman",
)  # fmt: skip


def _share(value: float | None, signed: bool = False) -> str:
    if value is None or not np.isfinite(value):
        return "—"
    return f"{value:+.0%}" if signed else f"{value:.0%}"


def scored_count(validation: Validation) -> int:
    """Rows with a prediction to compare: feasible, with a finite error."""
    rows = validation.rows
    return int((rows["feasible"] & np.isfinite(rows["error"].to_numpy(float))).sum())


def validation_facts(validation: Validation, measurements: str | Path | None) -> list[tuple[str, str]]:
    """The question as ``label: value`` pairs: the measurements, the profile, how many rows were scored."""
    rows = validation.rows
    facts = [
        ("measurements", str(measurements) if measurements is not None else "given rows"),
        ("profile", validation.profile),
        ("rows", f"{len(rows):,}"),
        ("scored", f"{scored_count(validation):,}"),
        ("hardware", f"{rows['hardware'].nunique():,}"),
        ("scenarios", ", ".join(dict.fromkeys(rows["scenario"])) or "—"),
    ]
    spearman = [r["spearman"] for r in validation.ranks]
    if spearman:
        facts.append(("median rank correlation", f"{np.median(spearman):.2f} over {len(spearman)} groups"))
    return facts


def _groups(summary: list[dict[str, Any]]) -> list[str]:
    """The columns the summary is broken down by (``dse validate --by``), in their order."""
    return [key for key in (summary[0] if summary else {}) if key in BREAKDOWN_COLUMNS]


def _quantity(metric: str) -> str:
    """A measured quantity as a reader names it, its column in validation.csv after it:
    "time per output token (tpot_s)"."""
    display = QUANTITIES.get(metric)
    return f"{display.title} ({metric})" if display is not None else metric


def _summary_rows(summary: list[dict[str, Any]]) -> list[list[str]]:
    groups = _groups(summary)
    return [
        [
            *(group_label(key, s[key]) for key in groups),
            _quantity(s["metric"]),
            s["scenario"],
            str(s["rows"]),
            str(s["scored"]),
            _share(s["median_abs_error"]),
            _share(s["p90_abs_error"]),
            _share(s["bias"], signed=True),
        ]
        for s in summary
    ]


def _ranks(validation: Validation) -> str:
    if not validation.ranks:
        return "<p class='note'>No group of rows that differ only in hardware spans 4 or more devices.</p>"
    rows = [
        [
            r["model"],
            r["quant"],
            r.get("engine") or "—",
            r["metric"],
            r["scenario"],
            f"{r['prompt_len']} + {r['gen_len']}",
            _batch(r.get("fixed_batch")),
            str(r["hardware"]),
            f"{r['spearman']:.2f}",
        ]
        for r in validation.ranks
    ]
    return table_html(RANKS_HEADER, rows, left=7)


def _batch(value: str | None) -> str:
    """A rank group's fixed batch as the report shows it: the batch, or "—" (a max-throughput group)."""
    if value is None or value == "nan":
        return "—"
    return f"{float(value):g}"


def _infeasible(validation: Validation) -> str:
    rows = validation.rows[~validation.rows["feasible"]]
    if rows.empty:
        return "<p class='note'>None: every measured deployment fits in the cost model's memory.</p>"
    columns = ["id", "model", "hardware", "quant", "infeasible_reason"]
    table = [[str(v) for v in row] for row in rows[columns].itertuples(index=False)]
    return table_html(["id", "model", "hardware", "quantization", "why"], table, left=4, wrap=(4,))


def validation_summary(validation: Validation) -> str:
    """The summary table, the rank correlations and the infeasible rows, as HTML (every cell escaped)."""
    groups = _groups(validation.summary)
    return (
        "<h2>Error per quantity and scenario</h2>"
        + table_html((*groups, *SUMMARY_HEADER), _summary_rows(validation.summary), left=2 + len(groups))
        + "<p class='note'>error = predicted / measured − 1: positive on a throughput and negative on a latency"
        " both mean the cost model is optimistic; bias = the median error. Scored = feasible rows with a"
        " prediction.</p>"
        + "<h2>Hardware rank correlation (Spearman)</h2>"
        + "<p class='note'>Per group of rows that differ only in hardware (4 or more devices): 1 = the cost model"
        " orders the devices as the measurements do.</p>"
        + _ranks(validation)
        + f"<h2>Measured deployments that do not fit ({int((~validation.rows['feasible']).sum())})</h2>"
        + _infeasible(validation)
    )

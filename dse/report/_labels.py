"""How results read in a report: metric titles and display units, parameter values as words, configuration
labels, colours per hardware and symbols per quantization. The only place SI values become display units
(the CLI's tables use the same table)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dse import units
from dse.space import PARAMETERS


@dataclass(frozen=True)
class Display:
    """A metric as a person reads it: ``title (unit)``, SI value × ``scale``."""

    title: str
    unit: str
    short: str
    """For table headers and terminal columns: ``TPOT``."""
    scale: float = 1.0

    @property
    def axis(self) -> str:
        return f"{self.title} ({self.unit})"

    @property
    def column(self) -> str:
        return f"{self.short} ({self.unit})"


DISPLAY: dict[str, Display] = {
    "ttft_s": Display("time to first token", "ms", "TTFT", 1 / units.MS),
    "tpot_s": Display("time per output token", "ms", "TPOT", 1 / units.MS),
    "e2e_latency_s": Display("end-to-end latency", "s", "end-to-end"),
    "throughput_tokens_per_s": Display("throughput", "tokens/s", "throughput"),
    "throughput_tokens_per_s_per_device": Display("throughput per device", "tokens/s/device", "per device"),
    "tokens_per_s_per_user": Display("speed per user", "tokens/s/user", "per user"),
    "memory_per_device_bytes": Display("memory per device", "GB", "memory", 1 / units.GB),
    "devices": Display("devices", "accelerators", "devices"),
    "usd_per_hour": Display("cost per hour", "$/h", "cost"),
    "usd_per_million_tokens": Display("cost per million output tokens", "$/M tokens", "cost"),
    "joules_per_token": Display("energy per output token", "J/token", "energy"),
    "max_request_rate": Display("request rate sustained within the SLOs", "requests/s", "max rate"),
}
"""Every canonical metric (DESIGN.md §4), in display units."""

RECIPROCALS = {"tokens_per_s_per_user": "tpot_s"}
"""Metrics that are exactly 1 / another (``dse.costmodel`` serving metrics: tokens/s per user = 1 / TPOT), so
a bound on one is a bound on the other."""

PARAMETER_TITLES = {
    "hardware": "hardware",
    "quant": "quantization",
    "kv": "KV format",
    "flash_attention": "flash attention",
    "tp": "tensor parallel",
    "pp": "pipeline stages",
    "ep": "expert parallel",
    "replicas": "replicas",
    "kv_block_size": "KV block (tokens)",
    "kv_offload": "KV offloaded",
    "kv_budget": "KV budget (tokens)",
    "scheduler": "scheduler",
    "max_num_seqs": "max sequences",
    "chunk_tokens": "step budget (tokens)",
    "mode": "prefill / decode",
    "prefill_replicas": "prefill replicas",
    "prefill_hardware": "prefill hardware",
    "prefill_tp": "prefill tp",
    "prefill_pp": "prefill pp",
    "spec_tokens": "draft tokens",
    "draft": "draft",
    "batch": "batch",
}

_MISSING = {
    "kv": "default",
    "kv_block_size": "per token",
    "kv_budget": "all",
    "draft": "none",
    "prefill_hardware": "same",
    "prefill_tp": "same",
    "prefill_pp": "same",
}
"""What a missing (None) parameter value means, as a word."""

ALWAYS_SHOWN = ("hardware", "quant", "kv", "batch")
"""Parameters every configuration label names; the others only when they vary within the run."""

HARDWARE_COLOURS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
    "#393b79",
    "#ad494a",
    "#637939",
    "#e6550d",
    "#6b6ecf",
    "#843c39",
    "#d6616b",
    "#3182bd",
)
"""Categorical colours (D3's category10, then darker tones), one per hardware in the order of the space."""

QUANT_SYMBOLS = (
    "circle",
    "square",
    "diamond",
    "triangle-up",
    "cross",
    "x",
    "star",
    "hexagon",
    "triangle-down",
    "pentagon",
    "hourglass",
    "bowtie",
)
"""Marker symbols, one per quantization scheme in the order of the space."""
QUANT_SYMBOLS_3D = ("circle", "square", "diamond", "cross", "x", "circle-open", "square-open", "diamond-open")
"""The symbols a 3-D scatter draws (plotly's ``Scatter3d`` has these eight), one per quantization scheme."""
SYMBOL_CODES = {
    "circle": 0, "square": 1, "diamond": 2, "cross": 3, "x": 4, "triangle-up": 5, "triangle-down": 6,
    "pentagon": 13, "hexagon": 14, "star": 17, "hourglass": 21, "bowtie": 22,
}  # fmt: skip
"""plotly's number for each symbol: a per-point array of numbers is a compact typed array in the page, where
names would be a string per point."""


def best_word(maximize: bool) -> str:
    """How the best value of an objective reads: ``highest`` or ``lowest``."""
    return "highest" if maximize else "lowest"


def column_name(metric: str) -> str:
    """A metric's name with its display unit for plain tables: ``tpot_s`` -> ``tpot_ms``,
    ``memory_per_device_bytes`` -> ``memory_per_device_gb``; names already in display units stay."""
    d = DISPLAY[metric]
    if d.scale == 1.0:
        return metric
    return metric.rsplit("_", 1)[0] + "_" + d.unit.lower()


def metric_value(metric: str, si: Any) -> Any:
    """SI value(s) -> display units."""
    return np.asarray(si, dtype=float) * DISPLAY[metric].scale


def full_number(value: float) -> str:
    """Four significant digits written in full, thousands separated: 16,480 (not 1.648e+04), 0.0497, 12.71."""
    return f"{float(f'{value:.4g}'):,.10g}"


def format_metric(metric: str, si: float | None) -> str:
    """One value with its unit, e.g. ``12.3 ms``, ``16,480 tokens/s``; ``—`` for unknown."""
    if si is None or not np.isfinite(si):
        return "—"
    d = DISPLAY[metric]
    return f"{full_number(si * d.scale)} {d.unit}"


def format_number(metric: str, si: float | None) -> str:
    """One value in display units without its unit (a table's header carries it); ``—`` for unknown."""
    if si is None or not np.isfinite(si):
        return "—"
    return full_number(si * DISPLAY[metric].scale)


def format_usd(usd: float | None) -> str:
    """Dollars as a person reads them: ``$25,842`` from $100 up, three figures below (``$2.95``, ``$1.00``,
    ``$0.103``); ``—`` for unknown."""
    if usd is None or not np.isfinite(usd):
        return "—"
    return f"${usd:,.0f}" if abs(usd) >= 99.95 else f"${usd:#,.3g}"  # 99.96 would read '$100.'


def parameter_text(name: str, values: Any) -> pd.Series:
    """Values of one parameter column as words (missing values say what they mean)."""
    series = pd.Series(np.asarray(values, dtype=object))
    missing = series.isna()
    if name == "flash_attention":
        words = series.map({True: "flash", False: "no flash"}).astype(object)
    elif name == "kv_offload":
        words = series.map(lambda v: f"{float(v):.0%}" if v == v and v is not None else "").astype(object)
    else:
        words = series.map(lambda v: f"{v:g}" if isinstance(v, float) else str(v)).astype(object)
    return words.where(~missing, _MISSING.get(name, "—"))


def shown_parameters(trials: pd.DataFrame) -> list[str]:
    """The parameters a label names: ``ALWAYS_SHOWN`` and every other that takes several values in ``trials``."""
    return [p for p in PARAMETERS if p in ALWAYS_SHOWN or (p in trials and trials[p].nunique(dropna=False) > 1)]


_PREFIX = {
    "hardware": "",
    "quant": "",
    "batch": "batch ",
    "kv": "KV ",
    "flash_attention": "",
    "kv_block_size": "KV block ",
    "kv_budget": "KV budget ",
    "kv_offload": "KV offload ",
    "prefill_hardware": "prefill on ",
    "prefill_tp": "prefill tp ",
    "prefill_pp": "prefill pp ",
}


def config_labels(frame: pd.DataFrame, parameters: Sequence[str]) -> pd.Series:
    """One label per row naming its configuration: ``h100-sxm, fp8, KV fp8, tp 2, batch 64`` (ASCII: a chart
    holds tens of thousands of labels, and JSON spells other characters in six bytes)."""
    if not len(frame):
        return pd.Series([], dtype=object)
    continuous = frame["scheduler"].to_numpy() == "continuous" if "scheduler" in frame else np.zeros(len(frame), bool)
    parts = []
    for name in parameters:
        prefix = _PREFIX.get(name, f"{name} ")
        part = prefix + parameter_text(name, frame[name].to_numpy())
        applies = ~continuous if name == "batch" else continuous if name in _CONTINUOUS_ONLY else None
        if name == "draft" and "spec_tokens" in frame:  # a draft only drafts with tokens to propose
            applies = frame["spec_tokens"].to_numpy() > 0
        if name in POOL_SETTINGS and "mode" in frame:
            applies = frame["mode"].to_numpy() == "disaggregated"
            if name != "prefill_replicas":  # null: the decode pool's own, nothing to say
                applies = applies & frame[name].notna().to_numpy()
        parts.append(part if applies is None else part.where(applies, ""))  # a setting the row's scheduler ignores
    label = parts[0]
    for part in parts[1:]:
        label = label + np.where((label != "") & (part != ""), ", ", "") + part
    return label.set_axis(frame.index)


POOL_SETTINGS = ("prefill_replicas", "prefill_hardware", "prefill_tp", "prefill_pp")
"""Settings only disaggregated rows use."""
_CONTINUOUS_ONLY = ("max_num_seqs", "chunk_tokens")
"""Settings only continuous batching uses (a static row's label leaves them out, and a continuous row's its
batch)."""


def palette(values: Sequence[str], colours: Sequence[str]) -> dict[str, str]:
    """A fixed value -> colour (or symbol) map, cycling when there are more values than entries."""
    return {value: colours[i % len(colours)] for i, value in enumerate(values)}

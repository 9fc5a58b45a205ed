"""``dse.evaluate``: a DataFrame of candidates in, the same rows with every metric out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from dse.catalog import CALIBRATED
from dse.costmodel import METRIC_NAMES, CostAssumptions
from dse.errors import InputError
from dse.scoring._build import pool_targets, prefilling
from dse.scoring._inputs import INPUTS, REQUIRED
from dse.scoring._intervals import ratio_table, target_ratios
from dse.scoring._score import reason_text, score_columns, serving_columns

if TYPE_CHECKING:
    import pandas as pd

OUTPUT_COLUMNS = (*METRIC_NAMES, "decode_throughput_tokens_per_s")
_MAY_BE_ABSENT = tuple(i.name for i in INPUTS if i.default is None and i.name not in REQUIRED)
"""Input columns where None/NaN means "not given"."""


def evaluate(
    candidates: pd.DataFrame | Mapping[str, Any],
    *,
    profile: str = CALIBRATED,
    ideal: bool = False,
    costs: CostAssumptions = CostAssumptions(),
    intervals: bool = False,
) -> pd.DataFrame:
    """Score every row of ``candidates`` with the vectorised cost model.

    ``candidates``: a DataFrame, or a mapping of column name -> values, read as ``pd.DataFrame(candidates)`` does
    (a single value is repeated down a column beside lists: ``{"model": "llama-3.1-8b", "batch": [1, 8]}``).
    Columns: the inputs of ``dse.scoring.INPUTS`` (names, defaults, meanings): ``model`` and ``hardware`` (ids or
    paths; ``hardware`` an accelerator or a system, which multi-device rows need) are required, every other is
    optional (None/NaN in an optional column = not given; in a column with a default, that default). Returns a copy
    (input columns unchanged) with the canonical metrics (DESIGN.md §4; ``devices`` counts every replica), the
    memory breakdown per device of the busiest pipeline stage (``host_kv_cache_bytes``: KV offloaded to host
    memory), ``max_batch``, ``compute_format``, ``feasible`` and ``infeasible_reason`` added. ``intervals``: also
    ``calibrated`` (the accelerator was measured in its profile's fit) and ``<quantity>_p10`` / ``_p90`` for
    ``ttft_s``, ``tpot_s`` and ``throughput_tokens_per_s`` (NaN where the profile has no interval;
    docs/validation.md). Rows under ``scheduler="continuous"`` add ``max_request_rate`` (every row has it) and
    ``SERVING_COLUMNS``: requests in an engine, TTFT and TPOT at p50 / p90 / p99 of the load (docs/cost-model.md
    §16).
    """
    import pandas as pd

    candidates = _frame(candidates)
    names = [i.name for i in INPUTS]
    unknown = set(candidates.columns) - set(names)
    if unknown:
        raise InputError(f"unknown candidate columns {sorted(unknown)}; expected {names}")
    columns: dict[str, Any] = {}
    defaults = {i.name: i.default for i in INPUTS if i.default is not None}
    for name in candidates.columns:
        series = candidates[name]
        if name in defaults and series.isna().any():  # a row that leaves an input out takes its default
            series = series.astype(object).where(series.notna(), defaults[name])
        if name in _MAY_BE_ABSENT or series.dtype == object:
            columns[name] = series.astype(object).where(series.notna(), None).tolist()  # NaN = not given
        else:
            columns[name] = series.to_numpy()
    n = len(candidates)
    out: dict[str, np.ndarray] = {}
    continuous = ("scheduler" in columns and "continuous" in columns["scheduler"]) or (
        "mode" in columns and "disaggregated" in columns["mode"]
    )
    for rows, scored in score_columns(columns, profile="ideal" if ideal else profile, costs=costs):
        m, mem = scored.metrics, scored.memory
        parts = {name: getattr(m, name) for name in OUTPUT_COLUMNS}
        parts |= {
            "weights_bytes": mem.weights_bytes,
            "kv_cache_bytes": mem.kv_cache_bytes,
            "activation_bytes": mem.activation_bytes,
            "capacity_bytes": mem.capacity_bytes,
            "host_kv_cache_bytes": mem.host_kv_cache_bytes,
            "max_batch": mem.max_batch,
            "prefill_flops": scored.prefill.flops,
            "decode_step_flops": scored.decode_step.flops,
            "compute_format": scored.compute_format,
            "feasible": m.feasible,
            "infeasible_reason": reason_text(m.reason),
        }
        if continuous:  # its load's figures (NaN in static rows)
            parts |= serving_columns(scored)
        for name, values in parts.items():
            if name not in out:
                out[name] = np.empty(n, dtype=values.dtype)
            out[name][rows] = values
    result = candidates.copy()
    for name, values in out.items():
        result[name] = values
    if intervals:
        _add_intervals(result, columns, "ideal" if ideal else profile)
    return pd.DataFrame(result)


def _frame(candidates: object) -> pd.DataFrame:
    """``candidates`` as a DataFrame: itself, or a mapping of columns; anything else is an ``InputError``."""
    import pandas as pd

    if isinstance(candidates, pd.DataFrame):
        return candidates
    if not isinstance(candidates, Mapping):
        raise InputError(
            f"expected a pandas DataFrame or a mapping of column name -> values, got {type(candidates).__name__}",
            field="candidates",
        )
    try:
        return pd.DataFrame(dict(candidates))
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"expected columns of equal length, or single values beside at least one list ({exc}); one "
            "deployment alone: dse.analyze",
            field="candidates",
        ) from None


def _add_intervals(result: pd.DataFrame, columns: dict[str, Any], profile: str) -> None:
    """``calibrated`` and the p10 / p90 columns of each interval quantity, per row's hardware; TTFT's from the
    hardware that prefills it (``prefilling``)."""
    targets, codes, pools = pool_targets(columns["hardware"], columns.get("prefill_hardware"))
    split = np.equal(np.asarray(columns["mode"], dtype=object), "disaggregated") if "mode" in columns else False
    ttft_codes = prefilling(codes, pools, split)
    per_target = target_ratios(targets, profile)
    result["calibrated"] = np.asarray([c for c, _ in per_target])[codes]
    for quantity, table in ratio_table(per_target).items():
        ratios = table[ttft_codes if quantity == "ttft_s" else codes]
        result[f"{quantity}_p10"] = result[quantity].to_numpy(dtype=np.float64) * ratios[:, 0]
        result[f"{quantity}_p90"] = result[quantity].to_numpy(dtype=np.float64) * ratios[:, 2]

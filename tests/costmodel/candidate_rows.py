"""Rows of candidate inputs (as ``score_columns`` takes them) as the cost model's ``Candidates``."""

from __future__ import annotations

from typing import Any

from dse.catalog import load_model
from dse.costmodel import Candidates, CostAssumptions
from dse.scoring import INPUT_DEFAULTS, build_candidates, candidate_fields, numerics_table, pool_targets, with_defaults


def candidates_of(rows: list[dict[str, Any]], profile: str = "default") -> Candidates:
    """The candidates of ``rows`` (one model) through the same path as ``score_columns``; inputs a row leaves
    out take their defaults (one device, no KV-cache policy)."""
    names = {k for row in rows for k in row}
    columns = with_defaults({k: [row[k] if k in row else INPUT_DEFAULTS[k] for row in rows] for k in names})
    targets, hw_codes, pool_codes = pool_targets(columns["hardware"], columns["prefill_hardware"])
    codes, numerics = numerics_table(columns)
    cand, _ = build_candidates(
        load_model(str(columns["model"][0])),
        targets,
        hw_codes,
        numerics,
        codes,
        candidate_fields(columns),
        profile=profile,
        costs=CostAssumptions(),
        prefill_codes=pool_codes,
    )
    return cand


def candidates(row: dict[str, Any], profile: str = "default") -> Candidates:
    """The candidate of one row."""
    return candidates_of([row], profile)

"""One row of candidate inputs (as ``score_columns`` takes them) as the cost model's ``Candidates``."""

from __future__ import annotations

from typing import Any

import numpy as np

from dse.catalog import load_target
from dse.costmodel import Candidates, CostAssumptions
from dse.scoring import build_candidates, candidate_fields, numerics_table, with_defaults


def candidates(row: dict[str, Any], profile: str = "default") -> Candidates:
    """The candidate of ``row`` through the same path as ``score_columns`` (absent inputs take their
    defaults: one device, no KV-cache policy)."""
    columns = with_defaults({k: [v] for k, v in row.items()})
    codes, numerics = numerics_table(columns)
    cand, _ = build_candidates(
        [load_target(row["hardware"])],
        np.zeros(1, dtype=np.int64),
        numerics,
        codes,
        candidate_fields(columns),
        profile=profile,
        costs=CostAssumptions(),
    )
    return cand

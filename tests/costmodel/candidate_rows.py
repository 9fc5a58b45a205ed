"""One row of candidate fields (as ``score_columns`` takes them) as the cost model's ``Candidates``."""

from __future__ import annotations

from typing import Any

import numpy as np

from dse.catalog import load_target
from dse.costmodel import Candidates, CostAssumptions
from dse.scoring import DEPLOYMENT_INTS, INPUT_DEFAULTS, _numerics_table, build_candidates, kv_policy_columns


def candidates(row: dict[str, Any], profile: str = "default") -> Candidates:
    """The candidate of ``row`` through the same path as ``score_columns`` (absent fields take their
    defaults: one device, no KV-cache policy)."""
    cols = {k: [row.get(k, v)] for k, v in INPUT_DEFAULTS.items()}
    q_codes, numerics = _numerics_table(cols)
    workload: dict[str, Any] = {
        k: np.asarray(cols[k], dtype=float) for k in ("batch", "prompt_len", "gen_len", *DEPLOYMENT_INTS)
    }
    workload["flash"] = np.asarray(cols["flash_attention"])
    workload |= kv_policy_columns(cols)
    cand, _ = build_candidates(
        [load_target(row["hardware"])],
        np.zeros(1, dtype=np.int64),
        numerics,
        q_codes,
        workload,
        profile=profile,
        costs=CostAssumptions(),
    )
    return cand

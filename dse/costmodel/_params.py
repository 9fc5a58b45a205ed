"""Parameter counts from the same operator table the cost model charges (one place for the shapes)."""

from __future__ import annotations

import numpy as np

from dse.catalog import ModelSpec
from dse.costmodel._attention import prefill_work
from dse.costmodel._layers import PassInputs, layer_ops


def parameter_counts(model: ModelSpec) -> tuple[float, float]:
    """(total, active) parameters. Active = what one token uses: k of E routed experts, input embedding
    excluded (the convention of the DeepSeek-V3, gpt-oss and Mixtral cards)."""
    one = np.ones(1)
    work = prefill_work(one, np.inf, one)
    x = PassInputs(one, one, one, one, one, one, np.ones(1, bool), False, work, work)
    ops = layer_ops(model, x)
    total = sum(op.count * op.params for op in ops)
    active = sum(op.count * op.active_params for op in ops)
    return float(total), float(active)

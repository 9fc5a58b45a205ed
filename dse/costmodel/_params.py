"""Parameter counts from the same operator table the cost model charges (one place for the shapes)."""

from __future__ import annotations

from dse.catalog import ModelSpec
from dse.costmodel._layers import layer_specs


def parameter_counts(model: ModelSpec) -> tuple[float, float]:
    """(total, active) parameters. Active = what one token uses: k of E routed experts, input embedding
    excluded (the convention of the DeepSeek-V3 and gpt-oss cards)."""
    specs = layer_specs(model, decode=False)
    return float(sum(s.count * s.params for s in specs)), float(sum(s.count * s.active_params for s in specs))

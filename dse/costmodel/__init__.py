"""The roofline cost model: pure numpy, vectorised over N candidates, no I/O."""

from dse.costmodel._candidates import Candidates
from dse.costmodel._costs import CostAssumptions, Pricing, usd_per_device_hour
from dse.costmodel._evaluate import (
    Evaluation,
    ModelTables,
    PhaseCost,
    compile_model,
    evaluate_candidates,
    evicts,
    prefix_cached_tokens,
    rates_of,
)
from dse.costmodel._memory import MemoryBreakdown
from dse.costmodel._ops import OpSpec
from dse.costmodel._params import parameter_counts
from dse.costmodel._precision import Precision, resolve_precision
from dse.costmodel._roofline import sum_max_linear
from dse.costmodel._serving import METRIC_NAMES, REASON_TEXT, Reason, ServingMetrics, serving_metrics
from dse.costmodel._table import OpTable, PassCost, Rates

__all__ = [
    "METRIC_NAMES",
    "REASON_TEXT",
    "Candidates",
    "CostAssumptions",
    "Evaluation",
    "MemoryBreakdown",
    "ModelTables",
    "OpSpec",
    "OpTable",
    "PassCost",
    "PhaseCost",
    "Precision",
    "Pricing",
    "Rates",
    "Reason",
    "ServingMetrics",
    "compile_model",
    "evaluate_candidates",
    "evicts",
    "parameter_counts",
    "prefix_cached_tokens",
    "rates_of",
    "resolve_precision",
    "serving_metrics",
    "sum_max_linear",
    "usd_per_device_hour",
]

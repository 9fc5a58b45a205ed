"""The roofline cost model: pure numpy, no I/O.

``physics`` holds every formula and a plain reference evaluator (one candidate at a time); ``engine`` scores
N candidates at once from tables built from those formulas. Both return an ``Evaluation``.
"""

from dse.costmodel.candidates import (
    CHUNK_TOKENS,
    DEFAULTS,
    MAX_NUM_SEQS,
    MAX_TOKENS,
    MAX_UTILIZATION,
    MAX_WHOLE,
    POOL_FIELDS,
    SPEC_ACCEPTANCE,
    Candidates,
)
from dse.costmodel.engine.evaluate import compile_model, evaluate
from dse.costmodel.physics.architecture import Architecture, MLAShape, MoEShape
from dse.costmodel.physics.collectives import Communication
from dse.costmodel.physics.continuous import QUANTILES as SERVING_QUANTILES
from dse.costmodel.physics.continuous import ContinuousServing
from dse.costmodel.physics.evaluation import Evaluation, OperatorCost, PhaseCost
from dse.costmodel.physics.feasibility import REASON_TEXT, Reason
from dse.costmodel.physics.kvcache import evicts, prefix_cached_tokens
from dse.costmodel.physics.layers import parameter_counts
from dse.costmodel.physics.memory import MemoryBreakdown
from dse.costmodel.physics.parallel import Layout
from dse.costmodel.physics.precision import Precision, resolve_precision
from dse.costmodel.physics.reference import evaluate as evaluate_reference
from dse.costmodel.physics.serving import (
    METRIC_NAMES,
    PRICINGS,
    CostAssumptions,
    Pricing,
    ServingMetrics,
    usd_per_device_hour,
)

__all__ = [
    "CHUNK_TOKENS",
    "DEFAULTS",
    "MAX_NUM_SEQS",
    "MAX_TOKENS",
    "MAX_UTILIZATION",
    "MAX_WHOLE",
    "METRIC_NAMES",
    "POOL_FIELDS",
    "PRICINGS",
    "REASON_TEXT",
    "SERVING_QUANTILES",
    "SPEC_ACCEPTANCE",
    "Architecture",
    "Candidates",
    "Communication",
    "ContinuousServing",
    "CostAssumptions",
    "Evaluation",
    "Layout",
    "MLAShape",
    "MemoryBreakdown",
    "MoEShape",
    "OperatorCost",
    "PhaseCost",
    "Precision",
    "Pricing",
    "Reason",
    "ServingMetrics",
    "compile_model",
    "evaluate",
    "evaluate_reference",
    "evicts",
    "parameter_counts",
    "prefix_cached_tokens",
    "resolve_precision",
    "usd_per_device_hour",
]

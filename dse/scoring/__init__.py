"""The evaluation layer: candidates given by ids and formats -> the cost model's arrays -> scored columns.

``INPUTS`` declares every input once; ``dse.evaluate`` (a DataFrame of candidates) and ``dse.analyze`` (one
candidate, every operator) are its public faces. The package is named ``scoring`` because ``dse.evaluate``
is the function.
"""

from dse.scoring._analysis import Analysis, analyze, finite_json
from dse.scoring._build import (
    Target,
    architecture,
    build_candidates,
    factorize,
    factorize_rows,
    numerics_table,
    pool_targets,
    precision,
    prefilling,
    scenario_rent,
    target_prices,
    target_profiles,
    unpriced_reason,
)
from dse.scoring._draft import draft_figures, with_draft
from dse.scoring._frame import OUTPUT_COLUMNS, evaluate
from dse.scoring._inputs import (
    INPUT_DEFAULTS,
    INPUTS,
    SCHEDULERS,
    Input,
    Percentile,
    Scheduler,
    candidate_fields,
    convert,
)
from dse.scoring._intervals import interval_ratios, intervals, ratio_at, ratio_table, target_ratios
from dse.scoring._lengths import COUNT_COLUMN, read_histogram
from dse.scoring._score import (
    CHUNK_SIZE,
    SERVING_COLUMNS,
    Scored,
    reason_text,
    score_columns,
    score_model,
    serving_columns,
    with_defaults,
)

__all__ = [
    "CHUNK_SIZE",
    "COUNT_COLUMN",
    "INPUTS",
    "INPUT_DEFAULTS",
    "OUTPUT_COLUMNS",
    "SCHEDULERS",
    "SERVING_COLUMNS",
    "Analysis",
    "Input",
    "Percentile",
    "Scheduler",
    "Scored",
    "Target",
    "analyze",
    "architecture",
    "build_candidates",
    "candidate_fields",
    "convert",
    "draft_figures",
    "evaluate",
    "factorize",
    "factorize_rows",
    "finite_json",
    "interval_ratios",
    "intervals",
    "numerics_table",
    "pool_targets",
    "precision",
    "prefilling",
    "ratio_at",
    "ratio_table",
    "read_histogram",
    "reason_text",
    "scenario_rent",
    "score_columns",
    "score_model",
    "serving_columns",
    "target_prices",
    "target_profiles",
    "target_ratios",
    "unpriced_reason",
    "with_defaults",
    "with_draft",
]

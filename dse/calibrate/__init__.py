"""The cost model against measurements: a documented CSV format for them, ``dse validate`` and ``dse
calibrate`` (docs/validation.md)."""

from dse.calibrate._fit import Fit, calibrate, cross_validated, residual_interval
from dse.calibrate._measurements import (
    COLUMNS,
    METRICS,
    SCENARIOS,
    Measurement,
    MeasurementRecord,
    read_measurements,
)
from dse.calibrate._validate import (
    BREAKDOWN_COLUMNS,
    SCORED_SCENARIOS,
    Validation,
    group_label,
    predict,
    summarise,
    validate,
)

__all__ = [
    "BREAKDOWN_COLUMNS",
    "COLUMNS",
    "METRICS",
    "SCENARIOS",
    "SCORED_SCENARIOS",
    "Fit",
    "Measurement",
    "MeasurementRecord",
    "Validation",
    "calibrate",
    "cross_validated",
    "group_label",
    "predict",
    "read_measurements",
    "residual_interval",
    "summarise",
    "validate",
]

"""The cost model against measurements: a documented CSV format for them, and ``dse validate``
(docs/validation.md)."""

from dse.calibrate._measurements import COLUMNS, METRICS, Measurement, MeasurementRecord, read_measurements
from dse.calibrate._validate import SCORED_SCENARIOS, Validation, predict, summarise, validate

__all__ = [
    "COLUMNS",
    "METRICS",
    "SCORED_SCENARIOS",
    "Measurement",
    "MeasurementRecord",
    "Validation",
    "predict",
    "read_measurements",
    "summarise",
    "validate",
]

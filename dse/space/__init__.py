"""Search spaces: YAML -> typed, resolved, statically pruned ``Space``."""

from dse.space._lengths import WorkloadLengths, workload_lengths
from dse.space._schema import (
    MAXIMIZED,
    EngineKind,
    ExecutorKind,
    KeepKind,
    MetricName,
    ObjectiveRecord,
    SpaceRecord,
    lengths_label,
)
from dse.space._space import (
    DIMENSIONS,
    METRICS,
    OPTIONAL_INTS,
    PARAMETERS,
    SETTINGS,
    WORKLOAD_COLUMNS,
    Pruned,
    Space,
    build_space,
    load_space,
)

__all__ = [
    "DIMENSIONS",
    "MAXIMIZED",
    "METRICS",
    "OPTIONAL_INTS",
    "PARAMETERS",
    "SETTINGS",
    "WORKLOAD_COLUMNS",
    "EngineKind",
    "ExecutorKind",
    "KeepKind",
    "MetricName",
    "ObjectiveRecord",
    "Pruned",
    "Space",
    "SpaceRecord",
    "WorkloadLengths",
    "build_space",
    "lengths_label",
    "load_space",
    "workload_lengths",
]

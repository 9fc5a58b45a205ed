"""Search spaces: YAML -> typed, resolved, statically pruned ``Space``."""

from dse.space._schema import MAXIMIZED, MetricName, SpaceRecord
from dse.space._space import METRICS, PARAMETERS, Space, build_space, load_space

__all__ = ["MAXIMIZED", "METRICS", "PARAMETERS", "MetricName", "Space", "SpaceRecord", "build_space", "load_space"]

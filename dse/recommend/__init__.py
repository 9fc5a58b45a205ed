"""Which hardware to buy or rent: fleet sizing under SLOs and a load, cost in three pricings, thresholds,
robustness (docs/recommend.md).

``dse.recommend(...)`` is both this package and the function: once the package is imported, Python binds the
name ``dse.recommend`` to it, so the package itself is made callable (it calls ``recommend``)."""

import sys
import types
from typing import Any

from dse.recommend._recommend import OPTION_KEYS, SCHEMA_VERSION, Recommendation, recommend
from dse.recommend._request import MAX_SIZING_RATE, SCENARIOS, Request, Traffic, make_request, read_traffic

__all__ = [
    "MAX_SIZING_RATE",
    "OPTION_KEYS",
    "SCENARIOS",
    "SCHEMA_VERSION",
    "Recommendation",
    "Request",
    "Traffic",
    "make_request",
    "read_traffic",
    "recommend",
]


class _CallableModule(types.ModuleType):
    def __call__(self, request: Request | None = None, **fields: Any) -> Recommendation:
        return recommend(request, **fields)


sys.modules[__name__].__class__ = _CallableModule

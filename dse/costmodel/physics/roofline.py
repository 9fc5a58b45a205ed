"""The roofline: how long one operator takes on one device.

Roofline model (Williams, Waterman, Patterson, "Roofline: an insightful visual performance model", CACM 2009),
applied per operator to LLM inference as in LLM-Viewer (Yuan et al., arXiv 2402.16363 §3): an operator doing
F FLOPs and moving Q bytes takes ``max(F / π, Q / β)`` on a device that attains π FLOP/s and β bytes/s, plus a
fixed per-kernel overhead. Every function works on floats and numpy arrays alike.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

Peak = Literal["matmul", "matmul16", "vector", "attn_linear"]
"""Which peak an operator computes at: the scheme's linear-layer format (``matmul``), the 16-bit format
(``matmul16``: attention products, and projections whose weights stay 16-bit: router, LM head), the vector
units (element-wise work), or the attention projections' (``attn_linear``): ``matmul``'s, or ``matmul16``'s
where the checkpoint keeps them 16-bit (``Candidates.attention_16bit``)."""
PEAKS: tuple[Peak, ...] = ("matmul", "matmul16", "vector", "attn_linear")
ROOFS: tuple[Peak, ...] = PEAKS[:3]
"""The distinct ceilings of a roofline chart: ``attn_linear`` is one of ``matmul`` and ``matmul16``."""


def attainable(peak: Any, efficiency: Any) -> Any:
    """π = peak x efficiency (or β = bandwidth x efficiency): the rate kernels actually reach (profile data)."""
    return peak * efficiency


def compute_time_s(flops: Any, flops_per_s: Any) -> Any:
    """F / π."""
    return flops / flops_per_s


def memory_time_s(
    memory_bytes: Any,
    bytes_per_s: Any,
    kv_read_bytes: Any = 0.0,
    host_extra_s_per_byte: Any = 0.0,
) -> Any:
    """Q / β, plus the extra time of the KV-cache bytes read from host memory (``host_extra_s_per_byte``,
    ``dse.costmodel.physics.kvcache.host_read_extra_s_per_byte``; 0 without host offload). No cache bytes read,
    no extra, whatever the link (an unknown one, NaN, included)."""
    with np.errstate(invalid="ignore"):
        extra = np.where(kv_read_bytes > 0, kv_read_bytes * host_extra_s_per_byte, 0.0)
    return memory_bytes / bytes_per_s + extra


def roofline_s(compute_s: Any, memory_s: Any) -> Any:
    """max(F / π, Q / β): the operator is bound by whichever takes longer."""
    return np.maximum(compute_s, memory_s)


def bound(compute_s: float, memory_s: float) -> str:
    """``compute`` when the compute time exceeds the memory time, else ``memory``."""
    return "compute" if compute_s > memory_s else "memory"


def arithmetic_intensity(flops: float, memory_bytes: float) -> float | None:
    """FLOPs per byte moved (the roofline chart's x axis); None for an operator that moves nothing."""
    return flops / memory_bytes if memory_bytes else None

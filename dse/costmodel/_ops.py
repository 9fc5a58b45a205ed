"""Operator formulas: FLOPs and bytes of one operator instance, vectorised over candidates.

Conventions (per instance, per device; ``rows`` = token rows through the operator):
- a matrix multiply of a (rows x d_in) activation by a (d_in x d_out) weight does ``2 rows d_in d_out``
  FLOPs (one multiply and one add per MAC; Kaplan et al. 2020, arXiv 2001.08361 §2.1) and moves the
  weight once, the input once and the output once (LLM-Viewer's accounting, arXiv 2402.16363 §3.1);
- element-wise operators move their inputs and outputs once and cost a fixed number of FLOPs per element
  (the constants below, named so the assumption is visible);
- bytes = elements x bytes per element of the storage format (``*_bpe``: bits / 8, with scale overhead).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np

from dse import units
from dse.costmodel._roofline import Array

OpKind = Literal["matmul", "attention", "vector"]
"""Which peak an operator runs at: the linear-layer format, the 16-bit attention format, or vector units."""

NORM_FLOPS_PER_ELEMENT = {"rmsnorm": 4.0, "layernorm": 7.0}
"""RMSNorm: square, accumulate, scale, weight (4); LayerNorm adds mean subtraction and bias (7)."""
SOFTMAX_FLOPS_PER_ELEMENT = 5.0
"""max, subtract, exp, sum, divide: LLM-Viewer's softmax count (arXiv 2402.16363, Table 1 footnote)."""
ACTIVATION_FLOPS_PER_ELEMENT = 5.0
"""SiLU/GELU evaluated as ~4 FLOPs plus the gate multiply for gated FFNs (order of magnitude; memory-bound)."""
ROUTER_FLOPS_PER_LOGIT = 5.0
"""Softmax/sigmoid and top-k selection over the router logits, per logit."""
PARAMETER_BPE_16 = units.bits_to_bytes(16.0)
"""Norm weights, biases and router weights stay 16-bit (2 bytes per element) in every scheme we model."""


@dataclass(frozen=True)
class Op:
    """One operator: per-instance cost arrays and how many instances one forward pass runs."""

    name: str
    count: float
    kind: OpKind
    flops: Array
    weight_bytes: Array
    act_bytes: Array
    kv_bytes: Array
    params: float = 0.0
    """Parameters of one instance (all experts), for parameter counts."""
    active_params: float = 0.0
    """Parameters one token uses (k of E experts), for active-parameter counts."""
    resident_bytes: Array | None = None
    """Bytes of all its parameters as stored in device memory; None = the bytes it reads (``weight_bytes``)."""
    active: Array | None = None
    """Rows where the operator runs (None = all): fused and unfused attention exclude each other."""

    @property
    def stored_bytes(self) -> Array:
        return self.weight_bytes if self.resident_bytes is None else self.resident_bytes

    @functools.cached_property
    def memory_bytes(self) -> Array:
        return self.weight_bytes + self.act_bytes + self.kv_bytes  # type: ignore[no-any-return]


def _b(elements: Array | float, bytes_per_element: Array | float) -> Array:
    return elements * bytes_per_element  # type: ignore[return-value,operator]


def _per_row(value: Array | float, rows: Array) -> Array:
    """``value`` as an array shaped like ``rows`` (constants broadcast once)."""
    return value if isinstance(value, np.ndarray) else np.full_like(rows, value)


def linear(
    name: str,
    count: float,
    rows: Array,
    d_in: int,
    d_out: int,
    weight_bpe: Array | float,
    act_bpe: Array,
    *,
    bias: bool = False,
    cache_bpe: Array | None = None,
) -> Op:
    """A dense projection; ``cache_bpe`` also writes its output to the KV cache in that format."""
    weights = d_in * d_out
    params = weights + (d_out if bias else 0)
    kv = _b(rows * d_out, cache_bpe) if cache_bpe is not None else np.zeros_like(rows)
    return Op(
        name,
        count,
        "matmul",
        flops=2.0 * rows * d_in * d_out,
        weight_bytes=_per_row(_b(weights, weight_bpe) + _b(d_out if bias else 0, PARAMETER_BPE_16), rows),
        act_bytes=_b(rows * (d_in + d_out), act_bpe),
        kv_bytes=kv,
        params=params,
        active_params=params,
    )


def elementwise(
    name: str,
    count: float,
    elements: Array,
    flops_per_element: float,
    act_bpe: Array,
    *,
    reads: float = 1.0,
    writes: float = 1.0,
    params: int = 0,
) -> Op:
    """An element-wise operator over ``elements`` outputs, reading ``reads`` inputs per output."""
    return Op(
        name,
        count,
        "vector",
        flops=flops_per_element * elements,
        weight_bytes=np.full_like(elements, PARAMETER_BPE_16 * params),
        act_bytes=_b(elements * (reads + writes), act_bpe),
        kv_bytes=np.zeros_like(elements),
        params=params,
        active_params=params,
    )


def experts(
    name: str,
    count: float,
    rows: Array,
    d_in: int,
    d_out: int,
    matrices: int,
    routed: tuple[int, int],
    weight_bpe: Array | float,
    act_bpe: Array,
    *,
    bias: bool = False,
) -> Op:
    """Routed experts' projection (``matrices`` weight matrices of d_in x d_out per expert).

    ``routed`` = (E experts, k per token). Each of ``rows`` tokens runs k experts. The weights read are those
    of the experts the batch touches: with uniform independent routing, the expected number of distinct
    experts hit by R tokens choosing k of E is ``E (1 - (1 - k/E)^R)`` (occupancy; e.g. Feller vol. 1 §II.11);
    a real router's imbalance makes it somewhat lower, so this is an upper bound on weight traffic.
    """
    num_experts, top_k = routed
    touched = num_experts * (1.0 - (1.0 - top_k / num_experts) ** rows)
    per_expert = matrices * d_in * d_out + (matrices * d_out if bias else 0)
    expert_bytes = _b(matrices * d_in * d_out, weight_bpe) + _b(matrices * d_out if bias else 0, PARAMETER_BPE_16)
    routed_rows = rows * top_k
    return Op(
        name,
        count,
        "matmul",
        flops=2.0 * routed_rows * matrices * d_in * d_out,
        weight_bytes=_per_row(touched * expert_bytes, rows),
        act_bytes=_b(routed_rows * (d_in + matrices * d_out), act_bpe),
        kv_bytes=np.zeros_like(rows),
        params=num_experts * per_expert,
        active_params=top_k * per_expert,
        resident_bytes=num_experts * expert_bytes + np.zeros_like(rows),
    )

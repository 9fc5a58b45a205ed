"""Mixture of experts: which experts a pass touches, and the router and expert operators.

A MoE layer routes each token row to k of E experts (GShard, Lepikhin et al. 2020, arXiv 2006.16668 §2;
DeepSeek-V3, arXiv 2412.19437 §2.1.2), replacing the dense FFN; shared experts, when present, run on every
row like a dense FFN of width I_s.
"""

from __future__ import annotations

from functools import cache
from statistics import NormalDist
from typing import Any

import numpy as np

from dse.costmodel.physics.architecture import Architecture
from dse.costmodel.physics.operators import (
    ACTIVATION_FLOPS_PER_ELEMENT,
    GATE_FLOPS_PER_ELEMENT,
    PARAMETER_BYTES,
    Operator,
    Pass,
    elementwise,
    linear,
)

ROUTER_FLOPS_PER_LOGIT = 5.0
"""Softmax (or sigmoid) and top-k selection over the router's logits, per logit (as softmax: LLM-Viewer)."""


def experts_touched_fraction(R: Any, k: float, E: float) -> Any:
    """u = 1 - (1 - k/E)^R: the expected fraction of E experts that R token rows, each choosing k of them,
    touch when routing is uniform and independent (occupancy; Feller, vol. 1 §II.11). The expected number of
    distinct experts is E u, so a pass reads u of the expert weights. Real routers are imbalanced and touch
    fewer, so this bounds the traffic from above. Computed as -expm1(R log1p(-k/E)), the same number."""
    with np.errstate(divide="ignore"):  # k = E: log1p(-1) = -inf, and u = 1 exactly
        return -np.expm1(R * np.log1p(-k / E))


def device_experts_touched(copies: Any, experts: Any) -> Any:
    """u = 1 - (1 - 1/m)^c: the expected fraction of a device's m experts that c routed copies touch, each
    landing on one of them uniformly and independently (occupancy, as ``experts_touched_fraction``; m = 1:
    any copy touches it; fewer experts than devices, a split that cannot run, counts as one). Computed as
    -expm1(c log1p(-1/m))."""
    with np.errstate(divide="ignore", invalid="ignore"):  # m = 1: log1p(-1) = -inf, and u = 1 for any copy
        return np.where(copies > 0, -np.expm1(copies * np.log1p(-1.0 / np.maximum(experts, 1.0))), 0.0)


def imbalance_cap(ep: Any, k: float, E: float) -> Any:
    """The largest possible ρ (busiest expert-parallel device's routed copies over the mean): a token sends at
    most min(k, E/ep) of its k copies to one device, so that device receives at most ep · min(k, E/ep) / k
    times the mean (at least 1)."""
    return np.maximum(ep * np.minimum(k, E / ep) / k, 1.0)


BLOM_ALPHA = 0.375
"""α of Blom's plotting positions: the i-th of n ordered standard normals is near Φ⁻¹((i − α) / (n − 2α + 1))
(G. Blom, *Statistical Estimates and Transformed Beta-Variables*, 1958). For the largest, i = n, against its
exact expectation (numerical integration): 0.590 vs 0.564 at n = 2 (+4.5 %), 1.049 vs 1.029 at 4, 1.434 vs
1.424 at 8 (+0.7 %), 2.337 vs 2.344 at 64."""


TABULATED_MAXIMA = 1024
"""``expected_max_normal`` is read from a table for whole n up to this (expert-parallel degrees are whole)."""


def _blom(n: float) -> float:
    if not n >= 1.0:
        return float("nan")
    p = (n - BLOM_ALPHA) / (n - 2.0 * BLOM_ALPHA + 1.0)
    return NormalDist().inv_cdf(p) if p < 1.0 else float("inf")


@cache
def _maxima() -> Any:
    """``_blom`` of 0 .. ``TABULATED_MAXIMA`` (NaN at 0), built once (about 1 ms)."""
    return np.array([_blom(float(n)) for n in range(TABULATED_MAXIMA + 1)])


def expected_max_normal(n: Any) -> Any:
    """E[max of n independent standard normals] ≈ Φ⁻¹((n − α) / (n − 2α + 1)) (``BLOM_ALPHA``): 0 for n = 1;
    NaN below 1. Whole n up to ``TABULATED_MAXIMA`` come from a table, any other n from the standard library's
    inverse normal."""
    n = np.asarray(n, dtype=np.float64)
    tabulated = (n == np.floor(n)) & (n >= 0.0) & (n <= TABULATED_MAXIMA)
    z = _maxima()[np.where(tabulated, n, 0.0).astype(np.intp)]
    if not np.all(tabulated):
        with np.errstate(invalid="ignore"):  # NaN n gives NaN
            z = np.where(tabulated, z, np.vectorize(_blom, otypes=[np.float64])(np.where(tabulated, 1.0, n)))
    return z if z.ndim else float(z)


def routing_imbalance(R: Any, ep: Any, k: float, E: float) -> Any:
    """ρ_u: the busiest of ep devices' routed copies over the mean when R token rows each choose k distinct
    experts of E uniformly and independently, E/ep experts on each device (the imbalance of chance alone; a
    trained router adds its own skew). A device receives μ = R k / ep copies on average, with variance
    σ² = R k (1/ep)(1 − 1/ep)(E − k)/(E − 1) (a token's k copies are drawn without replacement: hypergeometric,
    per token). The ep counts sum to R k, so they are correlated (−1/(ep − 1)): they are ep independent normals
    less their mean, whose largest exceeds μ by z τ, z the expected largest of ep standard normals
    (``expected_max_normal``) and τ² = σ² ep / (ep − 1) the independent normals' variance (exact at ep = 2:
    μ + σ √(2/π)). The busiest holds at least ceil(μ) (pigeonhole), so
    ρ_u = max(1 + z τ / μ, ceil(μ) / μ), τ / μ = √((E − k) / (μ (E − 1))). Uncapped: ``imbalance_cap``
    bounds it. It falls as 1/√R: for DeepSeek-V3 (E = 256, k = 8) over ep = 8, 2.41 at one token, 1.18 at 64,
    1.02 at 4,096; sampled routing gives 2.56, 1.18 and 1.02 (the Gaussian form is a few per cent low where a
    device gets about one copy)."""
    mu = np.multiply(R, k / ep)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.sqrt(np.divide(E - k, mu * (E - 1.0)))  # τ / μ
        rho = np.maximum(1.0 + expected_max_normal(ep) * spread, np.divide(np.ceil(mu), mu))
    return np.where(R == 0, 1.0, rho)


def activation_flops_per_element(arch: Architecture) -> float:
    """FLOPs per FFN hidden element: the activation, plus the gate multiply of a gated FFN."""
    return ACTIVATION_FLOPS_PER_ELEMENT + (GATE_FLOPS_PER_ELEMENT if arch.ffn_gated else 0.0)


def ffn(prefix: str, count: float, arch: Architecture, p: Pass[Any], width: int) -> list[Operator[Any]]:
    """A dense FFN of ``width`` (gate and up column-parallel, down row-parallel; Megatron-LM §3)."""
    h, bias = arch.hidden_size, arch.mlp_bias
    gate = [linear(f"{prefix}gate_proj", count, p, h, width, shard=("column", p.s_tp), bias=bias)]
    reads = 2.0 if arch.ffn_gated else 1.0
    return [
        *(gate if arch.ffn_gated else []),
        linear(f"{prefix}up_proj", count, p, h, width, shard=("column", p.s_tp), bias=bias),
        elementwise(f"{prefix}mlp_act", count, p, width, activation_flops_per_element(arch), reads=reads, share=p.s_tp),
        linear(f"{prefix}down_proj", count, p, width, h, shard=("row", p.s_tp), bias=bias),
    ]


def routed_experts(
    name: str,
    count: float,
    p: Pass[Any],
    d_in: int,
    d_out: int,
    matrices: int,
    E: int,
    k: int,
    *,
    gate_up: bool,
    bias: bool,
) -> Operator[Any]:
    """A routed-expert projection: ``matrices`` d_in x d_out weight matrices per expert; each token row runs
    k experts: 2 R k matrices d_in d_out FLOPs, and the weights of the u E experts touched,
    u E matrices d_in d_out w (plus 16-bit biases in the same fraction).

    Per device (``Pass``): weights x s_ew; FLOPs and the side tensor parallelism splits x s_ef (the output of
    the gate/up projection, the input of the down one); the hidden-width side x s_ea. All E experts are stored
    (x s_ew)."""
    weights = matrices * d_in * d_out
    bias_bytes = PARAMETER_BYTES * matrices * d_out if bias else 0.0
    s_in, s_out = (p.s_ea, p.s_ef) if gate_up else (p.s_ef, p.s_ea)
    per_expert = weights + (matrices * d_out if bias else 0)
    return Operator(
        name,
        count,
        "matmul",
        flops=2.0 * k * weights * p.R * p.s_ef,
        weight_bytes=(p.u * p.w * weights + p.u * bias_bytes) * E * p.s_ew,
        act_bytes=p.R * p.a * k * (d_in * s_in + matrices * d_out * s_out),
        resident_bytes=(p.w * weights + bias_bytes) * E * p.s_ew,
        params=E * per_expert,
        active_params=k * per_expert,
    )


def moe_operators(arch: Architecture, p: Pass[Any]) -> list[Operator[Any]]:
    """The L_moe MoE layers' operators: router (16-bit weights, replicated), top-k, routed experts, and the
    shared experts as a dense FFN of width I_s."""
    moe = arch.moe
    assert moe is not None
    n, h, E, k = arch.num_moe_layers, arch.hidden_size, moe.num_experts, moe.experts_per_token
    width, matrices = moe.expert_intermediate_size, 2 if arch.ffn_gated else 1
    ops = [
        linear("router", n, p, h, E, weight_bpe=PARAMETER_BYTES, bias=moe.router_bias, kind="matmul16"),
        elementwise("router_topk", n, p, E, ROUTER_FLOPS_PER_LOGIT, writes=0.0),
        routed_experts("expert_gate_up", n, p, h, width, matrices, E, k, gate_up=True, bias=moe.expert_bias),
        elementwise("expert_act", n, p, k * width, activation_flops_per_element(arch), reads=matrices, share=p.s_ef),
        routed_experts("expert_down", n, p, width, h, 1, E, k, gate_up=False, bias=moe.expert_bias),
    ]
    if moe.shared_expert_intermediate_size:
        ops += ffn("shared_", n, arch, p, moe.shared_expert_intermediate_size)
    return ops

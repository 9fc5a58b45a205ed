"""Serving metrics of a batch in steady state, costs, energy, and feasibility with a reason code."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dse import units
from dse.catalog import ModelSpec
from dse.costmodel._candidates import Candidates
from dse.costmodel._evaluate import Evaluation
from dse.costmodel._parallel import split_reason
from dse.costmodel._reasons import REASON_TEXT, Reason, first_reason
from dse.costmodel._roofline import Array

__all__ = ["METRIC_NAMES", "REASON_TEXT", "Reason", "ServingMetrics", "serving_metrics"]


METRIC_NAMES = (
    "ttft_s",
    "tpot_s",
    "e2e_latency_s",
    "throughput_tokens_per_s",
    "throughput_tokens_per_s_per_device",
    "tokens_per_s_per_user",
    "memory_per_device_bytes",
    "devices",
    "usd_per_hour",
    "usd_per_million_tokens",
    "joules_per_token",
)
"""The canonical metric names (DESIGN.md §4 contract), in display order: fields of ``ServingMetrics``."""


@dataclass(frozen=True)
class ServingMetrics:
    """Canonical metrics (DESIGN.md §4), arrays of length N, SI units."""

    ttft_s: Array
    tpot_s: Array
    e2e_latency_s: Array
    throughput_tokens_per_s: Array
    """Output tokens/s of the deployment: replicas x B x G over the batch's whole latency (prefill included)."""
    decode_throughput_tokens_per_s: Array
    """Output tokens/s while decoding: replicas x B / TPOT."""
    throughput_tokens_per_s_per_device: Array
    tokens_per_s_per_user: Array
    memory_per_device_bytes: Array
    devices: Array
    usd_per_hour: Array
    usd_per_million_tokens: Array
    joules_per_token: Array
    feasible: NDArray[np.bool_]
    reason: NDArray[np.int8]


def serving_metrics(model: ModelSpec, c: Candidates, ev: Evaluation, power_fraction: float) -> ServingMetrics:
    """Static batch of B sequences per replica: prefill together, then G - 1 decode steps at the exact mean
    TPOT; ``replicas`` independent copies multiply throughput, devices, cost and power, not latency.

    Energy = devices x TDP x ``power_fraction`` x time (device level, no PUE); cost = devices x $/device-hour.
    """
    ttft = ev.prefill.time_s
    e2e = ttft + (c.gen_len - 1.0) * ev.tpot_s
    throughput = c.replicas * c.batch * c.gen_len / e2e
    devices = c.replicas * ev.layout.devices
    usd_per_hour = devices * c.usd_per_device_hour
    usd_per_million = usd_per_hour / (throughput * units.SECONDS_PER_HOUR) * units.TOKENS_PER_MILLION
    joules = devices * c.tdp_w * power_fraction / throughput
    mem = ev.memory
    split = split_reason(model, c, ev.layout)
    conditions = [
        ~c.format_supported.astype(bool),
        split > 0,
        c.prompt_len + c.gen_len > model.record.max_position_embeddings,
        mem.weights_bytes + mem.reserve_bytes > mem.capacity_bytes,
        mem.total_bytes > mem.capacity_bytes,
        mem.host_kv_cache_bytes > mem.host_capacity_bytes,  # NaN capacity (unknown): offload is a split reason
    ]
    choices: list[int | NDArray[np.int8]] = [
        int(Reason.UNSUPPORTED_FORMAT),
        split,
        int(Reason.CONTEXT_TOO_LONG),
        int(Reason.WEIGHTS_EXCEED_MEMORY),
        int(Reason.MEMORY_EXCEEDED),
        int(Reason.HOST_MEMORY_EXCEEDED),
    ]
    reason = first_reason(conditions, choices)
    return ServingMetrics(
        ttft_s=ttft,
        tpot_s=ev.tpot_s,
        e2e_latency_s=e2e,
        throughput_tokens_per_s=throughput,
        decode_throughput_tokens_per_s=c.replicas * c.batch / ev.tpot_s,
        throughput_tokens_per_s_per_device=throughput / devices,
        tokens_per_s_per_user=1.0 / ev.tpot_s,
        memory_per_device_bytes=mem.total_bytes,
        devices=devices,
        usd_per_hour=usd_per_hour,
        usd_per_million_tokens=usd_per_million,
        joules_per_token=joules,
        feasible=reason == Reason.OK,
        reason=reason,
    )

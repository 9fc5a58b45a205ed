"""Serving metrics of a batch in steady state, costs, energy, and feasibility with a reason code."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from dse import units
from dse.costmodel._candidates import Candidates
from dse.costmodel._evaluate import Evaluation
from dse.costmodel._roofline import Array


class Reason(IntEnum):
    """Why a candidate is infeasible; the first that applies wins, in this order."""

    OK = 0
    UNSUPPORTED_FORMAT = 1
    CONTEXT_TOO_LONG = 2
    WEIGHTS_EXCEED_MEMORY = 3
    MEMORY_EXCEEDED = 4


REASON_TEXT = {
    Reason.OK: None,
    Reason.UNSUPPORTED_FORMAT: (
        "hardware has no native support for the scheme's compute format and the scheme has no fallback"
    ),
    Reason.CONTEXT_TOO_LONG: "prompt + generated tokens exceed the model's max_position_embeddings",
    Reason.WEIGHTS_EXCEED_MEMORY: "weights + runtime reserve exceed usable device memory",
    Reason.MEMORY_EXCEEDED: "weights + KV cache + activations + reserve exceed usable device memory",
}


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
    """Output tokens/s of the deployment: B x G over the batch's whole latency (prefill included)."""
    decode_throughput_tokens_per_s: Array
    """Output tokens/s while decoding: B / TPOT."""
    throughput_tokens_per_s_per_device: Array
    tokens_per_s_per_user: Array
    memory_per_device_bytes: Array
    devices: Array
    usd_per_hour: Array
    usd_per_million_tokens: Array
    joules_per_token: Array
    feasible: NDArray[np.bool_]
    reason: NDArray[np.int8]


def serving_metrics(c: Candidates, ev: Evaluation, max_context: int, power_fraction: float) -> ServingMetrics:
    """Static batch of B sequences: prefill together, then G - 1 decode steps at the exact mean TPOT.

    Energy = devices x TDP x ``power_fraction`` x time (device level, no PUE); cost = devices x $/device-hour.
    """
    ttft = ev.prefill.time_s
    e2e = ttft + (c.gen_len - 1.0) * ev.tpot_s
    throughput = c.batch * c.gen_len / e2e
    devices = np.ones_like(c.batch)
    usd_per_hour = devices * c.usd_per_device_hour
    usd_per_million = usd_per_hour / (throughput * units.SECONDS_PER_HOUR) * units.TOKENS_PER_MILLION
    joules = devices * c.tdp_w * power_fraction / throughput
    reason = np.select(
        [
            ~c.format_supported.astype(bool),
            c.prompt_len + c.gen_len > max_context,
            ev.memory.weights_bytes + ev.memory.reserve_bytes > ev.memory.capacity_bytes,
            ev.memory.total_bytes > ev.memory.capacity_bytes,
        ],
        [
            int(r)
            for r in (
                Reason.UNSUPPORTED_FORMAT,
                Reason.CONTEXT_TOO_LONG,
                Reason.WEIGHTS_EXCEED_MEMORY,
                Reason.MEMORY_EXCEEDED,
            )
        ],
        default=int(Reason.OK),
    ).astype(np.int8)
    return ServingMetrics(
        ttft_s=ttft,
        tpot_s=ev.tpot_s,
        e2e_latency_s=e2e,
        throughput_tokens_per_s=throughput,
        decode_throughput_tokens_per_s=c.batch / ev.tpot_s,
        throughput_tokens_per_s_per_device=throughput / devices,
        tokens_per_s_per_user=1.0 / ev.tpot_s,
        memory_per_device_bytes=ev.memory.total_bytes,
        devices=devices,
        usd_per_hour=usd_per_hour,
        usd_per_million_tokens=usd_per_million,
        joules_per_token=joules,
        feasible=reason == Reason.OK,
        reason=reason,
    )

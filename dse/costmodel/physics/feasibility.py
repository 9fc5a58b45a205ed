"""Why a candidate cannot run: reason codes, their messages, and the order they are checked in."""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray


class Reason(IntEnum):
    """Why a candidate is infeasible. The codes are stable; ``CHECK_ORDER`` is the order they are checked in
    (the first that applies is reported)."""

    OK = 0
    UNSUPPORTED_FORMAT = 1
    CONTEXT_TOO_LONG = 2
    WEIGHTS_EXCEED_MEMORY = 3
    MEMORY_EXCEEDED = 4
    TP_HEADS = 5
    TP_WIDTH = 6
    EP_INVALID = 7
    PP_LAYERS = 8
    NODE_TILING = 9
    EXCEEDS_SYSTEM = 10
    NO_HOST_OFFLOAD = 11
    HOST_MEMORY_EXCEEDED = 12
    OVERLOADED = 13
    POOL_SPLIT = 14
    PREFILL_UNSUPPORTED_FORMAT = 15
    PREFILL_WEIGHTS_EXCEED_MEMORY = 16
    PREFILL_MEMORY_EXCEEDED = 17
    PREFILL_TP_HEADS = 18
    PREFILL_TP_WIDTH = 19
    PREFILL_EP_INVALID = 20
    PREFILL_PP_LAYERS = 21
    PREFILL_NODE_TILING = 22
    PREFILL_EXCEEDS_SYSTEM = 23
    PREFILL_NO_HOST_OFFLOAD = 24


SPLIT_REASONS = (
    Reason.TP_HEADS,
    Reason.TP_WIDTH,
    Reason.EP_INVALID,
    Reason.PP_LAYERS,
    Reason.NODE_TILING,
    Reason.EXCEEDS_SYSTEM,
    Reason.NO_HOST_OFFLOAD,
)
"""Reasons a deployment's split or KV policy cannot run at all, whatever the batch (``parallel``), in order."""

PREFILL_POOL_REASONS = {
    Reason.UNSUPPORTED_FORMAT: Reason.PREFILL_UNSUPPORTED_FORMAT,
    Reason.TP_HEADS: Reason.PREFILL_TP_HEADS,
    Reason.TP_WIDTH: Reason.PREFILL_TP_WIDTH,
    Reason.EP_INVALID: Reason.PREFILL_EP_INVALID,
    Reason.PP_LAYERS: Reason.PREFILL_PP_LAYERS,
    Reason.NODE_TILING: Reason.PREFILL_NODE_TILING,
    Reason.EXCEEDS_SYSTEM: Reason.PREFILL_EXCEEDS_SYSTEM,
    Reason.NO_HOST_OFFLOAD: Reason.PREFILL_NO_HOST_OFFLOAD,
    Reason.WEIGHTS_EXCEED_MEMORY: Reason.PREFILL_WEIGHTS_EXCEED_MEMORY,
    Reason.MEMORY_EXCEEDED: Reason.PREFILL_MEMORY_EXCEEDED,
}
"""A disaggregated prefill pool of its own hardware, tp or pp that cannot run says so with its own code: the
reason its lone request fails, in the prefill pool (the context is the candidate's, checked once)."""

CHECK_ORDER = (
    Reason.UNSUPPORTED_FORMAT,
    *SPLIT_REASONS,
    Reason.POOL_SPLIT,
    Reason.CONTEXT_TOO_LONG,
    Reason.WEIGHTS_EXCEED_MEMORY,
    Reason.MEMORY_EXCEEDED,
    Reason.HOST_MEMORY_EXCEEDED,
    *PREFILL_POOL_REASONS.values(),
    Reason.OVERLOADED,
)

REASON_TEXT = {
    Reason.OK: None,
    Reason.UNSUPPORTED_FORMAT: (
        "hardware has no native support for the scheme's compute format and the scheme has no fallback"
    ),
    Reason.CONTEXT_TOO_LONG: "prompt + generated tokens exceed the model's max_position_embeddings",
    Reason.WEIGHTS_EXCEED_MEMORY: "weights + runtime reserve exceed usable device memory",
    Reason.MEMORY_EXCEEDED: "weights + KV cache + activations + reserve exceed usable device memory",
    Reason.TP_HEADS: "tp must divide the attention heads, and divide the KV heads or be a multiple of them",
    Reason.TP_WIDTH: "tp must divide the FFN (and, with ep = 1, the expert) intermediate size",
    Reason.EP_INVALID: "ep > 1 needs a mixture-of-experts model whose expert count ep divides, and ep a multiple of tp",
    Reason.PP_LAYERS: "pp exceeds the number of layers",
    Reason.NODE_TILING: "a stage's max(tp, ep) devices must fit in one node, or span whole nodes",
    Reason.EXCEEDS_SYSTEM: (
        "the replica needs more devices than the hardware links: a bare accelerator is one device (choose a "
        "system: dse catalog systems), a system without an inter-node link is one node, and no more than "
        "its max_nodes"
    ),
    Reason.NO_HOST_OFFLOAD: "KV offload needs the device's host link and host memory figures, which the catalog lacks",
    Reason.HOST_MEMORY_EXCEEDED: "the offloaded KV cache exceeds the host memory per device",
    Reason.POOL_SPLIT: (
        "disaggregated serving needs a prefill and a decode replica at least: 1 <= prefill_replicas < replicas"
    ),
    Reason.OVERLOADED: (
        "the request rate exceeds what the deployment sustains (a static batch: batch requests per end-to-end "
        "latency a replica; continuous batching: every slot busy)"
    ),
}
REASON_TEXT |= {pool: f"prefill pool: {REASON_TEXT[base]}" for base, pool in PREFILL_POOL_REASONS.items()}


def first_reason(conditions: Sequence[Any], codes: Sequence[Any]) -> NDArray[np.int8]:
    """The code of the first condition that holds (0 where none does); a code may itself be an array of codes
    (0 = no reason). Works on scalars and arrays.

    Branch-free: an int8 multiply-add per condition, from the last to the first (``np.where`` branches per
    element, several times dearer when the conditions vary from candidate to candidate)."""
    reason = np.zeros(np.broadcast_shapes(*(np.shape(x) for x in (*conditions, *codes))), dtype=np.int8)
    for condition, code in zip(conditions[::-1], codes[::-1], strict=True):
        reason += condition * (code - reason)
    return reason


def infeasibility(format_supported: Any, split: Any, context: Any, max_positions: int, mem: Any) -> Any:
    """The first reason that applies, in ``CHECK_ORDER``: the format, the split (``parallel.split_reason``),
    the context against ``max_positions``, weights and reserve against the usable capacity, everything against
    it, the offloaded KV against host memory (an unknown host capacity, NaN, fails nothing here: offloading
    without it is a split reason). ``mem``: a ``memory.MemoryBreakdown``."""
    conditions = [
        np.logical_not(format_supported),
        split > 0,
        context > max_positions,
        mem.weights_bytes + mem.reserve_bytes > mem.capacity_bytes,
        mem.total_bytes > mem.capacity_bytes,
        mem.host_kv_cache_bytes > mem.host_capacity_bytes,
    ]
    codes = [
        Reason.UNSUPPORTED_FORMAT,
        split,
        Reason.CONTEXT_TOO_LONG,
        Reason.WEIGHTS_EXCEED_MEMORY,
        Reason.MEMORY_EXCEEDED,
        Reason.HOST_MEMORY_EXCEEDED,
    ]
    return first_reason(conditions, codes)

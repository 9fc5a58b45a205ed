"""Speculative decoding and multi-token prediction (docs/cost-model.md §17).

A draft proposes γ tokens per sequence (γ steps of a small draft model, or of a one-layer head: DeepSeek-V3's
multi-token-prediction module, arXiv 2412.19437 §2.2, or an EAGLE head, Li et al. 2024); the target model
verifies them in one pass over γ + 1 tokens per sequence and keeps the longest accepted prefix plus one
token of its own. With each draft token accepted independently with probability α, a verification step
yields on average (Leviathan, Kalman and Matias, ICML 2023, arXiv 2211.17192, eq. 1)

    E = (1 - α^(γ+1)) / (1 - α)        (γ + 1 at α = 1; 1 at α = 0)

tokens per sequence, and costs the verification pass plus γ draft steps. The draft's step is the target's
decode step scaled by the draft's active weights over the target's (``draft_cost_ratio``: decode reads its
weights once per step, so its time follows them); its weights take memory beside the target's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from dse.costmodel.candidates import Candidates
from dse.costmodel.physics import memory, schedule, serving
from dse.costmodel.physics.architecture import Architecture
from dse.costmodel.physics.evaluation import Evaluation
from dse.costmodel.physics.feasibility import Reason
from dse.costmodel.physics.operators import Pass
from dse.costmodel.physics.parallel import Layout
from dse.costmodel.physics.passes import mixed_pass

PassParts = Callable[[Candidates, Pass[Any]], tuple[Any, Any, Any]]
"""An evaluator's (all layers' time, the time outside them, the largest bytes one operator holds) of a pass."""


def expected_tokens(gamma: Any, alpha: Any) -> Any:
    """E = (1 - α^(γ+1)) / (1 - α): tokens one verification step yields per sequence (γ + 1 at α = 1)."""
    alpha = np.asarray(alpha, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(alpha < 1.0, (1.0 - alpha ** (gamma + 1.0)) / (1.0 - alpha), gamma + 1.0)


def verify_step_s(arch: Architecture, c: Candidates, lay: Layout, parts: PassParts, decoding: Any) -> Any:
    """The target's pass over γ + 1 tokens of each of ``decoding`` sequences (``passes.mixed_pass`` with no
    prompt tokens): its operators, collectives and the pipeline schedule of a decode step."""
    p = mixed_pass(arch, c, lay, decoding, 0.0, 1.0, 0.0, tokens=c.spec_tokens + 1.0)
    layers, other, _ = parts(c, p)
    return schedule.pass_step_s(c, lay, layers, other, p, arch)


def step_s(verify_s: Any, decode_s: Any, c: Candidates) -> Any:
    """One speculative step: the verification plus γ draft steps (each ``draft_cost_ratio`` of the target's
    decode step ``decode_s``)."""
    return verify_s + c.spec_tokens * c.draft_cost_ratio * decode_s


def apply(arch: Architecture, c: Candidates, ev: Evaluation, parts: PassParts) -> Evaluation:
    """A static batch's evaluation ``ev`` (without speculation) with speculative decoding where
    ``spec_tokens`` > 0: TPOT = (verification + γ draft steps) / E, the draft's weights in memory."""
    speculating = c.spec_tokens > 0
    if not np.any(speculating):
        return ev
    lay = ev.layout
    step = step_s(verify_step_s(arch, c, lay, parts, c.batch), ev.tpot_s, c)
    tpot = np.where(speculating, step / expected_tokens(c.spec_tokens, c.spec_acceptance), ev.tpot_s)
    mem = with_draft_weights(ev.memory, np.where(speculating, c.draft_weight_bytes, 0.0))
    reason = np.asarray(ev.metrics.reason)
    reason = np.where(speculating & (reason == Reason.OVERLOADED), Reason.OK, reason)  # re-checked at its TPOT
    over = (reason == Reason.OK) & (mem.total_bytes > mem.capacity_bytes)
    reason = np.where(over, Reason.MEMORY_EXCEEDED, reason).astype(np.int8)
    metrics = serving.metrics_for(c, lay.devices, ev.metrics.ttft_s, tpot, mem.total_bytes, reason)
    return replace(ev, tpot_s=tpot, memory=mem, metrics=metrics)


def with_draft_weights(mem: memory.MemoryBreakdown, draft_bytes: Any) -> memory.MemoryBreakdown:
    """The memory breakdown with a draft's weights added (the largest batch left as the target alone
    allows: the draft's weights are small beside it, an upper bound)."""
    return replace(mem, weights_bytes=mem.weights_bytes + draft_bytes, total_bytes=mem.total_bytes + draft_bytes)

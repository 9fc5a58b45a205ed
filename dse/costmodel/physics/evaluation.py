"""What the cost model returns for candidates: phases, memory, collectives, serving metrics (floats for one
candidate from the reference evaluator, arrays for N from the engine)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dse.costmodel.physics.collectives import Communication
from dse.costmodel.physics.continuous import ContinuousServing
from dse.costmodel.physics.memory import MemoryBreakdown
from dse.costmodel.physics.parallel import Layout
from dse.costmodel.physics.serving import ServingMetrics


@dataclass(frozen=True)
class PhaseCost:
    """One phase on one device of the busiest stage: FLOPs and bytes of every micro-batch pass it runs, and
    the phase's time (the whole pipeline schedule)."""

    flops: Any
    memory_bytes: Any
    time_s: Any


@dataclass(frozen=True)
class OperatorCost:
    """One operator of a pass on one device of the busiest stage (reference evaluator, for ``dse analyze``)."""

    name: str
    count: float
    """Instances the busiest stage runs in one pass (per-layer operators: its share λ of the layers)."""
    flops: float
    weight_bytes: float
    act_bytes: float
    kv_bytes: float
    """Per instance."""
    compute_s: float
    memory_s: float
    time_s: float
    """All its instances in one pass: count x (roofline + per-kernel overhead)."""
    peak: str = "matmul"
    """The roof it computes at (one of ``roofline.ROOFS``): which roof of a roofline chart applies to it."""


@dataclass(frozen=True)
class Evaluation:
    """Everything the cost model computes for candidates."""

    prefill: PhaseCost
    decode_step: PhaseCost
    """One decode step whose new token attends to P keys (the step LLM-Viewer reports)."""
    tpot_s: Any
    """The exact mean decode step over the generated positions."""
    memory: MemoryBreakdown
    layout: Layout
    communication: tuple[Communication, Communication]
    """Collectives of one prefill pass and one decode step (per device of the busiest stage)."""
    host_kv_write_bytes: Any
    host_kv_write_s: Any
    """Copying the offloaded share of one prefill pass's new KV entries to host memory, per device of the
    busiest stage (0 without offload)."""
    metrics: ServingMetrics
    operators: tuple[tuple[OperatorCost, ...], tuple[OperatorCost, ...]] = ((), ())
    """Per-operator detail of prefill and of the one decode step (reference evaluator only)."""
    serving: ContinuousServing | None = None
    """Continuous batching's steady state, load and percentiles (None: every candidate static)."""


@dataclass(frozen=True)
class DecodeEvaluation:
    """A static batch's decode step alone, without its prefill, memory or reasons: what continuous batching
    reads of a static evaluation at b sequences, a decode step of b sequences (``batching.evaluate``)."""

    decode_step: PhaseCost
    """One decode step whose new token attends to P keys (``Evaluation.decode_step``)."""
    tpot_s: Any
    """The exact mean decode step over the generated positions."""
    layout: Layout
    communication: Communication
    """Collectives of one decode step (per device of the busiest stage)."""
    operators: tuple[OperatorCost, ...] = ()
    """Per-operator detail of the one decode step (reference evaluator only)."""

    @classmethod
    def of(cls, ev: Evaluation) -> DecodeEvaluation:
        """The decode figures of a whole static evaluation."""
        return cls(ev.decode_step, ev.tpot_s, ev.layout, ev.communication[1], ev.operators[1])

"""The time of a phase: a stage's pass with its collectives, and the pipeline schedule (docs/cost-model.md
§11.5-§11.6).

A pass has two parts: the operators of all L layers, each on one device of the stage holding it (t_layers),
and the operators outside the layers, run once (t_other). The busiest stage holds λ of the layers and, taken
conservatively, both ends.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dse.costmodel.physics import collectives
from dse.costmodel.physics.collectives import Communication


def overlapped(t_compute: Any, t_comm: Any, o: Any) -> Any:
    """t_compute + t_comm - o min(t_compute, t_comm): a share o of the shorter hidden under the longer; the
    sum at o = 0 (decode engines run collectives in sequence on the critical path), the max at o = 1."""
    return t_compute + t_comm - o * np.minimum(t_compute, t_comm)


def busiest_pass_s(t_layers: Any, t_other: Any, x_stage: Any, lam: Any, o: Any) -> Any:
    """The busiest stage's pass of one micro-batch: λ t_layers + t_other with its stage's collectives."""
    return overlapped(lam * t_layers + t_other, x_stage, o)


def trip_s(t_layers: Any, t_other: Any, x_all: Any, t_send: Any, o: Any) -> Any:
    """One micro-batch through every stage: all layers and both ends with every stage's collectives, plus the
    pp - 1 stage-boundary sends."""
    return overlapped(t_layers + t_other, x_all, o) + t_send


def prefill_time_s(trip: Any, busiest: Any, m: Any) -> Any:
    """TTFT = trip + (m - 1) busiest: GPipe's schedule (Huang et al. 2019, arXiv 1811.06965): the first
    micro-batch crosses every stage, and the busiest stage finishes each later one a pass after the one
    before."""
    return trip + (m - 1.0) * busiest


def decode_step_s(trip: Any, busiest: Any, m: Any) -> Any:
    """max(trip, m busiest): every step takes each micro-batch's token through every stage, and each stage
    serves all m micro-batches once per step. Returning the sampled token to the first stage is not charged.
    TPOT applies it to the mean stage times over the generated positions."""
    return np.maximum(trip, m * busiest)


def phase_time_s(t_layers: Any, t_other: Any, comm: Communication, lam: Any, m: Any, o: Any, *, decode: bool) -> Any:
    """A phase on the pipeline: TTFT for prefill (``prefill_time_s``), a decode step (``decode_step_s``), from
    the pass's two parts and its collectives (the busiest stage's, every stage's, and the sends)."""
    busiest = busiest_pass_s(t_layers, t_other, comm.stage_s, lam, o)
    trip = trip_s(t_layers, t_other, comm.all_stages_s, comm.pp_send_s, o)
    return decode_step_s(trip, busiest, m) if decode else prefill_time_s(trip, busiest, m)


def pass_step_s(c: Any, lay: Any, layers: Any, other: Any, p: Any, arch: Any) -> Any:
    """A continuous-batching step of pass ``p`` (its operators' two parts ``layers`` and ``other``): its
    collectives over the pass's rows, scheduled on the pipeline like a decode step (every micro-batch's rows
    through every stage)."""
    rates = collectives.rates_for(c, lay)
    comm = collectives.communication(arch, lay, rates, c.tp, c.ep, c.pp, p.a, p.R / lay.group_batch)
    return phase_time_s(layers, other, comm, lay.layer_share, lay.micro_batches, c.comm_overlap, decode=True)

"""Decode attention over every generated position, in closed form.

Step j = 1..n attends K_j = min(P + j, span) keys (span: the layer group's window and the eviction budget).
In decode every attention formula is linear in the keys (``forms.symbolic_pass``), so each operator's FLOPs
are f0 + f1 K and its memory time w0 + w1 K: its roofline is the max of two lines in j, and
``series.sum_max_linear`` sums it exactly. The same lines give the one step at K = P.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dse.costmodel.engine.forms import Basis, Symbol
from dse.costmodel.engine.series import sum_max_linear
from dse.costmodel.engine.tables import OperatorTable, Rates, instances

Matrix = NDArray[np.float64]


@dataclass(frozen=True)
class GroupLines:
    """How a group's attention table splits into intercepts and slopes: the columns whose monomials hold the
    group's keys symbol (the slopes, that symbol taken out) and the others (the intercepts)."""

    fixed: NDArray[np.intp]
    growing: NDArray[np.intp]
    fixed_basis: Basis
    growing_basis: Basis
    symbols: tuple[Symbol, ...]
    """Every symbol the two bases use."""

    @classmethod
    def of(cls, table: OperatorTable, group: str) -> GroupLines:
        keys = Symbol.named("keys", group)
        columns = table.basis.monomials
        used = np.flatnonzero(np.any(table.memory_bytes != 0, axis=0) | np.any(table.flops != 0, axis=0))
        grows = np.asarray([keys in columns[i] for i in used], dtype=bool)
        fixed, growing = used[~grows], used[grows]
        slopes = [tuple(s for s in columns[i] if s != keys) for i in growing]
        intercepts = [columns[i] for i in fixed]
        symbols = tuple(sorted({s for m in (*intercepts, *slopes) for s in m}))
        return cls(fixed, growing, Basis.of(intercepts), Basis.of(slopes), symbols)


@dataclass(frozen=True)
class Lines:
    """Per operator (rows) and candidate (columns): FLOPs f0 + f1 K, bytes m0 + m1 K, compute time
    (f0 + f1 K) / rate and memory time w0 + w1 K of one decode step attending to K keys."""

    f0: Matrix
    f1: Matrix
    m0: Matrix
    m1: Matrix
    w0: Matrix
    w1: Matrix
    rate: Matrix

    @classmethod
    def of(
        cls,
        table: OperatorTable,
        split: GroupLines,
        symbols: dict[Symbol, Any],
        rates: Rates,
        host_extra: NDArray[np.float64],
        rows: slice | NDArray[np.intp],
    ) -> Lines:
        """The lines of ``table``'s operators for candidates ``rows``."""
        size = len(np.arange(len(rates.bytes_per_s))[rows])
        chosen = {s: symbols[s][rows] if np.ndim(symbols[s]) else symbols[s] for s in split.symbols}
        at0 = split.fixed_basis.values(chosen, size)
        at1 = split.growing_basis.values(chosen, size)
        f0, m0 = table.flops[:, split.fixed] @ at0, table.memory_bytes[:, split.fixed] @ at0
        f1, m1 = table.flops[:, split.growing] @ at1, table.memory_bytes[:, split.growing] @ at1
        spb, extra = rates.seconds_per_byte[rows], host_extra[rows]
        w0, w1 = m0 * spb, m1 * spb
        reads = table.kv_read_rows
        if len(reads) and np.any(extra):
            kv = table.kv_bytes[reads]
            w0[reads] += (kv[:, split.fixed] @ at0) * extra
            w1[reads] += (kv[:, split.growing] @ at1) * extra
        return cls(f0, f1, m0, m1, w0, w1, rates.flops_per_s[table.kinds][:, rows])

    def step_sum(self, prompt: NDArray[np.float64], steps: NDArray[np.float64], span: NDArray[np.float64]) -> Matrix:
        """Per operator, the sum over steps j = 1..steps of the roofline at K = prompt + j, capped at span."""
        f0, f1, w0, w1, rate = self.f0, self.f1, self.w0, self.w1, self.rate
        u0, u1 = (f0 + f1 * prompt) / rate, f1 / rate
        v0, v1 = w0 + w1 * prompt, w1
        total = sum_max_linear(u0, u1, v0, v1, 1.0, np.minimum(steps, span - prompt))
        if np.any(np.isfinite(span)):  # steps past the span attend to exactly `span` keys
            capped = np.minimum(span, prompt + steps)  # finite; where the span is never reached, no step is capped
            capped_steps = np.maximum(steps - np.maximum(1.0, capped - prompt + 1.0) + 1.0, 0.0)
            total = total + capped_steps * np.maximum((f0 + f1 * capped) / rate, w0 + w1 * capped)
        return total  # type: ignore[no-any-return]

    def at_prompt(
        self, table: OperatorTable, prompt: NDArray[np.float64], span: NDArray[np.float64]
    ) -> tuple[Any, Any, Any]:
        """Time, FLOPs and bytes of the one step at K = prompt keys (capped at span), summed over operators."""
        keys = np.minimum(prompt, span)
        f_p, m_p = self.f0 + self.f1 * keys, self.m0 + self.m1 * keys
        counts = table.layer_counts
        return counts @ np.maximum(f_p / self.rate, self.w0 + self.w1 * keys), counts @ f_p, counts @ m_p


@dataclass(frozen=True)
class AttentionCost:
    """Decode attention over all layers (one device of each stage): the mean over the steps, and the one step
    at K = P (time, FLOPs, bytes), with the per-kernel overheads of the attention operators that run."""

    mean_s: NDArray[np.float64]
    step_s: NDArray[np.float64]
    step_flops: NDArray[np.float64]
    step_bytes: NDArray[np.float64]
    overhead_s: NDArray[np.float64]


AttentionTables = tuple[tuple[str, float, dict[str, OperatorTable], dict[str, GroupLines]], ...]
"""Per attention group: (group, span, tables by kernels, their line splits)."""


def decode_attention(
    groups: AttentionTables,
    kernels: str,
    symbols: dict[Symbol, Any],
    flash: NDArray[Any],
    prompt: NDArray[np.float64],
    steps: NDArray[np.float64],
    budget: NDArray[np.float64],
    rates: Rates,
    host_extra: NDArray[np.float64],
    *,
    at_prompt: bool = True,
) -> AttentionCost:
    """Every group's attention operators over decode steps j = 1..steps, exactly, and at K = P.

    A chunk of one kernel kind evaluates that kind's table alone. In a mixed chunk each candidate runs one
    kind: each kind is evaluated on every candidate, its forms carrying the kind's mask (``tables.masked``:
    zero for the others), when at least half use it (no gathering: measured faster), else on its own
    candidates only."""
    n = len(prompt)
    total, step, flops, nbytes, overhead = (np.zeros(n) for _ in range(5))
    fused = flash.astype(np.float64)
    everyone = slice(None)
    for _, group_span, variants, splits in groups:
        span = np.minimum(group_span, budget)
        overhead += rates.overhead_s * instances(variants["mixed"], fused, 0)
        parts: list[tuple[str, slice | NDArray[np.intp]]] = [(kernels, everyone)]
        if kernels == "mixed":
            parts = [
                (f"{kind}+masks", everyone) if 2 * np.count_nonzero(uses) >= n else (kind, np.flatnonzero(uses))
                for kind, uses in (("fused", flash), ("unfused", np.logical_not(flash)))
            ]
        for kind, rows in parts:
            table = variants[kind]
            lines = Lines.of(table, splits[kind], symbols, rates, host_extra, rows)
            total[rows] += table.layer_counts @ lines.step_sum(prompt[rows], steps[rows], span[rows])
            if at_prompt:
                step_s, step_flops, step_bytes = lines.at_prompt(table, prompt[rows], span[rows])
                step[rows] += step_s
                flops[rows] += step_flops
                nbytes[rows] += step_bytes
    return AttentionCost(total / steps, step, flops, nbytes, overhead)

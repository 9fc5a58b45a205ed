"""Operator tables: a pass's operators compiled to coefficient matrices, evaluated by matrix products.

For K operators over T terms and N candidates, bytes are (K x T) @ (T x N): one BLAS call instead of K x (a dozen)
array operations; FLOPs use a single term per operator, so they are one multiply. That is what makes a million
candidates a second possible.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from dse.costmodel._ops import OpSpec, stored_weights
from dse.costmodel._roofline import Array

KINDS = ("matmul", "matmul16", "vector")


def _matrix(specs: Sequence[OpSpec], names: Sequence[str], attr: str) -> NDArray[np.float64]:
    column = {name: j for j, name in enumerate(names)}
    out = np.zeros((len(specs), len(names)))
    for i, spec in enumerate(specs):
        for term, coefficient in getattr(spec, attr).items():
            out[i, column[term]] += coefficient
    return out


@dataclass(frozen=True)
class OpTable:
    """Coefficients of K operators over named terms (rows: operators, columns: ``names``)."""

    specs: tuple[OpSpec, ...]
    names: tuple[str, ...]
    flops: NDArray[np.float64]
    weight_bytes: NDArray[np.float64]
    act_bytes: NDArray[np.float64]
    kv_bytes: NDArray[np.float64]
    memory_bytes: NDArray[np.float64]
    counts: NDArray[np.float64]
    kind_index: NDArray[np.intp]
    activity: dict[str, float]
    """Operator instances per activity (``always``, ``fused``, ``unfused``), for per-kernel overhead."""
    flops_coefficient: NDArray[np.float64]
    """Every operator's FLOPs use at most one term: FLOPs = coefficient x that term (a multiply, not a GEMM)."""
    rate_pairs: tuple[tuple[int, int], ...]
    """Distinct (term, kind) pairs of the operators' FLOPs: compute time = coefficient x term / rate of kind."""
    rate_pair_index: NDArray[np.intp]
    """Per operator, its entry in ``rate_pairs``."""
    act_single: tuple[tuple[int, float], ...]
    """(term, largest coefficient) over operators whose activation bytes use that term alone."""
    act_multi: NDArray[np.intp]
    """Operators whose live activation bytes combine several terms."""
    live_bytes: NDArray[np.float64]
    """Activation bytes each operator holds at once (``OpSpec.live_bytes``, else its activation traffic)."""
    stored_weights: dict[str, float]
    """Bytes of all parameters as stored, as coefficients over ``one``, ``w`` and ``emb``."""

    @classmethod
    def compile(cls, specs: Sequence[OpSpec]) -> OpTable:
        """Coefficient matrices of ``specs``, one row per operator in pass order."""
        kinds = [KINDS.index(s.kind) for s in specs]
        names = sorted({t for s in specs for part in (s.flops, s.weight_bytes, s.act_bytes, s.kv_bytes) for t in part})
        weight, act, kv = (_matrix(specs, names, a) for a in ("weight_bytes", "act_bytes", "kv_bytes"))
        activity = {a: float(sum(s.count for s in specs if s.active == a)) for a in ("always", "fused", "unfused")}
        flops = _matrix(specs, names, "flops")
        if np.any((flops != 0).sum(axis=1) > 1):
            raise ValueError("an operator's FLOPs must be proportional to a single term")
        flops_term = np.argmax(flops != 0, axis=1)
        pairs = sorted({(int(t), k) for t, k in zip(flops_term, kinds, strict=True)})
        single: dict[int, float] = {}
        multi = []
        held = [s if s.live_bytes is None else replace(s, act_bytes=s.live_bytes) for s in specs]
        live = _matrix(held, names, "act_bytes")
        for i, row in enumerate(live):
            used = np.flatnonzero(row)
            if len(used) == 1:
                single[int(used[0])] = max(single.get(int(used[0]), 0.0), float(row[used[0]]))
            elif len(used) > 1:
                multi.append(i)
        return cls(
            specs=tuple(specs),
            names=tuple(names),
            flops=flops,
            weight_bytes=weight,
            act_bytes=act,
            kv_bytes=kv,
            memory_bytes=weight + act + kv,
            counts=np.asarray([s.count for s in specs], dtype=np.float64),
            kind_index=np.asarray(kinds, dtype=np.intp),
            activity=activity,
            flops_coefficient=flops[np.arange(len(specs)), flops_term],
            rate_pairs=tuple(pairs),
            rate_pair_index=np.asarray([pairs.index((int(t), k)) for t, k in zip(flops_term, kinds, strict=True)]),
            act_single=tuple(sorted(single.items())),
            act_multi=np.asarray(multi, dtype=np.intp),
            live_bytes=live,
            stored_weights=stored_weights(specs),
        )

    def basis(self, terms: dict[str, Array]) -> NDArray[np.float64]:
        """The (T x N) matrix of the terms this table uses."""
        return np.stack([terms[name] for name in self.names])


@dataclass(frozen=True)
class Rates:
    """Achievable rates per candidate: FLOP/s per operator kind (rows of ``KINDS``), bytes/s, overhead (s)."""

    flops_per_s: NDArray[np.float64]
    bytes_per_s: Array
    overhead_s: Array

    @functools.cached_property
    def seconds_per_flop(self) -> NDArray[np.float64]:
        """Reciprocals, computed once: multiplying is several times cheaper than dividing."""
        return 1.0 / self.flops_per_s  # type: ignore[no-any-return]

    @functools.cached_property
    def seconds_per_byte(self) -> Array:
        return 1.0 / self.bytes_per_s  # type: ignore[no-any-return]


@dataclass(frozen=True)
class PassCost:
    """One evaluated pass: per-operator matrices (K x N, per instance) and the pass total (N)."""

    table: OpTable
    basis: NDArray[np.float64]
    compute_s: NDArray[np.float64]
    memory_s: NDArray[np.float64]
    roofline_s: NDArray[np.float64]
    """Per operator instance: max(compute_s, memory_s)."""
    time_s: Array
    """Whole pass: sum over operators of count x roofline time, plus overhead per operator instance run."""

    def op_time_s(self, rates: Rates, fused: Array) -> NDArray[np.float64]:
        """Per operator, all instances: count x (roofline + overhead where the operator runs)."""
        runs = {"always": np.ones_like(fused), "fused": fused, "unfused": 1.0 - fused}
        active = np.stack([runs[s.active] for s in self.table.specs])
        busy = self.roofline_s + rates.overhead_s * active
        return self.table.counts[:, None] * busy * active  # type: ignore[no-any-return]

    def part(self, which: str) -> NDArray[np.float64]:
        """Per-operator quantity per instance: ``flops``, ``memory_bytes``, ``weight_bytes``, ``act_bytes`` or
        ``kv_bytes`` (computed on demand: the search path never needs them per operator)."""
        return getattr(self.table, which) @ self.basis  # type: ignore[no-any-return]

    def largest_act_bytes(self) -> Array:
        """Per candidate, the largest activation bytes any one operator instance holds at once."""
        peaks = [coefficient * self.basis[term] for term, coefficient in self.table.act_single]
        if len(self.table.act_multi):
            peaks.append((self.table.live_bytes[self.table.act_multi] @ self.basis).max(axis=0))
        return np.maximum.reduce(peaks)  # type: ignore[no-any-return]

    def total(self, which: str) -> Array:
        """Whole-pass total (all operators, all instances) of ``flops`` or ``memory_bytes``."""
        return (self.table.counts @ getattr(self.table, which)) @ self.basis  # type: ignore[no-any-return]


def overhead_s(table: OpTable, rates: Rates, fused: Array) -> Array:
    """Per-kernel overhead of a pass: instances that run x overhead each."""
    a = table.activity
    return rates.overhead_s * (a["always"] + a["fused"] * fused + a["unfused"] * (1.0 - fused))  # type: ignore[no-any-return]


def evaluate_table(table: OpTable, terms: dict[str, Array], rates: Rates, fused: Array) -> PassCost:
    """Roofline of every operator for every candidate, and the pass total."""
    basis = table.basis(terms)
    # Few passes over the (operators x candidates) arrays: they are larger than the cache.
    per_pair = np.stack([basis[term] * rates.seconds_per_flop[kind] for term, kind in table.rate_pairs])
    compute_s = per_pair[table.rate_pair_index]
    compute_s *= table.flops_coefficient[:, None]
    memory_s = table.memory_bytes @ (basis * rates.seconds_per_byte)
    roofline_s = np.maximum(compute_s, memory_s)
    total = table.counts @ roofline_s + overhead_s(table, rates, fused)
    return PassCost(table, basis, compute_s, memory_s, roofline_s, total)

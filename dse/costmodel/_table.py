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


def _undominated(rows: NDArray[np.float64]) -> list[int]:
    """Rows no other row matches or exceeds in every column (the first of equal rows kept). With nonnegative
    terms a dominated row can never hold the largest value, so the activation peak needs only these."""
    keep = []
    for i, row in enumerate(rows):
        dominated = any(
            j != i and np.all(other >= row) and (np.any(other > row) or j < i) for j, other in enumerate(rows)
        )
        if not dominated and np.any(row):
            keep.append(i)
    return keep


@dataclass(frozen=True)
class Rooflines:
    """What ``evaluate_table`` needs of a table's operators, as R rows: per row, bytes over the terms, FLOPs
    as coefficient x one (term, kind) pair, and instances inside the layers and outside them.

    A table keeps one row per operator (``OpTable.per_operator``) and a merged form for pass totals
    (``OpTable.merged``): operators whose FLOPs, bytes and KV reads are all proportional, with the same
    term and kind (a gate and an up projection; every RMSNorm of a layer), have proportional rooflines, since
    max(a x, a y) = a max(x, y) for a > 0. One row then stands for them all, its counts weighted by the
    ratios; the totals are unchanged and the rows to evaluate fewer. The merged form also folds each row's
    FLOP coefficient c out of the max: c max(x / rate, bytes / c / bandwidth), c joining the counts (rows
    without FLOPs take a zero pair)."""

    memory_bytes: NDArray[np.float64]
    kv_read_bytes: NDArray[np.float64] | None
    flops_coefficient: NDArray[np.float64] | None
    """None where folded into the bytes and counts."""
    pair_index: NDArray[np.intp]
    """Per row, its entry in ``OpTable.rate_pairs`` (folded rows without FLOPs: one past the last, a zero)."""
    layer_counts: NDArray[np.float64]
    other_counts: NDArray[np.float64]
    other_rows: NDArray[np.intp]
    """Rows with instances outside the layers (a handful: summing only them saves a pass over R x N)."""

    def merged(self, flops: NDArray[np.float64], pairs: int) -> Rooflines:
        """Rows of proportional operators folded into one, and their FLOP coefficients folded out of the max
        (``flops``: the per-operator FLOPs matrix; ``pairs``: how many rate pairs the table has)."""
        assert self.flops_coefficient is not None, "already merged"
        reads = self.kv_read_bytes if self.kv_read_bytes is not None else np.zeros_like(self.memory_bytes)
        profiles = np.hstack([flops, self.memory_bytes, reads])
        keep: list[int] = []
        layer: list[float] = []
        other: list[float] = []
        for i, profile in enumerate(profiles):
            for slot, j in enumerate(keep):
                ratio = _ratio(profile, profiles[j])
                if ratio is not None and self.pair_index[i] == self.pair_index[j]:
                    layer[slot] += ratio * self.layer_counts[i]
                    other[slot] += ratio * self.other_counts[i]
                    break
            else:
                keep.append(i)
                layer.append(float(self.layer_counts[i]))
                other.append(float(self.other_counts[i]))
        coefficient = self.flops_coefficient[keep]
        scale = np.where(coefficient > 0, coefficient, 1.0)
        other_counts = np.asarray(other) * scale
        return Rooflines(
            memory_bytes=self.memory_bytes[keep] / scale[:, None],
            kv_read_bytes=None if self.kv_read_bytes is None else self.kv_read_bytes[keep] / scale[:, None],
            flops_coefficient=None,
            pair_index=np.where(coefficient > 0, self.pair_index[keep], pairs),
            layer_counts=np.asarray(layer) * scale,
            other_counts=other_counts,
            other_rows=np.flatnonzero(other_counts),
        )


def _ratio(row: NDArray[np.float64], of: NDArray[np.float64]) -> float | None:
    """a > 0 with row = a x ``of`` (to rounding), else None."""
    pivot = int(np.argmax(np.abs(of)))
    if of[pivot] == 0.0 or row[pivot] / of[pivot] <= 0.0:
        return None
    ratio = float(row[pivot] / of[pivot])
    return ratio if np.allclose(row, ratio * of, rtol=1e-12, atol=0.0) else None


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
    kv_read_bytes: NDArray[np.float64] | None
    """``kv_bytes`` of the operators that read the KV cache (attention in decode), None when there are none:
    the bytes a host-offloaded share of the cache sends over the host link."""
    counts: NDArray[np.float64]
    layer_counts: NDArray[np.float64]
    """``counts`` of the per-layer operators (0 elsewhere): these scale with the busiest stage's layer share."""
    other_counts: NDArray[np.float64]
    """``counts`` of the rest (embeddings, final norm, LM head), which one stage runs whole."""
    kind_index: NDArray[np.intp]
    activity: dict[str, float]
    """Per-layer operator instances per activity (``always``, ``fused``, ``unfused``), for per-kernel overhead."""
    other_activity: dict[str, float]
    """The same for the operators outside the layers."""
    flops_coefficient: NDArray[np.float64]
    """Every operator's FLOPs use at most one term: FLOPs = coefficient x that term (a multiply, not a GEMM)."""
    rate_pairs: tuple[tuple[int, int], ...]
    """Distinct (term, kind) pairs of the operators' FLOPs: compute time = coefficient x term / rate of kind."""
    pair_terms: NDArray[np.intp]
    pair_kinds: NDArray[np.intp]
    """``rate_pairs`` as two index arrays (terms, kinds), for gathering every pair at once."""
    pair_index: NDArray[np.intp]
    """Per operator, its entry in ``rate_pairs``."""
    side_rows: NDArray[np.float64]
    """Rows evaluated with the rooflines, while a block of the basis is in cache: the activation bytes each
    operator holds at once (``OpSpec.live_bytes``, else its activation traffic) of the operators that can
    hold the most (no other matches or exceeds them in every term), then the KV bytes the pass writes (all
    layers' instances)."""
    stored_names: tuple[str, ...]
    """Terms of the stored-weight forms of ``stored_matrix``."""
    stored_matrix: NDArray[np.float64]
    """(4 x S) bytes of parameters as stored, as coefficients over ``stored_names`` (``one``, ``w``, ``emb``
    and their shards): all of them (tied tables once); those of the decoder layers (split over pipeline
    stages); those outside the layers the first stage holds (embeddings); and those the last stage holds
    (final norm and LM head, which needs its own copy of a tied embedding table once the embedding sits on
    another stage)."""

    @classmethod
    def compile(cls, specs: Sequence[OpSpec]) -> OpTable:
        """Coefficient matrices of ``specs``, one row per operator in pass order."""
        kinds = [KINDS.index(s.kind) for s in specs]
        parts = ("flops", "weight_bytes", "act_bytes", "kv_bytes", "live_bytes")
        names = sorted({t for s in specs for part in parts for t in (getattr(s, part) or {})})
        weight, act, kv = (_matrix(specs, names, a) for a in ("weight_bytes", "act_bytes", "kv_bytes"))
        activities = ("always", "fused", "unfused")
        activity = {a: float(sum(s.count for s in specs if s.active == a and s.per_layer)) for a in activities}
        other_activity = {
            a: float(sum(s.count for s in specs if s.active == a and not s.per_layer)) for a in activities
        }
        first_layer = next((i for i, s in enumerate(specs) if s.per_layer), len(specs))
        first = [s for s in specs[:first_layer] if not s.per_layer]
        last = [replace(s, resident_bytes=None) for s in specs[first_layer:] if not s.per_layer]
        flops = _matrix(specs, names, "flops")
        if np.any((flops != 0).sum(axis=1) > 1):
            raise ValueError("an operator's FLOPs must be proportional to a single term")
        flops_term = np.argmax(flops != 0, axis=1)
        pairs = sorted({(int(t), k) for t, k in zip(flops_term, kinds, strict=True)})
        held = [s if s.live_bytes is None else replace(s, act_bytes=s.live_bytes) for s in specs]
        live = _matrix(held, names, "act_bytes")
        peak_rows = live[_undominated(live)].reshape(-1, len(names))
        counts = np.asarray([s.count for s in specs], dtype=np.float64)
        stored = [stored_weights(part) for part in (specs, [s for s in specs if s.per_layer], first, last)]
        stored_names = tuple(sorted({n for form in stored for n in form}))
        reads = np.asarray([s.reads_kv_cache for s in specs], dtype=np.float64)
        per_layer = np.asarray([s.per_layer for s in specs], dtype=bool)
        layer_counts = np.where(per_layer, counts, 0.0)
        pair_of = [pairs.index((int(t), k)) for t, k in zip(flops_term, kinds, strict=True)]
        return cls(
            specs=tuple(specs),
            names=tuple(names),
            flops=flops,
            weight_bytes=weight,
            act_bytes=act,
            kv_bytes=kv,
            memory_bytes=weight + act + kv,
            kv_read_bytes=kv * reads[:, None] if np.any(kv * reads[:, None]) else None,
            counts=counts,
            layer_counts=layer_counts,
            other_counts=np.where(per_layer, 0.0, counts),
            kind_index=np.asarray(kinds, dtype=np.intp),
            activity=activity,
            other_activity=other_activity,
            flops_coefficient=flops[np.arange(len(specs)), flops_term],
            rate_pairs=tuple(pairs),
            pair_terms=np.asarray([t for t, _ in pairs], dtype=np.intp),
            pair_kinds=np.asarray([k for _, k in pairs], dtype=np.intp),
            pair_index=np.asarray(pair_of, dtype=np.intp),
            side_rows=np.vstack([peak_rows, layer_counts @ kv]),
            stored_names=stored_names,
            stored_matrix=np.asarray([[form.get(n, 0.0) for n in stored_names] for form in stored]).reshape(4, -1),
        )

    @functools.cached_property
    def merged(self) -> Rooflines:
        """Proportional operators folded into one row: what pass totals are evaluated on (computed once)."""
        return self.per_operator.merged(self.flops, len(self.rate_pairs))

    @property
    def per_operator(self) -> Rooflines:
        """One roofline row per operator (views of the table's own matrices)."""
        return Rooflines(
            self.memory_bytes,
            self.kv_read_bytes,
            self.flops_coefficient,
            self.pair_index,
            self.layer_counts,
            self.other_counts,
            np.flatnonzero(self.other_counts),
        )

    def basis(self, terms: dict[str, Array]) -> NDArray[np.float64]:
        """The (T x N) matrix of the terms this table uses (``stack_terms``)."""
        return stack_terms(terms, self.names)


def stack_terms(terms: dict[str, Array], names: Sequence[str]) -> NDArray[np.float64]:
    """(len(names) x N) values of the named terms, written in place: a sharded term ``name|s`` is
    ``terms[name]`` times the share ``terms["|s"]``."""
    out = np.empty((len(names), *np.shape(next(iter(terms.values())))))
    for row, name in zip(out, names, strict=True):
        base, bar, share = name.partition("|")
        if bar:
            np.multiply(terms[base], terms[bar + share], out=row)
        else:
            row[:] = terms[name]
    return out


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
    compute_s: NDArray[np.float64] | None
    memory_s: NDArray[np.float64] | None
    roofline_s: NDArray[np.float64] | None
    """Per operator instance: max(compute_s, memory_s). None (all three) when only totals were asked for."""
    time_s: Array
    """The busiest stage's pass: sum over its operators of count x roofline time, plus overhead per operator
    instance run (per-layer operators times the stage's layer share)."""
    layer_share: Array
    """Layers of the busiest pipeline stage over all layers (1 without pipeline parallelism)."""
    layers_s: Array
    """All layers' operators (overheads included), on one device of each stage they sit on."""
    other_s: Array
    """The operators outside the layers (embeddings, final norm, LM head): ``time_s = share x layers_s +
    other_s``, and ``layers_s + other_s`` is the pass summed over every stage."""
    largest_act_bytes: Array | None
    """Per candidate, the largest activation bytes any one operator instance holds at once."""
    kv_written_bytes: Array | None
    """KV-cache bytes the pass writes, all layers' instances (one device of each stage). These two are None
    when evaluated without them (``side``)."""

    def op_counts(self) -> NDArray[np.float64]:
        """(K x N) operator instances the busiest stage runs."""
        table = self.table
        return table.layer_counts[:, None] * self.layer_share + table.other_counts[:, None]  # type: ignore[no-any-return]

    def op_time_s(self, rates: Rates, fused: Array) -> NDArray[np.float64]:
        """Per operator, all instances on the busiest stage: count x (roofline + overhead where it runs)."""
        assert self.roofline_s is not None, "evaluated without per-operator detail"
        runs = {"always": np.ones_like(fused), "fused": fused, "unfused": 1.0 - fused}
        active = np.stack([runs[s.active] for s in self.table.specs])
        busy = self.roofline_s + rates.overhead_s * active
        return self.op_counts() * busy * active  # type: ignore[no-any-return]

    def part(self, which: str) -> NDArray[np.float64]:
        """Per-operator quantity per instance: ``flops``, ``memory_bytes``, ``weight_bytes``, ``act_bytes`` or
        ``kv_bytes`` (computed on demand: the search path never needs them per operator)."""
        return getattr(self.table, which) @ self.basis  # type: ignore[no-any-return]

    def total(self, which: str) -> Array:
        """Busiest-stage total (all its operators, all instances) of ``flops`` or ``memory_bytes``, per device."""
        coefficients = getattr(self.table, which)  # counts x coefficients first: (2 x T), not (K x N)
        layers, other = (np.stack([self.table.layer_counts, self.table.other_counts]) @ coefficients) @ self.basis
        return self.layer_share * layers + other  # type: ignore[no-any-return]


def _instances(activity: dict[str, float], fused: Array) -> Array:
    """Operator instances that run: always, plus the fused kernels' (fused = 1) or the unfused ones' (0)."""
    unfused = activity["always"] + activity["unfused"]
    return unfused + (activity["fused"] - activity["unfused"]) * fused  # type: ignore[no-any-return]


def overhead_s(table: OpTable, rates: Rates, fused: Array) -> Array:
    """Per-kernel overhead of a whole pass (every stage): instances that run x overhead each."""
    count = _instances(table.activity, fused) + _instances(table.other_activity, fused)
    return rates.overhead_s * count  # type: ignore[no-any-return]


BLOCK_COLUMNS = 1024
"""Candidates per block when only pass totals are wanted: a block's (operators x candidates) arrays stay in a
core's L2 cache (26 x 1024 float64 = 213 KB), so the passes over them are not bound by the shared L3."""


def evaluate_table(
    table: OpTable,
    basis: NDArray[np.float64],
    rates: Rates,
    fused: Array,
    layer_share: Array | None = None,
    kv_extra_s_per_byte: Array | None = None,
    *,
    per_operator: bool = True,
    side: bool = True,
) -> PassCost:
    """Roofline of every operator for every candidate, and the busiest stage's pass total, from the table's
    (T x N) ``basis`` of term values (``OpTable.basis``).

    ``kv_extra_s_per_byte``: extra seconds per KV-cache byte read (host-offloaded KV read over the host link;
    the new token's KV is written to device memory, so writes take none). ``per_operator`` False keeps only
    the totals (the per-operator arrays are then None) and evaluates in cache-sized blocks of candidates, on
    the table's merged rows. ``side`` False skips the activation peaks and KV bytes written (decode)."""
    share = np.ones_like(fused) if layer_share is None else layer_share
    rows = table.per_operator if per_operator else table.merged
    extra = kv_extra_s_per_byte
    with_extra = rows.kv_read_bytes is not None and extra is not None and bool(np.any(extra))
    layers = rates.overhead_s * _instances(table.activity, fused)
    other = rates.overhead_s * _instances(table.other_activity, fused)
    largest, written = np.zeros_like(fused), np.empty_like(fused)
    per_flop = rates.seconds_per_flop
    width = len(fused) if per_operator else BLOCK_COLUMNS
    blocks = [slice(None)] if per_operator else [slice(i, i + width) for i in range(0, len(fused), width)]
    per_pair = np.zeros((len(table.pair_terms) + 1, width))  # the last row stays 0: rows without FLOPs
    for block in blocks:
        part = basis[:, block]
        pairs = per_pair[:, : part.shape[1]]
        np.multiply(part[table.pair_terms], per_flop[table.pair_kinds, block], out=pairs[:-1])
        compute_s = pairs[rows.pair_index]
        if rows.flops_coefficient is not None:
            compute_s *= rows.flops_coefficient[:, None]
        memory_s = rows.memory_bytes @ part
        memory_s *= rates.seconds_per_byte[block]
        if with_extra:
            memory_s += (rows.kv_read_bytes @ part) * extra[block]  # type: ignore[operator,index]
        roofline_s = np.maximum(compute_s, memory_s, out=None if per_operator else compute_s)
        layers[block] += rows.layer_counts @ roofline_s
        if len(rows.other_rows):
            other[block] += rows.other_counts[rows.other_rows] @ roofline_s[rows.other_rows]
        if side:
            extras = table.side_rows @ part
            written[block] = extras[-1]
            if len(extras) > 1:
                largest[block] = extras[:-1].max(axis=0)
    if not per_operator:
        compute_s = memory_s = roofline_s = None  # type: ignore[assignment]
    return PassCost(
        table,
        basis,
        compute_s,
        memory_s,
        roofline_s,
        share * layers + other,
        share,
        layers,
        other,
        largest if side else None,
        written if side else None,
    )

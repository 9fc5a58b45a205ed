"""Operator tables: a pass's operators compiled to coefficient matrices over monomials, evaluated for many
candidates by matrix products.

For K operators over M monomials and N candidates, bytes are (K x M) @ (M x N): one BLAS call instead of K x
(a dozen) array operations; every operator's FLOPs are one monomial, so they are one multiply.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dse.costmodel.engine.forms import FUSED, UNFUSED, Basis, Form, Symbol, coefficients
from dse.costmodel.physics.layers import stored_weight_parts
from dse.costmodel.physics.operators import Operator
from dse.costmodel.physics.roofline import PEAKS

Matrix = NDArray[np.float64]


def masked(op: Operator[Any], masks: bool) -> Operator[Any]:
    """``op`` with every form multiplied by its kernel mask (``masks``: the table serves candidates of both
    kernel kinds), so that it costs nothing for candidates that do not run it."""
    if not masks or op.runs == "always":
        return op
    mask = Form.symbol(FUSED if op.runs == "fused" else UNFUSED)
    parts = ("flops", "weight_bytes", "act_bytes", "kv_bytes", "live_bytes")
    changes: dict[str, Any] = {part: None if getattr(op, part) is None else mask * getattr(op, part) for part in parts}
    return replace(op, **changes)


def _undominated(rows: Matrix) -> list[int]:
    """Rows no other row matches or exceeds in every column (the first of equal rows kept). With nonnegative
    monomials a dominated row can never hold the largest value, so the activation peak needs only these."""
    keep = []
    for i, row in enumerate(rows):
        dominated = any(
            j != i and np.all(other >= row) and (np.any(other > row) or j < i) for j, other in enumerate(rows)
        )
        if not dominated and np.any(row):
            keep.append(i)
    return keep


@dataclass(frozen=True)
class Rows:
    """One roofline row per operator: what ``evaluate_table`` sums for per-operator totals."""

    memory_bytes: Matrix
    """(K x M) bytes moved per instance."""
    kv_read_bytes: Matrix | None
    """(K x M) KV-cache bytes read per instance (rows of operators that read the cache; None: no such row)."""
    flops_coefficient: NDArray[np.float64]
    """Per row, FLOPs = coefficient x its monomial."""
    pair_index: NDArray[np.intp]
    """Per row, its (monomial, peak) pair in ``OperatorTable.rate_pairs``."""
    layer_counts: NDArray[np.float64]
    other_counts: NDArray[np.float64]


@dataclass(frozen=True)
class MergedRows:
    """Fewer rows with the same pass totals (``merge``): proportional operators folded into one row, and each
    row's FLOP coefficient c folded out of the max, c max(t_flop, bytes / c / β) with t_flop the time of one
    unit of its FLOP monomial."""

    bytes_per_flop_unit: Matrix
    """(R x M) bytes moved per unit of the row's FLOP monomial (bytes / c; rows without FLOPs: c = 1)."""
    kv_read_bytes_per_flop_unit: Matrix | None
    pair_index: NDArray[np.intp]
    """Per row, its rate pair (rows without FLOPs: one past the last pair, whose time is 0)."""
    layer_weights: NDArray[np.float64]
    """Per row, Σ over the operators folded into it of instances (inside the layers) x c x their ratio to it."""
    other_weights: NDArray[np.float64]
    other_rows: NDArray[np.intp]
    """Rows with instances outside the layers (a handful: summing only them saves a pass over R x N)."""
    read_rows: NDArray[np.intp]
    """Rows with KV-cache reads."""


def merge(rows: Rows, flops: Matrix, pairs: int) -> MergedRows:
    """Rows whose FLOPs, bytes and KV reads are proportional term by term, with the same rate pair, have
    proportional rooflines, since max(a x, a y) = a max(x, y) for a > 0 (gate, up and down projections of an
    FFN; q and o; the RMSNorms): one row stands for them, weighted by their ratios; exact."""
    reads = rows.kv_read_bytes if rows.kv_read_bytes is not None else np.zeros_like(rows.memory_bytes)
    profiles = np.hstack([flops, rows.memory_bytes, reads])
    keep: list[int] = []
    layer: list[float] = []
    other: list[float] = []
    for i, profile in enumerate(profiles):
        for slot, j in enumerate(keep):
            ratio = _ratio(profile, profiles[j])
            if ratio is not None and rows.pair_index[i] == rows.pair_index[j]:
                layer[slot] += ratio * rows.layer_counts[i]
                other[slot] += ratio * rows.other_counts[i]
                break
        else:
            keep.append(i)
            layer.append(float(rows.layer_counts[i]))
            other.append(float(rows.other_counts[i]))
    coefficient = rows.flops_coefficient[keep]
    scale = np.where(coefficient > 0, coefficient, 1.0)
    other_weights = np.asarray(other) * scale
    kept_reads = reads[keep] / scale[:, None]
    read_rows = np.flatnonzero(np.any(kept_reads != 0, axis=1))
    return MergedRows(
        bytes_per_flop_unit=rows.memory_bytes[keep] / scale[:, None],
        kv_read_bytes_per_flop_unit=kept_reads[read_rows] if len(read_rows) else None,
        pair_index=np.where(coefficient > 0, rows.pair_index[keep], pairs),
        layer_weights=np.asarray(layer) * scale,
        other_weights=other_weights,
        other_rows=np.flatnonzero(other_weights),
        read_rows=read_rows,
    )


def _ratio(row: Matrix, of: Matrix) -> float | None:
    """a > 0 with row = a x ``of`` (to rounding), else None."""
    pivot = int(np.argmax(np.abs(of)))
    if of[pivot] == 0.0 or row[pivot] / of[pivot] <= 0.0:
        return None
    ratio = float(row[pivot] / of[pivot])
    return ratio if np.allclose(row, ratio * of, rtol=1e-12, atol=0.0) else None


@dataclass(frozen=True)
class OperatorTable:
    """K operators of a pass compiled over monomials (rows: operators in pass order; columns: ``basis``)."""

    operators: tuple[Operator[Any], ...]
    basis: Basis
    flops: Matrix
    memory_bytes: Matrix
    kv_bytes: Matrix
    kv_read_rows: NDArray[np.intp]
    """Operators that read the KV cache (their ``kv_bytes`` are reads: a host-offloaded share pays the link)."""
    layer_counts: NDArray[np.float64]
    """Instances per pass of the per-layer operators, all L layers (0 elsewhere): scaled by λ per stage."""
    other_counts: NDArray[np.float64]
    """Instances of the rest (embeddings, final norm, LM head), which one stage runs whole."""
    kinds: NDArray[np.intp]
    """Per operator, its peak (index into ``PEAKS``)."""
    runs: dict[str, tuple[float, float]]
    """Instances per activity (``always``, ``fused``, ``unfused``): (inside the layers, outside), for overheads."""
    flops_coefficient: NDArray[np.float64]
    rate_pairs: tuple[tuple[int, int], ...]
    """Distinct (FLOP monomial column, peak) pairs: compute time = coefficient x monomial / rate of the peak."""
    pair_index: NDArray[np.intp]
    held_rows: Matrix
    """Activation bytes held at once by the operators that can hold the most (no other matches or exceeds
    them in every column), for the activation peak."""
    kv_written: NDArray[np.float64]
    """KV-cache bytes the pass writes, all layers' instances (one device of each stage)."""
    stored: Matrix
    """(4 x S) stored parameter bytes (``layers.stored_weight_parts``): all, layers, first stage, last stage,
    over the S columns ``stored_columns`` (a handful: gathering them beats a product over every column)."""
    stored_columns: NDArray[np.intp]

    @classmethod
    def compile(cls, ops: Sequence[Operator[Any]], *, masks: bool) -> OperatorTable:
        """Coefficient matrices of ``ops`` (``masks``: the table serves both kernel kinds)."""
        ops = [masked(op, masks) for op in ops]
        forms = [Form.of(part) for op in ops for part in (op.flops, op.memory_bytes, op.held_bytes)]
        forms += [Form.of(part) for part in stored_weight_parts(ops)]
        columns = sorted({m for form in forms for m in form.terms})
        basis = Basis.of(columns)
        index = {m: i for i, m in enumerate(columns)}

        def matrix(values: Sequence[Any]) -> Matrix:
            return coefficients(values, index, len(columns))

        flops = matrix([op.flops for op in ops])
        if np.any((flops != 0).sum(axis=1) > 1):
            raise ValueError("an operator's FLOPs must be one monomial")
        flop_column = np.argmax(flops != 0, axis=1)
        kinds = np.asarray([PEAKS.index(op.kind) for op in ops], dtype=np.intp)
        pairs = sorted({(int(t), int(k)) for t, k in zip(flop_column, kinds, strict=True)})
        per_layer = np.asarray([op.per_layer for op in ops], dtype=bool)
        counts = np.asarray([op.count for op in ops], dtype=np.float64)
        held = matrix([op.held_bytes for op in ops])
        stored = matrix(list(stored_weight_parts(ops)))
        stored_columns = np.flatnonzero(np.any(stored != 0, axis=0))
        kv = matrix([op.kv_bytes for op in ops])
        reads = np.flatnonzero([op.reads_kv_cache and bool(np.any(kv[i])) for i, op in enumerate(ops)])
        layer_counts = np.where(per_layer, counts, 0.0)
        written = kv.copy()
        written[reads] = 0.0  # cache reads are not new entries
        return cls(
            operators=tuple(ops),
            basis=basis,
            flops=flops,
            memory_bytes=matrix([op.memory_bytes for op in ops]),
            kv_bytes=kv,
            kv_read_rows=reads,
            layer_counts=layer_counts,
            other_counts=np.where(per_layer, 0.0, counts),
            kinds=kinds,
            runs={a: _instances(ops, a) for a in ("always", "fused", "unfused")},
            flops_coefficient=flops[np.arange(len(ops)), flop_column],
            rate_pairs=tuple(pairs),
            pair_index=np.asarray([pairs.index((int(t), int(k))) for t, k in zip(flop_column, kinds, strict=True)]),
            held_rows=held[_undominated(held)].reshape(-1, len(columns)),
            kv_written=layer_counts @ written,
            stored=stored[:, stored_columns],
            stored_columns=stored_columns,
        )

    @property
    def rows(self) -> Rows:
        """One roofline row per operator."""
        reads = None
        if len(self.kv_read_rows):
            reads = np.zeros_like(self.kv_bytes)
            reads[self.kv_read_rows] = self.kv_bytes[self.kv_read_rows]
        return Rows(
            self.memory_bytes, reads, self.flops_coefficient, self.pair_index, self.layer_counts, self.other_counts
        )

    @functools.cached_property
    def merged(self) -> MergedRows:
        """Proportional operators folded into one row: what pass totals are evaluated on (computed once)."""
        return merge(self.rows, self.flops, len(self.rate_pairs))

    @functools.cached_property
    def pair_columns(self) -> NDArray[np.intp]:
        return np.asarray([t for t, _ in self.rate_pairs], dtype=np.intp)

    @functools.cached_property
    def pair_kinds(self) -> NDArray[np.intp]:
        return np.asarray([k for _, k in self.rate_pairs], dtype=np.intp)

    def values(self, symbols: dict[Symbol, Any], size: int) -> Matrix:
        """The (M x N) values of the table's monomials for candidates whose symbols are ``symbols``."""
        return self.basis.values(symbols, size)


def _instances(ops: Sequence[Operator[Any]], activity: str) -> tuple[float, float]:
    """Instances of operators running ``activity``: (those inside the layers, those outside)."""
    inside = float(sum(op.count for op in ops if op.runs == activity and op.per_layer))
    return inside, float(sum(op.count for op in ops if op.runs == activity and not op.per_layer))


@dataclass(frozen=True)
class Rates:
    """Attained rates per candidate: FLOP/s per peak (rows of ``PEAKS``), bytes/s, per-kernel overhead (s)."""

    flops_per_s: Matrix
    bytes_per_s: NDArray[np.float64]
    overhead_s: NDArray[np.float64]

    @functools.cached_property
    def seconds_per_flop(self) -> Matrix:
        """Reciprocals, computed once: multiplying is several times cheaper than dividing."""
        return 1.0 / self.flops_per_s  # type: ignore[no-any-return]

    @functools.cached_property
    def seconds_per_byte(self) -> NDArray[np.float64]:
        return 1.0 / self.bytes_per_s  # type: ignore[no-any-return]


@dataclass(frozen=True)
class PassTimes:
    """One pass's operators for N candidates, on one device of each stage."""

    layers_s: NDArray[np.float64]
    """All L layers' operators, per-kernel overheads included."""
    other_s: NDArray[np.float64]
    """The operators outside the layers (embeddings, final norm, LM head)."""
    largest_held_bytes: NDArray[np.float64] | None
    """The most activation bytes any one operator holds at once."""
    kv_written_bytes: NDArray[np.float64] | None
    """KV-cache bytes the pass writes, all layers. These two are None when evaluated without them (``side``)."""


def instances(table: OperatorTable, fused: NDArray[np.float64], part: int) -> NDArray[np.float64]:
    """Operator instances that run (``part`` 0: inside the layers, 1: outside): always, plus the fused kernels'
    (fused = 1) or the unfused ones' (0)."""
    always, only_fused, only_unfused = (table.runs[a][part] for a in ("always", "fused", "unfused"))
    return always + only_unfused + (only_fused - only_unfused) * fused  # type: ignore[no-any-return]


BLOCK_COLUMNS = 1024
"""Candidates per block: a block's (rows x candidates) arrays stay in a core's L2 cache (26 x 1024 float64 =
213 KB), so the passes over them are not bound by the shared L3."""


def evaluate_table(
    table: OperatorTable,
    values: Matrix,
    rates: Rates,
    fused: NDArray[np.float64],
    host_extra: NDArray[np.float64] | None = None,
    *,
    side: bool = True,
) -> PassTimes:
    """Every operator's roofline (``physics.roofline``) for every candidate, summed over the pass, from the
    table's (M x N) monomial ``values``; in blocks of candidates that stay in cache, on the merged rows.

    ``host_extra``: extra seconds per KV-cache byte read (``kvcache.host_read_extra_s_per_byte``), added on
    the rows that read the cache. ``side`` False skips the activation peak and the KV bytes written."""
    rows = table.merged
    extra = host_extra if host_extra is not None and rows.kv_read_bytes_per_flop_unit is not None else None
    if extra is not None and not np.any(extra):
        extra = None
    unknown = extra is not None and bool(np.isnan(extra).any())  # an offload with no host link
    layers = rates.overhead_s * instances(table, fused, 0)
    other = rates.overhead_s * instances(table, fused, 1)
    largest, written = np.zeros_like(fused), np.empty_like(fused)
    per_flop = rates.seconds_per_flop
    per_pair = np.zeros((len(table.rate_pairs) + 1, BLOCK_COLUMNS))  # the last row stays 0: rows without FLOPs
    for start in range(0, len(fused), BLOCK_COLUMNS):
        block = slice(start, start + BLOCK_COLUMNS)
        part = values[:, block]
        pairs = per_pair[:, : part.shape[1]]
        np.multiply(part[table.pair_columns], per_flop[table.pair_kinds, block], out=pairs[:-1])
        compute_s = pairs[rows.pair_index]
        memory_s = rows.bytes_per_flop_unit @ part
        memory_s *= rates.seconds_per_byte[block]
        if extra is not None:
            read = rows.kv_read_bytes_per_flop_unit @ part  # type: ignore[operator]
            added = read * extra[block]
            if unknown:  # only bytes read pay the link (``roofline.memory_time_s``): none, no extra, even unknown
                added = np.where(read > 0, added, 0.0)
            memory_s[rows.read_rows] += added
        roofline_s = np.maximum(compute_s, memory_s, out=compute_s)
        layers[block] += rows.layer_weights @ roofline_s
        if len(rows.other_rows):
            other[block] += rows.other_weights[rows.other_rows] @ roofline_s[rows.other_rows]
        if side:
            written[block] = table.kv_written @ part
            if len(table.held_rows):
                largest[block] = (table.held_rows @ part).max(axis=0)
    return PassTimes(layers, other, largest if side else None, written if side else None)


def pass_totals(
    table: OperatorTable, values: Matrix, layer_share: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """FLOPs and bytes of one pass on the busiest stage's device: λ x the layers' + the rest."""
    counts = np.stack([table.layer_counts, table.other_counts])
    out = []
    for matrix in (table.flops, table.memory_bytes):
        layers, other = (counts @ matrix) @ values
        out.append(layer_share * layers + other)
    return out[0], out[1]

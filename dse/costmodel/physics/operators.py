"""Operators: the FLOPs and bytes of one operator instance on one device, and the quantities of a pass.

Conventions (per operator instance, per device):
- a matrix multiply of an (R x d_in) activation by a (d_in x d_out) weight does ``2 R d_in d_out`` FLOPs (one
  multiply and one add per MAC; Kaplan et al. 2020, arXiv 2001.08361 §2.1) and moves the weight once, the
  input once and the output once (LLM-Viewer's accounting, arXiv 2402.16363 §3.1);
- element-wise operators move their inputs and outputs once and cost a fixed number of FLOPs per element;
- bytes = elements x bytes per element of the storage format (bits / 8, scale overhead included).

Tensor parallelism enters as per-device shares (``dse.costmodel.physics.parallel.shares``): a
column-parallel projection (Megatron-LM, Shoeybi et al. 2019, arXiv 1909.08053 §3) holds and computes
``share`` of its output dimension and reads its whole input; a row-parallel one holds ``share`` of its input
dimension and writes a whole (partial-sum) output.

Every formula is plain arithmetic (+ and x) on the quantities of a ``Pass``: given floats or arrays it
evaluates them, and the fast engine passes symbols to read each formula's coefficients off once
(``dse.costmodel.engine.forms``). So each formula is written once, here and in the modules beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from dse import units
from dse.costmodel.physics.roofline import Peak

N = TypeVar("N")
"""A number: a float, a numpy array (one value per candidate, or per decode position) or an engine symbol."""

Activity = Literal["always", "fused", "unfused"]
"""When an operator runs: always, or only with (or without) fused attention kernels."""
ShardKind = Literal["column", "row", "all"]
"""How tensor parallelism splits a projection: its output dimension (``column``), its input dimension
(``row``), or both (``all``: per-head matrices, whole heads to each device)."""
Shard = tuple[ShardKind, Any] | None
"""(how, the device's share), or None: replicated on every device."""

PARAMETER_BYTES = units.bits_to_bytes(16.0)
"""Norm weights, biases, router weights and learned position tables stay 16-bit in every scheme we model."""
NORM_FLOPS_PER_ELEMENT = {"rmsnorm": 4.0, "layernorm": 7.0}
"""RMSNorm: square, accumulate, scale, weight (4); LayerNorm adds the mean subtraction and the bias (7)."""
ACTIVATION_FLOPS_PER_ELEMENT = 4.0
"""SiLU/GELU/ReLU counted as ~4 FLOPs per element (the operator is memory-bound: the order of magnitude)."""
GATE_FLOPS_PER_ELEMENT = 1.0
"""The gated FFN's multiply of the activated gate by the up projection (SwiGLU/GeGLU, Shazeer 2020)."""
RESIDUAL_ADD_FLOPS_PER_ELEMENT = 1.0


@dataclass(frozen=True)
class AttentionWork(Generic[N]):
    """Per sequence, what one attention kernel of a layer group works on (docs/cost-model.md §3).

    Prefill: ``keys`` = P (an unfused kernel scores every new query against every key), ``pairs`` = the
    (query, key) pairs a causal fused kernel computes, ``reads`` = the key tokens its query tiles read.
    Decode: all three are the K keys the new token attends to.

    ``cached``: a prefill-shaped pass's key tokens read from the KV cache besides its ``reads`` (a
    continuous-batching step's decoding sequences, ``passes.mixed_pass``), in the same units: a fused kernel
    charges them as cache reads, which pay the host link where part of the cache is offloaded. 0 in a prefill
    of its own."""

    keys: N
    pairs: N
    reads: N
    cached: Any = 0.0


@dataclass(frozen=True)
class Pass(Generic[N]):
    """What one device of the busiest pipeline stage runs in one forward pass (prefill, or one decode step)."""

    R: N
    """Token rows through the linear layers: B x T (T = new tokens per sequence: P - c, or 1 in decode)."""
    B: N
    """Sequences: the LM head's rows (one per sequence), and the batch attention runs over."""
    w: N
    """Bytes per element of the linear layers' weights."""
    e: N
    """Bytes per element of the embedding table and LM head."""
    w_attn: N
    """Bytes per element of the attention projections' weights: ``w``, or 2 where the checkpoint keeps them
    16-bit (``Candidates.attention_16bit``)."""
    a: N
    """Bytes per element of activations."""
    kv: N
    """Bytes per element of the KV cache."""
    x: N
    """Bytes per element of the K/V attention reads: a in prefill (fresh projections), kv in decode (cache)."""
    u: N
    """Fraction of a device's routed experts the pass touches (``moe.experts_touched_fraction``)."""
    s_tp: N
    """1/tp: the share of query heads, FFN width and vocabulary a device holds."""
    s_kv: N
    """The share of KV heads a device holds: 1 / min(tp, n_kv)."""
    s_ew: N
    """The share of routed-expert weights a device holds."""
    s_ef: N
    """Routed-expert rows a device computes, on the side tensor parallelism splits, over R."""
    s_ea: N
    """Routed-expert rows on the other (hidden-width) side, over R."""
    attention: Mapping[str, AttentionWork[N]]
    """Per attention group (``full``, ``window``) present in the model."""
    decode: bool
    """A decode step (K/V read from the cache, MLA absorbed) or prefill."""


@dataclass(frozen=True)
class Operator(Generic[N]):
    """One operator: its cost per instance on one device, and how many instances a pass runs."""

    name: str
    count: float
    kind: Peak
    flops: N
    weight_bytes: N
    act_bytes: N
    kv_bytes: Any = 0.0
    runs: Activity = "always"
    per_layer: bool = True
    """Part of the repeated decoder layers (split over pipeline stages), or not (embeddings, LM head)."""
    reads_kv_cache: bool = False
    """Its ``kv_bytes`` are reads of the cache (attention in decode), not writes of new entries."""
    group: str | None = None
    """The attention group (``full``, ``window``) of an attention operator; None for every other."""
    live_bytes: Any = None
    """Activation bytes held at once while it runs; None = its activation traffic. Differs for fused
    attention, whose K/V traffic re-reads the same tensors once per query tile."""
    resident_bytes: Any = None
    """Bytes of all its parameters as stored in device memory; None = the weight bytes it reads per pass."""
    params: float = 0.0
    """Parameters of one instance (every expert), for parameter counts."""
    active_params: float = 0.0
    """Parameters one token uses (k of E experts)."""

    @property
    def memory_bytes(self) -> N:
        """Q: every byte the operator moves."""
        return self.weight_bytes + self.act_bytes + self.kv_bytes  # type: ignore[operator,no-any-return]

    @property
    def held_bytes(self) -> N:
        """Activation bytes held at once (``live_bytes``, else its activation traffic)."""
        return self.act_bytes if self.live_bytes is None else self.live_bytes  # type: ignore[no-any-return]

    @property
    def stored_bytes(self) -> N:
        """Parameter bytes stored (``resident_bytes``, else the weight bytes read)."""
        return self.weight_bytes if self.resident_bytes is None else self.resident_bytes  # type: ignore[no-any-return]

    def runs_with(self, fused: bool) -> bool:
        """Whether it runs for a candidate using fused (or unfused) attention kernels."""
        return self.runs == "always" or (self.runs == "fused") == fused


def matmul_flops(R: Any, d_in: float, d_out: float) -> Any:
    """2 R d_in d_out: one multiply and one add per MAC (Kaplan et al. 2020, arXiv 2001.08361 §2.1)."""
    return 2.0 * R * d_in * d_out


def linear(
    name: str,
    count: float,
    p: Pass[Any],
    d_in: int,
    d_out: int,
    *,
    shard: Shard = None,
    rows: Any = None,
    rows_per_token: float = 1.0,
    weight_bpe: Any = None,
    bias: bool = False,
    cache: bool = False,
    matrices: int = 1,
    kind: Peak = "matmul",
    per_layer: bool = True,
) -> Operator[Any]:
    """A projection of ``rows`` (default R) x ``rows_per_token`` rows through ``matrices`` weight matrices of
    d_in x d_out (e.g. one per head, each on its own head's rows), stored at ``weight_bpe`` bytes per element
    (default w). ``shard``: how tensor parallelism splits it and the device's share (module doc). ``cache``
    also writes its output to the KV cache. A bias (16-bit) belongs to the output: split with it, except a
    row-parallel one, which is added once after the reduction."""
    rows = (p.R if rows is None else rows) * rows_per_token
    bpe = p.w if weight_bpe is None else weight_bpe
    how, share = shard if shard is not None else (None, 1.0)
    s_in = share if how in ("row", "all") else 1.0
    s_out = share if how in ("column", "all") else 1.0
    weights = matrices * d_in * d_out * bpe * share
    if bias:
        weights = weights + PARAMETER_BYTES * matrices * d_out * s_out
    params = matrices * d_in * d_out + (matrices * d_out if bias else 0)
    return Operator(
        name,
        count,
        kind,
        flops=matmul_flops(rows, d_in, d_out) * share,
        weight_bytes=weights,
        act_bytes=rows * p.a * (d_in * s_in + d_out * s_out),
        kv_bytes=rows * p.kv * d_out * s_out if cache else 0.0,
        per_layer=per_layer,
        params=params,
        active_params=params,
    )


def elementwise(
    name: str,
    count: float,
    p: Pass[Any],
    width: float,
    flops_per_element: float,
    *,
    reads: float = 1.0,
    writes: float = 1.0,
    params: int = 0,
    share: Any = 1.0,
    per_layer: bool = True,
) -> Operator[Any]:
    """``width`` x ``share`` output elements per token row, reading ``reads`` inputs of that width each. Its
    ``params`` (a norm's scale vector, shared by every head and token) are held whole by every device."""
    return Operator(
        name,
        count,
        "vector",
        flops=flops_per_element * p.R * width * share,
        weight_bytes=PARAMETER_BYTES * params,
        act_bytes=p.R * p.a * width * (reads + writes) * share,
        per_layer=per_layer,
        params=params,
        active_params=params,
    )


def embedding_lookup(p: Pass[Any], vocab: int, h: int) -> Operator[Any]:
    """One table row of h elements read per token row, no FLOPs. The table is vocabulary-parallel
    (Megatron-LM §3): a device stores and reads 1/tp of it and writes whole rows (zeros outside its shard),
    which an all-reduce then sums."""
    return Operator(
        "embedding",
        1,
        "vector",
        flops=0.0,
        weight_bytes=p.R * p.e * h * p.s_tp,
        act_bytes=p.R * p.a * h,
        per_layer=False,
        resident_bytes=vocab * h * p.e * p.s_tp,
        params=vocab * h,
    )


def position_lookup(p: Pass[Any], positions: int, h: int) -> Operator[Any]:
    """A learned position table (OPT): one 16-bit row per token row; small, so replicated."""
    return Operator(
        "position_embedding",
        1,
        "vector",
        flops=0.0,
        weight_bytes=p.R * PARAMETER_BYTES * h,
        act_bytes=p.R * p.a * h,
        per_layer=False,
        resident_bytes=PARAMETER_BYTES * positions * h,
        params=positions * h,
    )

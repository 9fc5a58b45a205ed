"""Operator formulas: FLOPs and bytes of one operator instance as linear forms over per-candidate terms.

Every cost in a forward pass is a sum of (model constant) x (per-candidate quantity): FLOPs of a projection
are ``2 d_in d_out`` times the token rows, its weight bytes are ``d_in d_out`` times the weight format's bytes
per element, and so on. An operator is therefore written once, here, as coefficients over named
*terms* (see ``dse.costmodel._terms`` for what each term is); evaluating N candidates is one matrix product
of the coefficients with the terms' arrays.

Parallelism enters through the terms, not the coefficients: a term written ``name|shard`` is the term
``name`` times the candidate's per-device share for that shard (``dse.costmodel._parallel``): ``|tp`` = 1/tp
(heads, FFN width, vocabulary), ``|kv`` = the KV heads a device holds over all KV heads, ``|ew`` / ``|ef`` /
``|ea`` = the routed experts' weights / sharded-side rows / replicated-side rows a device handles. A
column-parallel projection (Megatron-LM, Shoeybi et al. 2019, arXiv 1909.08053 §3) reads its whole input and
writes a shard of its output; a row-parallel one reads a shard and writes a whole (partial-sum) output.

Conventions (per operator instance, per device):
- a matrix multiply of a (rows x d_in) activation by a (d_in x d_out) weight does ``2 rows d_in d_out``
  FLOPs (one multiply and one add per MAC; Kaplan et al. 2020, arXiv 2001.08361 §2.1) and moves the weight
  once, the input once and the output once (LLM-Viewer's accounting, arXiv 2402.16363 §3.1);
- element-wise operators move inputs and outputs once and cost the fixed FLOPs per element named below;
- bytes = elements x bytes per element of the storage format (bits / 8, scale overhead included).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from dse import units

OpKind = Literal["matmul", "matmul16", "vector"]
Shard = Literal["column", "row", "all"] | None
"""How tensor parallelism splits a projection: output dim (``column``), input dim (``row``), every term
(``all``: per-head matrices, where whole heads go to devices), or not at all (None: replicated)."""
"""Which peak an operator runs at: the scheme's linear-layer format (``matmul``), the 16-bit format
(``matmul16``: attention score/value products, and projections whose weights stay 16-bit such as the router
and the LM head), or the vector units (element-wise work)."""
Activity = Literal["always", "fused", "unfused"]
"""When an operator runs: always, or only with (or without) fused attention kernels."""
Terms = Mapping[str, float]
"""Coefficients over named per-candidate terms."""

NORM_FLOPS_PER_ELEMENT = {"rmsnorm": 4.0, "layernorm": 7.0}
"""RMSNorm: square, accumulate, scale, weight (4); LayerNorm adds mean subtraction and bias (7)."""
SOFTMAX_FLOPS_PER_ELEMENT = 5.0
"""max, subtract, exp, sum, divide: LLM-Viewer's softmax count (arXiv 2402.16363, Table 1 footnote)."""
ACTIVATION_FLOPS_PER_ELEMENT = 4.0
"""SiLU/GELU/ReLU evaluated as ~4 FLOPs per element (order of magnitude: the operator is memory-bound)."""
GATE_FLOPS_PER_ELEMENT = 1.0
"""The gated FFN's multiply of the activated gate by the up projection (SwiGLU/GeGLU, Shazeer 2020)."""
ROUTER_FLOPS_PER_LOGIT = 5.0
"""Softmax/sigmoid and top-k selection over the router logits, per logit."""
PARAMETER_BPE_16 = units.bits_to_bytes(16.0)
"""Norm weights, biases and router weights stay 16-bit (2 bytes per element) in every scheme we model."""


@dataclass(frozen=True)
class OpSpec:
    """One operator: its cost per instance as terms, and how many instances a forward pass runs."""

    name: str
    count: float
    kind: OpKind
    flops: Terms
    weight_bytes: Terms
    act_bytes: Terms
    kv_bytes: Terms = field(default_factory=dict)
    active: Activity = "always"
    params: float = 0.0
    """Parameters of one instance (all experts), for parameter counts."""
    active_params: float = 0.0
    """Parameters one token uses (k of E experts), for active-parameter counts."""
    resident_bytes: Terms | None = None
    """Bytes of all its parameters as stored in device memory; None = the bytes it reads per pass."""
    live_bytes: Terms | None = None
    """Activation bytes held at once while it runs; None = its activation traffic (``act_bytes``). Differs
    for fused attention, whose K/V traffic re-reads the same tensors once per query tile."""
    per_layer: bool = True
    """Part of the repeated decoder layers (split over pipeline stages), or not (embeddings, LM head)."""
    reads_kv_cache: bool = False
    """Its ``kv_bytes`` are reads of the cache (attention in decode), not writes of new entries."""


def sharded(term: str, shard: str | None) -> str:
    """The name of ``term`` taken per device under ``shard`` (None: the term itself)."""
    return term if shard is None else f"{term}|{shard}"


def _bias(d_out: float, bias: bool) -> dict[str, float]:
    return {"one": PARAMETER_BPE_16 * d_out} if bias else {}


def linear(
    name: str,
    count: float,
    d_in: int,
    d_out: int,
    *,
    rows: str = "rows",
    rows_scale: float = 1.0,
    weight: str = "w",
    bias: bool = False,
    cache: bool = False,
    matrices: float = 1.0,
    kind: OpKind = "matmul",
    shard: Shard = None,
    factor: str = "tp",
    per_layer: bool = True,
) -> OpSpec:
    """A dense projection over ``rows_scale`` x ``rows`` token rows; ``cache`` also writes its output to the KV
    cache. ``weight`` names the weight format's term (``w``, ``emb``, or ``one`` for fixed 16-bit bytes);
    ``matrices`` independent weight matrices of this shape (e.g. one per head) are read once each.
    ``shard`` / ``factor``: how tensor parallelism splits it and which per-device share applies (module doc).
    A row-parallel bias is added once, after the reduction, so it is not split."""
    split = None if shard is None else factor
    in_split = split if shard in ("row", "all") else None
    out_split = split if shard in ("column", "all") else None
    weights = matrices * d_in * d_out
    params = weights + (matrices * d_out if bias else 0)
    weight_terms = {sharded(weight, split): weights * (PARAMETER_BPE_16 if weight == "one" else 1.0)}
    for term, coefficient in _bias(matrices * d_out, bias).items():  # add: a 16-bit weight also uses "one"
        key = sharded(term, out_split)
        weight_terms[key] = weight_terms.get(key, 0.0) + coefficient
    act: dict[str, float] = {}
    for part, width in ((in_split, d_in), (out_split, d_out)):
        key = sharded(f"{rows}_a", part)
        act[key] = act.get(key, 0.0) + rows_scale * width
    return OpSpec(
        name,
        count,
        kind,
        flops={sharded(rows, split): 2.0 * rows_scale * d_in * d_out},
        weight_bytes=weight_terms,
        act_bytes=act,
        kv_bytes={sharded(f"{rows}_kv", out_split): rows_scale * d_out} if cache else {},
        params=params,
        active_params=params,
        per_layer=per_layer,
    )


def elementwise(
    name: str,
    count: float,
    width: float,
    flops_per_element: float,
    *,
    reads: float = 1.0,
    writes: float = 1.0,
    params: int = 0,
    shard: str | None = None,
    per_layer: bool = True,
) -> OpSpec:
    """An element-wise operator producing ``width`` elements per token row, reading ``reads`` inputs each;
    ``shard`` names the per-device share of the width (None: every device does all of it). Its ``params``
    (a norm's scale, shared by every head and token) are held whole by every device."""
    return OpSpec(
        name,
        count,
        "vector",
        flops={sharded("rows", shard): flops_per_element * width},
        weight_bytes={"one": PARAMETER_BPE_16 * params} if params else {},
        act_bytes={sharded("rows_a", shard): width * (reads + writes)},
        params=params,
        active_params=params,
        per_layer=per_layer,
    )


def experts(
    name: str,
    count: float,
    d_in: int,
    d_out: int,
    matrices: int,
    routed: tuple[int, int],
    *,
    shard: Literal["column", "row"],
    bias: bool = False,
) -> OpSpec:
    """Routed experts' projection (``matrices`` weight matrices of d_in x d_out per expert).

    ``routed`` = (E experts, k per token). Each token row runs k experts. The weights read are those of the
    experts the batch touches: with uniform independent routing, the expected number of distinct experts hit
    by R token rows choosing k of E is ``E (1 - (1 - k/E)^R)`` (occupancy; Feller vol. 1 §II.11), the
    ``touched`` term. A real router's imbalance makes it somewhat lower: this is an upper bound on traffic.

    Per device (module doc): weights ``|ew``; FLOPs and the side tensor parallelism splits ``|ef``; the other
    side ``|ea``. ``column`` is the gate/up projection (output split by tensor parallelism), ``row`` the down.
    """
    num_experts, top_k = routed
    weights = matrices * d_in * d_out
    per_expert = weights + (matrices * d_out if bias else 0)
    bias_bytes = PARAMETER_BPE_16 * matrices * d_out if bias else 0.0
    in_split, out_split = ("ea", "ef") if shard == "column" else ("ef", "ea")
    return OpSpec(
        name,
        count,
        "matmul",
        flops={"rows|ef": 2.0 * top_k * weights},
        weight_bytes={"touched_w|ew": num_experts * weights, "touched|ew": num_experts * bias_bytes},
        act_bytes={f"rows_a|{in_split}": top_k * d_in, f"rows_a|{out_split}": top_k * matrices * d_out},
        params=num_experts * per_expert,
        active_params=top_k * per_expert,
        resident_bytes={"w|ew": num_experts * weights, "one|ew": num_experts * bias_bytes},
    )


def lookup(name: str, table_rows: int, width: int, weight: str) -> OpSpec:
    """An embedding lookup: one table row read per token row, no FLOPs (``weight``: ``rows_emb``/``rows``).

    The vocabulary table is split under tensor parallelism (vocab-parallel embedding, Megatron-LM): a device
    stores and reads 1/tp of it and writes the whole output rows (zeros outside its shard), which an
    all-reduce then sums. A learned position table is small and replicated."""
    vocabulary = weight == "rows_emb"
    stored = {"emb|tp": table_rows * width} if vocabulary else {"one": PARAMETER_BPE_16 * table_rows * width}
    read = width if vocabulary else PARAMETER_BPE_16 * width
    return OpSpec(
        name,
        1,
        "vector",
        flops={},
        weight_bytes={f"{weight}|tp" if vocabulary else weight: read},
        act_bytes={"rows_a": width},
        params=table_rows * width,
        active_params=0,
        resident_bytes=stored,
        per_layer=False,
    )


def stored_weights(specs: Sequence[OpSpec]) -> dict[str, float]:
    """Stored parameter bytes per device as coefficients over terms: ``one`` (fixed 16-bit), ``w`` and ``emb``
    (bytes per element of the weight and embedding formats), each possibly sharded; all experts, tied tables
    once. Whole-model figures when every shard is 1."""
    total: dict[str, float] = {}
    for spec in specs:
        stored = spec.weight_bytes if spec.resident_bytes is None else spec.resident_bytes
        for term, coefficient in stored.items():
            total[term] = total.get(term, 0.0) + spec.count * coefficient
    return total

"""The per-candidate terms operator costs are linear in, for one forward pass.

Naming: ``rows`` = B x T token rows through the linear layers (T = prompt length in prefill, 1 in decode);
``_a``, ``_kv``, ``_emb`` multiply by bytes per element of activations, KV cache and embedding weights;
``w`` / ``emb`` are bytes per weight element; ``batch`` = B (the LM head's rows); ``touched`` = the expected
fraction of routed experts a pass reads (``experts``); per attention group (``full``, ``window``):
``scores`` = B T keys score elements per head of an unfused kernel, ``pairs`` = B x (query, key) pairs a fused
kernel computes, ``keys_x`` / ``reads_x`` = K/V token reads per KV head x their bytes per element.
``fused`` / ``unfused`` are 0/1 masks of the attention implementation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse import units
from dse.catalog import ModelSpec
from dse.costmodel._attention import decode_work, prefill_work
from dse.costmodel._candidates import Candidates
from dse.costmodel._layers import window_of
from dse.costmodel._roofline import Array


@dataclass(frozen=True)
class BytesPerElement:
    """Bytes per element of each tensor class, per candidate (bits / 8, scale overhead included)."""

    weight: Array
    embedding: Array
    act: Array
    kv: Array

    @classmethod
    def of(cls, c: Candidates) -> BytesPerElement:
        return cls(
            units.bits_to_bytes(c.weight_bits),
            units.bits_to_bytes(c.embedding_bits),
            units.bits_to_bytes(c.act_bits),
            units.bits_to_bytes(c.kv_bits),
        )


@dataclass(frozen=True)
class PassShape:
    """What one device of the busiest stage runs in a pass: ``batch`` sequences (its attention group's share
    of a micro-batch) of ``queries`` new tokens each; ``cached`` prompt tokens per sequence come from the
    prefix cache (prefill); ``routed_rows`` = the token rows of the whole stage, whose routing decides which
    experts a pass touches; ``shares`` = per-device shares of the shard suffixes (``_parallel.shares``);
    ``layer_share`` = the busiest stage's layers over all layers."""

    batch: Array
    queries: Array
    cached: Array | float
    routed_rows: Array
    shares: dict[str, Array]
    layer_share: Array


def pass_terms(
    model: ModelSpec,
    c: Candidates,
    bpe: BytesPerElement,
    shape: PassShape,
    keys: Array | None = None,
    *,
    attention: bool = True,
) -> dict[str, Array]:
    """Terms of prefill (``keys`` None) or of one decode step attending ``keys`` keys (window applied here).

    Holds the base terms and the shard shares (keys ``|tp`` ...); ``OpTable.basis`` multiplies them for the
    sharded terms (``rows|tp`` = rows x the ``|tp`` share). ``attention`` False leaves out the attention
    operators' terms (for tables without them: decode's context-free operators)."""
    rows = shape.batch * shape.queries
    terms: dict[str, Array] = {
        "one": np.ones_like(rows),
        "w": bpe.weight,
        "emb": bpe.embedding,
        "rows": rows,
        "rows_a": rows * bpe.act,
        "rows_kv": rows * bpe.kv,
        "rows_emb": rows * bpe.embedding,
        "batch": shape.batch,
        "batch_a": shape.batch * bpe.act,
        **(query_terms(c, bpe, rows) if attention else {}),
        **shape.shares,
    }
    moe = model.record.moe
    if moe is not None:
        # 1 - (1 - k/E)^rows, as one exp (a power of two arrays is several times slower)
        touched = -np.expm1(shape.routed_rows * np.log1p(-moe.experts_per_token / moe.num_experts))
        terms |= {"touched": touched, "touched_w": touched * bpe.weight}
    for group, count, span in (
        ("full", model.num_full_attention_layers, np.inf),
        ("window", model.num_window_layers, window_of(model)),
    ):
        if count and attention:
            terms |= attention_terms(group, c, bpe, shape, span, keys)
    return terms


def attention_terms(
    group: str, c: Candidates, bpe: BytesPerElement, shape: PassShape, span: float, keys: Array | None
) -> dict[str, Array]:
    """Terms of one attention group (span = its window, inf for full attention) in prefill or decode.

    Prefill K/V reads (of the new tokens and of a cached prefix alike) are charged in the activation format."""
    fused = c.flash.astype(np.float64)
    if keys is None:
        work, x_bpe = prefill_work(c.prompt_len, shape.cached, span, c.flash_block_rows), bpe.act
    else:
        # a decode step attends to at most the window and the eviction budget (kept tokens)
        work, x_bpe = decode_work(np.minimum(np.minimum(keys, span), c.kv_budget_tokens)), bpe.kv
    scores = (1.0 - fused) * shape.batch * work.queries * work.keys
    return {
        f"{group}.scores": scores,
        f"{group}.scores_a": scores * bpe.act,
        f"{group}.keys_x": (1.0 - fused) * shape.batch * work.keys * x_bpe,
        f"{group}.pairs": fused * shape.batch * work.pairs,
        f"{group}.reads_x": fused * shape.batch * work.fused_kv_reads * x_bpe,
    }


def query_terms(c: Candidates, bpe: BytesPerElement, rows: Array) -> dict[str, Array]:
    """Query/output activation terms of fused and unfused attention (independent of the number of keys)."""
    fused = c.flash.astype(np.float64)
    return {"fused_q_a": fused * rows * bpe.act, "unfused_q_a": (1.0 - fused) * rows * bpe.act}

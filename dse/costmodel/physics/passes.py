"""The quantities of a pass (``operators.Pass``) for candidates: prefill of the prompt, or one decode step.

Given one candidate (floats) or many (arrays), these give the values every operator formula is evaluated
at; the fast engine uses them as the values of its symbols."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from dse import units
from dse.costmodel.candidates import Candidates
from dse.costmodel.physics.architecture import Architecture
from dse.costmodel.physics.attention import geometry, kv_reused_on_chip, prefill_work
from dse.costmodel.physics.kvcache import attended_keys
from dse.costmodel.physics.moe import experts_touched_fraction
from dse.costmodel.physics.operators import AttentionWork, Pass
from dse.costmodel.physics.parallel import Layout, kv_share, shares


def _pass(
    arch: Architecture, c: Candidates, lay: Layout, T: Any, x: Any, work: dict[str, AttentionWork[Any]], *, decode: bool
) -> Pass[Any]:
    """A pass of T new tokens per sequence for the b_g sequences of a device's attention group; the experts
    touched follow the routing of the whole stage's micro-batch, b_m T rows."""
    moe = arch.moe
    u = 0.0 if moe is None else experts_touched_fraction(lay.micro_batch * T, moe.experts_per_token, moe.num_experts)
    s = shares(arch, lay, c.tp, c.ep, decode=decode)
    return Pass(
        R=lay.group_batch * T,
        B=lay.group_batch,
        w=units.bits_to_bytes(c.weight_bits),
        e=units.bits_to_bytes(c.embedding_bits),
        a=units.bits_to_bytes(c.act_bits),
        kv=units.bits_to_bytes(c.kv_bits),
        x=x,
        u=u,
        s_tp=s.s_tp,
        s_kv=s.s_kv,
        s_ew=s.s_ew,
        s_ef=s.s_ef,
        s_ea=s.s_ea,
        attention=work,
        decode=decode,
    )


ATTENTION_BITS = 16.0
"""Width of prefill attention's operands (Q, K, V, O) at least: attention runs at the 16-bit peak, and the
projections feeding it write 16-bit outputs whatever their input format (FlashAttention-2 and the engines'
fused context kernels run in fp16/bf16; no engine runs FP4 attention). A wider activation format (fp32)
keeps its width."""


def prefill_pass(arch: Architecture, c: Candidates, lay: Layout, cached: Any) -> Pass[Any]:
    """Prefill of the prompt's last P - c tokens (c from the prefix cache), all of a group's sequences
    together; attention's operands (K/V: the fresh projections and the cached prefix alike) are read at
    ``max(activation bits, ATTENTION_BITS)``, the width it computes in."""
    x = units.bits_to_bytes(np.maximum(c.act_bits, ATTENTION_BITS))
    reused = kv_reused_on_chip(c.prompt_len, geometry(arch, decode=False).e_key, x, c.onchip_memory_bytes)
    work = {
        group: AttentionWork(*prefill_work(c.prompt_len, cached, span, c.flash_block_rows, reused))
        for group, _, span in arch.attention_groups
    }
    return _pass(arch, c, lay, c.prompt_len - cached, x, work, decode=False)


def decode_pass(
    arch: Architecture, c: Candidates, lay: Layout, context: Any, prefill: Pass[Any] | None = None
) -> Pass[Any]:
    """One decode step: each sequence's new token attends to ``context`` keys, capped per layer group at its
    span and the eviction budget (``kvcache.attended_keys``), read from the cache. Given the same candidates'
    ``prefill`` pass, its bytes per element and its shares but the KV heads' (which follow decode's
    attention geometry) are the step's too, and are not computed again."""
    work = {}
    for group, _, span in arch.attention_groups:
        keys = attended_keys(context, span, c.kv_budget_tokens)
        work[group] = AttentionWork(keys, keys, keys)
    if prefill is None:
        return _pass(arch, c, lay, 1.0, units.bits_to_bytes(c.kv_bits), work, decode=True)
    moe = arch.moe
    u = 0.0 if moe is None else experts_touched_fraction(lay.micro_batch, moe.experts_per_token, moe.num_experts)
    s_kv = kv_share(arch, c.tp, decode=True)
    return replace(prefill, R=lay.group_batch, x=prefill.kv, u=u, s_kv=s_kv, attention=work, decode=True)

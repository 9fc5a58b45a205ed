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
from dse.costmodel.physics.attention import geometry, kv_reused_on_chip, prefill_work, prompt_spread_work
from dse.costmodel.physics.kvcache import attended_keys
from dse.costmodel.physics.moe import device_experts_touched, experts_touched_fraction
from dse.costmodel.physics.operators import PARAMETER_BYTES, AttentionWork, Pass
from dse.costmodel.physics.parallel import Layout, kv_share, pass_imbalance, shares


def _pass(
    arch: Architecture, c: Candidates, lay: Layout, T: Any, x: Any, work: dict[str, AttentionWork[Any]], *, decode: bool
) -> Pass[Any]:
    """A pass of T new tokens per sequence for the b_g sequences of a device's attention group; the experts
    touched follow the routing of the whole stage's micro-batch, b_m T rows (``routed``)."""
    u, rho = routed(arch, lay, c.ep, T)
    s = shares(arch, lay, c.tp, c.ep, rho, decode=decode)
    w = units.bits_to_bytes(c.weight_bits)
    return Pass(
        R=lay.group_batch * T,
        B=lay.group_batch,
        w=w,
        e=units.bits_to_bytes(c.embedding_bits),
        w_attn=np.where(c.attention_16bit, PARAMETER_BYTES, w),
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


def routed(arch: Architecture, lay: Layout, ep: Any, T: Any) -> tuple[Any, Any]:
    """(u, ρ) of a pass of T new tokens per sequence on the busiest expert-parallel device: ρ its routed
    copies over the mean (``parallel.pass_imbalance``), u the fraction of its experts they touch. Its
    ρ b_m T k / ep copies are taken as routed uniformly over its E / ep experts, which leaves each untouched
    with probability (1 − ep/E)^(ρ b_m T k / ep) (``moe.device_experts_touched``): an upper estimate where a
    router's skew piles copies onto hot experts, exact for chance's share of ρ (copies of one token to one
    device excepted: they are distinct), and growing with the tokens, as the copies do (ρ T grows with T).
    And a token's copies on one device go to distinct experts, so one token's ρ_1 k / ep copies (ρ_1 at one
    row, the largest ρ) touch at least that many of its experts: u >= ρ_1 k / E, a floor that holds at any
    number of rows, as the experts touched only grow with them. With ep = 1, ρ = 1 and u is the model-wide
    fraction, 1 − (1 − k/E)^(b_m T) (``moe.experts_touched_fraction``). No experts: (0, ρ_s)."""
    rho = pass_imbalance(arch, lay, ep, T)
    moe = arch.moe
    if moe is None:
        return 0.0, rho
    k, E, rows = moe.experts_per_token, moe.num_experts, lay.micro_batch * T
    one = pass_imbalance(arch, lay, ep, 1.0 / lay.micro_batch)
    spread = np.where(ep > 1, device_experts_touched(rho * rows * k / ep, E / ep), experts_touched_fraction(rows, k, E))
    return np.maximum(spread, np.minimum(one * k / E, 1.0)), rho


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
    ``prefill`` pass, its bytes per element and its tensor-parallel shares are the step's too; the KV heads'
    share (decode's attention geometry) and the routed experts' (the step's own imbalance, ``routed``) are
    computed again."""
    work = {}
    for group, _, span in arch.attention_groups:
        keys = attended_keys(context, span, c.kv_budget_tokens)
        work[group] = AttentionWork(keys, keys, keys)
    if prefill is None:
        return _pass(arch, c, lay, 1.0, units.bits_to_bytes(c.kv_bits), work, decode=True)
    u, rho = routed(arch, lay, c.ep, 1.0)
    s = shares(arch, lay, c.tp, c.ep, rho, decode=True)
    shared = replace(prefill, R=lay.group_batch, x=prefill.kv, u=u, s_kv=s.s_kv, s_ef=s.s_ef, s_ea=s.s_ea)
    return replace(shared, attention=work, decode=True)


def mean_attended_keys(P: Any, G: Any, span: Any, budget: Any) -> Any:
    """The keys a decoding sequence attends on average over its positions j = 1..G - 1 (K_j = P + j, capped
    at ``min(span, budget)``; one step at P + 1 when G = 1): what the in-flight sequences of a continuous
    batch, spread evenly over their generation, attend per step."""
    n = np.maximum(G - 1.0, 1.0)
    cap = np.minimum(span, budget)
    uncapped = np.clip(cap - P, 0.0, n)  # positions below the cap: P + 1 .. P + uncapped
    total = uncapped * P + uncapped * (uncapped + 1.0) / 2.0
    if np.any(np.isfinite(cap)):
        total = total + (n - uncapped) * np.where(np.isfinite(cap), cap, 0.0)
    return total / n


def chunk_prefix_reads(P: Any, s: Any, W: Any) -> Any:
    """Key tokens a prompt's chunks re-read from the KV cache: chunk i (0-based, of s chunks of k = P / s)
    attends the i k tokens before it (at most W), written by earlier chunks: Σ_i min(i k, W)."""
    k = P / s
    below = np.minimum(np.floor(W / k), s - 1.0) if np.any(np.isfinite(W)) else s - 1.0  # chunks with i k <= W
    below = np.clip(below, 0.0, s - 1.0)
    return k * below * (below + 1.0) / 2.0 + (s - 1.0 - below) * np.where(np.isfinite(W), W, 0.0)


def mixed_pass(
    arch: Architecture,
    c: Candidates,
    lay: Layout,
    decoding: Any,
    prompts: Any,
    s: Any,
    cached: Any,
    tokens: Any = 1.0,
) -> Pass[Any]:
    """One continuous-batching step on a device of the busiest stage (``continuous``): ``decoding`` sequences' decode
    tokens beside ``prompts`` prompts' worth of new tokens (1/s: one chunk of a prompt in s; c of a prompt's P
    tokens come from the prefix cache), run as one pass: the linear layers on every row (weights read once for
    all), and one attention kernel over both kinds of query (vLLM runs a mixed batch through one variable-length
    attention kernel).

    Attention's work, per pass: each decoding sequence's token attends its mean keys (``mean_attended_keys``,
    shifted by ``context_spread`` where lengths vary), read from the cache at the KV width; the chunk computes
    1/s of the prompt's causal pairs and reads 1/s of its keys plus the prefix its chunks re-read (and
    ``prompts`` times those when whole prompts share the step) (``chunk_prefix_reads``). The pass is
    prefill-shaped (its geometry, the chunk's operands at the attention width); the decode part's pairs and
    reads are scaled by decode's FLOPs per pair and cache bytes per key over prefill's (MLA: absorbed against
    explicit heads), so their totals are decode's. Rows per attention group: the decoding sequences of one
    micro-batch and group, plus the chunk. With ``tokens`` > 1 (speculative decoding's verification,
    ``speculative.verify_step_s``) each decoding sequence brings that many tokens: rows, logits and attention
    pairs scale with them (the new tokens see each other causally), and a sequence's cache is read once for all
    its queries. The experts are routed the stage's rows: every group's decode rows and the chunk once."""
    new = c.prompt_len - cached
    decoders = np.ceil(decoding / (lay.micro_batches * lay.attention_dp))
    rows_decoding = decoders * tokens
    rows = rows_decoding + new * prompts
    sequences = rows_decoding + prompts
    x = units.bits_to_bytes(np.maximum(c.act_bits, ATTENTION_BITS))
    pre, dec = geometry(arch, decode=False), geometry(arch, decode=True)
    per_pair = (2.0 * dec.d_qk + 2.0 * dec.d_v + 5.0) / (2.0 * pre.d_qk + 2.0 * pre.d_v + 5.0)
    # a decoding sequence's cache bytes per key on the device over the chunk's: the KV heads each pass holds
    # (MLA's decode latent is replicated on every tp rank where prefill's explicit heads are split)
    per_key = (dec.n_kv * kv_share(arch, c.tp, decode=True) * dec.e_key * units.bits_to_bytes(c.kv_bits)) / (
        pre.n_kv * kv_share(arch, c.tp, decode=False) * pre.e_key * x
    )
    reused = kv_reused_on_chip(c.prompt_len, pre.e_key, x, c.onchip_memory_bytes)
    work = {}
    spread = np.any(c.prompt_variance > 0)  # prompts that vary: quadratic work at E[P²] (§19)
    for group, _, span in arch.attention_groups:
        keys, pairs, reads = prefill_work(c.prompt_len, cached, span, c.flash_block_rows, reused)
        if spread and not np.isfinite(span):
            more = prompt_spread_work(c.prompt_len, cached, c.prompt_variance, c.flash_block_rows, reused)
            keys, pairs, reads = keys + more[0], pairs + more[1], reads + more[2]
        reads = reads + chunk_prefix_reads(c.prompt_len, s, np.minimum(span, c.kv_budget_tokens))
        mean_keys = mean_attended_keys(c.prompt_len + c.context_spread, c.gen_len, span, c.kv_budget_tokens)
        attended = rows_decoding * (mean_keys + (tokens - 1.0) / 2.0)  # the new tokens see each other causally
        cache_reads = decoders * mean_keys  # a sequence's queries share one read of its cache
        work[group] = AttentionWork(
            (attended + new * keys * prompts) / rows,
            (attended * per_pair + pairs * prompts) / sequences,
            reads * prompts / sequences,
            cache_reads * per_key / sequences,  # read from the cache: decode's bytes in the chunk's units
        )
    # the experts see every attention group's decode rows and the chunk once: the stage routes dp x decoders
    # x tokens + the chunk, not dp x the busiest group's rows (which hold the chunk) as a decode step's
    # equal groups would (``parallel.shares``, ``routed``: b_m T rows)
    stage = decoders * lay.attention_dp * tokens + new * prompts
    experts = replace(lay, micro_batch=np.where(lay.attention_dp > 1, stage * lay.group_batch / rows, lay.micro_batch))
    return replace(_pass(arch, c, experts, rows / lay.group_batch, x, work, decode=False), B=sequences)

"""The model as the cost model sees it: shapes and counts, plain numbers (no catalog records).

The evaluation layer builds an ``Architecture`` from a catalog model once; every formula reads it. Field names
follow Hugging Face ``config.json``; the paper's symbols (docs/cost-model.md, Notation) are given beside them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

NormKind = Literal["rmsnorm", "layernorm"]
AttentionBias = Literal["none", "qkv", "all"]


@dataclass(frozen=True)
class MoEShape:
    """Routed experts (top-k of E) and always-on shared experts of a mixture-of-experts FFN."""

    num_experts: int
    """E."""
    experts_per_token: int
    """k."""
    expert_intermediate_size: int
    """I_e: the width of one routed expert."""
    shared_expert_intermediate_size: int
    """I_s: the total width of all shared experts (0: none)."""
    expert_bias: bool
    router_bias: bool


@dataclass(frozen=True)
class MLAShape:
    """Multi-head latent attention (DeepSeek-V2, arXiv 2405.04434 §2.1)."""

    q_lora_rank: int
    """r_q (0: no low-rank query path)."""
    kv_lora_rank: int
    """r_kv."""
    qk_nope_head_dim: int
    """d_n."""
    qk_rope_head_dim: int
    """d_r."""
    v_head_dim: int
    """d_v."""


@dataclass(frozen=True)
class Architecture:
    """A decoder-only LLM: sizes are elements (not bytes), counts are layers."""

    hidden_size: int
    """h."""
    num_layers: int
    """L."""
    num_attention_heads: int
    """n_q."""
    num_key_value_heads: int
    """n_kv."""
    head_dim: int
    """d."""
    intermediate_size: int
    """I: the dense FFN width (0 when no layer has a dense FFN)."""
    vocab_size: int
    """V."""
    max_position_embeddings: int
    num_moe_layers: int
    """L_moe (the other L - L_moe layers have a dense FFN)."""
    num_window_layers: int
    """L_win: layers with sliding-window attention (the other L - L_win attend to every key)."""
    sliding_window: float
    """W: the window span in tokens (inf without windowed layers)."""
    kv_elements_per_token_per_layer: int
    """Cached elements per token per layer: 2 n_kv d, or r_kv + d_r for MLA."""
    tie_word_embeddings: bool = False
    ffn_gated: bool = True
    """Gated FFN (SwiGLU/GeGLU): M = 2 weight matrices before the activation, else 1."""
    norm: NormKind = "rmsnorm"
    norms_per_layer: int = 2
    parallel_attention: bool = False
    """Attention and FFN read the same norm output and are summed (GPT-J, Falcon): one residual add."""
    attention_bias: AttentionBias = "none"
    mlp_bias: bool = False
    lm_head_bias: bool = False
    qk_norm: bool = False
    attention_sinks: bool = False
    learned_position_embeddings: int = 0
    """Rows of a learned position table (0: none)."""
    moe: MoEShape | None = None
    mla: MLAShape | None = None

    @property
    def num_dense_ffn_layers(self) -> int:
        """L_dense = L - L_moe."""
        return self.num_layers - self.num_moe_layers

    @property
    def num_full_attention_layers(self) -> int:
        """L_full = L - L_win."""
        return self.num_layers - self.num_window_layers

    @property
    def attention_groups(self) -> tuple[tuple[str, int, float], ...]:
        """(group, layers, span in tokens) of each kind of attention layer present: ``full`` (span inf) and
        ``window`` (span W)."""
        groups = (
            ("full", self.num_full_attention_layers, math.inf),
            ("window", self.num_window_layers, self.sliding_window),
        )
        return tuple(g for g in groups if g[1])

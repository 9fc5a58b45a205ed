"""Per-family mappings from a Hugging Face ``config.json`` to ``ModelRecord`` fields.

One function per ``model_type`` family, following the ``transformers`` configuration classes; ``FAMILIES`` maps
``model_type`` to its function, and ``generic`` reads an unknown family with the Llama-style keys.
"""

from __future__ import annotations

from collections.abc import Callable

from dse.catalog._hf_reader import (
    Fields,
    Reader,
    activation,
    core_fields,
    layer_pattern,
    layers_of_type,
    llama_ffn_fields,
    window_fields,
    window_from_layer_types,
)
from dse.catalog._model import LayerSet


def _llama(r: Reader) -> Fields:
    """Llama 2/3/3.1/3.3 (LlamaConfig). No sliding window."""
    return core_fields(r) | llama_ffn_fields(r)


def _mistral(r: Reader) -> Fields:
    """Mistral: ``sliding_window`` (when not null) applies to every layer (MistralConfig)."""
    fields = core_fields(r) | llama_ffn_fields(r)
    return fields | window_fields(r.integer("sliding_window", None), LayerSet())


def _phi3(r: Reader) -> Fields:
    """Phi-3: Llama-style; ``sliding_window`` (when set) on every layer. Fused qkv/gate_up do not change sizes."""
    return _mistral(r)


def _mixtral(r: Reader) -> Fields:
    """Mixtral: every layer MoE; HF ``intermediate_size`` is the per-expert width (no dense FFN)."""
    fields = core_fields(r) | llama_ffn_fields(r)
    fields["moe"] = {
        "num_experts": r.integer("num_local_experts"),
        "experts_per_token": r.integer("num_experts_per_tok"),
        "expert_intermediate_size": fields.pop("intermediate_size"),
    }
    return fields | window_fields(r.integer("sliding_window", None), LayerSet())


def _qwen_window(r: Reader, n: int) -> Fields:
    """Qwen2/3: sliding window only if ``use_sliding_window``; layers i >= ``max_window_layers`` (Qwen2Config)."""
    if not r.boolean("use_sliding_window", False):
        return {}
    if r.has("layer_types"):
        return window_from_layer_types(r, n)
    start = r.integer("max_window_layers", 28, minimum=0)
    return window_fields(r.integer("sliding_window"), LayerSet(start=start) if start < n else None)


def _qwen2(r: Reader) -> Fields:
    """Qwen2/2.5: bias on the q, k, v projections only (hard-wired in Qwen2Attention)."""
    fields = core_fields(r) | llama_ffn_fields(r) | {"attention_bias": "qkv"}
    return fields | _qwen_window(r, fields["num_layers"])


def _qwen3(r: Reader) -> Fields:
    """Qwen3 dense: per-head RMSNorm on q and k; ``attention_bias`` covers q, k, v, o."""
    fields = core_fields(r) | llama_ffn_fields(r) | {"qk_norm": True}
    return fields | _qwen_window(r, fields["num_layers"])


def _qwen_moe_layers(r: Reader, n: int) -> LayerSet | None:
    """MoE iff i not in ``mlp_only_layers`` and (i + 1) % ``decoder_sparse_step`` == 0 (Qwen3MoeSparseMoeBlock)."""
    step = r.integer("decoder_sparse_step", 1)
    dense_only = r.indices("mlp_only_layers", [])
    members = [i not in dense_only and (i + 1) % step == 0 for i in range(n)]
    return layer_pattern(r, "mlp_only_layers", members)


def _qwen_moe(r: Reader) -> Fields:
    """Qwen2-MoE / Qwen3-MoE: ``num_experts`` routed experts of ``moe_intermediate_size``; optional shared expert."""
    fields = _qwen3(r) if r.string("model_type", "") == "qwen3_moe" else _qwen2(r)
    n = fields["num_layers"]
    layers = _qwen_moe_layers(r, n) if r.integer("num_experts", minimum=0) else None
    if layers is None:
        return fields
    shared = r.integer("shared_expert_intermediate_size", 0, minimum=0)
    fields["moe"] = {
        "num_experts": r.integer("num_experts"),
        "experts_per_token": r.integer("num_experts_per_tok"),
        "expert_intermediate_size": r.integer("moe_intermediate_size"),
        "num_shared_experts": 1 if shared else 0,
        "shared_expert_intermediate_size": shared,
        "layers": layers,
    }
    if layers.count(n) == n:
        fields.pop("intermediate_size")  # unused: no dense FFN layers
    return fields


def _mla(r: Reader) -> Fields:
    """DeepSeek MLA ranks; head_dim is the q/k head dim qk_nope + qk_rope (HF ``head_dim`` = rope dim is ignored)."""
    mla = {
        "q_lora_rank": r.integer("q_lora_rank", None),
        "kv_lora_rank": r.integer("kv_lora_rank"),
        "qk_nope_head_dim": r.integer("qk_nope_head_dim"),
        "qk_rope_head_dim": r.integer("qk_rope_head_dim"),
        "v_head_dim": r.integer("v_head_dim"),
    }
    return {"mla": mla, "head_dim": mla["qk_nope_head_dim"] + mla["qk_rope_head_dim"]}


def _deepseek(r: Reader) -> Fields:
    """DeepSeek-V2/V3: MoE iff i >= ``first_k_dense_replace`` and i % ``moe_layer_freq`` == 0 (DeepseekV3DecoderLayer).

    Shared experts: ``n_shared_experts`` x ``moe_intermediate_size`` in total.
    """
    fields = core_fields(r) | llama_ffn_fields(r) | _mla(r)
    expert_width = r.integer("moe_intermediate_size")
    shared = r.integer("n_shared_experts", 0, minimum=0)
    freq = r.integer("moe_layer_freq", 1)
    fields["moe"] = {
        "num_experts": r.integer("n_routed_experts"),
        "experts_per_token": r.integer("num_experts_per_tok"),
        "expert_intermediate_size": expert_width,
        "num_shared_experts": shared,
        "shared_expert_intermediate_size": shared * expert_width,
        "layers": LayerSet(start=r.integer("first_k_dense_replace", 0, minimum=0), period=freq),
    }
    return fields


def _gpt_oss(r: Reader) -> Fields:
    """gpt-oss: every layer MoE (expert width = ``intermediate_size``), biases on attention, experts and router;
    attention sinks; sliding window on the ``layer_types`` == sliding_attention layers (GptOssConfig default:
    even layers)."""
    fields = core_fields(r) | llama_ffn_fields(r) | {"attention_sinks": True, "attention_bias": "all"}
    # The original gpt-oss release also writes "experts_per_token"; transformers uses "num_experts_per_tok".
    legacy = r.has("experts_per_token") and not r.has("num_experts_per_tok")
    top_k = "experts_per_token" if legacy else "num_experts_per_tok"
    fields["moe"] = {
        "num_experts": r.integer("num_local_experts"),
        "experts_per_token": r.integer(top_k),
        "expert_intermediate_size": fields.pop("intermediate_size"),
        "expert_bias": True,
        "router_bias": True,
    }
    n = fields["num_layers"]
    if r.has("layer_types"):
        return fields | window_from_layer_types(r, n)
    return fields | window_fields(r.integer("sliding_window"), LayerSet(period=2, offsets=[0]))


def _gemma(r: Reader, *, vocab: int | None = None, max_pos: int | None = None) -> Fields:
    """Gemma-2/3 shared fields: GeGLU, 4 RMSNorms per layer, tied embeddings (defaults from Gemma3TextConfig)."""
    defaults = {"vocab_size": vocab, "max_position_embeddings": max_pos}
    patched = {k: v for k, v in defaults.items() if v is not None and not r.has(k)}
    rr = Reader({**r.data, **patched}, r.source, r.prefix) if patched else r
    fields = core_fields(rr, tie_default=True)
    return fields | {
        "intermediate_size": r.integer("intermediate_size"),
        "ffn_activation": activation(r, "hidden_activation", "hidden_act", default="gelu_pytorch_tanh"),
        "attention_bias": "all" if r.boolean("attention_bias", False) else "none",
        "norms_per_layer": 4,
    }


def _gemma2(r: Reader) -> Fields:
    """Gemma-2: local (sliding, default 4096) attention on even layers, global on odd (Gemma2 ``not i % 2``)."""
    fields = _gemma(r)
    if r.has("layer_types"):
        return fields | window_from_layer_types(r, fields["num_layers"], default=4096)
    return fields | window_fields(r.integer("sliding_window", 4096), LayerSet(period=2, offsets=[0]))


def _gemma3(r: Reader) -> Fields:
    """Gemma-3 text: QK-norm; layer i global when (i + 1) % ``sliding_window_pattern`` == 0 (default 6), else local.

    Gemma3TextConfig defaults fill keys the released config.json omits: vocab 262208, max_position 131072,
    sliding_window 4096.
    """
    fields = _gemma(r, vocab=262_208, max_pos=131_072) | {"qk_norm": True}
    n = fields["num_layers"]
    if r.has("layer_types"):
        return fields | window_from_layer_types(r, n, default=4096)
    key = "sliding_window_pattern" if r.has("sliding_window_pattern") else "_sliding_window_pattern"
    period = r.integer(key, 6)
    layers = layer_pattern(r, key, [(i + 1) % period != 0 for i in range(n)])
    return fields | window_fields(r.integer("sliding_window", 4096), layers)


def _llama4_moe(r: Reader, n: int) -> Fields:
    """Llama-4: MoE on ``moe_layers`` (default range(step - 1, n, step), step = ``interleave_moe_layer_step``);
    routed and shared expert width = ``intermediate_size``; dense width = ``intermediate_size_mlp``."""
    step = r.integer("interleave_moe_layer_step", 1)
    listed = r.indices("moe_layers", list(range(step - 1, n, step)))
    layers = layer_pattern(r, "moe_layers", [i in listed for i in range(n)])
    width = r.integer("intermediate_size")
    fields: Fields = {}
    if layers is not None:
        fields["moe"] = {
            "num_experts": r.integer("num_local_experts"),
            "experts_per_token": r.integer("num_experts_per_tok"),
            "expert_intermediate_size": width,
            "num_shared_experts": 1,
            "shared_expert_intermediate_size": width,
            "layers": layers,
        }
    if layers is None or layers.count(n) < n:
        fields["intermediate_size"] = r.integer("intermediate_size_mlp")
    return fields


def _llama4_window(r: Reader, n: int) -> Fields:
    """Chunked attention (``attention_chunk_size``) on RoPE layers, modelled as a sliding window of the chunk size.

    RoPE layers: ``no_rope_layers[i]`` truthy (sic, Llama4TextConfig), default (i + 1) % 4 != 0.
    """
    chunk = r.integer("attention_chunk_size", None)
    if chunk is None:
        return {}
    if r.has("layer_types"):
        return window_fields(chunk, layers_of_type(r, n, "chunked_attention"))
    flags = r.array("no_rope_layers", None) or [int((i + 1) % 4 != 0) for i in range(n)]
    if len(flags) != n:
        raise r.error("no_rope_layers", f"expected {n} entries, got {len(flags)}")
    return window_fields(chunk, layer_pattern(r, "no_rope_layers", [bool(f) for f in flags]))


def _llama4(r: Reader) -> Fields:
    """Llama-4 text model. ``use_qk_norm`` is a weightless L2 norm of negligible cost: qk_norm stays false."""
    fields = core_fields(r) | {"ffn_activation": activation(r, "hidden_act")}
    n = fields["num_layers"]
    return fields | _llama4_moe(r, n) | _llama4_window(r, n)


def _gptj(r: Reader) -> Fields:
    """GPT-J: keys n_embd/n_layer/n_head/n_inner (null -> 4 n_embd)/n_positions; parallel block with one
    LayerNorm; non-gated gelu_new MLP with biases; lm_head bias; no attention bias (GPTJConfig)."""
    hidden = r.integer("n_embd")
    heads = r.integer("n_head")
    if hidden % heads:
        raise r.error("n_head", f"n_embd {hidden} is not a multiple of n_head {heads}")
    return {
        "hidden_size": hidden,
        "num_layers": r.integer("n_layer"),
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "head_dim": hidden // heads,
        "intermediate_size": r.integer("n_inner", 4 * hidden),
        "vocab_size": r.integer("vocab_size"),
        "max_position_embeddings": r.integer("n_positions"),
        "tie_word_embeddings": r.boolean("tie_word_embeddings", False),
        "ffn_gated": False,
        "ffn_activation": activation(r, "activation_function", default="gelu_new"),
        "norm": "layernorm",
        "norms_per_layer": 1,
        "parallel_attention": True,
        "mlp_bias": True,
        "lm_head_bias": True,
    }


def _falcon_kv_heads(r: Reader, heads: int) -> int:
    """new_decoder_architecture -> ``num_kv_heads`` (GQA); else ``multi_query`` -> 1; else MHA (FalconConfig)."""
    if r.boolean("new_decoder_architecture", False):
        kv_heads: int = r.integer("num_kv_heads", heads)
        return kv_heads
    return 1 if r.boolean("multi_query", True) else heads


def _falcon_norms(r: Reader) -> int:
    """LayerNorms per block: 2 for the new architecture (ln_attn, ln_mlp) or sequential blocks, else 1."""
    if r.boolean("new_decoder_architecture", False):
        norms: int = r.integer("num_ln_in_parallel_attn", 2)
        return norms
    return 1 if r.boolean("parallel_attn", True) else 2


def _falcon(r: Reader) -> Fields:
    """Falcon: ``ffn_hidden_size`` default 4 x hidden; non-gated GELU; ``bias`` on every linear;
    max_position default 2048; tied embeddings by default (FalconConfig)."""
    hidden = r.integer("hidden_size")
    heads = r.integer("num_attention_heads")
    bias = r.boolean("bias", False)
    new_arch = r.boolean("new_decoder_architecture", False)
    return {
        "hidden_size": hidden,
        "num_layers": r.integer("num_hidden_layers"),
        "num_attention_heads": heads,
        "num_key_value_heads": _falcon_kv_heads(r, heads),
        "head_dim": r.integer("head_dim", hidden // heads),
        "intermediate_size": r.integer("ffn_hidden_size", 4 * hidden),
        "vocab_size": r.integer("vocab_size"),
        "max_position_embeddings": r.integer("max_position_embeddings", 2048),
        "tie_word_embeddings": r.boolean("tie_word_embeddings", True),
        "ffn_gated": False,
        "ffn_activation": activation(r, "activation", default="gelu"),
        "norm": "layernorm",
        "norms_per_layer": _falcon_norms(r),
        "parallel_attention": new_arch or r.boolean("parallel_attn", True),
        "attention_bias": "all" if bias else "none",
        "mlp_bias": bias,
    }


def _opt(r: Reader) -> Fields:
    """OPT: MHA; non-gated ``ffn_dim`` FFN (relu); biases if ``enable_bias`` (default true); learned positions
    with max_position_embeddings + 2 rows (OPTLearnedPositionalEmbedding offset 2); tied embeddings."""
    hidden = r.integer("hidden_size")
    heads = r.integer("num_attention_heads")
    bias = r.boolean("enable_bias", True)
    if hidden % heads:
        raise r.error("num_attention_heads", f"hidden_size {hidden} is not a multiple of {heads} heads")
    max_pos = r.integer("max_position_embeddings")
    return {
        "hidden_size": hidden,
        "num_layers": r.integer("num_hidden_layers"),
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "head_dim": hidden // heads,
        "intermediate_size": r.integer("ffn_dim"),
        "vocab_size": r.integer("vocab_size"),
        "max_position_embeddings": max_pos,
        "tie_word_embeddings": r.boolean("tie_word_embeddings", True),
        "ffn_gated": False,
        "ffn_activation": activation(r, "activation_function", default="relu"),
        "norm": "layernorm",
        "attention_bias": "all" if bias else "none",
        "mlp_bias": bias,
        "learned_position_embeddings": max_pos + 2,
    } | _opt_projection_note(r, hidden)


def _opt_projection_note(r: Reader, hidden: int) -> Fields:
    """Small OPTs (350m) embed at ``word_embed_proj_dim`` < hidden with project_in/out: not modelled, noted."""
    width = r.integer("word_embed_proj_dim", hidden)
    if width == hidden:
        return {}
    return {
        "notes": f"word_embed_proj_dim {width} != hidden_size {hidden}: project_in/out and narrower "
        "embeddings are not modelled (embedding counted at hidden_size)"
    }


def _generic_moe(r: Reader, fields: Fields) -> Fields:
    """Best-effort MoE for unknown families: every layer MoE when an expert count and top-k are present."""
    key = next((k for k in ("num_local_experts", "num_experts", "n_routed_experts") if r.has(k)), None)
    if key is None or not r.has("num_experts_per_tok"):
        return fields
    width = r.integer("moe_intermediate_size") if r.has("moe_intermediate_size") else fields.pop("intermediate_size")
    fields["moe"] = {
        "num_experts": r.integer(key),
        "experts_per_token": r.integer("num_experts_per_tok"),
        "expert_intermediate_size": width,
    }
    fields.pop("intermediate_size", None)
    return fields


def generic(r: Reader) -> Fields:
    """Unknown ``model_type``: Llama-style keys, sliding window on every layer if set, optional all-layer MoE."""
    fields = _generic_moe(r, core_fields(r) | llama_ffn_fields(r))
    return fields | window_fields(r.integer("sliding_window", None), LayerSet())


FAMILIES: dict[str, Callable[[Reader], Fields]] = {
    "llama": _llama,
    "mistral": _mistral,
    "mixtral": _mixtral,
    "qwen2": _qwen2,
    "qwen3": _qwen3,
    "qwen2_moe": _qwen_moe,
    "qwen3_moe": _qwen_moe,
    "deepseek_v2": _deepseek,
    "deepseek_v3": _deepseek,
    "gpt_oss": _gpt_oss,
    "gemma2": _gemma2,
    "gemma3": _gemma3,
    "gemma3_text": _gemma3,
    "phi3": _phi3,
    "gptj": _gptj,
    "falcon": _falcon,
    "opt": _opt,
    "llama4": _llama4,
    "llama4_text": _llama4,
}
NESTED = {"gemma3": "gemma3_text", "llama4": "llama4_text"}
"""Multimodal wrappers whose text model sits under ``text_config``."""

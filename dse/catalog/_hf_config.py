"""Hugging Face ``config.json`` -> ``ModelRecord``, for the model families the catalog covers.

Key names and defaults follow the ``transformers`` configuration classes (``LlamaConfig``, ``MixtralConfig``,
``Qwen2Config``, ``Qwen3MoeConfig``, ``DeepseekV3Config``, ``GptOssConfig``, ``Gemma2Config``, ``Gemma3TextConfig``,
``Phi3Config``, ``GPTJConfig``, ``FalconConfig``, ``OPTConfig``, ``Llama4TextConfig``). Family quirks (what
``intermediate_size`` means, which layers are MoE or sliding-window) are described in ``models/*.yaml`` notes and
in the reference notes the catalog was built from. An unknown ``model_type`` is read with the Llama-style keys.

Every missing key or value of the wrong type raises ``InputError`` naming the file and the key.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from pydantic import ValidationError

from dse.catalog._model import LayerSet, ModelRecord
from dse.errors import InputError

Fields = dict[str, Any]
_MISSING: Any = object()

_ACTIVATIONS = {
    "silu": "silu",
    "swish": "silu",
    "swiglu": "silu",
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu_tanh": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "relu": "relu",
}
"""HF ``hidden_act`` names -> our activation (``gelu_new``/``gelu_pytorch_tanh`` are the tanh approximation)."""


@dataclass(frozen=True)
class _Reader:
    """Typed access to one (possibly nested) config mapping; errors name the file and the dotted key."""

    data: Mapping[str, Any]
    source: str
    prefix: str = ""

    def error(self, key: str, message: str) -> InputError:
        """An ``InputError`` for ``key`` of this mapping."""
        return InputError(message, source=self.source, field=self.prefix + key)

    def has(self, key: str) -> bool:
        """True when ``key`` is present and not null."""
        return self.data.get(key) is not None

    def _get(self, key: str, default: Any) -> tuple[Any, bool]:
        """(value, found): ``default`` when absent or null; a required key (no default) must be present."""
        value = self.data.get(key)
        if value is not None:
            return value, True
        if default is _MISSING:
            raise self.error(key, "required key is missing (or null)")
        return default, False

    def integer(self, key: str, default: Any = _MISSING, *, minimum: int = 1) -> Any:
        """An integer >= ``minimum`` (JSON booleans rejected); ``default`` when absent or null."""
        value, found = self._get(key, default)
        if found and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.error(key, f"expected an integer, got {type(value).__name__} {value!r}")
        if found and value < minimum:
            raise self.error(key, f"expected an integer >= {minimum}, got {value}")
        return value

    def boolean(self, key: str, default: Any = _MISSING) -> Any:
        """A JSON boolean; ``default`` when absent or null."""
        value, found = self._get(key, default)
        if found and not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {type(value).__name__} {value!r}")
        return value

    def string(self, key: str, default: Any = _MISSING) -> Any:
        """A string; ``default`` when absent or null."""
        value, found = self._get(key, default)
        if found and not isinstance(value, str):
            raise self.error(key, f"expected a string, got {type(value).__name__} {value!r}")
        return value

    def array(self, key: str, default: Any = _MISSING) -> Any:
        """A JSON array; ``default`` when absent or null."""
        value, found = self._get(key, default)
        if found and not isinstance(value, list):
            raise self.error(key, f"expected a list, got {type(value).__name__} {value!r}")
        return value

    def indices(self, key: str, default: Any = _MISSING) -> set[int]:
        """A JSON array of non-negative layer indices, as a set."""
        values = self.array(key, default)
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
            raise self.error(key, f"expected a list of layer indices (integers >= 0), got {values!r}")
        return set(values)

    def nested(self, key: str) -> _Reader:
        """A reader for the sub-object ``key`` (e.g. ``text_config``)."""
        value = self.data.get(key)
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected an object, got {type(value).__name__}")
        return _Reader(value, self.source, f"{self.prefix}{key}.")


# --- layer patterns -----------------------------------------------------------------------------------------------


def layer_set_from_members(members: Sequence[bool]) -> LayerSet | None:
    """The smallest ``LayerSet`` whose members are exactly the True layers; None when there are none.

    A pattern counts as periodic only when its period repeats at least twice over the layers it covers;
    otherwise this raises ``ValueError`` (the caller turns it into an ``InputError``).
    """
    n = len(members)
    first = next((i for i, m in enumerate(members) if m), None)
    if first is None:
        return None
    for period in range(1, n + 1):
        for start in (0, first):
            if period > 1 and 2 * period > n - start:
                continue
            offsets = sorted({i % period for i in range(start, n) if members[i]})
            if all(members[i] == (i >= start and i % period in offsets) for i in range(n)):
                return LayerSet(start=start, period=period, offsets=offsets)
    raise ValueError("the layer pattern is not periodic")


def _pattern(r: _Reader, key: str, members: Sequence[bool]) -> LayerSet | None:
    """``layer_set_from_members`` with errors reported against ``key``."""
    try:
        return layer_set_from_members(members)
    except ValueError as exc:
        raise r.error(key, f"{exc}; expected a repeating pattern (start, period, offsets)") from None


def _layer_types(r: _Reader, num_layers: int, wanted: str) -> LayerSet | None:
    """Layers whose ``layer_types`` entry equals ``wanted`` (e.g. ``sliding_attention``)."""
    types = r.array("layer_types")
    known = {"sliding_attention", "full_attention", "chunked_attention"}
    if len(types) != num_layers or any(t not in known for t in types):
        raise r.error("layer_types", f"expected {num_layers} entries from {sorted(known)}, got {types!r}")
    return _pattern(r, "layer_types", [t == wanted for t in types])


def _window(window: int | None, layers: LayerSet | None) -> Fields:
    """``sliding_window`` fields: both set, or neither."""
    if window is None or layers is None:
        return {}
    return {"sliding_window": window, "sliding_window_layers": layers}


def _window_from_types(r: _Reader, n: int, key: str = "sliding_window", default: Any = _MISSING) -> Fields:
    """Sliding window read from ``layer_types`` (transformers >= 4.53 writes it for several families)."""
    return _window(r.integer(key, default), _layer_types(r, n, "sliding_attention"))


# --- shared field groups -------------------------------------------------------------------------------------------


def _activation(r: _Reader, *keys: str, default: str = "silu") -> str:
    """Our activation name from the first present key of ``keys`` (HF ``hidden_act`` and friends)."""
    key = next((k for k in keys if r.has(k)), keys[0])
    name = r.string(key, default)
    if name not in _ACTIVATIONS:
        raise r.error(key, f"unsupported activation {name!r}; expected one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


def _core(r: _Reader, *, tie_default: bool = False) -> Fields:
    """Llama-style dimensions. head_dim = ``head_dim`` if present, else hidden_size / num_attention_heads."""
    hidden = r.integer("hidden_size")
    heads = r.integer("num_attention_heads")
    if not r.has("head_dim") and hidden % heads:
        raise r.error("head_dim", f"missing, and hidden_size {hidden} is not a multiple of {heads} heads")
    return {
        "hidden_size": hidden,
        "num_layers": r.integer("num_hidden_layers"),
        "num_attention_heads": heads,
        "num_key_value_heads": r.integer("num_key_value_heads", heads),
        "head_dim": r.integer("head_dim", hidden // heads),
        "vocab_size": r.integer("vocab_size"),
        "max_position_embeddings": r.integer("max_position_embeddings"),
        "tie_word_embeddings": r.boolean("tie_word_embeddings", tie_default),
    }


def _llama_ffn(r: _Reader) -> Fields:
    """Gated FFN with ``intermediate_size``; ``attention_bias`` (q, k, v, o) and ``mlp_bias`` flags (LlamaConfig)."""
    return {
        "intermediate_size": r.integer("intermediate_size"),
        "ffn_activation": _activation(r, "hidden_act"),
        "attention_bias": "all" if r.boolean("attention_bias", False) else "none",
        "mlp_bias": r.boolean("mlp_bias", False),
    }


# --- families -----------------------------------------------------------------------------------------------------


def _llama(r: _Reader) -> Fields:
    """Llama 2/3/3.1/3.3 (LlamaConfig). No sliding window."""
    return _core(r) | _llama_ffn(r)


def _mistral(r: _Reader) -> Fields:
    """Mistral: ``sliding_window`` (when not null) applies to every layer (MistralConfig)."""
    fields = _core(r) | _llama_ffn(r)
    return fields | _window(r.integer("sliding_window", None), LayerSet())


def _phi3(r: _Reader) -> Fields:
    """Phi-3: Llama-style; ``sliding_window`` (when set) on every layer. Fused qkv/gate_up do not change sizes."""
    return _mistral(r)


def _mixtral(r: _Reader) -> Fields:
    """Mixtral: every layer MoE; HF ``intermediate_size`` is the per-expert width (no dense FFN)."""
    fields = _core(r) | _llama_ffn(r)
    fields["moe"] = {
        "num_experts": r.integer("num_local_experts"),
        "experts_per_token": r.integer("num_experts_per_tok"),
        "expert_intermediate_size": fields.pop("intermediate_size"),
    }
    return fields | _window(r.integer("sliding_window", None), LayerSet())


def _qwen_window(r: _Reader, n: int) -> Fields:
    """Qwen2/3: sliding window only if ``use_sliding_window``; layers i >= ``max_window_layers`` (Qwen2Config)."""
    if not r.boolean("use_sliding_window", False):
        return {}
    if r.has("layer_types"):
        return _window_from_types(r, n)
    start = r.integer("max_window_layers", 28, minimum=0)
    return _window(r.integer("sliding_window"), LayerSet(start=start) if start < n else None)


def _qwen2(r: _Reader) -> Fields:
    """Qwen2/2.5: bias on the q, k, v projections only (hard-wired in Qwen2Attention)."""
    fields = _core(r) | _llama_ffn(r) | {"attention_bias": "qkv"}
    return fields | _qwen_window(r, fields["num_layers"])


def _qwen3(r: _Reader) -> Fields:
    """Qwen3 dense: per-head RMSNorm on q and k; ``attention_bias`` covers q, k, v, o."""
    fields = _core(r) | _llama_ffn(r) | {"qk_norm": True}
    return fields | _qwen_window(r, fields["num_layers"])


def _qwen_moe_layers(r: _Reader, n: int) -> LayerSet | None:
    """MoE iff i not in ``mlp_only_layers`` and (i + 1) % ``decoder_sparse_step`` == 0 (Qwen3MoeSparseMoeBlock)."""
    step = r.integer("decoder_sparse_step", 1)
    dense_only = r.indices("mlp_only_layers", [])
    members = [i not in dense_only and (i + 1) % step == 0 for i in range(n)]
    return _pattern(r, "mlp_only_layers", members)


def _qwen_moe(r: _Reader) -> Fields:
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


def _mla(r: _Reader) -> Fields:
    """DeepSeek MLA ranks; head_dim is the q/k head dim qk_nope + qk_rope (HF ``head_dim`` = rope dim is ignored)."""
    mla = {
        "q_lora_rank": r.integer("q_lora_rank", None),
        "kv_lora_rank": r.integer("kv_lora_rank"),
        "qk_nope_head_dim": r.integer("qk_nope_head_dim"),
        "qk_rope_head_dim": r.integer("qk_rope_head_dim"),
        "v_head_dim": r.integer("v_head_dim"),
    }
    return {"mla": mla, "head_dim": mla["qk_nope_head_dim"] + mla["qk_rope_head_dim"]}


def _deepseek(r: _Reader) -> Fields:
    """DeepSeek-V2/V3: MoE iff i >= ``first_k_dense_replace`` and i % ``moe_layer_freq`` == 0 (DeepseekV3DecoderLayer).

    Shared experts: ``n_shared_experts`` x ``moe_intermediate_size`` in total.
    """
    fields = _core(r) | _llama_ffn(r) | _mla(r)
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


def _gpt_oss(r: _Reader) -> Fields:
    """gpt-oss: every layer MoE (expert width = ``intermediate_size``), biases on attention, experts and router;
    attention sinks; sliding window on the ``layer_types`` == sliding_attention layers (GptOssConfig default:
    even layers)."""
    fields = _core(r) | _llama_ffn(r) | {"attention_sinks": True, "attention_bias": "all"}
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
        return fields | _window_from_types(r, n)
    return fields | _window(r.integer("sliding_window"), LayerSet(period=2, offsets=[0]))


def _gemma(r: _Reader, *, vocab: int | None = None, max_pos: int | None = None) -> Fields:
    """Gemma-2/3 shared fields: GeGLU, 4 RMSNorms per layer, tied embeddings (defaults from Gemma3TextConfig)."""
    defaults = {"vocab_size": vocab, "max_position_embeddings": max_pos}
    patched = {k: v for k, v in defaults.items() if v is not None and not r.has(k)}
    rr = _Reader({**r.data, **patched}, r.source, r.prefix) if patched else r
    fields = _core(rr, tie_default=True)
    return fields | {
        "intermediate_size": r.integer("intermediate_size"),
        "ffn_activation": _activation(r, "hidden_activation", "hidden_act", default="gelu_pytorch_tanh"),
        "attention_bias": "all" if r.boolean("attention_bias", False) else "none",
        "norms_per_layer": 4,
    }


def _gemma2(r: _Reader) -> Fields:
    """Gemma-2: local (sliding, default 4096) attention on even layers, global on odd (Gemma2 ``not i % 2``)."""
    fields = _gemma(r)
    if r.has("layer_types"):
        return fields | _window_from_types(r, fields["num_layers"], default=4096)
    return fields | _window(r.integer("sliding_window", 4096), LayerSet(period=2, offsets=[0]))


def _gemma3(r: _Reader) -> Fields:
    """Gemma-3 text: QK-norm; layer i global when (i + 1) % ``sliding_window_pattern`` == 0 (default 6), else local.

    Gemma3TextConfig defaults fill keys the released config.json omits: vocab 262208, max_position 131072,
    sliding_window 4096.
    """
    fields = _gemma(r, vocab=262_208, max_pos=131_072) | {"qk_norm": True}
    n = fields["num_layers"]
    if r.has("layer_types"):
        return fields | _window_from_types(r, n, default=4096)
    key = "sliding_window_pattern" if r.has("sliding_window_pattern") else "_sliding_window_pattern"
    period = r.integer(key, 6)
    layers = _pattern(r, key, [(i + 1) % period != 0 for i in range(n)])
    return fields | _window(r.integer("sliding_window", 4096), layers)


def _llama4_moe(r: _Reader, n: int) -> Fields:
    """Llama-4: MoE on ``moe_layers`` (default range(step - 1, n, step), step = ``interleave_moe_layer_step``);
    routed and shared expert width = ``intermediate_size``; dense width = ``intermediate_size_mlp``."""
    step = r.integer("interleave_moe_layer_step", 1)
    listed = r.indices("moe_layers", list(range(step - 1, n, step)))
    layers = _pattern(r, "moe_layers", [i in listed for i in range(n)])
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


def _llama4_window(r: _Reader, n: int) -> Fields:
    """Chunked attention (``attention_chunk_size``) on RoPE layers, modelled as a sliding window of the chunk size.

    RoPE layers: ``no_rope_layers[i]`` truthy (sic, Llama4TextConfig), default (i + 1) % 4 != 0.
    """
    chunk = r.integer("attention_chunk_size", None)
    if chunk is None:
        return {}
    if r.has("layer_types"):
        return _window(chunk, _layer_types(r, n, "chunked_attention"))
    flags = r.array("no_rope_layers", None) or [int((i + 1) % 4 != 0) for i in range(n)]
    if len(flags) != n:
        raise r.error("no_rope_layers", f"expected {n} entries, got {len(flags)}")
    return _window(chunk, _pattern(r, "no_rope_layers", [bool(f) for f in flags]))


def _llama4(r: _Reader) -> Fields:
    """Llama-4 text model. ``use_qk_norm`` is a weightless L2 norm of negligible cost: qk_norm stays false."""
    fields = _core(r) | {"ffn_activation": _activation(r, "hidden_act")}
    n = fields["num_layers"]
    return fields | _llama4_moe(r, n) | _llama4_window(r, n)


def _gptj(r: _Reader) -> Fields:
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
        "ffn_activation": _activation(r, "activation_function", default="gelu_new"),
        "norm": "layernorm",
        "norms_per_layer": 1,
        "parallel_attention": True,
        "mlp_bias": True,
        "lm_head_bias": True,
    }


def _falcon_kv_heads(r: _Reader, heads: int) -> int:
    """new_decoder_architecture -> ``num_kv_heads`` (GQA); else ``multi_query`` -> 1; else MHA (FalconConfig)."""
    if r.boolean("new_decoder_architecture", False):
        kv_heads: int = r.integer("num_kv_heads", heads)
        return kv_heads
    return 1 if r.boolean("multi_query", True) else heads


def _falcon_norms(r: _Reader) -> int:
    """LayerNorms per block: 2 for the new architecture (ln_attn, ln_mlp) or sequential blocks, else 1."""
    if r.boolean("new_decoder_architecture", False):
        norms: int = r.integer("num_ln_in_parallel_attn", 2)
        return norms
    return 1 if r.boolean("parallel_attn", True) else 2


def _falcon(r: _Reader) -> Fields:
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
        "ffn_activation": _activation(r, "activation", default="gelu"),
        "norm": "layernorm",
        "norms_per_layer": _falcon_norms(r),
        "parallel_attention": new_arch or r.boolean("parallel_attn", True),
        "attention_bias": "all" if bias else "none",
        "mlp_bias": bias,
    }


def _opt(r: _Reader) -> Fields:
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
        "ffn_activation": _activation(r, "activation_function", default="relu"),
        "norm": "layernorm",
        "attention_bias": "all" if bias else "none",
        "mlp_bias": bias,
        "learned_position_embeddings": max_pos + 2,
    } | _opt_projection_note(r, hidden)


def _opt_projection_note(r: _Reader, hidden: int) -> Fields:
    """Small OPTs (350m) embed at ``word_embed_proj_dim`` < hidden with project_in/out: not modelled, noted."""
    width = r.integer("word_embed_proj_dim", hidden)
    if width == hidden:
        return {}
    return {
        "notes": f"word_embed_proj_dim {width} != hidden_size {hidden}: project_in/out and narrower "
        "embeddings are not modelled (embedding counted at hidden_size)"
    }


def _generic_moe(r: _Reader, fields: Fields) -> Fields:
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


def _generic(r: _Reader) -> Fields:
    """Unknown ``model_type``: Llama-style keys, sliding window on every layer if set, optional all-layer MoE."""
    fields = _generic_moe(r, _core(r) | _llama_ffn(r))
    return fields | _window(r.integer("sliding_window", None), LayerSet())


_FAMILIES: dict[str, Callable[[_Reader], Fields]] = {
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
_NESTED = {"gemma3": "gemma3_text", "llama4": "llama4_text"}
"""Multimodal wrappers whose text model sits under ``text_config``."""


# --- identity and entry point --------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    """Lowercase id with only [a-z0-9._-], starting with a letter or digit."""
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).lstrip("._-").rstrip("-")


def _identity(r: _Reader, model_type: str) -> Fields:
    """id/name from ``_name_or_path`` (last path part) or the file name; ``config.json`` uses its folder name."""
    name_or_path = r.string("_name_or_path", "")
    path = PurePath(r.source)
    stem = path.parent.name if path.stem == "config" and path.parent.name else path.stem
    name = PurePath(name_or_path).name or stem
    ident = _slug(name)
    if not ident:
        raise r.error("_name_or_path", f"cannot derive a model id from {name!r} or the file name")
    looks_like_hub = bool(re.fullmatch(r"[\w.-]+/[\w.-]+", name_or_path))
    return {
        "id": ident,
        "name": name,
        "hf_name": name_or_path if looks_like_hub else None,
        "family": model_type or None,
    }


def _provenance(source: str, model_type: str) -> Fields:
    """Read from the file today; an unknown model_type is flagged in the note."""
    note = "read from the file"
    if model_type not in _FAMILIES:
        note += f"; unknown model_type {model_type!r} read with Llama-style keys"
    return {"source": source, "as_of": datetime.date.today().isoformat(), "confidence": "verified", "note": note}


def _validated(fields: Fields, source: str) -> ModelRecord:
    """``ModelRecord.model_validate`` with schema violations reported as ``InputError``."""
    try:
        return ModelRecord.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors())
        raise InputError(f"config does not map to a valid model: {problems}", source=source, field=field) from None


def model_record_from_hf_config(config: dict[str, Any], *, source: str) -> ModelRecord:
    """Map a Hugging Face ``config.json`` (parsed) to a ``ModelRecord``; ``source`` is the file path.

    Raises ``InputError`` (with ``source`` and ``field``) for a missing key, a wrong type or an unmappable layout.
    """
    if not isinstance(config, Mapping):
        raise InputError("expected a JSON object (a Hugging Face config.json)", source=source)
    top = _Reader(config, source)
    model_type = top.string("model_type", "")
    text = top.nested("text_config") if model_type in _NESTED or top.has("text_config") else top
    if "tie_word_embeddings" in config and "tie_word_embeddings" not in text.data:
        text = _Reader({**text.data, "tie_word_embeddings": config["tie_word_embeddings"]}, source, text.prefix)
    if model_type not in _FAMILIES and text is not top:
        model_type = text.string("model_type", model_type)
    family = _FAMILIES.get(model_type, _generic)
    fields = family(text) | _identity(top, model_type)
    fields["provenance"] = _provenance(source, model_type)
    return _validated(fields, source)

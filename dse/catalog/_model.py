"""LLM architectures: the YAML schema of ``models/*.yaml`` and the derived ``ModelSpec``.

Field names follow Hugging Face ``config.json`` where one exists. Derived quantities (layer counts by kind,
KV elements per token) are computed once here, never again in the cost model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from dse.catalog._provenance import Provenance

_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

Activation = Literal["silu", "gelu", "gelu_tanh", "relu"]
Norm = Literal["rmsnorm", "layernorm"]
AttentionBias = Literal["none", "qkv", "all"]


class LayerSet(BaseModel):
    """Which decoder layers (0-based index i) belong to a set: ``i >= start and i % period in offsets``."""

    model_config = _STRICT

    start: int = Field(default=0, ge=0)
    period: PositiveInt = 1
    offsets: list[int] = Field(default=[0], min_length=1)

    @model_validator(mode="after")
    def _offsets_in_period(self) -> LayerSet:
        if any(not 0 <= o < self.period for o in self.offsets):
            raise ValueError(f"offsets must lie in [0, period={self.period})")
        return self

    def count(self, num_layers: int) -> int:
        """How many of ``num_layers`` layers are members."""
        members = set(self.offsets)
        return sum(1 for i in range(self.start, num_layers) if i % self.period in members)


class MoERecord(BaseModel):
    """Mixture-of-experts FFN: routed experts (top-k) plus optional always-on shared expert(s)."""

    model_config = _STRICT

    num_experts: PositiveInt
    experts_per_token: PositiveInt
    expert_intermediate_size: PositiveInt
    num_shared_experts: int = Field(default=0, ge=0)
    shared_expert_intermediate_size: int = Field(default=0, ge=0, description="total width of all shared experts")
    layers: LayerSet = LayerSet()
    expert_bias: bool = False
    router_bias: bool = False

    @model_validator(mode="after")
    def _top_k_within_experts(self) -> MoERecord:
        if self.experts_per_token > self.num_experts:
            raise ValueError(f"experts_per_token ({self.experts_per_token}) exceeds num_experts ({self.num_experts})")
        return self


class MLARecord(BaseModel):
    """Multi-head latent attention (DeepSeek-V2/V3): low-rank query and key/value compression."""

    model_config = _STRICT

    q_lora_rank: PositiveInt | None = None
    kv_lora_rank: PositiveInt
    qk_nope_head_dim: PositiveInt
    qk_rope_head_dim: PositiveInt
    v_head_dim: PositiveInt


class ParamsRecord(BaseModel):
    """Model-card parameter counts, in billions, for checking the computed counts."""

    model_config = _STRICT

    total_b: float = Field(gt=0)
    active_b: float | None = Field(default=None, gt=0)
    includes: str | None = Field(default=None, description="what the card's figure covers, e.g. a vision tower")
    provenance: Provenance | None = None


Unquantized = Literal["attention"]
"""Layers a quantized checkpoint may leave at 16-bit besides those every scheme does (router, embeddings and
LM head unless the scheme names a format for them): ``attention`` = the q/k/v/o projections (MLA's too)."""


class CheckpointRecord(BaseModel):
    """How the published checkpoint is quantized, as its ``config.json`` ``quantization_config`` says: the
    scheme (a ``quantization/schemes.yaml`` id) and the layers it leaves at 16-bit
    (``modules_to_not_convert``). A candidate running that scheme keeps those layers at 16-bit, as engines
    loading the checkpoint do; another scheme quantizes them as it says."""

    model_config = _STRICT

    scheme: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    unquantized: list[Unquantized] = Field(default=[], description="layers the checkpoint keeps at 16-bit")


class ModelRecord(BaseModel):
    """One decoder-only LLM as written in ``models/*.yaml``."""

    model_config = _STRICT

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str = Field(min_length=1)
    hf_name: str | None = None
    family: str | None = None
    hidden_size: PositiveInt
    num_layers: PositiveInt
    num_attention_heads: PositiveInt
    num_key_value_heads: PositiveInt
    head_dim: PositiveInt
    intermediate_size: PositiveInt | None = Field(default=None, description="dense FFN width; None if no dense FFN")
    vocab_size: PositiveInt
    max_position_embeddings: PositiveInt
    tie_word_embeddings: bool = False
    ffn_gated: bool = True
    ffn_activation: Activation = "silu"
    norm: Norm = "rmsnorm"
    norms_per_layer: int = Field(default=2, ge=1, le=4)
    parallel_attention: bool = Field(default=False, description="attention and FFN read the same norm output")
    attention_bias: AttentionBias = "none"
    mlp_bias: bool = False
    lm_head_bias: bool = False
    qk_norm: bool = False
    attention_sinks: bool = False
    learned_position_embeddings: int = Field(default=0, ge=0, description="rows of a learned position table")
    sliding_window: PositiveInt | None = None
    sliding_window_layers: LayerSet | None = None
    moe: MoERecord | None = None
    mla: MLARecord | None = None
    params: ParamsRecord | None = None
    checkpoint: CheckpointRecord | None = None
    provenance: Provenance | None = None
    notes: str | None = None

    def keeps_16bit(self, scheme: str, layers: Unquantized) -> bool:
        """Whether a candidate running ``scheme`` keeps ``layers`` at 16-bit: the published checkpoint is
        quantized with that scheme and leaves them so."""
        return (
            self.checkpoint is not None and self.checkpoint.scheme == scheme and layers in self.checkpoint.unquantized
        )

    @model_validator(mode="after")
    def _consistent(self) -> ModelRecord:
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        if (self.sliding_window is None) != (self.sliding_window_layers is None):
            raise ValueError("sliding_window and sliding_window_layers go together")
        dense_layers = self.num_layers - (self.moe.layers.count(self.num_layers) if self.moe else 0)
        if dense_layers and self.intermediate_size is None:
            raise ValueError(f"intermediate_size is required: {dense_layers} layers have a dense FFN")
        return self


@dataclass(frozen=True)
class ModelSpec:
    """A model with its derived quantities. Counts are layers; sizes are elements (not bytes)."""

    id: str
    record: ModelRecord
    num_layers: int
    num_moe_layers: int
    num_dense_ffn_layers: int
    num_window_layers: int
    num_full_attention_layers: int
    kv_elements_per_token_per_layer: int
    """Cached elements per token per layer: 2 x kv_heads x head_dim, or kv_lora_rank + rope dim for MLA."""


def model_spec(record: ModelRecord) -> ModelSpec:
    """Derive layer counts and per-token sizes once."""
    n = record.num_layers
    n_moe = record.moe.layers.count(n) if record.moe else 0
    n_window = record.sliding_window_layers.count(n) if record.sliding_window_layers else 0
    if record.mla:
        kv_elements = record.mla.kv_lora_rank + record.mla.qk_rope_head_dim
    else:
        kv_elements = 2 * record.num_key_value_heads * record.head_dim
    return ModelSpec(
        id=record.id,
        record=record,
        num_layers=n,
        num_moe_layers=n_moe,
        num_dense_ffn_layers=n - n_moe,
        num_window_layers=n_window,
        num_full_attention_layers=n - n_window,
        kv_elements_per_token_per_layer=kv_elements,
    )

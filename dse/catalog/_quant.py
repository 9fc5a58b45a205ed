"""Quantization as data: number formats of weights, activations and the KV cache.

A weight format stores ``bits`` per element plus one scale (and zero point) of ``scale_bits`` per
``group_size`` elements, so its cost is ``bits + scale_bits / group_size`` bits per element (the scale
overhead counted per element, as aiconfigurator and the GPTQ/AWQ/MX specifications describe it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from dse.catalog._hardware import DType
from dse.catalog._provenance import Provenance

_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

Fallback = Literal["weight_only", "none"]
"""What happens on hardware without a native peak for a scheme's compute format:
``weight_only`` = weights stay in their compact format in memory and are dequantized to 16-bit in the kernel
(compute and activations at the 16-bit peak, as Marlin/W8A16 kernels do); ``none`` = infeasible."""


class NumberFormat(BaseModel):
    """Storage format of a tensor: element bits plus group-scale overhead."""

    model_config = _STRICT

    dtype: DType
    bits: PositiveFloat
    group_size: PositiveInt | None = None
    scale_bits: float = Field(default=0.0, ge=0.0, description="bits of each group's scale(s) and zero point")

    @property
    def bits_per_element(self) -> float:
        """Average stored bits per element including scale overhead."""
        return self.bits + (self.scale_bits / self.group_size if self.group_size else 0.0)


class KVFormatRecord(NumberFormat):
    """A KV-cache format with its catalog id."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    note: str | None = None


class SchemeRecord(BaseModel):
    """A named quantization scheme as written in ``quantization/schemes.yaml``."""

    model_config = _STRICT

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str
    weights: NumberFormat
    embeddings: NumberFormat | None = Field(
        default=None, description="embedding and LM-head format; None = kept at 16-bit as most toolchains do"
    )
    activations: DType
    compute: DType = Field(description="format the linear layers' matrix multiplies run in")
    fallback: Fallback = "none"
    kv: str = Field(default="fp16", description="default KV-cache format id")
    provenance: Provenance | None = None
    note: str | None = None


class QuantCatalogRecord(BaseModel):
    """The whole quantization catalog file."""

    model_config = _STRICT

    kv_formats: list[KVFormatRecord] = Field(min_length=1)
    schemes: list[SchemeRecord] = Field(min_length=1)


@dataclass(frozen=True)
class Numerics:
    """Bits per element the cost model charges, for one (scheme, KV format) choice.

    ``compute`` is the format the linear layers run in *before* hardware fallback; the cost model resolves
    it against each device's peaks.
    """

    label: str
    weight_bits: float
    embedding_bits: float
    activation_bits: float
    kv_bits: float
    compute: str
    fallback: Fallback
    raw: bool = False


_BITS: dict[str, float] = {
    "fp32": 32,
    "tf32": 32,
    "fp16": 16,
    "bf16": 16,
    "fp8": 8,
    "int8": 8,
    "fp6": 6,
    "fp4": 4,
    "int4": 4,
}


def dtype_bits(dtype: str) -> float:
    """Storage bits of a plain element of ``dtype`` (tf32 is stored as fp32)."""
    return _BITS[dtype]


def compute_dtype_for_bits(bits: float) -> str:
    """Matrix-multiply format for raw ``--act-bits``: the narrowest common format holding ``bits``."""
    if bits <= 4:
        return "int4"
    if bits <= 8:
        return "int8"
    if bits <= 16:
        return "fp16"
    return "fp32"

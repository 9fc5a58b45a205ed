"""Turning a ``--quant`` scheme or raw ``--weight-bits/--act-bits/--kv-bits`` into the bits the cost model charges."""

from __future__ import annotations

from dse.catalog._quant import Numerics, compute_dtype_for_bits, dtype_bits
from dse.catalog._registry import load_kv_format, load_scheme
from dse.errors import InputError

EMBEDDING_BITS_DEFAULT = 16.0
"""Embedding and LM-head weights stay 16-bit unless a scheme says otherwise (GPTQ, AWQ, ModelOpt FP8/FP4)."""


def _positive_bits(value: float | None, flag: str) -> float | None:
    if value is not None and not 0 < value <= 32:
        raise InputError(f"expected bits in (0, 32], got {value}", field=flag)
    return value


def resolve_numerics(
    scheme: str | None = None,
    *,
    weight_bits: float | None = None,
    act_bits: float | None = None,
    kv_bits: float | None = None,
    kv_format: str | None = None,
) -> Numerics:
    """Numerics for a named scheme (default ``bf16``) or for raw bit-widths (exact bits, no scale overhead).

    Raw bits apply to every weight, embeddings included. The matrix multiplies then run in the narrowest
    common format holding the activation bits; weights narrower than that are dequantized in the kernel.
    """
    weight_bits = _positive_bits(weight_bits, "weight_bits")
    act_bits = _positive_bits(act_bits, "act_bits")
    kv_bits = _positive_bits(kv_bits, "kv_bits")
    if kv_bits is not None and kv_format is not None:
        raise InputError("give either a KV format or raw KV bits, not both", field="kv_bits")
    kv_override = load_kv_format(kv_format).bits_per_element if kv_format is not None else kv_bits
    if weight_bits is None and act_bits is None:
        record = load_scheme(scheme or "bf16")
        kv = kv_override if kv_override is not None else load_kv_format(record.kv).bits_per_element
        embedding = record.embeddings.bits_per_element if record.embeddings else EMBEDDING_BITS_DEFAULT
        return Numerics(
            label=record.id,
            weight_bits=record.weights.bits_per_element,
            embedding_bits=embedding,
            activation_bits=dtype_bits(record.activations),
            kv_bits=kv,
            compute=record.compute,
            fallback=record.fallback,
        )
    if scheme is not None:
        raise InputError("give either a quantization scheme or raw --weight-bits/--act-bits, not both", field="quant")
    w = weight_bits if weight_bits is not None else 16.0
    a = act_bits if act_bits is not None else 16.0
    kv = kv_override if kv_override is not None else a
    label = f"w{w:g}a{a:g}kv{kv:g}"
    return Numerics(label, w, w, a, kv, compute_dtype_for_bits(a), "weight_only", raw=True)

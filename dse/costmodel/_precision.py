"""Which peak a (device, number formats) pair computes at, with the fallbacks real kernels use."""

from __future__ import annotations

from dataclasses import dataclass

from dse.catalog import HardwareSpec, Numerics

_SIXTEEN_BIT = ("fp16", "bf16")
_SAME_WIDTH = {"int8": "fp8", "fp8": "int8", "int4": "fp4", "fp4": "int4"}
"""Raw bit-widths name a width, not a format: 8-bit activations run as int8 or fp8, whichever the device has."""


@dataclass(frozen=True)
class Precision:
    """Resolved peaks (dense FLOP/s) and formats for one device and one numerics choice."""

    matmul_flops_per_s: float
    matmul16_flops_per_s: float
    vector_flops_per_s: float
    act_bits: float
    compute: str
    """The format the linear layers actually run in (after fallback)."""
    supported: bool
    fallback_used: bool


def sixteen_bit_peak(hw: HardwareSpec) -> float | None:
    """The faster of the device's fp16 and bf16 peaks (engines pick the one the device runs fastest)."""
    peaks = [p for p in (hw.peak(d) for d in _SIXTEEN_BIT) if p is not None]
    return max(peaks) if peaks else None


def resolve_precision(hw: HardwareSpec, numerics: Numerics) -> Precision:
    """Peak for the linear layers' format, falling back as the scheme allows.

    - native: the device has a peak for ``numerics.compute`` (fp16 and bf16 count as one 16-bit class when a
      scheme allows fallback);
    - ``weight_only`` fallback: weights stay compact in memory, the kernel dequantizes them and computes at
      the 16-bit peak with 16-bit activations (fp8 on A100 via FP8-Marlin, FP4 on Hopper, W4A8 without int8);
    - otherwise unsupported (the candidate is infeasible with a reason).
    Attention matmuls run at the 16-bit peak; element-wise work at the fp32 vector peak when the catalog
    has one, else the 16-bit peak.
    """
    half = sixteen_bit_peak(hw) or hw.peak("fp32")
    vector = hw.peak("fp32") or half
    compute = numerics.compute
    if hw.peak(compute) is None and numerics.raw and hw.peak(_SAME_WIDTH.get(compute, compute)) is not None:
        compute = _SAME_WIDTH[compute]
    native = hw.peak(compute)
    if half is None or vector is None:  # no usable format at all: keep numbers finite, mark unsupported
        any_peak = max(hw.peak_flops_per_s.values())
        return Precision(any_peak, any_peak, any_peak, numerics.activation_bits, numerics.compute, False, False)
    if native is not None:
        return Precision(native, half, vector, numerics.activation_bits, compute, True, False)
    if numerics.fallback == "weight_only":
        if sixteen_bit_peak(hw) is None:  # no 16-bit units at all: dequantize to fp32
            return Precision(half, half, vector, max(numerics.activation_bits, 32.0), "fp32", True, True)
        compute = "bf16" if hw.peak("bf16") == half else "fp16"
        return Precision(half, half, vector, max(numerics.activation_bits, 16.0), compute, True, True)
    return Precision(half, half, vector, numerics.activation_bits, numerics.compute, False, False)

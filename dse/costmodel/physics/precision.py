"""Which peak a device computes at for a choice of number formats, with the fallbacks real kernels use
(docs/cost-model.md §1 and §6)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SIXTEEN_BIT = ("fp16", "bf16")
SAME_WIDTH = {"int8": "fp8", "fp8": "int8", "int4": "fp4", "fp4": "int4"}
"""Raw bit-widths name a width, not a format: 8-bit activations run as int8 or fp8, whichever the device has."""


@dataclass(frozen=True)
class Precision:
    """Resolved peaks (dense FLOP/s) and formats for one device and one choice of number formats."""

    matmul_flops_per_s: float
    matmul16_flops_per_s: float
    vector_flops_per_s: float
    act_bits: float
    compute: str
    """The format the linear layers actually run in (after fallback)."""
    supported: bool
    fallback_used: bool


def sixteen_bit_peak(peaks: Mapping[str, float]) -> float | None:
    """The faster of the device's fp16 and bf16 peaks (engines pick the one the device runs fastest)."""
    found = [peaks[d] for d in SIXTEEN_BIT if d in peaks]
    return max(found) if found else None


def resolve_precision(
    peaks: Mapping[str, float], compute: str, act_bits: float, fallback: str, *, raw: bool
) -> Precision:
    """The peak of the linear layers' format ``compute`` on a device with dense ``peaks`` per format,
    falling back as the scheme allows:

    - native: the device has a peak for ``compute`` (for raw bits, either format of that width);
    - ``weight_only``: weights stay compact in memory, the kernel dequantizes them and computes at the
      16-bit peak with activations of at least 16 bits (fp8 on A100 via FP8-Marlin, FP4 on Hopper, W4A8
      without int8); a device with no 16-bit peak at all dequantizes to fp32;
    - otherwise unsupported (the candidate is infeasible with a reason).
    Attention products and 16-bit-weight projections run at the 16-bit peak; element-wise work at the fp32
    vector peak when the catalog has one, else the 16-bit peak."""
    requested = compute
    half = sixteen_bit_peak(peaks) or peaks.get("fp32")
    if half is None:  # no 16-bit or fp32 format at all: keep numbers finite, mark unsupported
        any_peak = max(peaks.values())
        return Precision(any_peak, any_peak, any_peak, act_bits, requested, False, False)
    vector = peaks.get("fp32") or half
    if compute not in peaks and raw and SAME_WIDTH.get(compute) in peaks:
        compute = SAME_WIDTH[compute]
    native = peaks.get(compute)
    if native is not None:
        return Precision(native, half, vector, act_bits, compute, True, False)
    if fallback == "weight_only":
        if sixteen_bit_peak(peaks) is None:
            return Precision(half, half, vector, max(act_bits, 32.0), "fp32", True, True)
        formats = "bf16" if peaks.get("bf16") == half else "fp16"
        return Precision(half, half, vector, max(act_bits, 16.0), formats, True, True)
    return Precision(half, half, vector, act_bits, requested, False, False)

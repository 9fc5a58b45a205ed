"""Which format a (device, numerics) pair computes in, and the fallbacks real kernels take."""

from __future__ import annotations

import pytest

from dse.catalog import load_hardware, resolve_numerics
from dse.scoring import precision as resolve_precision


@pytest.mark.parametrize(
    ("hardware", "quant", "compute", "fallback"),
    [
        ("h100-sxm", "fp8", "fp8", False),  # native FP8 tensor cores
        ("a100-sxm-80gb", "fp8", "bf16", True),  # Ampere: FP8 weights dequantized (FP8-Marlin path)
        ("h100-sxm", "nvfp4", "bf16", True),  # Hopper has no FP4: weight-only W4A16
        ("b200", "nvfp4", "fp4", False),
        ("v100-sxm-32gb", "bf16", "fp16", True),  # Volta has no bf16
        ("tpu-v5e", "fp16", "bf16", True),  # TPUs compute bf16
        ("apple-m2-ultra", "q4_k_m", "fp32", True),  # catalog lists fp32 only: dequantize to fp32
    ],
)
def test_named_schemes(hardware: str, quant: str, compute: str, fallback: bool) -> None:
    p = resolve_precision(load_hardware(hardware), resolve_numerics(quant))
    assert (p.compute, p.fallback_used, p.supported) == (compute, fallback, True)
    if fallback:
        assert p.act_bits >= 16


def test_raw_bits_take_the_format_of_their_width_the_device_has() -> None:
    raw8 = resolve_numerics(weight_bits=8, act_bits=8)
    assert resolve_precision(load_hardware("h100-sxm"), raw8).compute == "int8"
    assert resolve_precision(load_hardware("b300"), raw8).compute == "fp8"  # B300: FP8 but (almost) no INT8


def test_weight_only_fallback_keeps_compact_weights() -> None:
    h100, a100 = load_hardware("h100-sxm"), load_hardware("a100-sxm-80gb")
    fp8 = resolve_numerics("fp8")
    native, fallback = resolve_precision(h100, fp8), resolve_precision(a100, fp8)
    assert native.matmul_flops_per_s == h100.peak("fp8") and native.act_bits == 8
    assert fallback.matmul_flops_per_s == a100.peak("bf16") and fallback.act_bits == 16
    assert fp8.weight_bits == 8  # memory and weight traffic stay 8-bit either way


def test_peaks_of_each_kind_by_hand() -> None:
    """Made-up peaks: linear layers at the scheme's format, attention at the faster 16-bit peak, element-wise
    work at fp32 when listed; a device with fp32 only dequantizes to fp32 (activations at least 32 bits)."""
    from dse.costmodel import resolve_precision as resolve

    p = resolve({"fp16": 10.0, "bf16": 12.0, "fp32": 3.0, "fp8": 20.0}, "fp8", 8.0, "weight_only", raw=False)
    assert (p.matmul_flops_per_s, p.matmul16_flops_per_s, p.vector_flops_per_s) == (20.0, 12.0, 3.0)
    assert (p.act_bits, p.compute, p.supported, p.fallback_used) == (8.0, "fp8", True, False)
    no_fp32 = resolve({"fp16": 10.0}, "fp16", 16.0, "none", raw=False)
    assert no_fp32.vector_flops_per_s == 10.0
    fp32_only = resolve({"fp32": 3.0}, "int4", 16.0, "weight_only", raw=False)
    assert (fp32_only.matmul_flops_per_s, fp32_only.act_bits, fp32_only.compute) == (3.0, 32.0, "fp32")
    assert resolve({"fp32": 3.0}, "int4", 40.0, "weight_only", raw=False).act_bits == 40.0
    bf16 = resolve({"fp16": 10.0, "bf16": 12.0}, "fp8", 8.0, "weight_only", raw=False)
    assert (bf16.compute, bf16.act_bits, bf16.matmul_flops_per_s) == ("bf16", 16.0, 12.0)


def test_unsupported_formats_keep_finite_peaks_and_say_so() -> None:
    from dse.costmodel import Precision
    from dse.costmodel import resolve_precision as resolve

    assert resolve({"fp16": 10.0, "fp32": 3.0}, "fp8", 8.0, "none", raw=False) == Precision(
        10.0, 10.0, 3.0, 8.0, "fp8", False, False
    )
    # no 16-bit or fp32 peak at all: the only peak stands in for every kind, and the format is unsupported
    assert resolve({"int8": 100.0}, "int8", 8.0, "weight_only", raw=False) == Precision(
        100.0, 100.0, 100.0, 8.0, "int8", False, False
    )
    raw = resolve({"fp16": 10.0, "int8": 50.0}, "fp8", 8.0, "weight_only", raw=True)
    assert (raw.compute, raw.matmul_flops_per_s) == ("int8", 50.0)  # raw bits: either 8-bit format
    named = resolve({"fp16": 10.0, "int8": 50.0}, "fp8", 8.0, "weight_only", raw=False)
    assert (named.compute, named.fallback_used) == ("fp16", True)  # a named fp8 scheme does not run as int8

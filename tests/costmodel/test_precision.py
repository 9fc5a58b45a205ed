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

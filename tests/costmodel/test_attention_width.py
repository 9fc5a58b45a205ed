"""Prefill attention runs at 16 bits whatever the linear layers' format (passes.ATTENTION_BITS)."""

from __future__ import annotations

import pytest

from dse.scoring import analyze


def _prefill_attention(quant: str, flash: bool = True) -> dict[str, float]:
    d = analyze("llama-3.1-8b", "b200", quant=quant, prompt_len=1024, gen_len=8, flash_attention=flash).to_dict()
    (row,) = [r for r in d["layers"] if r["stage"] == "prefill" and r["name"] == "attention"]
    return row


@pytest.mark.parametrize("quant", ["fp8", "nvfp4", "int8"])
def test_quantized_schemes_get_no_attention_speed_up(quant: str) -> None:
    assert _prefill_attention(quant) == _prefill_attention("bf16")


def test_fused_prefill_attention_bytes_by_hand() -> None:
    row = _prefill_attention("nvfp4")
    # Llama-3.1-8B: 32 query heads, 8 KV heads of 128; 1,024 prompt tokens, batch 1; 2 bytes an element.
    # Q read and O written once: 1024 x 32 x (128 + 128) x 2 = 16,777,216 bytes. K/V (one pass: 1024 x 8 x 256
    # x 2 = 4,194,304 bytes) is re-read by each query tile of 128 rows (the default profile's flash_block_rows)
    # up to the diagonal: tile i of 8 reads i key tiles, (1 + ... + 8) / 8 = 4.5 passes. 32 layers.
    q_and_o = 1024 * 32 * 256 * 2
    one_kv_pass = 1024 * 8 * 256 * 2
    assert row["memory_bytes"] == pytest.approx(32 * (q_and_o + 4.5 * one_kv_pass))

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


def test_kv_rereads_stay_on_chip_when_a_head_fits() -> None:
    from dse.costmodel.physics.attention import kv_reused_on_chip

    one_head = 4096 * 256 * 2  # Llama-2-7B, 4k prompt: K and V of 128 each, 2 bytes: 2 MiB
    assert kv_reused_on_chip(4096, 256, 2, 50e6)  # H100's 50 MB L2
    assert not kv_reused_on_chip(4096, 256, 2, 2 * one_head - 1)  # needs twice its size on chip
    assert not kv_reused_on_chip(4096, 256, 2, 0.0)  # unknown on-chip memory: no reuse


def test_mha_prefill_reads_each_key_once_on_a_device_with_l2() -> None:
    # Llama-2-7B (32 heads, all KV heads, d 128), 4,096 prompt tokens, batch 1, bf16, 32 layers, on H100:
    # Q read and O written once (4096 x 32 x 256 x 2 bytes) and one K/V pass (the same size) per layer:
    # 4.3 GB in all, not the 37.7 GB of 16.5 tile re-reads from device memory (FlashAttention-2's count).
    d = analyze("llama-2-7b", "h100-sxm", quant="bf16", prompt_len=4096, gen_len=8).to_dict()
    (row,) = [r for r in d["layers"] if r["stage"] == "prefill" and r["name"] == "attention"]
    assert row["memory_bytes"] == pytest.approx(32 * 2 * (4096 * 32 * 256 * 2))
    no_l2 = analyze("llama-2-7b", "b200", quant="bf16", prompt_len=4096, gen_len=8).to_dict()  # no L2 figure
    (old,) = [r for r in no_l2["layers"] if r["stage"] == "prefill" and r["name"] == "attention"]
    tiles = 4096 // 128
    keys_read = 128 * tiles * (tiles - 1) / 2 + 4096  # 16.5 passes of 4,096 keys
    assert old["memory_bytes"] == pytest.approx(32 * (4096 * 32 * 256 * 2) * (1 + keys_read / 4096))

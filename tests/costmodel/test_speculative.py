"""Speculative decoding and multi-token prediction (docs/cost-model.md §17): Leviathan et al.'s expected
tokens by hand, no speed-up and the draft's cost at an acceptance of 0, the verification pass's shape."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

import dse
from dse.catalog import load_model
from dse.costmodel.physics import continuous
from dse.costmodel.physics.speculative import expected_tokens
from dse.errors import InputError
from dse.scoring._draft import draft_figures


def _one(**over: Any) -> dict[str, Any]:
    row = {"model": "llama-3.1-70b", "hardware": "h200-sxm", "quant": "fp8", "prompt_len": 1000, "gen_len": 200}
    return dse.evaluate(pd.DataFrame([row | over])).iloc[0].to_dict()


def test_expected_tokens_by_hand() -> None:
    # E = (1 - a^(g+1)) / (1 - a): a = 0.8, g = 4: (1 - 0.32768) / 0.2 = 3.3616
    assert expected_tokens(4.0, 0.8) == pytest.approx((1 - 0.8**5) / 0.2) == pytest.approx(3.3616)
    assert expected_tokens(4.0, 0.0) == 1.0  # nothing accepted: the target's own token
    assert expected_tokens(4.0, 1.0) == 5.0  # everything accepted: g + 1
    assert expected_tokens(0.0, 0.7) == pytest.approx(1.0)  # no draft tokens


def test_acceptance_zero_gives_no_speed_up_and_costs_the_draft() -> None:
    plain = _one()
    rejected = _one(spec_tokens=4, spec_acceptance=0.0, draft="llama-3.1-8b")
    accepted = _one(spec_tokens=4, spec_acceptance=0.8, draft="llama-3.1-8b")
    ratio, _ = draft_figures(load_model("llama-3.1-70b"), "llama-3.1-8b")
    # one token per step, for a verification of 5 tokens and 4 draft steps of ~8/70 of a target step each
    assert rejected["tpot_s"] > plain["tpot_s"] * (1 + 4 * ratio)
    assert accepted["tpot_s"] < plain["tpot_s"]  # memory-bound at batch 1: verifying 5 tokens costs about 1
    assert rejected["ttft_s"] == plain["ttft_s"] and accepted["ttft_s"] == plain["ttft_s"]
    assert rejected["weights_bytes"] > plain["weights_bytes"] + 7e9  # the 8B draft's fp8 weights


def test_draft_figures() -> None:
    model = load_model("llama-3.1-70b")
    ratio, params = draft_figures(model, "llama-3.1-8b")
    assert ratio == pytest.approx(0.11, abs=0.02) and params == pytest.approx(8.0e9, rel=0.05)
    ratio, params = draft_figures(model, "mtp")  # one of 80 layers and the output head
    assert 1 / 80 < ratio < 0.05 and params == pytest.approx(70.6e9 / 80, rel=0.25)
    assert draft_figures(model, None) == (0.0, 0.0)
    with pytest.raises(InputError, match="tokenizer"):
        draft_figures(model, "llama-2-7b")  # a 32k vocabulary against Llama-3's 128k


def test_speculation_needs_a_draft() -> None:
    with pytest.raises(InputError, match="needs a draft"):
        _one(spec_tokens=3)


def test_speculation_under_continuous_batching_keeps_littles_law() -> None:
    out = _one(scheduler="continuous", concurrency=16, spec_tokens=3, draft="mtp", spec_acceptance=0.8)
    rate = out["throughput_tokens_per_s"] / 200
    assert rate * out["e2e_latency_s"] == pytest.approx(16, rel=1e-9)
    plain = _one(scheduler="continuous", concurrency=16)
    assert out["tpot_s"] < plain["tpot_s"] and math.isfinite(out["tpot_s_p99"])


def test_verification_tokens_count_against_the_step_budget() -> None:
    # 50 sequences with 4 draft tokens each bring 5 tokens a step: a 512-token budget leaves 512 - 49 x 5 = 267
    # for prompts (463 without speculation), so a 1,000-token prompt takes 4 chunks instead of 3
    assert continuous.room(201.0, 50.0, 512.0, 5.0) == 267.0
    assert continuous.chunks(1000.0, 201.0, 50.0, 512.0, 5.0)[0] == 4.0
    assert continuous.chunks(1000.0, 201.0, 50.0, 512.0)[0] == 3.0
    # and an engine holds no more sequences than the budget carries: 512 / 5 -> 102
    out = _one(scheduler="continuous", chunk_tokens=512, spec_tokens=4, draft="mtp")
    assert out["requests_in_engine"] <= 102.0


@pytest.mark.parametrize(("model", "G"), [("qwen3-30b-a3b", 2), ("deepseek-v3", 2), ("deepseek-v3", 1)])
def test_acceptance_zero_in_a_closed_loop_completes_no_more(model: str, G: int) -> None:
    """A closed loop of 16: a prompt's service is what it adds to a plain one-token step, not to the wider
    verification step of γ + 1 tokens (which made it look short: 25 % more completed at α = 0)."""
    kw: dict[str, Any] = {"model": model, "quant": "fp8", "prompt_len": 2000, "gen_len": G, "concurrency": 16}
    kw |= {"hardware": "h100-sxm" if model.startswith("qwen") else "dgx-h200", "scheduler": "continuous"}
    kw |= {"tp": 1 if model.startswith("qwen") else 8}
    plain = dse.analyze(**kw).to_dict()
    drafted = dse.analyze(**kw, spec_tokens=4, spec_acceptance=0.0, draft="mtp").to_dict()
    assert drafted["throughput_tokens_per_s"] <= plain["throughput_tokens_per_s"] * (1 + 1e-9)

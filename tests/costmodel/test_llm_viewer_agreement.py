"""Agreement with LLM-Viewer's per-operator roofline formulas (arXiv 2402.16363, github.com/hahnyuan/LLM-Viewer).

The functions ``lv_*`` below restate, independently and in LLM-Viewer's own conventions, the per-layer
quantities that ``ModelAnalyzer.analyze`` in ``model_analyzer.py`` (commit 01b269d600a36f674fd0e7952763f1560f39d368)
records for each operator of a Llama-style decoder layer: OPs, load_weight, load_act, store_act, load_kv_cache,
store_kv_cache (bytes = elements x bits / 8). Its layer totals are those per-layer numbers times
``num_hidden_layers``; the LM head comes from the model config's ``post_process`` hook.

We compare them with ``dse.analysis.analyze(..., flash_attention=False, ideal=True)`` driven by raw bit-widths
(no scale overhead, embeddings at the weight bits). Where the formulas coincide the test is exact
(rel 1e-9); where we differ on purpose, it asserts the documented relationship ``ours = f(theirs)``.
Every difference is explained in docs/llm-viewer-differences.md (section numbers cited as "doc §N").

Conventions shared by both tools here: decode is ONE step whose new token attends ``prompt_len`` cached keys
(LLM-Viewer's ``seqlen`` in decode), batch B, prompt s; "tokens" t = B s in prefill and B in decode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dse.scoring import analyze

LV_COMMIT = "01b269d600a36f674fd0e7952763f1560f39d368"
REL = 1e-9

HARDWARE_YAML = """\
id: my-gpu
name: My GPU
memory_gb: 48
memory_bandwidth_gb_s: 768
peak_tflops: {fp16: 154.8, int8: 309.7}
"""


# --------------------------------------------------------------------------------------------------------------
# Model shapes, as LLM-Viewer reads them from the Hugging Face config.json (configs/Llama.py getters).
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dense:
    """The config.json fields LLM-Viewer's Llama config reads."""

    id: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    vocab_size: int

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads


MODELS = [
    Dense("llama-2-7b", 4096, 32, 32, 32, 11008, 32000),
    Dense("llama-2-13b", 5120, 40, 40, 40, 13824, 32000),
    Dense("llama-3.1-8b", 4096, 32, 32, 8, 14336, 128256),  # GQA 4:1
    Dense("llama-2-70b", 8192, 80, 64, 8, 28672, 32000),  # GQA 8:1
]


@dataclass(frozen=True)
class Bits:
    """LLM-Viewer's w_bit / a_bit / kv_bit; its *_byte = bit / 8."""

    w: int
    a: int
    kv: int

    @property
    def w_byte(self) -> float:
        return self.w / 8

    @property
    def a_byte(self) -> float:
        return self.a / 8

    @property
    def kv_byte(self) -> float:
        return self.kv / 8


PRECISIONS = [Bits(16, 16, 16), Bits(8, 8, 8), Bits(4, 16, 16), Bits(8, 16, 8), Bits(4, 8, 4)]
SHAPES = [(1, 128), (8, 3001)]  # (batch, prompt_len); an odd prompt keeps (P + 1) / 2P non-trivial
STAGES = ["prefill", "decode"]


# --------------------------------------------------------------------------------------------------------------
# LLM-Viewer's formulas, restated. All per decoder layer, n_parallel_decode = 1.
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LV:
    """One row of LLM-Viewer's ``results[stage][name]`` (per layer)."""

    ops: float
    load_weight: float = 0.0
    load_act: float = 0.0
    store_act: float = 0.0
    load_kv: float = 0.0
    store_kv: float = 0.0

    @property
    def act(self) -> float:
        return self.load_act + self.store_act

    @property
    def memory(self) -> float:
        return self.load_weight + self.load_act + self.store_act + self.load_kv + self.store_kv


def _tokens(stage: str, batch: int, seqlen: int) -> int:
    return batch * seqlen if stage == "prefill" else batch


def lv_linear_shapes(m: Dense) -> dict[str, tuple[float, float]]:
    """configs/Llama.py ``get_linear_layers``: (in, out) features; K/V width = hidden x kv_heads / heads."""
    h, f = m.hidden_size, m.intermediate_size
    kv = h * m.num_key_value_heads / m.num_attention_heads
    return {
        "q_proj": (h, h),
        "k_proj": (h, kv),
        "v_proj": (h, kv),
        "out_proj": (h, h),
        "gate_proj": (h, f),
        "up_proj": (h, f),
        "down_proj": (f, h),
    }


def lv_linear(m: Dense, name: str, stage: str, batch: int, seqlen: int, b: Bits) -> LV:
    """model_analyzer.py ``analyze``, linear-layer loop: 2 OPs per MAC, weight read once, input read once;
    q/out/gate/up/down store their output as an activation, k/v store it to the KV cache instead."""
    ic, oc = lv_linear_shapes(m)[name]
    t = _tokens(stage, batch, seqlen)
    is_kv = name in ("k_proj", "v_proj")
    return LV(
        ops=2 * ic * oc * t,
        load_weight=ic * oc * b.w_byte,
        load_act=ic * t * b.a_byte,
        store_act=0.0 if is_kv else oc * t * b.a_byte,
        store_kv=oc * t * b.kv_byte if is_kv else 0.0,
    )


def lv_qk_matmul(m: Dense, stage: str, batch: int, seqlen: int, b: Bits) -> LV:
    """model_analyzer.py ``analyze``, unfused ``qk_matmul``. Full (unmasked) score matrix in both stages.

    Decode: read q (heads x d), write scores (heads x seqlen), read K of seqlen tokens x kv_heads.
    Prefill: no activation read; write scores (heads x s x s); read 2 x s x d x kv_heads at KV bytes.
    """
    d, nq, nkv = m.head_size, m.num_attention_heads, m.num_key_value_heads
    if stage == "decode":
        return LV(
            ops=2 * seqlen * d * nq * batch,
            load_act=d * batch * nq * b.a_byte,
            store_act=seqlen * batch * nq * b.a_byte,
            load_kv=seqlen * d * batch * nkv * b.kv_byte,
        )
    return LV(
        ops=2 * seqlen * seqlen * d * nq * batch,
        store_act=seqlen * seqlen * batch * nq * b.a_byte,
        load_kv=2 * seqlen * d * batch * nkv * b.kv_byte,
    )


def lv_sv_matmul(m: Dense, stage: str, batch: int, seqlen: int, b: Bits) -> LV:
    """model_analyzer.py ``analyze``, unfused ``sv_matmul``: read probabilities, write output, read V."""
    d, nq, nkv = m.head_size, m.num_attention_heads, m.num_key_value_heads
    q = 1 if stage == "decode" else seqlen
    return LV(
        ops=2 * q * d * seqlen * nq * batch,
        load_act=q * seqlen * batch * nq * b.a_byte,
        store_act=q * d * batch * nq * b.a_byte,
        load_kv=seqlen * d * batch * nkv * b.kv_byte,
    )


def lv_softmax(m: Dense, stage: str, batch: int, seqlen: int, b: Bits) -> LV:
    """model_analyzer.py ``analyze``, ``softmax``: 5 OPs per score (max, sub, exp, sum, div), read + write."""
    q = 1 if stage == "decode" else seqlen
    scores = batch * m.num_attention_heads * seqlen * q
    return LV(ops=5 * scores, load_act=scores * b.a_byte, store_act=scores * b.a_byte)


def lv_fused_attention(m: Dense, stage: str, batch: int, seqlen: int, b: Bits, onchip_buffer: float) -> LV:
    """model_analyzer.py ``analyze``, ``use_flashattention`` branch (``fused_attention``).

    OPs = qk + sv + softmax of the FULL matrix (no causal saving); row block Br = min(ceil(buffer / (kv_byte d)),
    d); load_act = Q; store_act = 2 x an "O" sized queries x seqlen per head; load_kv = ceil(queries / Br) x
    seqlen x d x *query* heads (K only).
    """
    d, nq = m.head_size, m.num_attention_heads
    q = 1 if stage == "decode" else seqlen
    ops = (2 * q * seqlen * d + 2 * q * seqlen * d + 5 * q * seqlen) * nq * batch
    block_rows = min(math.ceil(onchip_buffer / (b.kv_byte * d)), d)
    o_numel = q * seqlen * batch * nq * b.a_byte
    return LV(
        ops=ops,
        load_act=q * d * batch * nq * b.a_byte,
        store_act=2 * o_numel,
        load_kv=math.ceil(q / block_rows) * seqlen * d * batch * nq * b.kv_byte,
    )


def lv_norm(m: Dense, stage: str, batch: int, seqlen: int, b: Bits) -> LV:
    """model_analyzer.py ``analyze``, ``attn_norm`` / ``mlp_norm`` (each): 7 OPs per element, read + write."""
    n = _tokens(stage, batch, seqlen) * m.hidden_size
    return LV(ops=7 * n, load_act=n * b.a_byte, store_act=n * b.a_byte)


def lv_add(m: Dense, stage: str, batch: int, seqlen: int, b: Bits) -> LV:
    """model_analyzer.py ``analyze``, ``attn_add`` / ``mlp_add`` (each): 1 OP, ONE input read, one write."""
    n = _tokens(stage, batch, seqlen) * m.hidden_size
    return LV(ops=n, load_act=n * b.a_byte, store_act=n * b.a_byte)


def lv_mlp_act(m: Dense, stage: str, batch: int, seqlen: int, b: Bits) -> LV:
    """model_analyzer.py ``analyze``, ``mlp_act``: 2 OPs per element over *hidden_size* elements, 2 reads."""
    n = _tokens(stage, batch, seqlen) * m.hidden_size
    return LV(ops=2 * n, load_act=2 * n * b.a_byte, store_act=n * b.a_byte)


def lv_lm_head(m: Dense, batch: int, b: Bits) -> LV:
    """configs/*.py ``post_process`` (e.g. configs/gpt-j-6B.py @14118d53): identical in prefill and decode;
    1 OP per MAC, weight h x V, activations h and V *without* the batch factor."""
    h, v = m.hidden_size, m.vocab_size
    return LV(ops=batch * h * v, load_weight=h * v * b.w_byte, load_act=h * b.a_byte, store_act=v * b.a_byte)


# --------------------------------------------------------------------------------------------------------------
# Ours.
# --------------------------------------------------------------------------------------------------------------

_CACHE: dict[tuple[Any, ...], dict[str, Any]] = {}


@pytest.fixture(scope="module")
def hw(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("hw") / "my-gpu.yaml"
    path.write_text(HARDWARE_YAML)
    return str(path)


def ours(hw: str, m: Dense, b: Bits, batch: int, prompt: int, *, flash: bool = False) -> dict[str, Any]:
    """analyze() output with rows indexed by (stage, name); cached (3 ms a call, reused by every test)."""
    key = (hw, m.id, b, batch, prompt, flash)
    if key not in _CACHE:
        out = analyze(
            m.id,
            hw,
            weight_bits=b.w,
            act_bits=b.a,
            kv_bits=b.kv,
            batch=batch,
            prompt_len=prompt,
            gen_len=2,
            flash_attention=flash,
            ideal=True,
        ).to_dict()
        out["rows"] = {(r["stage"], r["name"]): r for r in out["layers"]}
        _CACHE[key] = out
    return _CACHE[key]


def row(
    hw: str, m: Dense, b: Bits, batch: int, prompt: int, stage: str, name: str, *, flash: bool = False
) -> dict[str, Any]:
    return ours(hw, m, b, batch, prompt, flash=flash)["rows"][(stage, name)]  # type: ignore[no-any-return]


def close(got: float, expected: float) -> bool:
    return got == pytest.approx(expected, rel=REL, abs=0.0)


CASES = [
    pytest.param(m, b, batch, prompt, id=f"{m.id}-w{b.w}a{b.a}kv{b.kv}-b{batch}-s{prompt}")
    for m in MODELS
    for b in PRECISIONS
    for batch, prompt in SHAPES
]


# --------------------------------------------------------------------------------------------------------------
# Exact agreement.
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("m", "b", "batch", "prompt"), CASES)
def test_projections_agree_exactly(hw: str, m: Dense, b: Bits, batch: int, prompt: int) -> None:
    """q, out (our o_proj), gate, up, down: FLOPs, weight bytes, activation bytes, total bytes (doc §1)."""
    for stage in STAGES:
        for lv_name, our_name in [
            ("q_proj", "q_proj"),
            ("out_proj", "o_proj"),
            ("gate_proj", "gate_proj"),
            ("up_proj", "up_proj"),
            ("down_proj", "down_proj"),
        ]:
            theirs = lv_linear(m, lv_name, stage, batch, prompt, b)
            r = row(hw, m, b, batch, prompt, stage, our_name)
            n = m.num_hidden_layers
            assert r["count"] == n
            assert close(r["flops"], n * theirs.ops), (stage, our_name)
            assert close(r["weight_bytes"], n * theirs.load_weight), (stage, our_name)
            assert close(r["activation_bytes"], n * theirs.act), (stage, our_name)
            assert r["kv_cache_bytes"] == 0.0, stage
            assert close(r["memory_bytes"], n * theirs.memory), (stage, our_name)


def lv_peak(b: Bits) -> float:
    """model_analyzer.py ``get_hardware_info``: the INT8 peak iff weights, activations and KV all have <= 8 bits,
    else the FP16 peak (here the test hardware's 309.7 / 154.8 TOPS)."""
    return 309.7e12 if max(b.w, b.a, b.kv) <= 8 else 154.8e12


@pytest.mark.parametrize(("m", "b", "batch", "prompt"), CASES)
def test_projection_roofline_time_agrees(hw: str, m: Dense, b: Bits, batch: int, prompt: int) -> None:
    """hardwares/roofline_model.py ``roofline_analyze``: time = OPs / min(peak, intensity x bandwidth), i.e.
    max(OPs / peak, bytes / bandwidth). Our ideal per-operator time equals it for the projections at every
    precision listed here (our peak follows the activation bits; for these five choices that is the same peak).
    Attention matmuls differ at int8: we run them at the 16-bit peak (doc §11)."""
    bandwidth = 768e9
    for stage in STAGES:
        for lv_name, our_name in [("q_proj", "q_proj"), ("out_proj", "o_proj"), ("down_proj", "down_proj")]:
            theirs = lv_linear(m, lv_name, stage, batch, prompt, b)
            expected = m.num_hidden_layers * max(theirs.ops / lv_peak(b), theirs.memory / bandwidth)
            assert close(row(hw, m, b, batch, prompt, stage, our_name)["time_s"], expected), (stage, our_name)


@pytest.mark.parametrize(("m", "b", "batch", "prompt"), CASES)
def test_kv_projections(hw: str, m: Dense, b: Bits, batch: int, prompt: int) -> None:
    """k/v: FLOPs, weight and KV-cache write agree exactly (GQA width included); we also write the projected
    K/V once as an activation, which LLM-Viewer omits: ours = theirs + d_out x t x act bytes (doc §2)."""
    for stage in STAGES:
        n, t = m.num_hidden_layers, _tokens(stage, batch, prompt)
        kv_width = m.num_key_value_heads * m.head_size
        for name in ("k_proj", "v_proj"):
            theirs = lv_linear(m, name, stage, batch, prompt, b)
            r = row(hw, m, b, batch, prompt, stage, name)
            assert close(r["flops"], n * theirs.ops), stage
            assert close(r["weight_bytes"], n * theirs.load_weight), stage
            assert close(r["kv_cache_bytes"], n * theirs.store_kv), stage
            extra_write = kv_width * t * b.a_byte
            assert close(r["activation_bytes"], n * (theirs.act + extra_write)), stage
            assert close(r["memory_bytes"], n * (theirs.memory + extra_write)), stage


@pytest.mark.parametrize(("m", "b", "batch", "prompt"), CASES)
def test_unfused_attention_decode_agrees_exactly(hw: str, m: Dense, b: Bits, batch: int, prompt: int) -> None:
    """Decode qk_matmul, softmax, sv_matmul (unfused): every quantity coincides, GQA K/V reads included (doc §3)."""
    n = m.num_hidden_layers
    for name, fn in (("qk_matmul", lv_qk_matmul), ("softmax", lv_softmax), ("sv_matmul", lv_sv_matmul)):
        theirs = fn(m, "decode", batch, prompt, b)
        r = row(hw, m, b, batch, prompt, "decode", name)
        assert close(r["flops"], n * theirs.ops), name
        assert close(r["activation_bytes"], n * theirs.act), name
        assert close(r["kv_cache_bytes"], n * theirs.load_kv), name
        assert close(r["memory_bytes"], n * theirs.memory), name


@pytest.mark.parametrize(("m", "b", "batch", "prompt"), CASES)
def test_unfused_attention_prefill(hw: str, m: Dense, b: Bits, batch: int, prompt: int) -> None:
    """Prefill: FLOPs of qk/softmax/sv and all softmax bytes agree exactly (full s x s matrix in both).

    Bytes of the two matmuls differ in what is read (doc §4): we read Q (qk) and the fresh K / V activations at
    activation bytes; LLM-Viewer reads no Q and 2 s d kv_heads (qk) / s d kv_heads (sv) at KV bytes.
    """
    n, s, d = m.num_hidden_layers, prompt, m.head_size
    nq, nkv = m.num_attention_heads, m.num_key_value_heads
    q_read = batch * s * nq * d * b.a_byte
    kv_read = batch * s * nkv * d * b.a_byte  # one of K or V, fresh activation
    qk, sm, sv = (fn(m, "prefill", batch, s, b) for fn in (lv_qk_matmul, lv_softmax, lv_sv_matmul))
    r_qk, r_sm, r_sv = (row(hw, m, b, batch, s, "prefill", x) for x in ("qk_matmul", "softmax", "sv_matmul"))
    assert close(r_qk["flops"], n * qk.ops)
    assert close(r_sv["flops"], n * sv.ops)
    assert close(r_sm["flops"], n * sm.ops)
    assert close(r_sm["activation_bytes"], n * sm.act)
    assert close(r_sm["memory_bytes"], n * sm.memory)
    # qk: the score write agrees; reads are re-stated.
    assert close(r_qk["activation_bytes"], n * (qk.store_act + q_read + kv_read))
    assert close(r_qk["memory_bytes"], n * (qk.memory - qk.load_kv + q_read + kv_read))
    # sv: probability read and output write agree; V read at activation instead of KV bytes.
    assert close(r_sv["activation_bytes"], n * (sv.act + kv_read))
    assert close(r_sv["memory_bytes"], n * (sv.memory - sv.load_kv + kv_read))
    assert r_qk["kv_cache_bytes"] == r_sv["kv_cache_bytes"] == 0.0
    if b.a == b.kv:  # the two accountings then move the same bytes for sv, and for qk too when MHA
        assert close(r_sv["memory_bytes"], n * sv.memory)
        if nq == nkv:
            assert close(r_qk["memory_bytes"], n * qk.memory)


# --------------------------------------------------------------------------------------------------------------
# Documented, crisp relationships.
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("m", "b", "batch", "prompt"), CASES)
def test_norms(hw: str, m: Dense, b: Bits, batch: int, prompt: int) -> None:
    """attn_norm + mlp_norm = our ``norm`` (count 2 L). Bytes moved agree; RMSNorm costs 4 FLOPs per element
    in ours vs LLM-Viewer's 7 (a LayerNorm count); we also read the 16-bit norm weight (doc §6)."""
    for stage in STAGES:
        theirs = lv_norm(m, stage, batch, prompt, b)
        r = row(hw, m, b, batch, prompt, stage, "norm")
        instances = 2 * m.num_hidden_layers
        assert r["count"] == instances, stage
        assert close(r["activation_bytes"], instances * theirs.act), stage
        assert close(r["flops"], instances * theirs.ops * 4 / 7), stage
        assert close(r["weight_bytes"], instances * 2 * m.hidden_size), stage


@pytest.mark.parametrize(("m", "b", "batch", "prompt"), CASES)
def test_residual_adds(hw: str, m: Dense, b: Bits, batch: int, prompt: int) -> None:
    """attn_add + mlp_add = our ``residual_add`` (count 2 L): FLOPs agree; we read both operands (doc §7)."""
    for stage in STAGES:
        theirs = lv_add(m, stage, batch, prompt, b)
        r = row(hw, m, b, batch, prompt, stage, "residual_add")
        instances = 2 * m.num_hidden_layers
        second_operand = _tokens(stage, batch, prompt) * m.hidden_size * b.a_byte
        assert r["count"] == instances, stage
        assert close(r["flops"], instances * theirs.ops), stage
        assert close(r["activation_bytes"], instances * (theirs.act + second_operand)), stage
        assert r["weight_bytes"] == r["kv_cache_bytes"] == 0.0, stage


@pytest.mark.parametrize(("m", "b", "batch", "prompt"), CASES)
def test_mlp_act(hw: str, m: Dense, b: Bits, batch: int, prompt: int) -> None:
    """SiLU(gate) x up acts on intermediate_size elements, LLM-Viewer counts hidden_size: bytes scale by F / h;
    FLOPs per element 5 (ours) vs 2 (theirs) (doc §8)."""
    for stage in STAGES:
        theirs = lv_mlp_act(m, stage, batch, prompt, b)
        r = row(hw, m, b, batch, prompt, stage, "mlp_act")
        n, ratio = m.num_hidden_layers, m.intermediate_size / m.hidden_size
        assert close(r["activation_bytes"], n * theirs.act * ratio), stage
        assert close(r["flops"], n * theirs.ops * ratio * 5 / 2), stage


@pytest.mark.parametrize(("m", "b", "batch", "prompt"), CASES)
def test_lm_head(hw: str, m: Dense, b: Bits, batch: int, prompt: int) -> None:
    """Both count the LM head on the last position only, same weight bytes; we count 2 FLOPs per MAC and the
    activations of all B sequences (doc §9)."""
    for stage in STAGES:
        theirs = lv_lm_head(m, batch, b)
        r = row(hw, m, b, batch, prompt, stage, "lm_head")
        assert r["count"] == 1
        assert close(r["weight_bytes"], theirs.load_weight), stage
        assert close(r["flops"], 2 * theirs.ops), stage
        assert close(r["activation_bytes"], batch * theirs.act), stage


@pytest.mark.parametrize(("m", "b", "batch", "prompt"), CASES)
def test_phase_totals_reconcile(hw: str, m: Dense, b: Bits, batch: int, prompt: int) -> None:
    """Whole pass: ours = LLM-Viewer's sum + every documented delta + our embedding lookup and final norm
    (doc §10). Fails if an operator is added, dropped or re-costed anywhere in the pass."""
    for stage in STAGES:
        n, h, t = m.num_hidden_layers, m.hidden_size, _tokens(stage, batch, prompt)
        nkv_d = m.num_key_value_heads * m.head_size
        flops = bytes_ = 0.0
        for name in lv_linear_shapes(m):
            lv = lv_linear(m, name, stage, batch, prompt, b)
            extra = nkv_d * t * b.a_byte if name in ("k_proj", "v_proj") else 0.0
            flops += n * lv.ops
            bytes_ += n * (lv.memory + extra)
        qk, sm, sv = (fn(m, stage, batch, prompt, b) for fn in (lv_qk_matmul, lv_softmax, lv_sv_matmul))
        flops += n * (qk.ops + sm.ops + sv.ops)
        if stage == "decode":
            bytes_ += n * (qk.memory + sm.memory + sv.memory)
        else:
            q_read = t * m.num_attention_heads * m.head_size * b.a_byte
            kv_read = t * nkv_d * b.a_byte
            bytes_ += n * (qk.memory - qk.load_kv + q_read + kv_read + sm.memory + sv.memory - sv.load_kv + kv_read)
        norm, add, act = (fn(m, stage, batch, prompt, b) for fn in (lv_norm, lv_add, lv_mlp_act))
        ratio = m.intermediate_size / h
        flops += n * (2 * norm.ops * 4 / 7 + 2 * add.ops + act.ops * ratio * 5 / 2)
        bytes_ += n * (2 * (norm.memory + 2 * h) + 2 * (add.memory + t * h * b.a_byte) + act.memory * ratio)
        head = lv_lm_head(m, batch, b)
        flops += 2 * head.ops
        bytes_ += head.load_weight + batch * head.act
        # ours only: embedding lookup (one table row read, one row written per token) and the final RMSNorm
        bytes_ += t * h * (b.w_byte + b.a_byte)
        flops += 4 * t * h
        bytes_ += 2 * t * h * b.a_byte + 2 * h
        totals = ours(hw, m, b, batch, prompt)[stage]
        assert close(totals["flops"], flops), stage
        assert close(totals["memory_bytes"], bytes_), stage


@pytest.mark.parametrize(("m", "b", "batch", "prompt"), CASES)
def test_fused_attention(hw: str, m: Dense, b: Bits, batch: int, prompt: int) -> None:
    """flash_attention=True (doc §5). Decode FLOPs and Q read agree exactly; we read K and V of the kv_heads
    (LLM-Viewer: K only, of every query head) and write O once (LLM-Viewer: twice, sized by seqlen). Prefill:
    we compute the causal half, P (P + 1) / 2 pairs instead of P^2 (FlashAttention-2 §3.1)."""
    n, s = m.num_hidden_layers, prompt
    nq, nkv = m.num_attention_heads, m.num_key_value_heads
    buffer = 20e6  # LLM-Viewer's on-chip buffer parameter: irrelevant to the quantities compared below
    dec = lv_fused_attention(m, "decode", batch, s, b, buffer)
    r = row(hw, m, b, batch, s, "decode", "attention", flash=True)
    assert close(r["flops"], n * dec.ops)
    assert close(r["kv_cache_bytes"], n * dec.load_kv * 2 * nkv / nq)
    assert close(r["activation_bytes"], n * 2 * dec.load_act)  # Q in, O out: same size
    pre = lv_fused_attention(m, "prefill", batch, s, b, buffer)
    r = row(hw, m, b, batch, s, "prefill", "attention", flash=True)
    assert close(r["flops"], n * pre.ops * (s + 1) / (2 * s))
    assert r["kv_cache_bytes"] == 0.0  # prefill K/V are fresh activations; their tile re-reads depend on Br
    assert r["activation_bytes"] > n * 2 * pre.load_act  # Q in + O out, plus the K/V tile reads
    # Everything outside attention is unaffected by the attention implementation.
    rows_flash, rows_plain = ours(hw, m, b, batch, s, flash=True)["rows"], ours(hw, m, b, batch, s)["rows"]
    for key, plain in rows_plain.items():
        if key[1] not in ("qk_matmul", "softmax", "sv_matmul"):
            assert rows_flash[key]["memory_bytes"] == plain["memory_bytes"], key

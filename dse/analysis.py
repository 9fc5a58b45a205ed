"""One configuration, LLM-Viewer style: phase totals, serving metrics, memory, and a per-operator table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dse.costmodel import METRIC_NAMES, REASON_TEXT, CostAssumptions, PassCost, Rates, Reason
from dse.errors import InputError
from dse.scoring import Scored, score_columns


@dataclass(frozen=True)
class Analysis:
    """The analysis of one candidate (row 0 of an N=1 evaluation)."""

    inputs: dict[str, Any]
    scored: Scored

    def _layers(self, stage: str, cost: PassCost, rates: Rates, fused: np.ndarray) -> list[dict[str, Any]]:
        table = cost.table
        times = cost.op_time_s(rates, fused)[:, 0]
        parts = {w: cost.part(w)[:, 0] for w in ("flops", "memory_bytes", "weight_bytes", "act_bytes", "kv_bytes")}
        rows = []
        for i, spec in enumerate(table.specs):
            count = spec.count
            flops, nbytes = float(count * parts["flops"][i]), float(count * parts["memory_bytes"][i])
            if flops == 0 and nbytes == 0:
                continue
            rows.append(
                {
                    "name": spec.name,
                    "stage": stage,
                    "count": count,
                    "flops": flops,
                    "memory_bytes": nbytes,
                    "weight_bytes": float(count * parts["weight_bytes"][i]),
                    "activation_bytes": float(count * parts["act_bytes"][i]),
                    "kv_cache_bytes": float(count * parts["kv_bytes"][i]),
                    "time_s": float(times[i]),
                    "arithmetic_intensity": flops / nbytes if nbytes else None,
                    "bound": "compute" if cost.compute_s[i, 0] > cost.memory_s[i, 0] else "memory",
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        """The ``dse analyze --json`` object (DESIGN.md §4 contract, plus extra fields)."""
        s, ev, m = self.scored, self.scored.evaluation, self.scored.metrics
        assert ev is not None and ev.decode_ops is not None  # one candidate, one chunk, with detail
        reason = Reason(int(m.reason[0]))
        mem = ev.memory
        out: dict[str, Any] = {"inputs": self.inputs, "compute_format": str(s.compute_format[0])}
        for name, phase in (("prefill", ev.prefill), ("decode", ev.decode_step)):
            out[name] = {
                "flops": float(phase.flops[0]),
                "memory_bytes": float(phase.memory_bytes[0]),
                "time_s": float(phase.time_s[0]),
            }
        out |= {name: float(getattr(m, name)[0]) for name in METRIC_NAMES}
        out["decode_throughput_tokens_per_s"] = float(m.decode_throughput_tokens_per_s[0])
        out["memory"] = {
            "weights_bytes": float(mem.weights_bytes[0]),
            "kv_cache_bytes": float(mem.kv_cache_bytes[0]),
            "activation_bytes": float(mem.activation_bytes[0]),
            "reserve_bytes": float(mem.reserve_bytes[0]),
            "total_bytes": float(mem.total_bytes[0]),
            "capacity_bytes": float(mem.capacity_bytes[0]),
            "max_batch": int(mem.max_batch[0]),
        }
        out["feasible"] = bool(m.feasible[0])
        out["infeasible_reason"] = REASON_TEXT[reason]
        fused = np.full(1, float(self.inputs["flash_attention"]))
        out["layers"] = self._layers("prefill", ev.prefill_ops, ev.rates, fused) + self._layers(
            "decode", ev.decode_ops, ev.rates, fused
        )
        return _finite(out)


def _finite(value: Any) -> Any:
    """NaN/inf -> None so the JSON is standard (unknown prices stay explicitly unknown)."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def analyze(
    model: str,
    hardware: str,
    *,
    quant: str | None = None,
    weight_bits: float | None = None,
    act_bits: float | None = None,
    kv_bits: float | None = None,
    kv: str | None = None,
    batch: int = 1,
    prompt_len: int = 1024,
    gen_len: int = 256,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    flash_attention: bool = True,
    ideal: bool = False,
    profile: str | None = None,
    costs: CostAssumptions = CostAssumptions(),
) -> Analysis:
    """Analyse one deployment candidate; the same vectorised code path as ``dse.evaluate`` with N = 1."""
    for name, value in (("tp", tp), ("pp", pp), ("ep", ep)):
        if value != 1:
            raise InputError(
                f"only 1 is supported so far (single device); got {value}. Tensor, pipeline and expert "
                "parallelism arrive with the multi-device cost model",
                field=name,
            )
    if ideal and profile is not None:
        raise InputError("give either --ideal or --profile, not both", field="profile")
    inputs = {
        "model": model,
        "hardware": hardware,
        "quant": quant,
        "weight_bits": weight_bits,
        "act_bits": act_bits,
        "kv_bits": kv_bits,
        "kv": kv,
        "batch": batch,
        "prompt_len": prompt_len,
        "gen_len": gen_len,
        "flash_attention": flash_attention,
    }
    chosen = "ideal" if ideal else (profile or "default")
    [(_, scored)] = score_columns({k: [v] for k, v in inputs.items()}, profile=chosen, costs=costs, detail=True)
    return Analysis(inputs | {"profile": chosen, "tp": tp, "pp": pp, "ep": ep, "pricing": costs.pricing}, scored)

"""A loaded search space: resolved catalogs, statically pruned enumeration, vectorised evaluation."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from dse.catalog import (
    ModelSpec,
    Numerics,
    is_path,
    load_kv_format,
    load_model,
    load_profile,
    load_scheme,
    load_target,
    resolve_numerics,
)
from dse.catalog._files import read_document, validate
from dse.costmodel import METRIC_NAMES, CostAssumptions
from dse.errors import InputError
from dse.scoring import Scored, Target, build_candidates, reason_text, score_model
from dse.space._schema import SpaceRecord

METRICS = METRIC_NAMES
PARAMETERS = ("hardware", "quant", "kv", "flash_attention", "batch")


@dataclass(frozen=True)
class Space:
    """A search space ready to enumerate and evaluate.

    Candidates are identified by ``candidate_id``, their position in the full product
    hardware x (quant, kv) x flash_attention x batch (stable across runs and engines). Static pruning drops
    every (hardware, quant, kv, flash) combination that cannot run at its smallest batch, and every batch above
    the largest that fits in memory (exact: KV and activations are linear in batch); the rest is enumerated
    by ``index`` in 0..size-1.
    """

    record: SpaceRecord
    source: str
    digest: str
    model: ModelSpec
    hardware: tuple[Target, ...]
    """(accelerator, system or None) per hardware choice, in the order written."""
    numerics: tuple[Numerics, ...]
    numerics_keys: tuple[tuple[str, str | None], ...]
    numerics_index: dict[tuple[str, str | None], int]
    """(quant, kv) as written -> index into ``numerics``; choices that resolve to the same numbers share one."""
    flash: tuple[bool, ...]
    batches: np.ndarray
    combo_codes: np.ndarray
    """(C x 3) hardware, numerics and flash codes of the combinations that survive pruning."""
    combo_batches: np.ndarray
    """How many of the smallest batch values each surviving combination allows."""
    offsets: np.ndarray
    pruned: tuple[tuple[str, str, str | None, bool, str], ...]
    """Pruned combinations: (hardware, quant, kv, flash, reason)."""

    @property
    def bounds(self) -> list[tuple[str, str, float | None, float | None]]:
        """(label, metric, min, max) of every SLO, then every constraint, in the order they are checked."""
        slo = [(f"slo {n}", n, None, getattr(self.record.slo, n)) for n in ("ttft_s", "tpot_s", "e2e_latency_s")]
        out: list[tuple[str, str, float | None, float | None]] = [b for b in slo if b[3] is not None]
        out += [(f"constraint {c.metric}", str(c.metric), c.min, c.max) for c in self.record.constraints]
        return out

    @property
    def full_size(self) -> int:
        return len(self.hardware) * len(self.numerics) * len(self.flash) * len(self.batches)

    @property
    def size(self) -> int:
        return int(self.offsets[-1])

    @property
    def costs(self) -> CostAssumptions:
        return CostAssumptions(pricing=self.record.pricing)

    def candidate_ids(self, hw: np.ndarray, num: np.ndarray, flash: np.ndarray, batch: np.ndarray) -> np.ndarray:
        """Position in the full product of the given codes (mixed radix)."""
        ids = (hw * len(self.numerics) + num) * len(self.flash) + flash
        return ids * len(self.batches) + batch  # type: ignore[no-any-return]

    def codes_of_index(self, index: np.ndarray) -> tuple[np.ndarray, ...]:
        """Codes (hardware, numerics, flash, batch) of pruned-enumeration indices."""
        combo = np.searchsorted(self.offsets, index, side="right") - 1
        batch = index - self.offsets[combo]
        hw, num, flash = self.combo_codes[combo].T
        return hw, num, flash, batch

    def codes_of_ids(self, ids: np.ndarray) -> tuple[np.ndarray, ...]:
        """Codes (hardware, numerics, flash, batch) of candidate ids."""
        rest, batch = np.divmod(ids, len(self.batches))
        rest, flash = np.divmod(rest, len(self.flash))
        hw, num = np.divmod(rest, len(self.numerics))
        return hw, num, flash, batch

    def evaluate_codes(self, hw: np.ndarray, num: np.ndarray, flash: np.ndarray, batch: np.ndarray) -> dict[str, Any]:
        """Parameters, every canonical metric, feasibility (cost model, SLOs, constraints) and reason."""
        workload = {
            "batch": self.batches[batch].astype(np.float64),
            "prompt_len": np.full(len(hw), float(self.record.workload.prompt_tokens)),
            "gen_len": np.full(len(hw), float(self.record.workload.output_tokens)),
            "flash": np.asarray(self.flash)[flash],
        }
        cand, formats = build_candidates(
            self.hardware, hw, self.numerics, num, workload, profile=self.record.profile, costs=self.costs
        )
        scored = score_model(self.model, cand, formats, self.costs)
        columns = self._parameters(hw, num, flash, batch)
        columns |= {name: getattr(scored.metrics, name) for name in METRICS}
        columns["compute_format"] = formats
        columns["max_batch"] = scored.memory.max_batch  # the largest batch of this configuration that fits
        columns |= self._feasibility(scored)
        return columns

    def _parameters(self, hw: np.ndarray, num: np.ndarray, flash: np.ndarray, batch: np.ndarray) -> dict[str, Any]:
        keys = np.asarray(self.numerics_keys, dtype=object)
        return {
            "candidate_id": self.candidate_ids(hw, num, flash, batch),
            "hardware": np.asarray(self.record.choices.hardware, dtype=object)[hw],
            "quant": keys[num, 0],
            "kv": keys[num, 1],
            "flash_attention": np.asarray(self.flash)[flash],
            "batch": self.batches[batch],
        }

    def _feasibility(self, scored: Scored) -> dict[str, Any]:
        """Cost-model feasibility, then SLOs, then constraints; the first failure names the reason.

        An unknown metric (NaN, e.g. an unknown price) fails any bound on it: it cannot be shown to hold.
        """
        m = scored.metrics
        feasible = m.feasible.copy()
        reason = reason_text(m.reason)
        for label, metric, low, high in self.bounds:
            values = getattr(m, metric)
            checks = [(high, ~(values <= high), "above")] if high is not None else []
            checks += [(low, ~(values >= low), "below")] if low is not None else []
            for bound, violated, side in checks:
                reason = np.where(violated & feasible, f"{label}: {side} {bound:g}", reason)
                feasible = feasible & ~violated
        return {"cost_model_feasible": m.feasible, "feasible": feasible, "infeasible_reason": reason}

    def evaluate_index(self, index: np.ndarray) -> dict[str, Any]:
        """Evaluate pruned-enumeration indices."""
        return self.evaluate_codes(*self.codes_of_index(index))


def _resolve(record: SpaceRecord, source: str, path: Path | None) -> tuple[Any, ...]:
    def wrap(field: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            message = str(exc).split(": ", 1)[-1] if exc.field else str(exc)
            raise InputError(message, source=source, field=field) from None

    base = path.parent if path is not None else Path(".")
    model_ref = record.model
    if is_path(model_ref) and not Path(model_ref).is_absolute():
        model_ref = str(base / model_ref)
    model = wrap("model", load_model, model_ref)
    hardware = tuple(wrap(f"choices.hardware.{i}", load_target, h) for i, h in enumerate(record.choices.hardware))
    for i, q in enumerate(record.choices.quant):  # each id checked where it is written
        wrap(f"choices.quant.{i}", load_scheme, q)
    for i, kv in enumerate(record.choices.kv):
        if kv is not None:
            wrap(f"choices.kv.{i}", load_kv_format, kv)
    keys: list[tuple[str, str | None]] = []
    numerics: list[Numerics] = []
    alias: dict[tuple[str, str | None], int] = {}
    for q in record.choices.quant:
        for kv in record.choices.kv:
            resolved = resolve_numerics(q, kv_format=kv)
            if resolved not in numerics:  # e.g. nvfp4 with fp8 KV is nvfp4 with its default KV: one candidate
                keys.append((q, kv))
                numerics.append(resolved)
            alias[(q, kv)] = numerics.index(resolved)
    wrap("profile", load_profile, record.profile)
    return model, hardware, tuple(keys), tuple(numerics), alias


def _batches(record: SpaceRecord) -> np.ndarray:
    batch = record.choices.batch
    if isinstance(batch, list):
        return np.asarray(sorted(set(batch)), dtype=np.int64)
    return np.arange(batch.min, batch.max + 1, batch.step, dtype=np.int64)


def build_space(record: SpaceRecord, *, source: str = "<space>", path: Path | None = None, digest: str = "") -> Space:
    """Resolve a validated record and prune it statically."""
    model, hardware, keys, numerics, alias = _resolve(record, source, path)
    flash = tuple(record.choices.flash_attention)
    batches = _batches(record)
    grid = np.stack(
        np.meshgrid(np.arange(len(hardware)), np.arange(len(numerics)), np.arange(len(flash)), indexing="ij"), -1
    )
    grid = grid.reshape(-1, 3)
    draft = Space(
        record,
        source,
        digest,
        model,
        hardware,
        numerics,
        keys,
        alias,
        flash,
        batches,
        grid,
        np.ones(len(grid), dtype=np.int64),
        np.arange(len(grid) + 1),
        (),
    )
    smallest = draft.evaluate_codes(grid[:, 0], grid[:, 1], grid[:, 2], np.zeros(len(grid), dtype=np.int64))
    cand_reason = smallest["infeasible_reason"]
    runnable = smallest["cost_model_feasible"]
    max_batch = smallest["max_batch"]  # independent of the batch: KV and activations are linear in it
    allowed = np.where(runnable, np.searchsorted(batches, max_batch, side="right"), 0)
    pruned = tuple(
        (record.choices.hardware[h], keys[q][0], keys[q][1], flash[f], str(cand_reason[i] or "no batch fits in memory"))
        for i, (h, q, f) in enumerate(grid)
        if allowed[i] == 0
    )
    keep = allowed > 0
    offsets = np.concatenate([[0], np.cumsum(allowed[keep])])
    return replace(draft, combo_codes=grid[keep], combo_batches=allowed[keep], offsets=offsets, pruned=pruned)


def load_space(path: str | Path) -> Space:
    """Load, validate, resolve and prune a search-space YAML file."""
    path = Path(path)
    record = validate(SpaceRecord, read_document(path), source=str(path), path=path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return build_space(record, source=str(path), path=path, digest=digest)

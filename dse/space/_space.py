"""A loaded search space: resolved catalogs, statically pruned enumeration, vectorised evaluation."""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from dse.catalog import (
    CALIBRATED,
    ModelSpec,
    Numerics,
    is_path,
    load_kv_format,
    load_model,
    load_profile,
    load_scheme,
    load_target,
    read_document,
    read_price_sheet,
    resolve_numerics,
    validate,
)
from dse.costmodel import METRIC_NAMES, REASON_TEXT, SERVING_QUANTILES, CostAssumptions, Reason, evicts
from dse.costmodel.physics.lengths import candidate_lengths
from dse.errors import InputError
from dse.scoring import (
    INPUTS,
    Scored,
    Target,
    architecture,
    build_candidates,
    convert,
    draft_figures,
    prefilling,
    ratio_at,
    reason_text,
    score_model,
    serving_columns,
    target_prices,
    target_ratios,
    unpriced_reason,
    with_draft,
)
from dse.space._lengths import WorkloadLengths, beyond_context, workload_lengths
from dse.space._schema import SpaceRecord

METRICS = METRIC_NAMES

DIMENSIONS = (
    "hardware",
    "numerics",
    "flash_attention",
    "tp",
    "pp",
    "ep",
    "kv_block_size",
    "kv_offload",
    "kv_budget",
    "replicas",
    "scheduler",
    "max_num_seqs",
    "chunk_tokens",
    "mode",
    "prefill_replicas",
    "prefill_hardware",
    "prefill_tp",
    "prefill_pp",
    "spec_tokens",
    "draft",
    "batch",
)
"""The product's dimensions, outermost first: a candidate id is a mixed-radix number over them. The
deployment dimensions sit between flash_attention and batch, so a space that leaves them at their single
default value keeps the ids it had before they existed."""

SETTINGS = DIMENSIONS[2:-1]
"""Dimensions whose codes index ``choices.<name>`` as written (all but hardware, numerics and batch)."""

PARAMETERS = ("hardware", "quant", "kv", *SETTINGS, "batch")
"""Parameter columns of every result row, in id order."""

WORKLOAD_COLUMNS = ("prefix_hit_rate", "request_rate", "concurrency")
"""Workload figures written in every result row after the parameters: one value per space (the same in every
row), kept so that a run's tables say which traffic they answer for, alone or joined across a sweep."""

WORKLOAD_INPUTS = ("prefix_hit_rate", "expert_imbalance", "request_rate", "concurrency", "spec_acceptance")
"""Inputs (``dse.scoring.INPUTS``) a space's workload gives, one value for every candidate."""

SLO_INPUTS = {"slo_ttft_s": "ttft_s", "slo_tpot_s": "tpot_s", "slo_percentile": "percentile"}
"""Inputs a space's ``slo`` gives (input -> its key there): the SLOs ``max_request_rate`` is found under."""
DEFAULT_PERCENTILE = 90
"""``max_request_rate``'s percentile where ``slo.percentile`` is not given."""

OBJECT_SETTINGS = ("kv_block_size", "kv_budget", "prefill_tp", "prefill_pp", "draft", "prefill_hardware")
"""Settings held as object columns (a value or None)."""
OPTIONAL_INTS = OBJECT_SETTINGS[:4]
"""Parameters that are a whole number or None (object columns of int/None; int64 with nulls in tables)."""

Codes = tuple[np.ndarray, ...]
"""One integer array per dimension of ``DIMENSIONS``, in that order."""


class Pruned(NamedTuple):
    """A combination of every parameter but batch that cannot run at any batch, and why."""

    hardware: str
    quant: str
    kv: str | None
    flash_attention: bool
    tp: int
    pp: int
    ep: int
    kv_block_size: int | None
    kv_offload: float
    kv_budget: int | None
    replicas: int
    scheduler: str
    max_num_seqs: int
    chunk_tokens: int
    mode: str
    prefill_replicas: int
    prefill_hardware: str | None
    prefill_tp: int | None
    prefill_pp: int | None
    spec_tokens: int
    draft: str | None
    reason: str


@dataclass(frozen=True)
class Space:
    """A search space ready to enumerate and evaluate.

    Candidates are identified by ``candidate_id``, their position in the full product of ``DIMENSIONS``
    (hardware x (quant, kv) x flash_attention x tp x pp x ep x kv_block_size x kv_offload x kv_budget
    x replicas x batch; stable across runs and engines). Static pruning drops every combination
    of all but batch that cannot run at its smallest batch, and every batch above the largest that can fit
    in memory (the cost model's ``max_batch`` at the smallest batch, an upper bound at every batch), and keeps
    one candidate of those that differ only in settings they do not use; the rest is enumerated by ``index``
    in 0..size-1. ``representative_ids`` maps any id of the full product onto it (what samplers propose).
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
    settings: dict[str, tuple[Any, ...]]
    """Values of each ``SETTINGS`` dimension, as written in ``choices``."""
    batches: np.ndarray
    combo_codes: np.ndarray
    """(C x D-1) codes of every dimension but batch, of the combinations that survive pruning."""
    combo_batches: np.ndarray
    """How many of the smallest batch values each surviving combination allows."""
    offsets: np.ndarray
    pruned: tuple[Pruned, ...]
    lengths: WorkloadLengths
    """The workload's prompt and output lengths (fixed, or distributions)."""

    @property
    def bounds(self) -> list[tuple[str, str, float | None, float | None]]:
        """(label, metric, min, max) of every SLO, then every constraint, in the order they are checked."""
        at = f" at p{round(100 * self.record.slo.confidence)}" if self.record.slo.confidence is not None else ""
        if self.record.slo.percentile is not None:  # continuous batching's load percentile
            at = f" (p{self.record.slo.percentile} of the load){at}"
        slo = [(f"slo {n}{at}", n, None, getattr(self.record.slo, n)) for n in ("ttft_s", "tpot_s", "e2e_latency_s")]
        out: list[tuple[str, str, float | None, float | None]] = [b for b in slo if b[3] is not None]
        out += [(f"constraint {c.metric}", str(c.metric), c.min, c.max) for c in self.record.constraints]
        return out

    @property
    def radices(self) -> tuple[int, ...]:
        """Number of values of each dimension of ``DIMENSIONS``."""
        return (
            len(self.hardware),
            len(self.numerics),
            *(len(self.settings[name]) for name in SETTINGS),
            len(self.batches),
        )

    @property
    def full_size(self) -> int:
        return math.prod(self.radices)

    @property
    def size(self) -> int:
        return int(self.offsets[-1])

    @property
    def costs(self) -> CostAssumptions:
        """The space's pricing; a price sheet's path is relative to the space file."""
        return space_costs(self.record, Path(self.source) if self.source != "<space>" else None)

    @property
    def unpriced(self) -> dict[str, str]:
        """Why a hardware of the space has no price in its pricing (``dse.scoring.unpriced_reason``), by id; a
        hardware with a price is left out."""
        costs = self.costs
        reasons = (unpriced_reason(target_prices(target, costs), costs) for target in self.hardware)
        return {name: why for name, why in zip(self.record.choices.hardware, reasons, strict=True) if why}

    def candidate_ids(self, *codes: np.ndarray) -> np.ndarray:
        """Position in the full product of the given codes (one array per dimension; mixed radix)."""
        if len(codes) != len(DIMENSIONS):
            raise TypeError(f"expected {len(DIMENSIONS)} code arrays ({', '.join(DIMENSIONS)}), got {len(codes)}")
        ids = np.asarray(codes[0], dtype=np.int64)
        for code, radix in zip(codes[1:], self.radices[1:], strict=True):
            if radix > 1:  # a single-valued dimension's code is 0: it leaves the id unchanged
                ids = ids * radix + code
        return ids

    def codes_of_index(self, index: np.ndarray) -> Codes:
        """Codes (one array per dimension) of pruned-enumeration indices."""
        combo = np.searchsorted(self.offsets, index, side="right") - 1
        batch = index - self.offsets[combo]
        return (*self.combo_codes[combo].T, batch)

    def codes_of_ids(self, ids: np.ndarray) -> Codes:
        """Codes (one array per dimension) of candidate ids."""
        codes = []
        rest = np.asarray(ids, dtype=np.int64)
        for radix in reversed(self.radices[1:]):
            if radix > 1:
                rest, code = np.divmod(rest, radix)
            else:
                code = np.zeros_like(rest)
            codes.append(code)
        return (rest, *reversed(codes))

    def allowed_batches(self, combos: np.ndarray) -> np.ndarray:
        """How many of the smallest batch values each combination (rows of codes of every dimension but batch)
        keeps after static pruning: 0 for a pruned combination, or one that is not its own representative."""
        keys, wanted = self._combo_keys, self._combo_key(combos)
        if not len(keys):
            return np.zeros(len(wanted), dtype=np.int64)
        at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        return np.where(keys[at] == wanted, self.combo_batches[at], 0)

    def representative_ids(self, ids: np.ndarray) -> np.ndarray:
        """The candidate of the statically pruned space that each candidate id of the full product is: itself,
        or, where a setting the candidate does not use sits at another value (or the batch does not apply), the
        one candidate the enumeration keeps for it; -1 where static pruning removed it (a pruned combination,
        or a batch above the largest that fits in memory)."""
        codes = self.codes_of_ids(ids)
        served, combos = _representatives(self.settings, np.stack(codes[:-1], axis=1), self.record.choices.hardware)
        batch = np.where(served, 0, codes[-1])
        inside = batch < self.allowed_batches(combos)
        return np.where(inside, self.candidate_ids(*combos.T, batch), -1)

    @functools.cached_property
    def _combo_keys(self) -> np.ndarray:
        """Ids at batch code 0 of the combinations that survive pruning, ascending (they are kept in id order)."""
        return self._combo_key(self.combo_codes)

    def _combo_key(self, combos: np.ndarray) -> np.ndarray:
        return self.candidate_ids(*combos.T, np.zeros(len(combos), dtype=np.int64))

    def evaluate_codes(self, *codes: np.ndarray) -> dict[str, Any]:
        """Parameters, every canonical metric, feasibility (cost model, SLOs, constraints) and reason."""
        code = dict(zip(DIMENSIONS, codes, strict=True))
        targets, pools = self._pool_targets
        pool = pools[code["prefill_hardware"]]
        pool_codes = np.where(pool >= 0, pool, code["hardware"])
        cand, formats = build_candidates(
            self.model,
            targets,
            code["hardware"],
            self.numerics,
            code["numerics"],
            self._workload(code),
            profile=self.record.profile,
            costs=self.costs,
            prefill_codes=pool_codes,
        )
        drafts = np.asarray(self.settings["draft"], dtype=object)[code["draft"]]
        cand = with_draft(self.model, cand, drafts if any(d is not None for d in self.settings["draft"]) else None)
        scored = score_model(self.model, cand, formats, totals=False)
        columns = self._parameters(code)
        work = self.record.workload
        columns |= {name: np.full(len(cand), _number(getattr(work, name))) for name in WORKLOAD_COLUMNS}
        columns |= {name: getattr(scored.metrics, name) for name in METRICS}
        columns["compute_format"] = formats
        columns["quality_affecting"] = self._evicting()[code["kv_budget"]]
        columns["max_batch"] = scored.memory.max_batch  # the largest batch of this configuration that fits
        disaggregated = np.asarray(self.settings["mode"], dtype=object)[code["mode"]] == "disaggregated"
        columns |= self._feasibility(scored, code["hardware"], prefilling(code["hardware"], pool_codes, disaggregated))
        columns |= serving_columns(scored)
        return columns

    @functools.cached_property
    def _pool_targets(self) -> tuple[list[Target], np.ndarray]:
        """The hardware choices' targets followed by those of ``choices.prefill_hardware``, and per value of
        the latter its index among them (-1: null, the candidate's own hardware)."""
        targets, index = list(self.hardware), []
        for ref in self.settings["prefill_hardware"]:
            index.append(-1 if ref is None else len(targets))
            if ref is not None:
                targets.append(load_target(ref))
        return targets, np.asarray(index, dtype=np.int64)

    @functools.cached_property
    def _fields(self) -> dict[str, np.ndarray]:
        """Each setting's values (as written in ``choices``) and each workload input, as the cost model's fields
        (``dse.scoring.INPUTS``: converted and checked once)."""
        work = self.record.workload
        slo = self.record.slo.model_dump()
        slo["percentile"] = slo["percentile"] or DEFAULT_PERCENTILE
        fields: dict[str, np.ndarray] = {}
        for i in INPUTS:
            if i.field is None:  # resolved through the catalogs (hardware, formats, the draft)
                continue
            if i.name in SETTINGS:
                fields[i.field] = convert(i.name, self.settings[i.name])
            elif i.name in WORKLOAD_INPUTS:
                fields[i.field] = convert(i.name, [getattr(work, i.name)])
            elif i.name in SLO_INPUTS:
                fields[i.field] = convert(i.name, [slo[SLO_INPUTS[i.name]]])
        return fields

    def _workload(self, code: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The candidate fields that come from the space rather than the catalogs, by indexing small tables."""
        n = len(code["batch"])
        batch = self.batches[code["batch"]].astype(np.float64)
        served = np.isin(np.asarray(self.settings["scheduler"], dtype=object)[code["scheduler"]], ["continuous"])
        served |= np.isin(np.asarray(self.settings["mode"], dtype=object)[code["mode"]], ["disaggregated"])
        lengths = self.lengths
        workload = {"batch": batch} | candidate_lengths(
            lengths.prompts, lengths.outputs, batch, served, lengths.covariance
        )
        for i in INPUTS:
            if i.name in SETTINGS and i.field:
                workload[i.field] = self._fields[i.field][code[i.name]]  # type: ignore[index]
            elif i.name in WORKLOAD_INPUTS or i.name in SLO_INPUTS:
                workload[i.field] = np.full(n, self._fields[i.field][0])  # type: ignore[index]
        return workload

    def _evicting(self) -> np.ndarray:
        """Per kv_budget value: whether it evicts tokens the model would attend to (``dse.costmodel.evicts``) in
        the longest request."""
        context = self.lengths.prompts.largest + self.lengths.outputs.largest
        arch = architecture(self.model)
        return np.asarray([bool(evicts(arch, b, context)) for b in self.settings["kv_budget"]], dtype=bool)

    def _parameters(self, code: dict[str, np.ndarray]) -> dict[str, Any]:
        keys = np.asarray(self.numerics_keys, dtype=object)
        columns = {
            "candidate_id": self.candidate_ids(*(code[name] for name in DIMENSIONS)),
            "hardware": np.asarray(self.record.choices.hardware, dtype=object)[code["hardware"]],
            "quant": keys[code["numerics"], 0],
            "kv": keys[code["numerics"], 1],
        }
        for name in SETTINGS:
            values = self.settings[name]
            columns[name] = np.asarray(values, dtype=object if name in OBJECT_SETTINGS else None)[code[name]]
        columns["batch"] = self.batches[code["batch"]]
        return columns

    @functools.cached_property
    def _slo_ratios(self) -> np.ndarray:
        """(targets x 2): measured / predicted of TTFT and TPOT at ``slo.confidence`` per target of
        ``_pool_targets`` (the hardware choices, then the prefill hardware choices)."""
        confidence = self.record.slo.confidence
        targets = self._pool_targets[0]
        ratios = target_ratios(targets, self.record.profile)
        return np.asarray(
            [[ratio_at(r["ttft_s"], confidence), ratio_at(r["tpot_s"], confidence)] for _, r in ratios]
            if confidence is not None
            else np.ones((len(targets), 2))
        ).reshape(-1, 2)

    def _slo_values(self, scored: Scored, metric: str, hardware: np.ndarray, prefill: np.ndarray) -> np.ndarray:
        """A latency SLO's metric: under continuous batching at ``slo.percentile`` of the load when given;
        at ``slo.confidence`` (TTFT and TPOT scaled by their ratios: TTFT's those of the target that prefills,
        ``prefill``, TPOT's of ``hardware``; e2e latency as TTFT plus the decode time, each scaled by its own);
        other metrics as predicted."""
        m = scored.metrics
        values = getattr(m, metric)
        percentile = self.record.slo.percentile
        if percentile is not None and metric in ("ttft_s", "tpot_s"):
            index = SERVING_QUANTILES.index(percentile / 100)
            quantiles = scored.serving.ttft_quantiles_s if metric == "ttft_s" else scored.serving.tpot_quantiles_s
            values = np.where(np.isnan(quantiles[index]), values, quantiles[index])  # static rows: the point
        if self.record.slo.confidence is None or metric not in ("ttft_s", "tpot_s", "e2e_latency_s"):
            return values  # type: ignore[no-any-return]
        ttft, tpot = self._slo_ratios[prefill, 0], self._slo_ratios[hardware, 1]
        if metric == "ttft_s":
            return values * ttft  # type: ignore[no-any-return]
        if metric == "tpot_s":
            return values * tpot  # type: ignore[no-any-return]
        return m.ttft_s * ttft + (values - m.ttft_s) * tpot  # type: ignore[no-any-return]

    def _feasibility(self, scored: Scored, hardware: np.ndarray, prefill: np.ndarray) -> dict[str, Any]:
        """Cost-model feasibility, then SLOs (at ``slo.confidence`` when given), then constraints; the first
        failure names the reason.

        An unknown metric (NaN, e.g. an unknown price) fails any bound on it: it cannot be shown to hold.
        """
        m = scored.metrics
        feasible = m.feasible.copy()
        reason = reason_text(m.reason)
        for label, metric, low, high in self.bounds:
            slo = label.startswith("slo ")
            values = self._slo_values(scored, metric, hardware, prefill) if slo else getattr(m, metric)
            checks = [(high, ~(values <= high), "above")] if high is not None else []
            checks += [(low, ~(values >= low), "below")] if low is not None else []
            for bound, violated, side in checks:
                reason = np.where(violated & feasible, f"{label}: {side} {bound:g}", reason)
                feasible = feasible & ~violated
        return {"cost_model_feasible": m.feasible, "feasible": feasible, "infeasible_reason": reason}

    def evaluate_index(self, index: np.ndarray) -> dict[str, Any]:
        """Evaluate pruned-enumeration indices."""
        return self.evaluate_codes(*self.codes_of_index(index))

    def pruned_entry(self, combo: np.ndarray, reason: str) -> Pruned:
        """The ``Pruned`` record of one combination's codes (every dimension but batch)."""
        code = dict(zip(DIMENSIONS[:-1], combo.tolist(), strict=True))
        quant, kv = self.numerics_keys[code["numerics"]]
        values = {name: self.settings[name][code[name]] for name in SETTINGS}
        return Pruned(self.record.choices.hardware[code["hardware"]], quant, kv, **values, reason=reason)


def space_costs(record: SpaceRecord, path: Path | None) -> CostAssumptions:
    """``CostAssumptions`` of a space's ``pricing`` (a scenario, or a ``PricingRecord``)."""
    pricing = record.pricing
    if isinstance(pricing, str):
        return CostAssumptions(pricing=pricing)
    sheet = pricing.sheet
    if sheet is not None and not Path(sheet).is_absolute() and path is not None:
        sheet = str(path.parent / sheet)
    return CostAssumptions(
        pricing=pricing.scenario,
        amortization_years=pricing.horizon_years,
        usd_per_kwh=pricing.usd_per_kwh,
        pue=pricing.pue,
        ops_share_per_year=pricing.ops_share_per_year,
        reserved_term=pricing.reserved_term,
        sheet=sheet,
    )


def _resolve(record: SpaceRecord, source: str, path: Path | None) -> tuple[Any, ...]:
    def wrap(field: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InputError as exc:  # the space's file and key, then the file the problem is in (a config.json)
            where = ": ".join(p for p in (exc.source, exc.field if exc.source else None) if p)
            message = f"{where}: {exc.message}" if where else exc.message
            raise InputError(message, source=source, field=field) from None

    base = path.parent if path is not None else Path(".")
    model_ref = record.model
    if is_path(model_ref) and not Path(model_ref).is_absolute():
        model_ref = str(base / model_ref)
    model = wrap("model", load_model, model_ref)
    sheet = space_costs(record, path).sheet
    if sheet is not None:
        wrap("pricing.sheet", read_price_sheet, sheet)
    hardware = tuple(wrap(f"choices.hardware.{i}", load_target, h) for i, h in enumerate(record.choices.hardware))
    prefill = [
        (h, wrap(f"choices.prefill_hardware.{i}", load_target, h))
        for i, h in enumerate(record.choices.prefill_hardware)
        if h is not None
    ]
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
    for i, d in enumerate(record.choices.draft):  # a draft id or path as evaluation reads it: known, same tokenizer
        if d is not None:
            wrap(f"choices.draft.{i}", draft_figures, model, d)
    if record.profile != CALIBRATED:
        wrap("profile", load_profile, record.profile)
    if record.slo.confidence is not None:
        named = [*record.choices.hardware, *(h for h, _ in prefill)]
        loaded = [*hardware, *(t for _, t in prefill)]
        lacking = [
            str(h)
            for h, (_, r) in zip(named, target_ratios(loaded, record.profile), strict=True)
            if not np.isfinite(r["ttft_s"] + r["tpot_s"]).all()
        ]
        if lacking:
            raise InputError(
                f"needs error intervals, and profile {record.profile!r} has none for "
                f"{', '.join(lacking)} (use a fitted profile, e.g. calibrated)",
                source=source,
                field="slo.confidence",
            )
    return model, hardware, tuple(keys), tuple(numerics), alias


def _lengths(record: SpaceRecord, source: str, path: Path | None, model: Any) -> WorkloadLengths:
    """The workload's lengths, histograms read relative to the space file; the longest request must fit in
    the model's context."""
    try:
        lengths = workload_lengths(record.workload, path.parent if path is not None else Path("."))
    except InputError as exc:
        if exc.source is not None:
            raise
        raise InputError(str(exc).split(": ", 1)[-1], source=source, field=exc.field) from None
    context = architecture(model).max_position_embeddings
    why = beyond_context(lengths.prompts, lengths.outputs, context, model.id)
    if why is not None:
        raise InputError(why, source=source, field="workload")
    return lengths


def _number(value: float | None) -> float:
    """A workload figure as a float column value (None: NaN)."""
    return np.nan if value is None else float(value)


def _representatives(
    settings: dict[str, tuple[Any, ...]], grid: np.ndarray, hardware: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Per combination (rows of ``grid``: codes of every dimension but batch), whether the batch does not apply
    (continuous batching and disaggregated pools hold what the load needs), and the codes of the combination
    that stands for it: every setting the combination does not use at its first value (serving settings of a
    static batch, the prefill pool's of aggregated serving, the draft without draft tokens, the scheduler of
    disaggregated pools, which batch continuously whatever it says), and null where a value names what null
    means (a prefill pool's tp or pp equal to ``tp`` or ``pp``, its hardware equal to ``hardware``). A combination whose
    representative differs is the same candidate again, enumerated once."""

    def value(name: str) -> np.ndarray:
        return np.asarray(settings[name], dtype=object)[grid[:, DIMENSIONS.index(name)]]

    continuous = value("scheduler") == "continuous"
    disaggregated = value("mode") == "disaggregated"
    served = continuous | disaggregated
    speculating = np.asarray([v > 0 for v in value("spec_tokens")], dtype=bool)
    own = np.asarray(hardware, dtype=object)[grid[:, DIMENSIONS.index("hardware")]]
    unused = {
        "max_num_seqs": ~served,
        "chunk_tokens": ~served,
        "prefill_replicas": ~disaggregated,
        "prefill_hardware": ~disaggregated,
        "prefill_tp": ~disaggregated,
        "prefill_pp": ~disaggregated,
        "draft": ~speculating,
        "scheduler": disaggregated,
    }
    out = grid.copy()
    for name, mask in unused.items():
        out[mask, DIMENSIONS.index(name)] = 0
    for name, same in (("prefill_tp", value("tp")), ("prefill_pp", value("pp")), ("prefill_hardware", own)):
        # what null says again
        if None in settings[name]:
            says_null = disaggregated & np.equal(value(name), same)
            out[says_null, DIMENSIONS.index(name)] = settings[name].index(None)
    return served, out


def _batches(record: SpaceRecord) -> np.ndarray:
    batch = record.choices.batch
    if isinstance(batch, list):
        return np.asarray(sorted(set(batch)), dtype=np.int64)
    return np.arange(batch.min, batch.max + 1, batch.step, dtype=np.int64)


MAX_FULL_SIZE = 2**62
"""Largest product a space may have (candidate ids are int64)."""


def build_space(record: SpaceRecord, *, source: str = "<space>", path: Path | None = None, digest: str = "") -> Space:
    """Resolve a validated record and prune it statically."""
    model, hardware, keys, numerics, alias = _resolve(record, source, path)
    settings = {name: tuple(getattr(record.choices, name)) for name in SETTINGS}
    batches = _batches(record)
    radices = (len(hardware), len(numerics), *(len(settings[name]) for name in SETTINGS))
    if math.prod(radices) * len(batches) > MAX_FULL_SIZE:
        raise InputError(f"the product of the choices exceeds {MAX_FULL_SIZE:,} candidates", source=source)
    grid = np.stack(np.meshgrid(*(np.arange(n) for n in radices), indexing="ij"), -1).reshape(-1, len(radices))
    ones, offsets = np.ones(len(grid), dtype=np.int64), np.arange(len(grid) + 1)
    lengths = _lengths(record, source, path, model)
    draft = Space(
        record, source, digest, model, hardware, numerics, keys, alias, settings, batches, grid, ones, offsets, (),
        lengths,
    )  # fmt: skip
    smallest = draft.evaluate_codes(*grid.T, np.zeros(len(grid), dtype=np.int64))
    cand_reason = smallest["infeasible_reason"]
    overloaded = smallest["infeasible_reason"] == REASON_TEXT[Reason.OVERLOADED]  # a larger batch may carry it
    runnable = smallest["cost_model_feasible"] | overloaded
    max_batch = smallest["max_batch"]  # an upper bound that holds at every batch (see MemoryBreakdown)
    allowed = np.where(runnable, np.searchsorted(batches, max_batch, side="right"), 0)
    served, representative = _representatives(settings, grid, record.choices.hardware)
    allowed = np.where(served, runnable.astype(np.int64), allowed)  # the batch does not apply
    repeated = np.any(representative != grid, axis=1)  # the same candidate as its representative
    keep = (allowed > 0) & ~repeated
    pruned = tuple(
        draft.pruned_entry(grid[i], str(cand_reason[i] or "no batch fits in memory"))
        for i in np.flatnonzero(~keep & ~repeated)
    )
    offsets = np.concatenate([[0], np.cumsum(allowed[keep])])
    return replace(draft, combo_codes=grid[keep], combo_batches=allowed[keep], offsets=offsets, pruned=pruned)


def load_space(path: str | Path) -> Space:
    """Load, validate, resolve and prune a search-space YAML file; its digest covers the histogram files it names."""
    path = Path(path)
    record = validate(SpaceRecord, read_document(path), source=str(path), path=path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    space = build_space(record, source=str(path), path=path, digest=digest)
    if space.lengths.files:  # the histograms are part of the space: a changed file is another space
        files = "".join(hashlib.sha256(f.read_bytes()).hexdigest() for f in space.lengths.files)
        space = replace(space, digest=hashlib.sha256((digest + files).encode()).hexdigest())
    return space

"""``dse validate``: the cost model's predictions against measurements, row by row and in summary.

For each row the deployment is scored by the same vectorised model the search uses (one call per engine): a
static batch at the row's batch, or under continuous batching (docs/cost-model.md §16) where the engine
chose the batch. A ``max-throughput`` row without a batch (every request queued at once, as offline
benchmarks send them) is served with every slot busy: KV at its mean occupancy, prompts in chunks of the
token budget beside the decoding sequences. A ``server`` row that gives its load (``request_rate``) is
served at that Poisson rate, with its ``statistic``: the mean, or a percentile of TTFT or TPOT. Both take
the engine's ``max_num_seqs`` and token budget from the row, else the engine's documented defaults
(``ENGINE_LIMITS``), else dse's.

Error = predicted / measured - 1, so a positive error on a throughput and a negative one on a latency both
mean "optimistic". Rows the model calls infeasible (the deployment does not fit) are counted and listed, not
scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dse.calibrate._measurements import METRICS, Measurement, MeasurementRecord
from dse.catalog import CALIBRATED, EfficiencyProfile, load_profile, load_target, profile_for
from dse.costmodel import CHUNK_TOKENS, MAX_NUM_SEQS
from dse.errors import InputError
from dse.scoring import reason_text, score_columns

if TYPE_CHECKING:
    import pandas as pd

Profile = str | EfficiencyProfile
"""A profile id, a YAML path, or a profile itself."""
MIN_HARDWARE_FOR_RANK = 4
"""Hardware a group needs for its rank correlation to be reported (the issue's threshold)."""
PERCENTILES = ("ttft_p50", "ttft_p90", "ttft_p99", "tpot_p50", "tpot_p90", "tpot_p99")
"""Continuous batching's latency percentiles, as ``ContinuousServing`` orders them."""
ENGINE_LIMITS = {"tensorrt-llm": (2048, 8192)}
"""An engine's slots and token budget (``max_num_seqs``, ``chunk_tokens``) where a row does not give them:
TensorRT-LLM's ``max_batch_size`` and ``max_num_tokens`` defaults (BuildConfig; what ``trtllm-serve`` runs
with). ``trtllm-bench``, which measured the shipped TensorRT-LLM rows, tunes its own where it is not given
them (NVIDIA/TensorRT-LLM tensorrt_llm/bench/build/tuning.py, ``finetune_setting``; bench/benchmark/utils/
general.py): a batch from the KV capacity at the full lengths, at most 4,096 / pp, a budget of batch x (1 +
ISL / OSL) within 2,048-32,768 and, with chunked prefill off (its default), at least the longest prompt plus
the batch: not modelled (the budget differs most at 20,000-token prompts, which run unchunked there). Another
engine's defaults depend on its version and device (vLLM's on the GPU's memory): dse's (``MAX_NUM_SEQS``,
``CHUNK_TOKENS``)."""
SCORED_SCENARIOS = ("batch", "max-throughput")
"""Scenarios validated by default: a ``server`` row is served at its ``request_rate`` only where it gives one,
and a static batch is not its queueing (the shipped MLPerf Server rows give none)."""


def _columns(rows: Sequence[Measurement]) -> dict[str, Any]:
    """The rows as scoring columns (a row under continuous batching at batch 1, which it does not read)."""
    r = [m.record for m in rows]
    return {
        "model": [x.model for x in r],
        "hardware": [x.hardware for x in r],
        "quant": [x.quant for x in r],
        "kv": [x.kv for x in r],
        "tp": np.asarray([x.tp for x in r]),
        "pp": np.asarray([x.pp for x in r]),
        "ep": np.asarray([x.ep for x in r]),
        "prompt_len": np.asarray([x.prompt_len for x in r]),
        "gen_len": np.asarray([x.gen_len for x in r]),
        "batch": np.asarray([x.batch or 1 for x in r]),
    } | (_load_columns(r) if any(x.continuous for x in r) else {})


UNLOADED_SERVER = (
    "a server row with neither a request_rate nor a batch: its figures hold queueing at a load it does not give"
)
QUEUED_OFFLINE = (
    "a max-throughput latency without a batch: it holds the wait behind every request queued before it, which the "
    "row does not count"
)


def _unscored(record: MeasurementRecord) -> str:
    """Why a row is not scored ("" where it is): its figure depends on a load the row does not give. A static
    batch of one would stand in for it at any error (MLPerf's Server TTFT read -98 %)."""
    if record.scenario == "server" and not record.served and not record.batch:
        return UNLOADED_SERVER
    if record.saturated and record.metric in ("ttft_s", "prefill_tokens_per_s"):
        return QUEUED_OFFLINE
    return ""


def engine_limits(record: MeasurementRecord) -> tuple[int, int]:
    """(max_num_seqs, chunk_tokens) a row is served with: its own, else its engine's defaults
    (``ENGINE_LIMITS``), else dse's."""
    seqs, budget = ENGINE_LIMITS.get(record.engine or "", (int(MAX_NUM_SEQS), int(CHUNK_TOKENS)))
    return record.max_num_seqs or seqs, record.chunk_tokens or budget


def _load_columns(r: Sequence[MeasurementRecord]) -> dict[str, Any]:
    """The scheduler and load columns of rows of which some are served under continuous batching (at a rate,
    or every slot busy without one), the others static."""
    limits = np.asarray([engine_limits(x) for x in r]).reshape(len(r), 2)
    return {
        "scheduler": ["continuous" if x.continuous else "static" for x in r],
        "request_rate": [x.request_rate for x in r],
        "max_num_seqs": limits[:, 0],
        "chunk_tokens": limits[:, 1],
    }


def _score(rows: Sequence[Measurement], profile: Profile) -> dict[str, np.ndarray]:
    """Each row scored; with the ``calibrated`` profile, by the fitted profile of its engine (one call per
    engine named)."""
    n = len(rows)
    out = {k: np.full(n, np.nan) for k in ("ttft", "tpot", "thr_dev", "slots", "reason", *PERCENTILES)}
    out["format"] = np.full(n, "", dtype=object)
    engines = [m.record.engine for m in rows]
    for engine in dict.fromkeys(engines):
        part = np.flatnonzero([e == engine for e in engines])
        chosen = [rows[int(i)] for i in part]
        columns = _columns(chosen)
        for idx, scored in score_columns(columns, profile=profile, engine=engine):
            m, at = scored.metrics, part[idx]
            out["ttft"][at], out["tpot"][at], out["thr_dev"][at] = (
                m.ttft_s,
                m.tpot_s,
                m.throughput_tokens_per_s_per_device,
            )
            out["slots"][at], out["reason"][at] = scored.serving.slots, m.reason
            out["format"][at] = scored.compute_format
            figures = (*scored.serving.ttft_quantiles_s, *scored.serving.tpot_quantiles_s)
            for key, values in zip(PERCENTILES, figures, strict=True):  # NaN for static rows
                out[key][at] = values
    return out


def profiles_of(
    rows: Sequence[Measurement], accelerators: Sequence[str], profile: Profile
) -> list[tuple[EfficiencyProfile, bool]]:
    """The profile each row is scored with, and whether its accelerator was measured in that profile's fit."""
    out = []
    for m, accelerator in zip(rows, accelerators, strict=True):
        if isinstance(profile, EfficiencyProfile):
            out.append((profile, accelerator in profile.calibrated_on))
        elif profile == CALIBRATED:
            out.append(profile_for(accelerator, m.record.engine))
        else:
            chosen = load_profile(profile)
            out.append((chosen, accelerator in chosen.calibrated_on))
    return out


def predict(rows: Sequence[Measurement], profile: Profile = CALIBRATED) -> pd.DataFrame:
    """Predicted value of each row's quantity, with the batch used (under continuous batching, the sequences in
    the engine at the operating point), feasibility, and the profile used."""
    import pandas as pd

    if not rows:
        raise InputError("no measurement rows of the scenarios asked for", field="scenario")
    s = _score(rows, profile)
    saturated = np.asarray([m.record.saturated for m in rows])
    given = np.asarray([m.record.batch or 1 for m in rows], dtype=np.float64)
    batch = np.where(saturated, np.round(s["slots"], 1), given)
    prompt = np.asarray([m.record.prompt_len for m in rows], dtype=float)
    by_metric = {
        "tpot_s": s["tpot"],
        "ttft_s": s["ttft"],
        "prefill_tokens_per_s": given * prompt / s["ttft"],
        "throughput_tokens_per_s_per_device": s["thr_dev"],
    }
    metric = [m.record.metric for m in rows]
    statistic = [m.record.figure for m in rows]
    predicted = np.asarray(
        [
            by_metric[k][i] if q == "mean" else s[f"{k.removesuffix('_s')}_{q}"][i]
            for i, (k, q) in enumerate(zip(metric, statistic, strict=True))
        ]
    )
    unscored = np.asarray([_unscored(m.record) for m in rows], dtype=object)
    predicted = np.where(unscored != "", np.nan, predicted)
    measured = np.asarray([m.record.value for m in rows])
    reason = s["reason"].astype(np.int64)
    accelerators = [load_target(m.record.hardware)[0].id for m in rows]
    used = profiles_of(rows, accelerators, profile)
    return pd.DataFrame(
        {
            "id": [m.record.id for m in rows],
            "model": [m.record.model for m in rows],
            "hardware": [m.record.hardware for m in rows],
            "accelerator": accelerators,
            "tp": [m.record.tp for m in rows],
            "pp": [m.record.pp for m in rows],
            "ep": [m.record.ep for m in rows],
            "engine": [m.record.engine or "" for m in rows],
            "profile": [p.id for p, _ in used],
            "calibrated": [c for _, c in used],
            "compute_format": s["format"],
            "quant": [m.record.quant for m in rows],
            "prompt_len": prompt.astype(np.int64),
            "gen_len": [m.record.gen_len for m in rows],
            "scenario": [m.record.scenario for m in rows],
            "metric": metric,
            "statistic": statistic,
            "request_rate": [m.record.request_rate for m in rows],
            # a whole batch as itself (64, not 64.0); the sequences an engine holds on average as a decimal
            "batch": [int(b) if float(b).is_integer() else float(b) for b in batch],
            "engine_chose_batch": saturated,  # every request queued at once: the batch is the model's reading
            "measured": measured,
            "predicted": predicted,
            "error": predicted / measured - 1.0,
            "feasible": reason == 0,
            "infeasible_reason": reason_text(reason),
            "unscored": unscored,
            "source": [m.record.source for m in rows],
        }
    )


@dataclass(frozen=True)
class Validation:
    rows: pd.DataFrame
    summary: list[dict[str, Any]]
    """Per (metric, scenario): rows, scored, median and p90 |error|, bias (median error)."""
    ranks: list[dict[str, Any]]
    """Spearman rank correlation of hardware, per group of rows that differ only in hardware."""
    profile: str

    def to_dict(self) -> dict[str, Any]:
        spearman = [r["spearman"] for r in self.ranks]
        return {
            "profile": self.profile,
            "summary": self.summary,
            "ranks": self.ranks,
            "median_spearman": float(np.median(spearman)) if spearman else None,
            "infeasible": self.rows.loc[~self.rows["feasible"], ["id", "hardware", "infeasible_reason"]].to_dict(
                "records"
            ),
            "unscored": self.rows.loc[self.rows["unscored"] != "", ["id", "unscored"]]
            .rename(columns={"unscored": "reason"})
            .to_dict("records")
            if "unscored" in self.rows
            else [],
        }


def _stats(errors: np.ndarray) -> dict[str, float | None]:
    if len(errors) == 0:
        return {"median_abs_error": None, "p90_abs_error": None, "bias": None}
    return {
        "median_abs_error": float(np.median(np.abs(errors))),
        "p90_abs_error": float(np.percentile(np.abs(errors), 90)),
        "bias": float(np.median(errors)),
    }


def _plain(value: Any) -> Any:
    """A group's key as JSON holds it: a whole number as an int, NaN as None, numpy scalars as Python's."""
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else int(value) if float(value).is_integer() else float(value)
    return value.item() if isinstance(value, np.generic) else value


def _scenarios(rows: pd.DataFrame) -> np.ndarray:
    """Each row's scenario as the summary groups it: a server row scored at its rate apart from the others,
    and apart per statistic ("server at its rate, p99")."""
    scenario = rows["scenario"].astype(str).to_numpy()
    if "request_rate" not in rows:
        return scenario
    served = rows["request_rate"].notna().to_numpy()
    figure = rows["statistic"].astype(str).to_numpy() if "statistic" in rows else np.full(len(rows), "mean")
    at_rate = [f"{s} at its rate" + ("" if f == "mean" else f", {f}") for s, f in zip(scenario, figure, strict=True)]
    return np.where(served, np.asarray(at_rate, dtype=object), scenario)


BREAKDOWN_COLUMNS = ("engine", "hardware", "accelerator", "model", "quant", "profile", "batch")
"""Columns the summary may be broken down by (``summarise``'s ``by``, ``dse validate --by``)."""


def group_label(column: str, value: Any) -> str:
    """A ``--by`` group's value as tables show it (``summarise``'s entries hold it as JSON does): a batch the
    engine chose (no fixed batch) says so, any other missing value is "—"."""
    if value is None or value == "":
        return "engine's" if column == "batch" else "—"
    return str(value)


def _fixed_batches(rows: pd.DataFrame) -> np.ndarray:
    """Each row's batch as a number, NaN where the engine chose it (``engine_chose_batch``; without that column,
    a max-throughput row's) or the rows give none."""
    batch = np.asarray(rows["batch"] if "batch" in rows else np.full(len(rows), np.nan), dtype=np.float64)
    chose = rows["engine_chose_batch"] if "engine_chose_batch" in rows else rows["scenario"] == "max-throughput"
    return np.where(np.asarray(chose, dtype=bool), np.nan, batch)


def summarise(rows: pd.DataFrame, profile: str, by: Sequence[str] = ()) -> Validation:
    """Error statistics per quantity and scenario (a server row at its rate apart, per statistic), within each
    group of rows alike in the ``by`` columns (of ``BREAKDOWN_COLUMNS``; each entry then names its group), and
    the hardware rank correlations."""
    summary = []
    label = _scenarios(rows)
    # groups by position (a frame joined from others may repeat index labels); batches as numbers, sorted, and
    # the batches engines chose (the model's reading of their sequences, a result) as one group of no batch
    keyed = rows.assign(batch=_fixed_batches(rows)) if "batch" in by else rows
    groups = keyed.groupby(list(by), dropna=False, sort=True).indices if by else {(): np.arange(len(rows))}
    for key, positions in groups.items():
        named = dict(zip(by, (_plain(k) for k in (key if isinstance(key, tuple) else (key,))), strict=True))
        group, at = rows.iloc[positions], label[positions]
        for metric in METRICS:
            for scenario in dict.fromkeys([*SCORED_SCENARIOS, "server", *sorted(set(label))]):
                part = group[(group["metric"] == metric) & (at == scenario)]
                if part.empty:
                    continue
                scored = part[part["feasible"] & np.isfinite(part["error"])]
                entry = named | {"metric": metric, "scenario": scenario, "rows": len(part), "scored": len(scored)}
                entry |= _stats(scored["error"].to_numpy())
                if "covered" in part:  # cross-validated: the share of rows inside their held-out p10-p90 interval
                    covered = part["covered"].to_numpy(dtype=float)
                    entry["interval_coverage"] = float(np.nanmean(covered)) if np.isfinite(covered).any() else None
                summary.append(entry)
    ranks = []
    # rows of one group differ only in the deployment: not in the engine, the statistic or the load they were
    # measured at (a fixed batch; the batch an engine chose on its hardware is a result, not a condition)
    conditions = ("model", "quant", "engine", "metric", "scenario", "prompt_len", "gen_len", "statistic")
    keys = [k for k in (*conditions, "request_rate") if k in rows] + ["fixed_batch"]
    usable = rows[rows["feasible"] & np.isfinite(rows["error"])]
    usable = usable.assign(fixed_batch=_fixed_batches(usable))
    target = [c for c in ("hardware", "tp", "pp", "ep") if c in rows]  # a deployment: the system and its split
    for key, group in usable.groupby(keys, dropna=False):
        by_hw = group.groupby(target)[["measured", "predicted"]].median()
        if len(by_hw) < MIN_HARDWARE_FOR_RANK:
            continue
        rho = float(by_hw["measured"].rank().corr(by_hw["predicted"].rank()))  # Spearman: Pearson of the ranks
        ranks.append(dict(zip(keys, (str(k) for k in key), strict=True)) | {"hardware": len(by_hw), "spearman": rho})
    return Validation(rows, summary, ranks, profile)


def validate(
    measurements: Sequence[Measurement],
    *,
    profile: str = CALIBRATED,
    scenarios: Sequence[str] = SCORED_SCENARIOS,
    cross_validate: bool = False,
    by: Sequence[str] = (),
) -> Validation:
    """Predicted against measured for every row of the given scenarios, and the summary (broken down by the
    ``by`` columns, of ``BREAKDOWN_COLUMNS``); ``cross_validate`` (with the ``calibrated`` profiles): every row
    predicted with its accelerator left out of its family's fit."""
    for i, name in enumerate(by):
        if name not in BREAKDOWN_COLUMNS:
            raise InputError(f"expected one of {', '.join(BREAKDOWN_COLUMNS)}, got {name!r}", field=f"by[{i}]")
        if name in by[:i]:
            raise InputError(f"{name!r} is already a breakdown column", field=f"by[{i}]")
    chosen = [m for m in measurements if m.record.scenario in scenarios]
    if not cross_validate:
        return summarise(predict(chosen, profile), profile, by)
    if profile != CALIBRATED:
        raise InputError("cross-validation refits the calibrated profiles: leave --profile out", field="profile")
    from dse.calibrate._fit import cross_validated

    return summarise(cross_validated(chosen), f"{profile} (leave one accelerator out)", by)

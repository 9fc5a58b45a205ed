"""Candidates as a struct of arrays: everything the cost model needs, one row per candidate, in SI units."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
from numpy.typing import NDArray

TTFT_EDGES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99, 0.995, 0.999, 1.0)
"""Probabilities at which ``Candidates.prompt_quantiles`` holds the prompt length (``physics.lengths``): a
request's prompt lies between two neighbours with their difference as probability, spread evenly (so TTFT's
distribution has no steps), finer in the tail where p90 and p99 lie."""
TTFT_POINTS = len(TTFT_EDGES)
"""Values of ``prompt_quantiles`` per candidate."""

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Candidates:
    """N deployment candidates of one model. Every field is a float64 array of length N (``flash``: bool).

    Peaks are dense FLOP/s already resolved for the candidate's number formats on its device (see
    ``dse.costmodel.resolve_precision``); efficiencies come from the efficiency profile.
    """

    batch: Array
    prompt_len: Array
    """Prompt tokens per sequence: the mean under continuous batching; a static batch's padded length (its
    longest prompt) when lengths vary (``physics.lengths``)."""
    gen_len: Array
    """Output tokens per sequence: the mean under continuous batching; the steps a static batch runs (its
    longest output) when lengths vary."""
    weight_bits: Array
    embedding_bits: Array
    attention_16bit: Array
    """The attention projections keep 16-bit weights and run at the 16-bit peak whatever ``weight_bits`` says
    (bool): the scheme is the checkpoint's own and it leaves them so (gpt-oss's MXFP4 quantizes the experts
    only; ``ModelRecord.keeps_16bit``)."""
    act_bits: Array
    kv_bits: Array
    matmul_flops_per_s: Array
    matmul16_flops_per_s: Array
    vector_flops_per_s: Array
    bandwidth_bytes_per_s: Array
    memory_bytes: Array
    onchip_memory_bytes: Array
    """On-chip memory (L2 / SRAM) of a device; 0: unknown (no reuse of K/V in it is assumed)."""
    bandwidth_efficiency: Array
    compute_efficiency: Array
    """Achieved / peak of 16-bit matmuls (attention) and vector work."""
    matmul_efficiency: Array
    """Achieved / peak of the linear layers in their compute format (default: ``compute_efficiency``)."""
    kernel_overhead_s: Array
    memory_utilization: Array
    runtime_reserve_bytes: Array
    flash_block_rows: Array
    flash: Array
    format_supported: Array
    power_w: Array
    """Maximum power of one device with its share of the host (W), for energy per token."""
    usd_per_device_hour: Array
    power_fraction: Array
    """Average draw as a share of ``power_w`` (``CostAssumptions.power_fraction``)."""
    # deployment: parallelism, the system's links, KV-cache policy (defaults: one device, no policy)
    tp: Array
    pp: Array
    ep: Array
    replicas: Array
    devices_per_node: Array
    max_nodes: Array
    """Nodes one replica may span (inf: no limit)."""
    intra_link_bytes_per_s: Array
    """inf: no link (one device per node)."""
    intra_link_latency_s: Array
    inter_link_bytes_per_s: Array
    """0: no inter-node link."""
    inter_link_latency_s: Array
    intra_transfer_share: Array
    inter_transfer_share: Array
    """Of each link, what an all-to-all, a pipeline send or a KV transfer gets over what an all-reduce gets
    (``intra_link_bytes_per_s`` and ``inter_link_bytes_per_s`` are the all-reduce's): below 1 where the switch
    reduces in the network (NVLink SHARP), 1 elsewhere."""
    host_link_bytes_per_s: Array
    """0: no host link."""
    host_memory_bytes: Array
    """Host memory per device (NaN: unknown)."""
    expert_imbalance: Array
    """Busiest expert-parallel device's routed tokens over the mean (1 = perfectly balanced)."""
    comm_overlap: Array
    kv_block_tokens: Array
    """Paged KV-cache block size in tokens (1: allocated token by token, no fragmentation)."""
    prefix_hit_rate: Array
    kv_offload_fraction: Array
    kv_budget_tokens: Array
    """KV tokens kept per sequence and layer by an eviction policy (inf: none)."""
    # lengths that vary (docs/cost-model.md §19; 0 and one point: fixed lengths)
    gen_padding: Array
    """Static: output tokens per sequence past its own end (``gen_len`` minus the mean output): steps it holds
    its slot without delivering a token."""
    context_spread: Array
    """Continuous: keys a decoding token attends beyond ``prompt_len`` + ``gen_len`` / 2 on average
    (``lengths.context_spread``), in KV at mean occupancy too."""
    prompt_quantiles: Array
    """(N x ``TTFT_POINTS``): prompt length over the mean at the probabilities ``TTFT_EDGES`` (TTFT
    percentiles); N x 1 of ones: fixed lengths."""
    prompt_variance: Array
    output_variance: Array
    length_covariance: Array
    """Continuous: Var(P), Var(G) and Cov(P, G) of the prompt and output lengths (tokens²; 0: fixed), for the
    spread of a request's work in the queue (``continuous.work_cv2``)."""
    inverse_output_tokens: Array
    """Continuous: E[1 / (G - 1)] over requests whose outputs vary (tokens⁻¹; NaN: fixed outputs), for TPOT's
    percentiles (``continuous.tpot_quantile_s``)."""
    # serving: the scheduler and the load (docs/cost-model.md §16)
    continuous: Array
    """Continuous batching with chunked prefill (bool; False: a static batch of ``batch``)."""
    max_num_seqs: Array
    """Continuous: the most sequences an engine holds at once."""
    chunk_tokens: Array
    """Continuous: the token budget of one engine step (decode tokens and prompt chunks)."""
    request_rate: Array
    """Continuous: Poisson arrivals, requests/s to the whole deployment (NaN: none)."""
    concurrency: Array
    """Continuous: a closed loop of this many requests in flight, over the deployment (NaN: none; with
    neither load, every slot busy)."""
    slo_ttft_s: Array
    slo_tpot_s: Array
    """Continuous: the SLOs ``max_request_rate`` is found under (inf: none)."""
    slo_quantile: Array
    """Continuous: the percentile the SLOs hold at: 0.5, 0.9 or 0.99."""
    disaggregated: Array
    """Prefill and decode on separate instances (bool; with continuous batching in each)."""
    prefill_replicas: Array
    """Disaggregated: the replicas that prefill (x); the other replicas - x decode."""
    prefill_pool: Array
    """Disaggregated on other hardware or another tp or pp: (N x len(``POOL_FIELDS``)) the prefill instances' values
    of those fields (``prefill_candidates``); N x 0: the prefill pool is the decode pool's configuration."""
    # speculative decoding (docs/cost-model.md §17)
    spec_tokens: Array
    """Draft tokens proposed per verification step (γ; 0: no speculation)."""
    spec_acceptance: Array
    """Probability each draft token is accepted (α)."""
    draft_cost_ratio: Array
    """A draft step's time over the target's decode step (its active weights over the target's)."""
    draft_weight_bytes: Array
    """The draft's weights per device (bytes)."""

    def __len__(self) -> int:
        return len(self.batch)

    def prefill_candidates(self) -> Candidates:
        """The candidates as their disaggregated prefill instances run: ``POOL_FIELDS`` from ``prefill_pool``
        (the same candidates where it is empty)."""
        pool = self.prefill_pool
        if pool.shape[-1] == 0:
            return self
        own: dict[str, Array] = {name: pool[..., i] for i, name in enumerate(POOL_FIELDS)}
        own["format_supported"] = np.asarray(own["format_supported"] > 0.5)  # a bool field
        return replace(self, **own, prefill_pool=pool[..., :0])  # type: ignore[arg-type]

    def own_prefill_pool(self) -> Array:
        """Rows whose disaggregated prefill instances hold values of their own (hardware, tp or pp): their pool
        may sit on another machine. A row whose ``prefill_pool`` repeats its own values is not one, whatever
        the other rows scored with it hold."""
        pool = self.prefill_pool
        if pool.shape[-1] == 0:
            return np.zeros(np.shape(self.disaggregated), dtype=bool)
        own = np.stack([np.asarray(getattr(self, name), dtype=np.float64) for name in POOL_FIELDS], axis=-1)
        differs = (pool != own) & ~(np.isnan(pool) & np.isnan(own))
        return np.asarray(self.disaggregated, dtype=bool) & np.any(differs, axis=-1)

    @classmethod
    def from_columns(cls, columns: dict[str, object], size: int) -> Candidates:
        """Build from scalars or arrays (scalars broadcast to ``size``); names are the field names. Deployment
        fields absent from ``columns`` take ``DEFAULTS``' values."""
        columns = DEFAULTS | columns
        if "matmul_efficiency" not in columns and "compute_efficiency" in columns:
            columns["matmul_efficiency"] = columns["compute_efficiency"]
        missing = [f.name for f in fields(cls) if f.name not in columns]
        if missing:
            raise KeyError(f"missing candidate fields: {missing}")
        values = {}
        for f in fields(cls):
            dtype = bool if f.name in BOOL_FIELDS else np.float64
            value = np.asarray(columns[f.name], dtype=dtype)
            shape: tuple[int, ...] = (size,)
            if f.name == "prefill_pool":  # N x 0 where the pools share their configuration
                shape = (size, value.shape[-1] if value.ndim == 2 else 0)
            if f.name in POINT_FIELDS:  # one column where the lengths are fixed: no points to carry
                shape = (size, value.shape[-1] if value.ndim == 2 else 1)
            values[f.name] = np.broadcast_to(value, shape).copy()
        return cls(**values)

    def take(self, index: Array | slice) -> Candidates:
        """The candidates at ``index`` (integer or boolean array)."""
        return Candidates(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def row(self, i: int) -> Candidates:
        """Candidate ``i`` alone, every field a numpy scalar (float64; ``flash``, ``format_supported``: bool, and
        IEEE arithmetic: x / 0 is inf, not an exception): the input of the reference evaluator, which works on
        one candidate at a time."""
        return Candidates(**{f.name: getattr(self, f.name)[i] for f in fields(self)})


MAX_WHOLE = 2**53
"""Largest whole-number input (a batch, a degree of parallelism, a budget): every integer up to it is exact in
float64, which the cost model computes in."""
MAX_TOKENS = 2**24
"""Longest prompt or output an input may give, in tokens: 16,777,216, beyond every catalog model's context
window (the longest, 10,485,760; a longer one is an infeasible result, not an error)."""

MAX_NUM_SEQS = 256.0
"""Continuous batching's default sequence cap: vLLM's ``max_num_seqs`` default (EngineArgs, v0.6-v0.11)."""
MAX_UTILIZATION = 0.9
"""Under continuous batching a replica is sized to carry at most 90 % of the rate it completes with every slot
busy. Its Poisson queue grows as 1 / (1 - ρ): at 99 % a p90 TTFT of seconds is common even where no SLO is set;
at 90 % the M/D/1 mean wait is 4.5 mean services. SLOs usually bind below it (they include the queue); it
binds without SLOs or with loose ones. A round planning figure (capacity planners keep 10-30 % headroom),
set your own with ``max_utilization`` (``dse recommend``)."""
CHUNK_TOKENS = 8192.0
"""Continuous batching's default token budget per step: TensorRT-LLM's ``max_num_tokens`` default (8192,
``trtllm-bench`` and the LLM API's BuildConfig) and vLLM's ``max_num_batched_tokens`` for online serving on
datacentre GPUs (8192, vLLM V1 engine defaults)."""

SPEC_ACCEPTANCE = 0.7
"""Speculative decoding's default per-token acceptance: within what drafts reach on chat data (Leviathan et al.
2023, arXiv 2211.17192, Table 3: 0.5-0.9 by draft and task; DeepSeek-V3's MTP module: 85-90 % for its second
token, arXiv 2412.19437 §5.4.3). It depends on the data and the draft: set your own."""

DEFAULTS: dict[str, object] = {
    "attention_16bit": False,
    "tp": 1.0,
    "pp": 1.0,
    "ep": 1.0,
    "replicas": 1.0,
    "devices_per_node": 1.0,
    "max_nodes": 1.0,
    "intra_link_bytes_per_s": np.inf,
    "intra_link_latency_s": 0.0,
    "inter_link_bytes_per_s": 0.0,
    "inter_link_latency_s": 0.0,
    "intra_transfer_share": 1.0,
    "inter_transfer_share": 1.0,
    "host_link_bytes_per_s": 0.0,
    "host_memory_bytes": np.nan,
    "onchip_memory_bytes": 0.0,
    "expert_imbalance": 1.0,
    "comm_overlap": 0.0,
    "power_fraction": 1.0,
    "kv_block_tokens": 1.0,
    "prefix_hit_rate": 0.0,
    "kv_offload_fraction": 0.0,
    "kv_budget_tokens": np.inf,
    "gen_padding": 0.0,
    "context_spread": 0.0,
    "prompt_quantiles": 1.0,
    "prompt_variance": 0.0,
    "output_variance": 0.0,
    "length_covariance": 0.0,
    "inverse_output_tokens": np.nan,
    "continuous": False,
    "max_num_seqs": MAX_NUM_SEQS,
    "chunk_tokens": CHUNK_TOKENS,
    "request_rate": np.nan,
    "concurrency": np.nan,
    "slo_ttft_s": np.inf,
    "slo_tpot_s": np.inf,
    "slo_quantile": 0.9,
    "disaggregated": False,
    "prefill_replicas": 1.0,
    "prefill_pool": np.zeros((1, 0)),
    "spec_tokens": 0.0,
    "spec_acceptance": SPEC_ACCEPTANCE,
    "draft_cost_ratio": 0.0,
    "draft_weight_bytes": 0.0,
}
"""Fields that may be left out: one device with no links, no KV-cache policy, a balanced router, no overlap,
drawing its full TDP, fixed lengths."""
BOOL_FIELDS = ("attention_16bit", "flash", "format_supported", "continuous", "disaggregated")
"""Fields held as bool arrays."""
POOL_FIELDS = (
    "act_bits",
    "matmul_flops_per_s",
    "matmul16_flops_per_s",
    "vector_flops_per_s",
    "bandwidth_bytes_per_s",
    "memory_bytes",
    "onchip_memory_bytes",
    "format_supported",
    "power_w",
    "usd_per_device_hour",
    "bandwidth_efficiency",
    "compute_efficiency",
    "matmul_efficiency",
    "kernel_overhead_s",
    "memory_utilization",
    "runtime_reserve_bytes",
    "flash_block_rows",
    "comm_overlap",
    "devices_per_node",
    "max_nodes",
    "intra_link_bytes_per_s",
    "intra_link_latency_s",
    "inter_link_bytes_per_s",
    "inter_link_latency_s",
    "intra_transfer_share",
    "inter_transfer_share",
    "host_link_bytes_per_s",
    "host_memory_bytes",
    "tp",
    "pp",
)
"""What a disaggregated prefill pool may hold of its own (``prefill_pool``): its device (peaks at the
candidate's formats, memory, links, price, power), its efficiency profile, and its tensor- and
pipeline-parallel degrees. The number formats, the expert degree and the workload are the candidate's."""
POINT_FIELDS = ("prompt_quantiles",)
"""Fields with a row of ``TTFT_POINTS`` values per candidate."""

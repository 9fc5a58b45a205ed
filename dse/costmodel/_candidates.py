"""Candidates as a struct of arrays: everything the cost model needs, one row per candidate, in SI units."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from dse.costmodel._roofline import Array


@dataclass(frozen=True)
class Candidates:
    """N deployment candidates of one model. Every field is a float64 array of length N (``flash``: bool).

    Peaks are dense FLOP/s already resolved for the candidate's number formats on its device (see
    ``dse.costmodel.resolve_precision``); efficiencies come from the efficiency profile.
    """

    batch: Array
    prompt_len: Array
    gen_len: Array
    weight_bits: Array
    embedding_bits: Array
    act_bits: Array
    kv_bits: Array
    matmul_flops_per_s: Array
    matmul16_flops_per_s: Array
    vector_flops_per_s: Array
    bandwidth_bytes_per_s: Array
    memory_bytes: Array
    bandwidth_efficiency: Array
    compute_efficiency: Array
    kernel_overhead_s: Array
    memory_utilization: Array
    runtime_reserve_bytes: Array
    flash_block_rows: Array
    flash: Array
    format_supported: Array
    tdp_w: Array
    usd_per_device_hour: Array

    def __len__(self) -> int:
        return len(self.batch)

    @classmethod
    def from_columns(cls, columns: dict[str, object], size: int) -> Candidates:
        """Build from scalars or arrays (scalars broadcast to ``size``); names are the field names."""
        missing = [f.name for f in fields(cls) if f.name not in columns]
        if missing:
            raise KeyError(f"missing candidate fields: {missing}")
        values = {}
        for f in fields(cls):
            dtype = bool if f.name in ("flash", "format_supported") else np.float64
            values[f.name] = np.broadcast_to(np.asarray(columns[f.name], dtype=dtype), (size,)).copy()
        return cls(**values)

    def take(self, index: Array | slice) -> Candidates:
        """The candidates at ``index`` (integer or boolean array)."""
        return Candidates(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

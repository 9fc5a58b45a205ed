"""Efficiency profiles: how far real kernels get from the roofline, as data with provenance."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from dse import units
from dse.catalog._provenance import Provenance


class FitRecord(BaseModel):
    """How a fitted profile was obtained: the measurement rows, their residuals (log of predicted / measured
    under the fitted profile), the method and the date (``dse calibrate``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    rows: list[str] = Field(min_length=1)
    residuals: list[float] = Field(min_length=1)
    method: str = Field(min_length=1)
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")


class ProfileRecord(BaseModel):
    """An efficiency profile as written in ``hardware/profiles/*.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str
    bandwidth_efficiency: float = Field(gt=0, le=1, description="achieved / peak memory bandwidth")
    compute_efficiency: float = Field(gt=0, le=1, description="achieved / peak dense FLOP/s")
    kernel_overhead_us: float = Field(ge=0, description="fixed time per operator kernel (launch, tail)")
    memory_utilization: float = Field(gt=0, le=1, description="share of device memory the engine may use")
    runtime_reserve_gb: float = Field(ge=0, description="runtime context, workspaces, graphs (decimal GB)")
    flash_block_rows: PositiveInt = Field(default=128, description="query rows per fused-attention tile")
    collective_latency_us: float = Field(
        default=0.0, ge=0, description="per collective on an intra-node link whose catalog entry gives none"
    )
    inter_node_latency_us: float = Field(
        default=0.0, ge=0, description="per collective on an inter-node link whose catalog entry gives none"
    )
    comm_overlap: float = Field(
        default=0.0, ge=0, le=1, description="share of the shorter of compute and communication hidden"
    )
    provenance: Provenance | None = None
    fit: FitRecord | None = None


@dataclass(frozen=True)
class EfficiencyProfile:
    """A profile in SI units."""

    id: str
    bandwidth_efficiency: float
    compute_efficiency: float
    kernel_overhead_s: float
    memory_utilization: float
    runtime_reserve_bytes: float
    flash_block_rows: int
    collective_latency_s: float
    inter_node_latency_s: float
    comm_overlap: float
    record: ProfileRecord


def efficiency_profile(record: ProfileRecord) -> EfficiencyProfile:
    """Convert a validated profile to SI, once."""
    return EfficiencyProfile(
        id=record.id,
        bandwidth_efficiency=record.bandwidth_efficiency,
        compute_efficiency=record.compute_efficiency,
        kernel_overhead_s=units.us_to_s(record.kernel_overhead_us),
        memory_utilization=record.memory_utilization,
        runtime_reserve_bytes=units.gb_to_bytes(record.runtime_reserve_gb),
        flash_block_rows=record.flash_block_rows,
        collective_latency_s=units.us_to_s(record.collective_latency_us),
        inter_node_latency_s=units.us_to_s(record.inter_node_latency_us),
        comm_overlap=record.comm_overlap,
        record=record,
    )

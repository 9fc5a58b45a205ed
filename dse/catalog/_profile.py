"""Efficiency profiles: how far real kernels get from the roofline, as data with provenance."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from dse import units
from dse.catalog._hardware import DType, LinkFamily, LinkSpec
from dse.catalog._provenance import Provenance
from dse.errors import InputError

QUANTITIES = ("tpot_s", "ttft_s", "throughput_tokens_per_s")
"""The predictions an interval is given for (``IntervalRecord``)."""
QUANTILES = (0.1, 0.5, 0.9)
Ratios = Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=3, max_length=3)]
"""measured / predicted at ``QUANTILES``."""


class FitRecord(BaseModel):
    """How a fitted profile was obtained: the measurement rows, their residuals (log of predicted / measured
    under the fitted profile), the method and the date (``dse calibrate``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    rows: list[str] = Field(min_length=1)
    residuals: list[float] = Field(min_length=1)
    method: str = Field(min_length=1)
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    hardware: list[str] = Field(default_factory=list, description="accelerator ids the rows were measured on")
    parameters: list[str] = Field(default_factory=list, description="the fields fitted; the others are the base's")


class IntervalRecord(BaseModel):
    """How far measurements fall from a profile's predictions, per quantity (``QUANTITIES``): the p10, p50 and
    p90 of measured / predicted over rows held out of the fit (split-conformal, ``dse calibrate``: each
    accelerator left out in turn; the shipped family profiles pool these residuals over every family). A
    prediction x has the interval [p10 x, p90 x]."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    method: str = Field(min_length=1)
    held_out: dict[str, Ratios] = Field(default_factory=dict)
    rows: dict[str, int] = Field(default_factory=dict, description="held-out rows per quantity")


PROFILE_ID = r"^[a-z0-9][a-z0-9._-]*$"
"""What a profile id may be: lower-case letters, digits, '.', '_' and '-', from a letter or digit on."""


def check_profile_id(value: str, field: str = "id") -> str:
    """``value``, when it is a profile id (``PROFILE_ID``); else an ``InputError`` naming ``field``."""
    if not isinstance(value, str) or re.fullmatch(PROFILE_ID, value) is None:
        raise InputError(
            f"expected lower-case letters, digits, '.', '_' or '-', starting with a letter or digit ({PROFILE_ID}),"
            f" got {value!r}",
            field=field,
        )
    return value


class ProfileRecord(BaseModel):
    """An efficiency profile as written in ``hardware/profiles/*.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    id: str = Field(pattern=PROFILE_ID)
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
    link_latencies: bool = Field(
        default=True,
        description="charge a link's own latency where its catalog entry gives one (false: collectives take "
        "their bandwidth time only, as the pure roofline's do)",
    )
    comm_overlap: float = Field(
        default=0.0, ge=0, le=1, description="share of the shorter of compute and communication hidden"
    )
    link_efficiency: dict[LinkFamily, Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=dict,
        description="bus bandwidth an all-reduce reaches over the link's nominal per-direction bandwidth, per link "
        "family (nvlink-sharp, nvlink, infiniband, roce, pcie, infinity-fabric, ici, other); 1 where not given",
    )
    transfer_efficiency: dict[LinkFamily, Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=dict,
        description="the same for the other traffic (all-to-alls, pipeline sends, KV transfers), per link "
        "family, where it differs from the all-reduce's (in-switch reduction speeds all-reduces only)",
    )
    compute_efficiency_by_format: dict[DType, float] = Field(
        default_factory=dict,
        description="achieved / peak of the linear layers per compute format, where it differs from "
        "compute_efficiency (16-bit attention and vector work keep compute_efficiency)",
    )
    gemm_accumulate: Literal["fp32", "fp16"] = Field(
        default="fp32",
        description="the accumulator of the engine's 16-bit GEMMs: fp16 computes at a device's "
        "fp16_accumulate_tflops where its catalog entry gives one (GeForce cards: twice the fp32-accumulate peak)",
    )
    hardware: list[str] = Field(
        default_factory=list,
        description="accelerator ids this profile is chosen for by the `calibrated` profile (its family)",
    )
    engine: str | None = Field(default=None, description="the serving engine whose kernels it describes")
    automatic: bool = Field(
        default=True,
        description="chosen for its hardware when no engine is named (false: only when its engine is asked for)",
    )
    provenance: Provenance | None = None
    fit: FitRecord | None = None
    interval: IntervalRecord | None = None


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

    def link_bandwidth(self, link: LinkSpec) -> float:
        """What an all-reduce gets of ``link``, bytes/s per direction: its nominal bandwidth times the profile's
        efficiency for its family (``ProfileRecord.link_efficiency``; 1 where the profile gives none)."""
        return link.bandwidth_bytes_per_s * self.record.link_efficiency.get(link.family, 1.0)

    def link_latency(self, link: LinkSpec | None, otherwise: float) -> float:
        """Seconds per collective on ``link``: its catalog latency where it gives one and the profile charges
        link latencies (``ProfileRecord.link_latencies``), else ``otherwise`` (the profile's own figure)."""
        given = link.latency_s if link is not None else None
        return given if given is not None and self.record.link_latencies else otherwise

    def transfer_share(self, link: LinkSpec) -> float:
        """What an all-to-all, a pipeline send or a KV transfer gets of ``link`` over what an all-reduce gets:
        ``transfer_efficiency`` over ``link_efficiency`` for its family (1 where the profile gives no
        transfer figure)."""
        family = link.family
        reduce = self.record.link_efficiency.get(family, 1.0)
        return self.record.transfer_efficiency.get(family, reduce) / reduce

    @property
    def calibrated_on(self) -> frozenset[str]:
        """Accelerator ids with measurements in this profile's fit (none for a profile not fitted)."""
        return frozenset(self.record.fit.hardware) if self.record.fit else frozenset()


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

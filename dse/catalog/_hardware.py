"""Accelerators and systems: the YAML schema (human units in the keys) and the SI specs built from it."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, field_validator, model_validator

from dse import units
from dse.catalog._provenance import Provenance

DType = Literal["fp32", "tf32", "fp16", "bf16", "fp8", "int8", "fp6", "fp4", "int4"]
"""Number formats a device may compute in. A peak absent from the catalog means: not supported natively."""

DeviceKind = Literal["gpu", "tpu", "npu", "cpu", "soc"]

_ID = r"^[a-z0-9][a-z0-9._-]*$"
_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class LinkRecord(BaseModel):
    """A link as written in YAML: bandwidth per direction per device, in GB/s."""

    model_config = _STRICT

    kind: str = Field(min_length=1, description="e.g. nvlink4, nvswitch, pcie5, infinity-fabric, ib-ndr, ici")
    bandwidth_gb_s_per_direction: PositiveFloat
    latency_us: PositiveFloat | None = None
    provenance: Provenance | None = None


class PriceRecord(BaseModel):
    """Prices as written in YAML. Unknown stays None (never a guess)."""

    model_config = _STRICT

    purchase_usd: PositiveFloat | None = None
    cloud_usd_per_hour: PositiveFloat | None = None
    provenance: Provenance | None = None
    note: str | None = None


class HardwareRecord(BaseModel):
    """One accelerator as written in ``hardware/accelerators/*.yaml``.

    Only ``id``, ``name``, ``memory_gib`` (or ``memory_gb``), ``memory_bandwidth_gb_s`` and ``peak_tflops`` are required
    (DESIGN.md §4). Peaks are dense (no 2:4 sparsity) TFLOP/s (TOP/s for integer formats).
    """

    model_config = _STRICT

    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1)
    vendor: str | None = None
    kind: DeviceKind = "gpu"
    form_factor: str | None = None
    launch_year: int | None = Field(default=None, ge=1990, le=2100)
    memory_gib: PositiveFloat | None = None
    """Device memory in GiB (binary gigabytes). Memory parts are sold in binary sizes: a card sold as "80 GB" holds
    80 GiB (a runtime sees 85.9e9 bytes on an A100 80 GB), so the catalog states it here."""
    memory_gb: PositiveFloat | None = None
    """Device memory in GB (decimal gigabytes), for a figure known in decimal bytes. Exactly one of the two."""
    memory_type: str | None = None
    memory_bandwidth_gb_s: PositiveFloat
    peak_tflops: dict[DType, PositiveFloat] = Field(min_length=1)
    fp16_accumulate_tflops: PositiveFloat | None = None
    """Dense FP16 tensor rate when the products also accumulate in FP16, where it differs from
    ``peak_tflops.fp16``, which holds the FP32-accumulate rate that PyTorch-based engines get. GeForce cards run
    FP32 accumulation at half their FP16-accumulate rate (NVIDIA's GA102 and AD102 whitepapers); datacenter and
    professional cards run both at one rate and leave this out. An engine whose 16-bit GEMMs accumulate in FP16
    (llama.cpp's cuBLAS path) computes at this rate: its profile says ``gemm_accumulate: fp16``."""
    onchip_memory_mb: PositiveFloat | None = None
    tdp_w: PositiveFloat | None = None
    host_memory_gb: PositiveFloat | None = None
    interconnect: LinkRecord | None = None
    host_link: LinkRecord | None = None
    scale_out: LinkRecord | None = None
    price: PriceRecord = PriceRecord()
    provenance: Provenance | None = None
    notes: str | None = None

    @model_validator(mode="after")
    def _one_memory_figure(self) -> HardwareRecord:
        if (self.memory_gib is None) == (self.memory_gb is None):
            raise ValueError("give the device memory as exactly one of memory_gib (binary GiB), memory_gb (decimal GB)")
        return self

    @field_validator("peak_tflops")
    @classmethod
    def _a_peak_for_attention(cls, peaks: dict[DType, float]) -> dict[DType, float]:
        if not {"fp16", "bf16", "fp32"} & set(peaks):
            raise ValueError("expected fp16, bf16 or fp32 among the peaks: attention and element-wise work run in it")
        return peaks

    @property
    def memory_bytes(self) -> float:
        """Device memory in bytes, from whichever of ``memory_gib`` / ``memory_gb`` is given."""
        if self.memory_gib is not None:
            return units.gib_to_bytes(self.memory_gib)
        assert self.memory_gb is not None
        return units.gb_to_bytes(self.memory_gb)


class SystemRecord(BaseModel):
    """A node type (or scale-up domain) as written in ``hardware/systems/*.yaml``."""

    model_config = _STRICT

    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1)
    accelerator: str = Field(pattern=_ID, description="id of the accelerator in hardware/accelerators")
    devices_per_node: PositiveInt
    max_nodes: PositiveInt | None = None
    intra_node_link: LinkRecord
    inter_node_link: LinkRecord | None = None
    host_memory_gb: PositiveFloat | None = None
    price: PriceRecord = PriceRecord()
    provenance: Provenance | None = None
    notes: str | None = None


LinkFamily = Literal["nvlink-sharp", "nvlink", "infiniband", "roce", "pcie", "infinity-fabric", "ici", "other"]
LINK_FAMILIES: tuple[LinkFamily, ...] = typing.get_args(LinkFamily)
_FAMILY_MARKS: tuple[tuple[tuple[str, ...], LinkFamily], ...] = (
    # NVLink through a third-generation NVSwitch or later (Hopper, Blackwell), which reduces in the switch
    # (NVLink SHARP); A100's NVSwitch (nvswitch-nvlink3), bridges and direct links do not
    (("nvswitch-nvlink4", "nvswitch-nvlink5", "nvlink4-switch", "nvlink5-switch"), "nvlink-sharp"),
    (("nvlink", "nvswitch"), "nvlink"),
    (("infiniband", "connectx"), "infiniband"),
    (("roce",), "roce"),
    (("pcie",), "pcie"),
    (("infinity-fabric", "xgmi"), "infinity-fabric"),
    (("ici",), "ici"),
)


def link_family(kind: str) -> LinkFamily:
    """The family of a link ``kind`` as the catalog names it (``nvswitch-nvlink4``: ``nvlink-sharp``;
    ``nvswitch-nvlink3``: ``nvlink``; ``pcie5-x16``: ``pcie``; ``infiniband-ndr``: ``infiniband``), which an
    efficiency profile gives collective efficiencies (``ProfileRecord.link_efficiency``,
    ``transfer_efficiency``); ``other`` for a kind none of them names."""
    name = kind.lower()
    return next((family for marks, family in _FAMILY_MARKS if any(m in name for m in marks)), "other")


@dataclass(frozen=True)
class LinkSpec:
    """A link in SI: bytes/s per direction per device; latency in seconds (None: use the profile's)."""

    kind: str
    bandwidth_bytes_per_s: float
    latency_s: float | None

    @property
    def family(self) -> LinkFamily:
        return link_family(self.kind)


@dataclass(frozen=True)
class HardwareSpec:
    """One accelerator in SI units. ``record`` keeps the catalog entry (provenance, notes) as written."""

    id: str
    name: str
    memory_bytes: float
    memory_bandwidth_bytes_per_s: float
    peak_flops_per_s: Mapping[str, float]
    fp16_accumulate_flops_per_s: float | None
    """``HardwareRecord.fp16_accumulate_tflops`` in FLOP/s."""
    onchip_memory_bytes: float | None
    tdp_w: float | None
    host_memory_bytes: float | None
    """Host memory attached to this device (e.g. Grace's LPDDR5X on GH200), when the entry gives it."""
    interconnect: LinkSpec | None
    host_link: LinkSpec | None
    scale_out: LinkSpec | None
    purchase_usd: float | None
    cloud_usd_per_hour: float | None
    record: HardwareRecord

    def peak(self, dtype: str) -> float | None:
        """Dense peak FLOP/s for ``dtype``, or None when the device has no native support."""
        return self.peak_flops_per_s.get(dtype)

    def peaks_for(self, accumulate: str) -> Mapping[str, float]:
        """The dense peaks an engine gets whose 16-bit GEMMs accumulate in ``accumulate`` (``fp32`` or ``fp16``):
        with ``fp16``, the FP16-accumulate rate replaces the 16-bit peaks where the catalog gives one. Such an
        engine runs 16-bit weights as FP16 (llama.cpp's CUDA backend had no BF16 GEMM: ggml-cuda.cu @
        614d3b9, 2024-05-13), so bf16 takes the rate too."""
        if accumulate != "fp16" or self.fp16_accumulate_flops_per_s is None:
            return self.peak_flops_per_s
        rate = self.fp16_accumulate_flops_per_s
        return MappingProxyType({**self.peak_flops_per_s, "fp16": rate, "bf16": rate})


@dataclass(frozen=True)
class SystemSpec:
    """A node type in SI units."""

    id: str
    name: str
    accelerator: HardwareSpec
    devices_per_node: int
    max_nodes: int | None
    intra_node_link: LinkSpec
    inter_node_link: LinkSpec | None
    host_memory_bytes: float | None
    """Host memory of a whole node."""
    record: SystemRecord


def _link(record: LinkRecord | None) -> LinkSpec | None:
    if record is None:
        return None
    latency = units.us_to_s(record.latency_us) if record.latency_us is not None else None
    return LinkSpec(record.kind, units.gb_s_to_bytes_per_s(record.bandwidth_gb_s_per_direction), latency)


def hardware_spec(record: HardwareRecord) -> HardwareSpec:
    """Convert a validated record to SI, once."""
    peaks: dict[str, float] = {str(d): units.tflops_to_flops_per_s(v) for d, v in record.peak_tflops.items()}
    onchip = units.mb_to_bytes(record.onchip_memory_mb) if record.onchip_memory_mb is not None else None
    return HardwareSpec(
        id=record.id,
        name=record.name,
        memory_bytes=record.memory_bytes,
        memory_bandwidth_bytes_per_s=units.gb_s_to_bytes_per_s(record.memory_bandwidth_gb_s),
        peak_flops_per_s=MappingProxyType(peaks),
        fp16_accumulate_flops_per_s=(
            units.tflops_to_flops_per_s(record.fp16_accumulate_tflops)
            if record.fp16_accumulate_tflops is not None
            else None
        ),
        onchip_memory_bytes=onchip,
        tdp_w=record.tdp_w,
        host_memory_bytes=units.gb_to_bytes(record.host_memory_gb) if record.host_memory_gb is not None else None,
        interconnect=_link(record.interconnect),
        host_link=_link(record.host_link),
        scale_out=_link(record.scale_out),
        purchase_usd=record.price.purchase_usd,
        cloud_usd_per_hour=record.price.cloud_usd_per_hour,
        record=record,
    )


def system_spec(record: SystemRecord, accelerator: HardwareSpec) -> SystemSpec:
    """Convert a validated system record to SI, bound to its accelerator."""
    intra = _link(record.intra_node_link)
    assert intra is not None
    return SystemSpec(
        id=record.id,
        name=record.name,
        accelerator=accelerator,
        devices_per_node=record.devices_per_node,
        max_nodes=record.max_nodes,
        intra_node_link=intra,
        inter_node_link=_link(record.inter_node_link),
        host_memory_bytes=units.gb_to_bytes(record.host_memory_gb) if record.host_memory_gb is not None else None,
        record=record,
    )

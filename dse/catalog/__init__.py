"""Catalogs: hardware, systems, models, quantization schemes, efficiency profiles -> frozen SI specs."""

from dse.catalog._files import read_document, validate
from dse.catalog._hardware import DType, HardwareRecord, HardwareSpec, LinkSpec, SystemRecord, SystemSpec
from dse.catalog._model import LayerSet, ModelRecord, ModelSpec, model_spec
from dse.catalog._numerics import resolve_numerics
from dse.catalog._prices import (
    TERMS,
    DevicePrices,
    Price,
    PriceEntry,
    Term,
    device_prices,
    price_book,
    price_catalog,
    read_price_sheet,
    sheet_ids,
)
from dse.catalog._profile import EfficiencyProfile, ProfileRecord
from dse.catalog._provenance import Provenance
from dse.catalog._quant import KVFormatRecord, Numerics, SchemeRecord
from dse.catalog._registry import (
    catalog_root,
    hardware_catalog,
    is_path,
    load_hardware,
    load_kv_format,
    load_model,
    load_profile,
    load_scheme,
    load_system,
    load_target,
    model_catalog,
    profile_catalog,
    quant_catalog,
    system_catalog,
)

__all__ = [
    "TERMS",
    "DType",
    "DevicePrices",
    "EfficiencyProfile",
    "HardwareRecord",
    "HardwareSpec",
    "KVFormatRecord",
    "LayerSet",
    "LinkSpec",
    "ModelRecord",
    "ModelSpec",
    "Numerics",
    "Price",
    "PriceEntry",
    "ProfileRecord",
    "Provenance",
    "SchemeRecord",
    "SystemRecord",
    "SystemSpec",
    "Term",
    "catalog_root",
    "device_prices",
    "hardware_catalog",
    "is_path",
    "load_hardware",
    "load_kv_format",
    "load_model",
    "load_profile",
    "load_scheme",
    "load_system",
    "load_target",
    "model_catalog",
    "model_spec",
    "price_book",
    "price_catalog",
    "profile_catalog",
    "quant_catalog",
    "read_document",
    "read_price_sheet",
    "resolve_numerics",
    "sheet_ids",
    "system_catalog",
    "validate",
]
